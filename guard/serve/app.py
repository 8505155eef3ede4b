"""The ``guard serve`` ASGI application: OpenAI's chat and moderation endpoints, guarded.

Every reply passes the output guard before a client sees any of it:

- a streamed reply (``"stream": true``) is released segment by segment, each segment only
  after it was checked together with the end of what came before
  (:meth:`~guard.output_guard.OutputGuard.astream`); a block ends the stream with the safe
  message and ``finish_reason: "content_filter"``, and the generation stops;
- a whole reply is checked at once; a blocked one is replaced by the safe message with
  ``finish_reason: "content_filter"``.

**Failing closed.** A scorer error, a check past its deadline, or a text the guard refuses
(too long) gives the safe message with ``finish_reason: "content_filter"``, never the
unchecked text (unless the server was started with ``fail_open``). An upstream that fails
before its reply starts gives a 502 (504 when it was too slow); one that fails during a
stream ends it with an error event (which OpenAI's clients raise) and nothing held back is
released. Any other failure is a 500 with a generic message: no stack trace leaves the
server. A client that disconnects mid-stream stops the generation.

Concurrent checks share scoring calls through a :class:`~guard.batching.MicroBatcher`
(``batching``, ``max_batch``, ``max_wait_ms``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.serve.backends import (
    ChatBackend,
    ReplyStream,
    TutorBackend,
    UpstreamBackend,
    UpstreamError,
)
from guard.serve.config import ServeConfig
from guard.serve.metrics import ServeMetrics
from guard.serve.moderation import moderation_result
from guard.serve.security import ApiKeys, RateLimiter
from guard.serve.wire import (
    ChatCompletionRequest,
    ErrorType,
    FinishReason,
    ModerationRequest,
    chat_chunk,
    chat_completion,
    error_body,
    new_id,
    now,
    usage,
    usage_chunk,
)

if TYPE_CHECKING:
    from guard.batching import MicroBatcher
    from guard.output_guard import AsyncGuardedStream, GuardDecision, OutputGuard

log = logging.getLogger("guard.serve")

#: Most texts in one moderation request.
MAX_MODERATION_INPUTS = 256
_HEALTH_PROBE = "Hello! Welcome to the museum tour."


class ApiError(Exception):
    """An error answered in OpenAI's format (``{"error": {...}}``) with its HTTP status."""

    def __init__(self, status: int, message: str, *, type: ErrorType,
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = error_body(message, type=type, code=code, param=param)
        self.headers = headers or {}
        super().__init__(message)


_ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/moderations": "moderations"}


def _cause(error: str) -> str:
    """The ``cause`` label of a failed check, from its decision's error."""
    if "DeadlineExceeded" in error:
        return "deadline"
    if "ScorerHung" in error:
        return "refused"  # too many calls past their deadline are still running
    if "max_chars" in error:
        return "too_long"
    return "error"


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


class _Gatekeeper:
    """ASGI middleware: body size limit, request metrics, and a JSON 500 for any failure."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: ServeMetrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = _ENDPOINTS.get(scope["path"], "other")
        started = time.perf_counter()
        status = 500
        response_started = False
        limit = self.max_body_bytes

        async def send_json(code: int, body: dict[str, Any]) -> None:
            nonlocal status, response_started
            status, response_started = code, True
            data = json.dumps(body).encode()
            await send({"type": "http.response.start", "status": code,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(data)).encode())]})
            await send({"type": "http.response.body", "body": data})

        too_large = error_body(f"the request body is larger than {limit} bytes",
                               type="invalid_request_error", code="request_too_large")
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_json(413, too_large)
            self._record(endpoint, status, started)
            return
        received = 0
        answered = False  # the 413 went out: whatever the app sends after it is dropped

        async def limited_receive() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request" and not answered:
                received += len(message.get("body", b""))
                if received > limit:
                    # answer here: the framework turns a failure to read the body into a 400
                    await send_json(413, too_large)
                    answered = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message: Message) -> None:
            nonlocal status, response_started
            if answered:
                return
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, limited_receive, watched_send)
        except Exception:
            if not answered:
                log.exception("request to %s failed", scope["path"])
            if not response_started:
                await send_json(500, error_body("the server failed to answer; nothing was "
                                                "released", type="server_error"))
        finally:
            self.metrics.in_flight.dec()
            self._record(endpoint, status, started)

    def _record(self, endpoint: str, status: int, started: float) -> None:
        self.metrics.requests.labels(endpoint, str(status)).inc()
        self.metrics.duration.labels(endpoint).observe(time.perf_counter() - started)


class _EventStream(StreamingResponse):
    """A server-sent event response that always closes its generator, even when cancelled."""

    body_iterator: Any

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()


class GuardServer:
    """The state behind the app: guard, batcher, backend, keys, limits, metrics.

    Args:
        config: The server's settings.
        guard: The output guard (default: ``OutputGuard.default`` with ``check_deadline_s``
            and ``fail_open`` from the config, built at startup).
        backend: The source of replies (default: from the config, built at startup).

    Raises:
        ConfigError: The API keys file cannot be read or holds no key.
    """

    def __init__(self, config: ServeConfig, *, guard: OutputGuard | None = None,
                 backend: ChatBackend | None = None) -> None:
        self.config = config
        self.guard: OutputGuard | None = guard
        self.backend: ChatBackend | None = backend
        self.keys = None if config.api_keys_file is None else ApiKeys.from_file(
            config.api_keys_file)
        self.limiter = None if config.rate_limit_per_minute is None else RateLimiter(
            config.rate_limit_per_minute, burst=config.rate_limit_burst)
        self.metrics = ServeMetrics()
        self._batcher: MicroBatcher | None = None
        self._owns_backend = backend is None
        self._probes = 0

    # -- lifecycle -----------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Load the guard and the backend, attach the batcher; undo it all at shutdown."""
        config = self.config
        if self.guard is None:
            from guard.output_guard import OutputGuard

            self.guard = await asyncio.to_thread(OutputGuard.default, on_error=config.on_error,
                                                 deadline_s=config.check_deadline_s,
                                                 max_abandoned=config.max_hung_checks)
        if config.batching and self.guard.batcher is None:
            self._batcher = self.guard.with_batcher(max_batch=config.max_batch,
                                                    max_wait_ms=config.max_wait_ms)
        if self.backend is None:
            if config.upstream is not None:
                self.backend = UpstreamBackend.from_config(config)
            else:
                self.backend = await asyncio.to_thread(TutorBackend.from_config, config)
        log.info("guard serve: replies from %s, guarded by %s", self.backend.description,
                 self.scorer_name)
        try:
            yield
        finally:
            if self._batcher is not None:
                await self._batcher.aclose()
            if self._owns_backend and self.backend is not None:
                await self.backend.aclose()

    @property
    def scorer_name(self) -> str:
        """The guard's scorer, by name."""
        scorer = getattr(self.guard, "scorer", None)
        return str(getattr(scorer, "name", None) or type(scorer).__name__)

    def _ready(self) -> tuple[OutputGuard, ChatBackend]:
        if self.guard is None or self.backend is None:
            raise ApiError(503, "the server is starting", type="server_error")
        return self.guard, self.backend

    # -- admission -----------------------------------------------------------------------

    async def admit(self, request: Request) -> str:
        """Authenticate the caller and take one request from its rate limit.

        Returns:
            The caller's identity (a hash of its key, or its address without keys).

        Raises:
            ApiError: 401 for a missing or wrong key, 429 past the rate limit.
        """
        caller = f"address:{request.client.host if request.client else 'unknown'}"
        if self.keys is not None:
            identity = self.keys.identify(request.headers.get("authorization"))
            if identity is None:
                raise ApiError(401, "missing or incorrect API key (send Authorization: Bearer "
                               "KEY)", type="authentication_error", code="invalid_api_key",
                               headers={"WWW-Authenticate": "Bearer"})
            caller = identity
        if self.limiter is not None:
            wait = self.limiter.take(caller)
            if wait > 0:
                raise ApiError(429, f"rate limit reached; retry in {wait:.1f} s",
                               type="rate_limit_error", code="rate_limit_exceeded",
                               headers={"Retry-After": str(max(1, math.ceil(wait)))})
        return caller

    # -- checking ------------------------------------------------------------------------

    async def check(self, texts: Sequence[str], *, endpoint: str) -> list[GuardDecision]:
        """The guard's decisions on ``texts``, counted in the metrics."""
        guard, _ = self._ready()
        decisions = await guard.acheck(list(texts))
        for decision in decisions:
            self._count(endpoint, decision)
        return decisions

    def _count(self, endpoint: str, decision: GuardDecision | None) -> None:
        if decision is not None and decision.error is not None:
            self.metrics.scorer_errors.labels(_cause(decision.error)).inc()
            action = "error" if not decision.allowed else "allow"
        else:
            action = "allow" if decision is None else decision.action
        self.metrics.outputs.labels(endpoint, action).inc()

    # -- endpoints -----------------------------------------------------------------------

    async def chat_completions(self, body: ChatCompletionRequest) -> Response:
        """``POST /v1/chat/completions``: a guarded reply, streamed or whole."""
        guard, backend = self._ready()
        if body.characters() > self.config.max_message_chars:
            raise ApiError(400, f"the messages hold {body.characters()} characters, more than "
                           f"the server's limit of {self.config.max_message_chars}",
                           type="invalid_request_error", code="message_too_long",
                           param="messages")
        meta: dict[str, Any] = {"id": new_id("chatcmpl"),
                                "model": body.model or self.config.model_name,
                                "created": now()}
        limit = body.token_limit(self.config.max_tokens)
        if body.stream:
            reply = backend.stream(body, max_tokens=limit)
            try:
                await reply.open()
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await reply.aclose()
                raise
            guarded = guard.astream(reply, tokens=self.config.segment_tokens,
                                    lookbehind_chars=self.config.lookbehind_chars)
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return _EventStream(self._events(guarded, reply, meta, include_usage),
                                media_type="text/event-stream",
                                headers={"Cache-Control": "no-cache",
                                         "X-Accel-Buffering": "no"})
        whole = await backend.complete(body, max_tokens=limit)
        [decision] = await self.check([whole.text], endpoint="chat")
        finish: FinishReason = whole.finish_reason if decision.allowed else "content_filter"
        return JSONResponse(chat_completion(
            **meta, content=decision.text, finish_reason=finish,
            usage=usage(whole.prompt_tokens, whole.completion_tokens)))

    async def _events(self, guarded: AsyncGuardedStream, reply: ReplyStream,
                      meta: dict[str, Any], include_usage: bool) -> AsyncIterator[str]:
        """The server-sent events of a guarded stream (see the module docstring)."""
        started = time.perf_counter()
        first = True
        try:
            yield _sse(chat_chunk(**meta, delta={"role": "assistant", "content": ""}))
            finish: FinishReason = "stop"
            async for text in guarded:
                if first:
                    first = False
                    self.metrics.first_content.observe(time.perf_counter() - started)
                if text:
                    yield _sse(chat_chunk(**meta, delta={"content": text}))
                if guarded.stopped is not None:  # that was the safe message
                    finish = "content_filter"
                    break
            else:
                finish = reply.finish_reason
            self._count("chat", guarded.stopped)
            yield _sse(chat_chunk(**meta, delta={}, finish_reason=finish))
            if include_usage:
                yield _sse(usage_chunk(**meta, usage=usage(reply.prompt_tokens,
                                                           reply.completion_tokens)))
        except UpstreamError as exc:
            self.metrics.upstream_errors.labels(str(exc.status)).inc()
            yield _sse(error_body(str(exc), type="upstream_error", code=str(exc.status)))
        except Exception:
            log.exception("a streamed reply failed")
            yield _sse(error_body("the server failed during the reply; nothing unchecked was "
                                  "released", type="server_error"))
        finally:
            with anyio.CancelScope(shield=True):
                await guarded.aclose()  # closes the reply too: the generation stops
                await reply.aclose()
        yield _sse("[DONE]")

    async def moderations(self, body: ModerationRequest) -> dict[str, Any]:
        """``POST /v1/moderations``: the guard's verdict on each input, in OpenAI's format."""
        guard, _ = self._ready()
        texts = body.texts()
        if not texts or len(texts) > MAX_MODERATION_INPUTS:
            raise ApiError(400, f"give between 1 and {MAX_MODERATION_INPUTS} inputs, got "
                           f"{len(texts)}", type="invalid_request_error", param="input")
        longest = max(len(t) for t in texts)
        if longest > self.config.max_message_chars:
            raise ApiError(400, f"an input holds {longest} characters, more than the server's "
                           f"limit of {self.config.max_message_chars}",
                           type="invalid_request_error", code="message_too_long",
                           param="input")
        decisions = await self.check(texts, endpoint="moderations")
        return {"id": new_id("modr"), "model": body.model or self.scorer_name,
                "results": [moderation_result(d, guard.policy) for d in decisions]}

    async def health(self) -> JSONResponse:
        """``GET /healthz``: 200 when the guard scores a probe text, else 503."""
        guard, backend = self._ready()
        self._probes += 1  # a new text each time: a scorer's cache cannot answer for it
        [decision] = await guard.acheck([f"{_HEALTH_PROBE} Tour number {self._probes}."])
        healthy = decision.error is None
        return JSONResponse(
            {"status": "ok" if healthy else "unhealthy", "guard": self.scorer_name,
             "backend": backend.description, "batching": self._batcher is not None,
             "error": decision.error},
            status_code=200 if healthy else 503)

    def models(self) -> dict[str, Any]:
        """``GET /v1/models``: the one model served."""
        return {"object": "list", "data": [{"id": self.config.model_name, "object": "model",
                                            "created": 0, "owned_by": "metaverse-guard"}]}


#: The environment variable :func:`app_from_environment` reads its settings from (JSON).
CONFIG_ENVIRONMENT = "GUARD_SERVE_CONFIG"


def app_from_environment() -> FastAPI:
    """The app for the settings in ``$GUARD_SERVE_CONFIG`` (a ``ServeConfig`` as JSON).

    The factory that worker processes import (``guard serve --workers N`` sets the variable;
    ``uvicorn --factory guard.serve.app:app_from_environment`` works the same way).

    Raises:
        ConfigError: The variable holds an invalid config (unset: the defaults).
    """
    import os

    from guard.config import build_model

    given = os.environ.get(CONFIG_ENVIRONMENT)
    try:
        values = {} if not given else json.loads(given)
    except ValueError as exc:
        from guard.errors import ConfigError

        raise ConfigError(f"${CONFIG_ENVIRONMENT} is not JSON: {exc}") from None
    return create_app(build_model(ServeConfig, values, what=f"${CONFIG_ENVIRONMENT}"))


def create_app(config: ServeConfig | None = None, *, guard: OutputGuard | None = None,
               backend: ChatBackend | None = None) -> FastAPI:
    """The ``guard serve`` application; run it with uvicorn (``guard serve`` does).

    Args:
        config: The server's settings (default: ``ServeConfig()``, the embedded tutor).
        guard: The output guard to use instead of ``OutputGuard.default``; a batcher is
            attached to it at startup when ``config.batching`` and it has none.
        backend: The source of replies instead of the config's (left open at shutdown).

    Returns:
        The FastAPI app; its state is ``app.state.server`` (a :class:`GuardServer`).

    Raises:
        ConfigError: The API keys file cannot be read or holds no key.
    """
    from guard import __version__

    server = GuardServer(config or ServeConfig(), guard=guard, backend=backend)
    app = FastAPI(title="metaverse-guard serve", version=__version__,
                  lifespan=server.lifespan,
                  description="OpenAI-compatible chat completions and moderations; every "
                              "output passes the output guard.")
    app.state.server = server
    admitted = [Depends(server.admit)]

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(UpstreamError)
    async def _upstream_error(request: Request, exc: UpstreamError) -> JSONResponse:
        server.metrics.upstream_errors.labels(str(exc.status)).inc()
        return JSONResponse(error_body(str(exc), type="upstream_error", code=str(exc.status)),
                            status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'][1:]) or 'body'}: {error['msg']}"
            for error in exc.errors())
        return JSONResponse(error_body(f"invalid request: {problems}"[:1000],
                                       type="invalid_request_error", code="invalid_request"),
                            status_code=400)

    @app.post("/v1/chat/completions", dependencies=admitted)
    async def chat_completions(body: ChatCompletionRequest) -> Response:
        return await server.chat_completions(body)

    @app.post("/v1/moderations", dependencies=admitted)
    async def moderations(body: ModerationRequest) -> dict[str, Any]:
        return await server.moderations(body)

    @app.get("/v1/models", dependencies=admitted)
    async def models() -> dict[str, Any]:
        return server.models()

    @app.get("/healthz")
    async def health() -> JSONResponse:
        return await server.health()

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(server.metrics.render(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    app.add_middleware(_Gatekeeper, max_body_bytes=server.config.max_body_bytes,
                       metrics=server.metrics)
    return app
