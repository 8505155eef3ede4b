"""Attack throughput with 1 and 2 workers (local processes, Ray actors); training with torchrun.

Runs the same DeepWordBug attack (same model, examples and per-example seeds) four ways:
``--workers 1`` and ``2`` with local processes, and 1 and 2 Ray actors on a local Ray instance.
Each run is a fresh process; wall time includes starting the workers and loading one model
replica in each (Ray: also starting Ray). Scaling efficiency = (time with 1 worker / time with 2)
/ 2. Every run must produce the same records as the first.

Then ``guard train`` (clean mode, the default backbone) for ``--train-epochs`` epochs in one
process and data-parallel in two torchrun processes: training seconds from the manifests (model
loading and process start excluded), test accuracy, and the peak RSS of the largest process.

    python benchmarks/scaling.py [--model DIR] [--n 100] [--recipe deepwordbug] [--train-epochs 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
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


def train(processes: int, epochs: int) -> dict[str, Any]:
    """``guard train`` in ``processes`` processes (torchrun when more than one)."""
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(processes)]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "model"
        start = time.perf_counter()
        subprocess.run([*launcher, "-m", "guard", "train", "--epochs", str(epochs), "--device",
                        "cpu", "--out", str(out), "--quiet"], check=True, capture_output=True)
        wall = time.perf_counter() - start
        manifest = json.loads((out / "manifest.json").read_text())
    return {"processes": processes, "wall_seconds": wall,
            "train_seconds": manifest["metrics"]["train_seconds"],
            "test_accuracy": manifest["metrics"]["test"]["accuracy"],
            "largest_process_rss_mb":
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="classifier folder (default model)")
    parser.add_argument("--recipe", default="deepwordbug")
    parser.add_argument("--n", type=int, default=100, help="test examples to attack")
    parser.add_argument("--train-epochs", type=int, default=1,
                        help="epochs of the training comparison (0: skip it)")
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
    training = [isolated(train, processes=p, epochs=args.train_epochs)
                for p in (1, 2)] if args.train_epochs else []
    if training:
        training[1]["speedup"] = training[0]["train_seconds"] / training[1]["train_seconds"]
        print(f"\nguard train, clean, default backbone, {args.train_epochs} epoch(s)")
        print_table(training, ["processes", "train_seconds", "wall_seconds", "speedup",
                               "test_accuracy", "largest_process_rss_mb"])
    write_json(args.out, {"benchmark": "scaling", "recipe": args.recipe, "n": args.n,
                          "model": args.model, "rows": rows, "training": training})


if __name__ == "__main__":
    main()
