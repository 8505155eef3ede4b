"""The ``accuracy`` suite: accuracy, macro-F1, per-class F1 and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from eval_suites.base import MetricSpec, ReportView, Suite
from eval_suites.stats import f1_scores, wilson_interval
from guard.data import TextDataset
from guard.errors import DataError
from guard.results import MetricValue
from guard.types import Classifier


@dataclass(frozen=True)
class AccuracySuite(Suite):
    """How often the classifier is right, overall and per class.

    Attributes:
        bootstrap_resamples: Resamples for the F1 intervals.
        worst_examples: How many misclassified examples (most confident first) to keep.
    """

    name: ClassVar[str] = "accuracy"
    description: ClassVar[str] = "accuracy, macro-F1, per-class F1, confusion matrix"
    metric_specs: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("accuracy", True, "ratio", "share of texts classified correctly",
                   pairing="proportion", per_item="correct"),
        MetricSpec("macro_f1", True, "ratio", "unweighted mean of per-class F1"),
        MetricSpec("f1", True, "ratio", "F1 of one class (reported as f1/<label>)",
                   headline=False),
    )
    report_views: ClassVar[tuple[ReportView, ...]] = (
        ReportView("table", "worst_examples", "Worst examples", in_markdown=True),
        ReportView("confusion_matrix", "confusion_matrix",
                   "Confusion matrix (rows: true, columns: predicted)"),
    )

    bootstrap_resamples: int = 1000
    worst_examples: int = 10

    def measure(self, model: Classifier, data: TextDataset, *, seed: int
                ) -> tuple[list[MetricValue], dict[str, Any]]:
        """Predict every text and score the predictions."""
        labels = list(model.labels)
        unknown = sorted(set(data.labels) - set(labels))
        if unknown:
            raise DataError(
                f"{data.source}: labels {unknown} are not among the model's labels {labels}; "
                "evaluate on data with the model's labels"
            )
        index = {label: i for i, label in enumerate(labels)}
        probs = model.predict_proba(data.texts)
        predictions = probs.argmax(axis=1)
        references = np.array([index[label] for label in data.labels])
        correct = int((predictions == references).sum())
        accuracy = wilson_interval(correct, len(data), confidence=self.confidence)
        macro, per_class = f1_scores(references, predictions, len(labels),
                                     resamples=self.bootstrap_resamples, seed=seed,
                                     confidence=self.confidence)
        metrics = [
            MetricValue.of(self.spec("accuracy"), accuracy),
            MetricValue.of(self.spec("macro_f1"), macro),
            *(MetricValue.of(self.spec("f1"), est, name=f"f1/{label}")
              for label, est in zip(labels, per_class, strict=True) if est.n > 0),
        ]
        confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
        np.add.at(confusion, (references, predictions), 1)
        wrong = np.flatnonzero(predictions != references)
        wrong = wrong[np.argsort(-probs[wrong, predictions[wrong]], kind="stable")]
        details = {
            "labels": labels,
            # per item, in data order: what paired comparisons with a baseline need
            "correct": (predictions == references).astype(int).tolist(),
            "confusion_matrix": confusion.tolist(),
            "worst_examples": [
                {"text": data.texts[i], "label": data.labels[i],
                 "predicted": labels[predictions[i]],
                 "confidence": round(float(probs[i, predictions[i]]), 4)}
                for i in wrong[: self.worst_examples]
            ],
        }
        return metrics, details
