"""ASCC: the candidate table, whole-word positions, the search and the training loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional
from word_vectors import nearest_rows, unit_rows

from guard.errors import ConfigError
from training.config import TrainConfig
from training.convex_substitution import (
    ConvexSubstitutionAdversary,
    TokenSubstitutes,
    combine,
    whole_word_positions,
)

# "xylophonist" is several word pieces in MiniLM's vocabulary; "the" is protected.
WORDS = ["good", "fine", "great", "bad", "poor", "movie", "film", "the", "xylophonist"]


MATRIX = unit_rows([[1, 0.05, 0], [1, 0.1, 0], [1, 0.9, 0], [0, 1, 0.05], [0, 1, 0.1],
                   [0, 0, 1], [0.05, 0, 1], [0.5, 0.5, 1], [0.05, 0.05, 1]])


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert_dir)


@pytest.fixture(scope="module")
def substitutes(tokenizer) -> TokenSubstitutes:  # type: ignore[no-untyped-def]
    return TokenSubstitutes.from_neighbours(WORDS, nearest_rows(MATRIX), MATRIX, tokenizer,
                                            size=3, min_cos_sim=0.95, protected=frozenset({"the"}),
                                            provenance={"vectors": "test"})


def _row(substitutes: TokenSubstitutes, tokenizer, word: str) -> list[str]:  # type: ignore[no-untyped-def]
    token = tokenizer.convert_tokens_to_ids(word)
    ids = substitutes.ids[token][substitutes.valid[token]].tolist()
    return tokenizer.convert_ids_to_tokens(ids)


def test_candidates_are_the_token_then_its_close_single_token_synonyms(
        substitutes: TokenSubstitutes, tokenizer) -> None:  # type: ignore[no-untyped-def]
    assert len(tokenizer.tokenize("xylophonist")) > 1
    assert substitutes.ids.shape[0] == len(tokenizer)
    assert _row(substitutes, tokenizer, "good") == ["good", "fine"]  # "great" is too far
    assert _row(substitutes, tokenizer, "bad") == ["bad", "poor"]
    assert _row(substitutes, tokenizer, "the") == ["the"]  # protected
    # "xylophonist" is as close to "movie" as "film", but several tokens: never a candidate
    assert _row(substitutes, tokenizer, "movie") == ["movie", "film"]
    assert _row(substitutes, tokenizer, "concert") == ["concert"]  # not in the vectors
    assert substitutes.substitutable == 6
    assert substitutes.provenance == {"vectors": "test"}
    with pytest.raises(ConfigError, match="min_cos_sim"):
        TokenSubstitutes.from_neighbours(WORDS, nearest_rows(MATRIX), MATRIX, tokenizer,
                                         size=3, min_cos_sim=2.0)


def test_whole_word_positions_skip_special_tokens_and_word_pieces(
        tokenizer, tiny_bert_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    encoding = tokenizer(["good xylophonist film", "bad"], padding=True, return_tensors="pt")
    mask = whole_word_positions(encoding)
    pieces = len(tokenizer.tokenize("xylophonist"))
    expected = [False, True, *[False] * pieces, True, False]
    assert mask[0].tolist() == expected
    assert mask[1].tolist() == [False, True, False] + [False] * (len(expected) - 3)
    slow = AutoTokenizer.from_pretrained(tiny_bert_dir, use_fast=False)
    with pytest.raises(ConfigError, match="fast tokenizer"):
        whole_word_positions(slow(["good film"], return_tensors="pt"))


@pytest.fixture(scope="module")
def model(tiny_classifier_dir: Path):  # type: ignore[no-untyped-def]
    """A trained classifier: a random one barely reacts to its inputs."""
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(tiny_classifier_dir).eval()


def test_the_search_moves_the_prediction_and_only_where_synonyms_exist(
        substitutes: TokenSubstitutes, tokenizer, model) -> None:  # type: ignore[no-untyped-def]
    encoding = tokenizer(["the good movie", "a bad film the end"], padding=True,
                         return_tensors="pt")
    adversary = ConvexSubstitutionAdversary(substitutes, steps=3, step_size=2.0)
    candidate_ids, weights = adversary.worst_weights(model, encoding)
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:2]))
    _, allowed = adversary.candidates(encoding)
    movable = allowed.sum(-1) > 1
    tokens = [tokenizer.convert_ids_to_tokens(row) for row in encoding["input_ids"].tolist()]
    assert [[t for t, m in zip(row, flags, strict=True) if m]
            for row, flags in zip(tokens, movable.tolist(), strict=True)] == \
        [["good", "movie"], ["bad", "film"]]  # not "the", "a", specials or padding
    embed = model.get_input_embeddings()
    with torch.no_grad():
        found = combine(embed(candidate_ids), weights)
        original = embed(encoding["input_ids"])
        assert torch.equal(found[~movable], original[~movable])
        clean = model(**encoding).logits.softmax(-1)

        def divergence(inputs: torch.Tensor) -> float:
            out = model(inputs_embeds=inputs, attention_mask=encoding["attention_mask"],
                        token_type_ids=encoding["token_type_ids"])
            return float(functional.kl_div(out.logits.log_softmax(-1), clean,
                                           reduction="batchmean"))

        _, start = ConvexSubstitutionAdversary(substitutes, steps=1, step_size=1e-9) \
            .worst_weights(model, encoding)
        assert divergence(found) > divergence(combine(embed(candidate_ids), start)) > 0


def test_loss_is_the_clean_loss_plus_beta_times_the_divergence(
        substitutes: TokenSubstitutes, tokenizer, model) -> None:  # type: ignore[no-untyped-def]
    encoding = tokenizer(["good movie", "bad film"], padding=True, return_tensors="pt")
    targets = torch.tensor([1, 0])
    with torch.no_grad():
        reference = model(**encoding).logits
    plain, logits = ConvexSubstitutionAdversary(substitutes, beta=0.0).loss(
        model, model, encoding, targets)
    assert torch.allclose(logits, reference, atol=1e-5)
    expected = float(functional.cross_entropy(reference, targets))
    assert float(plain.detach()) == pytest.approx(expected, abs=1e-5)
    robust, _ = ConvexSubstitutionAdversary(substitutes, beta=4.0).loss(
        model, model, encoding, targets)
    assert float(robust.detach()) > float(plain.detach())
    robust.backward()
    assert model.get_input_embeddings().weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_settings_are_checked(substitutes: TokenSubstitutes) -> None:
    with pytest.raises(ConfigError, match="at least one step"):
        ConvexSubstitutionAdversary(substitutes, steps=0)
    with pytest.raises(ConfigError, match="step_size > 0"):
        ConvexSubstitutionAdversary(substitutes, step_size=0.0)


def test_config_defaults_the_sets_by_defence_and_refuses_private_modes() -> None:
    ascc = TrainConfig(substitution_defence="ascc")
    assert (ascc.substitution_set_size, ascc.substitution_min_cos_sim) == (50, 0.5)
    mine = TrainConfig(substitution_defence="ascc", substitution_set_size=20)
    assert (mine.substitution_set_size, mine.substitution_min_cos_sim) == (20, 0.5)
    safer = TrainConfig(substitution_defence="safer")
    assert (safer.substitution_set_size, safer.substitution_min_cos_sim) == (8, 0.7)
    with pytest.raises(ValueError, match="per-sample"):
        TrainConfig(mode="dp", substitution_defence="ascc")
