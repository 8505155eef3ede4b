"""Load labelled text through Hugging Face ``datasets``, with errors that name file, row and fix.

Two sources are accepted everywhere a data set is asked for:

* ``"bundled"``: the metaverse intents written for this project (``guard/data/metaverse_intents``),
  with fixed train / validation / test splits;
* a path: one CSV, JSONL/JSON or parquet file, or a folder holding ``train.*`` and optionally
  ``validation.*`` and ``test.*`` files. A single file used for training is split
  deterministically (stratified 80/10/10 by a hash of each text, independent of row order).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from guard.errors import DataError

#: The name that selects the bundled metaverse-intents data set.
BUNDLED = "bundled"

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")

_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_MAX_SHOWN = 5
_FIX_COLUMNS = "pass --text-column / --label-column to name the columns to use"


def bundled_dir() -> Path:
    """Folder of the bundled metaverse-intents data set."""
    return Path(__file__).parent / "metaverse_intents"


@dataclass(frozen=True)
class TextDataset:
    """Labelled texts, validated.

    Attributes:
        texts: The texts, non-empty.
        labels: One label per text.
        source: Where they came from (``bundled:test`` or a file path).
        sha256: Fingerprint of the rows (texts and labels, in order), independent of file format.
    """

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    source: str
    sha256: str

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def label_names(self) -> tuple[str, ...]:
        """The distinct labels, sorted."""
        return tuple(sorted(set(self.labels)))

    @classmethod
    def from_rows(cls, texts: Sequence[str], labels: Sequence[str], *, source: str) -> TextDataset:
        """Build a data set from in-memory rows, computing its fingerprint."""
        digest = hashlib.sha256()
        for text, label in zip(texts, labels, strict=True):
            digest.update(json.dumps([text, label], ensure_ascii=False).encode())
            digest.update(b"\n")
        return cls(tuple(texts), tuple(labels), source, digest.hexdigest())


@dataclass(frozen=True)
class DataSplits:
    """Train / validation / test splits of one data set.

    Attributes:
        train: Training rows.
        validation: Validation rows (for early stopping), or ``None``.
        test: Held-out rows, or ``None``.
        label_names: Every label across the splits, sorted.
        sha256: Fingerprint of all splits together.
    """

    train: TextDataset
    validation: TextDataset | None
    test: TextDataset | None
    label_names: tuple[str, ...]
    sha256: str


def _format_of(path: Path) -> str:
    try:
        return _FORMATS[path.suffix.lower()]
    except KeyError:
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; use .csv, .jsonl, .json "
            "or .parquet",
            path=str(path),
        ) from None


def _check_bytes(path: Path, fmt: str) -> None:
    """Reject empty files and, for text formats, invalid UTF-8, naming the line."""
    data = path.read_bytes()
    if not data.strip():
        raise DataError(
            f"{path}: the file is empty; add rows with a text column and a label column "
            "(for JSONL, one object per line such as {\"text\": \"...\", \"label\": \"...\"})",
            path=str(path),
        )
    if fmt == "parquet":
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line} is not valid UTF-8 (byte {data[exc.start]:#04x} at offset "
            f"{exc.start}); re-save the file as UTF-8, e.g. "
            f"iconv -f latin1 -t utf-8 {path.name} > fixed{path.suffix}",
            path=str(path),
        ) from None
    if fmt == "csv" and len(text.strip().splitlines()) < 2:
        raise DataError(f"{path}: the file has a header but no rows; add labelled rows",
                        path=str(path))


def _read_table(path: Path) -> Any:
    """Read one file with ``datasets``; returns a ``datasets.Dataset``."""
    import datasets

    fmt = _format_of(path)
    _check_bytes(path, fmt)
    import datasets.utils as datasets_tqdm

    # A one-file table loads in milliseconds: its progress bar is noise. Restore the caller's
    # setting afterwards rather than changing it for the whole process.
    bars_were_disabled = datasets_tqdm.are_progress_bars_disabled()
    datasets_tqdm.disable_progress_bars()
    try:
        return datasets.load_dataset(fmt, data_files=str(path), split="train")
    except Exception as exc:  # datasets raises many types for malformed files
        hint = {
            "json": "each line must be one JSON object such as "
                    '{"text": "...", "label": "..."}',
            "csv": "the first line must be a header row and every row must have the same columns",
            "parquet": "the file must be a readable parquet table",
        }[fmt]
        cause = exc.__cause__ or exc
        raise DataError(f"{path}: cannot parse it as {fmt}: {cause}; {hint}",
                        path=str(path)) from exc
    finally:
        if not bars_were_disabled:
            datasets_tqdm.enable_progress_bars()


def _row_name(fmt: str, index: int) -> str:
    # CSV rows are counted after the header line, so the file line is one more.
    return f"row {index + 1} (line {index + 2})" if fmt == "csv" else f"row {index + 1}"


def load_file(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    allowed_labels: Collection[str] | None = None,
) -> TextDataset:
    """Load and validate one CSV, JSONL/JSON or parquet file.

    Args:
        path: The file.
        text_column: Column holding the texts.
        label_column: Column holding the labels (converted to strings).
        allowed_labels: If given, every label must be one of these (e.g. the model's labels).

    Returns:
        The validated rows.

    Raises:
        DataError: For a missing or empty file, invalid UTF-8, a parse error, a missing column,
            an empty text or missing label, or a label outside ``allowed_labels``. The message
            names the file, the rows and the fix; ``DataError.problems`` lists every bad row.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        what = "is a folder" if file.is_dir() else "does not exist"
        raise DataError(f"{file}: {what}; pass a .csv, .jsonl or .parquet file", path=str(file))
    fmt = _format_of(file)
    table = _read_table(file)
    if table.num_rows == 0:
        raise DataError(f"{file}: the file has no rows; add labelled rows", path=str(file))
    missing = [c for c in (text_column, label_column) if c not in table.column_names]
    if missing:
        raise DataError(
            f"{file}: missing column(s) {missing}; the file has {table.column_names}. "
            f"{_FIX_COLUMNS}",
            path=str(file),
        )
    texts_raw = table[text_column]
    labels_raw = table[label_column]
    allowed = set(allowed_labels) if allowed_labels is not None else None
    problems: list[str] = []
    texts: list[str] = []
    labels: list[str] = []
    for index, (text, label) in enumerate(zip(texts_raw, labels_raw, strict=True)):
        row = _row_name(fmt, index)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{row}: empty text in column {text_column!r}; fill it or drop the row")
            continue
        if label is None or (isinstance(label, str) and not label.strip()):
            problems.append(
                f"{row}: missing label in column {label_column!r}; label the row or drop it"
            )
            continue
        label_text = str(label).strip()
        if allowed is not None and label_text not in allowed:
            problems.append(
                f"{row}: unknown label {label_text!r}; expected one of {sorted(allowed)} "
                "(fix the label, or evaluate a model trained on these labels)"
            )
            continue
        texts.append(text)
        labels.append(label_text)
    if problems:
        shown = "\n  ".join(problems[:_MAX_SHOWN])
        hidden = len(problems) - _MAX_SHOWN
        more = f"\n  ... and {hidden} more" if hidden > 0 else ""
        raise DataError(f"{file}: {len(problems)} bad row(s):\n  {shown}{more}",
                        path=str(file), problems=problems)
    return TextDataset.from_rows(texts, labels, source=str(file))


def _stable_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def split_dataset(data: TextDataset, *, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
                  ) -> tuple[TextDataset, TextDataset, TextDataset]:
    """Split deterministically, stratified by label, ordering rows by a hash of their text.

    The same rows always give the same split, whatever their order in the file.
    """
    by_label: dict[str, list[str]] = {}
    for text, label in zip(data.texts, data.labels, strict=True):
        by_label.setdefault(label, []).append(text)
    parts: list[tuple[list[str], list[str]]] = [([], []), ([], []), ([], [])]
    for label in sorted(by_label):
        texts = sorted(by_label[label], key=_stable_key)
        n_val = round(len(texts) * fractions[1])
        n_test = round(len(texts) * fractions[2])
        n_train = len(texts) - n_val - n_test
        bounds = (0, n_train, n_train + n_val, len(texts))
        for k in range(3):
            chunk = texts[bounds[k] : bounds[k + 1]]
            parts[k][0].extend(chunk)
            parts[k][1].extend([label] * len(chunk))
    names = ("train", "validation", "test")
    train, validation, test = (
        TextDataset.from_rows(t, lab, source=f"{data.source}#{names[k]}")
        for k, (t, lab) in enumerate(parts)
    )
    return train, validation, test


def _split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for split in SPLITS:
        candidates = [p for p in folder.glob(f"{split}.*") if p.suffix.lower() in _FORMATS]
        if len(candidates) > 1:
            raise DataError(
                f"{folder}: several {split} files {sorted(p.name for p in candidates)}; keep one",
                path=str(folder),
            )
        if candidates:
            found[split] = candidates[0]
    if "train" not in found:
        raise DataError(
            f"{folder}: no train.csv / train.jsonl / train.parquet in this folder; a data folder "
            "needs a train file (validation and test files are optional)",
            path=str(folder),
        )
    return found


def _locate(data: str | Path, text_column: str, label_column: str) -> tuple[Path, str, str]:
    """The folder or file behind ``data``, and the columns to read (fixed for the bundled set)."""
    if str(data) == BUNDLED:
        return bundled_dir(), "text", "label"
    return Path(data).expanduser(), text_column, label_column


def _combine_fingerprints(parts: Sequence[TextDataset | None]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update((part.sha256 if part is not None else "-").encode())
    return digest.hexdigest()


def load_splits(
    data: str | Path = BUNDLED,
    *,
    text_column: str = "text",
    label_column: str = "label",
) -> DataSplits:
    """Load train / validation / test splits for training.

    Args:
        data: ``"bundled"``, a folder with ``train.*`` (and optionally ``validation.*``,
            ``test.*``), or a single file, which is split 80/10/10 deterministically.
        text_column: Column holding the texts (user files only).
        label_column: Column holding the labels (user files only).

    Raises:
        DataError: If the data cannot be read or validated, or a split holds labels the training
            split does not.
    """
    folder, text_column, label_column = _locate(data, text_column, label_column)
    if folder.is_dir():
        files = _split_files(folder)
        train = load_file(files["train"], text_column=text_column, label_column=label_column)
        others = {
            split: load_file(files[split], text_column=text_column, label_column=label_column,
                             allowed_labels=train.label_names)
            for split in ("validation", "test") if split in files
        }
        validation, test = others.get("validation"), others.get("test")
        if validation is None:
            train, validation, _ = split_dataset(train, fractions=(0.9, 0.1, 0.0))
    else:
        whole = load_file(folder, text_column=text_column, label_column=label_column)
        train, validation, test = split_dataset(whole)
    if len(set(train.labels)) < 2:
        raise DataError(
            f"{train.source}: training data has {len(set(train.labels))} distinct label(s); "
            "a classifier needs at least 2",
            path=train.source,
        )
    return DataSplits(
        train=train,
        validation=validation,
        test=test,
        label_names=train.label_names,
        sha256=_combine_fingerprints((train, validation, test)),
    )


def load_eval_data(
    data: str | Path = BUNDLED,
    *,
    split: Split = "test",
    text_column: str = "text",
    label_column: str = "label",
    allowed_labels: Collection[str] | None = None,
) -> TextDataset:
    """Load the rows a suite evaluates on.

    Args:
        data: ``"bundled"``, a folder of split files, or a single file (used whole).
        split: Which split of ``"bundled"`` or of a folder to use.
        text_column: Column holding the texts (user files only).
        label_column: Column holding the labels (user files only).
        allowed_labels: If given, every label must be one of these (the model's labels).

    Raises:
        DataError: If the data cannot be read or validated.
    """
    folder, text_column, label_column = _locate(data, text_column, label_column)
    if folder.is_dir():
        files = _split_files(folder)
        if split not in files:
            raise DataError(
                f"{folder}: no {split} file in this folder; add {split}.jsonl or pass the file",
                path=str(folder),
            )
        target = files[split]
    else:
        target = folder
    dataset = load_file(target, text_column=text_column, label_column=label_column,
                        allowed_labels=allowed_labels)
    if str(data) == BUNDLED:
        dataset = TextDataset(dataset.texts, dataset.labels, f"bundled:{split}", dataset.sha256)
    return dataset
