"""The suite registry: ``guard ls suites`` lists it, ``guard eval --suite`` picks from it."""

from __future__ import annotations

from eval_suites.base import Suite
from guard.registry import Registry

SUITES: Registry[type[Suite]] = Registry("suite")
SUITES.register("accuracy", "eval_suites.accuracy:AccuracySuite",
                summary="accuracy, macro-F1, per-class F1, confusion matrix")
SUITES.register("latency", "eval_suites.latency:LatencySuite",
                summary="p50/p95/p99 latency at batch 1, throughput at batch 32")
SUITES.register("toxicity", "eval_suites.toxicity:ToxicitySuite",
                summary="toxic-output rate of the assistant; guard ROC AUC, recall, FPR, "
                        "obfuscation")
SUITES.register("robustness", "eval_suites.robustness:RobustnessSuite",
                summary="accuracy under attack, attack success rate per TextAttack recipe "
                        "(needs the attacks extra)")
