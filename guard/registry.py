"""One registry mechanism for everything selected by name: suites, report formats, scorers, recipes.

Entries map a name to a lazy ``"module:attribute"`` target, so listing names never imports the
heavy module behind an entry. Unknown names raise :class:`~guard.errors.UnknownNameError` with the
closest known names.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from guard.errors import ConfigError, UnknownNameError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """A registered name.

    Attributes:
        name: The public name.
        target: Where the object lives, as ``"package.module:attribute"``.
        summary: One line for ``guard ls``.
    """

    name: str
    target: str
    summary: str


def suggest(name: str, known: Iterable[str]) -> list[str]:
    """Up to three of ``known`` that look like ``name`` (a typo), closest first."""
    return difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)


class Registry(Generic[T]):
    """Name -> lazily imported object.

    Args:
        kind: What the registry holds, in the singular ("suite"), for messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: str, *, summary: str) -> None:
        """Register ``name`` for the object at ``target`` (``"module:attr"``).

        Raises:
            ConfigError: If the name is taken or the target is not ``module:attr``.
        """
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is already registered")
        module, sep, attr = target.partition(":")
        if not (module and sep and attr):
            raise ConfigError(f"{self.kind} target must look like 'module:attr', got {target!r}")
        self._entries[name] = Entry(name=name, target=target, summary=summary)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (plugins and tests that register temporarily).

        Raises:
            UnknownNameError: If ``name`` is not registered.
        """
        self.entry(name)
        del self._entries[name]

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry]:
        """Registered entries, sorted by name."""
        return (self._entries[name] for name in self.names())

    def entry(self, name: str) -> Entry:
        """The entry for ``name``.

        Raises:
            UnknownNameError: If ``name`` is not registered; the message suggests close names.
        """
        try:
            return self._entries[name]
        except KeyError:
            close = suggest(name, self._entries)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            known = ", ".join(self.names()) or "(none)"
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: {known}."
            ) from None

    def get(self, name: str) -> T:
        """Import and return the object registered as ``name``."""
        module_name, _, attr = self.entry(name).target.partition(":")
        return cast(T, getattr(importlib.import_module(module_name), attr))

    def __contains__(self, name: object) -> bool:
        return name in self._entries
