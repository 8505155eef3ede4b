"""TextFooler's part-of-speech constraint, offline.

TextAttack's ``PartOfSpeech`` tags with NLTK's averaged perceptron (a download), flair or stanza
(hub models). Here the tagger is the averaged perceptron of the PyPI package
``denckring-en-pos`` 0.6.0 (code Apache-2.0; weights CC BY-SA 4.0, trained on UD English-EWT
v2.18, test UPOS accuracy 0.934, trained without punctuation, which suits TextAttack's word
lists). It is used as installed, not copied into this project. Its UD tags are mapped to the
universal tagset NLTK's tagger gives TextFooler (``PROPN`` -> ``NOUN``, ``AUX`` -> ``VERB``,
``CCONJ``/``SCONJ`` -> ``CONJ``, ``PART`` -> ``PRT``), so the published rule holds: a word may be
replaced only by one of the same class, or a noun by a verb and back.

Each word is tagged in TextAttack's context (four words either side), as published; the tag of
the word is taken at its position in the context, where TextAttack takes its first occurrence.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from attacks.textattack_env import lazy_picklable_class, load_textattack
from guard.errors import require

#: UD UPOS -> the universal tagset of Petrov et al. (2012) that NLTK's ``tagset="universal"`` uses.
UPOS_TO_UNIVERSAL = {
    "NOUN": "NOUN", "PROPN": "NOUN", "VERB": "VERB", "AUX": "VERB", "ADJ": "ADJ", "ADV": "ADV",
    "PRON": "PRON", "DET": "DET", "ADP": "ADP", "NUM": "NUM", "CCONJ": "CONJ", "SCONJ": "CONJ",
    "PART": "PRT", "INTJ": "X", "SYM": "X", "X": "X", "PUNCT": ".",
}
_CLASS_NAME = "OfflinePartOfSpeech"


@cache
def _tagger() -> Any:
    require("denckring_en_pos", extra="attacks", feature="the offline part-of-speech constraint")
    import denckring_en_pos

    return denckring_en_pos.tagger()


def tagger_name() -> str:
    """The tagger's distribution and version, recorded in the constraint's description."""
    from importlib.metadata import version

    return (f"denckring-en-pos=={version('denckring-en-pos')} "
            "(averaged perceptron, UD English-EWT)")


def universal_tags(words: Sequence[str]) -> list[str]:
    """The universal part-of-speech tag of each word, tagged as one sentence."""
    if not words:
        return []
    return [UPOS_TO_UNIVERSAL.get(label.partition("|")[0], "X")
            for label in _tagger().tag(list(words))]


def _define_constraint() -> type:
    textattack = load_textattack()
    base = textattack.constraints.grammaticality.PartOfSpeech

    class OfflinePartOfSpeech(base):  # type: ignore[misc, valid-type]
        """TextAttack ``PartOfSpeech`` with the ``denckring-en-pos`` tagger."""

        def __init__(self, *, allow_verb_noun_swap: bool,
                     compare_against_original: bool) -> None:
            # "nltk" only selects no model to load here: _get_pos below does the tagging
            super().__init__(tagger_type="nltk", tagset="universal",
                             allow_verb_noun_swap=allow_verb_noun_swap,
                             compare_against_original=compare_against_original)
            self.tagger_type = tagger_name()

        def _get_pos(self, before_ctx: list[str], word: str, after_ctx: list[str]) -> str:
            context = [*before_ctx, word, *after_ctx]
            key = " ".join(context)
            if key in self._pos_tag_cache:
                tags = self._pos_tag_cache[key]
            else:
                tags = universal_tags(context)
                self._pos_tag_cache[key] = tags
            return str(tags[len(before_ctx)])

    return OfflinePartOfSpeech


_constraint_class, __getattr__ = lazy_picklable_class(__name__, _CLASS_NAME,
                                                       _define_constraint)


def part_of_speech(*, allow_verb_noun_swap: bool = True,
                   compare_against_original: bool = True) -> Any:
    """TextFooler's part-of-speech constraint (TextAttack's defaults) with an offline tagger.

    Args:
        allow_verb_noun_swap: Let a noun be replaced by a verb and back (TextFooler: yes).
        compare_against_original: Tag against the original text rather than the last one.

    Returns:
        A TextAttack ``PartOfSpeech`` constraint.

    Raises:
        MissingExtraError: If TextAttack or ``denckring-en-pos`` is not installed.
    """
    _tagger()  # a missing tagger fails here, not inside an attack
    return _constraint_class()(allow_verb_noun_swap=allow_verb_noun_swap,
                               compare_against_original=compare_against_original)
