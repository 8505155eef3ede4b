"""SAFER's randomised substitution: perturbation sets, seeded copies, the vote, persistence."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from word_vectors import nearest_rows, unit_rows

from guard.errors import ConfigError, ModelNotFoundError
from guard.models.substitution_smoothing import (
    SMOOTHING_FILE,
    SMOOTHING_TABLE_FILE,
    SubstitutionSmoother,
)

WORDS = ["good", "fine", "nice", "great", "bad", "poor", "not", "movie", "film"]


# Three groups: {good, fine, nice, great}, {bad, poor, not}, {movie, film}.
MATRIX = unit_rows([[1, 0.05, 0], [1, 0.1, 0], [1, 0.2, 0], [1, 0.6, 0.0],
                   [0, 1, 0.05], [0, 1, 0.1], [0, 1, 0.15],
                   [0, 0, 1], [0.05, 0, 1]])


def _smoother(**kwargs: object) -> SubstitutionSmoother:
    options: dict[str, object] = {"size": 3, "min_cos_sim": 0.9, "protected": ("not",),
                                  "samples": 16}
    options.update(kwargs)
    return SubstitutionSmoother.from_neighbours(WORDS, nearest_rows(MATRIX), MATRIX,
                                                **options)  # type: ignore[arg-type]


def test_sets_hold_the_word_and_its_close_neighbours_only() -> None:
    smoother = _smoother()
    assert smoother.perturbation_set("good") == ("good", "fine", "nice")  # "great" is too far
    assert set(smoother.perturbation_set("bad")) == {"bad", "poor", "not"}
    assert smoother.perturbation_set("Movie") == ("movie", "film")
    assert smoother.perturbation_set("not") == ("not",)  # protected: never perturbed
    assert smoother.perturbation_set("zebra") == ("zebra",)
    looser = _smoother(min_cos_sim=0.5)
    assert "great" in looser.perturbation_set("good")
    assert len(_smoother(size=1).perturbation_set("good")) == 2


def test_copies_swap_words_within_their_sets_and_keep_the_rest() -> None:
    smoother = _smoother()
    text = "Good movie, NOT bad: 10/10 zebra!"
    copies = smoother.copies(text)
    assert len(copies) == 16
    assert copies == smoother.copies(text)  # seeded by the text: the same answer every time
    pattern = re.compile(r"^(\w+) (\w+), NOT (\w+): 10/10 zebra!$")
    seen: dict[int, set[str]] = {1: set(), 2: set(), 3: set()}
    for copy in copies:
        match = pattern.match(copy)
        assert match is not None, copy
        for group in seen:
            seen[group].add(match.group(group))
    assert seen[1] <= {"Good", "Fine", "Nice"} and len(seen[1]) > 1  # first letter kept upper
    assert seen[2] <= {"movie", "film"} and len(seen[2]) == 2
    assert seen[3] <= {"bad", "poor", "not"} and len(seen[3]) > 1


def test_copies_of_texts_one_word_apart_differ_at_that_word_only() -> None:
    """Common random numbers: an attacker's swap changes no other word of any copy."""
    smoother = _smoother()
    before = smoother.copies("good movie and a fine film, nice movie")
    after = smoother.copies("good movie and a fine film, bad movie")
    differ = [[i for i, (a, b) in enumerate(zip(x.split(), y.split(), strict=True)) if a != b]
              for x, y in zip(before, after, strict=True)]
    assert all(d == [6] for d in differ)  # only "nice" -> "bad", whichever draw each copy made


def test_training_draws_change_with_the_salt_and_inference_copies_do_not() -> None:
    smoother = _smoother()
    text = "good film good movie nice film bad movie"
    draws = {smoother.perturb(text, salt=f"train:0:{epoch}") for epoch in range(10)}
    assert len(draws) > 5
    assert smoother.perturb(text, salt="train:0:3") == smoother.perturb(text, salt="train:0:3")
    other_seed = SubstitutionSmoother(smoother.words, smoother.sets, samples=16, seed=1)
    assert other_seed.copies(text) != smoother.copies(text)


def test_the_vote_is_the_mean_probability_of_each_inputs_copies() -> None:
    smoother = _smoother(samples=2)
    probs = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.0, 1.0]])
    np.testing.assert_allclose(smoother.vote(probs), [[0.7, 0.3], [0.1, 0.9]])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": 0}, "size"), ({"min_cos_sim": 1.5}, "cosine"), ({"samples": 0}, "samples")])
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _smoother(**kwargs)


def test_sets_must_start_with_their_own_word() -> None:
    with pytest.raises(ConfigError, match="own word"):
        SubstitutionSmoother(("a", "b"), np.array([[1, 0], [0, 1]]))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    smoother = _smoother()
    smoother.save(tmp_path)
    loaded = SubstitutionSmoother.load(tmp_path)
    assert loaded == smoother
    assert loaded is not None and loaded.copies("good movie") == smoother.copies("good movie")
    assert loaded.provenance["perturbable_words"] == smoother.provenance["perturbable_words"] == 8
    assert SubstitutionSmoother.load(tmp_path / "elsewhere") is None
    (tmp_path / SMOOTHING_TABLE_FILE).unlink()
    with pytest.raises(ModelNotFoundError, match="cannot read the substitution smoother"):
        SubstitutionSmoother.load(tmp_path)
    smoother.save(tmp_path)
    (tmp_path / SMOOTHING_FILE).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ModelNotFoundError, match="unknown format"):
        SubstitutionSmoother.load(tmp_path)


def test_a_smoothed_classifier_answers_with_the_mean_of_its_copies(
        tiny_classifier_dir: Path, tmp_path: Path) -> None:
    """The real model, read through the real smoother, against a by-hand vote."""
    import shutil

    from guard.models.classifier import HFClassifier

    plain = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
    assert plain.smoother is None
    smoother = _smoother(samples=5)
    texts = ["good movie tickets please", "a bad film, refund it", "zebra"]
    smoothed = HFClassifier(plain.model, plain.tokenizer, smoother=smoother)
    expected = np.stack([plain.predict_proba(smoother.copies(t)).mean(axis=0) for t in texts])
    np.testing.assert_allclose(smoothed.predict_proba(texts), expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(plain.predict_proba(texts[:2]), expected[:2], atol=1e-4)

    folder = tmp_path / "with-smoother"
    shutil.copytree(tiny_classifier_dir, folder)
    smoother.save(folder)
    loaded = HFClassifier.from_pretrained(folder, device="cpu")
    assert loaded.smoother == smoother
    np.testing.assert_allclose(loaded.predict_proba(texts), expected, rtol=1e-5, atol=1e-7)
    assert loaded.fingerprint != plain.fingerprint  # the smoother is part of the model
