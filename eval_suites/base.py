"""What every suite is and returns: declared metrics, estimates with intervals, provenance."""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from eval_suites.stats import Estimate
from guard.data import TextDataset
from guard.errors import ConfigError
from guard.provenance import environment, package_versions
from guard.types import Classifier


@dataclass(frozen=True)
class MetricSpec:
    """A metric a suite declares.

    Attributes:
        name: Metric name, unique within the suite (``f1/<label>`` for per-class metrics).
        higher_is_better: Direction of improvement (used by the release gate).
        unit: ``"ratio"``, ``"ms"``, ``"texts/s"``, ...
        description: One line for reports.
    """

    name: str
    higher_is_better: bool
    unit: str
    description: str = ""


@dataclass(frozen=True)
class MetricValue:
    """A measured metric: value, 95% interval and sample size.

    Attributes:
        name: Metric name.
        value: Point estimate.
        ci_low: Lower end of the 95% confidence interval.
        ci_high: Upper end of the 95% confidence interval.
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
    def of(cls, spec: MetricSpec, estimate: Estimate, *, name: str | None = None) -> MetricValue:
        """Combine a declared metric with its measured estimate."""
        return cls(
            name=name or spec.name,
            value=estimate.value,
            ci_low=estimate.low,
            ci_high=estimate.high,
            n=estimate.n,
            unit=spec.unit,
            higher_is_better=spec.higher_is_better,
            ci_method=estimate.method,
        )


@dataclass(frozen=True)
class Provenance:
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


@dataclass(frozen=True)
class SuiteResult:
    """What every suite returns.

    Attributes:
        suite: Suite name.
        metrics: Measured metrics.
        details: Non-scalar results (confusion matrix, raw timings, worst examples), JSON-ready.
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
        return dataclasses.asdict(self)


def model_info(model: Classifier) -> dict[str, Any]:
    """Location, fingerprint, labels and word recogniser (if any) of a classifier."""
    source = getattr(model, "source", None)
    return {
        "location": getattr(source, "location", None),
        "kind": getattr(source, "kind", None),
        "sha256": getattr(model, "fingerprint", None),
        "labels": list(model.labels),
        "word_recognition": getattr(getattr(model, "word_recognizer", None), "source", None),
    }


def data_info(data: TextDataset) -> dict[str, Any]:
    """Source, fingerprint and size of a data set, for provenance."""
    return {"source": data.source, "sha256": data.sha256, "n": len(data)}


@dataclass(frozen=True)
class Suite(ABC):
    """A benchmark over a classifier and a data set.

    Subclasses are frozen dataclasses whose fields are their configuration; they declare
    ``name``, ``description`` and ``metric_specs`` and implement :meth:`measure`.

    Attributes:
        confidence: Coverage of every interval the suite reports (0.95 by default).
    """

    confidence: float = 0.95
    name: ClassVar[str]
    description: ClassVar[str]
    metric_specs: ClassVar[tuple[MetricSpec, ...]]

    @abstractmethod
    def measure(self, model: Classifier, data: TextDataset, *, seed: int
                ) -> tuple[list[MetricValue], dict[str, Any]]:
        """Compute the metrics and details."""

    def spec(self, name: str) -> MetricSpec:
        """The declared metric spec called ``name``."""
        for spec in self.metric_specs:
            if spec.name == name:
                return spec
        raise ConfigError(f"suite {self.name!r} declares no metric {name!r}")

    def run(self, model: Classifier, data: TextDataset, *, seed: int = 0) -> SuiteResult:
        """Run the suite and attach provenance.

        Args:
            model: The classifier under test.
            data: Labelled evaluation rows.
            seed: Seed for everything random in the suite (bootstrap, sampling).

        Raises:
            DataError: If the data does not fit the model.
        """
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        start = time.perf_counter()
        if not 0.5 <= self.confidence < 1.0:
            raise ConfigError(f"confidence must be in [0.5, 1), got {self.confidence}")
        metrics, details = self.measure(model, data, seed=seed)
        metrics = [dataclasses.replace(m, confidence=self.confidence) for m in metrics]
        provenance = Provenance(
            model=model_info(model),
            data=data_info(data),
            config=dataclasses.asdict(self),
            seed=seed,
            device=str(getattr(model, "device", "unknown")),
            packages=package_versions(),
            environment=environment(),
            started_at=started_at,
            duration_s=round(time.perf_counter() - start, 4),
        )
        return SuiteResult(self.name, tuple(metrics), details, provenance)


def suite_from_options(cls: type[Suite], options: Mapping[str, Any] | None = None) -> Suite:
    """Instantiate ``cls`` with options, rejecting unknown ones.

    Raises:
        ConfigError: If an option is not a field of the suite.
    """
    options = dict(options or {})
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} for suite {cls.name!r}; it takes {sorted(fields)}"
        )
    return cls(**options)
