"""Normalise text against evasion before scoring, keeping a map back to the original.

Steps, in order: Unicode NFKC; removal of zero-width, control and format characters; look-alike
characters (Cyrillic, Greek, fullwidth and other confusables) mapped to Latin; leetspeak inside
words that contain letters ("1d10t" -> "idiot", but "2024" stays); spaced-out letters joined
("i d i o t" -> "idiot"); runs of three or more repeated letters collapsed ("stuuupid" -> "stupid");
lower case.

Every character of the normalised text remembers the index of the original character it came
from, so a span found in the normalised text (a word to redact) maps back to the original text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Look-alikes that NFKC leaves alone. Sources: Unicode confusables.txt (the Latin targets of the
# Cyrillic, Greek and Armenian letters most used for evasion) and common symbol substitutions.
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ɡ": "g", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ь": "b", "п": "n", "г": "r", "д": "d",
    "и": "u", "л": "n", "з": "3", "ч": "4",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c",
    "Т": "t", "У": "y", "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "μ": "u",
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n",
    "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
    # Armenian and others
    "օ": "o", "ս": "u", "ց": "g", "ո": "n", "ɑ": "a", "ı": "i", "ȷ": "j", "ℓ": "l",
}

_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "£": "l"}

_EDGE_PUNCTUATION = ".,!?;:'\"()[]{}<>"
_UNITS = {"", "am", "pm", "st", "nd", "rd", "th", "k", "m", "x", "d", "h", "s", "min", "km"}
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_WHITESPACE = str.maketrans({"\n": " ", "\t": " "})
_LEET_CHARS = re.compile("[" + re.escape("".join(_LEET)) + "]")
_TRIPLED = re.compile(r"([^\W\d_])\1{2,}")
_SPACES = re.compile(r" +")
_INVISIBLE_CATEGORIES = {"Cf", "Cc", "Cs", "Co", "Cn", "Mn", "Me"}
_KEEP_CONTROL = {"\n", "\t"}
_SPACED = re.compile(r"(?<![^\W_])(?:[^\W\d_][ .\-_*]){2,}[^\W\d_](?![^\W_])")
_WORDISH = re.compile(r"\S+")


@dataclass(frozen=True)
class Normalized:
    """A normalised text and, for each of its characters, the index of its original character.

    Attributes:
        text: The normalised text.
        origin: ``origin[i]`` is the index in the original text of ``text[i]``.
    """

    text: str
    origin: tuple[int, ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map ``text[start:end]`` to the ``(start, end)`` span of the original text."""
        if start >= end:
            raise ValueError(f"empty span {start}:{end}")
        return self.origin[start], self.origin[end - 1] + 1


def _strip_and_fold(text: str) -> tuple[list[str], list[int]]:
    if text.isascii() and not _ASCII_CONTROL.search(text):
        # fast path: NFKC and the look-alike table change nothing in plain ASCII
        return list(text.lower().translate(_WHITESPACE)), list(range(len(text)))
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char):
            category = unicodedata.category(piece)
            if category in _INVISIBLE_CATEGORIES and piece not in _KEEP_CONTROL:
                continue  # zero-width joiners, soft hyphens, combining marks, controls
            if category == "Zs" or piece in _KEEP_CONTROL:
                piece = " "
            # look-alikes are mapped before and after lower-casing ("Ω" -> "ω" -> "w"), so a
            # second pass over the result changes nothing
            for lowered in _CONFUSABLES.get(piece, piece).lower():
                chars.append(_CONFUSABLES.get(lowered, lowered))
                origin.append(index)
    return chars, origin


def _deleet(chars: list[str]) -> None:
    """Undo leetspeak in place (one character for one, so the origin map is unchanged)."""
    text = "".join(chars)
    if not _LEET_CHARS.search(text):
        return
    for match in _WORDISH.finditer(text):
        word = match.group()
        core = word.strip(_EDGE_PUNCTUATION)  # "idiot!" keeps its "!", "sh!t" does not
        if not core:
            continue
        start = match.start() + word.index(core)
        letters = sum(c.isalpha() for c in core)
        leet = sum(c in _LEET for c in core)
        # Only words that mix letters and leet symbols ("1d10t", "@ss", "y0u"), not numbers
        # ("2024") or a number with a unit ("3pm", "10k", "2nd").
        if letters == 0 or leet == 0 or core.lstrip("0123456789") in _UNITS:
            continue
        for i in range(start, start + len(core)):
            chars[i] = _LEET.get(chars[i], chars[i])


def _keep(chars: list[str], origin: list[int], drop: set[int]
          ) -> tuple[list[str], list[int]]:
    if not drop:
        return chars, origin
    kept = [i for i in range(len(chars)) if i not in drop]
    return [chars[i] for i in kept], [origin[i] for i in kept]


def _join_spaced(chars: list[str], origin: list[int]) -> tuple[list[str], list[int]]:
    text = "".join(chars)
    drop: set[int] = set()
    for match in _SPACED.finditer(text):
        drop.update(i for i in range(match.start(), match.end()) if not text[i].isalpha())
    return _keep(chars, origin, drop)


def _collapse_repeats(chars: list[str], origin: list[int]) -> tuple[list[str], list[int]]:
    # English never triples a letter, evasion does: "stuuupid", "idiooot". A run of three or
    # more identical letters becomes one; doubles ("too", "good") stay.
    drop: set[int] = set()
    for match in _TRIPLED.finditer("".join(chars)):
        drop.update(range(match.start() + 1, match.end()))
    return _keep(chars, origin, drop)


def _squeeze_spaces(chars: list[str], origin: list[int]) -> tuple[list[str], list[int]]:
    drop: set[int] = set()
    for match in _SPACES.finditer("".join(chars)):
        at_edge = match.start() == 0 or match.end() == len(chars)
        drop.update(range(match.start() + (0 if at_edge else 1), match.end()))
    return _keep(chars, origin, drop)


def normalize(text: str) -> Normalized:
    """Normalise ``text`` against evasion; see the module docstring for the steps."""
    chars, origin = _strip_and_fold(text)
    _deleet(chars)
    chars, origin = _join_spaced(chars, origin)
    chars, origin = _collapse_repeats(chars, origin)
    chars, origin = _squeeze_spaces(chars, origin)
    return Normalized("".join(chars), tuple(origin))
