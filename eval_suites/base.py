"""What every suite is and returns: declared metrics, estimates with intervals, provenance."""

from __future__ import annotations

import dataclasses
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from guard.data import TextDataset
from guard.errors import ConfigError
from guard.provenance import environment, package_versions
from guard.results import MetricValue, Provenance, SuiteResult
from guard.types import Classifier

#: How a metric is compared with a baseline on the same items (see :class:`MetricSpec`).
Pairing = Literal["proportion", "mean", "quantile", "none"]

# The values a metric can take, by its unit, when the spec does not say: ratios (rates,
# accuracy, recall, AUC, ECE) lie in [0, 1]; times, throughputs and counts are never negative.
_UNIT_BOUNDS: dict[str, tuple[float, float]] = {
    "ratio": (0.0, 1.0), "ms": (0.0, math.inf), "s": (0.0, math.inf),
    "texts/s": (0.0, math.inf), "tokens/s": (0.0, math.inf), "queries": (0.0, math.inf)}


@dataclass(frozen=True)
class MetricSpec:
    """A metric a suite declares: all the gate, the audit and the reports know about it.

    A spec named ``name`` also covers the per-part metrics ``name/<part>`` (``f1/<label>``,
    ``accuracy_under_attack/<recipe>``).

    Attributes:
        name: Metric name, unique within the suite.
        higher_is_better: Direction of improvement (used by the release gate).
        unit: ``"ratio"``, ``"ms"``, ``"texts/s"``, ...
        description: One line for reports.
        pairing: How a ``margin`` compares a candidate with a baseline on the same items:
            ``proportion`` (per-item 0/1 outcomes, McNemar-type interval), ``mean`` or
            ``quantile`` (per-item values, paired bootstrap), ``none`` (no margin possible).
        per_item: Where the per-item values live in the suite's details, as a dotted path;
            ``{part}`` stands for the part after ``/`` (e.g. ``recipes.{part}.robust``).
        quantile: The quantile compared, for ``quantile`` pairing.
        timing: A measured time or rate: replays compare it within a tolerance, not exactly.
        headline: Shown in summaries and plotted; ``False`` for per-class breakdowns.
        bounds: The closed range of values the metric can take; ``None``: from the unit
            (ratios [0, 1], times and counts [0, inf)), unchecked for other units.
    """

    name: str
    higher_is_better: bool
    unit: str
    description: str = ""
    pairing: Pairing = "none"
    per_item: str | None = None
    quantile: float | None = None
    timing: bool = False
    headline: bool = True
    bounds: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if (self.pairing == "none") != (self.per_item is None):
            raise ValueError(f"metric {self.name!r}: per_item is needed exactly when pairing is "
                             f"not 'none' (pairing {self.pairing!r}, per_item {self.per_item!r})")
        if (self.pairing == "quantile") != (self.quantile is not None):
            raise ValueError(f"metric {self.name!r}: quantile is needed exactly for 'quantile' "
                             "pairing")
        if self.quantile is not None and not 0.0 < self.quantile < 1.0:
            raise ValueError(f"metric {self.name!r}: quantile must be in (0, 1)")

    def covers(self, metric: str) -> bool:
        """Whether ``metric`` (``name`` or ``name/<part>``) is this spec's."""
        return metric.split("/", 1)[0] == self.name

    def value_range(self) -> tuple[float, float] | None:
        """The closed range of the metric's values, or ``None`` when unknown."""
        return self.bounds if self.bounds is not None else _UNIT_BOUNDS.get(self.unit)

    def per_item_values(self, metric: str, details: Mapping[str, Any]) -> list[float] | None:
        """The per-item values behind ``metric`` in a suite's ``details``, or ``None``.

        ``None`` when the spec is not paired or the suite did not store them (e.g. a skipped
        part of the suite).
        """
        if self.per_item is None:
            return None
        part = metric.split("/", 1)[1] if "/" in metric else ""
        node: Any = details
        for key in self.per_item.replace("{part}", part).split("."):
            if not isinstance(node, Mapping) or key not in node:
                return None
            node = node[key]
        if not isinstance(node, list):
            return None
        try:
            return [float(v) for v in node]
        except (TypeError, ValueError):  # not numbers: the gate says it cannot pair them
            return None


@dataclass(frozen=True)
class ReportView:
    """A plot or table of a suite's details that the reports draw.

    Attributes:
        kind: ``bars`` (the ``source`` metric's parts, with intervals), ``roc_curves``
            (``details[source]``: set -> category -> fpr, tpr, auc), ``histogram``
            (``details[source]``: numbers), ``table`` (``details[source]``: rows of a dict
            each), ``confusion_matrix`` (``details[source]``, labelled by ``details["labels"]``).
        source: The details key (a metric name for ``bars``).
        title: Heading or axis label.
        caption: Caption under a plot; ``{set}`` is the set's name for ``roc_curves``.
        in_markdown: Also shown in the Markdown report (sized for a PR comment).
    """

    kind: Literal["bars", "roc_curves", "histogram", "table", "confusion_matrix"]
    source: str
    title: str
    caption: str = ""
    in_markdown: bool = False


def model_info(model: Classifier) -> dict[str, Any]:
    """Location, fingerprint, labels and input defences (if any) of a classifier."""
    source = getattr(model, "source", None)
    return {
        "location": getattr(source, "location", None),
        "kind": getattr(source, "kind", None),
        "sha256": getattr(model, "fingerprint", None),
        "labels": list(model.labels),
        "word_recognition": getattr(getattr(model, "word_recognizer", None), "source", None),
        "substitution_defence": ("safer" if getattr(model, "smoother", None) is not None else
                                 "sem" if getattr(model, "synonym_encoder", None) is not None
                                 else None),
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
    report_views: ClassVar[tuple[ReportView, ...]] = ()
    #: What the suite evaluates: a ``classifier`` (the default) or a chat ``generator``.
    model_kind: ClassVar[str] = "classifier"

    @abstractmethod
    def measure(self, model: Classifier, data: TextDataset, *, seed: int
                ) -> tuple[list[MetricValue], dict[str, Any]]:
        """Compute the metrics and details."""

    @classmethod
    def spec(cls, metric: str) -> MetricSpec:
        """The declared spec of ``metric`` (``name`` or ``name/<part>``).

        Raises:
            ConfigError: If the suite declares no such metric.
        """
        for spec in cls.metric_specs:
            if spec.covers(metric):
                return spec
        raise ConfigError(f"suite {cls.name!r} declares no metric {metric!r}; it declares "
                          f"{[s.name for s in cls.metric_specs]}")

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
        metrics = [m.model_copy(update={"confidence": self.confidence}) for m in metrics]
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
        return SuiteResult(suite=self.name, metrics=tuple(metrics), details=details,
                           provenance=provenance)


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
