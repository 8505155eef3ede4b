"""The settings of ``guard serve``: one validated model, built from the command line or code.

Every field is a ``guard serve`` flag (``--max-batch`` for ``max_batch``), with its
description as the help.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ServeConfig(BaseModel):
    """Everything ``guard serve`` needs to know; unknown keys are refused.

    ``ServeConfig()`` serves the embedded tutor on ``127.0.0.1:8000``, guarded by the
    embedded ``harm-minilm`` scorer with its thresholds, failing closed. See each field's
    description (``ServeConfig.model_fields``, or ``guard serve --help``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="interface to listen on; 127.0.0.1 is this "
                      "machine only, 0.0.0.0 every interface")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port)")
    model: str = Field("tutor", description="the local reply model when there is no "
                       "--upstream: 'tutor' (the embedded SmolLM2 tutor) or a chat model "
                       "folder or hub id")
    model_name: str = Field("metaverse-guard-tutor", description="model name the API "
                            "reports in /v1/models and responses when the client names none")
    upstream: str | None = Field(None, description="base URL of an OpenAI-compatible server "
                                 "whose replies to guard instead of a local model (vLLM, TGI, "
                                 "llama.cpp's server), e.g. http://127.0.0.1:8001/v1")
    upstream_api_key_file: Path | None = Field(None, description="file holding the bearer "
                                               "token to send to the upstream")
    upstream_model: str | None = Field(None, description="model name to ask the upstream for; "
                                       "none: the client's")
    upstream_connect_timeout_s: float = Field(5.0, gt=0, allow_inf_nan=False,
                                              description="seconds to connect to the upstream "
                                              "before answering 502")
    upstream_timeout_s: float = Field(60.0, gt=0, allow_inf_nan=False, description="seconds "
                                      "to wait for the upstream's reply, or between two "
                                      "streamed pieces of it, before answering 504 (or ending "
                                      "the stream with an error event)")
    api_keys_file: Path | None = Field(None, description="file of accepted API keys (bearer "
                                       "tokens), one per line, '#' starts a comment; without "
                                       "it the API is open to anyone who can reach it")
    rate_limit_per_minute: float | None = Field(None, gt=0, allow_inf_nan=False,
                                                description="requests per minute per API key "
                                                "(per client address without keys); then 429")
    rate_limit_burst: int = Field(10, ge=1, description="requests a key may make at once "
                                  "before the per-minute rate applies")
    max_body_bytes: int = Field(1_000_000, ge=1, description="largest request body in bytes; "
                                "then 413")
    max_message_chars: int = Field(32_000, ge=1, description="most characters in all "
                                   "messages of a chat request, or in one moderation input; "
                                   "then 400")
    max_tokens: int = Field(256, ge=1, description="most tokens in a reply; a client's "
                            "max_tokens is capped at this")
    max_concurrent_generations: int = Field(2, ge=1, description="replies the local model "
                                            "writes at once; later requests wait their turn")
    check_deadline_s: float = Field(2.0, gt=0, allow_inf_nan=False, description="longest one "
                                    "scoring call may take; past it the reply ends with the "
                                    "safe message and finish_reason content_filter")
    max_hung_checks: int = Field(2, ge=1, description="scoring calls past their deadline that "
                                 "may still be running before later checks fail at once "
                                 "(closed) instead of starting another; they are accepted "
                                 "again when the hung calls return")
    max_batch: int = Field(32, ge=1, description="most texts in one batched scoring call; the "
                           "deadline bounds a whole batch, so a full batch must fit in it")
    max_wait_ms: float = Field(5.0, ge=0, allow_inf_nan=False, description="longest a text "
                               "waits for others to join its scoring batch, in milliseconds")
    batching: bool = Field(True, description="coalesce the checks of concurrent requests into "
                           "one scoring call (--no-batching: one call per check)")
    segment_tokens: int | None = Field(None, ge=1, description="release a streamed reply "
                                       "every this many tokens, each after its check; none: at "
                                       "sentence ends")
    lookbehind_chars: int = Field(200, ge=0, description="characters of released text each "
                                  "streamed segment is checked together with, to catch a "
                                  "harmful phrase split across segments")
    fail_open: bool = Field(False, description="let unchecked text through when the guard "
                            "cannot score (with a warning); off: the safe message is sent "
                            "instead")
    device: str = Field("auto", description="where the local model runs: auto, cpu, cuda, "
                        "cuda:N")
    trust_remote_code: bool = Field(False, description="run code shipped with a hub model")

    @field_validator("upstream")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"upstream must be an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    @property
    def on_error(self) -> Literal["block", "allow"]:
        """The guard's failure mode: ``block`` unless ``fail_open``."""
        return "allow" if self.fail_open else "block"
