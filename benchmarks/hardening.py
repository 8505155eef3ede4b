"""Evidence for hardening: adversarial training, DP fine-tuning, and what each costs.

On the bundled intents with the all-MiniLM-L6-v2 default, at each mode's default settings:

1. clean vs adversarial training: test accuracy, and accuracy under DeepWordBug on the test
   split (target: adversarial >= clean + 15 points, clean accuracy drop <= 2 points). The
   adversarial default combines A2T-style training with word recognition; two ablations split
   the gain: A2T alone (``word_recognition="off"``) and word recognition alone (the clean
   checkpoint with the recogniser that adversarial training would build);
2. DP at epsilon 8, delta 1e-5 vs non-private training: test accuracy (target: within 5 points).
   Two non-private references: the clean default (full fine-tune, [CLS] head) and the DP recipe
   itself with no noise (same trainable parameters, pooling and clipping);
3. DP step time / non-private step time on the same batch, for each choice of trainable
   parameters, with ghost clipping and with Opacus' default per-sample hooks (target: <= 1.5);
4. adversarial epoch time / clean epoch time (target: <= 2.5), from the epoch timings in the
   two training runs' manifests.

With ``--seeds 0,1,2`` the accuracies (clean, adversarial, DP, and under DeepWordBug) and the
figures comparing them are averaged over seeds; the timings come from the first seed. Every run
happens in a fresh process; peak RSS is reported beside each. Trained models are kept in --work
and reused by a rerun with the same settings (their manifests keep the timings).

    python benchmarks/hardening.py [--work DIR] [--seeds 0] [--n-attack 252] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from statistics import fmean
from typing import Any

from _common import isolated, offline_defaults, print_table, write_json

DP_TRAINABLE = ("head", "last-layer", "all")
ATTACKED = ("clean", "clean+wr", "adversarial", "adversarial-no-wr")


def train(mode: str, out: str, overrides: dict[str, Any]) -> dict[str, Any]:
    from training.checkpoint import read_manifest
    from training.config import TrainConfig
    from training.pipeline import fine_tune

    config = TrainConfig.model_validate({"mode": mode, **overrides})
    previous = read_manifest(out)
    reused = previous is not None and previous["config"] == config.model_dump()
    manifest = previous if previous is not None and reused else \
        fine_tune(config, out=out, progress=False).manifest
    history = manifest["history"]
    attack_epochs = {r["epoch"] for r in manifest.get("adversarial", {}).get("rounds", [])}
    return {"mode": mode, "checkpoint": out, "reused": reused,
            "test_accuracy": manifest["metrics"]["test"]["accuracy"],
            "n_test": int(manifest["metrics"]["test"]["n"]),
            "epochs_run": manifest["metrics"]["epochs_run"],
            "train_seconds": manifest["metrics"]["train_seconds"],
            "epoch_seconds": [e["seconds"] for e in history],
            "attack_epoch_seconds": [e["seconds"] for e in history
                                     if int(e["epoch"]) in attack_epochs],
            "epsilon": manifest.get("privacy", {}).get("epsilon"),
            "noise_multiplier": manifest.get("privacy", {}).get("noise_multiplier")}


def add_word_recognition(checkpoint: str, out: str) -> dict[str, Any]:
    """A copy of ``checkpoint`` with the word recogniser ``word_recognition="train"`` builds.

    The copy's manifest still describes the original training run (its file list lacks the
    recogniser): it is a benchmark artefact, not a checkpoint to release.
    """
    import shutil

    from transformers import AutoTokenizer

    from guard.data import load_splits
    from guard.models.word_recognition import WordRecognizer, public_words

    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(checkpoint, out)
    recognizer = WordRecognizer.build("train", public_words(AutoTokenizer.from_pretrained(out)),
                                      load_splits("bundled").train.texts)
    recognizer.save(out)
    return {"checkpoint": out}


def attack(model: str, n: int) -> dict[str, Any]:
    from attacks.runner import run_attack
    from guard.data import load_eval_data

    run = run_attack(model, load_eval_data("bundled"), "deepwordbug", n=n, seed=0,
                     progress=False)
    statuses = [r.status for r in run.records]
    correct = sum(s != "skipped" for s in statuses)
    held = sum(s == "failed" for s in statuses)
    return {"model": model, "n": len(statuses), "clean_correct": correct,
            "still_correct": held, "accuracy_under_attack": held / len(statuses),
            "attack_success_rate": (correct - held) / correct if correct else None,
            "seconds": run.seconds}


def step_times(trainable: str, batch_size: int, steps: int) -> dict[str, Any]:
    """Seconds per optimiser step on the same batches: non-private, ghost clipping, hooks."""
    import warnings

    import torch
    from opacus import PrivacyEngine
    from transformers import AutoTokenizer

    from guard.data import load_splits
    from guard.models.pooled import MeanPooledBackbone
    from guard.models.source import default_backbone_path
    from training.privacy import select_trainable as _select_trainable

    warnings.filterwarnings("ignore")
    path = str(default_backbone_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    train_rows = load_splits("bundled").train
    labels = sorted(set(train_rows.labels))
    texts = list(train_rows.texts[: batch_size * (steps + 1)])
    targets = torch.tensor([labels.index(x) for x in train_rows.labels[: len(texts)]])
    batches = [(tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=64,
                          return_tensors="pt"), targets[i:i + batch_size])
               for i in range(0, len(texts), batch_size)]
    result: dict[str, Any] = {"trainable": trainable, "batch_size": batch_size}
    for method in ("non-private", "ghost", "hooks"):
        torch.manual_seed(0)
        model = MeanPooledBackbone.from_pretrained(path, num_labels=len(labels))
        _select_trainable(model, trainable)
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-3)
        criterion = torch.nn.CrossEntropyLoss()
        if method != "non-private":
            loader = torch.utils.data.DataLoader(
                torch.utils.data.TensorDataset(torch.arange(len(texts))), batch_size=batch_size)
            engine = PrivacyEngine(accountant="prv")
            options: dict[str, Any] = {"grad_sample_mode": method}
            if method == "ghost":
                options["criterion"] = criterion
            made = engine.make_private(module=model, optimizer=optimizer, data_loader=loader,
                                       noise_multiplier=1.0, max_grad_norm=1.0,
                                       poisson_sampling=False, **options)
            model, optimizer = made[0], made[1]
            if method == "ghost":
                criterion = made[2]
        times = []
        for i, (inputs, y) in enumerate(batches):
            start = time.perf_counter()
            loss = criterion(model(**inputs).logits, y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if i:  # the first step warms up
                times.append(time.perf_counter() - start)
        result[f"{method}_s"] = fmean(times)
    result["ghost_ratio"] = result["ghost_s"] / result["non-private_s"]
    result["hooks_ratio"] = result["hooks_s"] / result["non-private_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=None, help="folder for the trained models (reused)")
    parser.add_argument("--n-attack", type=int, default=252, help="test examples to attack")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per method")
    parser.add_argument("--batch-size", type=int, default=16, help="batch for step timings")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated seeds for the clean vs DP accuracy comparison")
    parser.add_argument("--out", default="benchmarks/results/hardening.json")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    offline_defaults()
    work = Path(args.work or Path(tempfile.gettempdir()) / "guard-bench-hardening")
    work.mkdir(parents=True, exist_ok=True)

    def name(mode: str, seed: int) -> str:
        """The run's key: the mode for the first seed, ``mode-seedN`` for the others."""
        return mode if seed == seeds[0] else f"{mode}-seed{seed}"

    first = {"seed": seeds[0]}
    no_wr = {"word_recognition": "off"}
    runs = {
        "clean": isolated(train, mode="clean", out=str(work / "clean"), overrides=first),
        "adversarial": isolated(train, mode="adversarial", out=str(work / "adversarial"),
                                overrides=first),
        "adversarial-no-wr": isolated(train, mode="adversarial",
                                      out=str(work / "adversarial-no-wr"),
                                      overrides={**first, **no_wr}),
        "dp": isolated(train, mode="dp", out=str(work / "dp"), overrides=first),
        "dp-recipe-no-noise": isolated(train, mode="dp", out=str(work / "dp-no-noise"),
                                       overrides={**first, "dp_epsilon": None,
                                                  "dp_noise_multiplier": 0.0,
                                                  "dp_centroid_noise": 0.0}),
    }
    for seed in seeds[1:]:
        for mode in ("clean", "adversarial", "dp"):
            runs[name(mode, seed)] = isolated(
                train, mode=mode, out=str(work / f"{mode}-s{seed}"), overrides={"seed": seed})
        runs[name("adversarial-no-wr", seed)] = isolated(
            train, mode="adversarial", out=str(work / f"adversarial-no-wr-s{seed}"),
            overrides={"seed": seed, **no_wr})
    for run in runs.values():
        if run["reused"]:  # trained by an earlier invocation: this process only read it
            run["peak_rss_mb"] = None
    print("training runs (default settings of each mode; peak RSS of the training process)")
    print_table([{"run": k, **v} for k, v in runs.items()],
                ["run", "test_accuracy", "epochs_run", "train_seconds",
                                      "epsilon", "noise_multiplier", "peak_rss_mb", "reused"])

    models = {name(mode, seed): runs[name(mode, seed)]["checkpoint"]
              for seed in seeds for mode in ATTACKED if mode != "clean+wr"}
    for seed in seeds:
        models[name("clean+wr", seed)] = isolated(
            add_word_recognition, checkpoint=runs[name("clean", seed)]["checkpoint"],
            out=str(work / f"clean+wr-s{seed}"))["checkpoint"]
    attacks = {key: isolated(attack, model=path, n=args.n_attack)
               for key, path in sorted(models.items())}
    print("\nDeepWordBug on the test split")
    print_table([{"model": k, **v} for k, v in attacks.items()],
                ["model", "n", "accuracy_under_attack", "attack_success_rate", "seconds",
                 "peak_rss_mb"])

    steps = [isolated(step_times, trainable=t, batch_size=args.batch_size, steps=args.steps)
             for t in DP_TRAINABLE]
    print(f"\nseconds per step, batch {args.batch_size}, mean pooling")
    print_table(steps, ["trainable", "non-private_s", "ghost_s", "hooks_s", "ghost_ratio",
                        "hooks_ratio", "peak_rss_mb"])

    clean, adv = runs["clean"], runs["adversarial"]
    clean_epoch = fmean(clean["epoch_seconds"])
    adv_epoch = fmean(adv["epoch_seconds"])
    attack_epoch = fmean(adv["attack_epoch_seconds"]) if adv["attack_epoch_seconds"] else None
    default_step = next(s for s in steps if s["trainable"] == "head")
    over_seeds = {mode: [runs[name(mode, seed)]["test_accuracy"] for seed in seeds]
                  for mode in ("clean", "adversarial", "adversarial-no-wr", "dp")}
    over_seeds |= {f"{mode}_under_deepwordbug": [
        attacks[name(mode, seed)]["accuracy_under_attack"] for seed in seeds]
        for mode in ATTACKED}
    mean = {mode: fmean(values) for mode, values in over_seeds.items()}

    def gain(model: str, over: str = "clean") -> float:
        return float(100 * (mean[f"{model}_under_deepwordbug"]
                            - mean[f"{over}_under_deepwordbug"]))

    evidence = {
        "robustness_gain_points": gain("adversarial"),
        "a2t_alone_gain_points": gain("adversarial-no-wr"),
        "word_recognition_alone_gain_points": gain("clean+wr"),
        "a2t_on_top_of_word_recognition_points": gain("adversarial", over="clean+wr"),
        "adversarial_clean_drop_points": 100 * (mean["clean"] - mean["adversarial"]),
        "a2t_alone_clean_drop_points": 100 * (mean["clean"] - mean["adversarial-no-wr"]),
        "dp_gap_to_clean_default_points": 100 * (mean["clean"] - mean["dp"]),
        "dp_gap_to_same_recipe_without_noise_points": 100 * (
            runs["dp-recipe-no-noise"]["test_accuracy"] - runs["dp"]["test_accuracy"]),
        "dp_step_ratio_default_ghost": default_step["ghost_ratio"],
        "dp_step_ratio_default_hooks": default_step["hooks_ratio"],
        "adversarial_epoch_ratio_all_epochs": adv_epoch / clean_epoch,
        "adversarial_epoch_ratio_attack_epochs": (attack_epoch / clean_epoch
                                                  if attack_epoch else None),
        "a2t_alone_epoch_ratio_attack_epochs": fmean(
            runs["adversarial-no-wr"]["attack_epoch_seconds"]) / clean_epoch,
    }
    targets = {"robustness_gain_points": (">=", 15.0), "adversarial_clean_drop_points": ("<=", 2.0),
               "dp_gap_to_clean_default_points": ("<=", 5.0),
               "dp_gap_to_same_recipe_without_noise_points": ("<=", 5.0),
               "dp_step_ratio_default_ghost": ("<=", 1.5),
               "adversarial_epoch_ratio_attack_epochs": ("<=", 2.5)}
    rows = []
    for figure, value in evidence.items():
        op, target = targets.get(figure, (None, None))
        met = None if op is None or value is None else (
            value >= target if op == ">=" else value <= target)
        rows.append({"figure": figure, "value": value,
                     "target": f"{op} {target}" if op else None, "met": met})
    print("\nevidence")
    print_table(rows, ["figure", "value", "target", "met"])
    print(f"(accuracies over seeds {seeds}: {over_seeds})")
    write_json(args.out, {"benchmark": "hardening", "runs": runs, "attacks": attacks,
                          "accuracy_over_seeds": {"seeds": seeds, **over_seeds},
                          "step_times": steps, "evidence": rows,
                          "settings": json.loads(json.dumps(vars(args)))})


if __name__ == "__main__":
    main()
