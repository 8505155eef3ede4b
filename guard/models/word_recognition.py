"""Word recognition: map misspelled words back to known words before the model reads them.

A defence against character-level attacks such as DeepWordBug, after Pruthi, Dhingra & Lipton
(2019), "Combating Adversarial Misspellings with Robust Word Recognition", arXiv:1905.11268.
Their recogniser is a trained semi-character RNN; this one is a dictionary lookup in the same
place, with their "pass-through" backoff:

- a word the dictionary knows, or one shorter than two letters, is kept;
- otherwise every word one edit away (a deleted, inserted, substituted or swapped letter: the
  four DeepWordBug edits) is looked up, and the most frequent known one replaces it, in the
  original's case (``MUSUEM`` -> ``MUSEUM``);
- a word with no known neighbour is kept as it is.

The dictionary is a public word list (the whole-word entries of a WordPiece tokenizer, which are
roughly in frequency order), optionally with the word counts of the training texts in front
(a word seen in training beats any public word). Saved with a checkpoint as
``word_recognizer.json``; :class:`guard.models.classifier.HFClassifier` applies it to every
input. Only letters are touched: digits, punctuation, emoji and spacing pass through unchanged.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from guard.errors import ModelNotFoundError

#: File name of a saved recogniser inside a checkpoint folder.
WORD_RECOGNIZER_FILE = "word_recognizer.json"
_FORMAT = "guard-word-recognizer/1"
_WORD = re.compile(r"[A-Za-z]+")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_CACHE_SIZE = 1 << 16

#: Where the dictionary comes from: the public word list only, or the training texts too.
DictionarySource = Literal["public", "train"]


def public_words(tokenizer: Any) -> list[str]:
    """Whole-word, lower-case, letters-only entries of a tokenizer's vocabulary, by token id.

    For BERT's WordPiece vocabularies (all-MiniLM-L6-v2's included) the id order is roughly
    frequency order. Tokenizers without such entries (byte-level BPE) give an empty list.
    """
    vocab: Mapping[str, int] = tokenizer.get_vocab()
    words = [w for w in vocab if len(w) > 1 and w.isascii() and w.isalpha() and w.islower()]
    return sorted(words, key=vocab.__getitem__)


def _one_edit(word: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion away (a-z)."""
    cuts = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return ({a + b[1:] for a, b in cuts if b}
            | {a + b[1] + b[0] + b[2:] for a, b in cuts if len(b) > 1}
            | {a + c + b[1:] for a, b in cuts if b for c in _LETTERS}
            | {a + c + b for a, b in cuts for c in _LETTERS})


def _in_case_of(word: str, like: str) -> str:
    if like.isupper():
        return word.upper()
    return word.capitalize() if like[0].isupper() else word


@dataclass(frozen=True)
class WordRecognizer:
    """A dictionary word recogniser (see the module docstring).

    Build one with :meth:`build`; load a saved one with :meth:`load`.

    Attributes:
        source: ``"public"`` (the public word list only) or ``"train"`` (training counts too).
        training_counts: Lower-case word -> occurrences in the training texts (empty for
            ``"public"``). Saved with the checkpoint: it lists the training vocabulary.
        public: Public words, most frequent first.
    """

    source: DictionarySource
    training_counts: Mapping[str, int]
    public: tuple[str, ...]
    _rank: Mapping[str, int] = field(init=False, repr=False, compare=False)
    # Attacks repeat the same words thousands of times: remember each word's fate.
    _seen: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_rank", {w: i for i, w in enumerate(self.public)})

    @classmethod
    def build(cls, source: DictionarySource, public: Iterable[str],
              texts: Iterable[str] = ()) -> WordRecognizer:
        """A recogniser over ``public`` words, plus the words of ``texts`` when ``source="train"``.

        Raises:
            ValueError: If ``source`` is unknown, or the dictionary would be empty.
        """
        if source not in ("public", "train"):
            raise ValueError(f"unknown word-recognition source {source!r}; use 'public' or 'train'")
        counts = Counter(w.lower() for text in texts for w in _WORD.findall(text)) \
            if source == "train" else Counter()
        recognizer = cls(source, dict(sorted(counts.items())), tuple(dict.fromkeys(public)))
        if not recognizer.training_counts and not recognizer.public:
            raise ValueError("word recognition needs a dictionary: the tokenizer has no whole-word "
                             "entries and there are no training words")
        return recognizer

    def _known(self, word: str) -> bool:
        return word in self.training_counts or word in self._rank

    def _preference(self, word: str) -> tuple[int, int, str]:
        return (self.training_counts.get(word, 0), -self._rank.get(word, len(self._rank)), word)

    def correct_word(self, word: str) -> str:
        """The recognised form of one letters-only word."""
        fixed = self._seen.get(word)
        if fixed is None:
            if len(self._seen) >= _CACHE_SIZE:
                self._seen.clear()
            fixed = self._seen[word] = self._recognise(word)
        return fixed

    def _recognise(self, word: str) -> str:
        lower = word.lower()
        if len(lower) < 2 or self._known(lower):
            return word
        candidates = [c for c in _one_edit(lower) if self._known(c)]
        if not candidates:
            return word
        return _in_case_of(max(candidates, key=self._preference), word)

    def correct(self, text: str) -> str:
        """``text`` with every unknown word replaced by its most frequent known neighbour."""
        return _WORD.sub(lambda m: self.correct_word(m.group(0)), text)

    def to_json(self) -> str:
        """The saved form (see :meth:`load`)."""
        return json.dumps({"format": _FORMAT, "source": self.source,
                           "training_counts": dict(self.training_counts),
                           "public": list(self.public)}, ensure_ascii=False)

    def save(self, folder: str | Path) -> Path:
        """Write ``word_recognizer.json`` into ``folder``; returns the file."""
        path = Path(folder) / WORD_RECOGNIZER_FILE
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> WordRecognizer | None:
        """The recogniser saved in a checkpoint ``folder``, or ``None`` if it has none.

        Raises:
            ModelNotFoundError: If the file exists but is not a saved recogniser.
        """
        path = Path(folder) / WORD_RECOGNIZER_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != _FORMAT or data.get("source") not in ("public", "train"):
                raise ValueError(f"not a {_FORMAT} file")
            counts = {str(w): int(n) for w, n in data["training_counts"].items()}
            return cls(data["source"], counts, tuple(str(w) for w in data["public"]))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ModelNotFoundError(f"{path}: cannot read the word recogniser ({err})") from err
