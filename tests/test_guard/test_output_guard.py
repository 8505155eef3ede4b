from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from guard import GuardCheckError, GuardedGenerator, OutputGuard, Policy
from guard.data import bundled_dir
from guard.errors import ConfigError
from guard.policy import CategoryRule
from guard.scorers.profanity import LinearProfanityScorer

IDIOT_FORMS = [
    "you are an idiot",
    "y0u ar3 an 1d10t",
    "you\u200b are\u200d an id\u200biot",
    "уоu аrе аn іdіоt",
    "you are an i d i o t",
    "YOU ARE AN IDIOOOOT",
]


@pytest.fixture(scope="module")
def default_guard() -> OutputGuard:
    return OutputGuard.default()


@pytest.mark.parametrize("text", IDIOT_FORMS)
def test_default_guard_blocks_insults_and_their_obfuscations(default_guard: OutputGuard,
                                                             text: str) -> None:
    [decision] = default_guard.check([text])
    assert not decision.allowed and decision.action == "block"
    assert decision.text == default_guard.policy.safe_message
    toxicity = default_guard.policy.rule("toxicity").threshold
    assert decision.scores["toxicity"] >= toxicity and decision.reasons


def test_default_guard_allows_ordinary_metaverse_answers(default_guard: OutputGuard) -> None:
    answers = list(json.loads((bundled_dir() / "responses.json").read_text()).values())
    answers += ["The Crystal Caverns open at 10 am; tickets are 5 credits.",
                "Your physics lab session starts in the Sky Library at 3pm."]
    decisions = default_guard.check(answers)
    assert [d.action for d in decisions] == ["allow"] * len(answers)
    assert [d.text for d in decisions] == answers


# Benign sentences with words a naive filter flags, found blocked when the guard was attacked
# from outside (#16). "Call me Ishmael; Moby Dick is a whale of a book." is still blocked.
TRIGGER_WORD_SENTENCES = [
    "The pussy willow blooms in early spring.",
    "Dick Whittington became Lord Mayor of London.",
    "Kill the boss to finish the level.",
    "Welcome to the hell level of the dungeon.",
]


def test_default_guard_allows_benign_sentences_with_trigger_words(default_guard: OutputGuard
                                                                  ) -> None:
    from eval_suites.toxicity import BENIGN_TRIGGER_WORDS

    assert [d.action for d in default_guard.check(TRIGGER_WORD_SENTENCES)] == ["allow"] * 4
    rows = [json.loads(line) for line in BENIGN_TRIGGER_WORDS.read_text("utf-8").splitlines()]
    flagged = [r["text"] for r, d in zip(rows, default_guard.check([r["text"] for r in rows]),
                                         strict=True) if not d.allowed]
    # held out from the scorer's build: 12 of 207 flagged when measured (41 before the build
    # had hard negatives)
    assert len(flagged) <= 0.1 * len(rows), flagged


class _Raising:
    categories = ("toxicity",)

    def score(self, texts: list[str]) -> dict[str, np.ndarray]:
        raise RuntimeError("model server down")


class _Hanging:
    categories = ("toxicity",)

    def __init__(self) -> None:
        self.release = threading.Event()

    def score(self, texts: list[str]) -> dict[str, np.ndarray]:
        self.release.wait(10)
        return {"toxicity": np.zeros(len(texts))}


class _NaN:
    categories = ("toxicity",)

    def score(self, texts: list[str]) -> dict[str, np.ndarray]:
        return {"toxicity": np.full(len(texts), np.nan)}


def test_scorer_error_fails_closed() -> None:
    decisions = OutputGuard(_Raising()).check(["hello", "have a nice day"])
    assert [d.action for d in decisions] == ["block", "block"]
    assert all("model server down" in (d.error or "") for d in decisions)
    assert decisions[0].text == Policy().safe_message


def test_hanging_scorer_is_cut_off_by_the_deadline() -> None:
    scorer = _Hanging()
    guard = OutputGuard(scorer, deadline_s=0.2)
    start = time.perf_counter()
    [decision] = guard.check(["hello"])
    elapsed = time.perf_counter() - start
    scorer.release.set()
    guard.close()
    assert decision.action == "block" and "longer than 0.2 s" in (decision.error or "")
    assert elapsed < 5  # it did not wait for the scorer's 10 s


def test_nan_scores_fail_closed() -> None:
    [decision] = OutputGuard(_NaN()).check(["hello"])
    assert decision.action == "block" and "non-finite" in (decision.error or "")


def test_oversized_and_non_string_inputs_fail_closed(default_guard: OutputGuard) -> None:
    guard = OutputGuard(LinearProfanityScorer(), max_chars=100)
    too_long, not_text, fine = guard.check(["x" * 101, 42, "hello"])  # type: ignore[list-item]
    assert too_long.action == "block" and "max_chars" in (too_long.error or "")
    assert not_text.action == "block" and "int" in (not_text.error or "")
    assert fine.action == "allow"
    [bad_unicode] = default_guard.check(["you are an \ud800idiot"])
    assert bad_unicode.action == "block"  # lone surrogates are stripped, then scored


def test_fail_open_and_raise_are_explicit() -> None:
    with pytest.warns(UserWarning, match="lets text through"):
        guard = OutputGuard(_Raising(), on_error="allow")
    with pytest.warns(UserWarning, match="failed open"):
        [decision] = guard.check(["hello"])
    assert decision.allowed and decision.text == "hello" and decision.error
    with pytest.raises(GuardCheckError, match="model server down"):
        OutputGuard(_Raising(), on_error="raise").check(["hello"])
    with pytest.raises(ConfigError):
        OutputGuard(_Raising(), on_error="ignore")  # type: ignore[arg-type]


def test_redaction_masks_the_original_words() -> None:
    # a lexical scorer blames single words; the learned default finds them by occlusion
    guard = OutputGuard(LinearProfanityScorer(),
                        Policy(default=CategoryRule(threshold=0.5, action="redact"),
                               mask="[masked]"))
    text = "Welcome to Neon Harbor, you stupid 1d10t! Enjoy the tour."
    [decision] = guard.check([text])
    assert decision.allowed and decision.action == "redact"
    assert decision.text == "Welcome to Neon Harbor, you [masked] [masked]! Enjoy the tour."
    [spaced] = guard.check(["ok you i d i o t, bye"])
    assert spaced.text == "ok you [masked], bye"


def test_the_default_guard_redacts_by_occlusion() -> None:
    from guard.scorers import build_scorer, recommended_policy

    scorer = build_scorer("harm-minilm", device="cpu")
    policy = Policy(categories={c: CategoryRule(threshold=rule.threshold, action="redact")
                                for c, rule in recommended_policy(scorer).categories.items()},
                    mask="[masked]")
    guard = OutputGuard(scorer, policy)
    text = "Welcome to Neon Harbor, you stupid 1d10t! Enjoy the tour."
    [decision] = guard.check([text])
    assert decision.allowed and decision.action == "redact"
    assert decision.text.startswith("Welcome to Neon Harbor, you ")
    assert decision.text.endswith("! Enjoy the tour.") and "[masked]" in decision.text
    [again] = guard.check([decision.text.replace("[masked]", "")])
    assert again.action == "allow"  # what is left passes
    [nothing_to_blame] = guard.check(["you are " * 40 + "an idiot"])  # too many words to try
    assert nothing_to_blame.action == "redact" and not nothing_to_blame.allowed


def test_policy_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('safe_message = "nope"\n[default]\nthreshold = 0.99\n'
                    '[categories.toxicity]\nthreshold = 0.3\naction = "redact"\n')
    policy = Policy.from_toml(path)
    assert policy.rule("toxicity") == CategoryRule(threshold=0.3, action="redact")
    assert policy.rule("threat").threshold == 0.99 and policy.safe_message == "nope"
    path.write_text("[default]\nthreshhold = 0.5\n")
    with pytest.raises(ConfigError, match=r"default\.threshhold"):
        Policy.from_toml(path)


def test_concurrent_callers_get_their_own_decisions(default_guard: OutputGuard) -> None:
    def call(k: int) -> tuple[int, str, str]:
        text = f"you are an idiot #{k}" if k % 3 == 0 else f"The tour {k} starts at noon."
        [decision] = default_guard.check([text])
        return k, text, decision.text

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(call, range(800)))
    assert len(results) == 800
    for k, text, shown in results:
        expected = default_guard.policy.safe_message if k % 3 == 0 else text
        assert shown == expected, k


@pytest.mark.parametrize("backend", ["hf", "detoxify", "harm-minilm"])
def test_concurrent_callers_with_transformer_scorers(backend: str, tiny_classifier_dir: Path,
                                                     detoxify_checkpoint: Path) -> None:
    from guard.scorers import build_scorer

    options = {"hf": {"model": str(tiny_classifier_dir)},
               "detoxify": {"checkpoint": str(detoxify_checkpoint)},
               "harm-minilm": {"cache_size": 16}}[backend]
    guard = OutputGuard(build_scorer(backend, device="cpu", **options))
    texts = [f"message number {k} " + "word " * (k % 7) for k in range(64)]
    expected = [d.scores for d in guard.check(texts)]

    def call(k: int) -> tuple[int, dict[str, float], str | None]:
        [decision] = guard.check([texts[k]])
        return k, decision.scores, decision.error

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, list(range(64)) * 3))
    assert all(error is None for _, _, error in results)  # no tokenizer races
    for k, scores, _ in results:
        assert scores == pytest.approx(expected[k], abs=1e-5)


def test_wrap_checks_strings_lists_and_pipeline_outputs(default_guard: OutputGuard) -> None:
    safe = default_guard.policy.safe_message
    assert default_guard.wrap(lambda p: f"{p}, you idiot")("hi") == safe
    assert default_guard.wrap(lambda: ["fine", "you moron"])() == ["fine", safe]
    pipeline_output = [[{"generated_text": "hello there"}, {"generated_text": "shut up idiot"}]]
    guarded = default_guard.wrap(lambda: pipeline_output)()
    assert guarded == [[{"generated_text": "hello there"}, {"generated_text": safe}]]
    assert pipeline_output[0][1]["generated_text"] == "shut up idiot"  # caller's object intact


def test_guarded_generator(tiny_gpt2_dir: Path, default_guard: OutputGuard) -> None:
    from guard.models import HFGenerator

    generator = HFGenerator.from_pretrained(tiny_gpt2_dir, device="cpu", max_new_tokens=6)
    guarded = GuardedGenerator(generator, default_guard)
    prompts = ["Welcome to the Sky Library", "hi"]
    raw = generator.generate(prompts)
    assert guarded.generate(prompts) == [d.text for d in default_guard.check(raw)]


def test_stream_stops_at_a_blocked_sentence(default_guard: OutputGuard) -> None:
    closed = []

    def chunks() -> Iterator[str]:
        try:
            yield from ["Welcome to ", "Neon Harbor. ", "You are an ", "idiot. ", "More text."]
        finally:
            closed.append(True)

    out = list(default_guard.stream(chunks()))
    assert out == ["Welcome to Neon Harbor. ", default_guard.policy.safe_message]
    assert closed == [True]
    tokens = list(default_guard.stream(iter(["one two three ", "four five"]), tokens=2))
    assert tokens == ["one two ", "three four ", "five"]
