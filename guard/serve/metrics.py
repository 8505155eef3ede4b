"""Prometheus metrics of ``guard serve``, in a registry of their own (one per app)."""

from __future__ import annotations

import os
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

Endpoint = Literal["chat", "moderations", "other"]
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class ServeMetrics:
    """The counters and histograms ``/metrics`` exposes.

    - ``guard_requests_total{endpoint,status}``: requests answered, by HTTP status.
    - ``guard_outputs_total{endpoint,action}``: replies and moderation inputs by what the guard
      did: ``allow``, ``redact``, ``block`` (a harmful text), ``error`` (the guard could not
      score, so the text was not released).
    - ``guard_scorer_errors_total{cause}``: texts whose check failed, by cause: ``deadline``
      (the scoring call overran), ``refused`` (too many overrunning calls still running),
      ``too_long`` (longer than the guard takes), ``error`` (the scorer raised, or returned
      invalid scores).
    - ``guard_upstream_errors_total{status}``: upstream failures, by the status answered.
    - ``guard_request_duration_seconds{endpoint}``: until the last byte of the response.
    - ``guard_time_to_first_content_seconds``: until a stream's first checked text.
    - ``guard_requests_in_flight``: requests being answered.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("guard_requests", "Requests answered, by HTTP status.",
                                ["endpoint", "status"], registry=r)
        self.outputs = Counter("guard_outputs", "Replies and moderation inputs by the guard's "
                               "action.", ["endpoint", "action"], registry=r)
        self.scorer_errors = Counter("guard_scorer_errors", "Texts whose check failed, by "
                                     "cause.", ["cause"], registry=r)
        self.upstream_errors = Counter("guard_upstream_errors", "Upstream failures, by the "
                                       "status answered.", ["status"], registry=r)
        self.duration = Histogram("guard_request_duration_seconds", "Request duration, to the "
                                  "last byte.", ["endpoint"], buckets=_LATENCY_BUCKETS,
                                  registry=r)
        self.first_content = Histogram("guard_time_to_first_content_seconds", "Time to a "
                                       "stream's first checked text.",
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("guard_requests_in_flight", "Requests being answered.",
                               registry=r, multiprocess_mode="livesum")

    def render(self) -> bytes:
        """The metrics in Prometheus' text format.

        With ``PROMETHEUS_MULTIPROC_DIR`` set (several worker processes), the values of every
        worker are read from that folder and summed, as prometheus-client's multiprocess
        mode does.
        """
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
