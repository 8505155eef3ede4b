"""The dictionary word recogniser: corrections, persistence, and its place in front of a model."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from guard.errors import ConfigError, ModelNotFoundError
from guard.models.word_recognition import WORD_RECOGNIZER_FILE, WordRecognizer, public_words

PUBLIC = ("long", "login", "museum", "ticket", "tickets", "refund", "password")


def test_one_edit_typos_are_recognised_in_the_original_case() -> None:
    recognizer = WordRecognizer.build("public", PUBLIC)
    assert recognizer.correct("musuem tickts, REFUDN pls!") == "museum tickets, REFUND pls!"
    assert recognizer.correct("Xmuseum") == "Museum"  # the case of the word as written
    # known words, one-letter words, digits and words with no known neighbour are kept
    assert recognizer.correct("a long day 4u, qwzxv 🙂") == "a long day 4u, qwzxv 🙂"


def test_training_words_beat_more_frequent_public_words() -> None:
    # "logn" is one edit from "long" (more frequent publicly) and from "login"
    assert WordRecognizer.build("public", PUBLIC).correct("logn") == "long"
    trained = WordRecognizer.build("train", PUBLIC, ["my login fails", "login again"])
    assert trained.correct("logn") == "login"
    assert trained.training_counts == {"again": 1, "fails": 1, "login": 2, "my": 1}
    assert WordRecognizer.build("public", PUBLIC, ["login"]).training_counts == {}


def test_every_deepwordbug_edit_of_a_word_is_undone() -> None:
    """The four DeepWordBug transformations, from TextAttack itself, on dictionary words."""
    from attacks.textattack_env import load_textattack

    textattack = load_textattack()
    transformations = textattack.transformations
    random.seed(0)
    edits = [transformations.WordSwapNeighboringCharacterSwap(random_one=False),
             transformations.WordSwapRandomCharacterSubstitution(random_one=False),
             transformations.WordSwapRandomCharacterDeletion(random_one=False),
             transformations.WordSwapRandomCharacterInsertion(random_one=False)]
    recognizer = WordRecognizer.build("public", ("museum", "password", "refund"))
    checked = 0
    for word in ("museum", "password", "refund"):
        for edit in edits:
            for typo in edit._get_replacement_words(word):
                if typo.lower() != word:
                    assert recognizer.correct(typo).lower() == word, typo
                    checked += 1
    assert checked > 30


def test_build_rejects_an_unknown_source_and_an_empty_dictionary() -> None:
    with pytest.raises(ValueError, match="unknown word-recognition source"):
        WordRecognizer.build("everything", PUBLIC)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a dictionary"):
        WordRecognizer.build("public", ())


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    recognizer = WordRecognizer.build("train", PUBLIC, ["Loggin to the Sky Library"])
    recognizer.save(tmp_path)
    loaded = WordRecognizer.load(tmp_path)
    assert loaded == recognizer
    assert loaded is not None and loaded.correct("Sky Libary") == "Sky Library"
    assert WordRecognizer.load(tmp_path / "elsewhere") is None
    (tmp_path / WORD_RECOGNIZER_FILE).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ModelNotFoundError, match="cannot read the word recogniser"):
        WordRecognizer.load(tmp_path)


def test_public_words_are_the_tokenizers_whole_words_in_id_order(minilm_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    words = public_words(tokenizer)
    vocab = tokenizer.get_vocab()
    assert "the" in words and "museum" in words and "##s" not in words and "[UNK]" not in words
    assert [vocab[w] for w in words] == sorted(vocab[w] for w in words)


def test_config_defaults_and_the_private_modes_refusal() -> None:
    from training.config import TrainConfig

    assert TrainConfig(mode="clean").word_recognition == "off"
    assert TrainConfig(mode="adversarial").word_recognition == "train"
    assert TrainConfig(mode="dp").word_recognition == "off"
    assert TrainConfig(mode="adversarial+dp").word_recognition == "public"
    assert TrainConfig(mode="adversarial+dp", word_recognition="off").word_recognition == "off"
    with pytest.raises(ConfigError, match="DP does not cover"):
        TrainConfig.from_sources(None, mode="dp", word_recognition="train")


def test_classifier_reads_corrected_text_and_loads_the_recogniser(
        tmp_path: Path, tiny_classifier_dir: Path) -> None:
    from guard.models.classifier import HFClassifier
    from guard.provenance import sha256_model_dir

    plain = HFClassifier.from_pretrained(tiny_classifier_dir)
    assert plain.word_recognizer is None
    folder = tmp_path / "with-recogniser"
    shutil.copytree(tiny_classifier_dir, folder)
    WordRecognizer.build("public", public_words(plain.tokenizer)).save(folder)
    guarded = HFClassifier.from_pretrained(folder)
    assert guarded.word_recognizer is not None

    typo, fixed = "where is the musuem", "where is the museum"
    assert not np.allclose(plain.logits([typo]), plain.logits([fixed]))
    np.testing.assert_allclose(guarded.logits([typo]), plain.logits([fixed]), rtol=1e-5)
    assert sha256_model_dir(folder) != sha256_model_dir(tiny_classifier_dir)


def test_training_with_word_recognition_saves_it_and_corrects_training_text(
        tmp_path: Path, tiny_bert_dir: Path) -> None:
    from guard.models.classifier import HFClassifier
    from training.config import TrainConfig
    from training.pipeline import fine_tune

    config = TrainConfig(model=str(tiny_bert_dir), epochs=1, batch_size=64, max_length=32,
                         word_recognition="train")
    manifest = fine_tune(config, out=tmp_path / "wr", progress=False).manifest
    assert manifest["word_recognition"]["source"] == "train"
    assert manifest["word_recognition"]["training_words"] > 100
    assert WORD_RECOGNIZER_FILE in manifest["files"]
    loaded = HFClassifier.from_pretrained(tmp_path / "wr").word_recognizer
    assert loaded is not None and loaded.source == "train"
    assert loaded.correct("Crystl Caverns") == "Crystal Caverns"  # invented names: training words


def test_adversarial_training_attacks_the_model_through_its_recogniser(
        tmp_path: Path, tiny_classifier_dir: Path) -> None:
    """A successful attack changed the prediction on corrected text, so the text itself."""
    from training.callbacks import TrainerCallback, TrainerControl, TrainerState, TrainingContext
    from training.config import TrainConfig
    from training.pipeline import fine_tune

    class KeepPool(TrainerCallback):
        """Keeps the run's context and the adversarial rows the epoch trained on."""

        def __init__(self) -> None:
            self.context: TrainingContext | None = None
            self.pool: list[tuple[str, int]] = []

        def bind(self, context: TrainingContext) -> None:
            self.context = context

        def on_epoch_end(self, state: TrainerState, control: TrainerControl) -> None:
            assert state.augmented is not None and state.augmented_sources is not None
            self.pool = list(zip(state.augmented.texts, state.augmented_sources, strict=True))

    keep = KeepPool()
    config = TrainConfig(model=str(tiny_classifier_dir), mode="adversarial", epochs=1,
                         batch_size=64, max_length=32, adv_clean_epochs=0, adv_fraction=0.1,
                         adv_query_budget=100)
    fine_tune(config, out=tmp_path / "adv", progress=False, callbacks=(keep,))
    assert keep.context is not None
    recognizer = keep.context.word_recognizer
    assert recognizer is not None and recognizer.source == "train"
    assert keep.pool
    train_texts = keep.context.train.texts
    for text, index in keep.pool:  # the recogniser does not simply undo any of them
        assert recognizer.correct(text) != recognizer.correct(train_texts[index]), text
