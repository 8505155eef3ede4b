"""Live loopback servers for the ``guard serve`` tests: a scripted upstream and the guard."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from serving import ServeFactory, scripted_reply

from guard.output_guard import OutputGuard
from guard.serve.app import create_app
from guard.serve.config import ServeConfig
from guard.serve.testing import ScriptedUpstream, running


@pytest.fixture(scope="session")
def harm_guard() -> OutputGuard:
    """The embedded guard (harm-minilm and its thresholds), shared by the servers."""
    return OutputGuard.default(deadline_s=5.0)


@pytest.fixture
def upstream() -> Iterator[tuple[ScriptedUpstream, str]]:
    """A scripted OpenAI-compatible upstream on loopback, and its /v1 URL."""
    stub = ScriptedUpstream(scripted_reply)
    with running(stub.app()) as url:
        yield stub, url + "/v1"


@pytest.fixture
def serve(harm_guard: OutputGuard) -> ServeFactory:
    """``with serve(guard=..., backend=..., **settings) as url``: a live ``guard serve``."""

    @contextmanager
    def start(*, guard: OutputGuard | None = None, backend: Any = None,
              **settings: Any) -> Iterator[str]:
        app = create_app(ServeConfig(**settings), guard=guard or harm_guard, backend=backend)
        with running(app) as url:
            yield url

    return start
