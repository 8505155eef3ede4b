"""The types of ``results.json``: what every suite returns, the gate's verdict, the document.

Types only (pydantic models and the schema check): suites build them, the release gate, the
audit and every report writer read them, and ``docs/results-schema.md`` is checked against
them by a test. Models accept fields they do not know, so a reader of schema 1.x keeps what a
later 1.y writer added; :func:`unknown_fields` lists them (a writer's own output has none).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guard.errors import ConfigError, DataError

#: Name of the results file in an output folder.
RESULTS_FILE = "results.json"
#: Identifies the document type.
RESULTS_SCHEMA = "metaverse-guard/results"
#: Version of the layout in docs/results-schema.md: bump the major on incompatible changes.
RESULTS_SCHEMA_VERSION = "1.1"

Outcome = Literal["pass", "fail", "inconclusive"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _SpecLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def higher_is_better(self) -> bool: ...


class _EstimateLike(Protocol):
    @property
    def value(self) -> float: ...
    @property
    def low(self) -> float: ...
    @property
    def high(self) -> float: ...
    @property
    def n(self) -> int: ...
    @property
    def method(self) -> str: ...


class MetricValue(_Record):
    """A measured metric: value, confidence interval and sample size.

    Attributes:
        name: Metric name (``name`` or ``name/<part>``).
        value: Point estimate.
        ci_low: Lower end of the confidence interval.
        ci_high: Upper end of the confidence interval.
        n: Sample size the estimate rests on.
        unit: Unit of ``value``.
        higher_is_better: Direction of improvement.
        ci_method: How the interval was computed (``wilson``, ``bootstrap``, ...).
        confidence: Coverage of the interval.
    """

    name: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    unit: str
    higher_is_better: bool
    ci_method: str
    confidence: float = 0.95

    @classmethod
    def of(cls, spec: _SpecLike, estimate: _EstimateLike, *, name: str | None = None
           ) -> MetricValue:
        """Combine a declared metric (its ``name``, unit and direction) with an estimate."""
        return cls(name=name or spec.name, value=estimate.value,
                   ci_low=estimate.low, ci_high=estimate.high, n=estimate.n, unit=spec.unit,
                   higher_is_better=spec.higher_is_better, ci_method=estimate.method)


class Provenance(_Record):
    """Everything needed to know what a result was measured on, and to rerun it.

    Attributes:
        model: Location, fingerprint (SHA-256 of weights, config, tokenizer, word recogniser),
            labels, and the word recogniser's dictionary source (``None`` without one).
        data: Source, fingerprint of the rows, and size.
        config: The suite's resolved configuration.
        seed: Random seed.
        device: Device the model ran on.
        packages: Versions of the packages that matter.
        environment: Platform facts.
        started_at: UTC start time (ISO 8601).
        duration_s: Wall time of the suite.
    """

    model: dict[str, Any]
    data: dict[str, Any]
    config: dict[str, Any]
    seed: int
    device: str
    packages: dict[str, str]
    environment: dict[str, str]
    started_at: str
    duration_s: float


class SuiteResult(_Record):
    """What every suite returns.

    Attributes:
        suite: Suite name.
        metrics: Measured metrics.
        details: Non-scalar results (confusion matrix, raw timings, worst examples), JSON-ready;
            their layout is the suite's own (docs/results-schema.md).
        provenance: What it was measured on.
    """

    suite: str
    metrics: tuple[MetricValue, ...]
    details: dict[str, Any]
    provenance: Provenance

    def metric(self, name: str) -> MetricValue:
        """The metric called ``name``.

        Raises:
            ConfigError: If the suite has no such metric.
        """
        for metric in self.metrics:
            if metric.name == name:
                return metric
        raise ConfigError(
            f"suite {self.suite!r} has no metric {name!r}; it has "
            f"{[m.name for m in self.metrics]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (the layout documented in docs/results-schema.md)."""
        return self.model_dump(mode="json")


class ModelInfo(_Record):
    """The model a document is about.

    Attributes:
        location: Folder or hub id.
        kind: ``local`` or ``hub``.
        sha256: Fingerprint of weights, config, tokenizer, word recogniser and substitution
            defence (null for hub).
        labels: Class names in output order.
        word_recognition: The word recogniser's dictionary source, or null.
        substitution_defence: ``safer`` or ``sem`` when the checkpoint carries one, or null.
        device: Device it ran on.
        manifest: The checkpoint's ``manifest.json`` when ``guard train`` wrote it, else null.
    """

    location: str | None
    kind: str | None
    sha256: str | None
    labels: list[str]
    word_recognition: Any = None
    substitution_defence: str | None = None
    device: str
    manifest: dict[str, Any] | None = None


class DataInfo(_Record):
    """The rows evaluated.

    Attributes:
        source: ``bundled:test`` or a file path.
        sha256: Fingerprint of the rows (texts and labels in order).
        n: Rows.
    """

    source: str
    sha256: str
    n: int


class PolicyInfo(_Record):
    """The release-gate policy judged.

    Attributes:
        path: The policy file.
        sha256: Its SHA-256.
        resolved: The validated policy, defaults filled in.
    """

    path: str
    sha256: str
    resolved: dict[str, Any]


class GateCheck(_Record):
    """One judged limit.

    Attributes:
        name: Human-readable check, e.g. ``accuracy >= 0.9``.
        suite: Suite of the metric.
        metric: Metric name.
        kind: ``min``, ``max`` or ``margin``.
        outcome: ``pass``, ``fail`` or ``inconclusive``.
        limit: The limit; for ``margin`` the boundary of candidate minus baseline (``-margin``
            when higher is better, ``+margin`` when lower is better).
        value: The candidate's value (for ``margin``: candidate minus baseline).
        ci_low: Lower bound used.
        ci_high: Upper bound used.
        n: Sample size.
        method: How the bounds were computed.
        baseline_value: The baseline's value, for margins.
        explanation: One sentence saying why.
    """

    name: str
    suite: str
    metric: str
    kind: Literal["min", "max", "margin"]
    outcome: Outcome
    limit: float
    value: float
    ci_low: float
    ci_high: float
    n: int
    method: str
    baseline_value: float | None
    explanation: str


class GateResult(_Record):
    """The verdict on a candidate.

    Attributes:
        passed: True when no check failed (inconclusive checks count as the policy says).
        confidence: Coverage of the intervals used.
        inconclusive_counts_as: ``fail`` or ``pass``.
        checks: Every check, in policy order.
    """

    passed: bool
    confidence: float
    inconclusive_counts_as: Literal["fail", "pass"]
    checks: tuple[GateCheck, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return self.model_dump(mode="json")


class ResultsDocument(_Record):
    """A ``results.json`` document (layout: docs/results-schema.md).

    Attributes:
        schema_name: Always ``metaverse-guard/results`` (the ``schema`` key in JSON).
        schema_version: ``MAJOR.MINOR``; readers refuse another major.
        created_at: UTC time, ISO 8601.
        guard_version: Version of metaverse-guard that wrote it.
        command: The ``guard`` command line that reproduces it.
        git_revision: Commit of the metaverse-guard source, when run from a checkout.
        seed: Seed of every suite.
        model: The model evaluated.
        data: The rows evaluated.
        packages: Versions of the packages that matter.
        environment: Platform facts.
        suites: One result per suite, in the order run.
        policy: The release-gate policy, when one was judged.
        gate: The gate's verdict, when a policy was judged.
    """

    schema_name: Literal["metaverse-guard/results"] = Field("metaverse-guard/results",
                                                            alias="schema")
    schema_version: str = RESULTS_SCHEMA_VERSION
    created_at: str
    guard_version: str
    command: list[str]
    git_revision: str | None
    seed: int
    model: ModelInfo
    data: DataInfo
    packages: dict[str, str]
    environment: dict[str, str]
    suites: tuple[SuiteResult, ...]
    policy: PolicyInfo | None = None
    gate: GateResult | None = None

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    def suite(self, name: str) -> SuiteResult | None:
        """The result of suite ``name``, or ``None`` when it was not run."""
        return next((result for result in self.suites if result.suite == name), None)

    def metric_values(self) -> dict[str, float]:
        """``{"suite/metric": value}`` for every metric (what manifests and replays compare)."""
        return {f"{s.suite}/{m.name}": m.value for s in self.suites for m in s.metrics}

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout; ``policy`` and ``gate`` only when a policy was judged."""
        data = self.model_dump(mode="json", by_alias=True)
        for key in ("policy", "gate"):
            if data[key] is None:
                del data[key]
        return data

    def to_json(self) -> str:
        """The document as written to ``results.json`` (indented, UTF-8, newline-terminated)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def parse_results(data: Any, *, source: str = "results") -> ResultsDocument:
    """Check the schema and version of a decoded results document, and type it.

    The one place the schema version is checked: every reader goes through here.

    Raises:
        DataError: If it is not a metaverse-guard results document, is of another major
            version, or does not fit the schema (the message names the fields).
    """
    if not isinstance(data, dict) or data.get("schema") != RESULTS_SCHEMA:
        raise DataError(f"{source}: not a metaverse-guard results file", path=source)
    version = str(data.get("schema_version", ""))
    supported = RESULTS_SCHEMA_VERSION.split(".")[0]
    if version.split(".")[0] != supported:
        raise DataError(f"{source}: results schema {version!r} is not supported (this version "
                        f"reads {supported}.x); upgrade metaverse-guard", path=source)
    try:
        return ResultsDocument.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise DataError(f"{source}: results do not fit schema {version}: {problems}",
                        path=source) from None


def load_results(path: str | Path) -> ResultsDocument:
    """Read, check and type a ``results.json`` file.

    Raises:
        DataError: If the file is missing, not JSON, or not a supported results document.
    """
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{file}: cannot read results: {exc}", path=str(file)) from exc
    return parse_results(data, source=str(file))


def unknown_fields(record: BaseModel, where: str = "") -> Iterator[str]:
    """Dotted paths of the fields in ``record`` (recursively) that its model does not declare.

    A document read from a later minor version may have some; one this version wrote has none
    (a test checks it, so a field added to a writer but not to the models is caught).
    """
    for name in record.model_extra or {}:
        yield f"{where}{name}"
    for name in type(record).model_fields:
        value = getattr(record, name)
        children = value if isinstance(value, tuple | list) else (value,)
        for index, child in enumerate(children):
            if isinstance(child, BaseModel):
                suffix = f"[{index}]" if isinstance(value, tuple | list) else ""
                yield from unknown_fields(child, f"{where}{name}{suffix}.")
