"""Hugging Face causal language models behind the :class:`guard.types.Generator` protocol."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from guard.errors import ConfigError
from guard.models.source import ModelSource, load_pretrained, pick_device, resolve_model

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class HFGenerator:
    """A causal LM that completes prompts in batches (left-padded, greedy unless told otherwise).

    Args:
        model: A ``transformers`` causal-LM model.
        tokenizer: Its tokenizer. A tokenizer without a pad token pads with its EOS token.
        max_new_tokens: Most tokens generated per prompt.
        batch_size: Prompts per ``generate`` call.
        do_sample: Sample instead of greedy decoding.
        temperature: Sampling temperature (only with ``do_sample``).
        seed: Seed for sampling, so the same prompts give the same completions.
        source: Where the model came from (recorded in results).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_new_tokens: int = 48,
        batch_size: int = 8,
        do_sample: bool = False,
        temperature: float = 1.0,
        seed: int = 0,
        source: ModelSource | None = None,
    ) -> None:
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ConfigError(
                    "the tokenizer has neither a pad token nor an EOS token; set "
                    "tokenizer.pad_token before wrapping it"
                )
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # decoder-only models continue from the last position
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.do_sample = do_sample
        self.temperature = temperature
        self.seed = seed
        self.source = source

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path,
        *,
        device: str = "auto",
        revision: str | None = None,
        trust_remote_code: bool = False,
        **options: Any,
    ) -> Self:
        """Load a generator from a local folder or a hub id.

        Args:
            model: A local folder or a hub id.
            device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
            revision: Hub revision to pin.
            trust_remote_code: Run code shipped with a hub model. Off unless you trust its author.
            **options: Passed to the constructor (``max_new_tokens``, ``batch_size``, ...).

        Raises:
            ModelNotFoundError: If the model cannot be found or loaded.
        """
        from transformers import AutoModelForCausalLM

        source = resolve_model(model, revision=revision)
        tokenizer, net = load_pretrained(AutoModelForCausalLM, source,
                                         what="a causal language model",
                                         trust_remote_code=trust_remote_code)
        net.to(pick_device(device))
        return cls(net, tokenizer, source=source, **options)

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """Complete each prompt; returns only the new text, in input order."""
        import torch

        completions: list[str] = []
        generator_seed = torch.Generator().manual_seed(self.seed)
        for start in range(0, len(prompts), self.batch_size):
            batch = self.tokenizer(
                list(prompts[start : start + self.batch_size]),
                padding=True,
                return_tensors="pt",
            ).to(self.model.device)
            sampling: dict[str, Any] = {"do_sample": self.do_sample}
            if self.do_sample:
                sampling["temperature"] = self.temperature
                torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator_seed)))
            with torch.inference_mode():
                output = self.model.generate(
                    **batch,
                    max_new_tokens=self.max_new_tokens,
                    pad_token_id=self.tokenizer.pad_token_id,
                    **sampling,
                )
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            completions.extend(self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return completions
