"""Obfuscated variants of toxic texts: the evasions a guard must see through.

Each obfuscator is deterministic given its random generator, so the same seed gives the same
variants.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

Obfuscator = Callable[[str, np.random.Generator], str]

_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}
_HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "i": "і"}
_WORD = re.compile(r"[A-Za-z]{3,}")


def leetspeak(text: str, rng: np.random.Generator) -> str:
    """Replace about two thirds of the leet-able letters ("idiot" -> "1d10t")."""
    return "".join(_LEET[c.lower()] if c.lower() in _LEET and rng.random() < 0.67 else c
                   for c in text)


def zero_width(text: str, rng: np.random.Generator) -> str:
    """Insert zero-width spaces and joiners inside words."""
    out = []
    for i, char in enumerate(text):
        out.append(char)
        if char.isalpha() and i + 1 < len(text) and text[i + 1].isalpha() and rng.random() < 0.5:
            out.append("\u200b" if rng.random() < 0.5 else "\u200d")
    return "".join(out)


def homoglyphs(text: str, rng: np.random.Generator) -> str:
    """Swap Latin letters for Cyrillic look-alikes."""
    return "".join(_HOMOGLYPHS[c] if c in _HOMOGLYPHS and rng.random() < 0.7 else c
                   for c in text)


def spaced(text: str, rng: np.random.Generator) -> str:
    """Space out the letters of the longest word ("idiot" -> "i d i o t")."""
    words = list(_WORD.finditer(text))
    if not words:
        return text
    target = max(words, key=lambda m: len(m.group()))
    return text[: target.start()] + " ".join(target.group()) + text[target.end() :]


def stretched(text: str, rng: np.random.Generator) -> str:
    """Repeat a vowel of each long word ("stupid" -> "stuuuupid")."""
    def stretch(match: re.Match[str]) -> str:
        word = match.group()
        vowels = [i for i, c in enumerate(word) if c.lower() in "aeiou"]
        if not vowels:
            return word
        k = vowels[int(rng.integers(len(vowels)))]
        return word[: k + 1] + word[k] * int(rng.integers(2, 5)) + word[k + 1 :]

    return _WORD.sub(stretch, text)


#: Every obfuscator, by name.
OBFUSCATORS: dict[str, Obfuscator] = {
    "leetspeak": leetspeak,
    "zero_width": zero_width,
    "homoglyphs": homoglyphs,
    "spaced": spaced,
    "stretched": stretched,
}
