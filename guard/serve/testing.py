"""Loopback helpers for tests, demos and benchmarks: a scripted upstream and a server runner.

:class:`ScriptedUpstream` is an OpenAI-compatible chat server whose replies are a function of
the last user message, streamed word by word, with optional delays and faults, so the proxy
path of ``guard serve`` can be exercised without a model. :func:`running` starts any ASGI
app with uvicorn on a free loopback port in a background thread::

    upstream = ScriptedUpstream(lambda question: "You are an idiot.")
    with running(upstream.app()) as upstream_url:
        config = ServeConfig(upstream=upstream_url + "/v1")
        with running(create_app(config)) as url:
            ...  # point an OpenAI client at url + "/v1"
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from guard.errors import GuardError

if TYPE_CHECKING:
    from guard.scorers.base import Scorer, Scores


class InjectedFaultError(RuntimeError):
    """The fault :class:`FaultyScorer` raises."""


class FaultyScorer:
    """A scorer that fails on purpose: raises, or hangs past any deadline, then scores.

    Faults come at random (``raise_rate``, ``hang_rate``, seeded) or on demand: a batch
    holding a text that contains ``raise_marker`` or ``hang_marker`` raises or hangs.

    Args:
        inner: The scorer that scores when no fault is injected.
        raise_rate: Share of calls that raise :class:`InjectedFaultError`.
        hang_rate: Share of calls that sleep ``hang_s`` before scoring.
        hang_s: How long a hung call sleeps.
        raise_marker: Text that makes a call raise.
        hang_marker: Text that makes a call hang.
        seed: Seed of the random faults.

    Attributes:
        calls, raised, hung: Counts of calls and injected faults.
    """

    def __init__(self, inner: Scorer, *, raise_rate: float = 0.0, hang_rate: float = 0.0,
                 hang_s: float = 5.0, raise_marker: str | None = None,
                 hang_marker: str | None = None, seed: int = 0) -> None:
        self.inner = inner
        self.raise_rate = raise_rate
        self.hang_rate = hang_rate
        self.hang_s = hang_s
        self.raise_marker = raise_marker
        self.hang_marker = hang_marker
        self.name = f"faulty-{getattr(inner, 'name', type(inner).__name__)}"
        self.calls = self.raised = self.hung = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    @property
    def categories(self) -> tuple[str, ...]:
        """The inner scorer's categories."""
        return tuple(self.inner.categories)

    def score(self, texts: Sequence[str]) -> Scores:
        """The inner scorer's scores, unless a fault is injected into this call."""
        with self._lock:
            self.calls += 1
            draw = self._random.random()
            fail = draw < self.raise_rate or _holds(texts, self.raise_marker)
            hang = not fail and (draw < self.raise_rate + self.hang_rate
                                 or _holds(texts, self.hang_marker))
            self.raised += fail
            self.hung += hang
        if fail:
            raise InjectedFaultError("injected scorer fault")
        if hang:
            time.sleep(self.hang_s)
        return self.inner.score(texts)


def _holds(texts: Sequence[str], marker: str | None) -> bool:
    return marker is not None and any(marker in text for text in texts)


def echo(question: str) -> str:
    """The default scripted reply: a friendly answer that repeats the question."""
    return f"Thanks for asking! You asked: {question.strip()} Let me know if I can help more."


@dataclass
class ScriptedUpstream:
    """An OpenAI-compatible ``/v1/chat/completions`` whose replies come from a function.

    Args:
        reply: Last user message -> reply text.
        first_delay_s: Wait before answering (before the response headers).
        chunk_delay_s: Wait between two streamed words.
        fail_status: Answer every request with this HTTP status and an error body.
        break_after: Drop the connection after this many streamed words (a crash mid-stream).

    Attributes:
        requests: The bodies received, in order.
        closed_early: Streams whose client went away before the reply was finished.
    """

    reply: Callable[[str], str] = echo
    first_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    fail_status: int | None = None
    break_after: int | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    closed_early: int = 0

    def app(self) -> Any:
        """The ASGI app (Starlette)."""
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, StreamingResponse
        from starlette.routing import Route

        async def chat(request: Any) -> Any:
            body = await request.json()
            self.requests.append(body)
            if self.first_delay_s:
                await asyncio.sleep(self.first_delay_s)
            if self.fail_status is not None:
                return JSONResponse({"error": {"message": "scripted failure",
                                               "type": "server_error"}},
                                    status_code=self.fail_status)
            content = next((m.get("content") or "" for m in reversed(body["messages"])
                            if m.get("role") == "user"), "")
            question = content if isinstance(content, str) else "".join(
                part.get("text") or "" for part in content)
            text = self.reply(question)
            words = text.split(" ")
            base = {"id": "chatcmpl-stub", "created": int(time.time()),
                    "model": body.get("model", "stub")}
            if not body.get("stream"):
                return JSONResponse({**base, "object": "chat.completion", "choices": [
                    {"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
                    "usage": {"prompt_tokens": len(question.split()),
                              "completion_tokens": len(words),
                              "total_tokens": len(question.split()) + len(words)}})
            return StreamingResponse(self._events(base, words), media_type="text/event-stream")

        return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])

    async def _events(self, base: dict[str, Any], words: list[str]) -> AsyncIterator[str]:
        finished = False
        try:
            for i, word in enumerate(words):
                if self.break_after is not None and i >= self.break_after:
                    raise ConnectionAbortedError("scripted crash mid-stream")
                piece = word if i == 0 else " " + word
                chunk = {**base, "object": "chat.completion.chunk", "choices": [
                    {"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                yield f"data: {json.dumps(chunk)}\n\n"
                if self.chunk_delay_s:
                    await asyncio.sleep(self.chunk_delay_s)
            last = {**base, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                self.closed_early += 1


@contextmanager
def running(app: Any, *, host: str = "127.0.0.1", startup_timeout_s: float = 120.0,
            log_level: str = "warning") -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of ``host`` until the block ends.

    Yields:
        The server's base URL, such as ``http://127.0.0.1:54321``.

    Raises:
        GuardError: The server did not start (its lifespan failed, or it took too long).
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="guard-serve-loopback", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(10)
            sock.close()
            raise GuardError("the loopback server did not start (see its log above)")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
