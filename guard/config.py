"""Reading validated configuration files: TOML in, a pydantic model out, errors that locate."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from guard.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_toml(path: str | Path, *, what: str) -> dict[str, Any]:
    """Parse a TOML file.

    Raises:
        ConfigError: Naming ``what`` and the file when it cannot be read or parsed.
    """
    file = Path(path)
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {file}: {exc}") from exc


def build_model(cls: type[M], values: Mapping[str, Any], *, what: str) -> M:
    """Validate ``values`` into ``cls``; every problem is reported with its key's location.

    Raises:
        ConfigError: Listing each invalid or unknown key as ``a.b.c: message``.
    """
    try:
        return cls(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"invalid {what}: {problems}") from None
