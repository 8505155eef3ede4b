"""Every GPU check and benchmark in one command: the gpu tests, then tutor and guard speed.

Runs on the first CUDA device when there is one, else on the CPU (so it can be tried
anywhere); each part has a time budget so the whole stays within about 5 minutes. Prints a
table and writes JSON (``--out``).

    python benchmarks/gpu.py [--model tutor|DIR] [--out benchmarks/results/gpu.json]

Parts: ``pytest -m gpu`` (skipped without CUDA: they need it); the tutor's batched generation
at batch 1 and 8 (tokens/s) and one streamed reply (time to first token); the default guard's
scoring throughput at batch 1 and 32; the streaming benchmark's guarded / unguarded ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import offline_defaults, print_table, write_json

QUESTIONS = ["How do volcanoes form?", "Why is the sky blue?", "What is photosynthesis?",
             "Who built the pyramids of Giza?", "How do bees make honey?",
             "What causes the seasons on Earth?", "Why do we have leap years?",
             "How does a rainbow form?"]


def _gpu_tests(device: str) -> dict[str, Any]:
    if device == "cpu":
        return {"part": "pytest -m gpu", "result": "not run: no CUDA device"}
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p",
                          "no:cacheprovider"], cwd=root, capture_output=True, text=True,
                         timeout=150)
    last = (run.stdout.strip().splitlines() or ["(no output)"])[-1]
    return {"part": "pytest -m gpu", "result": last, "rc": run.returncode}


def _tutor(model: str, device: str) -> list[dict[str, Any]]:
    import torch

    from guard.models.tutor import TutorGenerator

    rows = []
    for batch in (1, 8):
        tutor = TutorGenerator.from_pretrained(model, device=device, max_new_tokens=64,
                                               batch_size=batch, progress=False)
        tutor.generate(QUESTIONS[:1])  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        _, tokens = tutor.generated_tokens(QUESTIONS[:batch])
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rows.append({"part": f"tutor generate, batch {batch}",
                     "result": f"{tokens / seconds:.1f} tokens/s", "tokens": tokens,
                     "seconds": round(seconds, 3)})
    stream = tutor.stream(QUESTIONS[1])
    pieces = sum(1 for _ in stream)
    stream.close()
    rows.append({"part": "tutor stream, batch 1",
                 "result": f"first token {1000 * (stream.timings[0] - stream.started):.0f} ms, "
                           f"{pieces} pieces"})
    return rows


def _guard(device: str) -> list[dict[str, Any]]:
    from guard.scorers import DEFAULT_SCORER, build_scorer

    scorer = build_scorer(DEFAULT_SCORER, device=device, cache_size=0)
    texts = [f"{q} The tutor explains it step by step, number {i}." for i, q in
             enumerate(QUESTIONS * 8)]
    rows = []
    for batch in (1, 32):
        scorer.score(texts[:batch])  # warm-up
        start = time.perf_counter()
        done = 0
        while time.perf_counter() - start < 5 and done < len(texts):
            scorer.score(texts[done : done + batch])
            done += batch
        rate = done / (time.perf_counter() - start)
        rows.append({"part": f"guard score, batch {batch}", "result": f"{rate:.1f} texts/s"})
    return rows


def main() -> None:
    """Run every part and print one table."""
    offline_defaults()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tutor")
    parser.add_argument("--out", default="benchmarks/results/gpu.json")
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.perf_counter()
    rows = [_gpu_tests(device), *_tutor(args.model, device), *_guard(device)]
    streaming = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("tutor_streaming.py")), "--model",
         args.model, "--questions", "3", "--tokens", "48", "--segment", "8", "--out",
         str(Path(args.out).with_name("gpu_streaming.json"))],
        capture_output=True, text=True, timeout=200)
    ratio = [line for line in streaming.stdout.splitlines() if "guarded / unguarded" in line]
    rows.append({"part": "streaming guard (CPU, 8-token segments)",
                 "result": ratio[0] if ratio else f"failed: {streaming.stderr[-200:]}"})
    for row in rows:
        row["device"] = device
    print_table(rows, ["part", "device", "result"])
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    write_json(args.out, {"device": device, "rows": rows})


if __name__ == "__main__":
    main()
