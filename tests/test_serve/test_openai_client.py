"""The official OpenAI client against a live ``guard serve`` proxying a scripted upstream."""

from __future__ import annotations

import httpx
import openai
import pytest
from serving import BENIGN, HARMFUL_TAIL, ServeFactory

from guard.serve.testing import ScriptedUpstream


def _client(url: str, **options: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, **options)


def _streamed(client: openai.OpenAI, question: str, **options: object) -> tuple[str, list]:
    chunks = list(client.chat.completions.create(
        model="tour-guide", messages=[{"role": "user", "content": question}], stream=True,
        **options))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def test_a_benign_streamed_reply_arrives_whole_in_checked_segments(
        serve: ServeFactory, upstream: tuple[ScriptedUpstream, str]) -> None:
    stub, upstream_url = upstream
    with serve(upstream=upstream_url) as url:
        text, chunks = _streamed(_client(url), "when does the museum open?")
    assert text == BENIGN
    contents = [c.choices[0].delta.content for c in chunks if c.choices and
                c.choices[0].delta.content]
    # released at sentence ends, not word by word as the upstream sent it
    assert contents == ["The museum opens at nine. ", "Tickets are sold at the front desk. ",
                        "Enjoy your visit!"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert {c.model for c in chunks} == {"tour-guide"}
    assert len({c.id for c in chunks}) == 1
    assert stub.requests[-1]["stream"] is True


def test_a_harmful_upstream_reply_never_reaches_the_client(
        serve: ServeFactory, upstream: tuple[ScriptedUpstream, str], harm_guard) -> None:
    _, upstream_url = upstream
    safe = harm_guard.policy.safe_message
    with serve(upstream=upstream_url) as url:
        client = _client(url)
        text, chunks = _streamed(client, "please insult me")
        whole = client.chat.completions.create(
            model="tour-guide", messages=[{"role": "user", "content": "insult me now"}])
    assert text == "Sure thing. " + safe
    for word in ("idiot", "worthless", "hates"):
        assert word not in text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert whole.choices[0].message.content == safe
    assert whole.choices[0].finish_reason == "content_filter"
    assert HARMFUL_TAIL not in whole.choices[0].message.content
    assert whole.usage is not None and whole.usage.completion_tokens > 0


def test_a_whole_reply_and_usage_in_the_last_chunk(
        serve: ServeFactory, upstream: tuple[ScriptedUpstream, str]) -> None:
    _, upstream_url = upstream
    with serve(upstream=upstream_url, max_tokens=64) as url:
        client = _client(url)
        whole = client.chat.completions.create(
            model="tour-guide", max_tokens=500,
            messages=[{"role": "system", "content": "You are a guide."},
                      {"role": "user", "content": [{"type": "text", "text": "hours?"}]}])
        _, chunks = _streamed(client, "hours?", stream_options={"include_usage": True})
    assert whole.choices[0].message.content == BENIGN
    assert whole.choices[0].finish_reason == "stop"
    assert whole.object == "chat.completion"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is None  # the scripted upstream reports no usage when streaming


def test_the_client_max_tokens_is_capped_by_the_server(
        serve: ServeFactory, upstream: tuple[ScriptedUpstream, str]) -> None:
    stub, upstream_url = upstream
    with serve(upstream=upstream_url, max_tokens=64, upstream_model="served-model") as url:
        _client(url).chat.completions.create(
            model="tour-guide", max_tokens=500, messages=[{"role": "user", "content": "hi"}])
    assert stub.requests[-1]["max_tokens"] == 64
    assert stub.requests[-1]["model"] == "served-model"
    assert "max_completion_tokens" not in stub.requests[-1]


def test_moderations_in_openai_format(serve: ServeFactory,
                                      upstream: tuple[ScriptedUpstream, str]) -> None:
    _, upstream_url = upstream
    with serve(upstream=upstream_url) as url:
        result = _client(url).moderations.create(
            input=["What a lovely day for a tour of the old town.",
                   "I will kill you, you filthy worthless pig."])
    benign, harmful = result.results
    assert not benign.flagged
    assert harmful.flagged
    assert harmful.categories.harassment or harmful.categories.violence
    assert not any(benign.categories.model_dump().values())
    assert 0.0 <= benign.category_scores.harassment < harmful.category_scores.harassment <= 1.0
    assert result.model == "harm-minilm"
    scores = harmful.category_scores.model_dump(by_alias=True)
    assert "self-harm/instructions" in scores and "hate/threatening" in scores


def test_models_lists_the_served_model(serve: ServeFactory,
                                       upstream: tuple[ScriptedUpstream, str]) -> None:
    _, upstream_url = upstream
    with serve(upstream=upstream_url, model_name="virtual-guide") as url:
        models = _client(url).models.list()
    assert [m.id for m in models.data] == ["virtual-guide"]


def test_api_keys_with_the_openai_client(serve: ServeFactory, tmp_path,
                                         upstream: tuple[ScriptedUpstream, str]) -> None:
    _, upstream_url = upstream
    keys = tmp_path / "keys.txt"
    keys.write_text("# team keys\nsk-tour-1\n\nsk-tour-2\n", encoding="utf-8")
    with serve(upstream=upstream_url, api_keys_file=keys) as url:
        good = openai.OpenAI(base_url=url + "/v1", api_key="sk-tour-2", max_retries=0)
        assert good.moderations.create(input="hello").results[0].flagged is False
        bad = openai.OpenAI(base_url=url + "/v1", api_key="sk-tour-3", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as refused:
            bad.moderations.create(input="hello")
        # health and metrics stay open for probes and scrapers
        assert httpx.get(url + "/healthz").status_code == 200
    assert refused.value.status_code == 401
    assert refused.value.code == "invalid_api_key"
