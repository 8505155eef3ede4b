"""Our detoxify backend vs ``detoxify.Detoxify.predict``: same checkpoint, texts, device.

Builds a detoxify-format checkpoint from the shipped all-MiniLM-L6-v2 (fine-tuned for a few
seconds on the even rows of the labelled toxicity set, so the scores mean something), then scores
the same texts three ways, each in a fresh process on the CPU:

* ``detoxify``: ``Detoxify(checkpoint=...).predict`` called on batches of 32 in input order;
* ``ours-fp32``: ``DetoxifyScorer`` (length-sorted batches of 32, dynamic padding,
  inference mode); scores must equal detoxify's within 1e-4;
* ``ours-int8``: the same with dynamic int8 quantisation of the linear layers; its ROC AUC on the
  held-out odd rows of the labelled set is compared with fp32's.

Targets: fp32 >= 1.4x detoxify's throughput, int8 >= 3x with |ROC AUC change| <= 0.005.

    python benchmarks/detoxify_throughput.py [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import isolated, print_table, write_json

BATCH = 32


def _texts() -> tuple[list[str], list[int]]:
    from eval_suites.toxicity import DATA_DIR
    from guard.data import load_eval_data

    rows = [json.loads(line) for line in (DATA_DIR / "labeled.jsonl").read_text().splitlines()]
    texts = [r["text"] for r in rows] + list(load_eval_data("bundled").texts)
    return texts * 2, [int(r["label"]) for r in rows]


def build_checkpoint(folder: Path, *, epochs: int = 4, seed: int = 0) -> Path:
    """A detoxify-format MiniLM checkpoint with one class, ``toxic``, trained on even rows."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    from eval_suites.toxicity import DATA_DIR
    from guard.models.source import default_backbone_path

    torch.manual_seed(seed)
    backbone = default_backbone_path()
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = BertForSequenceClassification.from_pretrained(backbone, num_labels=1)
    rows = [json.loads(line) for line in (DATA_DIR / "labeled.jsonl").read_text().splitlines()]
    train = rows[0::2]
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train)).tolist()
        for start in range(0, len(order), 16):
            batch = [train[i] for i in order[start : start + 16]]
            enc = tokenizer([r["text"] for r in batch], padding=True, truncation=True,
                            max_length=64, return_tensors="pt")
            target = torch.tensor([[float(r["label"])] for r in batch])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**enc).logits,
                                                                        target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    hf = folder / "hf"
    model.config.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    path = folder / "minilm-toxic.ckpt"
    torch.save({"config": {"arch": {"args": {"model_type": str(hf),
                                             "model_name": "BertForSequenceClassification",
                                             "tokenizer_name": "BertTokenizer",
                                             "num_classes": 1}},
                           "dataset": {"args": {"classes": ["toxic"]}}},
                "state_dict": model.state_dict()}, path)
    return path


def run_variant(variant: str, checkpoint: str, repeats: int) -> dict[str, Any]:
    import torch

    texts, _ = _texts()
    hf = str(Path(checkpoint).parent / "hf")
    if variant == "detoxify":
        from detoxify import Detoxify

        model = Detoxify(checkpoint=checkpoint, device="cpu", huggingface_config_path=hf)

        def score() -> list[float]:
            out: list[float] = []
            for start in range(0, len(texts), BATCH):
                values = model.predict(texts[start : start + BATCH])["toxicity"]
                out.extend(values if isinstance(values, list) else [values])
            return out
    else:
        from guard.scorers.detoxify import DetoxifyScorer

        scorer = DetoxifyScorer(checkpoint, huggingface_config_path=hf, device="cpu",
                                batch_size=BATCH, quantize=variant == "ours-int8")

        def score() -> list[float]:
            return [float(v) for v in scorer.score(texts)["toxicity"]]

    scores = score()  # warm-up, and the scores compared
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        score()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"variant": variant, "texts": len(texts), "torch_threads": torch.get_num_threads(),
            "median_s": median, "texts_per_s": len(texts) / median, "scores": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/detoxify_throughput.json")
    args = parser.parse_args()
    from eval_suites.stats import roc_auc

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = str(isolated(_build, folder=tmp)["checkpoint"])
        runs = {v: isolated(run_variant, variant=v, checkpoint=checkpoint, repeats=args.repeats)
                for v in ("detoxify", "ours-fp32", "ours-int8")}
    _, labels = _texts()
    held_out = slice(1, len(labels), 2)
    scores = {name: run.pop("scores") for name, run in runs.items()}
    base = runs["detoxify"]
    rows = []
    for name, run in runs.items():
        diff = max(abs(a - b) for a, b in zip(scores[name], scores["detoxify"], strict=True))
        rows.append({**run, "speedup": run["texts_per_s"] / base["texts_per_s"],
                     "max_abs_diff": diff,
                     "roc_auc_held_out": roc_auc(labels[held_out],
                                                 scores[name][: len(labels)][held_out])})
    auc = {r["variant"]: r["roc_auc_held_out"] for r in rows}
    print_table(rows, ["variant", "texts", "median_s", "texts_per_s", "speedup", "max_abs_diff",
                       "roc_auc_held_out", "peak_rss_mb"])
    print(f"\nint8 ROC AUC change vs fp32: {auc['ours-int8'] - auc['ours-fp32']:+.4f}")
    write_json(args.out, {"benchmark": "detoxify_throughput",
                          "targets": {"fp32_speedup": 1.4, "int8_speedup": 3.0,
                                      "fp32_max_abs_diff": 1e-4, "int8_auc_change": 0.005},
                          "int8_auc_change": auc["ours-int8"] - auc["ours-fp32"],
                          "rows": rows})


def _build(folder: str) -> dict[str, Any]:
    return {"checkpoint": str(build_checkpoint(Path(folder)))}


if __name__ == "__main__":
    main()
