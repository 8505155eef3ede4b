"""The ``guard`` command line: one module per subcommand, each importing its wing lazily.

Exit codes: 0 success, 1 a gate or check failed, 2 a usage or input error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from guard.errors import GuardError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from guard import __version__
    from guard.cli import attack, chat, ls, report, scan, serve, train, validate
    from guard.cli import eval as eval_cmd

    parser = argparse.ArgumentParser(
        prog="guard",
        description=(
            "metaverse-guard: fine-tune, evaluate and guard the text models of virtual worlds. "
            "Runs offline on the embedded defaults: `guard eval` trains the default assistant "
            "model on first use and evaluates it."
        ),
        epilog="Exit codes: 0 success, 1 a gate or check failed, 2 usage or input error.",
    )
    parser.add_argument("--version", action="version", version=f"metaverse-guard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (train, eval_cmd, attack, report, validate, scan, chat, serve, ls):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``guard`` console script; returns the exit code."""
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    args.argv = arguments
    try:
        code: int = args.handler(args)
    except GuardError as exc:
        print(f"guard {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"guard {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
