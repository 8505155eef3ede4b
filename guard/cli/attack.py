"""``guard attack``: run a TextAttack recipe against a model, resumably."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from guard.atomic import ensure_writable_dir, removing_on_failure
from guard.cli.options import add_executor_arguments, build_executor


def add_parser(commands: Any) -> None:
    """Register the ``attack`` subcommand."""
    parser = commands.add_parser(
        "attack",
        help="attack a model with a TextAttack recipe; records as JSONL",
        description=(
            "Attack the first --n examples of --data with a recipe (see `guard ls recipes`). "
            "Each example is seeded with --seed + its index, so the same seed gives identical "
            "records. Records are checkpointed into --out as they finish: rerun the same "
            "command after an interruption to resume. --executor ray shards the examples "
            "across Ray workers with identical records. Needs the extra: pip install "
            "'metaverse-guard[attacks]'."
        ),
    )
    parser.add_argument("--recipe", required=True, help="recipe name, e.g. deepwordbug")
    parser.add_argument("--model", default=None,
                        help="classifier folder; default: the cached default assistant")
    parser.add_argument("--data", default="bundled", help="'bundled', a data folder or a file")
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"))
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--n", type=int, default=50, help="examples to attack (50)")
    parser.add_argument("--seed", type=int, default=0, help="run seed (0)")
    parser.add_argument("--query-budget", type=int, default=None,
                        help="most model queries per example")
    add_executor_arguments(parser)
    parser.add_argument("--out", required=True, help="output folder (records, checkpoint)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Attack and print a summary."""
    from attacks import RECIPES

    RECIPES.entry(args.recipe)  # fail fast on a typo, before any model loads
    executor = build_executor(args)  # flag errors before any model loads or trains
    created = ensure_writable_dir(Path(args.out))
    with removing_on_failure(created):
        return _attack(args, executor)


def _attack(args: argparse.Namespace, executor: Any) -> int:
    from attacks.runner import run_attack
    from guard.data import load_eval_data
    from guard.models.classifier import HFClassifier

    if args.model is None:
        from training.default_model import ensure_default_model

        args.model = str(ensure_default_model(progress=not args.quiet))
    classifier = HFClassifier.from_pretrained(args.model, device="cpu")
    data = load_eval_data(args.data, split=args.split, text_column=args.text_column,
                          label_column=args.label_column, allowed_labels=classifier.labels)
    try:
        result = run_attack(classifier, data, args.recipe, n=args.n, seed=args.seed,
                            query_budget=args.query_budget, out=args.out,
                            workers=args.workers or 1, progress=not args.quiet,
                            executor=executor)
    finally:
        if executor is not None:
            executor.shutdown()
    counts = Counter(r.status for r in result.records)
    attempted = len(result.records) - counts["skipped"]
    rate = counts["successful"] / attempted if attempted else 0.0
    summary: dict[str, Any] = {"recipe": args.recipe, "constraint_set": result.constraint_set,
               "examples": len(result.records), **{k: counts[k] for k in sorted(counts)},
               "attack_success_rate": round(rate, 4),
               "mean_queries": round(sum(r.queries for r in result.records)
                                     / max(1, len(result.records)), 2),
               "seconds": round(result.seconds, 2), "attacked_now": result.attacked_now}
    print(json.dumps(summary, indent=2))
    print(f"records: {args.out}/records.jsonl", file=sys.stderr)
    return 0
