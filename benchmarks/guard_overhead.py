"""Guard overhead: guarded / unguarded end-to-end latency of the default assistant.

The assistant answers a message (classify the intent, pick the recommended answer); the guarded
assistant also passes the answer through ``OutputGuard.default()`` (normalise, score with the
embedded scorer, apply the policy). Both run in the same process on the same messages, at batch 1
and batch 32, interleaved so drift in machine speed hits both alike. Target: ratio <= 1.10 on CPU.

The default assistant answers with a fixed set of recommended replies, so the scorer's cache of
recent texts (on by default) serves nearly every reply after the first few; the ``cache`` column
says whether it was on, and the uncached rows show what a reply the guard has not seen costs.

    python benchmarks/guard_overhead.py [--model DIR] [--repeats 200] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _common import print_table, write_json


def measure(model_dir: str, batch_size: int, repeats: int, cache: bool,
            threads: int | None) -> dict[str, Any]:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    from guard import OutputGuard
    from guard.data import load_eval_data
    from guard.models import HFClassifier, Responder
    from guard.scorers import DEFAULT_SCORER, build_scorer, recommended_policy

    model = HFClassifier.from_pretrained(model_dir, device="cpu")
    assistant = Responder.from_model_dir(model, model_dir)
    scorer = build_scorer(DEFAULT_SCORER, **({} if cache else {"cache_size": 0}))
    guard = OutputGuard(scorer, recommended_policy(scorer))
    texts = list(load_eval_data("bundled").texts)
    batches = [[texts[(k * batch_size + j) % len(texts)] for j in range(batch_size)]
               for k in range(repeats)]

    def plain(batch: list[str]) -> list[str]:
        return assistant.generate(batch)

    def guarded(batch: list[str]) -> list[str]:
        return [d.text for d in guard.check(assistant.generate(batch))]

    for batch in batches[:5]:  # warm-up
        plain(batch)
        guarded(batch)
    times: dict[str, list[float]] = {"unguarded": [], "guarded": []}
    for k, batch in enumerate(batches):
        order = (("unguarded", plain), ("guarded", guarded))
        for name, fn in order if k % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn(batch)
            times[name].append(time.perf_counter() - start)
    guard_only = []
    answers = [assistant.generate(b) for b in batches[:50]]
    for a in answers:
        start = time.perf_counter()
        guard.check(a)
        guard_only.append(time.perf_counter() - start)
    un, gu = statistics.median(times["unguarded"]), statistics.median(times["guarded"])
    return {"batch_size": batch_size, "repeats": repeats, "cache": cache,
            "threads": torch.get_num_threads(),
            "unguarded_median_ms": un * 1000, "guarded_median_ms": gu * 1000,
            "guard_only_median_ms": statistics.median(guard_only) * 1000,
            "ratio": gu / un}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None,
                        help="assistant model folder (default: the cached default assistant)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's own choice)")
    parser.add_argument("--out", default="benchmarks/results/guard_overhead.json")
    args = parser.parse_args()
    if args.model is None:
        from training.default_model import ensure_default_model

        args.model = str(ensure_default_model())
    from _common import isolated

    rows = [isolated(measure, model_dir=args.model, batch_size=b, cache=cache,
                     threads=args.threads,
                     repeats=args.repeats if b == 1 else max(20, args.repeats // 4))
            for cache in (True, False) for b in (1, 32)]
    print_table(rows, ["batch_size", "cache", "threads", "repeats", "unguarded_median_ms",
                       "guarded_median_ms",
                       "guard_only_median_ms", "ratio", "peak_rss_mb"])
    write_json(args.out, {"benchmark": "guard_overhead", "target_ratio": 1.10, "rows": rows})


if __name__ == "__main__":
    main()
