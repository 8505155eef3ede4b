"""Small valid results documents for tests that judge or render results without a model."""

from __future__ import annotations

from typing import Any


def results_dict(suites: list[dict[str, Any]] | None = None, *,
                 data: dict[str, Any] | None = None,
                 model: dict[str, Any] | None = None) -> dict[str, Any]:
    """The smallest valid ``results.json`` content.

    ``suites`` are given as ``suite``, ``metrics`` and ``details``; provenance is filled in.
    """
    data = data or {"sha256": "d" * 64, "n": 10, "source": "x"}
    model = model or {"location": "m", "kind": "local", "sha256": "m" * 64, "labels": ["a"],
                      "device": "cpu"}
    provenance = {"model": model, "data": data, "config": {}, "seed": 0, "device": "cpu",
                  "packages": {}, "environment": {}, "started_at": "now", "duration_s": 1.0}
    return {
        "schema": "metaverse-guard/results", "schema_version": "1.1", "created_at": "now",
        "guard_version": "test", "command": [], "git_revision": None, "seed": 0,
        "model": model, "data": data, "packages": {}, "environment": {},
        "suites": [{"details": {}, "provenance": provenance, **suite} for suite in suites or []],
    }
