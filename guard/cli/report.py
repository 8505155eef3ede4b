"""``guard report``: render result files without rerunning any model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from guard.errors import ConfigError


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
    from guard.atomic import ensure_writable_path, removing_on_failure, write_text_atomic
    from reports.writers import render_report

    if args.out is None:
        print(render_report(args.results, args.format), end="")
        return 0
    # Check --out before rendering; folders made for it go again if the command fails.
    with removing_on_failure(ensure_writable_path(args.out, flag="--out")):
        text = render_report(args.results, args.format)
        try:
            written = write_text_atomic(Path(args.out).expanduser(), text)
        except OSError as exc:
            raise ConfigError(f"--out {args.out}: cannot write it ({exc.strerror})") from exc
    print(f"wrote {written}")
    return 0
