"""The OpenAI wire format ``guard serve`` speaks: requests in, responses, chunks and errors out.

Requests are validated models that keep fields they do not know (clients send many, such as
``user`` or ``seed``): a field the server does not act on is ignored, except those whose
silent neglect would change the answer (``n`` other than 1, non-text content), which are
refused with a 400.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FinishReason = Literal["stop", "length", "content_filter"]


class TextPart(BaseModel):
    """One part of a message's content; only text is served."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None

    @field_validator("type")
    @classmethod
    def _text_only(cls, value: str) -> str:
        if value not in ("text", "input_text"):
            raise ValueError(f"content parts of type {value!r} are not supported: this server "
                             "takes text only")
        return value


class ChatMessage(BaseModel):
    """One message of a conversation."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        """The message's text: its content, or its text parts joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content)


class StreamOptions(BaseModel):
    """``stream_options``: whether the last chunk reports token usage."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The body of ``POST /v1/chat/completions``."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=1, description="only one choice per request")
    stop: str | list[str] | None = None

    def conversation(self) -> list[dict[str, str]]:
        """The messages as ``{"role", "content"}`` dicts with plain-text content."""
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                for m in self.messages]

    def characters(self) -> int:
        """Characters in all messages."""
        return sum(len(m.text()) for m in self.messages)

    def token_limit(self, cap: int) -> int:
        """The client's token limit (``max_completion_tokens`` or ``max_tokens``), capped."""
        asked = self.max_completion_tokens or self.max_tokens
        return cap if asked is None else min(asked, cap)


class TextInput(BaseModel):
    """A text item of a moderation request's ``input``."""

    model_config = ConfigDict(extra="allow")

    type: Literal["text"]
    text: str


class ModerationRequest(BaseModel):
    """The body of ``POST /v1/moderations``."""

    model_config = ConfigDict(extra="allow")

    input: str | list[str] | list[TextInput]
    model: str | None = None

    def texts(self) -> list[str]:
        """The texts to moderate, in order."""
        if isinstance(self.input, str):
            return [self.input]
        return [item if isinstance(item, str) else item.text for item in self.input]


def new_id(prefix: str) -> str:
    """A fresh response id, such as ``chatcmpl-3f9c...``."""
    return f"{prefix}-{secrets.token_hex(12)}"


def now() -> int:
    """The ``created`` timestamp: Unix seconds."""
    return int(time.time())


def usage(prompt_tokens: int | None, completion_tokens: int | None) -> dict[str, int] | None:
    """OpenAI's ``usage`` object, or ``None`` when the counts are unknown."""
    if prompt_tokens is None or completion_tokens is None:
        return None
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def chat_completion(*, id: str, model: str, created: int, content: str,
                    finish_reason: FinishReason,
                    usage: dict[str, int] | None) -> dict[str, Any]:
    """A ``chat.completion`` object with one choice."""
    body: dict[str, Any] = {
        "id": id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason, "logprobs": None,
                     "message": {"role": "assistant", "content": content, "refusal": None}}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chat_chunk(*, id: str, model: str, created: int, delta: dict[str, str],
               finish_reason: FinishReason | None = None) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object with one choice."""
    return {"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None,
                         "finish_reason": finish_reason}]}


def usage_chunk(*, id: str, model: str, created: int,
                usage: dict[str, int] | None) -> dict[str, Any]:
    """The last chunk when the client asked for usage: no choices, the token counts."""
    return {"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [], "usage": usage}


ErrorType = Literal["invalid_request_error", "authentication_error", "rate_limit_error",
                    "upstream_error", "server_error"]


def error_body(message: str, *, type: ErrorType, code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: what the official clients read into their exceptions."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
