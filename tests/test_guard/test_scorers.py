from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from guard.errors import ConfigError, ModelNotFoundError, UnknownNameError
from guard.scorers import SCORERS, CompositeScorer, ScoreError, build_scorer, check_scores
from guard.scorers.detoxify import DetoxifyScorer
from guard.scorers.profanity import LinearProfanityScorer

ASSETS = Path(__file__).parents[2] / "guard" / "scorers" / "assets" / "profanity_linear"


def _options(name: str, tiny_classifier_dir: Path, detoxify_checkpoint: Path) -> dict[str, Any]:
    return {
        "profanity-linear": {},
        "harm-minilm": {"device": "cpu"},
        "detoxify": {"checkpoint": str(detoxify_checkpoint), "device": "cpu"},
        "hf": {"model": str(tiny_classifier_dir), "device": "cpu"},
    }[name]


@pytest.mark.parametrize("name", SCORERS.names())
def test_every_scorer_honours_the_contract(name: str, tiny_classifier_dir: Path,
                                           detoxify_checkpoint: Path) -> None:
    scorer = build_scorer(name, **_options(name, tiny_classifier_dir, detoxify_checkpoint))
    texts = ["", "you are an idiot", "The Sky Library opens at nine.", "word " * 200_000]
    scores = check_scores(scorer.score(texts), len(texts), scorer.categories)  # raises if not
    assert set(scores) == set(scorer.categories) and scorer.categories
    for values in scores.values():
        assert values.shape == (4,) and ((values >= 0) & (values <= 1)).all()
    empty = scorer.score([])
    assert all(len(v) == 0 for v in empty.values())
    from guard import OutputGuard

    # invalid Unicode (lone surrogates) and control characters reach the scorer cleaned
    decisions = OutputGuard(scorer).check(["bad \ud800 text", "\x00\x07 ok", "idiot\udfff"])
    assert len(decisions) == 3 and all(d.error is None for d in decisions)
    assert all(0 <= s <= 1 for d in decisions for s in d.scores.values())


def test_linear_scorer_matches_scikit_learn_reference() -> None:
    reference = json.loads((ASSETS / "reference_scores.json").read_text())
    scores = LinearProfanityScorer().score(reference["texts"])["toxicity"]
    assert scores == pytest.approx(reference["scores"], abs=1e-12)
    assert scores[0] > 0.99 and scores[1] < 0.1  # "you are an idiot" / "have a nice day"


def test_detoxify_backend_matches_detoxify(detoxify_checkpoint: Path) -> None:
    from detoxify import Detoxify

    config_dir = str(detoxify_checkpoint.parent / "hf")
    texts = ["you are an idiot", "hello", "a much longer message about the museum tour " * 3]
    ours = DetoxifyScorer(str(detoxify_checkpoint), huggingface_config_path=config_dir,
                          device="cpu", batch_size=2).score(texts)
    theirs = Detoxify(checkpoint=str(detoxify_checkpoint), device="cpu",
                      huggingface_config_path=config_dir).predict(texts)
    assert set(ours) == set(theirs) == {"toxicity", "severe_toxicity", "obscene", "threat",
                                        "insult", "identity_attack"}
    for category, values in theirs.items():
        np.testing.assert_allclose(ours[category], values, atol=1e-5)


class _Payload:
    """Stands for code a tampered checkpoint would run when unpickled."""


def test_detoxify_refuses_to_unpickle_objects(tmp_path: Path, tiny_bert_dir: Path) -> None:
    path = tmp_path / "evil.ckpt"
    torch.save({"config": {}, "state_dict": {}, "extra": _Payload()}, path)
    with pytest.raises(ConfigError, match="not unpickled"):
        DetoxifyScorer(str(path), huggingface_config_path=str(tiny_bert_dir))


def test_detoxify_published_checkpoint_offline_says_what_to_do(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match=r"not cached.*HF_HUB_OFFLINE=1.*download"):
        DetoxifyScorer("original")
    with pytest.raises(ModelNotFoundError, match="no detoxify checkpoint"):
        DetoxifyScorer(str(tmp_path / "missing.ckpt"))


def test_hf_scorer_maps_labels_to_categories(tiny_classifier_dir: Path) -> None:
    scorer = build_scorer("hf", model=str(tiny_classifier_dir), device="cpu",
                          categories={"report_harassment": "harassment"})
    assert scorer.categories == ("harassment",)
    values = scorer.score(["someone keeps following me and insulting me"])["harassment"]
    assert 0 <= values[0] <= 1
    with pytest.raises(ConfigError, match="not labels of"):
        build_scorer("hf", model=str(tiny_classifier_dir), categories={"nope": "x"})


class _Fixed:
    def __init__(self, categories: dict[str, float]) -> None:
        self._values = categories

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self._values)

    def score(self, texts: list[str]) -> dict[str, np.ndarray]:
        return {c: np.full(len(texts), v) for c, v in self._values.items()}


def test_composite_takes_the_maximum_per_category() -> None:
    combined = CompositeScorer([_Fixed({"toxicity": 0.2, "threat": 0.9}),
                                _Fixed({"toxicity": 0.7})])
    scores = combined.score(["a", "b"])
    assert combined.categories == ("toxicity", "threat")
    assert scores["toxicity"].tolist() == [0.7, 0.7] and scores["threat"].tolist() == [0.9, 0.9]


def test_check_scores_rejects_bad_values() -> None:
    with pytest.raises(ScoreError, match="non-finite"):
        check_scores({"t": np.array([np.nan])}, 1, ["t"])
    with pytest.raises(ScoreError, match="outside"):
        check_scores({"t": np.array([1.5])}, 1, ["t"])
    with pytest.raises(ScoreError, match="shape"):
        check_scores({"t": np.array([0.1, 0.2])}, 1, ["t"])
    with pytest.raises(ScoreError, match="no scores"):
        check_scores({}, 1, ["t"])


def test_unknown_scorer_suggests() -> None:
    with pytest.raises(UnknownNameError, match="Did you mean 'detoxify'"):
        build_scorer("detoxfy")


@pytest.mark.gpu
def test_hf_scorer_runs_on_cuda(tiny_classifier_dir: Path) -> None:
    scorer = build_scorer("hf", model=str(tiny_classifier_dir), device="cuda")
    assert scorer.device.startswith("cuda")
    cpu = build_scorer("hf", model=str(tiny_classifier_dir), device="cpu")
    texts = ["you are an idiot", "when does the museum open"] * 20
    for category, values in cpu.score(texts).items():
        np.testing.assert_allclose(scorer.score(texts)[category], values, atol=1e-4)
