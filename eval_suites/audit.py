"""Audit manifests: what an evaluation ran on, so an auditor can replay it and compare."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval_suites.config import EvalConfig
from guard.atomic import write_text_atomic
from guard.config import build_model
from guard.errors import ConfigError, DataError
from guard.provenance import environment, git_revision, package_versions, sha256_file
from guard.results import RESULTS_FILE

if TYPE_CHECKING:
    from eval_suites.base import MetricSpec
    from eval_suites.evaluator import EvalOutcome, EvalPlan

MANIFEST_FILE = "manifest.json"
MANIFEST_SCHEMA = "metaverse-guard/audit-manifest"
#: 1.1 added ``config``, the evaluation configuration that replays the run; 1.2 added
#: ``suite_settings``, every suite's resolved settings, so that a replay reruns what ran even
#: when a later version changes a suite's defaults.
MANIFEST_SCHEMA_VERSION = "1.2"
#: Timing metrics in ms always get at least this much slack (sub-ms jitter is not a mismatch).
TIMING_FLOOR_MS = 5.0


def write_manifest(out: Path, outcome: EvalOutcome, run: EvalPlan) -> Path:
    """Write ``manifest.json`` beside the results: configuration, hashes, versions, metrics."""
    config, results, baseline = outcome.config, outcome.results, outcome.baseline
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.model_dump(mode="json"),
        "suite_settings": {suite.suite: suite.provenance.config for suite in results.suites},
        "invocation": {
            "model": config.model, "baseline": config.baseline,
            "policy": str(run.policy_path) if run.policy_path else None,
            "data": config.data, "split": config.split, "suites": list(run.suites),
            "options": run.options, "seed": config.seed, "device": config.device,
            "text_column": config.text_column, "label_column": config.label_column,
        },
        "hashes": {
            "model": results.model.sha256,
            "baseline_model": baseline.model.sha256 if baseline else None,
            "data": results.data.sha256,
            "policy": sha256_file(run.policy_path) if run.policy_path else None,
            "results": sha256_file(out / RESULTS_FILE),
        },
        "model_location": outcome.model_location,
        "device": results.model.device,
        "packages": package_versions(),
        "environment": environment(),
        "git_revision": git_revision(Path(__file__).parent),
        "metrics": results.metric_values(),
        "baseline_metrics": baseline.metric_values() if baseline else {},
        "gate_passed": results.gate.passed if results.gate else None,
    }
    return write_text_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")


def config_from_manifest(manifest: dict[str, Any]) -> EvalConfig:
    """The evaluation configuration a manifest records (1.0 manifests: from ``invocation``).

    From schema 1.2 the suites run and each one's options are the settings the suites
    resolved (``suite_settings``), defaults included: a replay by a later version whose
    defaults differ (say, more attack recipes) still reruns what was recorded.

    Raises:
        DataError: If the recorded configuration is not a valid one.
    """
    recorded = manifest.get("config")
    if recorded is None:  # schema 1.0: rebuild the configuration from the invocation
        invocation = manifest.get("invocation") or {}
        recorded = {key: invocation[key] for key in (
            "model", "baseline", "data", "split", "suites", "seed", "device", "text_column",
            "label_column") if key in invocation}
        recorded["gate_policy"] = invocation.get("policy")
        # the policy's confidence was filled into every suite's options; the policy adds it
        recorded["options"] = {suite: {k: v for k, v in opts.items() if k != "confidence"}
                               for suite, opts in (invocation.get("options") or {}).items()}
    settings = manifest.get("suite_settings")
    if settings is not None:
        if not isinstance(settings, dict) or not all(isinstance(v, dict)
                                                     for v in settings.values()):
            raise DataError("the manifest's suite_settings are not a mapping of suite name to "
                            "settings")
        recorded = {**recorded, "suites": list(settings),
                    "options": {name: dict(values) for name, values in settings.items()}}
    try:
        return build_model(EvalConfig, recorded, what="recorded evaluation config")
    except ConfigError as exc:
        raise DataError(f"the manifest's configuration cannot be replayed: {exc}") from exc


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
    if str(manifest.get("schema_version", "")).split(".")[0] != "1":
        raise DataError(f"{file}: manifest schema {manifest.get('schema_version')!r} is not "
                        "supported (this version reads 1.x)", path=str(file))
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


def _timing_spec(key: str) -> MetricSpec | None:
    """The spec of ``suite/metric`` when its suite declares it a timing, else ``None``.

    Metrics of suites this version does not know are compared exactly.
    """
    from eval_suites.registry import metric_spec

    suite, _, metric = key.partition("/")
    spec = metric_spec(suite, metric)
    return spec if spec is not None and spec.timing else None


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
            spec = _timing_spec(name)
            timing = spec is not None
            if spec is not None:
                slack = timing_tolerance * abs(before)
                if spec.unit == "ms":
                    slack = max(slack, TIMING_FLOOR_MS)
                same = abs(after - before) <= slack
            else:
                same = abs(after - before) <= 1e-9
            ok &= same
            prefix = "" if group == "metrics" else "baseline "
            lines.append(f"{'same' if same else 'DIFFERENT':<9} {prefix}{name} {before:.6g} -> "
                         f"{after:.6g}{' (timing)' if timing else ''}")
    return ReplayReport(ok, tuple(lines))


def replay(manifest_path: str | Path, *, out: str | Path | None = None,
           timing_tolerance: float = 0.5, progress: bool = False) -> ReplayReport:
    """Rerun the evaluation a manifest records and compare it with the record.

    Args:
        manifest_path: The ``manifest.json`` of the run.
        out: Folder for the rerun (default: ``replay`` beside the manifest).
        timing_tolerance: Relative tolerance of timing metrics (0.5 = 50%).
        progress: Show progress.

    Raises:
        DataError: If the manifest cannot be read or replayed.
    """
    from eval_suites.evaluator import evaluate

    manifest = load_manifest(manifest_path)
    folder = Path(out) if out is not None else Path(manifest_path).parent / "replay"
    evaluate(config_from_manifest(manifest), out=folder, progress=progress)
    return compare_replay(manifest, folder, timing_tolerance=timing_tolerance)
