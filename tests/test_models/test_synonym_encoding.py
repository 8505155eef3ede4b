"""SEM's synonym encoding: leader clusters, the encoding, persistence and its place in a model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from word_vectors import nearest_rows, unit_rows

from guard.errors import ConfigError, ModelNotFoundError
from guard.models.synonym_encoding import SYNONYM_ENCODING_FILE, SynonymEncoder

# Frequency order. "good" leads {good, fine, nice}; "great" is close to "nice" but not to
# "good", so it leads its own cluster instead of chaining into good's; "not" is protected.
WORDS = ["good", "bad", "movie", "fine", "nice", "great", "poor", "not", "film"]
ROWS = {"good": [1, 0.05, 0], "bad": [0, 1, 0.05], "movie": [0, 0, 1], "fine": [1, 0.1, 0],
        "nice": [1, 0.35, 0], "great": [1, 0.9, 0.0], "poor": [0, 1, 0.1],
        "not": [0, 1, 0.12], "film": [0.05, 0, 1]}


def _encoder(**kwargs: object) -> SynonymEncoder:
    matrix = unit_rows([ROWS[w] for w in WORDS])
    options: dict[str, object] = {"size": 4, "min_cos_sim": 0.9, "protected": ("not",)}
    options.update(kwargs)
    return SynonymEncoder.from_neighbours(WORDS, nearest_rows(matrix), matrix,
                                          **options)  # type: ignore[arg-type]


def test_clusters_are_led_by_the_most_frequent_word_without_chains() -> None:
    encoder = _encoder()
    assert encoder.codes == {"fine": "good", "nice": "good", "poor": "bad", "film": "movie"}
    assert encoder.provenance["clusters"] == 4  # good, bad, movie, great
    assert encoder.provenance["encoded_words"] == 4
    # with one neighbour each, "nice" (nearest: "fine", taken) and "great" lead alone
    assert _encoder(size=1).codes == {"fine": "good", "poor": "bad", "film": "movie"}


def test_encoding_keeps_case_punctuation_and_unknown_words() -> None:
    encoder = _encoder()
    assert encoder.encode("Nice FILM, not poor: 10/10 zebra!") == \
        "Good MOVIE, not bad: 10/10 zebra!"
    # a swap inside a cluster is invisible to the model
    assert encoder.encode("a fine movie") == encoder.encode("a nice film") == "a good movie"


@pytest.mark.parametrize(("kwargs", "message"), [({"size": 0}, "size"),
                                                 ({"min_cos_sim": -2.0}, "cosine")])
def test_bad_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _encoder(**kwargs)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    encoder = _encoder()
    encoder.save(tmp_path)
    loaded = SynonymEncoder.load(tmp_path)
    assert loaded == encoder and loaded is not None
    assert loaded.provenance == encoder.provenance
    assert SynonymEncoder.load(tmp_path / "elsewhere") is None
    (tmp_path / SYNONYM_ENCODING_FILE).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ModelNotFoundError, match="cannot read the synonym encoder"):
        SynonymEncoder.load(tmp_path)


def test_a_classifier_reads_encoded_text(tiny_classifier_dir: Path, tmp_path: Path) -> None:
    from guard.models.classifier import HFClassifier

    folder = tmp_path / "with-encoder"
    shutil.copytree(tiny_classifier_dir, folder)
    _encoder().save(folder)
    plain = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
    encoded = HFClassifier.from_pretrained(folder, device="cpu")
    assert encoded.synonym_encoder == _encoder() and plain.synonym_encoder is None
    texts = ["a nice film ticket", "fine poor movie refund"]
    np.testing.assert_allclose(encoded.predict_proba(texts),
                               plain.predict_proba([_encoder().encode(t) for t in texts]),
                               rtol=1e-6)
    assert encoded.fingerprint != plain.fingerprint
