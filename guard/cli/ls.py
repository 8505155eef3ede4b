"""``guard ls``: list what can be selected by name."""

from __future__ import annotations

import argparse
from typing import Any

from guard.registry import Registry


def _registries() -> dict[str, Registry[Any]]:
    from attacks import RECIPES
    from eval_suites.registry import SUITES
    from guard.scorers import SCORERS
    from reports.writers import WRITERS

    return {"suites": SUITES, "scorers": SCORERS, "recipes": RECIPES, "formats": WRITERS}


def add_parser(commands: Any) -> None:
    """Register the ``ls`` subcommand."""
    parser = commands.add_parser(
        "ls", help="list suites, scorers, attack recipes and report formats",
        description="List the names you can pass to other commands.",
    )
    parser.add_argument("what", choices=("suites", "scorers", "recipes", "formats"),
                        help="what to list")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print one ``name  summary`` line per registered entry."""
    registry = _registries()[args.what]
    entries = list(registry.entries())
    width = max(len(e.name) for e in entries)
    for entry in entries:
        print(f"{entry.name:<{width}}  {entry.summary}")
    return 0
