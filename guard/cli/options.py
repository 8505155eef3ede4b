"""Parsing of ``NAME.OPTION=VALUE`` command-line options (suite and scorer options)."""

from __future__ import annotations

import json
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
