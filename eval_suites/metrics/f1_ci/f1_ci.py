"""Macro and per-class F1 with percentile-bootstrap 95% intervals (metaverse-guard)."""

import datasets
import evaluate

from eval_suites.stats import f1_scores

_DESCRIPTION = """
Macro-averaged F1 (over classes present in references or predictions, as scikit-learn does) and
the F1 of every class, each with a percentile-bootstrap interval over resampled examples.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of int): Predicted class ids.
    references (list of int): True class ids.
    num_classes (int): Number of classes; default max id + 1.
    resamples (int): Bootstrap resamples, default 1000.
    seed (int): Resampling seed, default 0.
Returns:
    macro_f1, macro_f1_ci_low, macro_f1_ci_high (float), per_class (list of dict with f1,
    ci_low, ci_high, support), n (int)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class F1Ci(evaluate.Metric):
    """Macro and per-class F1 with bootstrap intervals."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, num_classes=None, resamples=1000, seed=0):
        k = num_classes if num_classes is not None else max(max(predictions), max(references)) + 1
        macro, per_class = f1_scores(references, predictions, k, resamples=resamples, seed=seed)
        return {
            "macro_f1": macro.value,
            "macro_f1_ci_low": macro.low,
            "macro_f1_ci_high": macro.high,
            "per_class": [
                {"f1": e.value, "ci_low": e.low, "ci_high": e.high, "support": e.n}
                for e in per_class
            ],
            "n": macro.n,
        }
