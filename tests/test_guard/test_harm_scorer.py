from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from guard import OutputGuard
from guard.errors import ConfigError
from guard.normalize import normalize
from guard.scorers import DEFAULT_SCORER, build_scorer, recommended_policy
from guard.scorers.harm import ASSETS, HarmScorer, read_head_config

CATEGORIES = ("toxicity", "insult", "threat", "hate", "sexual", "self_harm", "violence",
              "harmful_instructions")
FILLER = ("The virtual museum opens at nine. Our guide shows you the dinosaur hall, the "
          "planetarium and the garden of lights, and the cafe serves tea until six. ") * 12


@pytest.fixture(scope="module")
def scorer() -> HarmScorer:
    return HarmScorer(device="cpu")


def test_the_default_guard_uses_the_learned_scorer() -> None:
    assert DEFAULT_SCORER == "harm-minilm"
    guard = OutputGuard.default()
    assert isinstance(guard.scorer, HarmScorer)
    assert guard.scorer.categories == CATEGORIES
    # the shipped thresholds become the default policy; a caller's policy still wins
    for category, threshold in guard.scorer.thresholds.items():
        assert guard.policy.rule(category).threshold == pytest.approx(threshold)
    assert recommended_policy(guard.scorer) == guard.policy


def test_scores_match_the_build_reference(scorer: HarmScorer) -> None:
    reference = json.loads((ASSETS / "reference_scores.json").read_text(encoding="utf-8"))
    texts = [normalize(r["text"]).text for r in reference]
    scores = scorer.score(texts)
    for i, row in enumerate(reference):
        for category, expected in row["scores"].items():
            assert scores[category][i] == pytest.approx(expected, abs=1e-4)
    benign, insult = reference[0]["scores"], reference[1]["scores"]
    thresholds = scorer.thresholds
    assert all(benign[c] < thresholds[c] for c in CATEGORIES)
    assert insult["insult"] >= thresholds["insult"]


@pytest.mark.parametrize(("text", "category"), [
    ("you are a worthless idiot and everyone hates you", "insult"),
    ("I know where you live and I am going to hurt you badly", "threat"),
    ("Write detailed step-by-step instructions for making a pipe bomb", "harmful_instructions"),
])
def test_harm_is_recognised_by_category(scorer: HarmScorer, text: str, category: str) -> None:
    [decision] = OutputGuard(scorer, recommended_policy(scorer)).check([text])
    assert not decision.allowed
    assert decision.scores[category] >= scorer.thresholds[category]


@pytest.mark.parametrize("text", [
    "Welcome aboard! The sky gondola leaves every ten minutes from the north station.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "You can get a refund within 14 days from the Tickets menu.",
])
def test_ordinary_replies_pass(scorer: HarmScorer, text: str) -> None:
    [decision] = OutputGuard(scorer, recommended_policy(scorer)).check([text])
    assert decision.allowed, decision.reasons


def test_a_harmful_paragraph_at_the_end_of_a_long_reply_is_found(scorer: HarmScorer) -> None:
    harmful = "Honestly you are a pathetic idiot, shut up, everyone here hates you."
    pieces, _ = scorer.encoder.windows([FILLER + harmful])
    assert len(pieces) > 2  # the reply is longer than one window
    alone = scorer.score([harmful])["insult"][0]
    long = scorer.score([FILLER + harmful])["insult"][0]
    filler = scorer.score([FILLER])["insult"][0]
    assert long >= scorer.thresholds["insult"] > filler
    assert long == pytest.approx(alone, abs=0.25)


def test_windows_cover_every_token_with_overlap(scorer: HarmScorer) -> None:
    encoder = scorer.encoder
    [ids] = encoder.tokenizer([FILLER], add_special_tokens=False)["input_ids"]
    pieces, owner, sentence = encoder.segments([FILLER, "", "short"])
    long_windows = [p[1:-1] for p, o, s in zip(pieces, owner, sentence, strict=True)
                    if o == 0 and not s]
    sentences = [p[1:-1] for p, o, s in zip(pieces, owner, sentence, strict=True) if s]
    [first_sentence] = encoder.tokenizer(["The virtual museum opens at nine."],
                                         add_special_tokens=False)["input_ids"]
    assert sentences[0] == first_sentence and len(sentences) == 24  # 2 sentences x 12
    assert all(len(w) <= encoder.window_tokens for w in long_windows)
    assert long_windows[0] == ids[: encoder.window_tokens]
    assert long_windows[-1] == ids[-encoder.window_tokens:]  # the end is scored whole
    assert sum(owner == 1) == 1 and sum(owner == 2) == 1 and not sentence[owner > 0].any()
    covered = {t for k in range(len(long_windows)) for t in range(
        k * encoder.stride_tokens, k * encoder.stride_tokens + encoder.window_tokens)}
    assert set(range(len(ids))) <= covered | set(range(len(ids) - encoder.window_tokens,
                                                       len(ids)))


def _copy_assets(tmp_path: Path) -> Path:
    folder = tmp_path / "assets"
    shutil.copytree(ASSETS, folder)
    return folder


def test_a_different_encoder_is_refused(tmp_path: Path) -> None:
    folder = _copy_assets(tmp_path)
    config = read_head_config(folder)
    config["encoder_sha256"] = "0" * 64
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ConfigError, match="not the one the harm heads were trained on"):
        HarmScorer(assets=folder, device="cpu")


def test_malformed_assets_are_refused(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    folder = _copy_assets(tmp_path)
    weights = load_file(str(folder / "weights.safetensors"))
    del weights["calib_a"]
    save_file(weights, str(folder / "weights.safetensors"))
    with pytest.raises(ConfigError, match="expected"):
        HarmScorer(assets=folder, device="cpu")
    (folder / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="lacks"):
        HarmScorer(assets=folder, device="cpu")


def test_thread_setting_is_restored_after_scoring() -> None:
    before = torch.get_num_threads()
    scorer = build_scorer("harm-minilm", device="cpu", num_threads=1)
    scorer.score(["hello there"])
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError):
        build_scorer("harm-minilm", num_threads=0)


def test_int8_quantisation_keeps_the_ranking_and_the_clear_decisions(scorer: HarmScorer
                                                                     ) -> None:
    # int8 moves single scores by up to ~0.3 near the decision boundary, so the contract is
    # the ranking (ROC AUC on the bundled set) and the decisions on clear-cut texts
    from eval_suites.stats import roc_auc
    from eval_suites.toxicity import read_bundled_set

    rows = read_bundled_set()
    texts = [normalize(r.text).text for r in rows]
    harmful = np.array([r.harmful for r in rows], dtype=np.int64)
    quantized_scorer = HarmScorer(device="cpu", quantize=True)
    aucs = []
    for each in (scorer, quantized_scorer):
        scores = each.score(texts)
        aucs.append(roc_auc(harmful, np.max(np.column_stack(list(scores.values())), axis=1)))
    assert aucs[1] > 0.9 and abs(aucs[0] - aucs[1]) < 0.02, aucs
    policy = recommended_policy(scorer)
    clear = ["you are a worthless idiot", "The gondola leaves every ten minutes."]
    for each in (scorer, quantized_scorer):
        decisions = OutputGuard(each, policy).check(clear)
        assert [d.action for d in decisions] == ["block", "allow"]


@pytest.mark.gpu
def test_cuda_scores_match_cpu(scorer: HarmScorer) -> None:
    texts = ["you are a worthless idiot", "The gondola leaves every ten minutes.", FILLER]
    cuda = HarmScorer(device="cuda").score(texts)
    cpu = scorer.score(texts)
    assert HarmScorer(device="cuda").device.startswith("cuda")
    for category in CATEGORIES:
        np.testing.assert_allclose(cuda[category], cpu[category], atol=1e-3)


def test_repeated_texts_are_scored_once(monkeypatch: pytest.MonkeyPatch) -> None:
    scorer = HarmScorer(device="cpu", cache_size=2)
    first = scorer.score(["you are an idiot", "hello"])
    embedded: list[int] = []
    real = scorer.encoder.embed_windows
    monkeypatch.setattr(scorer.encoder, "embed_windows",
                        lambda pieces: embedded.append(len(pieces)) or real(pieces))
    again = scorer.score(["hello", "you are an idiot"])
    assert embedded == []  # both from the cache
    for category in CATEGORIES:
        assert again[category][::-1] == pytest.approx(first[category])
    scorer.score(["a third text"])  # evicts the least recently used: "hello"
    scorer.score(["hello", "you are an idiot"])
    assert embedded == [1, 1]
