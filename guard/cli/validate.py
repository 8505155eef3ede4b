"""``guard validate``: check a release-gate policy and print it resolved."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(commands: Any) -> None:
    """Register the ``validate`` subcommand."""
    parser = commands.add_parser(
        "validate",
        help="validate a release-gate policy and print it resolved",
        description="Check a policy TOML (unknown keys and bad values are reported with their "
                    "location) and print the resolved policy, with the suite of each metric.",
    )
    parser.add_argument("policy", help="policy TOML, or 'default' for the shipped one")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the resolved policy as JSON."""
    from eval_suites.gate import DEFAULT_POLICY, GatePolicy

    path = DEFAULT_POLICY if args.policy == "default" else args.policy
    policy = GatePolicy.from_toml(path)
    resolved = policy.model_dump()
    for metric, rule in resolved["metrics"].items():
        rule["suite"] = policy.suite_of(metric)
    print(json.dumps({"policy": str(path), **resolved}, indent=2))
    return 0
