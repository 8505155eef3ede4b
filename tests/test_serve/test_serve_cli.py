"""``guard serve``: every setting is a flag with help; bad settings fail before serving."""

from __future__ import annotations

import asyncio
import json

import pytest

from guard.cli import build_parser, main
from guard.cli.serve import config_from_args
from guard.errors import ConfigError
from guard.serve.app import CONFIG_ENVIRONMENT, app_from_environment
from guard.serve.config import ServeConfig
from guard.serve.security import ApiKeys, RateLimiter


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    for name, field in ServeConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        assert flag in text, flag
        assert field.description, name  # the help comes from the description
    for words in ("content_filter", "fails", "/v1/moderations", "/metrics", "--workers"):
        assert words in " ".join(text.split())


def test_flags_build_the_config() -> None:
    args = build_parser().parse_args(
        ["serve", "--port", "9001", "--upstream", "http://127.0.0.1:8001/v1/",
         "--no-batching", "--max-wait-ms", "2.5", "--segment-tokens", "8"])
    config = config_from_args(args)
    assert (config.port, config.upstream, config.batching, config.max_wait_ms,
            config.segment_tokens) == (9001, "http://127.0.0.1:8001/v1", False, 2.5, 8)
    assert config.on_error == "block" and config.host == "127.0.0.1"
    assert config_from_args(build_parser().parse_args(["serve", "--fail-open"])).on_error \
        == "allow"


@pytest.mark.parametrize("argv", [
    ["serve", "--upstream", "ftp://example"],
    ["serve", "--max-batch", "0"],
    ["serve", "--check-deadline-s", "-1"],
    ["serve", "--workers", "0"],
])
def test_bad_settings_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "guard serve: error:" in capsys.readouterr().err


def test_worker_processes_read_the_config_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = ServeConfig(port=9100, max_batch=4, batching=False)
    monkeypatch.setenv(CONFIG_ENVIRONMENT, config.model_dump_json())
    app = app_from_environment()
    assert app.state.server.config == config
    monkeypatch.setenv(CONFIG_ENVIRONMENT, json.dumps({"max_batch": "many"}))
    with pytest.raises(ConfigError, match="max_batch"):
        app_from_environment()


def test_api_keys_identify_callers_without_revealing_keys(tmp_path) -> None:
    keys = ApiKeys(["sk-one", "sk-two"])
    one = keys.identify("Bearer sk-one")
    assert one is not None and one.startswith("key:") and "sk-one" not in one
    assert keys.identify("Bearer sk-two") not in (None, one)
    for header in (None, "", "Bearer", "Bearer ", "Basic sk-one", "Bearer sk-on",
                   "Bearer sk-one2"):
        assert keys.identify(header) is None
    missing = tmp_path / "absent"
    with pytest.raises(ConfigError, match="cannot read"):
        ApiKeys.from_file(missing)


def test_the_rate_limiter_refills_at_its_rate_and_bounds_its_memory() -> None:
    limiter = RateLimiter(60, burst=2, max_callers=3)  # one a second after a burst of two
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    assert limiter.take("a", now=0.5) == pytest.approx(0.5)
    assert limiter.take("a", now=1.0) == 0.0  # a second later, one more
    for caller in "bcde":
        limiter.take(caller, now=2.0)
    assert len(limiter._buckets) == 3 and "a" not in limiter._buckets
    with pytest.raises(ConfigError):
        RateLimiter(0)


def test_an_upstream_key_file_that_cannot_be_read_is_a_config_error(tmp_path) -> None:
    from guard.serve.backends import UpstreamBackend

    config = ServeConfig(upstream="http://127.0.0.1:1/v1",
                         upstream_api_key_file=tmp_path / "absent")
    with pytest.raises(ConfigError, match="upstream API key"):
        UpstreamBackend.from_config(config)
    (tmp_path / "key").write_text("sk-upstream\n", encoding="utf-8")
    backend = UpstreamBackend.from_config(config.model_copy(
        update={"upstream_api_key_file": tmp_path / "key"}))
    assert backend._client.headers["Authorization"] == "Bearer sk-upstream"
    asyncio.run(backend.aclose())
