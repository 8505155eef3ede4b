"""The learned default scorer's speed and memory, beside the lexical scorer, in one run.

Each configuration runs in a fresh process on the CPU (or CUDA when ``--cuda`` and present):

* ``profanity-linear``: the fast lexical scorer (NumPy bag of words), the old default;
* ``harm-minilm`` at 1 and 2 intra-op threads, fp32;
* ``harm-minilm`` int8 (dynamic quantisation of the encoder's linear layers), 1 thread.

For each: batch-1 latency (p50, p95) of a 40-token reply, throughput at batch 32, peak RSS,
and the ROC AUC of the overall harm score on the external evaluation set
(``eval_suites/data/toxicity/external.jsonl``), so int8's quality cost sits beside its speed.
The score cache is off: every call is scored.

    python benchmarks/harm_scorer.py [--repeats 200] [--cuda] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from _common import isolated, offline_defaults, print_table, write_json

REPLY = ("Sure! The sky gondola leaves every ten minutes from the north station, and the "
         "museum's dinosaur hall is on the second floor, next to the planetarium and the cafe.")


def _external() -> tuple[list[str], list[int]]:
    from eval_suites.toxicity import DATA_DIR

    rows = [json.loads(line) for line in
            (DATA_DIR / "external.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return [r["text"] for r in rows], [int(r["harmful"]) for r in rows]


def measure(name: str, threads: int, quantize: bool, device: str, repeats: int) -> dict[str, Any]:
    import torch

    offline_defaults()
    torch.set_num_threads(threads)
    from eval_suites.stats import roc_auc
    from guard.normalize import normalize
    from guard.scorers import build_scorer

    options: dict[str, Any] = {}
    if name == "harm-minilm":
        options = {"device": device, "quantize": quantize, "cache_size": 0}
    start = time.perf_counter()
    scorer = build_scorer(name, **options)
    load_s = time.perf_counter() - start
    reply = normalize(REPLY).text
    tokens = None
    if name == "harm-minilm":
        tokens = len(scorer.encoder.tokenizer(reply, add_special_tokens=False)["input_ids"])
    for _ in range(5):
        scorer.score([reply])
    single = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        scorer.score([reply])
        single.append(time.perf_counter() - t0)
    texts, labels = _external()
    texts = [normalize(t).text for t in texts]
    batches = [texts[i : i + 32] for i in range(0, len(texts), 32)]
    t0 = time.perf_counter()
    scores = []
    for batch in batches:
        values = scorer.score(batch)
        scores.extend(max(values[c][j] for c in values) for j in range(len(batch)))
    elapsed = time.perf_counter() - t0
    quantiles = statistics.quantiles(single, n=20)
    return {"scorer": name, "device": device, "threads": threads, "int8": quantize,
            "reply_tokens": tokens, "load_s": load_s,
            "batch1_p50_ms": statistics.median(single) * 1000,
            "batch1_p95_ms": quantiles[18] * 1000,
            "batch32_texts_per_s": len(texts) / elapsed,
            "external_roc_auc": roc_auc(labels, scores), "n_external": len(texts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--cuda", action="store_true", help="add a CUDA row (needs a GPU)")
    parser.add_argument("--out", default="benchmarks/results/harm_scorer.json")
    args = parser.parse_args()
    configs = [("profanity-linear", 1, False, "cpu"), ("harm-minilm", 1, False, "cpu"),
               ("harm-minilm", 2, False, "cpu"), ("harm-minilm", 1, True, "cpu")]
    if args.cuda:
        configs.append(("harm-minilm", 1, False, "cuda"))
    rows = [isolated(measure, name=n, threads=t, quantize=q, device=d, repeats=args.repeats)
            for n, t, q, d in configs]
    fp32 = next(r for r in rows if r["scorer"] == "harm-minilm" and r["threads"] == 1
                and not r["int8"] and r["device"] == "cpu")
    for row in rows:
        row["p50_vs_harm_fp32_1t"] = row["batch1_p50_ms"] / fp32["batch1_p50_ms"]
        row["auc_change_vs_fp32"] = row["external_roc_auc"] - fp32["external_roc_auc"]
    print_table(rows, ["scorer", "device", "threads", "int8", "batch1_p50_ms", "batch1_p95_ms",
                       "batch32_texts_per_s", "external_roc_auc", "auc_change_vs_fp32",
                       "p50_vs_harm_fp32_1t", "peak_rss_mb"])
    write_json(args.out, {"benchmark": "harm_scorer", "reply": REPLY, "rows": rows})


if __name__ == "__main__":
    main()
