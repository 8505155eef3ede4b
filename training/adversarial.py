"""Adversarial fine-tuning, A2T-style: attack part of the training data, train on the results.

After ``adv_clean_epochs`` clean epochs, every ``adv_every`` epochs the callback attacks a seeded
random ``adv_fraction`` of the training examples with the current model and a cheap recipe, and
the epoch trains on the training data plus every successful adversarial example (with its
original label). Yoo & Qi (2021), "Towards Improving Adversarial Training of NLP Models".

In the private mode (``adversarial+dp``) each example is chosen, and attacked with a seed, by a
hash of its own content, so whether and how an example is perturbed depends on that example and
the current model only, never on its neighbours; each adversarial example records the training
example it came from, and the private trainer folds the two into one per-sample gradient
(``docs/hardening.md`` has the privacy argument).

In a data-parallel run the processes split each round's attacks between them (every example
keeps its seed) and share the successes, so every process trains on the same pool as one
process would.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from guard.data import TextDataset
from training.callbacks import TrainerCallback, TrainerControl, TrainerState, TrainingContext
from training.config import TrainConfig


class AdversarialAugmentationCallback(TrainerCallback):
    """Adds successful adversarial examples to the epochs after each attack round.

    With ``adv_keep`` the examples of every round so far are kept and trained on in every later
    epoch (a growing pool); otherwise only the current round's.

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
        self._context: TrainingContext | None = None
        self._eligible: list[int] | None = None
        # (perturbed text, label, training index it came from) of the rounds kept
        self._pool: list[tuple[str, str, int]] = []

    def bind(self, context: TrainingContext) -> None:
        """Keep the run's context: its current model is attacked, its training data sampled."""
        self._context = context

    def state_dict(self) -> dict[str, Any]:
        """The attack rounds so far and the adversarial examples kept."""
        return {"rounds": self.rounds, "pool": [list(row) for row in self._pool]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the attack rounds and the pool."""
        self.rounds = list(state["rounds"])
        self._pool = [(str(t), str(label), int(i)) for t, label, i in state["pool"]]

    def _record_draw(self, epoch: int, text: str, label: str) -> tuple[float, int]:
        """A uniform number in [0, 1) and a seed, from this example's content alone."""
        digest = hashlib.sha256(f"{self.config.seed}\0{epoch}\0{label}\0{text}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64, int.from_bytes(digest[8:12], "big")

    def _choose(self, epoch: int, train: TextDataset,
                eligible: list[int]) -> tuple[list[int], list[int] | None]:
        """Indices to attack this round, and per-example seeds in the private mode."""
        cfg = self.config
        if cfg.private:
            draws = {i: self._record_draw(epoch, train.texts[i], train.labels[i])
                     for i in eligible}
            chosen = [i for i in eligible if draws[i][0] < cfg.adv_fraction]
            return chosen, [draws[i][1] for i in chosen]
        rng = np.random.default_rng(cfg.seed + epoch)
        count = min(len(eligible), max(1, round(cfg.adv_fraction * len(train))))
        return sorted(rng.choice(eligible, size=count, replace=False).tolist()), None

    def _attack_epoch(self, epoch: int) -> bool:
        cfg = self.config
        return epoch >= cfg.adv_clean_epochs and (epoch - cfg.adv_clean_epochs) % cfg.adv_every == 0

    def on_epoch_begin(self, state: TrainerState, control: TrainerControl) -> None:
        """On attack epochs, attack a sample of the training data and queue the successes."""
        context = self._context
        if context is None:
            return
        if not self._attack_epoch(state.epoch):
            if self.config.adv_keep:
                self._offer(state)
            return
        from attacks.runner import run_attack
        from guard.models.classifier import HFClassifier

        cfg = self.config
        train = context.train
        if self._eligible is None:  # texts the model sees whole: attacks must fit its window
            tokenizer = context.tokenizer
            self._eligible = [i for i, text in enumerate(train.texts)
                              if len(tokenizer(text)["input_ids"]) <= cfg.max_length]
        chosen, seeds = self._choose(state.epoch, train, self._eligible)
        if not chosen:
            if cfg.adv_keep:
                self._offer(state)
            return
        if seeds is None:
            seeds = [cfg.seed + 1000 * state.epoch + k for k in range(len(chosen))]
        dist = context.distributed
        mine = dist.shard(range(len(chosen)))  # positions in `chosen` this process attacks
        local: tuple[list[tuple[int, str]], str | None] = ([], None)
        if mine:
            sample = TextDataset.from_rows([train.texts[chosen[k]] for k in mine],
                                           [train.labels[chosen[k]] for k in mine],
                                           source=f"{train.source}#adv-epoch-{state.epoch}")
            classifier = HFClassifier(context.model, context.tokenizer,
                                      max_length=cfg.max_length,
                                      word_recognizer=context.word_recognizer,
                                      synonym_encoder=context.synonym_encoder)
            run = run_attack(classifier, sample, cfg.adv_recipe, query_budget=cfg.adv_query_budget,
                             progress=False, seeds=[seeds[k] for k in mine])
            local = ([(mine[r.index], r.perturbed_text) for r in run.records
                      if r.status == "successful"], run.constraint_set)
            context.model.train()
        shared = dist.gather(local)
        wins = sorted(win for part, _ in shared for win in part)
        constraint_set = next(c for _, c in shared if c is not None)
        fresh = [(text, train.labels[chosen[k]], chosen[k]) for k, text in wins]
        self._pool = [*self._pool, *fresh] if cfg.adv_keep else fresh
        self._offer(state, source=f"adversarial:{constraint_set}")
        self.rounds.append({"epoch": state.epoch + 1, "attacked": len(chosen),
                            "successful": len(wins), "trained_on": len(self._pool),
                            "constraint_set": constraint_set})

    def _offer(self, state: TrainerState, source: str = "adversarial") -> None:
        """Hand the pool to the loop for this epoch."""
        if not self._pool:
            return
        state.augmented = TextDataset.from_rows([t for t, _, _ in self._pool],
                                                [label for _, label, _ in self._pool],
                                                source=source)
        state.augmented_sources = [i for _, _, i in self._pool]
