"""Audit manifests: what an evaluation ran on, so an auditor can replay it and compare."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from guard.atomic import write_text_atomic
from guard.errors import DataError
from guard.provenance import environment, git_revision, package_versions, sha256_file

MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA = "metaverse-guard/audit-manifest"
#: Suites whose metrics are timings: compared with a tolerance on replay, not exactly.
TIMING_SUITES = frozenset({"latency"})
#: Timing metrics in ms always get at least this much slack (sub-ms jitter is not a mismatch).
TIMING_FLOOR_MS = 5.0


def _metric_values(document: dict[str, Any] | None) -> dict[str, float]:
    if document is None:
        return {}
    return {f"{s['suite']}/{m['name']}": m["value"] for s in document["suites"]
            for m in s["metrics"]}


def write_manifest(out: Path, *, args: argparse.Namespace, model_dir: str, suites: list[str],
                   options: dict[str, dict[str, Any]], document: dict[str, Any],
                   baseline: dict[str, Any] | None, policy_path: Path | None) -> Path:
    """Write ``manifest.json`` beside the results: invocation, hashes, versions, metrics."""
    results = out / "results.json"
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "schema_version": "1.0",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "invocation": {
            "model": args.model, "baseline": args.baseline,
            "policy": str(policy_path) if policy_path else None,
            "data": args.data, "split": args.split, "suites": suites, "options": options,
            "seed": args.seed, "device": args.device, "text_column": args.text_column,
            "label_column": args.label_column,
        },
        "hashes": {
            "model": document["model"]["sha256"],
            "baseline_model": baseline["model"]["sha256"] if baseline else None,
            "data": document["data"]["sha256"],
            "policy": sha256_file(policy_path) if policy_path else None,
            "results": sha256_file(results),
        },
        "model_location": model_dir,
        "device": document["model"]["device"],
        "packages": package_versions(),
        "environment": environment(),
        "git_revision": git_revision(Path(__file__).parent),
        "metrics": _metric_values(document),
        "baseline_metrics": _metric_values(baseline),
        "gate_passed": document["gate"]["passed"] if document.get("gate") else None,
    }
    return write_text_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read an audit manifest.

    Raises:
        DataError: If the file is missing or not a manifest.
    """
    file = Path(path)
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{file}: cannot read the manifest: {exc}", path=str(file)) from exc
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        raise DataError(f"{file}: not a metaverse-guard audit manifest", path=str(file))
    return manifest


@dataclass(frozen=True)
class ReplayReport:
    """The comparison of a replay with its manifest.

    Attributes:
        matches: Hashes equal, deterministic metrics equal, timings within tolerance.
        lines: One line per hash and metric compared.
    """

    matches: bool
    lines: tuple[str, ...]


def compare_replay(manifest: dict[str, Any], replay_out: Path, *,
                   timing_tolerance: float) -> ReplayReport:
    """Compare a replay's results with the manifest it came from.

    Deterministic metrics must be equal (to 1e-9). Timing metrics may differ by
    ``timing_tolerance`` relative, and metrics in ms by at least :data:`TIMING_FLOOR_MS`.
    """
    replayed = json.loads((replay_out / MANIFEST_FILE).read_text(encoding="utf-8"))
    ok = True
    lines = []
    for key in ("model", "baseline_model", "data", "policy"):
        before, after = manifest["hashes"][key], replayed["hashes"][key]
        same = before == after
        ok &= same
        lines.append(f"{'same' if same else 'DIFFERENT':<9} {key} hash "
                     f"{str(before)[:12]} -> {str(after)[:12]}")
    for group in ("metrics", "baseline_metrics"):
        for name, before in manifest[group].items():
            after = replayed[group].get(name)
            if after is None:
                ok = False
                lines.append(f"MISSING   {name}")
                continue
            timing = name.split("/")[0] in TIMING_SUITES
            if timing:
                slack = timing_tolerance * abs(before)
                if name.endswith("_ms"):
                    slack = max(slack, TIMING_FLOOR_MS)
                same = abs(after - before) <= slack
            else:
                same = abs(after - before) <= 1e-9
            ok &= same
            prefix = "" if group == "metrics" else "baseline "
            lines.append(f"{'same' if same else 'DIFFERENT':<9} {prefix}{name} {before:.6g} -> "
                         f"{after:.6g}{' (timing)' if timing else ''}")
    return ReplayReport(ok, tuple(lines))
