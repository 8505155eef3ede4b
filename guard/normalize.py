"""Normalise text against evasion before scoring, keeping a map back to the original.

Steps, in order:

1. Characters, one at a time, to a fixed point: white space of any kind -> a space; invisible
   characters dropped (zero-width and format characters, controls, combining marks, unassigned
   and private-use code points, and Unicode's Default_Ignorable code points, among them the
   Hangul fillers U+115F, U+1160, U+3164 and U+FFA0); look-alikes mapped to Latin by a table
   generated from Unicode's confusables data (``normalize_data/confusables.json``, built by
   ``scripts/build_confusables.py``: Cyrillic, Greek, Cherokee, Armenian, ...); NFKC; lower case.
   Lower case before the marks are dropped: "İ" is "i" + U+0307, then "i". Plain ASCII takes a
   fast path.
2. Runs of spaces squeezed to one, none at the ends.

Then, until nothing changes (an undoing can uncover another: "toidi·s" -> "idiot·s" ->
"idiots"; at most four rounds):

3. Leetspeak: a piece of letters, digits and leet symbols that makes a word of the word list
   once undone ("1d10t" -> "idiot", "y0u", "@ss"); numbers, numbers with a unit and codes stay
   ("2024", "3pm", "45-year-old", "mp3", "g1p0"). In a text with leetspeak, "1" and "4" alone
   are "i" and "a".
4. Words with every letter doubled ("iiddiioott" -> "idiot") when the halved word is a word and
   the doubled one is not; in a text where most words are doubled, every doubled word.
5. Three or more repeated letters collapsed ("stuuupid" -> "stupid"); doubles ("good"), Roman
   numerals ("iii") and words of one repeated letter ("kkk", "www") stay.
6. Words spelt backwards: one that is no word but an evasion target backwards ("toidi"); in a
   text where most words are no words but words backwards ("uoy era na toidi"), every word
   whose reverse is a more frequent word.
7. Symbols inside a word: masks ("*", "#") stand for letters ("f*ck", "sh*t", "a**hole" -> the
   evasion target that fits; "go*ng" -> the most frequent word, for two masks at most); a middle
   dot between letters goes when a word is left ("id·iot"); other punctuation ("id.iot",
   "i.d.i.o.t", "i/d/i/o/t") when an evasion target is left ("e.g." and "A/B" stay).
8. Spaced-out letters ("y o u a r e a n i d i o t", "y.o.u.a.r.e", "i-d-i-o-t") joined and split
   into words by a minimum-cost segmentation over an English word-frequency list
   (``normalize_data/wordninja_words.txt.gz``, Zipf costs as wordninja computes them): "you are
   an idiot", "a i d i o t" -> "a idiot". A run starts and ends at white space or the text's
   edges (an apostrophe is no edge: "I'm a b i t c h" -> "i'm a bitch"). A run of four letters
   stays as written unless every piece of the split is a word ("A B X Y", "a b c d" stay); a
   longer one that does not split into words is joined as one; a run of three letters only
   joins into an evasion target ("d i e"; "x y z", "U.S.A." stay); dotted acronyms ending in a
   dot ("U.S.S.R.") stay.
9. Two neighbouring pieces that make an evasion target and are not both common words ("id iot"
   -> "idiot", but "pen is" stays).

``normalize_data/evasion_targets.txt`` lists the words evasion hides: the recoveries that could
misread ordinary text only ever produce one of them. Ordinary English text comes out unchanged
apart from lower case, and ``normalize(normalize(x).text).text == normalize(x).text``.

Every character of the normalised text remembers the index of the original character it came
from (a space that step 8 puts between two words, the separator it stands for), so a span found
in the normalised text (a word to redact) maps back to the original text; the map is
non-decreasing.

The data files are read on first use, once (the look-alike table only for text that is not
plain ASCII), never by ``import guard``.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from guard.errors import DataError, UsageError

DATA_DIR = Path(__file__).parent / "normalize_data"
CONFUSABLES_FILE = DATA_DIR / "confusables.json"
WORDS_FILE = DATA_DIR / "wordninja_words.txt.gz"
TARGETS_FILE = DATA_DIR / "evasion_targets.txt"

# -- step 1: characters ------------------------------------------------------------------------

_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Co", "Cn", "Mn", "Me"})
# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt). Most are format characters or
# combining marks already; the Hangul fillers are letters (Lo) that render as nothing.
_DEFAULT_IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
                      (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
                      (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
                      (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
                      (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
_BLANKS = frozenset({"\u2800"})  # BRAILLE PATTERN BLANK: looks like a space, is a symbol
_FOLD_ROUNDS = 8
_ASCII_DROP = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")  # ASCII controls that are not white space
_ASCII_SPACE = re.compile(r"[\t\n\x0b\x0c\r\x1c-\x1f]")
_ASCII_SPACES = str.maketrans(dict.fromkeys("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f", " "))

# -- steps 3-9 -------------------------------------------------------------------------------

_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "£": "l"}
_EDGE_PUNCTUATION = ".,!?;:'\"()[]{}<>“”‘’«»…"
_UNITS = {"", "am", "pm", "st", "nd", "rd", "th", "k", "m", "x", "d", "h", "s", "min", "km"}
_LEET_CHARS = re.compile("[" + re.escape("".join(_LEET)) + "]")
_LEET_CHUNK = re.compile(r"\S*[" + re.escape("".join(_LEET)) + r"]\S*")
_LEET_PIECE = re.compile(r"(?:[^\W_]|['’]|[" + re.escape("".join(_LEET)) + r"])+")

_MASKS = frozenset("*#")  # stand for a hidden letter: "f*ck"
_DOTS = frozenset("·•‧∙⋅")  # inserted inside a word: "id·iot"
_INNER = "*#·•‧∙⋅.,/_~\\-"  # may sit between the letters of an obfuscated word
_INNER_TOKEN = re.compile(rf"(?<![a-z{_INNER}])[a-z]+(?:[{_INNER}]+[a-z]+)+(?![a-z{_INNER}])")
_INNER_HINT = re.compile(rf"[{_INNER}][a-z]")
_MASKED_TOKEN = re.compile(r"(?<![\w*#])(?=[a-z*#]*[*#])[a-z*#]*[a-z][a-z*#]*(?![\w*#])")
_MASK_HINT = re.compile(r"[*#]")
_MIN_SOFT_WORD = 4

_DOUBLED = re.compile(r"(?<![a-z])(?:([a-z])\1){2,}(?![a-z])")
_DOUBLED_WORD = re.compile(r"(?<![a-z])(?:([a-z])\1)+(?![a-z])")
_WORD2 = re.compile(r"(?<![a-z])[a-z]{2,}(?![a-z])")
_MODE_SHARE = 0.5  # of a text's words, to read all of it as doubled or backwards
_TRIPLED = re.compile(r"([^\W\d_])\1{2,}")
_TRIPLED_HINT = re.compile(r"(.)\1\1")
_LETTERS = re.compile(r"[^\W\d_]+")
_MAX_GROUPS = 4  # of repeated letters in one word, tried both ways
_ROMAN = re.compile(r"m{0,3}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})")
_SPACES = re.compile(r" {2,}")

_LETTER = r"[^\W\d_]"
# A run starts at the text's start or after white space (or an opening bracket or quote that
# follows one) and ends before white space or the end (closing punctuation may come between).
_RUN_START = r"(?:^|(?<=\s)|(?<=^[(\[\"“«])|(?<=\s[(\[\"“«]))"
_RUN_END = r"(?=[.,!?;:)\]}\"”»…]*(?:\s|$))"
_SPACED_RUN = re.compile(rf"{_RUN_START}(?:{_LETTER} ){{2,}}{_LETTER}{_RUN_END}")
_RUN_SEPARATORS = "./,_~·•‧∙⋅*\\-"
_PUNCT_RUN = re.compile(
    rf"{_RUN_START}{_LETTER}([{_RUN_SEPARATORS}]){_LETTER}(?:\1{_LETTER})+{_RUN_END}")
# cheap tests that a text may hold a run (a run of three letters contains one of these)
_SPACED_HINT = re.compile(r" \S \S")
_PUNCT_HINT = re.compile(rf"([{_RUN_SEPARATORS}]){_LETTER}\1")
_SINGLE_BEFORE = re.compile(rf"(?:^|\s){_LETTER} $")
_SINGLE_AFTER = re.compile(rf"^ {_LETTER}(?:\s|$)")
_SHORT_RUN = 3  # letters; a run this short is joined only into an evasion target
_SHORT_LIST = 6  # letters; in a run this short, each word must be frequent (or a target)
_COMMON_SHORT = 30000
_SHORT_WORD_RANK = {2: 12000, 3: 30000}  # "ur", "ok" and "bia" are words, "tc" and "hz" not
_BLIND_JOIN = 5  # letters; a longer run that does not split into words is joined as one word
_SINGLE_WORDS = frozenset({"a", "i"})
_BAD_SINGLE = 1e6  # cost of a one-letter piece that is no word: used only when nothing else fits

_WORD3 = re.compile(r"(?<![a-z])[a-z]{3,}(?![a-z])")
_COMMON_RANK = 3000  # the most frequent words of the list: "pen is" is two words, not a split
_FREQUENT_RANK = 1300  # the very most frequent: "to", "be", "me", "was", "yet" (not "te", "es")
_MIN_SPLIT_WORD = 4
# two neighbouring pieces of letters, the second in a look-ahead so that pairs overlap
_PAIR = re.compile(r"(?:^|(?<=\s)|(?<=[(\[\"“«]))([a-z]+)(?= ([a-z]+)[.,!?;:)\]}\"”»…]*(?:\s|$))")


@dataclass(frozen=True)
class Normalized:
    """A normalised text and, for each of its characters, the index of its original character.

    Attributes:
        text: The normalised text.
        origin: ``origin[i]`` is the index in the original text of ``text[i]``; non-decreasing.
        source_length: Length of the original text (``None``: not known).
    """

    text: str
    origin: tuple[int, ...]
    source_length: int | None = None

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map ``text[start:end]`` to the ``(start, end)`` span of the original text.

        The span reaches up to the original character of ``text[end]`` (or the end of the
        original), so characters dropped right after the last one belong to it: the rest of
        "stupiddd", the second "t" of "iiddiioott", an invisible character.

        Raises:
            ValueError: If the span is empty.
        """
        if start >= end:
            raise ValueError(f"empty span {start}:{end}")
        last = self.origin[end - 1] + 1
        if end < len(self.origin):
            return self.origin[start], max(last, self.origin[end])
        return self.origin[start], max(last, self.source_length or 0)


# -- data, read once on first use --------------------------------------------------------------


@lru_cache(maxsize=1)
def _confusables() -> dict[str, str]:
    try:
        document = json.loads(CONFUSABLES_FILE.read_text(encoding="utf-8"))
        table = document["map"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"cannot read the look-alike table {CONFUSABLES_FILE}: {exc}",
                        path=str(CONFUSABLES_FILE)) from exc
    if not isinstance(table, dict) or not all(
            isinstance(k, str) and len(k) == 1 and isinstance(v, str) and v.isascii()
            and v.isalnum() and v == v.lower() for k, v in table.items()):
        raise DataError(f"{CONFUSABLES_FILE}: 'map' must map characters to lower-case ASCII "
                        "letters and digits", path=str(CONFUSABLES_FILE))
    return table


@lru_cache(maxsize=1)
def _targets() -> tuple[str, ...]:
    try:
        lines = TARGETS_FILE.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read {TARGETS_FILE}: {exc}", path=str(TARGETS_FILE)) from exc
    words = tuple(w for w in (line.strip() for line in lines) if w and not w.startswith("#"))
    bad = [w for w in words if not (w.isascii() and w.isalpha() and w == w.lower())]
    if bad or not words:
        raise DataError(f"{TARGETS_FILE}: expected lower-case ASCII words, got {bad[:5]}",
                        path=str(TARGETS_FILE))
    return words


@lru_cache(maxsize=1)
def _target_set() -> frozenset[str]:
    return frozenset(_targets())


@lru_cache(maxsize=1)
def _reversed_targets() -> frozenset[str]:
    return frozenset(w[::-1] for w in _targets())


@lru_cache(maxsize=1)
def _target_prefixes() -> frozenset[str]:
    return frozenset(w[:k] for w in _targets() if len(w) >= _MIN_SPLIT_WORD
                     for k in range(1, len(w)))


@dataclass(frozen=True)
class _Lexicon:
    """The word-frequency list: each word's rank (0 = most frequent), by length too."""

    rank: dict[str, int]
    longest: int
    scale: float  # ln(number of words), for the Zipf cost

    def cost(self, word: str) -> float | None:
        """``-ln p(word)`` under Zipf's law, ``p = 1 / (rank ln N)``, as wordninja does."""
        if len(word) == 1 and word not in _SINGLE_WORDS:
            return _BAD_SINGLE if word.isalpha() else None
        rank = self.rank.get(word)
        return None if rank is None else math.log((rank + 1) * self.scale)


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    try:
        with gzip.open(WORDS_FILE, "rt", encoding="utf-8") as handle:
            words = handle.read().split()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the word list {WORDS_FILE}: {exc}",
                        path=str(WORDS_FILE)) from exc
    if not words:
        raise DataError(f"{WORDS_FILE} is empty", path=str(WORDS_FILE))
    rank: dict[str, int] = {}
    for word in words:
        if word.isascii() and word.replace("'", "").isalpha():  # "i'll" for leetspeak
            rank.setdefault(word, len(rank))
    for word in _targets():  # the targets are words, however rare
        rank.setdefault(word, len(rank))
    return _Lexicon(rank, max(map(len, rank)), math.log(len(rank)))


# -- helpers -----------------------------------------------------------------------------------

_Edit = tuple[int, int, str, list[int]]


def _splice(text: str, origin: list[int], edits: Iterable[_Edit]) -> tuple[str, list[int]]:
    """Replace ``text[start:end]`` by each edit's text and origins (sorted, not overlapping)."""
    parts: list[str] = []
    mapped: list[int] = []
    last = 0
    for start, end, new, new_origin in edits:
        parts.append(text[last:start])
        mapped += origin[last:start]
        parts.append(new)
        mapped += new_origin
        last = end
    if not parts:
        return text, origin
    parts.append(text[last:])
    mapped += origin[last:]
    return "".join(parts), mapped


def _in_range(code: int) -> bool:
    return any(low <= code <= high for low, high in _DEFAULT_IGNORABLE)


def _step(char: str) -> str:
    """One round of the character step for ``char``."""
    if char.isspace() or char in _BLANKS:
        return " "
    if unicodedata.category(char) in _INVISIBLE_CATEGORIES or _in_range(ord(char)):
        return ""
    table = _confusables()
    mapped = table.get(char)
    if mapped is not None:  # before lower case: "Η" (Greek capital eta) looks like H, "η" n
        return mapped
    nfkc = unicodedata.normalize("NFKC", char)
    if nfkc != char:
        return nfkc
    lower = char.lower()
    if lower != char:
        return lower
    decomposed = unicodedata.normalize("NFD", char)
    if len(decomposed) > 1 and decomposed[0] in table:  # "ё" -> "е" + diaeresis -> "e"
        return decomposed
    return char


@lru_cache(maxsize=1 << 16)
def _fold_char(char: str) -> str:
    """``char`` through :func:`_step` until nothing changes."""
    out = char
    for _ in range(_FOLD_ROUNDS):
        new = "".join(_step(c) for c in out)
        if new == out:
            return out
        out = new
    raise DataError(f"U+{ord(char):04X} does not settle under normalisation")


def _fold(text: str) -> tuple[str, list[int]]:
    if text.isascii() and not _ASCII_DROP.search(text):
        # fast path: NFKC and the look-alike table change nothing in plain ASCII
        lowered = text.lower()
        if _ASCII_SPACE.search(lowered):
            lowered = lowered.translate(_ASCII_SPACES)
        return lowered, list(range(len(text)))
    parts: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = char.lower() if char.isascii() and char.isalnum() else _fold_char(char)
        if folded:
            parts.append(folded)
            origin += [index] * len(folded)
    return "".join(parts), origin


def _squeeze(text: str, origin: list[int]) -> tuple[str, list[int]]:
    if "  " not in text and not text.startswith(" ") and not text.endswith(" "):
        return text, origin
    edits: list[_Edit] = [(m.start() + 1, m.end(), "", []) for m in _SPACES.finditer(text)]
    text, origin = _splice(text, origin, edits)
    head = len(text) - len(text.lstrip(" "))
    tail = len(text.rstrip(" "))
    return text[head:tail], origin[head:tail]


def _leet_hint(text: str, at: int) -> bool:
    """Whether the leet character at ``at`` touches a letter ("sure!" and "2024" do not)."""
    after = text[at + 1:at + 2]
    if after in ("'", "’"):
        after = text[at + 2:at + 3]
    if after.isalpha():
        return True
    return at > 0 and text[at - 1].isalpha() and (text[at] != "!" or after.isalnum())


def _leet_word(piece: str) -> tuple[str, int | None]:
    """``piece`` with its leet characters undone (three repeated letters once), and its rank."""
    word = _TRIPLED.sub(r"\1", "".join(_LEET.get(c, c) for c in piece).replace("’", "'"))
    return word, _lexicon().rank.get(word)


def _leet_piece(piece: str) -> bool:
    """Whether the letters-and-leet ``piece`` is leetspeak ("1d10t", "y0u", "@ss", "idio7").

    It is when undoing it makes a word of the list (three repeated letters counted once:
    "5tuuup1d"), so codes such as "g1p0", "s100a4" or "mp3" stay. With leet characters only at
    one end ("ps5", "gpt4", "@john", "c++") and two letters, the word must be a frequent one
    ("ar3", "0f") or an evasion target ("sh17"), unless a symbol leads ("@ss"); with one letter
    it is only from three leet characters on ("b347"; not "v1", "e5", "b3", "t0" on their own,
    see :func:`_leet_lenient`). Numbers and a number with a unit ("2024", "3pm", "10k") never
    are.
    """
    letters = sum(c.isalpha() for c in piece)
    if letters == 0 or piece.lstrip("0123456789") in _UNITS:
        return False
    word, rank = _leet_word(piece)
    if rank is None:
        return False
    first = next(i for i, c in enumerate(piece) if c.isalpha())
    last = max(i for i, c in enumerate(piece) if c.isalpha())
    head, inner, tail = piece[:first], piece[first:last + 1], piece[last + 1:]
    if (head and tail) or letters >= 3 or "'" in word or any(c in _LEET for c in inner):
        return True  # "1d10t", "5hu7", "idio7", "1'll"
    if letters == 1:
        return len(piece) >= 4  # "b347", "p457"; not "v1", "b12" (codes have few digits)
    if (head and not any(c.isdigit() for c in head)) or word in _target_set():
        return True  # "@ss", "sh17"
    return rank < _COMMON_RANK  # "ar3", "0f"


def _leet_lenient(piece: str, whole: bool) -> bool:
    """Whether ``piece`` is leetspeak in a text that has leetspeak elsewhere.

    It is when undone it is one of the most frequent words ("t0", "b3", "w45", "4nd"); a number
    only when it is a whole word and no Roman numeral ("70", "1" and "4" alone; not "11" or the
    "15" of "15:37").
    """
    word, rank = _leet_word(piece)
    if rank is None or rank >= _FREQUENT_RANK or not word.replace("'", "").isalpha():
        return False
    if len(word) == 1 and word not in _SINGLE_WORDS:
        return False
    if piece.isdigit():
        return whole and (word in _SINGLE_WORDS or not _ROMAN.fullmatch(word))
    return True


def _deleet(text: str, origin: list[int]) -> tuple[str, list[int]]:
    """Step 3: undo leetspeak (one character for one, so the origin map is unchanged).

    Pieces that are leetspeak on their own (:func:`_leet_piece`) are undone; when there is one,
    the text is written in leetspeak, and the pieces :func:`_leet_lenient` accepts are too
    (numbers among them: "4 cats" in a text in leetspeak becomes "a cats").
    """
    if not any(_leet_hint(text, m.start()) for m in _LEET_CHARS.finditer(text)):
        return text, origin
    pieces: list[tuple[int, str, bool]] = []  # start, piece, whether it is the whole word
    for match in _LEET_CHUNK.finditer(text):
        word = match.group()
        core = word.strip(_EDGE_PUNCTUATION)  # "idiot!" keeps its "!", "sh!t" does not
        if not core:
            continue
        offset = match.start() + word.index(core)
        # pieces of letters, digits and leet symbols: "45-year-old" is "45", "year", "old"
        pieces += [(offset + p.start(), p.group(), p.group() == core)
                   for p in _LEET_PIECE.finditer(core) if _LEET_CHARS.search(p.group())]
    accepted = [_leet_piece(piece) for _, piece, _ in pieces]
    if any(accepted):
        accepted = [ok or _leet_lenient(piece, whole)
                    for ok, (_, piece, whole) in zip(accepted, pieces, strict=True)]
    chars = list(text)
    for ok, (start, piece, _) in zip(accepted, pieces, strict=True):
        if ok:
            for i in range(start, start + len(piece)):
                chars[i] = _LEET.get(chars[i], chars[i])
    return "".join(chars), origin


def _fit(token: str) -> str | None:
    """The word that ``token``'s masks ("*", "#") hide, or ``None``.

    An evasion target of the same length (masks may stand at the edges: "f***", "a**"), else,
    for two masks or fewer between the letters of four or more, the most frequent word of the
    list ("go*ng").
    """
    pattern = re.compile("".join("[a-z]" if c in _MASKS else c for c in token))
    rank = _lexicon().rank
    fits = [w for w in _targets() if len(w) == len(token) and pattern.fullmatch(w)]
    fit = min(fits, key=rank.__getitem__) if fits else None  # "f******": "fucking"
    masks = [i for i, c in enumerate(token) if c in _MASKS]
    if fit is not None or len(token) < _MIN_SOFT_WORD or len(masks) > 2:
        return fit
    if masks[0] == 0 or masks[-1] == len(token) - 1:
        return None
    best: tuple[int, str] | None = None
    for letters in itertools.product(string.ascii_lowercase, repeat=len(masks)):
        chars = list(token)
        for i, letter in zip(masks, letters, strict=True):
            chars[i] = letter
        word = "".join(chars)
        r = rank.get(word)
        if r is not None and (best is None or r < best[0]):
            best = (r, word)
    return best[1] if best else None


def _unmask(text: str, origin: list[int]) -> tuple[str, list[int]]:
    """Step 4: symbols inside a word: masked letters, then inserted symbols."""
    if _MASK_HINT.search(text):
        edits: list[_Edit] = []
        for match in _MASKED_TOKEN.finditer(text):
            fit = _fit(match.group())
            if fit is not None:
                edits.append((match.start(), match.end(), fit, origin[match.start():match.end()]))
        text, origin = _splice(text, origin, edits)
    if not _INNER_HINT.search(text):
        return text, origin
    edits = []
    for match in _INNER_TOKEN.finditer(text):
        token = match.group()
        symbols = {c for c in token if not c.isalpha()}
        letters = "".join(c for c in token if c.isalpha())
        if letters in _target_set() or (
                symbols <= _DOTS and len(letters) >= _MIN_SOFT_WORD
                and letters in _lexicon().rank and not _TRIPLED.search(letters)
                and not _DOUBLED.fullmatch(letters)):
            kept = [match.start() + i for i, c in enumerate(token) if c.isalpha()]
            edits.append((match.start(), match.end(), letters, [origin[i] for i in kept]))
    return _splice(text, origin, edits)


def _halve_doubled(text: str, origin: list[int]) -> tuple[str, list[int]]:
    """Step 5: "iiddiioott" -> "idiot"; in a text where most words are doubled, every one."""
    if not _DOUBLED.search(text):
        return text, origin
    rank = _lexicon().rank
    doubled = list(_DOUBLED_WORD.finditer(text))
    words = len(_WORD2.findall(text))
    everywhere = len(doubled) >= 2 and len(doubled) >= _MODE_SHARE * words
    edits: list[_Edit] = []
    for match in doubled:
        word = match.group()
        half = word[::2]
        if half in rank and (everywhere or (len(word) >= 4 and word not in rank)):
            edits.append((match.start(), match.end(), half, origin[match.start():match.end():2]))
    return _splice(text, origin, edits)


def _collapse_repeats(text: str, origin: list[int]) -> tuple[str, list[int]]:
    """Step 5: three or more repeated letters collapsed ("stuuupid" -> "stupid").

    English never triples a letter, evasion does. Each such group becomes one letter, or two
    when that makes a more frequent word ("goooood" -> "good", not "god"; "hellllo" -> "hello").
    Roman numerals and words of one letter only ("iii", "kkk", "www") stay.
    """
    if not _TRIPLED_HINT.search(text):
        return text, origin
    edits: list[_Edit] = []
    for word in _LETTERS.finditer(text):
        groups = [g for g in _TRIPLED.finditer(word.group()) if not _in_roman(text, word, g)]
        if not groups:
            continue
        keep = _best_collapse(word.group(), groups)
        new: list[str] = []
        mapped: list[int] = []
        last = 0
        for group, count in zip(groups, keep, strict=True):
            new.append(word.group()[last:group.start()])
            mapped += origin[word.start() + last:word.start() + group.start()]
            new.append(group.group(1) * count)
            mapped += [origin[word.start() + group.start()],
                       origin[word.start() + group.end() - 1]][:count]
            last = group.end()
        new.append(word.group()[last:])
        mapped += origin[word.start() + last:word.end()]
        edits.append((word.start(), word.end(), "".join(new), mapped))
    return _splice(text, origin, edits)


def _best_collapse(word: str, groups: list[re.Match[str]]) -> tuple[int, ...]:
    """How many letters (1 or 2) to keep of each group: the most frequent word, else one each."""
    single = (1,) * len(groups)
    if len(groups) > _MAX_GROUPS or not word.isascii():
        return single
    rank = _lexicon().rank
    best: tuple[int, tuple[int, ...]] | None = None
    for keep in itertools.product((1, 2), repeat=len(groups)):
        pieces, last = [], 0
        for group, count in zip(groups, keep, strict=True):
            pieces += [word[last:group.start()], group.group(1) * count]
            last = group.end()
        r = rank.get("".join(pieces) + word[last:])
        if r is not None and (best is None or r < best[0]):
            best = (r, keep)
    return best[1] if best else single


def _in_roman(text: str, word: re.Match[str], group: re.Match[str]) -> bool:
    """Whether the word is a Roman numeral ("iii", "viii") or one letter over and over ("kkk")."""
    letters = word.group()
    return _ROMAN.fullmatch(letters) is not None or len(group.group()) == len(letters)


def _segment(letters: str) -> list[str]:
    """Split ``letters`` into words at the lowest total Zipf cost (dynamic programme)."""
    lexicon = _lexicon()
    best = [0.0] + [math.inf] * len(letters)
    back = [0] * (len(letters) + 1)
    for end in range(1, len(letters) + 1):
        for start in range(max(0, end - lexicon.longest), end):
            cost = lexicon.cost(letters[start:end])
            if cost is not None and best[start] + cost < best[end]:
                best[end], back[end] = best[start] + cost, start
        if best[end] == math.inf:  # a character the list does not know: a piece of its own
            best[end], back[end] = best[end - 1] + _BAD_SINGLE, end - 1
    words: list[str] = []
    end = len(letters)
    while end > 0:
        words.append(letters[back[end]:end])
        end = back[end]
    return words[::-1]


def _good_words(words: list[str], rank: dict[str, int]) -> bool:
    """Whether a split of spaced letters reads as words.

    Every piece a word (of one letter only "a" and "i"; of two or three letters a frequent one
    or an evasion target), one of three letters or more, and no three one-letter pieces in a
    row (they would make a new run).
    """
    if not any(len(w) >= 3 for w in words):
        return False
    singles = 0
    for word in words:
        if len(word) == 1:
            if word not in _SINGLE_WORDS:
                return False
            singles += 1
            if singles == 3:
                return False
        else:
            limit = _SHORT_WORD_RANK.get(len(word))
            r = rank.get(word)
            if r is None or (limit is not None and r >= limit and word not in _target_set()):
                return False  # "bia tc hz": the list's rare short "words" are abbreviations
            singles = 0
    return True


def _join_run(text: str, origin: list[int], start: int, end: int) -> _Edit | None:
    """The edit that joins the spaced letters of ``text[start:end]``, or ``None`` to keep them."""
    # the letters sit at every other position; a group of three or more of the same letter
    # counts once ("s t u u u p i d" -> "stupid"); each letter keeps the position of the
    # separator after it (or after its group), where a space between two words goes
    groups: list[list[int]] = []
    for position in range(start, end, 2):
        if groups and text[groups[-1][0]] == text[position]:
            groups[-1].append(position)
        else:
            groups.append([position])
    letters_out: list[tuple[str, int, int]] = []
    for group in groups:
        members = group[:1] if len(group) >= 3 else group
        letters_out += [(text[p], p, p + 1) for p in members]
        letters_out[-1] = (text[members[-1]], members[-1], group[-1] + 1)
    letters = "".join(c for c, _, _ in letters_out)
    if not letters.isascii():
        return None
    if (end - start + 1) // 2 <= _SHORT_RUN:
        if letters not in _target_set():
            return None
        words = [letters]
    elif text[start + 1] == "." and text[end:end + 1] == ".":
        return None  # an acronym, "U.S.S.R.", "N.A.S.A." (evasion targets were joined already)
    else:
        words = _segment(letters)
        rank = _lexicon().rank
        if not _good_words(words, rank):
            if len(letters) < _BLIND_JOIN:
                return None
            words = [letters]  # "b i a t c h z": no words, but too long for a list of letters
        elif len(letters) <= _SHORT_LIST and any(
                len(w) > 1 and rank[w] >= _COMMON_SHORT and w not in _target_set()
                for w in words):
            return None  # a short list of letters, "a b c d" (-> "a bcd"?), stays
    # joining must not leave a one-letter word beside another one outside the run
    if len(words[0]) == 1 and _SINGLE_BEFORE.search(text[max(0, start - 3):start]):
        return None
    if len(words[-1]) == 1 and _SINGLE_AFTER.search(text[end:end + 3]):
        return None
    out: list[str] = []
    mapped: list[int] = []
    k = 0
    for n, word in enumerate(words):
        if n:
            out.append(" ")
            mapped.append(origin[letters_out[k - 1][2]])
        for _ in word:
            out.append(letters_out[k][0])
            mapped.append(origin[letters_out[k][1]])
            k += 1
    return start, end, "".join(out), mapped


def _join_spaced(text: str, origin: list[int]) -> tuple[str, list[int]]:
    """Step 7: spaced-out letters joined into words."""
    for hint, pattern in ((_SPACED_HINT, _SPACED_RUN), (_PUNCT_HINT, _PUNCT_RUN)):
        if not hint.search(text) or not pattern.search(text):
            continue
        edits = [edit for m in pattern.finditer(text)
                 if (edit := _join_run(text, origin, m.start(), m.end())) is not None]
        text, origin = _splice(text, origin, edits)
    return text, origin


def _unreverse(text: str, origin: list[int]) -> tuple[str, list[int]]:
    """Step 8: words spelt backwards.

    A word that is no word but an evasion target backwards ("toidi") is turned round; in a text
    where most words are no words but words backwards ("uoy era na toidi"), every word whose
    reverse is a more frequent word is.
    """
    reversed_targets = _reversed_targets()
    words = _WORD2.findall(text)
    rank = _lexicon().rank
    unknown = [w for w in words if w not in rank]
    backwards = sum(w[::-1] in rank for w in unknown)
    everywhere = backwards >= 2 and backwards >= _MODE_SHARE * len(words)
    if not everywhere and reversed_targets.isdisjoint(unknown):
        return text, origin
    edits: list[_Edit] = []
    for match in _WORD2.finditer(text):
        word = match.group()
        turned = word[::-1]
        if everywhere:
            wanted = turned in rank and rank[turned] < rank.get(word, len(rank))
        else:
            wanted = len(word) >= 3 and word in reversed_targets and word not in rank
        if wanted:
            # letters in reading order keep the original positions in order (the map stays
            # non-decreasing; the word's span maps to the written word's span)
            edits.append((match.start(), match.end(), turned, origin[match.start():match.end()]))
    return _splice(text, origin, edits)


def _common(word: str, rank: dict[str, int]) -> bool:
    return word in _SINGLE_WORDS or (len(word) > 1 and rank.get(word, _COMMON_RANK) < _COMMON_RANK)


def _join_split(text: str, origin: list[int]) -> tuple[str, list[int]]:
    """Step 9: "id iot" -> "idiot" (a chain, "fu ck er", joins over two rounds)."""
    prefixes = _target_prefixes()
    pairs = [m for m in _PAIR.finditer(text) if m.group(1) in prefixes
             and len(m.group(1) + m.group(2)) >= _MIN_SPLIT_WORD
             and m.group(1) + m.group(2) in _target_set()]
    if not pairs:
        return text, origin
    rank = _lexicon().rank
    targets = _target_set()
    drop: list[int] = []  # the spaces to remove
    for match in pairs:
        a, b = match.group(1), match.group(2)
        space = match.end()
        if drop and drop[-1] == match.start() - 1:
            continue  # its left piece was just joined to the one before: the next round
        if _common(a, rank) and _common(b, rank):
            continue  # "pen is"
        if a in targets and _common(b, rank):
            continue  # "fuck in": the piece is the word already, the next one is a word too
        # a one-letter piece must not be part of a spaced run
        if len(a) == 1 and _SINGLE_BEFORE.search(text[max(0, match.start() - 3):match.start()]):
            continue
        after = space + 1 + len(b)
        if len(b) == 1 and _SINGLE_AFTER.search(text[after:after + 3]):
            continue
        drop.append(space)
    return _splice(text, origin, ((p, p + 1, "", []) for p in drop))


_WORD_STEPS = (_deleet, _halve_doubled, _collapse_repeats, _unreverse, _unmask, _join_spaced,
               _join_split)
#: Rounds of steps 3-9: one undoing can uncover another ("toidi·s" -> "idiot·s" -> "idiots").
_SETTLE_ROUNDS = 4


def normalize(text: str) -> Normalized:
    """Normalise ``text`` against evasion; see the module docstring for the steps.

    Raises:
        UsageError: If ``text`` is not a string.
        DataError: If a bundled data file is missing or malformed.
    """
    if not isinstance(text, str):
        raise UsageError(f"normalize() takes a str, got {type(text).__name__}")
    out, origin = _fold(text)
    out, origin = _squeeze(out, origin)
    for _ in range(_SETTLE_ROUNDS):
        before = out
        for step in _WORD_STEPS:
            out, origin = step(out, origin)
        if out == before:  # nothing left to undo: a second normalisation changes nothing
            break
    return Normalized(out, tuple(origin), len(text))
