from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import guard.normalize as normalize_module
from guard.errors import DataError, UsageError
from guard.normalize import normalize

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = json.loads((Path(__file__).parent / "obfuscation_sentences.json")
                       .read_text(encoding="utf-8"))
TOXIC: list[str] = SENTENCES["toxic"]
BENIGN: list[str] = SENTENCES["benign"]


def _lower(text: str) -> str:
    """What normalisation may do to ordinary text: lower case, white space squeezed."""
    return re.sub(r"\s+", " ", text.lower()).strip()


def _check_origin(raw: str) -> str:
    norm = normalize(raw)
    assert len(norm.origin) == len(norm.text)
    assert all(0 <= o < len(raw) for o in norm.origin)
    assert list(norm.origin) == sorted(norm.origin)  # order is preserved
    return norm.text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("you are an idiot", "you are an idiot"),
        ("y0u ar3 an 1d10t", "you are an idiot"),
        ("you\u200b are\u200d an id\u200biot", "you are an idiot"),
        ("уоu аrе аn іdіоt", "you are an idiot"),  # Cyrillic look-alikes
        ("ΥΟU ΑRΕ ΑΝ ΙDΙΟΤ", "you are an idiot"),  # upper-case Greek look-alikes
        ("ｙｏｕ ａｒｅ ａｎ ｉｄｉｏｔ", "you are an idiot"),  # fullwidth (NFKC)
        ("you are an i d i o t", "you are an idiot"),
        ("you are an I.D.I.O.T", "you are an idiot"),
        ("you are stuuuupid", "you are stupid"),
        ("sh!t happens", "shit happens"),
        ("@ss", "ass"),
        ("YOU   ARE\tAN\nIDIOT", "you are an idiot"),
        ("1 w1ll k1ll y0u", "i will kill you"),  # "1" alone is "I" in a text in leetspeak
        # things that must survive untouched
        ("see you at 3pm on 2024-05-01", "see you at 3pm on 2024-05-01"),
        ("the 2nd floor, 10k coins", "the 2nd floor, 10k coins"),
        ("hello! good food, too", "hello! good food, too"),
        ("i am a big fan", "i am a big fan"),
        ("I have 1 cat", "i have 1 cat"),
    ],
)
def test_normalisation_table(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


# -- finding 1: spaced-out letters -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # the run used to swallow the one-letter word next to it ("aidiot", "i'mabitch")
        ("you are a i d i o t", "you are a idiot"),
        ("I'm a b i t c h", "i'm a bitch"),
        # a whole sentence spelt out is split back into words
        ("y o u a r e a n i d i o t", "you are an idiot"),
        ("i w i l l k i l l y o u", "i will kill you"),
        ("s h u t u p y o u s t u p i d b i t c h", "shut up you stupid bitch"),
        ("s t u u u p i d", "stupid"),
        ("a i d i o t!", "a idiot!"),
        ("(i d i o t)", "(idiot)"),
        ("d i e", "die"),  # three letters join only into an evasion target
    ],
)
def test_spaced_letters_are_joined_into_words(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


def test_spaces_put_between_words_map_to_the_separators_they_stand_for() -> None:
    for raw, separator in (("y o u a r e a n i d i o t", " "), ("y.o.u.a.r.e.a.n.i.d.i.o.t", ".")):
        norm = normalize(raw)
        assert norm.text == "you are an idiot"
        assert [raw[norm.origin[i]] for i, c in enumerate(norm.text) if c == " "] == [separator] * 3
        start = norm.text.index("idiot")
        a, b = norm.original_span(start, start + 5)
        assert raw[a:b] == "i d i o t".replace(" ", separator)


@pytest.mark.parametrize("raw", [
    "e.g.", "i.e.", "U.S.A.", "U.S.S.R.", "N.A.S.A.", "A/B", "3-2-1", "R&D", "a.m.", "Ph.D.",
    "Press A B X Y to jump.", "Plot the x y z axes.", "options a b c d", "a K x K matrix",
    "J R R Tolkien", "e.g. see the U.S.A. map", "A/B testing", "well-known e-mail",
])
def test_abbreviations_and_lists_of_letters_stay(raw: str) -> None:
    assert normalize(raw).text == _lower(raw)


# -- finding 2: dotted capitals, idempotence -----------------------------------------------------


def test_a_dotted_capital_i_is_an_i() -> None:
    assert normalize("YOU ARE AN İDİOT").text == "you are an idiot"


_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_PIECES = (list(_LETTERS) + list("AEIOUXYZ") + [" "] * 8 + list(".,'-!/_*·|+#~()\"")
           + list("0134@$") + ["\u0301", "\u0307", "\u0338", "\u200b", "\u3164", "\uffa0"]
           + list("İıΩаеоіΙꭵᎪᏟօսёΗΣ") + ["\t", "\n", "\u00a0"])
_TOKENS = ["idiot", "toidi", "id", "iot", "iiddiioott", "f*ck", "sh", "it", "a", "i", "you",
           "are", "kill", "llik", "e.g.", "U.S.A.", "i.d.i.o.t", "d i e", "stuuupid", "1d10t",
           "pen", "is", "a b c d", "x", "y", "z", "kkk", "iii", "id·iot", "uoy", "era", "na"]


@settings(max_examples=300, deadline=None)
@given(st.text())
@example("Ω")  # once broke idempotence: upper-case look-alike lower-cased into another one
@example("YOU ARE AN İDİOT")  # the dot of İ used to survive lower-casing
@example("i i toidi·s")  # one undoing uncovers another: "idiot·s" -> "idiots"
def test_normalisation_is_idempotent(text: str) -> None:
    once = _check_origin(text)
    assert normalize(once).text == once
    assert once == once.strip() and "  " not in once


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(_PIECES), max_size=40))
def test_normalisation_is_idempotent_on_letters_marks_and_look_alikes(text: str) -> None:
    once = _check_origin(text)
    assert normalize(once).text == once


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=10),
       st.lists(st.sampled_from([" ", " ", "  ", ".", "-", "·", ""]), min_size=10, max_size=10))
def test_normalisation_is_idempotent_on_obfuscated_words(tokens: list[str],
                                                         glue: list[str]) -> None:
    text = "".join(t + g for t, g in zip(tokens, glue, strict=False))
    once = _check_origin(text)
    assert normalize(once).text == once


def test_every_code_point_normalises_to_a_fixed_point() -> None:
    for block in range(0, 0x110000, 2048):
        text = " ".join(chr(c) for c in range(block, block + 2048))
        once = _check_origin(text)
        assert normalize(once).text == once, hex(block)


# -- finding 3: obfuscations -----------------------------------------------------------------


@pytest.mark.parametrize("filler", ["\u3164", "\u115f", "\u1160", "\uffa0", "\u200b", "\u2060",
                                    "\ufe0f", "\U000e0041", "\u00ad", "\u034f", "\u180e"])
def test_invisible_characters_are_dropped(filler: str) -> None:
    assert normalize(f"you are an id{filler}i{filler}ot").text == "you are an idiot"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ᎩᎾᏌ ᎪᏒᎬ ᎪN ᎥᎠᎥᎾᎢ", "you are an idiot"),  # Cherokee capitals
        ("ꭵꭰꭵꮎꭲ", "idiot"),  # Cherokee small letters
        ("yօս ցօ һօmе", "you go home"),  # Armenian and Cyrillic
        ("ӏdіоt", "idiot"),
        ("ɪᴅɪᴏᴛ", "idiot"),  # Latin small capitals
        ("ёрѕ", "eps"),  # a look-alike with an accent
    ],
)
def test_look_alikes_from_unicode_confusables(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


@pytest.mark.parametrize("separator", [".", "-", "/", ",", "·", "_", "*", "~"])
def test_punctuation_between_single_letters_is_dropped(separator: str) -> None:
    assert normalize(f"you are an {separator.join('idiot')}").text == "you are an idiot"
    assert normalize(separator.join("youareanidiot")).text == "you are an idiot"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("id·iot", "idiot"), ("id.iot", "idiot"), ("id*iot", "idiot"), ("f*ck", "fuck"),
        ("sh*t", "shit"), ("b*tch", "bitch"), ("f**k off", "fuck off"), ("a**hole", "asshole"),
        ("f***ing", "fucking"), ("go*ng", "going"), ("s/h/i/t", "shit"),
        # benign symbols inside words
        ("a·b", "a·b"), ("node.js", "node.js"), ("C++ and C#", "c++ and c#"),
        ("*bold* text", "*bold* text"), ("n*gers", "n*gers"), ("hello.world", "hello.world"),
    ],
)
def test_symbols_inside_a_word(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("iiddiioott", "idiot"),
        ("yyoouu aarree aann iiddiioott", "you are an idiot"),
        ("II wwiillll kkiillll yyoouu", "i will kill you"),
        ("you are an toidi", "you are an idiot"),
        ("uoy era na toidi", "you are an idiot"),
        ("id iot", "idiot"), ("you are an idi ot", "you are an idiot"), ("i diot", "idiot"),
        ("fu ck er", "fucker"),
        # benign look-alikes of these evasions
        ("the pen is mightier", "the pen is mightier"), ("World War II", "world war ii"),
        ("live evil, god dog", "live evil, god dog"), ("a SS officer", "a ss officer"),
        ("Eid was lovely", "eid was lovely"), ("aaa batteries", "aaa batteries"),
        ("the KKK", "the kkk"), ("chapter viii", "chapter viii"),
    ],
)
def test_doubled_reversed_and_split_words(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


# -- ordinary text stays -------------------------------------------------------------------


@pytest.mark.parametrize("sentence", BENIGN + TOXIC)
def test_ordinary_sentences_are_only_lower_cased(sentence: str) -> None:
    # so the normaliser cannot make a benign sentence score differently from how it is written
    assert normalize(sentence).text == _lower(sentence)


@pytest.mark.parametrize("raw", [
    "a 45-year-old woman", "37.8°C and 98.9 °F", "44,000/mm3", "mp3 ps5 gpt4 covid19 x86",
    "leads v1 and t3", "G1P0", "version 1.5-1.7x", "call me at 555-0199", "Na+ and K+",
    "@john said hi", "Intel i5", "top10 lists", "I'll be there at 10",
])
def test_numbers_and_codes_are_not_leetspeak(raw: str) -> None:
    assert normalize(raw).text == _lower(raw)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(sorted({w for s in BENIGN + TOXIC
                                        for w in re.findall(r"[a-z]{2,}|\b[ai]\b", s.lower())})),
                min_size=1, max_size=8))
@example(["fuck", "in"])  # was joined to "fuckin": a harmful word and a common one stay apart
def test_plain_words_are_left_alone(words: list[str]) -> None:
    text = " ".join(words)
    assert normalize(text).text == text


# -- the origin map -------------------------------------------------------------------------


def test_spans_map_back_to_the_original() -> None:
    raw = "Hey, y0u\u200b 1d10t!"
    norm = normalize(raw)
    start = norm.text.index("idiot")
    a, b = norm.original_span(start, start + len("idiot"))
    assert raw[a:b] == "1d10t"
    spaced = "you are an i d i o t today"
    norm = normalize(spaced)
    start = norm.text.index("idiot")
    a, b = norm.original_span(start, start + 5)
    assert spaced[a:b] == "i d i o t"
    for raw, word in (("you are an toidi", "toidi"), ("you f*ck", "f*ck"), ("you id iot", "id iot"),
                      ("iiddiioott now", "iiddiioott"), ("ᎥᎠᎥᎾᎢ!", "ᎥᎠᎥᎾᎢ"),
                      ("you are stupiddd", "stupiddd"), ("an idiot\u200b, you", "idiot\u200b")):
        # characters dropped at the end of a word belong to its span (a mask covers them)
        norm = normalize(raw)
        found = re.search(r"idiot|fuck|stupid", norm.text)
        assert found is not None, norm.text
        a, b = norm.original_span(*found.span())
        assert raw[a:b] == word
    with pytest.raises(ValueError, match="empty span"):
        norm.original_span(2, 2)


# -- errors and data -------------------------------------------------------------------------


def test_a_non_string_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="takes a str"):
        normalize(b"idiot")  # type: ignore[arg-type]


@pytest.mark.parametrize(("attribute", "loader", "text"), [
    ("CONFUSABLES_FILE", "_confusables", "уоu"),
    ("WORDS_FILE", "_lexicon", "you idiot"),
    ("TARGETS_FILE", "_targets", "you toidi"),
])
def test_a_missing_data_file_is_a_data_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             attribute: str, loader: str, text: str) -> None:
    caches = [normalize_module._confusables, normalize_module._lexicon, normalize_module._targets,
              normalize_module._target_set, normalize_module._reversed_targets,
              normalize_module._target_prefixes, normalize_module._fold_char]
    for cache in caches:
        cache.cache_clear()
    monkeypatch.setattr(normalize_module, attribute, tmp_path / "missing")
    try:
        with pytest.raises(DataError, match="missing"):
            normalize(text)
    finally:
        monkeypatch.undo()
        for cache in caches:
            cache.cache_clear()
    assert normalize(text).text


def test_import_reads_no_data_and_plain_ascii_no_look_alike_table() -> None:
    code = ("import guard, guard.normalize as n\n"
            "loaders = (n._confusables, n._lexicon, n._targets)\n"
            "assert all(f.cache_info().currsize == 0 for f in loaders)\n"
            "n.normalize('Hello there, how are you?')\n"
            "assert n._confusables.cache_info().currsize == 0\n"
            "n.normalize('y o u a r e a n i d i o t')\n"
            "n.normalize('уоu toidi')\n"
            "assert all(f.cache_info().currsize == 1 for f in loaders)\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_shipped_look_alike_table() -> None:
    document = json.loads((normalize_module.CONFUSABLES_FILE).read_text(encoding="utf-8"))
    table = document["map"]
    assert document["version"] == "13.0.0" and len(document["sha256"]) == 64
    assert document["sha256"] in (normalize_module.DATA_DIR / "SOURCE.md").read_text("utf-8")
    assert len(table) > 500
    assert all(len(k) == 1 and not k.isascii() for k in table)
    assert all(v.isascii() and v.isalnum() and v == v.lower() for v in table.values())
    assert set(document["extra"]) <= set(table)
    for source, target in {"а": "a", "Ι": "i", "Ꭵ": "i", "ꭵ": "i", "օ": "o", "ᴀ": "a"}.items():
        assert table[source] == target
    for absent in ("¢", "×", "ç", "é", "ａ", "I", "1"):  # symbols, accents, NFKC's, ASCII
        assert absent not in table


# -- scripts/build_confusables.py ----------------------------------------------------------


def _build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_confusables",
                                                  ROOT / "scripts" / "build_confusables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


EXCERPT = """\ufeff# confusables.txt
# Date: 2020-02-13, 01:38:49 GMT
# Version: 13.0.0
#
0049 ;\t006C ;\tMA\t# ( I → l ) LATIN CAPITAL LETTER I → LATIN SMALL LETTER L
00A2 ;\t0063 ;\tMA\t# ( ¢ → c ) CENT SIGN → LATIN SMALL LETTER C
FF41 ;\t0061 ;\tMA\t# ( ａ → a ) FULLWIDTH LATIN SMALL LETTER A
00E7 ;\t0063 0326 ;\tMA\t# ( ç → c̦ )
0399 ;\t006C ;\tMA\t# ( Ι → l ) GREEK CAPITAL LETTER IOTA → LATIN SMALL LETTER L
0141 ;\t004C 0338 ;\tMA\t# ( Ł → L̸ ) LATIN CAPITAL LETTER L WITH STROKE
AB7A ;\t1D00 ;\tMA\t# ( ꭺ → ᴀ ) CHEROKEE SMALL LETTER GO → LATIN LETTER SMALL CAPITAL A
0430 ;\t0061 ;\tMA\t# ( а → a ) CYRILLIC SMALL LETTER A → LATIN SMALL LETTER A
03B2 ;\t00DF ;\tMA\t# ( β → ß ) GREEK SMALL LETTER BETA → LATIN SMALL LETTER SHARP S
"""


def test_the_build_script_applies_its_rules(tmp_path: Path) -> None:
    script = _build_script()
    table = script.build_table(script.parse(EXCERPT.encode("utf-8")))
    data = {k: v for k, v in table.items() if k not in script.EXTRA}
    assert data == {"Ι": "i", "Ł": "l", "ꭺ": "a", "ᴀ": "a", "а": "a"}
    assert table["β"] == "b" and set(script.EXTRA) <= set(table)  # "ß" is no ASCII letter
    with pytest.raises(ValueError, match="listed twice"):
        script.parse((EXCERPT + "0430 ;\t0061 ;\tMA\n").encode("utf-8"))


def test_the_build_script_is_reproducible(tmp_path: Path) -> None:
    script = _build_script()
    source = tmp_path / "confusables.txt"
    source.write_bytes(EXCERPT.encode("utf-8"))
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert script.main([str(source), "--out", str(first)]) == 0
    assert script.main([str(source), "--out", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert script.main([str(source), "--out", str(first), "--check"]) == 0
    first.write_text(first.read_text(encoding="utf-8").replace('"a"', '"o"'), encoding="utf-8")
    assert script.main([str(source), "--out", str(first), "--check"]) == 1
    document = json.loads(second.read_text(encoding="utf-8"))
    assert document["version"] == "13.0.0" and document["date"].startswith("2020-02-13")
