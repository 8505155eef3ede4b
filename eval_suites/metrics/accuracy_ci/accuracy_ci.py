"""Accuracy with a Wilson 95% confidence interval (metaverse-guard)."""

import datasets
import evaluate

from eval_suites.stats import wilson_interval

_DESCRIPTION = """
Share of predictions equal to the references, with the Wilson score interval, which keeps its
coverage near 0 and 1 where the normal-approximation interval does not.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): Predicted labels.
    references (list of int): Ground truth labels.
    confidence (float): Interval coverage, default 0.95.
Returns:
    accuracy (float), accuracy_ci_low (float), accuracy_ci_high (float), n (int)
Examples:
    >>> metric = evaluate.load("path/to/accuracy_ci")
    >>> metric.compute(predictions=[0, 1], references=[0, 0])["accuracy"]
    0.5
"""

_CITATION = """
@article{wilson1927,
  title={Probable inference, the law of succession, and statistical inference},
  author={Wilson, Edwin B.},
  journal={Journal of the American Statistical Association},
  volume={22}, number={158}, pages={209--212}, year={1927}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AccuracyCi(evaluate.Metric):
    """Accuracy with a Wilson interval."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, confidence=0.95):
        correct = sum(int(p == r) for p, r in zip(predictions, references, strict=True))
        est = wilson_interval(correct, len(references), confidence=confidence)
        return {"accuracy": est.value, "accuracy_ci_low": est.low, "accuracy_ci_high": est.high,
                "n": est.n}
