"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def ensure_writable_dir(folder: Path, *, flag: str = "--out") -> None:
    """Create ``folder`` if needed and check that files can be written into it.

    Raises:
        ConfigError: Naming ``flag`` when it is a file, cannot be created or is read-only.
    """
    from guard.errors import ConfigError

    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag} {folder} is a file; pass a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".guard-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{flag} {folder}: the folder is not writable ({exc.strerror})") \
            from exc


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    A crash or Ctrl-C during the write leaves the previous file (or none) in place.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


@contextmanager
def write_dir_atomic(target: Path) -> Iterator[Path]:
    """Fill a temporary sibling folder, then put it in place of ``target`` all at once.

    Yields the temporary folder to write into. When the block ends normally it replaces
    ``target`` (an existing folder there is retired and removed); when it raises, the temporary
    folder is deleted and ``target`` is left as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield staging
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            target.rename(retired / target.name)
            staging.rename(target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
