"""``guard validate``: check a release-gate or output-guard policy and print it resolved."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from guard.cli.options import add_scorer_arguments

# Top-level keys of an output-guard policy (guard.policy.Policy); a gate policy has [metrics].
_GUARD_KEYS = frozenset({"default", "categories", "safe_message", "mask"})


def add_parser(commands: Any) -> None:
    """Register the ``validate`` subcommand."""
    parser = commands.add_parser(
        "validate",
        help="validate a release-gate or output-guard policy and print it resolved",
        description="Check a policy TOML (unknown keys and bad values are reported with their "
                    "location) and print the resolved policy. A release-gate policy "
                    "([metrics.NAME] tables) is printed with the suite of each metric; limits "
                    "outside a metric's range are refused. An output-guard policy (the "
                    "--guard-policy of `guard scan`: [default], [categories.NAME], safe_message, "
                    "mask) is checked against the categories of --scorer.",
    )
    parser.add_argument("policy", help="policy TOML (a --gate-policy of `guard eval` or a "
                                       "--guard-policy of `guard scan`), or 'default' for the "
                                       "shipped gate policy")
    parser.add_argument("--kind", choices=("auto", "gate", "guard"), default="auto",
                        help="gate: release gate; guard: output guard; auto (default): guard "
                             "when the file has guard keys and no [metrics]")
    add_scorer_arguments(parser, purpose="whose categories a guard policy must name")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the resolved policy as JSON."""
    from eval_suites.gate import DEFAULT_POLICY, GatePolicy
    from guard.config import read_toml

    path = DEFAULT_POLICY if args.policy == "default" else Path(args.policy)
    kind = args.kind
    if kind == "auto":
        values = read_toml(path, what="policy")
        kind = "guard" if "metrics" not in values and _GUARD_KEYS & set(values) else "gate"
    if kind == "guard":
        return _guard_policy(args, path)
    policy = GatePolicy.from_toml(path)
    resolved = policy.model_dump()
    for metric, rule in resolved["metrics"].items():
        rule["suite"] = policy.suite_of(metric)
    print(json.dumps({"policy": str(path), "kind": "gate", **resolved}, indent=2))
    return 0


def _guard_policy(args: argparse.Namespace, path: Path) -> int:
    from guard.cli.options import build_scorer_from_flags, check_scorer_flags
    from guard.policy import Policy

    names, options = check_scorer_flags(args)
    policy = Policy.from_toml(path)
    scorer = build_scorer_from_flags(names, options)
    policy.check_categories(scorer.categories, where=f"policy {path}")
    print(json.dumps({"policy": str(path), "kind": "guard", "scorer": names,
                      "scorer_categories": list(scorer.categories), **policy.model_dump()},
                     indent=2, ensure_ascii=False))
    return 0
