"""Data-parallel training under ``torchrun``: the process group and the few collectives it needs.

``torchrun --nproc-per-node N -m guard train ...`` starts N copies of the command with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. Each copy reads that
environment (:func:`context_from_environment`), joins the process group (:func:`process_group`:
gloo on CPUs, NCCL on GPUs, one GPU per local rank) and trains on its share of every global
batch; ``batch_size`` stays the global batch, so the optimisation (and, under DP-SGD, the
privacy accounting) is the single-process one. Without ``torchrun`` nothing here starts any
process group and every collective is the identity.

Collectives go through ``all_gather_object``: the loop only exchanges a few numbers, random
generator states and adversarial examples per epoch, and object collectives work on every
backend. Results are combined in rank order, so they do not depend on which worker is faster.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from guard.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a data-parallel run (one process: rank 0 of 1).

    Attributes:
        rank: This process's index among all processes.
        world_size: How many processes train together.
        local_rank: Its index on this node (picks the GPU).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and shows progress (rank 0)."""
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This process's share of ``items``: every ``world_size``-th item from ``rank``."""
        return list(items[self.rank :: self.world_size])

    def gather(self, value: T) -> list[T]:
        """Every process's ``value``, in rank order (``[value]`` in a single process)."""
        if not self.enabled:
            return [value]
        import torch.distributed as dist

        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums of ``values`` over all processes, added in rank order."""
        gathered = self.gather([float(v) for v in values])
        return [sum(column) for column in zip(*gathered, strict=True)]

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


def context_from_environment() -> DistributedContext:
    """The context ``torchrun`` describes in the environment (one process if it is absent).

    Raises:
        ConfigError: If the variables are malformed or inconsistent.
    """
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise ConfigError(f"malformed torchrun environment (WORLD_SIZE, RANK, LOCAL_RANK): "
                          f"{exc}") from exc
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ConfigError(f"inconsistent torchrun environment: RANK={rank}, "
                          f"WORLD_SIZE={world_size}, LOCAL_RANK={local_rank}")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)


@contextmanager
def process_group(context: DistributedContext, device: str) -> Iterator[str]:
    """Join the process group for the duration of the block; yields this process's device.

    On CUDA each process takes the GPU of its local rank and the NCCL backend; otherwise gloo.
    A process group someone else started (e.g. a caller's own ``init_process_group``) is used
    as it is and left open.

    Args:
        context: From :func:`context_from_environment`.
        device: The device the run asked for (``cpu``, ``cuda``, ``cuda:N``).

    Raises:
        ConfigError: If the group's size disagrees with the context, or a process group cannot
            be formed (e.g. ``MASTER_ADDR`` unset outside ``torchrun``).
    """
    if not context.enabled:
        yield device
        return
    import torch
    import torch.distributed as dist

    if device.startswith("cuda"):
        device = f"cuda:{context.local_rank}"
        torch.cuda.set_device(device)
    owned = not dist.is_initialized()
    if owned:
        try:
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo",
                                    rank=context.rank, world_size=context.world_size)
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot join the {context.world_size}-process group as rank "
                              f"{context.rank} ({exc}); start distributed runs with torchrun"
                              ) from exc
    elif dist.get_world_size() != context.world_size:
        raise ConfigError(f"the running process group has {dist.get_world_size()} processes "
                          f"but WORLD_SIZE says {context.world_size}")
    try:
        yield device
    finally:
        if owned:
            dist.destroy_process_group()


class SharedPoissonBatchSampler:
    """Poisson sampling of the global batch, split among the processes.

    Every process draws the same inclusion mask over all ``num_samples`` records from a
    generator seeded alike everywhere, exactly as Opacus' ``UniformWithReplacementSampler``
    does in one process, and keeps its share of the chosen records. So each record joins each
    global batch independently with probability ``sample_rate`` (what the accountant assumes),
    the global batches equal the single-process ones, and every process takes every step, an
    empty local batch included. (Opacus' own distributed sampler skips empty local batches,
    which leaves the processes waiting on different collectives.)

    Args:
        num_samples: Training records N.
        sample_rate: Inclusion probability q.
        context: The processes to split among.
        generator: Seeded identically in every process.
    """

    def __init__(self, *, num_samples: int, sample_rate: float, context: DistributedContext,
                 generator: Any) -> None:
        self.num_samples = num_samples
        self.sample_rate = sample_rate
        self.context = context
        self.generator = generator
        self.steps = int(1 / sample_rate)  # as Opacus counts them

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[list[int]]:
        import torch

        for _ in range(self.steps):
            mask = torch.rand(self.num_samples, generator=self.generator) < self.sample_rate
            yield self.context.shard(mask.nonzero(as_tuple=False).reshape(-1).tolist())
