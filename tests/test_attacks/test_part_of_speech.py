"""The offline part-of-speech constraint of textfooler-offline (denckring-en-pos tagger)."""

from __future__ import annotations

import pickle

import pytest

from attacks.part_of_speech import UPOS_TO_UNIVERSAL, part_of_speech, universal_tags
from attacks.textattack_env import load_textattack


def test_tags_are_the_universal_tagset_in_context() -> None:
    words = "The museum opens at nine and tickets are cheap"
    tags = universal_tags(words.split(" "))
    assert tags == ["DET", "NOUN", "VERB", "ADP", "NUM", "CONJ", "NOUN", "VERB", "ADJ"]
    assert universal_tags([]) == []
    assert set(UPOS_TO_UNIVERSAL.values()) <= {"NOUN", "VERB", "ADJ", "ADV", "PRON", "DET",
                                                 "ADP", "NUM", "CONJ", "PRT", "X", "."}


def _swap(text: str, index: int, word: str) -> tuple[object, object]:
    textattack = load_textattack()
    original = textattack.shared.AttackedText(text)
    swapped = original.replace_word_at_index(index, word)
    swapped.attack_attrs["newly_modified_indices"] = {index}
    return original, swapped


@pytest.mark.parametrize(("text", "index", "word", "allowed"), [
    ("The tickets are cheap and the tour is short", 3, "inexpensive", True),  # ADJ -> ADJ
    ("The tickets are cheap and the tour is short", 3, "quickly", False),  # ADJ -> ADV
    ("We visit the castle in the morning", 1, "tour", True),  # VERB -> VERB
    ("We visit the castle in the morning", 1, "trip", True),  # VERB -> NOUN: allowed
    ("We visit the castle in the morning", 3, "the", False),  # NOUN -> DET
])
def test_the_constraint_keeps_the_word_class(text: str, index: int, word: str,
                                             allowed: bool) -> None:
    constraint = part_of_speech()
    original, swapped = _swap(text, index, word)
    assert constraint._check_constraint(swapped, original) is allowed


def test_the_constraint_names_its_tagger_and_pickles() -> None:
    constraint = part_of_speech(allow_verb_noun_swap=False)
    assert "denckring-en-pos==" in repr(constraint)
    again = pickle.loads(pickle.dumps(constraint))
    original, swapped = _swap("We visit the castle in the morning", 1, "trip")
    assert again._check_constraint(swapped, original) is False  # no noun/verb swap now
