"""The ``robustness`` suite: accuracy under attack and attack success, per recipe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from eval_suites.base import MetricSpec, ReportView, Suite
from eval_suites.stats import mean_interval, wilson_interval
from guard.data import TextDataset
from guard.errors import ConfigError
from guard.results import MetricValue
from guard.types import Classifier


@dataclass(frozen=True)
class RobustnessSuite(Suite):
    """Attacks the first ``n`` evaluation texts with each recipe (needs the ``attacks`` extra).

    Metrics are reported per recipe as ``<metric>/<recipe>``; success rates are only comparable
    between runs with the same constraint set (recorded in the details).

    By default it runs a character attack (DeepWordBug) and the paper-strength word-substitution
    attack (``textfooler-offline``): a model hardened against typos alone can still be
    paraphrased past (docs/hardening.md). Both on 50 bundled sentences take under 2 minutes
    on 2 CPU cores, plus a one-off 70 s build of the substitution attack's word vectors.

    Attributes:
        recipes: Recipe names (``guard ls recipes``).
        n: Examples attacked, from the start of the data.
        query_budget: Most model queries per example (``None``: the recipe's own limit).
        worst_examples: Successful attacks to keep, smallest perturbation first.
    """

    name: ClassVar[str] = "robustness"
    description: ClassVar[str] = "accuracy under attack, attack success rate, per recipe"
    metric_specs: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("clean_accuracy", True, "ratio", "accuracy on the attacked examples"),
        MetricSpec("accuracy_under_attack", True, "ratio",
                   "examples still classified correctly after the attack",
                   pairing="proportion", per_item="recipes.{part}.robust"),
        MetricSpec("attack_success_rate", False, "ratio",
                   "attacks that flipped a correct prediction"),
        MetricSpec("mean_fraction_perturbed", False, "ratio",
                   "words changed by successful attacks"),
        MetricSpec("mean_queries", False, "queries", "model queries per attacked example"),
    )
    report_views: ClassVar[tuple[ReportView, ...]] = (
        ReportView("bars", "attack_success_rate", "attack success by recipe",
                   "Attack success rate by recipe, with intervals"),
        ReportView("table", "worst_examples", "Worst examples", in_markdown=True),
    )

    recipes: tuple[str, ...] = ("deepwordbug", "textfooler-offline")
    n: int = 50
    query_budget: int | None = None
    worst_examples: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.recipes, str):
            object.__setattr__(self, "recipes", (self.recipes,))
        if not self.recipes:
            raise ConfigError("robustness suite: name at least one recipe")
        if self.n < 1:
            raise ConfigError(f"robustness suite: n must be >= 1, got {self.n}")

    def measure(self, model: Classifier, data: TextDataset, *, seed: int
                ) -> tuple[list[MetricValue], dict[str, Any]]:
        """Run each recipe and summarise its records."""
        from attacks import RECIPES
        from attacks.runner import run_attack

        for recipe in self.recipes:
            RECIPES.entry(recipe)
        metrics: list[MetricValue] = []
        details: dict[str, Any] = {"recipes": {}, "worst_examples": []}
        level = self.confidence
        for recipe in self.recipes:
            run = run_attack(model, data, recipe, n=self.n, seed=seed,
                             query_budget=self.query_budget, progress=False)
            records = run.records
            status = [r.status for r in records]
            total = len(records)
            correct = total - status.count("skipped")
            success = status.count("successful")
            still_right = correct - success
            metrics += [
                MetricValue.of(self.spec("clean_accuracy"),
                               wilson_interval(correct, total, confidence=level),
                               name=f"clean_accuracy/{recipe}"),
                MetricValue.of(self.spec("accuracy_under_attack"),
                               wilson_interval(still_right, total, confidence=level),
                               name=f"accuracy_under_attack/{recipe}"),
            ]
            if correct:
                metrics.append(MetricValue.of(
                    self.spec("attack_success_rate"),
                    wilson_interval(success, correct, confidence=level),
                    name=f"attack_success_rate/{recipe}"))
                attempted = [r for r in records if r.status != "skipped"]
                metrics.append(MetricValue.of(
                    self.spec("mean_queries"),
                    mean_interval([r.queries for r in attempted], seed=seed, confidence=level),
                    name=f"mean_queries/{recipe}"))
            if success:
                metrics.append(MetricValue.of(
                    self.spec("mean_fraction_perturbed"),
                    mean_interval([r.fraction_perturbed for r in records
                                   if r.status == "successful"], seed=seed, confidence=level),
                    name=f"mean_fraction_perturbed/{recipe}"))
            wins = sorted((r for r in records if r.status == "successful"),
                          key=lambda r: (r.fraction_perturbed, r.index))
            details["recipes"][recipe] = {
                "constraint_set": run.constraint_set,
                "counts": {s: status.count(s) for s in sorted(set(status))},
                "attack_succeeded": [int(s == "successful") for s in status],
                # 1 where the model is still right after the attack: paired gate comparisons
                "robust": [int(s not in ("successful", "skipped")) for s in status],
                "median_queries": float(np.median([r.queries for r in records])),
            }
            # the smallest perturbations that flipped the model: the report's worst examples
            details["worst_examples"] += [
                {"recipe": recipe, "original": r.original_text, "perturbed": r.perturbed_text,
                 "label": r.label, "predicted": r.perturbed_prediction,
                 "fraction_perturbed": r.fraction_perturbed}
                for r in wins[: self.worst_examples]]
        return metrics, details
