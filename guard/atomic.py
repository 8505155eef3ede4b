"""Atomic file writes: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import secrets
import shutil
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn


def ensure_writable_dir(folder: str | Path, *, flag: str = "--out") -> list[Path]:
    """Create ``folder`` if needed and check that files can be written into it.

    Also removes the temporary files that writes killed earlier left in it (see
    :func:`remove_stale_temp_files`).

    Args:
        folder: The output folder.
        flag: The command-line flag that named it, for messages.

    Returns:
        The folders this call created, innermost first (for :func:`removing_on_failure`).

    Raises:
        ConfigError: Naming ``flag`` when it or a folder above it is a file, or it cannot be
            created or written.
    """
    folder = Path(folder).expanduser()
    if os.path.lexists(folder) and not folder.is_dir():
        _refuse(f"{flag} {folder} is a file; pass a folder")
    created = _make_dirs(folder, flag=flag, named=folder)
    try:
        _probe(folder)
    except OSError as exc:
        remove_empty_dirs(created)
        _refuse(f"{flag} {folder}: the folder is not writable ({exc.strerror})", exc)
    remove_stale_temp_files(folder)
    return created


def ensure_writable_path(path: str | Path, *, flag: str = "--out", folder: bool = False
                         ) -> list[Path]:
    """Check, before any work, that ``path`` can be written (created or replaced by a rename).

    Its parent folder is created if needed and must be writable; ``path`` itself must not exist
    as the wrong kind of thing (a folder where a file is to go, a file where a folder is to go,
    or a device, pipe or socket).

    Args:
        path: The file (or, with ``folder=True``, the folder) that a command will write.
        flag: The command-line flag that named it, for messages.
        folder: Whether ``path`` is a folder written whole (e.g. a checkpoint).

    Returns:
        The parent folders this call created, innermost first (for
        :func:`removing_on_failure`).

    Raises:
        ConfigError: Naming ``flag`` and the problem, in one line.
    """
    path = Path(path).expanduser()
    if path.name in ("", ".", ".."):
        _refuse(f"{flag} {path}: name a {'folder' if folder else 'file'}, not {str(path)!r}")
    if folder and path.is_file():
        _refuse(f"{flag} {path} is a file; pass a folder path")
    if not folder and path.is_dir():
        _refuse(f"{flag} {path} is a folder; pass a file path, e.g. {path / 'report.md'}")
    if os.path.lexists(path) and not (path.is_dir() if folder else path.is_file()):
        _refuse(f"{flag} {path} is not a regular {'folder' if folder else 'file'}; pass a "
                "path to create or replace")
    parent = path.parent
    created = _make_dirs(parent, flag=flag, named=path)
    try:
        _probe(parent)
    except OSError as exc:
        remove_empty_dirs(created)
        _refuse(f"{flag} {path}: cannot write into the folder {parent} ({exc.strerror})", exc)
    return created


def remove_empty_dirs(folders: Iterable[Path]) -> None:
    """Remove each of ``folders`` (innermost first) that is still empty; never raises."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (something was written) or already gone: keep the rest


@contextmanager
def removing_on_failure(created: Iterable[Path]) -> Iterator[None]:
    """Remove the folders a command created (see :func:`ensure_writable_dir`) if it fails.

    Only folders still empty are removed, so a run that fails after writing part of its output
    keeps what it wrote.
    """
    folders = list(created)
    try:
        yield
    except BaseException:
        remove_empty_dirs(folders)
        raise


def _refuse(message: str, cause: BaseException | None = None) -> NoReturn:
    from guard.errors import ConfigError

    raise ConfigError(message) from cause


def _make_dirs(folder: Path, *, flag: str, named: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders created, innermost first."""
    missing: list[Path] = []
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if os.path.lexists(probe) and not probe.is_dir():
        _refuse(f"{flag} {named}: {probe} is a file, not a folder")
    created: list[Path] = []
    for each in reversed(missing):
        try:
            each.mkdir()
        except FileExistsError:
            if not each.is_dir():
                remove_empty_dirs(created[::-1])
                _refuse(f"{flag} {named}: {each} is a file, not a folder")
            continue  # another process made it: not ours to remove
        except OSError as exc:
            remove_empty_dirs(created[::-1])
            _refuse(f"{flag} {named}: cannot create the folder {each} ({exc.strerror})", exc)
        created.append(each)
    return created[::-1]


def _probe(folder: Path) -> None:
    """Create and delete one uniquely named file in ``folder``; raises ``OSError`` if not."""
    fd, probe = _create_temp(folder / ".guard-write-test")
    try:
        os.close(fd)
    finally:
        os.unlink(probe)


# Temporary files of write_text_atomic: ".NAME.guard-<12 hex>.part" beside the target. The
# writer holds an exclusive flock on its temporary file from creation to rename, so a file of
# this pattern that can be locked belongs to no running write: the kernel drops the lock when
# the writer exits, however it exits.
_TEMP = re.compile(r"\.(?P<name>.+)\.guard-[0-9a-f]{12}\.part")
# Earlier versions used tempfile.mkstemp(prefix=".NAME."), without a lock: ".NAME.<8 chars>".
_LEGACY_TEMP = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}")
_NAME_KEEP = 100  # characters of the target's name kept in a temporary name (NAME_MAX 255)
_STARTED = time.time()  # files older than this process were not written by it


def _create_temp(target: Path) -> tuple[int, str]:
    """Create and lock a new temporary file beside ``target``; returns ``(fd, path)``.

    The file is created with mode ``0o666`` less the umask, as ``open()`` would create it (not
    ``mkstemp``'s ``0o600``, which an artifact uploader running as another user cannot read).
    """
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        path = os.path.join(target.parent,
                            f".{target.name[:_NAME_KEEP]}.guard-{secrets.token_hex(6)}.part")
        try:
            fd = os.open(path, flags, 0o666)
        except FileExistsError:
            continue
        _try_lock(fd, wait=True)
        if _still_at(fd, path):
            return fd, path
        os.close(fd)


def _still_at(fd: int, path: str | Path) -> bool:
    """Whether the open ``fd`` is still what ``path`` names.

    A cleanup may remove a new temporary file or folder between its creation and its lock;
    the creator then makes another.
    """
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _try_lock(fd: int, *, wait: bool) -> bool | None:
    """Lock ``fd`` exclusively; whether it was free, or ``None`` where flock does not exist."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def remove_stale_temp_files(folder: str | Path, *, name: str | None = None) -> list[Path]:
    """Delete the temporary files that killed :func:`write_text_atomic` calls left in ``folder``.

    A ``.NAME.guard-*.part`` file is stale when no process holds its lock (its writer has
    exited). A file of the earlier ``.NAME.XXXXXXXX`` pattern (``mkstemp``'s) is removed only
    when ``NAME`` exists beside it and it is a regular file of this user, of mode ``0600`` and
    older than this process. Other files are never touched; nothing is removed where file
    locks do not exist; errors are ignored.

    Args:
        folder: Where to look.
        name: Only the temporary files of this target file name (default: of every name).

    Returns:
        The files removed.
    """
    removed: list[Path] = []
    try:
        with os.scandir(folder) as scan:
            entries = list(scan)
    except OSError:
        return removed
    names = {e.name for e in entries}
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        path = Path(folder) / entry.name
        match = _TEMP.fullmatch(entry.name)
        if match and (name is None or match.group("name") == name[:_NAME_KEEP]):
            if _remove_unlocked(path):
                removed.append(path)
            continue
        legacy = _LEGACY_TEMP.fullmatch(entry.name)
        if (legacy and (name is None or legacy.group("name") == name)
                and legacy.group("name") in names
                and _is_legacy_temp(entry) and _try_unlink(path)):
            removed.append(path)
    return removed


def _is_legacy_temp(entry: os.DirEntry[str]) -> bool:
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    return (stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
            and info.st_uid == getattr(os, "geteuid", lambda: info.st_uid)()
            and info.st_mtime < _STARTED)


def _remove_unlocked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        if _try_lock(fd, wait=False) is not True:
            return False  # a live writer holds it, or locks cannot tell
        return _try_unlink(path)
    finally:
        os.close(fd)


def _try_unlink(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:
        return False
    return True


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    A crash or Ctrl-C during the write leaves the previous file (or none) in place, plus at
    worst a ``.NAME.guard-*.part`` file, which the next write into the folder removes. The file
    gets the permissions ``open()`` would give it (``0o666`` less the umask).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(target.parent, name=target.name)
    fd, tmp = _create_temp(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
            os.replace(tmp, target)  # while still locked: a cleanup never sees it unlocked
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


@contextmanager
def write_dir_atomic(target: Path) -> Iterator[Path]:
    """Fill a temporary sibling folder, then put it in place of ``target`` all at once.

    Yields the temporary folder (``.NAME.tmp-*`` beside ``target``) to write into. When the
    block ends normally its files are flushed to disk and it takes the place of ``target``;
    when the block raises, it is deleted and ``target`` is left as it was.

    A kill at any instant leaves the old or the new folder where the next reader looks:

    * Where the kernel and file system swap two names in one step (Linux
      ``renameat2(RENAME_EXCHANGE)``: ext4, xfs, btrfs, tmpfs, ...), the new folder and the
      old one trade places at once, so ``target`` always exists.
    * Elsewhere the old folder is renamed to ``.NAME.old-*`` first and the new one to
      ``target`` second. A kill between the two leaves ``target`` missing and the complete old
      copy beside it; :func:`recover_dir` (called by the next write and by readers) puts it
      back.

    Leftovers of killed writes (``.NAME.tmp-*``, ``.NAME.old-*``, ``.NAME.del-*``) are removed
    by the next write or :func:`recover_dir`. The writer holds an ``flock`` on its staging
    folder while it works, so a cleanup never deletes the folder of a write still running
    in another process; the kernel drops that lock when the writer dies.

    Args:
        target: The folder to create or replace.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover(target)
    staging, held = _new_staging(target)
    try:
        try:
            yield staging
            _sync_tree(staging)
            _swap_in(staging, target)
        except BaseException:
            _remove_tree(staging)
            raise
    finally:
        os.close(held)


def recover_dir(target: str | Path) -> bool:
    """Repair what a write killed by :func:`write_dir_atomic` left; whether ``target`` exists.

    When ``target`` is missing but a complete retired copy (``.NAME.old-*``) lies beside it,
    that copy is put back; then the other leftovers are removed (not the staging folder of a
    write still running). Readers call it before they look at ``target``. It writes nothing
    when there is nothing to repair and never raises: a location it cannot write is left as
    it is.

    Args:
        target: The folder a reader is about to open.
    """
    target = Path(target)
    with contextlib.suppress(OSError):
        _recover(target)
    return target.exists()


def remove_dir(target: str | Path) -> None:
    """Delete the folder ``target`` so that a kill midway leaves it whole or gone, never half.

    The folder is renamed to ``.NAME.del-*`` first (one atomic step) and deleted from there;
    :func:`recover_dir` and :func:`write_dir_atomic` remove what a kill leaves of it.

    Args:
        target: The folder; nothing happens when it does not exist.
    """
    target = Path(target)
    if os.path.lexists(target):
        _discard(target, target)


@contextmanager
def exclusive_lock(path: str | Path, *, wait: bool = False) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on the file ``path`` (created if missing) for the block.

    Yields whether this process holds the lock: ``False`` when another process (or another
    open of the file in this one) holds it and ``wait`` is false. The kernel releases the lock
    when the process ends, however it ends, so a crash never leaves a stale lock. The file is
    left in place: deleting a lock file lets two processes lock two different files. Where
    ``fcntl`` does not exist (Windows) nothing is locked and ``True`` is yielded.

    Args:
        path: The lock file.
        wait: Block until the lock is free instead of yielding ``False``.

    Raises:
        OSError: If the lock file cannot be created or opened.
    """
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        yield _flock(fd, wait=wait)
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


_LEFTOVER = re.compile(r"\.(tmp|old|del)-([A-Za-z0-9_-]+)")
_STAMPED = re.compile(r"(\d{20})-[0-9a-f]{8}")
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _flock(fd: int, *, wait: bool) -> bool:
    """:func:`_try_lock`, taking "no locks on this system" as held (Windows)."""
    return _try_lock(fd, wait=wait) is not False


def _new_sibling(target: Path, kind: str) -> Path:
    # Sortable by time, unique by the random part: .NAME.KIND-<ns>-<hex>
    return target.parent / f".{target.name}.{kind}-{time.time_ns():020d}-{secrets.token_hex(4)}"


def _new_staging(target: Path) -> tuple[Path, int]:
    """A new ``.NAME.tmp-*`` folder and a descriptor holding its lock."""
    while True:
        staging = _new_sibling(target, "tmp")
        _mkdir(staging)
        fd = os.open(staging, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        _flock(fd, wait=True)
        if _still_at(fd, staging):
            return staging, fd
        os.close(fd)


def _in_use(path: Path) -> bool:
    """Whether a live writer holds the lock on the staging folder ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return False
    try:
        return not _flock(fd, wait=False)
    finally:
        os.close(fd)


def _leftovers(target: Path) -> list[tuple[str, Path]]:
    """``(kind, path)`` of every ``.NAME.tmp-*``, ``.NAME.old-*`` and ``.NAME.del-*`` beside it."""
    prefix = f".{target.name}"
    found = []
    with os.scandir(target.parent) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix):
                continue
            match = _LEFTOVER.fullmatch(entry.name[len(prefix):])
            if match:
                found.append((match.group(1), target.parent / entry.name))
    return found


def _retired_copy(target: Path, path: Path) -> tuple[tuple[int, int], Path] | None:
    """The complete folder inside a ``.NAME.old-*`` leftover and its age key, or ``None``.

    ``.NAME.old-<ns>-<hex>`` is the retired folder itself; the older layout
    ``.NAME.old-<random>/NAME`` wraps it in a temporary folder.
    """
    stamp = _STAMPED.fullmatch(path.name.rsplit(".old-", 1)[1])
    if stamp and path.is_dir():
        return (1, int(stamp.group(1))), path
    inner = path / target.name
    if not stamp and inner.is_dir():
        return (0, inner.stat().st_mtime_ns), inner
    return None


def _recover(target: Path) -> None:
    """Restore a missing target from its newest retired copy, then remove the leftovers."""
    if not target.parent.is_dir():
        return
    leftovers = _leftovers(target)
    if not leftovers:
        return
    if not os.path.lexists(target):
        copies = [c for kind, p in leftovers if kind == "old" and (c := _retired_copy(target, p))]
        if copies:
            with contextlib.suppress(FileNotFoundError):  # another reader restored it first
                _rename(max(copies, key=lambda c: c[0])[1], target)
            _fsync_dir(target.parent)
    for kind, path in leftovers:  # what is left holds no copy the target still needs
        if kind == "old":
            _discard(target, path)  # renamed first: a kill must not leave half a copy as .old-
        elif kind == "del" or not _in_use(path):
            _remove_tree(path)


def _swap_in(staging: Path, target: Path) -> None:
    """Put the complete ``staging`` folder at ``target``; each step leaves one whole."""
    if not os.path.lexists(target):
        _rename(staging, target)
        _fsync_dir(target.parent)
        return
    if _exchange(staging, target):
        _fsync_dir(target.parent)
        _remove_tree(staging)  # it holds the old folder now
        return
    retired = _new_sibling(target, "old")
    _rename(target, retired)
    try:
        _rename(staging, target)
    except BaseException:
        _rename(retired, target)
        raise
    _fsync_dir(target.parent)
    _discard(target, retired)


def _discard(target: Path, path: Path) -> None:
    """Rename ``path`` to ``.NAME.del-*`` (never restored), then delete it."""
    doomed = _new_sibling(target, "del")
    try:
        _rename(path, doomed)
    except FileNotFoundError:
        return  # another process took it first
    _remove_tree(doomed)


def _sync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` and the folders themselves to disk."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(root))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # some platforms cannot open folders; their renames are durable or not at all
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# The file-system steps, one function each (tests kill the process between them).
def _mkdir(path: Path) -> None:
    os.mkdir(path)  # honours the umask (tempfile.mkdtemp would make the checkpoint 0700)


def _rename(source: Path, destination: Path) -> None:
    os.rename(source, destination)


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@functools.lru_cache(maxsize=1)
def _renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - no C library to ask
        return None
    func = getattr(libc, "renameat2", None)  # glibc >= 2.28
    if func is not None:
        func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
        func.restype = ctypes.c_int
    return func


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` in one step; ``False`` where the system cannot."""
    func = _renameat2()
    if func is None:
        return False
    import ctypes

    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM}:
        return False  # this file system (or a sandbox) does not offer the swap
    raise OSError(err, os.strerror(err), str(a), None, str(b))
