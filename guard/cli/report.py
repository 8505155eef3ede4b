"""``guard report``: render result files without rerunning any model."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: Any) -> None:
    """Register the ``report`` subcommand."""
    parser = commands.add_parser(
        "report",
        help="render a results.json as json, md, html or junit",
        description="Render a results file in a report format (see `guard ls formats`). "
                    "Reads the file only; no model runs.",
    )
    parser.add_argument("results", help="results.json written by `guard eval`")
    parser.add_argument("--format", default="md", help="json, md, html or junit (md)")
    parser.add_argument("--out", default=None, help="file to write (default: standard output)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Render and write or print."""
    from guard.atomic import write_text_atomic
    from reports.writers import render_report

    text = render_report(args.results, args.format)
    if args.out is None:
        print(text, end="")
    else:
        write_text_atomic(args.out, text)
        print(f"wrote {args.out}")
    return 0
