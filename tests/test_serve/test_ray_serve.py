"""``guard serve`` on Ray Serve: a real local Ray instance, two replicas, the embedded guard.

No chat model is needed: every replica loads the bundled harm-minilm scorer offline, and its
replies come from the scripted upstream (a loopback server in this process).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ray_serve = pytest.importorskip("ray.serve", reason="needs Ray Serve: pip install 'ray[serve]'")
httpx = pytest.importorskip("httpx")

import ray  # noqa: E402
from serving import HARMFUL_TAIL, free_port, scripted_reply  # noqa: E402

from guard.errors import ConfigError  # noqa: E402
from guard.serve.config import ServeConfig  # noqa: E402
from guard.serve.ray_deployment import _actor_options, app_builder, build_deployment  # noqa: E402
from guard.serve.testing import ScriptedUpstream, running  # noqa: E402

HARMFUL = "You are a worthless idiot and I will kill you."
BENIGN = "The castle gate opens at dawn, so bring your map and a lantern."


@pytest.fixture(scope="module")
def proxy() -> Iterator[str]:
    """A local two-CPU Ray instance with Serve's proxy on a free loopback port; its URL."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        port = free_port()
        ray_serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield f"http://127.0.0.1:{port}"
    finally:
        ray_serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def scripted_upstream() -> Iterator[str]:
    """The scripted OpenAI-compatible upstream on loopback; its /v1 URL."""
    with running(ScriptedUpstream(scripted_reply).app()) as url:
        yield url + "/v1"


def _streamed(client: httpx.Client, question: str) -> tuple[str, str | None]:
    """The content and finish reason of a streamed chat completion."""
    content, finish = "", None
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": question}]}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                choice = json.loads(line[6:])["choices"][0]
                content += choice["delta"].get("content") or ""
                finish = choice["finish_reason"] or finish
    return content, finish


@pytest.mark.slow
def test_guard_serve_on_two_ray_replicas(proxy: str, scripted_upstream: str) -> None:
    app = app_builder({"num_replicas": "2", "max_wait_ms": "1", "upstream": scripted_upstream})
    ray_serve.run(app, name="guard", route_prefix="/")
    with httpx.Client(base_url=proxy, timeout=60) as client:
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["batching"]
        response = client.post("/v1/moderations", json={"input": [HARMFUL, BENIGN]})
        assert response.status_code == 200, response.text
        harmful, benign = response.json()["results"]
        assert harmful["flagged"] and harmful["categories"]["harassment"]
        assert not benign["flagged"] and not any(benign["categories"].values())
        # both replicas loaded their own guard (their startup ran) and are serving
        deployment = ray_serve.status().applications["guard"].deployments["guard-serve"]
        assert deployment.replica_states == {"RUNNING": 2}
        # whichever replica answers, the verdict is the same
        for _ in range(6):
            again = client.post("/v1/moderations", json={"input": HARMFUL}).json()
            assert again["results"][0]["flagged"]
        # a streamed reply crosses the proxy checked: the harmful part never arrives
        content, finish = _streamed(client, "please insult me")
        assert finish == "content_filter" and "idiot" not in content
        assert HARMFUL_TAIL not in content
        content, finish = _streamed(client, "when does the museum open?")
        assert finish == "stop" and "opens at nine" in content
        assert "guard_outputs_total" in client.get("/metrics").text
    ray_serve.delete("guard")


@pytest.mark.slow
def test_a_replica_that_cannot_start_never_serves(proxy: str, tmp_path: Path) -> None:
    # num_cpus 0: it must not wait for the CPUs another test's replicas may still hold
    app = app_builder({"name": "no-keys", "num_cpus": "0",
                       "api_keys_file": str(tmp_path / "missing.txt"),
                       "upstream": f"http://127.0.0.1:{free_port()}/v1"})
    with pytest.raises(RuntimeError, match="no-keys"):
        ray_serve.run(app, name="no-keys", route_prefix="/no-keys")
    assert ray_serve.status().applications["no-keys"].status == "DEPLOY_FAILED"
    moderated = httpx.post(f"{proxy}/no-keys/v1/moderations", json={"input": HARMFUL},
                           timeout=60)
    assert moderated.status_code != 200


def test_app_builder_refuses_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError) as raised:
        app_builder({"max_bach": "8", "num_replicas": "0", "num_gpus": "1"})
    # both problems in one message, each with its key
    message = str(raised.value)
    assert "max_bach\n  Extra inputs are not permitted" in message
    assert "num_replicas.constrained-int\n  Input should be greater than or equal to 1" in message


def test_fixed_replicas_and_autoscaling_exclude_each_other() -> None:
    with pytest.raises(ConfigError, match="autoscaling_config"):
        build_deployment(ServeConfig(), num_replicas=2,
                         autoscaling_config={"min_replicas": 1, "max_replicas": 2})


def test_replicas_without_gpus_do_not_see_them_and_offline_mode_is_forwarded(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cpu = _actor_options(None, num_cpus=1, num_gpus=0)
    assert cpu["runtime_env"]["env_vars"]["CUDA_VISIBLE_DEVICES"] == ""
    assert cpu["runtime_env"]["env_vars"]["HF_HUB_OFFLINE"] == "1"
    gpu = _actor_options({"num_gpus": 1}, num_cpus=1, num_gpus=0)
    assert gpu["num_gpus"] == 1 and "CUDA_VISIBLE_DEVICES" not in gpu["runtime_env"]["env_vars"]
    mine = _actor_options({"runtime_env": {"env_vars": {"CUDA_VISIBLE_DEVICES": "1"}}},
                          num_cpus=1, num_gpus=0)
    assert mine["runtime_env"]["env_vars"]["CUDA_VISIBLE_DEVICES"] == "1"


def test_without_ray_serve_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from guard.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "ray.serve", None)  # as if ray[serve] were not installed
    monkeypatch.delattr(ray, "serve", raising=False)
    with pytest.raises(MissingExtraError, match=r"metaverse-guard\[serve-ray\]"):
        build_deployment(ServeConfig())
