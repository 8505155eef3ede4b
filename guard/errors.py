"""The one exception hierarchy of metaverse-guard.

Every error the library raises on purpose derives from :class:`GuardError`, and its message says
what is wrong and what to do about it. The CLI maps :class:`GuardError` to exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterable


class GuardError(Exception):
    """Base class for every error raised by metaverse-guard on purpose."""


class ConfigError(GuardError, ValueError):
    """A configuration value or file is invalid."""


class UnknownNameError(ConfigError, KeyError):
    """A name was looked up in a registry that does not hold it."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0]) if self.args else ""


class DataError(GuardError, ValueError):
    """Input data is missing, malformed or inconsistent.

    Attributes:
        path: The file the problem was found in, when there is one.
        problems: Every problem found, one line each (the message shows the first few).
    """

    def __init__(self, message: str, *, path: str | None = None, problems: Iterable[str] = ()):
        self.path = path
        self.problems = tuple(problems)
        super().__init__(message)


class ModelNotFoundError(GuardError, FileNotFoundError):
    """A model folder or hub id could not be found or loaded."""


class GuardCheckError(GuardError):
    """The output guard could not score and was configured with ``on_error="raise"``."""


class UsageError(GuardError, TypeError):
    """A public function was called with arguments of the wrong kind (e.g. ``bytes`` for text)."""


class MissingExtraError(GuardError, ImportError):
    """An optional dependency is not installed; the message names the ``pip install`` to run."""

    def __init__(self, package: str, extra: str, feature: str):
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional package {package!r}, which is not installed. "
            f"Install it with: pip install 'metaverse-guard[{extra}]'"
        )


def require(package: str, *, extra: str, feature: str) -> None:
    """Raise :class:`MissingExtraError` unless ``package`` can be imported.

    Args:
        package: Importable module name, e.g. ``"textattack"``.
        extra: The metaverse-guard extra that installs it, e.g. ``"attacks"``.
        feature: What needs it, for the message.
    """
    import importlib.util

    if importlib.util.find_spec(package) is None:
        raise MissingExtraError(package, extra, feature)
