"""Size limits on input texts and files, so one oversized input cannot exhaust memory.

The limits apply wherever user data is read: the data loader (``guard eval``, ``train``,
``attack``) and ``guard scan``'s reader. Defaults, overridable by environment variables:

* ``GUARD_MAX_TEXT_BYTES`` (1 MiB): the most UTF-8 bytes in one text. Tokenizing a text costs
  about 140 bytes of memory per input byte before truncation (measured with the MiniLM fast
  tokenizer: a 50 MB text took 7.1 GB and 70 s), so 1 MiB bounds one text at roughly 150 MB
  and a second or two, while staying far above any chat reply or intent utterance (the guard
  itself scores at most 20,000 characters).
* ``GUARD_MAX_FILE_BYTES`` (256 MiB): the most bytes in one input file (for parquet, also its
  uncompressed columns). Parsed rows take 5 to 8 times their size in memory (measured: a
  103 MB JSONL file of short rows peaked at 0.45 GB, an 81 MB CSV at 0.63 GB), so 256 MiB
  bounds loading at about 2 GB, and still holds several times the Jigsaw toxic-comment
  training set (about 60 MB of CSV).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from guard.errors import ConfigError

#: Default most UTF-8 bytes in one text.
DEFAULT_MAX_TEXT_BYTES = 1 << 20
#: Default most bytes in one input file.
DEFAULT_MAX_FILE_BYTES = 256 << 20

TEXT_ENV = "GUARD_MAX_TEXT_BYTES"
FILE_ENV = "GUARD_MAX_FILE_BYTES"


def describe_size(value: int) -> str:
    """``1048576`` -> ``"1 MiB"``; sizes that are no whole KiB, MiB or GiB stay in bytes."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if value >= 1 << shift and value % (1 << shift) == 0:
            return f"{value >> shift} {unit}"
    return f"{value} bytes"


@dataclass(frozen=True)
class InputLimits:
    """How large one text and one input file may be.

    Attributes:
        max_text_bytes: The most UTF-8 bytes in one text.
        max_file_bytes: The most bytes in one input file.
    """

    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

    def __post_init__(self) -> None:
        for name in ("max_text_bytes", "max_file_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive number of bytes, got {value!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InputLimits:
        """The defaults, overridden by ``GUARD_MAX_TEXT_BYTES`` / ``GUARD_MAX_FILE_BYTES``.

        Raises:
            ConfigError: If a variable is set to anything but a positive integer.
        """
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for field, var in (("max_text_bytes", TEXT_ENV), ("max_file_bytes", FILE_ENV)):
            raw = env.get(var, "").strip()
            if not raw:
                continue
            try:
                values[field] = int(raw.replace("_", ""))
            except ValueError:
                raise ConfigError(f"{var}={raw!r}: expected a positive number of bytes, "
                                  "e.g. 1048576") from None
            if values[field] < 1:
                raise ConfigError(f"{var}={raw!r}: expected a positive number of bytes")
        return cls(**values)

    def text_problem(self, text: str) -> str | None:
        """Why ``text`` is refused (a lone surrogate, or too many bytes), or ``None``."""
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            return (f"holds a lone surrogate {text[exc.start]!a} at character "
                    f"{exc.start + 1}, which is not valid Unicode")
        if size > self.max_text_bytes:
            limit = describe_size(self.max_text_bytes)
            return (f"is {size} bytes long, over the limit of {limit} per text (set {TEXT_ENV} "
                    "to raise it)")
        return None

    def file_problem(self, size: int) -> str | None:
        """Why a file of ``size`` bytes is refused, or ``None``."""
        if size > self.max_file_bytes:
            limit = describe_size(self.max_file_bytes)
            return (f"is {size} bytes, over the limit of {limit} per file; split it, or set "
                    f"{FILE_ENV} to raise the limit")
        return None
