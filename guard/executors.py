"""Run work across Ray workers: the only module that imports ``ray`` (the ``ray`` extra).

A :class:`RayExecutor` keeps pools of actors, one model replica per actor, and maps jobs over
them. Each pool is built by an *initialiser* (``"module:function"`` run once in every actor,
e.g. loading a model into a worker-global) and serves a *job function* (``"module:function"``
called with one job). Results come back as they finish, tagged with the job's position, so
callers merge them in a fixed order whatever the scheduling. Functions are passed by name, so
the worker processes import the same code the driver runs: on a cluster, install this package
on every node.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from guard.errors import ConfigError, require

#: Environment variables the driver passes on to the workers (offline mode, caches).
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE",
                 "HF_EVALUATE_OFFLINE", "TOKENIZERS_PARALLELISM", "HF_HOME", "TORCH_HOME",
                 "GUARD_CACHE_DIR", "FLAIR_CACHE_ROOT", "MPLCONFIGDIR")


def resolve(name: str) -> Any:
    """The object a ``"module:attribute"`` name points to."""
    module, _, attribute = name.partition(":")
    return getattr(importlib.import_module(module), attribute)


class _Actor:
    """One worker: runs the pool's initialiser once, then jobs."""

    def __init__(self, init: str, init_args: tuple[Any, ...]) -> None:
        resolve(init)(*init_args)

    def call(self, fn: str, position: int, job: Any) -> tuple[int, Any]:
        return position, resolve(fn)(job)


@dataclass
class RayExecutor:
    """Shards jobs across Ray actors on a local Ray instance or a cluster.

    Args:
        address: Ray cluster address (``"auto"``, ``"ray://host:10001"``); ``None`` starts a
            local instance with ``workers * cpus_per_worker`` CPUs.
        workers: Actors per pool (model replicas).
        cpus_per_worker: CPUs each actor reserves (and torch threads it uses).
        gpus_per_worker: GPUs each actor reserves (0 or 1; one replica per GPU).

    Raises:
        MissingExtraError: If Ray is not installed (``pip install 'metaverse-guard[ray]'``).
        ConfigError: For a non-positive number of workers or CPUs.
    """

    address: str | None = None
    workers: int = 2
    cpus_per_worker: int = 1
    gpus_per_worker: float = 0
    _pools: dict[tuple[str, tuple[Any, ...]], list[Any]] = field(default_factory=dict,
                                                                 repr=False)
    _started_here: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        require("ray", extra="ray", feature="the Ray executor")
        if self.workers < 1 or self.cpus_per_worker < 1:
            raise ConfigError(f"the Ray executor needs workers >= 1 and cpus_per_worker >= 1, "
                              f"got {self.workers} and {self.cpus_per_worker}")

    def _connect(self) -> Any:
        import ray

        if not ray.is_initialized():
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            options: dict[str, Any] = {"runtime_env": {"env_vars": env},
                                       "log_to_driver": False, "include_dashboard": False}
            if self.address is None:
                options["num_cpus"] = self.workers * self.cpus_per_worker
            else:
                options["address"] = self.address
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"could not start or reach Ray at "
                                  f"{self.address or 'a local instance'}: {exc}") from exc
            self._started_here = True
        return ray

    def _pool(self, init: str, init_args: tuple[Any, ...]) -> list[Any]:
        key = (init, init_args)
        if key not in self._pools:
            ray = self._connect()
            # One pool at a time: a second would wait forever for the CPUs the first holds.
            self.release()
            needed = {"CPU": self.workers * self.cpus_per_worker,
                      "GPU": self.workers * self.gpus_per_worker}
            have = ray.cluster_resources()
            short = [f"{v:g} {k} (the cluster has {have.get(k, 0):g})"
                     for k, v in needed.items() if v > have.get(k, 0)]
            if short:
                raise ConfigError(f"{self.workers} workers need {', '.join(short)}; "
                                  "use fewer --workers")
            actor = ray.remote(num_cpus=self.cpus_per_worker,
                               num_gpus=self.gpus_per_worker)(_Actor)
            self._pools[key] = [actor.remote(init, init_args) for _ in range(self.workers)]
        return self._pools[key]

    def release(self) -> None:
        """Stop this executor's actors, freeing their CPUs and GPUs (Ray keeps running)."""
        if not self._pools:
            return
        import ray

        for actors in self._pools.values():
            for actor in actors:
                ray.kill(actor)
        self._pools.clear()

    def map(self, init: str, init_args: tuple[Any, ...], fn: str,
            jobs: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """Run ``fn(job)`` for every job on the pool built by ``init(*init_args)``.

        Yields:
            ``(position in jobs, result)`` pairs as they finish (any order).
        """
        if not jobs:
            return
        ray = self._connect()
        actors = self._pool(init, init_args)
        pending: dict[Any, Any] = {}
        queue = list(enumerate(jobs))
        queue.reverse()
        # two jobs in flight per actor: one running, one queued behind it
        for actor in actors * 2:
            if queue:
                position, job = queue.pop()
                pending[actor.call.remote(fn, position, job)] = actor
        while pending:
            [done], _ = ray.wait(list(pending), num_returns=1)
            actor = pending.pop(done)
            try:
                yield ray.get(done)
            except ray.exceptions.RayTaskError as exc:
                raise exc.as_instanceof_cause() from None
            if queue:
                position, job = queue.pop()
                pending[actor.call.remote(fn, position, job)] = actor

    def shutdown(self) -> None:
        """Stop the actors (and the local Ray instance if this executor started it)."""
        import ray

        self.release()
        if self._started_here and ray.is_initialized():
            ray.shutdown()
        self._started_here = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
