"""Shared command-line options: ``NAME.OPTION=VALUE`` parsing, flags generated from configs."""

from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from guard.errors import ConfigError


def parse_dotted_options(items: list[str], *, flag: str, example: str
                         ) -> dict[str, dict[str, Any]]:
    """``["latency.requests=50"]`` -> ``{"latency": {"requests": 50}}``.

    Values are read as JSON when they parse (numbers, booleans, lists), else kept as strings.

    Raises:
        ConfigError: For an item that is not ``NAME.OPTION=VALUE``.
    """
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        name, dot, option = key.partition(".")
        if not (sep and dot and name.strip() and option.strip()):
            raise ConfigError(f"{flag} {item!r}: expected NAME.OPTION=VALUE, e.g. {example}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options.setdefault(name.strip(), {})[option.strip()] = value
    return options


def add_executor_arguments(parser: Any) -> None:
    """``--executor local|ray``, ``--address`` and ``--workers``."""
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local (default): this process (and --workers processes for "
                             "attacks); ray: shard examples across Ray workers, one model "
                             "replica each (pip install 'metaverse-guard[ray]')")
    parser.add_argument("--address", default=None,
                        help="ray: cluster address ('auto', 'ray://HOST:10001'); default: start "
                             "a local Ray instance with --workers CPUs")
    parser.add_argument("--workers", type=int, default=None,
                        help="parallel workers: processes (local attacks) or Ray actors (2)")


def build_executor(args: Any, *, device: str = "cpu") -> Any:
    """The :class:`guard.executors.RayExecutor` the flags ask for, or ``None`` for local runs.

    Raises:
        ConfigError: For ``--address`` without ``--executor ray``.
    """
    if args.executor != "ray":
        if args.address is not None:
            raise ConfigError("--address needs --executor ray")
        return None
    from guard.executors import RayExecutor

    gpus = 1 if device.startswith("cuda") else 0
    return RayExecutor(address=args.address, workers=args.workers or 2, gpus_per_worker=gpus)


def add_scorer_arguments(parser: Any, *, purpose: str) -> None:
    """``--scorer`` and ``--scorer-option`` (for ``scan`` and ``validate``)."""
    parser.add_argument("--scorer", default=None,
                        help=f"comma-separated scorers (see `guard ls scorers`) {purpose}; "
                             "default: the embedded harm-minilm")
    parser.add_argument("--scorer-option", action="append", default=[],
                        metavar="SCORER.OPTION=VALUE",
                        help="scorer option, e.g. detoxify.checkpoint=model.ckpt (repeatable; "
                             "values are read as JSON when they parse)")


def check_scorer_flags(args: Any) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The scorer names and options ``--scorer`` / ``--scorer-option`` ask for.

    Raises:
        ConfigError: For an empty ``--scorer``, a malformed option, an option for a scorer
            not named, or an unknown scorer name (with suggestions).
    """
    from guard.scorers import DEFAULT_SCORER, SCORERS

    names = [n.strip() for n in (args.scorer or DEFAULT_SCORER).split(",") if n.strip()]
    if not names:
        raise ConfigError("--scorer is empty; see `guard ls scorers`")
    options = parse_dotted_options(args.scorer_option, flag="--scorer-option",
                                   example="detoxify.checkpoint=model.ckpt")
    for name in options:
        if name not in names:
            raise ConfigError(f"--scorer-option names {name!r}, which is not in --scorer")
    for name in names:
        SCORERS.entry(name)  # a typo fails here, before any model loads
    return names, options


def build_scorer_from_flags(names: list[str], options: dict[str, dict[str, Any]]) -> Any:
    """The scorer (one, or several combined) that :func:`check_scorer_flags` resolved."""
    from guard.scorers import CompositeScorer, build_scorer

    members = [build_scorer(name, **options.get(name, {})) for name in names]
    return members[0] if len(members) == 1 else CompositeScorer(members)


def renamed_flag(new_value: Any, old_value: Any, *, new: str, old: str, command: str) -> Any:
    """The value of a flag that has a deprecated old spelling, warning when the old one is used.

    Raises:
        ConfigError: When both spellings are given.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise ConfigError(f"give {new} only ({old} is its deprecated spelling)")
    print(f"warning: `guard {command} {old}` is deprecated and goes in the next release; use "
          f"{new}", file=sys.stderr)
    return old_value


def shown_default(value: Any) -> str:
    """A default value as ``--help`` shows it: ``none``, ``on``/``off``, ``0.5``, ``cpu``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_model_flags(parser: argparse.ArgumentParser, model: type[Any], flags: Mapping[str, str],
                    *, default_note: Callable[[str, Any], str]) -> None:
    """One flag per field of the pydantic ``model``: ``flags`` maps each field to its flag.

    The flag's type comes from the annotation (``T | None`` gives ``T``), ``choices`` from a
    ``Literal``, a ``bool`` is ``--flag/--no-flag``, and the help is the field's description
    followed by ``default_note(name, default)`` in brackets. Every flag defaults to ``None``,
    so a flag left out keeps the value of a config file or the model's default.
    """
    for name, flag in flags.items():
        field = model.model_fields[name]
        annotation = field.annotation
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        text = (f"{field.description or name.replace('_', ' ')} "
                f"({default_note(name, field.default)})")
        options: dict[str, Any] = {"dest": name, "default": None,
                                   "help": text.replace("%", "%%")}
        if annotation is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(annotation) is typing.Literal:
            options["choices"] = typing.get_args(annotation)
        else:
            options["type"] = annotation
            options["metavar"] = flag[2:].upper().replace("-", "_")
        parser.add_argument(flag, **options)
