"""The ``latency`` suite: per-request latency at batch 1 and throughput at batch 32."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from eval_suites.base import MetricSpec, ReportView, Suite
from eval_suites.stats import mean_interval, quantile_interval
from guard.data import TextDataset
from guard.errors import ConfigError
from guard.results import MetricValue
from guard.types import Classifier


def _thread_count() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return int(torch.get_num_threads())


@dataclass(frozen=True)
class LatencySuite(Suite):
    """How long one request takes, and how many texts per second a batch gets through.

    Timings are wall-clock around ``predict_proba`` (tokenisation, inference and the copy of the
    result to host memory, which also waits for a GPU to finish). Warm-up calls are made first
    and excluded.

    Attributes:
        requests: Timed single-text requests.
        warmup: Untimed requests before timing starts.
        batch_size: Batch size for the throughput measurement.
        batches: Timed batches for throughput.
        batch_warmup: Untimed batches before timing starts.
    """

    name: ClassVar[str] = "latency"
    description: ClassVar[str] = "p50/p95/p99 latency at batch 1, throughput at batch 32"
    metric_specs: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("latency_p50_ms", False, "ms", "median time of one single-text request",
                   pairing="quantile", per_item="latencies_ms", quantile=0.50, timing=True),
        MetricSpec("latency_p95_ms", False, "ms", "95th percentile single-request time",
                   pairing="quantile", per_item="latencies_ms", quantile=0.95, timing=True),
        MetricSpec("latency_p99_ms", False, "ms", "99th percentile single-request time",
                   pairing="quantile", per_item="latencies_ms", quantile=0.99, timing=True),
        MetricSpec("latency_mean_ms", False, "ms", "mean single-request time",
                   pairing="mean", per_item="latencies_ms", timing=True),
        MetricSpec("throughput", True, "texts/s", "texts per second at the batch size",
                   timing=True),
    )
    report_views: ClassVar[tuple[ReportView, ...]] = (
        ReportView("histogram", "latencies_ms", "latency",
                   "Latency distribution of single requests (ms)"),
    )

    requests: int = 200
    warmup: int = 10
    batch_size: int = 32
    batches: int = 20
    batch_warmup: int = 2

    def __post_init__(self) -> None:
        for field_name in ("requests", "batch_size", "batches"):
            if getattr(self, field_name) < 1:
                raise ConfigError(f"latency suite: {field_name} must be >= 1")
        if self.warmup < 0 or self.batch_warmup < 0:
            raise ConfigError("latency suite: warm-up counts must be >= 0")

    def measure(self, model: Classifier, data: TextDataset, *, seed: int
                ) -> tuple[list[MetricValue], dict[str, Any]]:
        """Time single requests, then batches, on texts drawn from ``data`` with ``seed``."""
        rng = np.random.default_rng(seed)
        pool = data.texts
        single = [pool[i] for i in rng.integers(0, len(pool), self.warmup + self.requests)]
        for text in single[: self.warmup]:
            model.predict_proba([text])
        latencies_ms = []
        for text in single[self.warmup :]:
            start = time.perf_counter()
            model.predict_proba([text])
            latencies_ms.append((time.perf_counter() - start) * 1000.0)
        n_batches = self.batch_warmup + self.batches
        batch_idx = rng.integers(0, len(pool), (n_batches, self.batch_size))
        rates = []
        for b in range(n_batches):
            texts = [pool[i] for i in batch_idx[b]]
            start = time.perf_counter()
            model.predict_proba(texts)
            elapsed = time.perf_counter() - start
            if b >= self.batch_warmup:
                rates.append(self.batch_size / elapsed)
        lat = np.asarray(latencies_ms)
        level = self.confidence
        metrics = [
            *(MetricValue.of(self.spec(f"latency_p{round(q * 100)}_ms"),
                             quantile_interval(lat, q, confidence=level))
              for q in (0.50, 0.95, 0.99)),
            MetricValue.of(self.spec("latency_mean_ms"),
                           mean_interval(lat, seed=seed, confidence=level)),
            MetricValue.of(self.spec("throughput"),
                           mean_interval(rates, seed=seed, confidence=level)),
        ]
        details = {
            "device": str(getattr(model, "device", "unknown")),
            "torch_threads": _thread_count(),
            "batch_size": self.batch_size,
            "latencies_ms": [round(x, 4) for x in latencies_ms],
            "throughput_per_batch": [round(x, 2) for x in rates],
        }
        return metrics, details
