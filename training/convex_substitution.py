"""Adversarial training over convex combinations of synonyms' embeddings (ASCC).

Dong et al. (2021, "Towards Robustness Against Natural Language Word Substitutions", ICLR)
train against every substitution an attacker could make at once: each word's input embedding
may become any convex combination of the embeddings of the word and its synonyms, and an inner
maximisation looks for the combination that changes the prediction most. The hull contains
every swap a substitution attack drawing from the same synonym sets can make, so training
against it generalises to those attacks, where adversarial training on the few swaps a greedy
search happened to find does not.

Here, for each training batch:

1. every position whose word is one token and has single-token neighbours in the
   counter-fitted vectors (the sets TextFooler draws from: 50 neighbours, cosine >= 0.5 by
   default) gets weights over the word and those neighbours, starting uniform;
2. ``steps`` steps of gradient ascent on the weights' logits (each step scaled so the largest
   change at a position is ``step_size``) maximise KL(clean prediction || prediction on the
   combined embeddings);
3. the training loss is the clean cross-entropy plus ``beta`` times that KL at the weights
   found (the TRADES form, which ASCC uses).

Differences from the paper: ASCC adds an entropy term that pushes the weights towards a
single synonym and takes 10 Adam steps; here there is no entropy term and the steps are fewer
and normalised (cheaper on CPU). Words split into several tokens, and neighbours that are, are
left out, as are TextFooler's stopwords (which TextFooler never swaps) and, for tokenizers whose
word tokens depend on the preceding space, words at the start of a text. Cost: ``steps`` extra
forward and backward passes per batch, one forward pass without gradients for the clean
prediction the search moves away from, and the clean and combined rows run as one batch of
twice the size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from guard.errors import ConfigError
from guard.models.substitution_smoothing import close_neighbours

if TYPE_CHECKING:
    import numpy as np
    import torch
    from transformers import PreTrainedTokenizerBase


def _word_tokens(words: Sequence[str], tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """The words that the tokenizer reads, after a space, as exactly one token: word -> id."""
    encoded = tokenizer([" " + word for word in words], add_special_tokens=False)["input_ids"]
    return {word: ids[0] for word, ids in zip(words, encoded, strict=True) if len(ids) == 1}


@dataclass(frozen=True, eq=False)
class TokenSubstitutes:
    """Each vocabulary token's candidates: the token itself, then its synonyms' tokens.

    Attributes:
        ids: ``(vocab, width)`` token ids; row ``t`` starts with ``t``.
        valid: ``(vocab, width)`` which entries of ``ids`` are candidates (column 0 always).
        provenance: Where the synonym sets came from (for the manifest).
    """

    ids: torch.Tensor
    valid: torch.Tensor
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def substitutable(self) -> int:
        """How many tokens have at least one synonym."""
        return int(self.valid[:, 1:].any(dim=1).sum())

    def to(self, device: Any) -> TokenSubstitutes:
        """The same table on ``device`` (once, not per batch: it is vocab x width)."""
        return replace(self, ids=self.ids.to(device), valid=self.valid.to(device))

    @classmethod
    def from_neighbours(cls, words: Sequence[str], neighbours: np.ndarray, matrix: np.ndarray,
                        tokenizer: PreTrainedTokenizerBase, *, size: int, min_cos_sim: float,
                        protected: frozenset[str] = frozenset(),
                        provenance: Mapping[str, str] | None = None) -> TokenSubstitutes:
        """Candidates from word vectors' nearest neighbours, kept to single-token words.

        Args:
            words: The vectors' vocabulary (lower case), row order.
            neighbours: ``(len(words), >= size + 1)`` nearest rows, column 0 the word itself.
            matrix: The L2-normalised vectors.
            tokenizer: The model's tokenizer; its vocabulary size sets the table's rows.
            size: Neighbours considered per word.
            min_cos_sim: Least cosine of a neighbour that counts as a synonym.
            protected: Words never substituted (they keep only themselves).
            provenance: Where the vectors came from.

        Raises:
            ConfigError: For out-of-range settings or shapes that do not match.
        """
        import torch

        candidates, close = close_neighbours(words, neighbours, matrix, size=size,
                                             min_cos_sim=min_cos_sim)
        token_of = _word_tokens(words, tokenizer)
        rows: dict[int, list[int]] = {}
        for row, word in enumerate(words):
            token = token_of.get(word)
            if token is None or word in protected or not word.isalpha():
                continue
            synonyms = [token_of[words[c]] for c, ok in zip(candidates[row], close[row],
                                                           strict=True)
                        if ok and words[c] in token_of and token_of[words[c]] != token]
            if synonyms:
                rows[token] = [token, *dict.fromkeys(synonyms)]
        vocab_size = len(tokenizer)
        width = max((len(r) for r in rows.values()), default=1)
        ids = torch.arange(vocab_size).unsqueeze(1).repeat(1, width)
        valid = torch.zeros(vocab_size, width, dtype=torch.bool)
        valid[:, 0] = True
        for token, row_ids in rows.items():
            ids[token, : len(row_ids)] = torch.tensor(row_ids)
            valid[token, : len(row_ids)] = True
        return cls(ids=ids, valid=valid, provenance=dict(provenance or {}))


def whole_word_positions(encoding: Any) -> torch.Tensor:
    """``(batch, length)`` booleans: the tokens that are a whole word on their own.

    Args:
        encoding: A fast tokenizer's batch output (it knows each token's word).

    Raises:
        ConfigError: For a slow tokenizer's output, which does not.
    """
    import torch

    if not getattr(encoding, "is_fast", False):
        raise ConfigError("ASCC needs a fast tokenizer (one that maps tokens to words)")
    length = encoding["input_ids"].shape[1]
    mask = torch.zeros(len(encoding["input_ids"]), length, dtype=torch.bool)
    for row in range(mask.shape[0]):
        word_ids = encoding.word_ids(row)
        counts: dict[int, int] = {}
        for word in word_ids:
            if word is not None:
                counts[word] = counts.get(word, 0) + 1
        for position, word in enumerate(word_ids):
            mask[row, position] = word is not None and counts[word] == 1
    return mask.to(encoding["input_ids"].device)


@dataclass(frozen=True, eq=False)
class ConvexSubstitutionAdversary:
    """The ASCC training loss (see the module docstring).

    Attributes:
        substitutes: The candidate table.
        steps: Gradient-ascent steps on the combination weights.
        step_size: Largest change of a position's weight logits per step.
        beta: Weight of the KL term beside the clean cross-entropy.
    """

    substitutes: TokenSubstitutes
    steps: int = 3
    step_size: float = 2.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"ASCC needs at least one step, got {self.steps}")
        if self.step_size <= 0 or self.beta < 0:
            raise ConfigError(f"ASCC needs step_size > 0 and beta >= 0, got "
                              f"{self.step_size} and {self.beta}")

    def candidates(self, encoding: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(batch, length, width)`` candidate ids of each position and which are allowed."""
        import torch

        ids = encoding["input_ids"]
        table = self.substitutes.ids.to(ids.device)  # no copy once built on the model's device
        allowed = self.substitutes.valid.to(ids.device)[ids]
        first = torch.zeros(allowed.shape[-1], dtype=torch.bool, device=ids.device)
        first[0] = True
        allowed = allowed & (whole_word_positions(encoding).unsqueeze(-1) | first)
        return table[ids], allowed

    def worst_weights(self, model: Any, encoding: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Search for the combination that moves the prediction most.

        Args:
            model: The classifier (in whatever train or eval mode the caller set).
            encoding: The tokenized batch (a fast tokenizer's output).

        Returns:
            ``(batch, length, width)`` candidate ids and the weights found over them (rows sum
            to 1; a position without synonyms keeps weight 1 on its own token).
        """
        import torch
        from torch.nn import functional

        candidate_ids, allowed = self.candidates(encoding)
        mask, token_types = encoding["attention_mask"], encoding.get("token_type_ids")
        lowest = torch.finfo(torch.float32).min
        with torch.no_grad():
            vectors = model.get_input_embeddings()(candidate_ids)
            clean_probs = model(**encoding).logits.softmax(-1)
        logits = torch.zeros(allowed.shape, device=mask.device)
        for _ in range(self.steps):
            with torch.enable_grad():  # the search needs gradients even under no_grad
                logits.requires_grad_(True)
                weights = logits.masked_fill(~allowed, lowest).softmax(-1)
                out = model(inputs_embeds=combine(vectors, weights), attention_mask=mask,
                            token_type_ids=token_types)
                divergence = functional.kl_div(out.logits.log_softmax(-1), clean_probs,
                                      reduction="batchmean")
                (grad,) = torch.autograd.grad(divergence, logits)
            scale = grad.abs().amax(-1, keepdim=True).clamp_min(1e-12)
            logits = logits.detach() + self.step_size * grad / scale
        return candidate_ids, logits.masked_fill(~allowed, lowest).softmax(-1)

    def loss(self, model: Any, forward: Any, encoding: Any,
             targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The training loss and the clean logits.

        Args:
            model: The classifier (its input embeddings are read; the search runs through it).
            forward: What the training forward pass runs through (``model``, or its DDP
                wrapper): it sees the clean and the combined rows as one batch.
            encoding: The tokenized batch (a fast tokenizer's output).
            targets: Label ids.
        """
        import torch
        from torch.nn import functional

        candidate_ids, weights = self.worst_weights(model, encoding)
        embed = model.get_input_embeddings()
        mask, token_types = encoding["attention_mask"], encoding.get("token_type_ids")
        rows = len(targets)
        inputs = torch.cat([embed(encoding["input_ids"]),
                            combine(embed(candidate_ids), weights)])
        out = forward(inputs_embeds=inputs, attention_mask=torch.cat([mask, mask]),
                      token_type_ids=None if token_types is None
                      else torch.cat([token_types, token_types]))
        clean_logits, adversarial_logits = out.logits[:rows], out.logits[rows:]
        loss = functional.cross_entropy(clean_logits, targets) + self.beta * functional.kl_div(
            adversarial_logits.log_softmax(-1), clean_logits.softmax(-1), reduction="batchmean")
        return loss, clean_logits


def combine(vectors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(batch, length, hidden)`` input embeddings: each position's weighted candidates.

    Args:
        vectors: ``(batch, length, width, hidden)`` the candidates' embeddings.
        weights: ``(batch, length, width)`` their weights.
    """
    return (weights.unsqueeze(-1) * vectors).sum(-2)
