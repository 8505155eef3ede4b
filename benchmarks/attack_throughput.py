"""Our attack runner vs plain ``textattack.Attacker``: same recipe, model, examples and seeds.

Both attack the first --n examples of the bundled test split with the same recipe on the same
fine-tuned model, each example seeded with seed + index (TextAttack's ``Attacker`` gets a
one-example data set and ``random_seed = seed + index``, which is how it seeds). TextAttack runs
with its own ``HuggingFaceModelWrapper`` (pads every query to the tokenizer's maximum length);
ours with ``CachingModelWrapper`` (pads to the batch, caches repeats). Each side runs in a fresh
process. Outcomes (status and perturbed text per example) must be identical; target: ours >= 2x
faster in seconds per example.

    python benchmarks/attack_throughput.py [--model DIR] [--recipe deepwordbug] [--n 50]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from _common import isolated, print_table, write_json


def plain_textattack(model_dir: str, recipe: str, n: int, seed: int) -> dict[str, Any]:
    import torch

    from attacks.textattack_env import load_textattack
    from guard.data import load_eval_data

    textattack = load_textattack()
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    wrapper = textattack.models.wrappers.HuggingFaceModelWrapper(model, tokenizer)
    recipe_class = {"deepwordbug": "DeepWordBugGao2018", "pruthi": "Pruthi2019",
                    "input-reduction": "InputReductionFeng2018"}[recipe]
    attack = getattr(textattack.attack_recipes, recipe_class).build(wrapper)
    data = load_eval_data("bundled")
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    outcomes = []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(n):
            dataset = textattack.datasets.Dataset([(data.texts[i], labels.index(data.labels[i]))])
            args = textattack.AttackArgs(num_examples=1, random_seed=seed + i, silent=True,
                                         disable_stdout=True, query_budget=None)
            [result] = textattack.Attacker(attack, dataset, args).attack_dataset()
            outcomes.append((type(result).__name__, result.perturbed_result.attacked_text.text))
    seconds = time.perf_counter() - start
    return {"runner": "textattack.Attacker", "seconds": seconds, "outcomes": outcomes}


def ours(model_dir: str, recipe: str, n: int, seed: int) -> dict[str, Any]:
    from attacks.runner import run_attack
    from guard.data import load_eval_data

    names = {"successful": "SuccessfulAttackResult", "failed": "FailedAttackResult",
             "skipped": "SkippedAttackResult", "maximized": "MaximizedAttackResult"}
    start = time.perf_counter()
    run = run_attack(model_dir, load_eval_data("bundled"), recipe, n=n, seed=seed,
                     progress=False)
    seconds = time.perf_counter() - start
    outcomes = [(names[r.status], r.perturbed_text) for r in run.records]
    return {"runner": "metaverse-guard", "seconds": seconds, "outcomes": outcomes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="default: the cached default assistant")
    parser.add_argument("--recipe", default="deepwordbug")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/attack_throughput.json")
    args = parser.parse_args()
    if args.model is None:
        from training.default_model import ensure_default_model

        args.model = str(ensure_default_model())
    runs = [isolated(fn, model_dir=args.model, recipe=args.recipe, n=args.n, seed=args.seed)
            for fn in (plain_textattack, ours)]
    identical = runs[0]["outcomes"] == runs[1]["outcomes"]
    mismatches = [i for i, (a, b) in enumerate(zip(runs[0]["outcomes"], runs[1]["outcomes"],
                                                   strict=True)) if a != b]
    rows = []
    for run in runs:
        outcomes = run.pop("outcomes")
        successes = sum(status == "SuccessfulAttackResult" for status, _ in outcomes)
        rows.append({**run, "examples": args.n, "s_per_example": run["seconds"] / args.n,
                     "successes": successes,
                     "speedup": runs[0]["seconds"] / run["seconds"]})
    print_table(rows, ["runner", "examples", "seconds", "s_per_example", "successes", "speedup",
                       "peak_rss_mb"])
    print(f"\noutcomes identical: {identical}" + (f" (differ at {mismatches})"
                                                   if mismatches else ""))
    write_json(args.out, {"benchmark": "attack_throughput", "recipe": args.recipe,
                          "seed": args.seed, "target_speedup": 2.0,
                          "outcomes_identical": identical, "mismatched_examples": mismatches,
                          "rows": rows})


if __name__ == "__main__":
    main()
