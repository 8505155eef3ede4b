"""Load labelled text, with errors that name the file, the line and the fix.

Two sources are accepted everywhere a data set is asked for:

* ``"bundled"``: the metaverse intents written for this project (``guard/data/metaverse_intents``),
  with fixed train / validation / test splits;
* a path: one CSV, JSONL/JSON or parquet file, or a folder holding ``train.*`` and optionally
  ``validation.*`` and ``test.*`` files. A single file used for training is split
  deterministically (stratified 80/10/10 by a hash of each text, independent of row order).

CSV and JSON Lines are parsed here, strictly and line by line (the csv and json modules), so
every error names the 1-based line of the file; parquet is read with pyarrow. Every text and
file is held to :class:`~guard.data.limits.InputLimits`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from guard.data.limits import FILE_ENV, TEXT_ENV, InputLimits, describe_size
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


# A column absent from a row (JSON objects may omit keys; parquet never does).
_ABSENT: Any = object()
_HINTS = {
    "json": 'each line must be one JSON object such as {"text": "...", "label": "..."}',
    "csv": "the first line must be a header row, and texts holding commas, quotes or line "
           'breaks must be quoted, e.g. "hello, please",greeting',
    "parquet": "the file must be a readable parquet table",
}


@dataclass(frozen=True)
class _Rows:
    """What a file holds before validation: its columns and, per row, where and which values."""

    columns: tuple[str, ...]
    rows: list[tuple[int, Any, Any]]  # (number, text, label); _ABSENT when the row lacks it
    problems: list[str]  # rows that could not be read at all
    unit: str = "line"  # what the numbers count: file lines, parquet rows or JSON records


def _check_size(path: Path, limits: InputLimits) -> None:
    problem = limits.file_problem(path.stat().st_size)
    if problem:
        raise DataError(f"{path}: the file {problem}", path=str(path))


def iter_text_lines(stream: IO[bytes], *, where: str, limits: InputLimits,
                    fix: str | None = None) -> Iterator[tuple[int, str]]:
    """Decode a byte stream line by line as UTF-8, enforcing the per-file limit.

    Yields ``(line number, line)`` with 1-based line numbers and each line's line break kept
    (a leading byte-order mark is dropped).

    Args:
        stream: The bytes, e.g. a file opened ``"rb"`` or ``sys.stdin.buffer``.
        where: The file name (or ``"stdin"``), for messages.
        limits: ``max_file_bytes`` applies to the whole stream.
        fix: What to do about invalid UTF-8 (default: an ``iconv`` command for the file).

    Raises:
        DataError: Naming the line, for invalid UTF-8 or when the stream grows past
            ``limits.max_file_bytes``.
    """
    offset = 0
    for number, raw in enumerate(stream, start=1):
        start, offset = offset, offset + len(raw)
        if offset > limits.max_file_bytes:
            problem = limits.file_problem(offset)
            raise DataError(f"{where}: line {number}: the input {problem}", path=where)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            name, suffix = Path(where).name, Path(where).suffix
            advice = fix or (f"re-save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 {name} "
                             f"> fixed{suffix}")
            raise DataError(
                f"{where}: line {number} is not valid UTF-8 (byte {raw[exc.start]:#04x} at "
                f"offset {start + exc.start}); {advice}",
                path=where,
            ) from None
        if number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        yield number, line


def _read_csv(lines: Iterator[tuple[int, str]], where: str, text_column: str,
              label_column: str, limits: InputLimits) -> _Rows:
    """Parse CSV strictly: a header line, then rows with exactly as many fields."""
    import csv

    numbers: list[int] = []

    def feed() -> Iterator[str]:
        for number, line in lines:
            numbers.append(number)
            yield line

    reader = csv.reader(feed(), strict=True)
    header: list[str] | None = None
    text_at = label_at = -1
    rows: list[tuple[int, Any, Any]] = []
    problems: list[str] = []
    # The csv module caps fields at 128 Ki characters by default; let it stop at the text
    # limit instead (counted in characters, at most the byte count), for this read only.
    previous = csv.field_size_limit(limits.max_text_bytes)
    try:
        while True:
            first = len(numbers) + 1  # the line the next record starts on
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                message = str(exc)
                if "field larger than field limit" in message:
                    raise DataError(
                        f"{where}: line {first}: a field is longer than the limit of "
                        f"{describe_size(limits.max_text_bytes)} per text (set {TEXT_ENV} to "
                        "raise it)", path=where) from None
                if "unexpected end of data" in message:
                    message = "a quoted field is never closed (unexpected end of the file)"
                raise DataError(f"{where}: line {first}: {message}; {_HINTS['csv']}",
                                path=where) from None
            if not fields or (header is None and not "".join(fields).strip()):
                continue  # a blank line
            if header is None:
                header = fields
                duplicates = sorted({c for c in header if header.count(c) > 1})
                if duplicates:
                    raise DataError(f"{where}: line {first}: the header repeats column(s) "
                                    f"{duplicates}; give every column its own name",
                                    path=where)
                text_at = header.index(text_column) if text_column in header else -1
                label_at = header.index(label_column) if label_column in header else -1
                continue
            if len(fields) != len(header):
                fix = ('quote texts that hold commas, e.g. "hello, please",greeting'
                       if len(fields) > len(header) else "give every column a value")
                problems.append(f"line {first}: {len(fields)} field(s) but the header has "
                                f"{len(header)}; {fix}")
                continue
            rows.append((first, fields[text_at] if text_at >= 0 else _ABSENT,
                         fields[label_at] if label_at >= 0 else _ABSENT))
    finally:
        csv.field_size_limit(previous)
    return _Rows(tuple(header or ()), rows, problems)


def _read_json_lines(lines: Iterator[tuple[int, str]], text_column: str, label_column: str
                     ) -> _Rows:
    columns: dict[str, None] = {}
    rows: list[tuple[int, Any, Any]] = []
    problems: list[str] = []
    for number, line in lines:
        if not line.strip():
            continue
        row = f"line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{row}: not valid JSON ({exc.msg} at character {exc.pos + 1}); "
                            f"{_HINTS['json']}")
            continue
        if not isinstance(record, dict):
            problems.append(f"{row}: a JSON {type(record).__name__}, not an object; "
                            f"{_HINTS['json']}")
            continue
        columns.update(dict.fromkeys(record))
        rows.append((number, record.get(text_column, _ABSENT),
                     record.get(label_column, _ABSENT)))
    return _Rows(tuple(columns), rows, problems)


def _read_json_array(text: str, where: str, text_column: str, label_column: str) -> _Rows:
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: line {exc.lineno}: not valid JSON ({exc.msg} at column "
                        f"{exc.colno}); a .json file holds one array of objects or JSON Lines",
                        path=where) from None
    columns: dict[str, None] = {}
    rows: list[tuple[int, Any, Any]] = []
    problems: list[str] = []
    for index, record in enumerate(records, start=1):
        row = f"record {index}"
        if not isinstance(record, dict):
            problems.append(f"{row}: a JSON {type(record).__name__}, not an object")
            continue
        columns.update(dict.fromkeys(record))
        rows.append((index, record.get(text_column, _ABSENT),
                     record.get(label_column, _ABSENT)))
    return _Rows(tuple(columns), rows, problems, unit="record")


def _read_parquet(path: Path, text_column: str, label_column: str, limits: InputLimits
                  ) -> _Rows:
    """Read the two columns batch by batch, stopping once they exceed the per-file limit.

    A compressed file can be far smaller than its columns (repeated texts compress well), so
    the limit counts the decoded columns as they arrive, not just the file's bytes.
    """
    import pyarrow.parquet as pq

    where = str(path)
    texts: list[Any] = []
    labels: list[Any] = []
    try:
        parquet = pq.ParquetFile(path)
        columns = tuple(parquet.schema_arrow.names)
        wanted = [c for c in (text_column, label_column) if c in columns]
        decoded = 0
        for batch in parquet.iter_batches(batch_size=4096, columns=wanted) if wanted else ():
            decoded += batch.nbytes
            if decoded > limits.max_file_bytes:
                raise DataError(f"{where}: decoded, the columns {wanted} take more than "
                                f"{describe_size(limits.max_file_bytes)} (the per-file limit); "
                                f"split the file, or set {FILE_ENV} to raise the limit",
                                path=where)
            if text_column in wanted:
                texts.extend(batch.column(wanted.index(text_column)).to_pylist())
            if label_column in wanted:
                labels.extend(batch.column(wanted.index(label_column)).to_pylist())
        n = parquet.metadata.num_rows
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise DataError(f"{where}: cannot parse it as parquet: {exc}; {_HINTS['parquet']}",
                        path=where) from exc
    rows = [(k + 1, texts[k] if texts else _ABSENT, labels[k] if labels else _ABSENT)
            for k in range(n if wanted else 0)]
    return _Rows(columns, rows, [], unit="row")


def _read_rows(path: Path, fmt: str, text_column: str, label_column: str,
               limits: InputLimits) -> _Rows:
    """Parse one file into rows; syntax problems name 1-based file lines."""
    _check_size(path, limits)
    if fmt == "parquet":
        return _read_parquet(path, text_column, label_column, limits)
    where = str(path)
    with path.open("rb") as stream:
        lines = iter_text_lines(stream, where=where, limits=limits)
        if fmt == "csv":
            parsed = _read_csv(lines, where, text_column, label_column, limits)
            if not parsed.columns:
                raise _empty_file(path)
            if not parsed.rows and not parsed.problems:
                raise DataError(f"{path}: the file has a header but no rows; add labelled rows",
                                path=where)
            return parsed
        first = next(((n, line) for n, line in lines if line.strip()), None)
        if first is None:
            raise _empty_file(path)
        if path.suffix.lower() == ".json" and first[1].lstrip().startswith("["):
            rest = "".join(line for _, line in lines)
            return _read_json_array("\n" * (first[0] - 1) + first[1] + rest, where,
                                    text_column, label_column)
        return _read_json_lines(itertools.chain([first], lines), text_column, label_column)


def _empty_file(path: Path) -> DataError:
    return DataError(
        f"{path}: the file is empty; add rows with a text column and a label column "
        "(for JSONL, one object per line such as {\"text\": \"...\", \"label\": \"...\"})",
        path=str(path),
    )


def _describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "a number", float: "a number", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)
    return f"{kind} ({json.dumps(value, default=str)[:40]})"


def _text_problem(value: Any, column: str, limits: InputLimits) -> str | None:
    if value is _ABSENT:
        return f"no {column!r} field; give every row a text, or drop the row"
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"empty text in column {column!r}; fill it or drop the row"
    if not isinstance(value, str):
        return f"the text in column {column!r} is {_describe(value)}, not a string"
    if "\x00" in value:
        return (f"the text in column {column!r} holds a NUL character (U+0000) at character "
                f"{value.index(chr(0)) + 1}; remove it")
    problem = limits.text_problem(value)
    return f"the text in column {column!r} {problem}" if problem else None


def _label_problem(value: Any, column: str, limits: InputLimits) -> str | None:
    if value is _ABSENT or value is None or (isinstance(value, str) and not value.strip()):
        return f"missing label in column {column!r}; label the row or drop it"
    if not isinstance(value, str | int | float):  # bool is an int
        return f"the label in column {column!r} is {_describe(value)}; use a string"
    if isinstance(value, str):
        if "\x00" in value:
            return f"the label in column {column!r} holds a NUL character (U+0000); remove it"
        problem = limits.text_problem(value)
        if problem:
            return f"the label in column {column!r} {problem}"
    return None


def load_file(
    path: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    allowed_labels: Collection[str] | None = None,
    limits: InputLimits | None = None,
) -> TextDataset:
    """Load and validate one CSV, JSONL/JSON or parquet file.

    CSV is read strictly: the first line is the header and every row must have exactly as many
    fields (an unquoted comma in a text is an error, not a shifted column). Problems name the
    1-based line of the file (the CSV header is line 1); parquet rows are named ``row N`` and
    the records of a JSON array ``record N``.

    Args:
        path: The file.
        text_column: Column holding the texts.
        label_column: Column holding the labels (converted to strings).
        allowed_labels: If given, every label must be one of these (e.g. the model's labels).
        limits: Size limits for one text and the whole file; default
            :meth:`InputLimits.from_env` (1 MiB per text, 256 MiB per file).

    Returns:
        The validated rows.

    Raises:
        DataError: For a missing, empty or oversized file, invalid UTF-8, a parse error, a
            missing column, a row with the wrong number of CSV fields, an empty, non-string,
            oversized or invalid-Unicode text, a NUL character, a missing label, or a label
            outside ``allowed_labels``. The message names the file, the lines and the fix;
            ``DataError.problems`` lists every bad row.
    """
    limits = InputLimits.from_env() if limits is None else limits
    file = Path(path).expanduser()
    if not file.is_file():
        what = "is a folder" if file.is_dir() else "does not exist"
        raise DataError(f"{file}: {what}; pass a .csv, .jsonl or .parquet file", path=str(file))
    fmt = _format_of(file)
    parsed = _read_rows(file, fmt, text_column, label_column, limits)
    if not parsed.rows and not parsed.problems:
        raise DataError(f"{file}: the file has no rows; add labelled rows", path=str(file))
    missing = [c for c in (text_column, label_column) if c not in parsed.columns]
    if missing and parsed.rows:
        raise DataError(
            f"{file}: missing column(s) {missing}; the file has {list(parsed.columns)}. "
            f"{_FIX_COLUMNS}",
            path=str(file),
        )
    allowed = set(allowed_labels) if allowed_labels is not None else None
    problems: list[str] = list(parsed.problems)
    texts: list[str] = []
    labels: list[str] = []
    shared: dict[str, str] = {}  # one string object per distinct label
    for number, text, label in parsed.rows:
        row = f"{parsed.unit} {number}"
        problem = _text_problem(text, text_column, limits) or _label_problem(
            label, label_column, limits)
        if problem:
            problems.append(f"{row}: {problem}")
            continue
        label_text = str(label).strip()
        if allowed is not None and label_text not in allowed:
            problems.append(
                f"{row}: unknown label {label_text!r}; expected one of {sorted(allowed)} "
                "(fix the label, or evaluate a model trained on these labels)"
            )
            continue
        texts.append(text)
        labels.append(shared.setdefault(label_text, label_text))
    del parsed
    if problems:
        problems.sort(key=_line_order)
        shown = "\n  ".join(problems[:_MAX_SHOWN])
        hidden = len(problems) - _MAX_SHOWN
        more = f"\n  ... and {hidden} more" if hidden > 0 else ""
        raise DataError(f"{file}: {len(problems)} bad row(s):\n  {shown}{more}",
                        path=str(file), problems=problems)
    return TextDataset.from_rows(texts, labels, source=str(file))


def _line_order(problem: str) -> int:
    """Sort key: the number after ``line`` / ``row`` / ``record`` that starts a problem."""
    number = problem.split(":", 1)[0].rsplit(" ", 1)[-1]
    return int(number) if number.isdigit() else 0


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
    limits: InputLimits | None = None,
) -> DataSplits:
    """Load train / validation / test splits for training.

    Args:
        data: ``"bundled"``, a folder with ``train.*`` (and optionally ``validation.*``,
            ``test.*``), or a single file, which is split 80/10/10 deterministically.
        text_column: Column holding the texts (user files only).
        label_column: Column holding the labels (user files only).
        limits: Size limits per text and per file (see :func:`load_file`).

    Raises:
        DataError: If the data cannot be read or validated, or a split holds labels the training
            split does not.
    """
    limits = InputLimits.from_env() if limits is None else limits
    folder, text_column, label_column = _locate(data, text_column, label_column)
    if folder.is_dir():
        files = _split_files(folder)
        train = load_file(files["train"], text_column=text_column, label_column=label_column,
                          limits=limits)
        others = {
            split: load_file(files[split], text_column=text_column, label_column=label_column,
                             allowed_labels=train.label_names, limits=limits)
            for split in ("validation", "test") if split in files
        }
        validation, test = others.get("validation"), others.get("test")
        if validation is None:
            train, validation, _ = split_dataset(train, fractions=(0.9, 0.1, 0.0))
    else:
        whole = load_file(folder, text_column=text_column, label_column=label_column,
                          limits=limits)
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
    limits: InputLimits | None = None,
) -> TextDataset:
    """Load the rows a suite evaluates on.

    Args:
        data: ``"bundled"``, a folder of split files, or a single file (used whole).
        split: Which split of ``"bundled"`` or of a folder to use.
        text_column: Column holding the texts (user files only).
        label_column: Column holding the labels (user files only).
        allowed_labels: If given, every label must be one of these (the model's labels).
        limits: Size limits per text and per file (see :func:`load_file`).

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
                        allowed_labels=allowed_labels, limits=limits)
    if str(data) == BUNDLED:
        dataset = TextDataset(dataset.texts, dataset.labels, f"bundled:{split}", dataset.sha256)
    return dataset
