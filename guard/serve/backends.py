"""Where ``guard serve``'s replies come from: the local tutor, or an upstream server.

A backend turns a chat request into a :class:`ReplyStream` (text pieces as they are written)
or a :class:`Reply` (the whole text). The server guards both; a backend never decides what
the client sees. Closing a stream stops its generation: the tutor stops at its next token,
an upstream's connection is closed (vLLM, TGI and llama.cpp's server abort the request).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from guard.errors import GuardError
from guard.serve.wire import ChatCompletionRequest, FinishReason

if TYPE_CHECKING:
    import httpx

    from guard.models.tutor import TokenStream, TutorGenerator
    from guard.serve.config import ServeConfig


class UpstreamError(GuardError):
    """The upstream failed: unreachable or broken (502), too slow (504), or refused (4xx).

    Attributes:
        status: The HTTP status to answer the client with.
    """

    def __init__(self, message: str, *, status: int = 502) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Reply:
    """A whole reply, not yet guarded."""

    text: str
    finish_reason: FinishReason = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ReplyStream(AsyncIterator[str]):
    """A reply's text pieces as they are written; ``aclose()`` stops the generation.

    :meth:`open` starts the generation (and, for an upstream, waits for its response
    headers, so that a failure to start is an HTTP error, not a broken stream). After the last
    piece, :attr:`finish_reason` and the token counts say how it ended.
    """

    finish_reason: FinishReason = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    async def open(self) -> None:
        """Start the generation."""

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Stop the generation; safe to call more than once."""


class ChatBackend(Protocol):
    """What the server needs from a source of replies."""

    @property
    def description(self) -> str:
        """What the replies come from, for ``/healthz`` and the log."""
        ...

    def stream(self, request: ChatCompletionRequest, *, max_tokens: int) -> ReplyStream:
        """The reply to ``request``, as it is written (not started until ``open()``)."""
        ...

    async def complete(self, request: ChatCompletionRequest, *, max_tokens: int) -> Reply:
        """The whole reply to ``request``."""
        ...

    async def aclose(self) -> None:
        """Release what the backend holds."""
        ...


# -- the local tutor -------------------------------------------------------------------------


class TutorBackend:
    """Replies written by a local chat model (:class:`~guard.models.tutor.TutorGenerator`).

    Generation runs in the tutor's own thread per reply; at most ``max_concurrent`` replies are
    written at once and later requests wait for a slot. A conversation without a system
    message gets the tutor's persona. ``temperature`` and ``top_p`` are the tutor's own
    (greedy by default); ``max_tokens`` is honoured.

    Args:
        tutor: The chat model.
        max_concurrent: Replies written at once.
    """

    def __init__(self, tutor: TutorGenerator, *, max_concurrent: int = 2) -> None:
        self.tutor = tutor
        self._slots = asyncio.Semaphore(max_concurrent)
        # reading a reply blocks on its queue: one thread per reply being written, plus one
        self._readers = ThreadPoolExecutor(max_concurrent + 1, thread_name_prefix="tutor-read")

    @classmethod
    def from_config(cls, config: ServeConfig) -> TutorBackend:
        """Load ``config.model`` (the embedded tutor by default) as the config says."""
        from guard.models.tutor import TutorGenerator

        tutor = TutorGenerator.from_pretrained(config.model, device=config.device,
                                               progress=False, max_new_tokens=config.max_tokens,
                                               trust_remote_code=config.trust_remote_code)
        return cls(tutor, max_concurrent=config.max_concurrent_generations)

    @property
    def description(self) -> str:
        """The model's source."""
        source = getattr(self.tutor, "source", None)
        return f"local model {getattr(source, 'location', None) or type(self.tutor).__name__}"

    def conversation(self, request: ChatCompletionRequest) -> list[dict[str, str]]:
        """The request's messages, after the persona when they bring no system message."""
        messages = request.conversation()
        if not any(m["role"] == "system" for m in messages):
            messages = [{"role": "system", "content": self.tutor.persona.system_prompt()},
                        *messages]
        return messages

    def stream(self, request: ChatCompletionRequest, *, max_tokens: int) -> ReplyStream:
        """The reply to ``request`` as the tutor writes it."""
        return _TutorStream(self, self.conversation(request), max_tokens)

    async def complete(self, request: ChatCompletionRequest, *, max_tokens: int) -> Reply:
        """The whole reply: the stream, collected."""
        stream = self.stream(request, max_tokens=max_tokens)
        try:
            await stream.open()
            text = "".join([piece async for piece in stream])
        finally:
            await stream.aclose()
        return Reply(text.strip(), stream.finish_reason, stream.prompt_tokens,
                     stream.completion_tokens)

    async def aclose(self) -> None:
        """Stop the reader threads (replies in progress end first)."""
        self._readers.shutdown(wait=False, cancel_futures=True)


_END = object()


class _TutorStream(ReplyStream):
    def __init__(self, backend: TutorBackend, messages: list[dict[str, str]],
                 max_tokens: int) -> None:
        self._backend = backend
        self._messages = messages
        self._max_tokens = max_tokens
        self._tokens: TokenStream | None = None
        self._pieces: Any = None
        self._slot = False
        self._closed = False

    async def open(self) -> None:
        await self._backend._slots.acquire()
        self._slot = True
        if self._closed:  # closed while waiting for the slot
            self._release()
            return
        loop = asyncio.get_running_loop()
        self._tokens = await loop.run_in_executor(
            self._backend._readers,
            lambda: self._backend.tutor.stream(self._messages,
                                               max_new_tokens=self._max_tokens))
        self.prompt_tokens = self._tokens.prompt_tokens
        self._pieces = iter(self._tokens)

    async def __anext__(self) -> str:
        if self._pieces is None or self._closed:
            raise StopAsyncIteration
        loop = asyncio.get_running_loop()
        piece = await loop.run_in_executor(self._backend._readers, next, self._pieces, _END)
        if piece is _END:
            self._finish()
            raise StopAsyncIteration
        return str(piece)

    def _finish(self) -> None:
        if self._tokens is not None:
            self.completion_tokens = self._tokens.completion_tokens
            if self.completion_tokens >= self._max_tokens:
                self.finish_reason = "length"

    def _release(self) -> None:
        if self._slot:
            self._slot = False
            self._backend._slots.release()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        tokens = self._tokens
        if tokens is None:
            self._release()
            return
        tokens.stop()  # before any await: a cancelled close still stops the generation
        try:
            await asyncio.get_running_loop().run_in_executor(None, tokens.close)
            self._finish()
        finally:
            self._release()


# -- an upstream OpenAI-compatible server -----------------------------------------------------


class UpstreamBackend:
    """Replies from an OpenAI-compatible server (vLLM, TGI, llama.cpp's server, ...).

    The client's request is forwarded (its model name replaced by ``model`` when given, its
    ``max_tokens`` capped); the reply comes back unguarded and the server guards it.
    Failures map to :class:`UpstreamError`: unreachable, a broken reply or a 5xx is a 502, a
    timeout a 504, a 4xx passes through with the upstream's message.

    Args:
        base_url: The upstream's base URL, up to and including ``/v1``.
        api_key: Bearer token for the upstream.
        model: Model name to ask for instead of the client's.
        connect_timeout_s: Longest wait to connect.
        timeout_s: Longest wait for a response, or between two pieces of a stream.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, model: str | None = None,
                 connect_timeout_s: float = 5.0, timeout_s: float = 60.0) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))

    @classmethod
    def from_config(cls, config: ServeConfig) -> UpstreamBackend:
        """The backend for ``config.upstream``."""
        from guard.errors import ConfigError

        if config.upstream is None:
            raise ConfigError("no upstream URL configured")
        key = None
        if config.upstream_api_key_file is not None:
            try:
                key = config.upstream_api_key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read the upstream API key file "
                                  f"{config.upstream_api_key_file}: {exc.strerror}") from None
        return cls(config.upstream, api_key=key or None, model=config.upstream_model,
                   connect_timeout_s=config.upstream_connect_timeout_s,
                   timeout_s=config.upstream_timeout_s)

    @property
    def description(self) -> str:
        """The upstream's URL."""
        return f"upstream {self.base_url}"

    def payload(self, request: ChatCompletionRequest, *, max_tokens: int,
                stream: bool) -> dict[str, Any]:
        """The body to send upstream."""
        body = request.model_dump(mode="json", exclude_none=True, exclude_unset=True)
        body.pop("max_completion_tokens", None)
        body.update(max_tokens=max_tokens, stream=stream,
                    messages=[m.model_dump(mode="json", exclude_none=True)
                              for m in request.messages])
        if not stream:
            body.pop("stream_options", None)
        if self.model is not None:
            body["model"] = self.model
        return body

    @property
    def url(self) -> str:
        """The upstream's chat completions endpoint."""
        return f"{self.base_url}/chat/completions"

    def stream(self, request: ChatCompletionRequest, *, max_tokens: int) -> ReplyStream:
        """The upstream's streamed reply to ``request``."""
        return _UpstreamStream(self, self.payload(request, max_tokens=max_tokens, stream=True))

    async def complete(self, request: ChatCompletionRequest, *, max_tokens: int) -> Reply:
        """The upstream's whole reply to ``request``."""
        payload = self.payload(request, max_tokens=max_tokens, stream=False)
        with _upstream_errors():
            response = await self._client.post(self.url, json=payload)
        await _raise_for_status(response)
        try:
            body = response.json()
            choice = body["choices"][0]
            text = choice["message"].get("content") or ""
            usage = body.get("usage") or {}
            if not isinstance(text, str):
                raise TypeError(f"content is {type(text).__name__}")
        except (ValueError, LookupError, TypeError, AttributeError) as exc:
            raise UpstreamError(f"the upstream's reply is not a chat completion ({exc!r})"
                                ) from None
        return Reply(text, _finish_reason(choice.get("finish_reason")),
                     usage.get("prompt_tokens"), usage.get("completion_tokens"))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()


@contextlib.contextmanager
def _upstream_errors() -> Iterator[None]:
    """Turn httpx's transport errors into :class:`UpstreamError`."""
    import httpx

    try:
        yield
    except httpx.ConnectTimeout:
        raise UpstreamError("could not connect to the upstream in time") from None
    except httpx.TimeoutException:
        raise UpstreamError("the upstream did not answer in time", status=504) from None
    except (httpx.ConnectError, httpx.RemoteProtocolError):
        raise UpstreamError("the upstream is unreachable or closed the connection") from None
    except httpx.HTTPError as exc:
        raise UpstreamError(f"the upstream request failed ({type(exc).__name__})") from None


async def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    await response.aread()
    try:
        message = str(response.json()["error"]["message"])[:500]
    except (ValueError, LookupError, TypeError):
        message = response.text[:200]
    if 400 <= response.status_code < 500 and response.status_code not in (401, 403):
        raise UpstreamError(f"the upstream refused the request: {message}",
                            status=response.status_code)
    raise UpstreamError(f"the upstream answered {response.status_code}: {message}")


def _finish_reason(value: Any) -> FinishReason:
    if value in ("length", "content_filter"):
        return value  # type: ignore[no-any-return]
    return "stop"


class _UpstreamStream(ReplyStream):
    def __init__(self, backend: UpstreamBackend, payload: dict[str, Any]) -> None:
        self._backend = backend
        self._payload = payload
        self._response: httpx.Response | None = None
        self._lines: AsyncIterator[str] | None = None
        self._closed = False

    async def open(self) -> None:
        client = self._backend._client
        with _upstream_errors():
            self._response = await client.send(
                client.build_request("POST", self._backend.url, json=self._payload),
                stream=True)
        try:
            await _raise_for_status(self._response)
        except BaseException:
            await self.aclose()
            raise
        self._lines = self._response.aiter_lines()

    async def __anext__(self) -> str:
        if self._lines is None or self._closed:
            raise StopAsyncIteration
        while True:
            with _upstream_errors():
                line = await anext(self._lines, None)
            if line is None:
                raise UpstreamError("the upstream's stream ended without [DONE]")
            if not line.startswith("data:"):
                continue  # blank separators, comments, event names
            data = line[5:].strip()
            if data == "[DONE]":
                self._lines = None
                raise StopAsyncIteration
            text = self._piece(data)
            if text:
                return text

    def _piece(self, data: str) -> str:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise UpstreamError("the upstream sent a stream event that is not JSON") from None
        if not isinstance(chunk, dict):
            raise UpstreamError("the upstream sent a stream event that is not an object")
        if "error" in chunk:
            raise UpstreamError("the upstream's stream failed: "
                                f"{str(chunk['error'])[:300]}")
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.prompt_tokens = usage.get("prompt_tokens")
            self.completion_tokens = usage.get("completion_tokens")
        choices = chunk.get("choices") or []
        if not choices:
            return ""
        try:
            choice = choices[0]
            if choice.get("finish_reason"):
                self.finish_reason = _finish_reason(choice["finish_reason"])
            content = (choice.get("delta") or {}).get("content") or ""
        except (AttributeError, TypeError):
            raise UpstreamError("the upstream sent a malformed stream chunk") from None
        if not isinstance(content, str):
            raise UpstreamError("the upstream sent non-text content")
        return content

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._lines = None
        if self._response is not None:
            await self._response.aclose()
