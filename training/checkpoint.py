"""Write checkpoints atomically: safetensors weights, tokenizer and a manifest, or nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guard.atomic import recover_dir, write_dir_atomic
from guard.errors import ConfigError
from guard.provenance import sha256_file

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

#: Name of the manifest file inside a checkpoint folder.
MANIFEST_FILE = "manifest.json"
#: Version of the manifest layout; bump on incompatible changes.
MANIFEST_SCHEMA_VERSION = 1


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    """The manifest of a checkpoint folder, or ``None`` when it has none.

    A folder that a killed write left missing is restored first (see
    :func:`guard.atomic.recover_dir`).
    """
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file() and not (recover_dir(folder) and path.is_file()):
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def check_writable_out(out: Path) -> None:
    """Refuse to replace a folder that is not a checkpoint of ours.

    Raises:
        ConfigError: If ``out`` is a file, or a non-empty folder without a guard manifest.
    """
    recover_dir(out)  # a checkpoint whose replacement was killed is put back first
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder path")
    if out.is_dir() and any(out.iterdir()) and read_manifest(out) is None:
        raise ConfigError(
            f"--out {out} is a non-empty folder that is not a guard checkpoint; "
            "pass a new or empty folder"
        )


def write_checkpoint(
    out: str | Path,
    *,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    manifest: Mapping[str, Any],
    extra_files: Mapping[str, str] | None = None,
    extra_writers: Sequence[Callable[[Path], None]] = (),
) -> Path:
    """Save a checkpoint into ``out`` all at once.

    Everything is written into a temporary sibling folder first and moved into place only when
    complete, so a failure leaves any previous checkpoint at ``out`` untouched.

    Args:
        out: Destination folder (created; a previous guard checkpoint there is replaced).
        model: The model; weights are saved as safetensors.
        tokenizer: Its tokenizer.
        manifest: Provenance to record; file hashes are added under ``"files"``.
        extra_files: Name -> text of further files to include (e.g. ``responses.json``).
        extra_writers: Called with the staging folder to write further files (e.g. a
            substitution smoother's), before the manifest hashes them.

    Returns:
        The checkpoint folder.
    """
    target = Path(out).expanduser().resolve()
    check_writable_out(target)
    with write_dir_atomic(target) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        for name, text in (extra_files or {}).items():
            (staging / name).write_text(text, encoding="utf-8")
        for writer in extra_writers:
            writer(staging)
        files = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
        record = {"schema_version": MANIFEST_SCHEMA_VERSION, **manifest, "files": files}
        (staging / MANIFEST_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return target
