"""A classifier whose large inputs are split into batches and run on Ray workers.

:class:`ShardedClassifier` is an :class:`~guard.models.classifier.HFClassifier` (so every suite
accepts it) whose ``logits`` call, when it spans more than one batch, sends the very batches the
local model would run (same length-sorted order, same padding) to model replicas on Ray actors
and puts the rows back in input order. Calls of one batch or less, such as the latency suite's
timed requests, run here, on the local copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from guard.models.classifier import HFClassifier, length_sorted_batches

if TYPE_CHECKING:
    from guard.executors import RayExecutor

_REPLICA: HFClassifier | None = None


def _init_replica(location: str, device: str, max_length: int, batch_size: int,
                  threads: int) -> None:
    import torch

    global _REPLICA
    torch.set_num_threads(threads)
    _REPLICA = HFClassifier.from_pretrained(location, device=device, max_length=max_length,
                                            batch_size=batch_size)


def _replica_logits(texts: list[str]) -> npt.NDArray[np.float64]:
    if _REPLICA is None:
        raise RuntimeError("replica not initialised")
    return _REPLICA.logits(texts)


class ShardedClassifier(HFClassifier):
    """Runs multi-batch inference on Ray actors, each holding a replica of the model.

    Args:
        local: The classifier, loaded here from a folder (the replicas load the same folder).
        executor: Where the replicas run.
    """

    def __init__(self, local: HFClassifier, executor: RayExecutor) -> None:
        if local.source is None or local.source.kind != "local":
            raise ValueError("a sharded classifier needs a model folder every worker can read")
        super().__init__(local.model, local.tokenizer, max_length=local.max_length,
                         batch_size=local.batch_size, source=local.source)
        self.executor = executor
        device = "cuda" if executor.gpus_per_worker else "cpu"
        self._init_args: tuple[Any, ...] = (local.source.location, device, local.max_length,
                                            local.batch_size, executor.cpus_per_worker)

    def logits(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Raw logits in input order; more than one batch is computed on the workers."""
        if len(texts) <= self.batch_size:
            return super().logits(texts)
        batches = list(length_sorted_batches(texts, self.batch_size))
        out = np.empty((len(texts), len(self.labels)), dtype=np.float64)
        jobs = [[texts[i] for i in idx] for idx in batches]
        for position, rows in self.executor.map("guard.models.sharded:_init_replica",
                                                self._init_args,
                                                "guard.models.sharded:_replica_logits", jobs):
            out[batches[position]] = rows
        return out
