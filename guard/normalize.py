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


def _strip_and_fold(text: str) -> list[tuple[str, int]]:
    chars: list[tuple[str, int]] = []
    for index, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char):
            category = unicodedata.category(piece)
            if category in _INVISIBLE_CATEGORIES and piece not in _KEEP_CONTROL:
                continue  # zero-width joiners, soft hyphens, combining marks, controls
            if category == "Zs" or piece in _KEEP_CONTROL:
                piece = " "
            piece = _CONFUSABLES.get(piece, piece)
            chars.extend((p, index) for p in piece.lower())
    return chars


def _deleet(chars: list[tuple[str, int]]) -> list[tuple[str, int]]:
    text = "".join(c for c, _ in chars)
    out = list(chars)
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
            char, origin = out[i]
            out[i] = (_LEET.get(char, char), origin)
    return out


def _join_spaced(chars: list[tuple[str, int]]) -> list[tuple[str, int]]:
    text = "".join(c for c, _ in chars)
    drop: set[int] = set()
    for match in _SPACED.finditer(text):
        drop.update(i for i in range(match.start(), match.end()) if not text[i].isalpha())
    return [pair for i, pair in enumerate(chars) if i not in drop]


def _collapse_repeats(chars: list[tuple[str, int]]) -> list[tuple[str, int]]:
    # English never triples a letter, evasion does: "stuuupid", "idiooot". A run of three or
    # more identical letters becomes one; doubles ("too", "good") stay.
    out: list[tuple[str, int]] = []
    i = 0
    while i < len(chars):
        j = i
        while j + 1 < len(chars) and chars[j + 1][0] == chars[i][0]:
            j += 1
        run = chars[i : j + 1]
        out.extend(run[:1] if chars[i][0].isalpha() and len(run) >= 3 else run)
        i = j + 1
    return out


def normalize(text: str) -> Normalized:
    """Normalise ``text`` against evasion; see the module docstring for the steps."""
    chars = _strip_and_fold(text)
    chars = _deleet(chars)
    chars = _join_spaced(chars)
    chars = _collapse_repeats(chars)
    # squeeze whitespace runs left behind by removed characters
    squeezed: list[tuple[str, int]] = []
    for char, origin in chars:
        if char == " " and (not squeezed or squeezed[-1][0] == " "):
            continue
        squeezed.append((char, origin))
    if squeezed and squeezed[-1][0] == " ":
        squeezed.pop()
    return Normalized("".join(c for c, _ in squeezed), tuple(o for _, o in squeezed))
