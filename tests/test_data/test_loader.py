from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from data_files import write_file as _write

from guard.data import TextDataset, bundled_dir, load_eval_data, load_file, load_splits
from guard.data.loader import split_dataset
from guard.errors import DataError


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def test_bundled_meets_the_datasheet() -> None:
    splits = load_splits("bundled")
    labels = json.loads((bundled_dir() / "labels.json").read_text())
    assert splits.label_names == tuple(sorted(labels))
    assert len(labels) >= 12
    assert splits.validation is not None and splits.test is not None
    total = len(splits.train) + len(splits.validation) + len(splits.test)
    assert total >= 1200
    for part in (splits.train, splits.validation, splits.test):
        assert set(part.labels) == set(labels)  # every intent in every split
    responses = json.loads((bundled_dir() / "responses.json").read_text())
    assert set(responses) == set(labels)
    assert (bundled_dir() / "DATASHEET.md").is_file()


def test_bundled_splits_do_not_leak() -> None:
    splits = load_splits("bundled")
    assert splits.validation is not None and splits.test is not None
    seen = [t.lower().strip() for t in splits.train.texts]
    held_out = [t.lower().strip() for t in splits.validation.texts + splits.test.texts]
    assert len(set(seen + held_out)) == len(seen) + len(held_out)  # no duplicate anywhere
    train_tokens = [_tokens(t) for t in splits.train.texts]
    worst = 0.0
    for text in splits.test.texts:
        a = _tokens(text)
        for b in train_tokens:
            if a and b:
                worst = max(worst, len(a & b) / len(a | b))
    assert worst < 0.6, f"a test text shares {worst:.2f} token Jaccard with a training text"


def test_bundled_is_deterministic() -> None:
    assert load_splits("bundled").sha256 == load_splits("bundled").sha256
    test = load_eval_data("bundled", split="test")
    assert test.source == "bundled:test"


def test_user_csv_jsonl_parquet_with_custom_columns(tmp_path: Path) -> None:
    rows = {"utterance": ["open when?", "where is the museum", "refund pls"],
            "intent": ["opening_hours", "directions", "refund_request"]}
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame(rows).to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    loaded = [load_file(tmp_path / f"d.{ext}", text_column="utterance", label_column="intent")
              for ext in ("csv", "jsonl", "parquet")]
    assert all(d.texts == tuple(rows["utterance"]) for d in loaded)
    assert all(d.labels == tuple(rows["intent"]) for d in loaded)
    assert len({d.sha256 for d in loaded}) == 1  # fingerprint is format independent


def test_missing_column_names_file_and_fix(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "utterance,label\nhello,a\n")
    with pytest.raises(DataError, match=r"d\.csv: missing column\(s\) \['text'\].*--text-column"):
        load_file(f)


def test_unknown_label_names_row(tmp_path: Path) -> None:
    rows = '{"text": "hi", "label": "a"}\n{"text": "yo", "label": "zz"}\n'
    f = _write(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"(?s)d\.jsonl: 1 bad row.*line 2: unknown label 'zz'"
                       ) as err:
        load_file(f, allowed_labels={"a", "b"})
    assert err.value.problems and err.value.path == str(f)


def test_empty_text_names_csv_row_and_line(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "text,label\nfine,a\n   ,b\n")
    with pytest.raises(DataError, match=r"line 3: empty text"):
        load_file(f)


def test_all_bad_rows_are_collected(tmp_path: Path) -> None:
    lines = "".join(json.dumps({"text": "", "label": "a"}) + "\n" for _ in range(8))
    f = _write(tmp_path / "d.jsonl", lines)
    with pytest.raises(DataError, match=r"(?s)8 bad row.*and 3 more") as err:
        load_file(f)
    assert len(err.value.problems) == 8


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", b"text,label\nok,a\ncaf\xe9,b\n")
    with pytest.raises(DataError, match=r"d\.csv: line 3 is not valid UTF-8.*iconv"):
        load_file(f)


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    f = _write(tmp_path / "d.jsonl", content)
    with pytest.raises(DataError, match=r"d\.jsonl: the file is empty"):
        load_file(f)


def test_header_only_csv_has_no_rows(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "text,label\n")
    with pytest.raises(DataError, match="no rows"):
        load_file(f)


def test_malformed_json_and_unsupported_type(tmp_path: Path) -> None:
    bad = _write(tmp_path / "d.jsonl", '{"text": "a", "label": \n')
    with pytest.raises(DataError, match=r"d\.jsonl: 1 bad row.*\n  line 1: not valid JSON "
                       r"\(Expecting value at character 25\)"):
        load_file(bad)
    with pytest.raises(DataError, match=r"unsupported file type '\.txt'"):
        load_file(_write(tmp_path / "d.txt", "hello"))
    with pytest.raises(DataError, match="does not exist"):
        load_file(tmp_path / "missing.csv")


def test_single_file_split_is_stratified_and_order_independent() -> None:
    texts = [f"text number {i}" for i in range(100)]
    labels = ["a" if i % 2 else "b" for i in range(100)]
    forward = split_dataset(TextDataset.from_rows(texts, labels, source="x"))
    backward = split_dataset(TextDataset.from_rows(texts[::-1], labels[::-1], source="x"))
    assert [len(p) for p in forward] == [80, 10, 10]
    for f_part, b_part in zip(forward, backward, strict=True):
        assert set(f_part.texts) == set(b_part.texts)
        assert f_part.labels.count("a") == f_part.labels.count("b")


def test_folder_without_validation_carves_one(tmp_path: Path) -> None:
    rows = [{"text": f"message {i}", "label": "ab"[i % 2]} for i in range(40)]
    pd.DataFrame(rows).to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    splits = load_splits(tmp_path)
    assert splits.validation is not None and len(splits.validation) == 4
    assert len(splits.train) == 36 and splits.test is None
    with pytest.raises(DataError, match="no test file in this folder"):
        load_eval_data(tmp_path, split="test")


def test_single_label_training_data_is_refused(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "text,label\n" + "".join(f"t{i},a\n" for i in range(20)))
    with pytest.raises(DataError, match="at least 2"):
        load_splits(f)
