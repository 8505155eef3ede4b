"""``guard serve`` on Ray Serve: many replicas of the app, on one machine or a cluster.

The only module of :mod:`guard.serve` that imports ``ray`` (``ray[serve]``, the ``serve-ray``
extra). Each replica is a Ray actor that builds its own copy of the FastAPI app of
:func:`~guard.serve.app.create_app` and runs its lifespan: so every replica loads its own guard
(and reply backend) and keeps its own micro-batcher, API keys, rate limits and Prometheus
registry. Ray Serve's HTTP proxy spreads requests over the replicas.

The app is built *on the replica* (``serve.ingress`` with a builder function, which
ray-project/ray#52892 added: Ray >= 2.47), never pickled: the guard, the batcher and the event
loop it runs on cannot travel between processes, and the weights are loaded where they are
used. Only the :class:`~guard.serve.config.ServeConfig` travels.

From code::

    from ray import serve
    from guard.serve.config import ServeConfig
    from guard.serve.ray_deployment import build_deployment

    serve.run(build_deployment(ServeConfig(upstream="http://127.0.0.1:8001/v1"),
                               num_replicas=4))

From the command line (``key=value`` arguments are :class:`RayDeploymentOptions` and
:class:`~guard.serve.config.ServeConfig` fields)::

    serve run guard.serve.ray_deployment:app_builder num_replicas=4 upstream=http://127.0.0.1:8001/v1
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guard.errors import ConfigError, MissingExtraError
from guard.executors import FORWARDED_ENV
from guard.serve.config import ServeConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

#: The ``pip install`` extra that brings Ray Serve.
EXTRA = "serve-ray"

#: Name of the deployment (and of its replicas' actors) unless given.
DEFAULT_NAME = "guard-serve"


class RayDeploymentOptions(BaseModel):
    """How ``guard serve`` is deployed on Ray Serve; unknown keys are refused.

    Attributes:
        name: Deployment name.
        num_replicas: Fixed number of replicas, or ``"auto"`` (Ray's default autoscaling);
            ``None``: one replica, or as many as ``autoscaling_config`` says.
        num_cpus: CPUs each replica reserves (and torch threads it uses).
        num_gpus: GPUs each replica reserves (``1``: one replica per GPU; a fraction packs
            several replicas on one GPU).
        ray_actor_options: Further options of each replica's actor (``memory``,
            ``resources``, ``runtime_env``...); ``num_cpus``/``num_gpus`` given here win.
        autoscaling_config: Ray Serve's autoscaling settings (``min_replicas``,
            ``max_replicas``, ``target_ongoing_requests``...).
        max_ongoing_requests: Requests one replica serves at once; the proxy queues the
            rest. ``None``: enough for a full micro-batch (``max(5, max_batch)``) when
            batching is on, Ray's default (5) otherwise.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(DEFAULT_NAME, min_length=1)
    num_replicas: Annotated[int, Field(ge=1)] | Literal["auto"] | None = None
    num_cpus: float = Field(1.0, ge=0, allow_inf_nan=False)
    num_gpus: float = Field(0.0, ge=0, allow_inf_nan=False)
    ray_actor_options: dict[str, Any] | None = None
    autoscaling_config: dict[str, Any] | None = None
    max_ongoing_requests: int | None = Field(None, ge=1)


def _import_serve() -> Any:
    try:
        from ray import serve
    except ImportError as exc:  # ray missing, or ray without its serve dependencies
        raise MissingExtraError("ray[serve]", EXTRA, "guard serve on Ray Serve") from exc
    return serve


def _actor_options(ray_actor_options: dict[str, Any] | None, *, num_cpus: float,
                   num_gpus: float) -> dict[str, Any]:
    """Replica actor options: offline and cache variables forwarded, unreserved GPUs hidden."""
    options: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus}
    options.update(ray_actor_options or {})
    runtime_env = dict(options.get("runtime_env") or {})
    env_vars = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
    if not options.get("num_gpus"):
        # Recent Ray leaves CUDA_VISIBLE_DEVICES alone for an actor that reserves no GPU
        # (ray-project/ray#54868): the guard's device="auto" would then crowd every replica
        # onto GPU 0 behind Ray's back. Hide the GPUs instead.
        env_vars["CUDA_VISIBLE_DEVICES"] = ""
    env_vars.update(runtime_env.get("env_vars") or {})  # the caller's own values win
    if env_vars:
        runtime_env["env_vars"] = env_vars
        options["runtime_env"] = runtime_env
    return options


def build_deployment(
    config: ServeConfig,
    *,
    num_replicas: int | Literal["auto"] | None = None,
    ray_actor_options: dict[str, Any] | None = None,
    autoscaling_config: dict[str, Any] | None = None,
    max_ongoing_requests: int | None = None,
    name: str = DEFAULT_NAME,
) -> Any:
    """A bound Ray Serve application that serves ``create_app(config)`` on every replica.

    Each replica builds the app itself and runs its lifespan, so it loads its own guard and
    backend and batches only the requests it receives. ``config.host`` and ``config.port``
    are not used: Ray Serve's HTTP proxy listens where ``serve.start(http_options=...)`` or
    the Serve config file says (``127.0.0.1:8000`` by default). Every path the config names
    (``api_keys_file``, a model folder) must exist at the same place on every node.

    Args:
        config: The server's settings, shared by all replicas.
        num_replicas: Fixed number of replicas or ``"auto"``; ``None``: one replica, or as
            many as ``autoscaling_config`` says.
        ray_actor_options: Options of each replica's actor; default ``{"num_cpus": 1}``.
            Give ``{"num_gpus": 1}`` for one replica per GPU. The driver's offline and cache
            variables (``HF_HUB_OFFLINE``, ``HF_HOME``...) are added to its ``runtime_env``;
            a replica that reserves no GPU gets ``CUDA_VISIBLE_DEVICES=""`` and runs on the
            CPU (set it in ``runtime_env["env_vars"]`` to override).
        autoscaling_config: Ray Serve's autoscaling settings (``min_replicas``,
            ``max_replicas``, ``target_ongoing_requests``...); excludes a fixed
            ``num_replicas``.
        max_ongoing_requests: Requests one replica serves at once; ``None``: enough for a
            full micro-batch (``max(5, config.max_batch)``) when batching is on, Ray's
            default (5) otherwise.
        name: Deployment name.

    Returns:
        A ``ray.serve.Application``, for ``serve.run`` or as an application builder's result.

    Raises:
        MissingExtraError: If Ray Serve (``ray[serve]``) or the web framework of
            ``guard serve`` is not installed.
        ConfigError: For a fixed ``num_replicas`` together with ``autoscaling_config``, or a
            non-positive ``num_replicas`` or ``max_ongoing_requests``.
    """
    serve = _import_serve()
    try:  # fail here, in the driver, rather than in every replica on every restart
        import guard.serve.app  # noqa: F401
    except ModuleNotFoundError as exc:
        raise MissingExtraError(exc.name or "fastapi", "serve", "guard serve") from exc

    if isinstance(num_replicas, int) and num_replicas < 1:
        raise ConfigError(f"num_replicas must be at least 1 or 'auto', got {num_replicas}")
    if isinstance(num_replicas, int) and autoscaling_config is not None:
        raise ConfigError("give either a fixed num_replicas or an autoscaling_config, not both")
    if max_ongoing_requests is not None and max_ongoing_requests < 1:
        raise ConfigError(f"max_ongoing_requests must be at least 1, got {max_ongoing_requests}")
    if max_ongoing_requests is None and config.batching:
        max_ongoing_requests = max(5, config.max_batch)

    options: dict[str, Any] = {
        "name": name,
        "ray_actor_options": _actor_options(ray_actor_options, num_cpus=1.0, num_gpus=0.0),
    }
    if num_replicas is not None:
        options["num_replicas"] = num_replicas
    elif autoscaling_config is None:
        options["num_replicas"] = 1
    if autoscaling_config is not None:
        options["autoscaling_config"] = autoscaling_config
    if max_ongoing_requests is not None:
        options["max_ongoing_requests"] = max_ongoing_requests

    def build_app() -> FastAPI:
        # Runs on the replica: a nested function is pickled by value, with ``config``.
        from guard.serve.app import create_app

        return create_app(config)

    try:
        deployment = serve.deployment(serve.ingress(build_app)(), **options)
    except ValueError as exc:  # Ray's own checks of the deployment options
        raise ConfigError(f"invalid Ray Serve deployment options: {exc}") from exc
    return deployment.bind()


def app_builder(args: dict[str, Any]) -> Any:
    """Ray Serve application builder: ``serve run guard.serve.ray_deployment:app_builder``.

    ``key=value`` arguments of ``serve run`` (strings) and the ``args`` of a Serve config
    file (typed) are split into :class:`RayDeploymentOptions` fields (``num_replicas``,
    ``num_cpus``, ``num_gpus``, ``ray_actor_options``, ``autoscaling_config``,
    ``max_ongoing_requests``, ``name``) and :class:`~guard.serve.config.ServeConfig` fields
    (everything else), each validated::

        serve run guard.serve.ray_deployment:app_builder num_replicas=2 num_gpus=1 max_batch=64

    Args:
        args: The arguments, by name.

    Returns:
        The bound application (see :func:`build_deployment`).

    Raises:
        ConfigError: For an unknown key or an invalid value (all problems in one message).
        MissingExtraError: If Ray Serve or the web framework is not installed.
    """
    deploy_keys = set(RayDeploymentOptions.model_fields)
    problems: list[str] = []
    deploy: RayDeploymentOptions | None = None
    config: ServeConfig | None = None
    try:
        deploy = RayDeploymentOptions.model_validate(
            {k: v for k, v in args.items() if k in deploy_keys})
    except ValidationError as exc:
        problems.append(str(exc))
    try:
        config = ServeConfig.model_validate(
            {k: v for k, v in args.items() if k not in deploy_keys})
    except ValidationError as exc:
        problems.append(str(exc))
    if deploy is None or config is None:
        raise ConfigError(
            "invalid guard serve arguments for Ray Serve (deployment options: "
            f"{', '.join(sorted(deploy_keys))}; any other key is a ServeConfig field):\n"
            + "\n".join(problems))
    actor_options = {"num_cpus": deploy.num_cpus, "num_gpus": deploy.num_gpus}
    actor_options.update(deploy.ray_actor_options or {})
    return build_deployment(
        config,
        num_replicas=deploy.num_replicas,
        ray_actor_options=actor_options,
        autoscaling_config=deploy.autoscaling_config,
        max_ongoing_requests=deploy.max_ongoing_requests,
        name=deploy.name,
    )
