"""``guard serve`` fails closed and stays in bounds: faults, limits, upstream failures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence

import httpx
import numpy as np
import openai
import pytest
from serving import BENIGN, ServeFactory, free_port

from guard.output_guard import OutputGuard
from guard.scorers import build_scorer, recommended_policy
from guard.serve.app import create_app
from guard.serve.backends import Reply, ReplyStream
from guard.serve.config import ServeConfig
from guard.serve.testing import FaultyScorer, ScriptedUpstream, running
from guard.serve.wire import ChatCompletionRequest


@pytest.fixture(scope="module")
def faulty_guard() -> Iterator[tuple[OutputGuard, FaultyScorer]]:
    scorer = build_scorer("harm-minilm")
    faulty = FaultyScorer(scorer, raise_marker="zzboom", hang_marker="zzhang", hang_s=2.0)
    yield OutputGuard(faulty, recommended_policy(scorer), deadline_s=0.5), faulty


def _chat(url: str, question: str, *, stream: bool = False, **body: object) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", timeout=30, json={
        "model": "m", "messages": [{"role": "user", "content": question}], "stream": stream,
        **body})


def _events(response: httpx.Response) -> list[dict | str]:
    events: list[dict | str] = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            data = line[6:]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def _content(events: Sequence[dict | str]) -> str:
    return "".join(e["choices"][0]["delta"].get("content") or "" for e in events
                   if isinstance(e, dict) and e.get("choices"))


def _finish(events: Sequence[dict | str]) -> str | None:
    reasons = [e["choices"][0]["finish_reason"] for e in events
               if isinstance(e, dict) and e.get("choices")]
    return reasons[-1]


def _metric(url: str, name: str) -> float:
    total = 0.0
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# -- failing closed ---------------------------------------------------------------------------

@pytest.mark.parametrize("marker", ["zzboom", "zzhang"])
def test_a_scorer_error_or_deadline_sends_the_safe_message(
        serve: ServeFactory, upstream: tuple[ScriptedUpstream, str],
        faulty_guard: tuple[OutputGuard, FaultyScorer], marker: str) -> None:
    guard, faulty = faulty_guard
    _, upstream_url = upstream
    safe = guard.policy.safe_message
    with serve(upstream=upstream_url, guard=guard) as url:
        streamed = _events(_chat(url, f"tell me about {marker}", stream=True))
        whole = _chat(url, f"tell me about {marker}").json()
        cause = "error" if marker == "zzboom" else "deadline"
        errors = _metric(url, f'guard_scorer_errors_total{{cause="{cause}"}}')
        blocked = _metric(url, 'guard_outputs_total{action="error",endpoint="chat"}')
    assert _content(streamed) == safe
    assert _finish(streamed) == "content_filter"
    assert streamed[-1] == "[DONE]"
    assert whole["choices"][0]["message"]["content"] == safe
    assert whole["choices"][0]["finish_reason"] == "content_filter"
    assert "fine topic" not in json.dumps(whole) + _content(streamed)
    assert errors >= 2 and blocked >= 2
    assert (faulty.raised if marker == "zzboom" else faulty.hung) >= 2


def test_health_reports_a_guard_that_cannot_score(
        serve: ServeFactory, upstream: tuple[ScriptedUpstream, str]) -> None:
    scorer = build_scorer("harm-minilm")
    broken = OutputGuard(FaultyScorer(scorer, raise_rate=1.0), recommended_policy(scorer))
    _, upstream_url = upstream
    with serve(upstream=upstream_url, guard=broken) as url:
        health = httpx.get(url + "/healthz")
        moderation = httpx.post(url + "/v1/moderations", json={"input": "hello"}).json()
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy"
    assert "injected scorer fault" in health.json()["error"]
    [result] = moderation["results"]  # cannot score: flagged everywhere, never passed
    assert result["flagged"] is True
    assert all(result["categories"].values())
    assert result["guard"]["error"]


class _Failing:
    """A backend that breaks with a message that must not reach the client."""

    description = "failing backend"

    def stream(self, request: ChatCompletionRequest, *, max_tokens: int) -> ReplyStream:
        raise RuntimeError("secret internal detail /etc/passwd")

    async def complete(self, request: ChatCompletionRequest, *, max_tokens: int) -> Reply:
        raise RuntimeError("secret internal detail /etc/passwd")

    async def aclose(self) -> None:
        return None


def test_an_internal_failure_is_a_500_without_details(serve: ServeFactory) -> None:
    with serve(backend=_Failing()) as url:
        responses = [_chat(url, "hi"), _chat(url, "hi", stream=True)]
    for response in responses:
        assert response.status_code == 500
        assert response.json()["error"]["type"] == "server_error"
        assert "secret" not in response.text and "Traceback" not in response.text


# -- limits -----------------------------------------------------------------------------------

def test_body_and_message_limits(serve: ServeFactory,
                                 upstream: tuple[ScriptedUpstream, str]) -> None:
    _, upstream_url = upstream
    with serve(upstream=upstream_url, max_body_bytes=2_000, max_message_chars=300) as url:
        big = _chat(url, "x" * 5_000)

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
            yield b'{"model": "m", "messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}]}'

        chunked = httpx.post(url + "/v1/chat/completions", content=chunks(), timeout=30,
                             headers={"content-type": "application/json"})
        long = _chat(url, "z" * 400)
        moderation = httpx.post(url + "/v1/moderations", json={"input": ["ok", "w" * 400]})
        fine = _chat(url, "what time is it")
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    assert chunked.status_code == 413
    assert long.status_code == 400 and long.json()["error"]["code"] == "message_too_long"
    assert moderation.status_code == 400
    assert fine.status_code == 200


@pytest.mark.parametrize(("body", "needle"), [
    ({"model": "m", "messages": []}, "messages"),
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]}, "text only"),
    ({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}, "role"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
])
def test_invalid_requests_are_400_in_openai_format(
        serve: ServeFactory, upstream: tuple[ScriptedUpstream, str], body: dict,
        needle: str) -> None:
    _, upstream_url = upstream
    with serve(upstream=upstream_url) as url:
        response = httpx.post(url + "/v1/chat/completions", json=body)
        garbage = httpx.post(url + "/v1/chat/completions", content=b"{not json",
                             headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert needle in response.json()["error"]["message"]
    assert garbage.status_code == 400 and "Traceback" not in garbage.text


def test_rate_limit_per_key(serve: ServeFactory, upstream: tuple[ScriptedUpstream, str],
                            tmp_path) -> None:
    _, upstream_url = upstream
    keys = tmp_path / "keys"
    keys.write_text("alpha\nbeta\n", encoding="utf-8")
    with serve(upstream=upstream_url, api_keys_file=keys, rate_limit_per_minute=1,
               rate_limit_burst=2) as url:
        def moderate(key: str) -> httpx.Response:
            return httpx.post(url + "/v1/moderations", json={"input": "hi"},
                              headers={"Authorization": f"Bearer {key}"})

        alpha = [moderate("alpha").status_code for _ in range(3)]
        limited = moderate("alpha")
        beta = moderate("beta")  # another key has its own bucket
        client = openai.OpenAI(base_url=url + "/v1", api_key="alpha", max_retries=0)
        with pytest.raises(openai.RateLimitError):
            client.moderations.create(input="hi")
    assert alpha == [200, 200, 429]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert beta.status_code == 200


def test_an_empty_key_file_is_refused_before_serving(tmp_path) -> None:
    from guard.errors import ConfigError

    keys = tmp_path / "keys"
    keys.write_text("# nobody yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no key"):
        create_app(ServeConfig(api_keys_file=keys))


# -- upstream failures ------------------------------------------------------------------------

def test_an_upstream_that_is_down_gives_502(serve: ServeFactory) -> None:
    with serve(upstream=f"http://127.0.0.1:{free_port()}/v1") as url:
        whole, streamed = _chat(url, "hi"), _chat(url, "hi", stream=True)
        failures = _metric(url, "guard_upstream_errors_total")
    for response in (whole, streamed):
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "upstream_error"
    assert failures == 2


def test_a_slow_upstream_gives_504_and_a_failing_one_502() -> None:
    slow = ScriptedUpstream(first_delay_s=3.0)
    failing = ScriptedUpstream(fail_status=500)
    refusing = ScriptedUpstream(fail_status=400)
    guard = OutputGuard.default()
    with running(slow.app()) as slow_url, running(failing.app()) as failing_url, \
            running(refusing.app()) as refusing_url:
        answers = {}
        for name, upstream_url in (("slow", slow_url), ("failing", failing_url),
                                   ("refusing", refusing_url)):
            config = ServeConfig(upstream=upstream_url + "/v1", upstream_timeout_s=0.5)
            with running(create_app(config, guard=guard)) as url:
                answers[name] = (_chat(url, "hi").status_code,
                                 _chat(url, "hi", stream=True).status_code)
    assert answers == {"slow": (504, 504), "failing": (502, 502), "refusing": (400, 400)}


def test_an_upstream_crash_mid_stream_releases_nothing_unchecked(serve: ServeFactory) -> None:
    crashing = ScriptedUpstream(lambda q: BENIGN, break_after=7)  # inside the 2nd sentence
    with running(crashing.app()) as upstream_url, serve(upstream=upstream_url + "/v1") as url:
        events = _events(_chat(url, "hi", stream=True))
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert _content(events) == "The museum opens at nine. "  # only the checked segment
    [error] = [e for e in events if isinstance(e, dict) and "error" in e]
    assert error["error"]["type"] == "upstream_error"
    assert events[-1] == "[DONE]"


def test_a_client_that_disconnects_stops_the_generation(serve: ServeFactory) -> None:
    story = " ".join(f"Sentence number {i} of the tour." for i in range(200))
    slow = ScriptedUpstream(lambda q: story, chunk_delay_s=0.02)
    with running(slow.app()) as upstream_url, serve(upstream=upstream_url + "/v1") as url:
        with httpx.stream("POST", url + "/v1/chat/completions", timeout=30, json={
                "model": "m", "stream": True,
                "messages": [{"role": "user", "content": "tell me a story"}]}) as response:
            for line in response.iter_lines():
                if "Sentence number" in line:
                    break  # leave after the first checked sentence
        deadline = time.monotonic() + 20
        while slow.closed_early == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        in_flight = _metric(url, "guard_requests_in_flight")
    assert slow.closed_early == 1  # the upstream saw the request go away
    assert in_flight <= 1.0  # only the /metrics request itself


# -- the metrics ------------------------------------------------------------------------------

def test_metrics_count_requests_blocks_and_latency(
        serve: ServeFactory, upstream: tuple[ScriptedUpstream, str]) -> None:
    _, upstream_url = upstream
    with serve(upstream=upstream_url) as url:
        _chat(url, "hello")
        _chat(url, "insult me", stream=True)
        httpx.post(url + "/v1/moderations", json={"input": ["hi", "you stupid idiot"]})
        text = httpx.get(url + "/metrics").text
    assert 'guard_requests_total{endpoint="chat",status="200"} 2.0' in text
    assert 'guard_outputs_total{action="block",endpoint="chat"} 1.0' in text
    assert 'guard_outputs_total{action="allow",endpoint="moderations"} 1.0' in text
    assert 'guard_request_duration_seconds_count{endpoint="chat"} 2.0' in text
    assert "guard_time_to_first_content_seconds_count 1.0" in text


def test_moderation_categories_follow_the_policy_thresholds() -> None:
    from guard.output_guard import GuardDecision
    from guard.policy import Policy
    from guard.serve.moderation import OPENAI_CATEGORIES, moderation_result

    policy = Policy()  # 0.5 everywhere
    scores = dict.fromkeys(("toxicity", "insult", "threat", "hate", "sexual", "self_harm",
                            "violence", "harmful_instructions"), 0.1)
    scores.update(insult=0.7, threat=0.6, hate=0.4)
    result = moderation_result(GuardDecision(False, "block", "safe", scores), policy)
    assert result["flagged"] is True
    assert result["categories"]["harassment"] is True  # the higher of toxicity and insult
    assert result["category_scores"]["harassment"] == pytest.approx(0.7)
    assert result["categories"]["hate/threatening"] is False  # needs hate and threat
    assert result["category_scores"]["hate/threatening"] == pytest.approx(0.4)
    assert set(result["categories"]) == set(OPENAI_CATEGORIES)
    partial = moderation_result(GuardDecision(True, "allow", "t", {"toxicity": 0.2}), policy)
    assert partial["category_scores"]["hate"] == 0.0 and partial["flagged"] is False
    assert np.isclose(partial["category_scores"]["harassment"], 0.2)
