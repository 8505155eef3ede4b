"""Obfuscated variants of toxic texts: the evasions a guard must see through.

Each obfuscator is deterministic given its random generator, so the same seed gives the same
variants. :data:`REGISTRY` records for each one whether the guard's normaliser
(:func:`guard.normalize.normalize`) undoes it (``known``) or not (``unseen``); the flags are
checked against the real normaliser by ``tests/test_suites/test_toxicity.py``, so a change to
the normaliser that learns an "unseen" evasion makes that test say so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

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


def _longest_word(text: str) -> re.Match[str] | None:
    words = list(_WORD.finditer(text))
    return max(words, key=lambda m: len(m.group())) if words else None


def _join_longest(text: str, separator: str) -> str:
    target = _longest_word(text)
    if target is None:
        return text
    return text[: target.start()] + separator.join(target.group()) + text[target.end() :]


def _styled(text: str, rng: np.random.Generator, capital: int, small: int) -> str:
    """Map the longest word, and each other ASCII letter with probability 1/2, to a style.

    ``capital`` and ``small`` are the code points of the style's "A" and "a"; the 26 letters
    follow contiguously.
    """
    target = _longest_word(text)
    span = range(target.start(), target.end()) if target else range(0)
    out = []
    for i, char in enumerate(text):
        styled = char.isascii() and char.isalpha()
        if styled and (i in span or rng.random() < 0.5):
            base = capital if char.isupper() else small
            char = chr(base + ord(char.lower()) - ord("a"))
        out.append(char)
    return "".join(out)


# Styles of the Mathematical Alphanumeric Symbols block (U+1D400..U+1D7FF) whose 52 letters are
# contiguous (italic, script, fraktur and double-struck have holes where older code points
# exist): bold, bold italic, bold script, bold fraktur, sans-serif, sans-serif bold, monospace.
_MATH_STYLES = (0x1D400, 0x1D468, 0x1D4D0, 0x1D56C, 0x1D5A0, 0x1D5D4, 0x1D670)


def math_alphanumeric(text: str, rng: np.random.Generator) -> str:
    """Letters in one mathematical style, picked at random ("idiot" -> "𝐢𝐝𝐢𝐨𝐭")."""
    capital = _MATH_STYLES[int(rng.integers(len(_MATH_STYLES)))]
    return _styled(text, rng, capital, capital + 26)


def circled(text: str, rng: np.random.Generator) -> str:
    """Circled letters, U+24B6 (Ⓐ) and U+24D0 (ⓐ) on ("idiot" -> "ⓘⓓⓘⓞⓣ")."""
    return _styled(text, rng, 0x24B6, 0x24D0)


def fullwidth(text: str, rng: np.random.Generator) -> str:
    """Fullwidth letters, U+FF21 (Ａ) and U+FF41 (ａ) on ("idiot" -> "ｉｄｉｏｔ")."""
    return _styled(text, rng, 0xFF21, 0xFF41)


def dotted(text: str, rng: np.random.Generator) -> str:
    """Dots between the letters of the longest word ("idiot" -> "i.d.i.o.t")."""
    return _join_longest(text, ".")


def hyphenated(text: str, rng: np.random.Generator) -> str:
    """Hyphens between the letters of the longest word ("idiot" -> "i-d-i-o-t")."""
    return _join_longest(text, "-")


def slashed(text: str, rng: np.random.Generator) -> str:
    """Slashes between the letters of the longest word ("idiot" -> "i/d/i/o/t")."""
    return _join_longest(text, "/")


def split_word(text: str, rng: np.random.Generator) -> str:
    """One space inside the longest word, at a random place ("idiot" -> "id iot")."""
    target = _longest_word(text)
    if target is None:
        return text
    cut = target.start() + int(rng.integers(1, len(target.group())))
    return text[:cut] + " " + text[cut:]


@dataclass(frozen=True)
class ObfuscatorEntry:
    """An obfuscator and whether the guard's normaliser undoes it.

    Attributes:
        function: The obfuscator.
        known: ``True`` when :func:`guard.normalize.normalize` restores the obfuscated word
            (the normaliser was written against it, or NFKC undoes it); ``False`` for an
            evasion it leaves in place.
    """

    function: Obfuscator
    known: bool


#: Every obfuscator by name, with its flag. The first five are the ones the normaliser was
#: written against; NFKC also folds mathematical, circled and fullwidth letters to ASCII, and
#: the spaced-letters rule joins letters separated by ``.``/``-`` (and ``_``/``*``), so those are
#: known too. Slashes and a single space inside a word get through.
REGISTRY: dict[str, ObfuscatorEntry] = {
    "leetspeak": ObfuscatorEntry(leetspeak, known=True),
    "zero_width": ObfuscatorEntry(zero_width, known=True),
    "homoglyphs": ObfuscatorEntry(homoglyphs, known=True),
    "spaced": ObfuscatorEntry(spaced, known=True),
    "stretched": ObfuscatorEntry(stretched, known=True),
    "math_alphanumeric": ObfuscatorEntry(math_alphanumeric, known=True),
    "circled": ObfuscatorEntry(circled, known=True),
    "fullwidth": ObfuscatorEntry(fullwidth, known=True),
    "dotted": ObfuscatorEntry(dotted, known=True),
    "hyphenated": ObfuscatorEntry(hyphenated, known=True),
    "slashed": ObfuscatorEntry(slashed, known=False),
    "split_word": ObfuscatorEntry(split_word, known=False),
}

#: Every obfuscator, by name.
OBFUSCATORS: dict[str, Obfuscator] = {name: e.function for name, e in REGISTRY.items()}
#: The obfuscators the normaliser undoes.
KNOWN_OBFUSCATORS: dict[str, Obfuscator] = {
    name: e.function for name, e in REGISTRY.items() if e.known}
#: The obfuscators the normaliser leaves in place.
UNSEEN_OBFUSCATORS: dict[str, Obfuscator] = {
    name: e.function for name, e in REGISTRY.items() if not e.known}
