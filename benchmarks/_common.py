"""Helpers shared by the benchmarks: isolated measurement, tables, JSON output."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def offline_defaults() -> None:
    """Offline hub access and quiet tokenizers, unless the caller's environment says otherwise."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _child(fn: Callable[..., dict[str, Any]], kwargs: dict[str, Any], queue: Any) -> None:
    result = fn(**kwargs)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def isolated(fn: Callable[..., dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Run ``fn(**kwargs)`` in a fresh process; its result gains that process's peak RSS (MB)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, kwargs, queue))
    proc.start()
    result: dict[str, Any] = queue.get()
    proc.join()
    return result


def timed(fn: Callable[[], Any], *, repeats: int, warmup: int = 2) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print rows as an aligned text table."""
    cells = [[c for c in columns]] + [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write the benchmark's results with machine facts."""
    import torch

    payload = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                           "cuda": torch.cuda.is_available()}, **payload}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {path}")
