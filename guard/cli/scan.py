"""``guard scan``: check texts with the output guard from the command line."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from guard.cli.options import add_scorer_arguments
from guard.errors import ConfigError, DataError

if TYPE_CHECKING:
    from guard.data.limits import InputLimits


def add_parser(commands: Any) -> None:
    """Register the ``scan`` subcommand."""
    parser = commands.add_parser(
        "scan",
        help="check texts with the output guard; exit 1 if any is blocked",
        description=(
            "Score texts with the output guard (normalise -> score -> policy) and print one "
            "decision per text. Texts come from the arguments, --file (one per line, or JSON "
            "Lines with a 'text' field when --jsonl is given), or standard input when neither "
            "is given. Exit codes: 0 nothing blocked, 1 something blocked, 2 usage error "
            "(also for a text that is not a string, not valid UTF-8 or over "
            "GUARD_MAX_TEXT_BYTES, 1 MiB by default; the message names its line)."
        ),
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to check")
    parser.add_argument("--file", default=None, help="read texts from this file")
    parser.add_argument("--jsonl", action="store_true",
                        help="--file (or stdin) is JSON Lines with a 'text' field")
    parser.add_argument("--json", action="store_true", help="print decisions as JSON Lines")
    parser.add_argument("--guard-policy", default=None, metavar="TOML",
                        help="output-guard policy (thresholds, actions; see `guard validate`); "
                             "default: the scorers' recommended per-category thresholds")
    parser.add_argument("--policy", default=None, dest="old_policy", metavar="TOML",
                        help="deprecated spelling of --guard-policy (goes in the next release)")
    add_scorer_arguments(parser, purpose="to score with")
    parser.set_defaults(handler=run)


def _argument_problem(text: str, limits: InputLimits) -> str | None:
    """Why a TEXT argument is refused: bytes that were not UTF-8, a surrogate, or its size."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        if "\udc80" <= bad <= "\udcff":  # how Python passes on an argument byte that is not UTF-8
            return (f"is not valid UTF-8 (byte {ord(bad) - 0xDC00:#04x} at character "
                    f"{exc.start + 1})")
    return limits.text_problem(text)


def _lines_of(args: argparse.Namespace, limits: InputLimits) -> Iterator[tuple[int, str, str]]:
    """``(line number, line without its line break, where)`` from --file or standard input."""
    from guard.data.loader import iter_text_lines

    if args.file is not None:
        path = Path(args.file).expanduser()
        where = str(path)
        try:
            if path.is_dir() or not path.exists():
                raise DataError(f"{path}: {'is a folder' if path.is_dir() else 'does not exist'}"
                                "; pass a text or JSON Lines file", path=where)
            # a pipe or /dev/stdin has no size: the stream's limit below still applies
            problem = limits.file_problem(path.stat().st_size) if path.is_file() else None
            if problem:
                raise DataError(f"{path}: the file {problem}", path=where)
            stream: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise DataError(f"{path}: cannot read it: {exc.strerror}", path=where) from exc
    else:
        where = "stdin"
        buffer = getattr(sys.stdin, "buffer", None)
        # Undecoded bytes, so invalid UTF-8 is reported with its line whatever the locale.
        stream = buffer if buffer is not None else io.BytesIO(
            sys.stdin.read().encode("utf-8", "surrogateescape"))
    try:
        fix = None if args.file is not None else "send UTF-8 text (e.g. through iconv)"
        for number, line in iter_text_lines(stream, where=where, limits=limits, fix=fix):
            yield number, line.rstrip("\r\n"), where
    finally:
        if args.file is not None:
            stream.close()


def _read_texts(args: argparse.Namespace, limits: InputLimits) -> list[str]:
    """The texts to scan, each checked: valid Unicode, within the size limits, a string.

    Raises:
        DataError: Naming the argument or the line (1-based) of the first bad text.
        ConfigError: When there is no text at all.
    """
    texts: list[str] = []
    for number, text in enumerate(args.texts, start=1):
        problem = _argument_problem(text, limits)
        if problem:
            raise DataError(f"TEXT argument {number} {problem}")
        texts.append(text)
    if args.file is not None or not texts:
        for number, line, where in _lines_of(args, limits):
            if not line.strip():
                continue
            text = _json_text(line, number, where) if args.jsonl else line
            problem = limits.text_problem(text)
            if problem:
                raise DataError(f"{where}: line {number}: the text {problem}", path=where)
            texts.append(text)
    if not texts:
        raise ConfigError("no texts to scan: pass TEXT arguments, --file, or pipe text in")
    return texts


def _json_text(line: str, number: int, where: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: line {number} is not a JSON object with a 'text' field "
                        f"({exc})", path=where) from exc
    if not isinstance(record, dict) or "text" not in record:
        kind = "an object without one" if isinstance(record, dict) else \
            f"a JSON {type(record).__name__}"
        raise DataError(f"{where}: line {number} is not a JSON object with a 'text' field "
                        f"({kind})", path=where)
    text = record["text"]
    if not isinstance(text, str):
        kind = "null" if text is None else f"a JSON {type(text).__name__}"
        raise DataError(f"{where}: line {number}: 'text' is {kind}, not a string; give each "
                        "line a text to scan, or drop the line", path=where)
    return text


def _emit(line: str) -> None:
    """Print ``line``; characters the terminal's encoding lacks are written as escapes."""
    try:
        print(line)
    except UnicodeEncodeError:
        encoding = sys.stdout.encoding or "utf-8"
        print(line.encode(encoding, "backslashreplace").decode(encoding, "replace"))


def run(args: argparse.Namespace) -> int:
    """Scan and print decisions; 1 when anything is blocked."""
    from guard.cli.options import build_scorer_from_flags, check_scorer_flags, renamed_flag
    from guard.data.limits import InputLimits
    from guard.output_guard import OutputGuard
    from guard.policy import Policy
    from guard.scorers import recommended_policy

    names, options = check_scorer_flags(args)
    policy_file = renamed_flag(args.guard_policy, args.old_policy, new="--guard-policy",
                               old="--policy", command="scan")
    user_policy = Policy.from_toml(policy_file) if policy_file else None
    texts = _read_texts(args, InputLimits.from_env())  # input errors before any model loads
    scorer = build_scorer_from_flags(names, options)
    if user_policy is not None:
        user_policy.check_categories(scorer.categories, where=f"policy {policy_file}")
    policy = user_policy if user_policy is not None else recommended_policy(scorer)
    guard = OutputGuard(scorer, policy)
    decisions = guard.check(texts)
    for text, decision in zip(texts, decisions, strict=True):
        if args.json:
            _emit(json.dumps({"input": text, "allowed": decision.allowed,
                              "action": decision.action, "text": decision.text,
                              "scores": decision.scores, "reasons": list(decision.reasons),
                              "error": decision.error}, ensure_ascii=False))
        else:
            top = max(decision.scores.items(), key=lambda kv: kv[1], default=("-", 0.0))
            _emit(f"{decision.action.upper():<6} {top[1]:.2f} {top[0]:<16} {text}")
    return 1 if any(d.action == "block" for d in decisions) else 0
