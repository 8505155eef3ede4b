"""What each torchrun process runs in the distributed-training tests (not a test module).

Usage: ``torchrun ... torchrun_worker.py CONFIG_JSON OUT [--interrupt-at EPOCH] [--resume]``.
``--interrupt-at`` raises ``KeyboardInterrupt`` at the start of that epoch in every process,
as a crash would, after the resumable state of the epoch before was saved.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.callbacks import TrainerCallback, TrainerControl, TrainerState
from training.config import TrainConfig
from training.pipeline import fine_tune


class _Interrupt(TrainerCallback):
    def __init__(self, at_epoch: int) -> None:
        self.at_epoch = at_epoch

    def on_epoch_begin(self, state: TrainerState, control: TrainerControl) -> None:
        if state.epoch == self.at_epoch:
            raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("out")
    parser.add_argument("--interrupt-at", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    config = TrainConfig.model_validate(json.loads(Path(args.config).read_text()))
    callbacks = (_Interrupt(args.interrupt_at),) if args.interrupt_at is not None else ()
    fine_tune(config, out=args.out, progress=False, callbacks=callbacks, resume=args.resume)


if __name__ == "__main__":
    main()
