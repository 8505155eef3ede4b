"""``guard scan``: check texts with the output guard from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from guard.errors import ConfigError, DataError


def add_parser(commands: Any) -> None:
    """Register the ``scan`` subcommand."""
    parser = commands.add_parser(
        "scan",
        help="check texts with the output guard; exit 1 if any is blocked",
        description=(
            "Score texts with the output guard (normalise -> score -> policy) and print one "
            "decision per text. Texts come from the arguments, --file (one per line, or JSON "
            "Lines with a 'text' field when --jsonl is given), or standard input when neither "
            "is given. Exit codes: 0 nothing blocked, 1 something blocked, 2 usage error."
        ),
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to check")
    parser.add_argument("--file", default=None, help="read texts from this file")
    parser.add_argument("--jsonl", action="store_true",
                        help="--file (or stdin) is JSON Lines with a 'text' field")
    parser.add_argument("--json", action="store_true", help="print decisions as JSON Lines")
    parser.add_argument("--policy", default=None,
                        help="policy TOML file (thresholds, actions); default: the scorers' "
                             "recommended per-category thresholds")
    parser.add_argument("--scorer", default=None,
                        help="comma-separated scorers (see `guard ls scorers`); "
                             "default: the embedded harm-minilm")
    parser.add_argument("--scorer-option", action="append", default=[],
                        metavar="SCORER.OPTION=VALUE",
                        help="scorer option, e.g. detoxify.checkpoint=model.ckpt (repeatable; "
                             "values are read as JSON when they parse)")
    parser.set_defaults(handler=run)


def _read_texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.texts)
    if args.file is not None or not texts:
        if args.file is not None:
            path = Path(args.file)
            try:
                raw = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise DataError(f"{path}: cannot read it as UTF-8 text: {exc}") from exc
            where = str(path)
        else:
            raw, where = sys.stdin.read(), "stdin"
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            if args.jsonl:
                try:
                    record = json.loads(line)
                    texts.append(str(record["text"]))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DataError(f"{where}: line {number} is not a JSON object with a "
                                    f"'text' field ({exc})") from exc
            else:
                texts.append(line)
    if not texts:
        raise ConfigError("no texts to scan: pass TEXT arguments, --file, or pipe text in")
    return texts


def run(args: argparse.Namespace) -> int:
    """Scan and print decisions; 1 when anything is blocked."""
    from guard.cli.options import parse_dotted_options
    from guard.output_guard import OutputGuard
    from guard.policy import Policy
    from guard.scorers import DEFAULT_SCORER, CompositeScorer, build_scorer, recommended_policy

    names = [n.strip() for n in (args.scorer or DEFAULT_SCORER).split(",") if n.strip()]
    if not names:
        raise ConfigError("--scorer is empty; see `guard ls scorers`")
    options = parse_dotted_options(args.scorer_option, flag="--scorer-option",
                                   example="detoxify.checkpoint=model.ckpt")
    for name in options:
        if name not in names:
            raise ConfigError(f"--scorer-option names {name!r}, which is not in --scorer")
    members = [build_scorer(name, **options.get(name, {})) for name in names]
    scorer = members[0] if len(members) == 1 else CompositeScorer(members)
    policy = Policy.from_toml(args.policy) if args.policy else recommended_policy(scorer)
    guard = OutputGuard(scorer, policy)
    texts = _read_texts(args)
    decisions = guard.check(texts)
    for text, decision in zip(texts, decisions, strict=True):
        if args.json:
            print(json.dumps({"input": text, "allowed": decision.allowed,
                              "action": decision.action, "text": decision.text,
                              "scores": decision.scores, "reasons": list(decision.reasons),
                              "error": decision.error}, ensure_ascii=False))
        else:
            top = max(decision.scores.items(), key=lambda kv: kv[1], default=("-", 0.0))
            print(f"{decision.action.upper():<6} {top[1]:.2f} {top[0]:<16} {text}")
    return 1 if any(d.action == "block" for d in decisions) else 0
