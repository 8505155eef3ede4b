"""Attack throughput with 1 and 2 workers on this machine: local processes and Ray actors.

Runs the same DeepWordBug attack (same model, examples and per-example seeds) four ways:
``--workers 1`` and ``2`` with local processes, and 1 and 2 Ray actors on a local Ray instance.
Each run is a fresh process; wall time includes starting the workers and loading one model
replica in each (Ray: also starting Ray). Scaling efficiency = (time with 1 worker / time with 2)
/ 2. Every run must produce the same records as the first.

    python benchmarks/scaling.py [--model DIR] [--n 100] [--recipe deepwordbug]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from typing import Any

from _common import isolated, offline_defaults, print_table, write_json


def attack(model: str, recipe: str, n: int, executor: str, workers: int) -> dict[str, Any]:
    import torch

    from attacks.records import write_records
    from attacks.runner import run_attack
    from guard.data import load_eval_data

    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    start = time.perf_counter()
    if executor == "ray":
        from guard.executors import RayExecutor

        with RayExecutor(workers=workers) as ray_executor:
            run = run_attack(model, load_eval_data("bundled"), recipe, n=n, seed=0,
                             progress=False, executor=ray_executor)
    else:
        run = run_attack(model, load_eval_data("bundled"), recipe, n=n, seed=0, progress=False,
                         workers=workers)
    seconds = time.perf_counter() - start
    return {"executor": executor, "workers": workers, "seconds": seconds,
            "examples_per_s": n / seconds,
            "records_sha256": hashlib.sha256(write_records(run.records).encode()).hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="classifier folder (default model)")
    parser.add_argument("--recipe", default="deepwordbug")
    parser.add_argument("--n", type=int, default=100, help="test examples to attack")
    parser.add_argument("--out", default="benchmarks/results/scaling.json")
    args = parser.parse_args()
    offline_defaults()
    if args.model is None:
        from training.default_model import ensure_default_model

        args.model = str(ensure_default_model())
    rows = [isolated(attack, model=args.model, recipe=args.recipe, n=args.n, executor=e,
                     workers=w) for e in ("local", "ray") for w in (1, 2)]
    for executor in ("local", "ray"):
        one, two = (r for r in rows if r["executor"] == executor)
        two["speedup"] = one["seconds"] / two["seconds"]
        two["efficiency"] = two["speedup"] / 2
    reference = rows[0]["records_sha256"]
    for row in rows:
        row["same_records"] = row["records_sha256"] == reference
    print(f"{args.recipe} on {args.n} test examples, {os.cpu_count()} CPUs "
          "(peak RSS: the driver process only)")
    print_table(rows, ["executor", "workers", "seconds", "examples_per_s", "speedup",
                       "efficiency", "same_records", "peak_rss_mb"])
    write_json(args.out, {"benchmark": "scaling", "recipe": args.recipe, "n": args.n,
                          "model": args.model, "rows": rows})


if __name__ == "__main__":
    main()
