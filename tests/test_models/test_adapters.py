from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from guard.errors import ConfigError, ModelNotFoundError
from guard.models import HFClassifier, HFGenerator, Responder, resolve_model
from guard.types import Classifier, Generator


def test_classifier_probabilities_are_batch_and_order_invariant(tiny_classifier_dir: Path) -> None:
    clf = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu", batch_size=4)
    assert isinstance(clf, Classifier)
    texts = ["where is the moon museum", "refund my ticket now pls", "hi", "lag lag lag " * 20]
    probs = clf.predict_proba(texts)
    assert probs.shape == (4, len(clf.labels))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    one_by_one = np.vstack([clf.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(probs, one_by_one, atol=1e-5)  # dynamic padding is masked
    reversed_probs = clf.predict_proba(texts[::-1])[::-1]
    np.testing.assert_allclose(probs, reversed_probs, atol=1e-6)
    assert clf.predict_proba([]).shape == (0, len(clf.labels))
    assert clf.fingerprint is not None and len(clf.fingerprint) == 64


def test_classifier_pads_to_the_batch_not_to_512(tiny_classifier_dir: Path) -> None:
    clf = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
    batch = clf.encode(["short", "a slightly longer message here"])
    assert batch["input_ids"].shape[1] < 16


def test_missing_model_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"no model folder at '/nonexistent/model'"):
        HFClassifier.from_pretrained("/nonexistent/model")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match=r"has no config\.json"):
        HFClassifier.from_pretrained(tmp_path)
    with pytest.raises(ModelNotFoundError, match="is a file"):
        HFClassifier.from_pretrained(tmp_path / "weights.bin")


def test_hub_id_honours_offline_mode() -> None:
    source = resolve_model("some-org/not-cached-model")
    assert source.kind == "hub" and source.offline
    with pytest.raises(ModelNotFoundError, match=r"HF_HUB_OFFLINE=1.*local folder"):
        HFClassifier.from_pretrained("some-org/not-cached-model")


def test_cuda_request_without_cuda_is_a_config_error(tiny_classifier_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")  # the error only exists without a GPU
    with pytest.raises(ConfigError, match="CUDA is not available"):
        HFClassifier.from_pretrained(tiny_classifier_dir, device="cuda")


def test_generator_completes_prompts_deterministically(tiny_gpt2_dir: Path) -> None:
    gen = HFGenerator.from_pretrained(tiny_gpt2_dir, device="cpu", max_new_tokens=5,
                                      batch_size=2)
    assert isinstance(gen, Generator)
    prompts = ["Tell me about the Sky Library", "hi", "tickets for the moon tour please"]
    first = gen.generate(prompts)
    assert len(first) == 3 and all(isinstance(t, str) and t for t in first)
    assert gen.generate(prompts) == first
    # Left padding is masked: a prompt completes the same alone as in a padded batch.
    assert [gen.generate([p])[0] for p in prompts] == first


def test_generator_sampling_is_seeded(tiny_gpt2_dir: Path) -> None:
    a = HFGenerator.from_pretrained(tiny_gpt2_dir, device="cpu", do_sample=True, seed=3,
                                    max_new_tokens=8)
    b = HFGenerator.from_pretrained(tiny_gpt2_dir, device="cpu", do_sample=True, seed=3,
                                    max_new_tokens=8)
    assert a.generate(["hello there"] * 3) == b.generate(["hello there"] * 3)


def test_responder_answers_with_the_predicted_intent(tiny_classifier_dir: Path) -> None:
    clf = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
    responder = Responder.from_model_dir(clf, tiny_classifier_dir)
    responses = json.loads((tiny_classifier_dir / "responses.json").read_text())
    replies = responder.respond(["when does the aquarium open", "my headset keeps crashing"])
    predicted = clf.predict(["when does the aquarium open", "my headset keeps crashing"])
    assert [r.intent for r in replies] == predicted
    assert [r.answer for r in replies] == [responses[i] for i in predicted]
    assert isinstance(responder, Generator)
    cautious = Responder(clf, responses, min_confidence=1.0)
    assert {r.intent for r in cautious.respond(["anything at all"])} == {"out_of_scope"}


def test_responder_refuses_incomplete_answer_tables(tiny_classifier_dir: Path) -> None:
    clf = HFClassifier.from_pretrained(tiny_classifier_dir, device="cpu")
    with pytest.raises(ConfigError, match="no answer for intents"):
        Responder(clf, {"directions": "go north"})
