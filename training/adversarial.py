"""Adversarial fine-tuning, A2T-style: attack part of the training data, train on the results.

After ``adv_clean_epochs`` clean epochs, every ``adv_every`` epochs the callback attacks a seeded
random ``adv_fraction`` of the training examples with the current model and a cheap recipe, and
the epoch trains on the training data plus every successful adversarial example (with its
original label). Yoo & Qi (2021), "Towards Improving Adversarial Training of NLP Models".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from guard.data import TextDataset
from training.callbacks import TrainerCallback, TrainerControl, TrainerState
from training.config import TrainConfig


class AdversarialAugmentationCallback(TrainerCallback):
    """Adds successful adversarial examples to attack epochs.

    Args:
        config: Training config (``adv_*`` fields and ``seed``).

    Attributes:
        rounds: One dict per attack round: epoch, attacked, successful, constraint set.
    """

    def __init__(self, config: TrainConfig) -> None:
        from attacks import RECIPES

        RECIPES.entry(config.adv_recipe)  # unknown recipe: fail before training starts
        self.config = config
        self.rounds: list[dict[str, Any]] = []
        self._trainer: Any = None
        self._eligible: list[int] | None = None

    def bind(self, trainer: Any) -> None:
        """Keep the trainer, to attack its current model."""
        self._trainer = trainer

    def _attack_epoch(self, epoch: int) -> bool:
        cfg = self.config
        return epoch >= cfg.adv_clean_epochs and (epoch - cfg.adv_clean_epochs) % cfg.adv_every == 0

    def on_epoch_begin(self, state: TrainerState, control: TrainerControl) -> None:
        """On attack epochs, attack a sample of the training data and queue the successes."""
        if self._trainer is None or not self._attack_epoch(state.epoch):
            return
        from attacks.runner import run_attack
        from guard.models.classifier import HFClassifier

        cfg = self.config
        train: TextDataset = self._trainer.train_data
        if self._eligible is None:  # texts the model sees whole: attacks must fit its window
            tokenizer = self._trainer.tokenizer
            self._eligible = [i for i, text in enumerate(train.texts)
                              if len(tokenizer(text)["input_ids"]) <= cfg.max_length]
        rng = np.random.default_rng(cfg.seed + state.epoch)
        count = min(len(self._eligible), max(1, round(cfg.adv_fraction * len(train))))
        if count == 0:
            return
        chosen = sorted(rng.choice(self._eligible, size=count, replace=False).tolist())
        sample = TextDataset.from_rows([train.texts[i] for i in chosen],
                                       [train.labels[i] for i in chosen],
                                       source=f"{train.source}#adv-epoch-{state.epoch}")
        classifier = HFClassifier(self._trainer.model, self._trainer.tokenizer,
                                  max_length=cfg.max_length)
        run = run_attack(classifier, sample, cfg.adv_recipe, seed=cfg.seed + 1000 * state.epoch,
                         query_budget=cfg.adv_query_budget, progress=False)
        self._trainer.model.train()
        wins = [r for r in run.records if r.status == "successful"]
        state.augmented = TextDataset.from_rows(
            [r.perturbed_text for r in wins], [r.label for r in wins],
            source=f"adversarial:{run.constraint_set}") if wins else None
        self.rounds.append({"epoch": state.epoch + 1, "attacked": count,
                            "successful": len(wins), "constraint_set": run.constraint_set})
