"""The loader's strict reading: CSV field counts, 1-based file lines, size limits, NUL, Unicode."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from data_files import write_file as _write

from guard.data import load_eval_data, load_file, load_splits
from guard.data.limits import DEFAULT_MAX_TEXT_BYTES, InputLimits
from guard.errors import ConfigError, DataError


def test_unquoted_comma_in_csv_is_an_error_naming_the_line(tmp_path: Path) -> None:
    # pandas took the first field as an index: every text became " please", accepted
    f = _write(tmp_path / "d.csv", "text,label\nhello, please,greeting\nopen, when,hours\n")
    with pytest.raises(DataError) as err:
        load_file(f)
    assert err.value.problems == (
        'line 2: 3 field(s) but the header has 2; quote texts that hold commas, e.g. '
        '"hello, please",greeting',
        'line 3: 3 field(s) but the header has 2; quote texts that hold commas, e.g. '
        '"hello, please",greeting',
    )


def test_csv_rows_short_of_fields_and_quoted_commas(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", 'text,label\n"hello, please",greeting\nno label here\n')
    with pytest.raises(DataError, match=r"line 3: 1 field\(s\) but the header has 2; give "
                                         r"every column a value"):
        load_file(f)
    ok = _write(tmp_path / "ok.csv", 'text,label\n"hello, please",greeting\n"two\nlines",x\n')
    assert load_file(ok).texts == ("hello, please", "two\nlines")


def test_csv_line_numbers_count_blank_and_multiline_rows(tmp_path: Path) -> None:
    # header = line 1; the quoted field spans lines 3-4; the empty text is on line 6
    f = _write(tmp_path / "d.csv", 'text,label\n\n"multi\nline",a\nfine,b\n   ,c\n')
    with pytest.raises(DataError) as err:
        load_file(f)
    assert err.value.problems == ("line 6: empty text in column 'text'; fill it or drop the row",)


def test_csv_syntax_errors_name_the_line(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", 'text,label\nfine,a\n"never closed,b\nmore,c\n')
    with pytest.raises(DataError, match=r"d\.csv: line 3: a quoted field is never closed"):
        load_file(f)
    f = _write(tmp_path / "e.csv", 'text,label\n"quoted"trailing,a\n')
    with pytest.raises(DataError, match=r"e\.csv: line 2: ',' expected after '\"'"):
        load_file(f)
    f = _write(tmp_path / "h.csv", "text,text,label\na,b,c\n")
    with pytest.raises(DataError, match=r"line 1: the header repeats column\(s\) \['text'\]"):
        load_file(f)


def test_nul_characters_are_refused_with_their_line(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "text,label\nfine,a\nopen\x00 when,b\n")
    with pytest.raises(DataError) as err:
        load_file(f)
    assert err.value.problems == (
        "line 3: the text in column 'text' holds a NUL character (U+0000) at character 5; "
        "remove it",)
    j = _write(tmp_path / "d.jsonl", '{"text": "a\\u0000b", "label": "x"}\n')
    with pytest.raises(DataError, match=r"line 1: the text in column 'text' holds a NUL"):
        load_file(j)


def test_jsonl_errors_name_file_lines_not_row_indices(tmp_path: Path) -> None:
    # blank lines shift rows against lines; the old messages counted rows ("row 2"), and
    # parse errors came from pyarrow counted from 0 ("in row 1" for the second line)
    rows = ('{"text": "a", "label": "x"}\n\n{"text": "", "label": "y"}\n'
            '{"text": "ok", "label": "y"}\n{"text": "b", "label": \n[1, 2]\n')
    f = _write(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError) as err:
        load_file(f)
    problems = err.value.problems
    assert [p.split(":")[0] for p in problems] == ["line 3", "line 5", "line 6"]
    assert "empty text" in problems[0] and "not valid JSON" in problems[1]
    assert "a JSON list, not an object" in problems[2]


@pytest.mark.parametrize(("value", "said"), [("null", "empty text"),
                                             ("42", "is a number (42), not a string"),
                                             ('["a"]', "is a list"),
                                             ("true", "is a boolean")])
def test_non_string_texts_are_refused(tmp_path: Path, value: str, said: str) -> None:
    f = _write(tmp_path / "d.jsonl", f'{{"text": "fine", "label": "a"}}\n'
                                     f'{{"text": {value}, "label": "b"}}\n')
    with pytest.raises(DataError, match=rf"line 2: .*{re.escape(said)}"):
        load_file(f)


def test_lone_surrogates_are_refused_not_crashing(tmp_path: Path) -> None:
    # json.loads accepts "\ud800"; hashing the row (UTF-8) used to crash on it
    f = _write(tmp_path / "d.jsonl", '{"text": "fine", "label": "a"}\n'
                                     '{"text": "bad \\ud800", "label": "b"}\n'
                                     '{"text": "fine", "label": "\\udfff"}\n')
    with pytest.raises(DataError) as err:
        load_file(f)
    assert err.value.problems == (
        "line 2: the text in column 'text' holds a lone surrogate '\\ud800' at character 5, "
        "which is not valid Unicode",
        "line 3: the label in column 'label' holds a lone surrogate '\\udfff' at character 1, "
        "which is not valid Unicode",
    )


def test_a_text_over_the_limit_is_refused_naming_its_line(tmp_path: Path) -> None:
    big = "word " * (DEFAULT_MAX_TEXT_BYTES // 5 + 1)  # just over 1 MiB
    f = _write(tmp_path / "d.jsonl", json.dumps({"text": "short", "label": "a"}) + "\n"
               + json.dumps({"text": big, "label": "b"}) + "\n")
    with pytest.raises(DataError, match=rf"line 2: the text in column 'text' is {len(big)} "
                                        r"bytes long, over the limit of 1 MiB per text "
                                        r"\(set GUARD_MAX_TEXT_BYTES to raise it\)"):
        load_file(f)


def test_limits_come_from_the_environment(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    rows = "text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(20))
    f = _write(tmp_path / "d.csv", rows)
    assert len(load_file(f)) == 20
    monkeypatch.setenv("GUARD_MAX_TEXT_BYTES", "13")  # "text number 10" is 14 bytes
    with pytest.raises(DataError, match=r"line 12: a field is longer than the limit of 13 "
                                        r"bytes per text \(set GUARD_MAX_TEXT_BYTES"):
        load_file(f)
    j = _write(tmp_path / "d.jsonl", "".join(json.dumps({"text": f"text number {i}",
                                                         "label": "ab"[i % 2]}) + "\n"
                                             for i in range(20)))
    with pytest.raises(DataError, match=r"line 11: the text in column 'text' is 14 bytes long, "
                                        r"over the limit of 13 bytes per text"):
        load_file(j)
    monkeypatch.setenv("GUARD_MAX_TEXT_BYTES", "100")
    monkeypatch.setenv("GUARD_MAX_FILE_BYTES", "64")
    for load in (load_file, load_splits, load_eval_data):
        with pytest.raises(DataError, match=r"d\.csv: the file is \d+ bytes, over the limit "
                                            r"of 64 bytes per file; split it, or set "
                                            r"GUARD_MAX_FILE_BYTES"):
            load(f)
    monkeypatch.setenv("GUARD_MAX_FILE_BYTES", "lots")
    with pytest.raises(ConfigError, match=r"GUARD_MAX_FILE_BYTES='lots': expected a positive"):
        load_file(f)


def test_csv_fields_longer_than_the_limit_stop_the_parser(tmp_path: Path) -> None:
    f = _write(tmp_path / "d.csv", "text,label\nshort,a\n" + "x" * 300 + ",b\n")
    with pytest.raises(DataError, match=r"line 3: a field is longer than the limit of 200 "
                                        r"bytes per text"):
        load_file(f, limits=InputLimits(max_text_bytes=200))
    assert len(load_file(f, limits=InputLimits(max_text_bytes=300))) == 2


def test_parquet_limit_counts_decoded_columns(tmp_path: Path) -> None:
    # 64 kB of repeated text compresses to a small file: the limit counts what is decoded
    frame = pd.DataFrame({"text": ["same text again " * 20] * 200, "label": ["a", "b"] * 100})
    frame.to_parquet(tmp_path / "d.parquet", compression="zstd")
    size = (tmp_path / "d.parquet").stat().st_size
    assert size < 16_000
    with pytest.raises(DataError, match=r"decoded, the columns \['text', 'label'\] take more "
                                        r"than 16000 bytes \(the per-file limit\)"):
        load_file(tmp_path / "d.parquet", limits=InputLimits(max_file_bytes=16_000))
    assert len(load_file(tmp_path / "d.parquet")) == 200


def test_utf8_bom_and_json_arrays(tmp_path: Path) -> None:
    bom = _write(tmp_path / "d.csv", "\ufefftext,label\nhello,a\n".encode())
    assert load_file(bom).texts == ("hello",)
    array = _write(tmp_path / "d.json", json.dumps([{"text": "hi", "label": "a"},
                                                    {"text": "", "label": "b"}]))
    with pytest.raises(DataError, match=r"record 2: empty text"):
        load_file(array)


def test_input_limits_validate_their_values() -> None:
    with pytest.raises(ConfigError, match="max_text_bytes must be a positive"):
        InputLimits(max_text_bytes=0)
    assert InputLimits.from_env({"GUARD_MAX_TEXT_BYTES": "2_048"}).max_text_bytes == 2048
    assert InputLimits.from_env({}) == InputLimits()
