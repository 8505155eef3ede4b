"""Streaming guard overhead: the tutor's reply streamed raw, or through the output guard.

The same questions are streamed by the tutor (the embedded SmolLM2 by default) unguarded (text
shown as the model writes it) and guarded (``OutputGuard.default().stream``: each segment is
shown once it and the look-behind window before it are checked), interleaved so drift in machine
speed hits both alike. Reported per mode: time to first shown text, tokens (pieces) per second
over the whole reply, and the ratios guarded / unguarded. Target: <= 1.10 on CPU. The guarded
run releases text a segment at a time (``--segment sentences`` or ``--segment N`` tokens), so
its time to first text also waits for the first segment to end. Each mode runs in its own
process, so peak RSS is the mode's own.

    python benchmarks/tutor_streaming.py [--model tutor|DIR] [--questions 6] [--tokens 64]
                                         [--segment sentences|N] [--threads N] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _common import isolated, offline_defaults, print_table, write_json

QUESTIONS = ["How do volcanoes form?", "Why is the sky blue?", "What is photosynthesis?",
             "Who built the pyramids of Giza?", "How do bees make honey?",
             "What causes the seasons on Earth?", "Why do we have leap years?",
             "How does a rainbow form?"]


def measure(model: str, guarded: bool, questions: int, tokens: int, segment: str,
            threads: int | None) -> dict[str, Any]:
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    from guard import OutputGuard
    from guard.models.tutor import TutorGenerator

    tutor = TutorGenerator.from_pretrained(model, device="cpu", max_new_tokens=tokens,
                                           progress=False)
    guard = OutputGuard.default() if guarded else None
    segments = None if segment == "sentences" else int(segment)
    first_s, rates = [], []
    for question in (QUESTIONS * 4)[: questions + 1]:
        source = tutor.stream(question)
        shown = source if guard is None else guard.stream(source, tokens=segments)
        first = None
        for _ in shown:
            first = first if first is not None else time.perf_counter()
        end = time.perf_counter()
        source.close()
        if first is None:
            continue
        first_s.append(first - source.started)
        rates.append(len(source.timings) / max(end - source.started, 1e-9))
    first_s, rates = first_s[1:], rates[1:]  # the first reply warms the model and the scorer
    return {"mode": "guarded" if guarded else "unguarded", "replies": len(first_s),
            "time_to_first_text_ms": 1000 * statistics.median(first_s),
            "tokens_per_s": statistics.median(rates)}


def main() -> None:
    """Measure both modes and print the ratios."""
    offline_defaults()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tutor")
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--segment", default="sentences")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/tutor_streaming.json")
    args = parser.parse_args()
    common = {"model": args.model, "questions": args.questions, "tokens": args.tokens,
              "segment": args.segment, "threads": args.threads}
    rows = [isolated(measure, guarded=False, **common), isolated(measure, guarded=True, **common)]
    plain, guarded = rows
    ratios = {"time_to_first_text": guarded["time_to_first_text_ms"] /
              plain["time_to_first_text_ms"],
              "tokens_per_s": plain["tokens_per_s"] / guarded["tokens_per_s"]}
    print_table(rows, ["mode", "replies", "time_to_first_text_ms", "tokens_per_s",
                       "peak_rss_mb"])
    print(f"\nguarded / unguarded: time to first text {ratios['time_to_first_text']:.3f}, "
          f"time per token {ratios['tokens_per_s']:.3f} (target <= 1.10)")
    write_json(args.out, {"settings": common, "rows": rows, "ratios": ratios})


if __name__ == "__main__":
    main()
