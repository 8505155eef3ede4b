"""``guard serve`` on the local tutor: persona, token limits, usage, and stopping on close."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import openai
import pytest
from serving import ServeFactory

from guard.models.tutor import Persona, TutorGenerator
from guard.output_guard import OutputGuard
from guard.serve.app import create_app
from guard.serve.backends import TutorBackend
from guard.serve.config import ServeConfig
from guard.serve.testing import running
from guard.serve.wire import ChatCompletionRequest


class _Allows:
    """Scores every text 0, so the tiny model's random words are released as written."""

    categories = ("toxicity",)

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return {"toxicity": np.zeros(len(texts))}


@pytest.fixture(scope="module")
def tutor(tiny_chat_dir: Path) -> TutorGenerator:
    return TutorGenerator.from_pretrained(tiny_chat_dir, device="cpu", max_new_tokens=16)


def _request(question: str, **fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest(model="m", messages=[{"role": "user", "content": question}],
                                 **fields)


def test_the_tutor_streams_its_reply_through_the_server(serve: ServeFactory,
                                                        tutor: TutorGenerator) -> None:
    question = "How do volcanoes form?"
    expected = tutor.generate([question])[0]  # greedy: the same reply each time
    with serve(backend=TutorBackend(tutor), guard=OutputGuard(_Allows()), max_tokens=16) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        chunks = list(client.chat.completions.create(
            model="tutor", messages=[{"role": "user", "content": question}], stream=True,
            stream_options={"include_usage": True}))
        whole = client.chat.completions.create(
            model="tutor", messages=[{"role": "user", "content": question}], max_tokens=4)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == expected
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 10
    assert whole.choices[0].finish_reason == "length"  # the client's 4 tokens, all used
    assert whole.usage is not None and whole.usage.completion_tokens == 4
    assert whole.choices[0].message.content == tutor.generate([question])[0][:len(
        whole.choices[0].message.content)]


def test_a_conversation_without_a_system_message_gets_the_persona(
        tutor: TutorGenerator) -> None:
    backend = TutorBackend(tutor)
    plain = backend.conversation(_request("hi"))
    assert plain[0] == {"role": "system", "content": Persona().system_prompt()}
    own = backend.conversation(ChatCompletionRequest(model="m", messages=[
        {"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}]))
    assert own == [{"role": "system", "content": "Be brief."},
                   {"role": "user", "content": "hi"}]


def test_closing_a_reply_stops_the_generation_and_frees_its_slot(
        tutor: TutorGenerator) -> None:
    long = TutorGenerator(tutor.model, tutor.tokenizer, max_new_tokens=2_000)
    backend = TutorBackend(long, max_concurrent=1)

    async def read_one_then_close() -> tuple[str, int | None, bool]:
        stream = backend.stream(_request("Tell me everything."), max_tokens=900)
        await stream.open()
        first = await anext(stream)
        await stream.aclose()
        second = backend.stream(_request("hi"), max_tokens=2)  # the slot is free again
        await asyncio.wait_for(second.open(), 10)
        await second.aclose()
        return first, stream.completion_tokens, backend._slots.locked()

    first, tokens, locked = asyncio.run(read_one_then_close())
    assert first and tokens is not None and tokens < 900
    assert not locked
    assert not any(t.name == "tutor-generate" and t.is_alive() for t in threading.enumerate())


@pytest.mark.slow
def test_the_embedded_tutor_behind_guard_serve() -> None:
    """The real default: ``ServeConfig()`` loads SmolLM2 and the harm-minilm guard."""
    with running(create_app(ServeConfig(max_tokens=48))) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        chunks = list(client.chat.completions.create(
            model="tutor", stream=True,
            messages=[{"role": "user", "content": "How do volcanoes form?"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert any(word in text.lower() for word in ("magma", "lava", "erupt", "volcan")), text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
