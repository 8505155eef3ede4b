"""The output guard: normalise -> score -> policy -> allow | redact | block. Fails closed.

Serving code checks model outputs before a user sees them::

    from guard import OutputGuard

    guard = OutputGuard.default()
    [decision] = guard.check(["you are an idiot"])
    decision.allowed, decision.action, decision.text   # False, 'block', safe message

A scorer that raises, hangs past ``deadline_s``, or returns scores that are missing a declared
category, non-finite or not real numbers, and an input longer than ``max_chars`` or not a string,
all block by default; the decision says why. Calling :meth:`OutputGuard.check` with something that
is neither a string nor a sequence of strings (``None``, a number, ``bytes``) is a usage error
(:class:`guard.errors.UsageError`), raised whatever ``on_error`` says.
"""

from __future__ import annotations

import asyncio
import functools
import re
import warnings
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

from guard.deadline import DeadlineRunner
from guard.errors import ConfigError, GuardCheckError, GuardError, UsageError
from guard.normalize import Normalized, normalize
from guard.policy import Policy
from guard.scorers.base import CompositeScorer, Scorer, Scores, check_scores

if TYPE_CHECKING:
    from guard.batching import MicroBatcher

P = ParamSpec("P")
T = TypeVar("T")

ErrorMode = Literal["block", "allow", "raise"]
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_OCCLUSION_ROUNDS = 3
_OCCLUSION_MAX_WORDS = 64


def _without(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the characters of ``spans`` removed."""
    out, last = [], 0
    for a, b in sorted(spans):
        out.append(text[last:a])
        last = b
    out.append(text[last:])
    return "".join(out)


@dataclass(frozen=True)
class GuardDecision:
    """The verdict on one text.

    Attributes:
        allowed: Whether the text (possibly redacted) may be shown.
        action: ``allow``, ``redact`` or ``block``.
        text: What to show: the original, the redacted text, or the safe message.
        scores: Category -> score in [0, 1] (empty when scoring failed).
        reasons: Why, one line per violated category or failure.
        error: The failure that decided it (scorer error, deadline, bad input), else ``None``.
    """

    allowed: bool
    action: Literal["allow", "redact", "block"]
    text: str
    scores: dict[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    error: str | None = None


class OutputGuard:
    """Checks texts against a policy with one or more scorers.

    Args:
        scorers: A scorer or several (combined by maximum per category).
        policy: Thresholds and actions; default: block at 0.5 in every category. A rule for a
            category the scorer does not score is refused (a typo would never apply).
        on_error: ``"block"`` (default: fail closed), ``"allow"`` (fail open, with a warning)
            or ``"raise"`` (raise :class:`GuardCheckError` into the caller).
        deadline_s: Longest a scoring call may take; past it the batch fails (closed by
            default) and the call is abandoned in its thread. ``None``: no deadline, scoring
            runs in the caller's thread.
        max_abandoned: With a deadline, how many abandoned scoring calls may still be running
            before later checks fail at once (closed by default) instead of starting another
            thread; they are accepted again as soon as the hung calls return.
        max_chars: Longer inputs are not scored and fail (closed by default).
        normalize: Undo evasion (leetspeak, look-alikes, zero-width characters, spacing) before
            scoring.
    """

    _batcher: MicroBatcher | None = None  # attached by with_batcher, detached when closed

    def __init__(
        self,
        scorers: Scorer | Sequence[Scorer],
        policy: Policy | None = None,
        *,
        on_error: ErrorMode = "block",
        deadline_s: float | None = None,
        max_abandoned: int = 2,
        max_chars: int = 20_000,
        normalize: bool = True,
    ) -> None:
        if on_error not in ("block", "allow", "raise"):
            raise ConfigError(f"on_error must be 'block', 'allow' or 'raise', got {on_error!r}")
        if deadline_s is not None and deadline_s <= 0:
            raise ConfigError(f"deadline_s must be positive, got {deadline_s}")
        if max_abandoned < 1:
            raise ConfigError(f"max_abandoned must be >= 1, got {max_abandoned}")
        if max_chars < 1:
            raise ConfigError(f"max_chars must be >= 1, got {max_chars}")
        members = [scorers] if isinstance(scorers, Scorer) else list(scorers)
        if not members:
            raise ConfigError("OutputGuard needs at least one scorer")
        self.scorer: Scorer = members[0] if len(members) == 1 else CompositeScorer(members)
        if not tuple(self.scorer.categories):
            raise ConfigError(f"scorer {type(self.scorer).__name__} declares no categories: "
                              "a guard cannot judge with it")
        self.policy = Policy() if policy is None else policy
        self.policy.check_categories(self.scorer.categories)
        self.on_error = on_error
        self.deadline_s = deadline_s
        self.max_chars = max_chars
        self.normalize = normalize
        self._runner = (None if deadline_s is None
                        else DeadlineRunner(deadline_s, max_abandoned=max_abandoned))
        if on_error == "allow":
            warnings.warn("OutputGuard(on_error='allow') lets text through when scoring fails",
                          stacklevel=2)

    @classmethod
    def default(cls, policy: Policy | None = None, **options: Any) -> OutputGuard:
        """A guard with the embedded offline scorer (``harm-minilm``) and its thresholds.

        Args:
            policy: Thresholds and actions; default: the scorer's recommended per-category
                thresholds (chosen for at most 2% false positives on benign chat).
            **options: Passed to :class:`OutputGuard` (``on_error``, ``deadline_s``, ...).
        """
        from guard.scorers import DEFAULT_SCORER, build_scorer, recommended_policy

        scorer = build_scorer(DEFAULT_SCORER)
        return cls(scorer, recommended_policy(scorer) if policy is None else policy, **options)

    # -- scoring -------------------------------------------------------------------------

    def _score(self, texts: list[str]) -> Scores:
        if self._runner is None:
            raw = self.scorer.score(texts)
        else:
            raw = self._runner.run(functools.partial(self.scorer.score, texts))
        return check_scores(raw, len(texts), self.scorer.categories)

    def _failure(self, text: str, reason: str) -> GuardDecision:
        if self.on_error == "raise":
            raise GuardCheckError(reason)
        if self.on_error == "allow":
            warnings.warn(f"output guard failed open: {reason}", stacklevel=3)
            return GuardDecision(True, "allow", text, {}, (f"failed open: {reason}",), reason)
        return GuardDecision(False, "block", self.policy.safe_message, {},
                             (f"failed closed: {reason}",), reason)

    # -- the decision ----------------------------------------------------------------------

    def check(self, texts: str | Sequence[str]) -> list[GuardDecision]:
        """Decide on each text; one decision per input, in order.

        Args:
            texts: A string or a sequence of strings. A non-string item in a sequence fails
                (closed by default); its decision says so.

        Returns:
            One decision per text, in order.

        Raises:
            UsageError: ``texts`` is neither a string nor a sequence of strings (``None``, a
                number, ``bytes``, a mapping), whatever ``on_error`` says.
            GuardCheckError: Scoring failed and ``on_error="raise"``.
        """
        batch = _as_batch(texts)
        decisions: list[GuardDecision | None] = [None] * len(batch)
        pending: list[tuple[int, str, Normalized]] = []
        for i, text in enumerate(batch):
            if not isinstance(text, str):
                decisions[i] = self._failure("", f"input {i} is {type(text).__name__}, not str")
            elif len(text) > self.max_chars:
                decisions[i] = self._failure(
                    text, f"input has {len(text)} characters, more than max_chars "
                          f"{self.max_chars}")
            else:
                try:
                    norm = normalize(text) if self.normalize else Normalized(
                        text, tuple(range(len(text))))
                except Exception as exc:  # any failure must fail closed
                    decisions[i] = self._failure(text, f"normalisation failed: {exc!r}")
                    continue
                pending.append((i, text, norm))
        if pending:
            try:
                scores = self._score([norm.text for _, _, norm in pending])
            except Exception as exc:  # the scorer is the caller's code
                for i, text, _ in pending:
                    decisions[i] = self._failure(text, f"scorer failed: {exc!r}"[:500])
            else:
                self._decide(pending, scores, decisions)
        return [d for d in decisions if d is not None]

    def _decide(self, pending: list[tuple[int, str, Normalized]], scores: Scores,
                decisions: list[GuardDecision | None]) -> None:
        to_redact: list[tuple[int, str, Normalized, dict[str, float], tuple[str, ...]]] = []
        for row, (i, text, norm) in enumerate(pending):
            item = {category: float(values[row]) for category, values in scores.items()}
            violated = [(c, s) for c, s in item.items() if s >= self.policy.rule(c).threshold]
            if not violated:
                decisions[i] = GuardDecision(True, "allow", text, item)
                continue
            reasons = tuple(
                f"{c} {s:.2f} >= {self.policy.rule(c).threshold:.2f} "
                f"({self.policy.rule(c).action})" for c, s in violated)
            if any(self.policy.rule(c).action == "block" for c, _ in violated):
                decisions[i] = GuardDecision(False, "block", self.policy.safe_message, item,
                                             reasons)
            else:
                to_redact.append((i, text, norm, item, reasons))
        if to_redact:
            self._redact(to_redact, decisions)

    def _redact(self, items: list[tuple[int, str, Normalized, dict[str, float], tuple[str, ...]]],
                decisions: list[GuardDecision | None]) -> None:
        """Mask the words to blame; if none can be found, replace the text.

        A word is to blame when it violates a redacting category on its own (what a lexical
        scorer sees). For a contextual scorer, where single words rarely score like the
        sentence, the words are found by occlusion instead (:meth:`_blame_by_occlusion`).
        """
        words = [[m.span() for m in _WORD.finditer(norm.text)] for _, _, norm, _, _ in items]
        flat = [norm.text[a:b] for (_, _, norm, _, _), spans in zip(items, words, strict=True)
                for a, b in spans]
        try:
            word_scores = self._score(flat) if flat else {}
        except Exception as exc:  # a failed redaction blocks instead
            for i, text, _, _, _ in items:
                decisions[i] = self._failure(text, f"scorer failed while redacting: {exc!r}")
            return
        offset = 0
        for (i, text, norm, item, reasons), spans in zip(items, words, strict=True):
            masked: list[tuple[int, int]] = []
            for k, (a, b) in enumerate(spans):
                if any(word_scores[c][offset + k] >= self.policy.rule(c).threshold
                       for c in item if self.policy.rule(c).action == "redact"):
                    masked.append(norm.original_span(a, b))
            offset += len(spans)
            if not masked:
                try:
                    blamed = self._blame_by_occlusion(norm.text, spans)
                except Exception as exc:  # a failed redaction blocks instead
                    decisions[i] = self._failure(text, f"scorer failed while redacting: {exc!r}")
                    continue
                masked = [norm.original_span(*spans[k]) for k in blamed]
            if not masked:
                decisions[i] = GuardDecision(False, "redact", self.policy.safe_message, item,
                                             (*reasons, "no single word to mask: replaced"))
                continue
            pieces, last = [], 0
            for a, b in sorted(masked):
                if a < last:
                    continue
                pieces += [text[last:a], self.policy.mask]
                last = b
            pieces.append(text[last:])
            decisions[i] = GuardDecision(True, "redact", "".join(pieces), item,
                                         (*reasons, f"masked {len(masked)} word(s)"))

    def _blame_by_occlusion(self, text: str, spans: list[tuple[int, int]]) -> list[int]:
        """The fewest words (at most :data:`_OCCLUSION_ROUNDS`) whose removal clears ``text``.

        Greedy: each round removes the word whose removal lowers the worst score-to-threshold
        ratio most, until no category is violated. Empty when that takes more rounds, or the
        text has more than :data:`_OCCLUSION_MAX_WORDS` words: the caller then replaces it.
        """
        if not spans or len(spans) > _OCCLUSION_MAX_WORDS:
            return []
        removed: list[int] = []
        for _ in range(_OCCLUSION_ROUNDS):
            candidates = [k for k in range(len(spans)) if k not in removed]
            if not candidates:
                return []
            variants = [_without(text, [spans[j] for j in (*removed, k)]) for k in candidates]
            scores = self._score(variants)
            worst = [max(scores[c][row] / max(self.policy.rule(c).threshold, 1e-12)
                         for c in scores) for row in range(len(variants))]
            best = min(range(len(candidates)), key=worst.__getitem__)
            removed.append(candidates[best])
            if worst[best] < 1.0:
                return sorted(removed)
        return []

    # -- serving ---------------------------------------------------------------------------

    def filter_output(self, output: Any) -> Any:
        """Replace every text in a model output by the text the guard allows.

        Handles a string, a list of strings, and Hugging Face pipeline outputs (dicts with
        ``generated_text``, ``summary_text`` or ``translation_text``, possibly nested in lists).

        Raises:
            GuardError: For an output with no text the guard knows how to find.
        """
        texts: list[str] = []
        _collect_texts(output, texts)
        decisions = iter(self.check(texts))
        return _replace_texts(output, decisions)

    def wrap(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Wrap a callable (a generate function, a pipeline) so its outputs are checked first."""

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            result: T = self.filter_output(fn(*args, **kwargs))
            return result

        return guarded

    def stream(self, chunks: Iterable[str], *, tokens: int | None = None,
               max_segment_chars: int = 2_000, lookbehind_chars: int = 200) -> GuardedStream:
        """Check a stream of text chunks segment by segment; stop at a blocked segment.

        Segments end at sentence boundaries (``.``, ``!``, ``?`` followed by space, or a
        newline), or every ``tokens`` whitespace-separated tokens when given, and are never
        longer than ``max_segment_chars``. Each segment is released only once it is checked;
        text still held back is never released unchecked.

        **Look-behind.** A harmful phrase split over two segments ("you are a nasty " +
        "piece of work") is caught: each new segment is checked twice in one scoring call, on
        its own and joined to the last ``lookbehind_chars`` characters already released (the
        window starts at a white space so that no word is cut in two, unless the window holds
        no white space at all, as after a hard cut inside a long run). The segment is released
        only if both pass: the first catches a harmful segment that benign context would
        dilute, the second a phrase across the boundary. The window is bounded, so work stays
        linear in the length of the stream.

        **Redaction.** Released text cannot be taken back. When the joined text violates only
        ``redact`` categories, the guard redacts the joined text (the segment already carrying
        its own masks): if every masked word lies in the new segment, the segment is released
        with those words masked and the stream goes on; if a word to blame lies (even partly)
        in the released text, or no word can be blamed, masking the segment cannot make the
        whole safe, so the stream ends with the safe message, as on a block.

        **Ending and closing.** On a block, a replaced segment, a non-string chunk or a failed
        check (the guard fails closed, see ``on_error``) the stream yields the safe message
        (or what ``on_error`` says) and ends. A source with ``close()`` (a generator, or an
        object that stops a background generation thread when closed, such as a streamer
        wrapper) is closed as soon as the stream ends, blocks or is abandoned: before the safe
        message is handed out, when the source is exhausted, when the source or the check
        raises (the exception then propagates; held-back text is dropped), and when the
        consumer calls :meth:`GuardedStream.close`, leaves a ``with`` block or drops the
        stream, even before its first item. Both ``chunks`` and ``iter(chunks)`` are closed
        when they differ.

        Args:
            chunks: The text as it arrives (tokens, words, lines).
            tokens: End segments every this many tokens instead of at sentence ends.
            max_segment_chars: A segment that grows past this many characters without ending
                is checked and released (or blocked) at the last space before the limit, or at
                the limit when it has none, so the held-back text stays bounded.
            lookbehind_chars: How much released text each segment is checked together with;
                ``0`` checks segments on their own. The window shrinks where it would make the
                joined text longer than ``max_chars``.

        Returns:
            An iterator of the texts to show, in order; close it to stop the source early.

        Raises:
            ConfigError: ``tokens`` or ``max_segment_chars`` is below 1, or
                ``lookbehind_chars`` below 0 (raised by this call, not on iteration).
        """
        return self._guarded_stream(chunks, tokens, max_segment_chars, lookbehind_chars)

    def _guarded_stream(self, chunks: Iterable[str], tokens: int | None,
                        max_segment_chars: int, lookbehind_chars: int) -> GuardedStream:
        """Check the stream options and hold the segmenter and look-behind state."""
        if tokens is not None and tokens < 1:
            raise ConfigError(f"tokens must be >= 1, got {tokens}")
        if max_segment_chars < 1:
            raise ConfigError(f"max_segment_chars must be >= 1, got {max_segment_chars}")
        if lookbehind_chars < 0:
            raise ConfigError(f"lookbehind_chars must be >= 0, got {lookbehind_chars}")
        return GuardedStream(self, chunks, segmenter=_Segmenter(tokens, max_segment_chars),
                             lookbehind_chars=lookbehind_chars)

    # -- async -----------------------------------------------------------------------------

    def with_batcher(self, *, max_batch: int = 32, max_wait_ms: float = 5.0) -> MicroBatcher:
        """Attach a :class:`~guard.batching.MicroBatcher` to batch concurrent async checks.

        :meth:`acheck` and :meth:`astream` then coalesce concurrent checks into single
        scoring calls (see :mod:`guard.batching`). Closing the batcher
        (``await batcher.aclose()``) detaches it again.

        Args:
            max_batch: Most texts in one scoring call.
            max_wait_ms: Longest a text waits for others to join its batch, in milliseconds.

        Returns:
            The attached batcher.

        Raises:
            UsageError: An open batcher is already attached.
            ConfigError: ``max_batch`` or ``max_wait_ms`` is out of range.
        """
        from guard.batching import MicroBatcher

        if self._batcher is not None and not self._batcher.closed:
            raise UsageError("this guard already has an open batcher; close it first")
        self._batcher = MicroBatcher(self, max_batch=max_batch, max_wait_ms=max_wait_ms)
        return self._batcher

    @property
    def batcher(self) -> MicroBatcher | None:
        """The open batcher attached with :meth:`with_batcher`, if any."""
        batcher = self._batcher
        return batcher if batcher is not None and not batcher.closed else None

    async def acheck(self, texts: str | Sequence[str]) -> list[GuardDecision]:
        """:meth:`check` for async code: scoring runs off the event loop.

        Without a batcher, :meth:`check` runs in the loop's default thread pool; with one
        attached (:meth:`with_batcher`), the texts are batched with concurrent requests. The
        decisions are exactly :meth:`check`'s (same validation, policy, deadline, failures).

        Args:
            texts: A string or a sequence of strings.

        Returns:
            One decision per text, in order.

        Raises:
            UsageError: ``texts`` is neither a string nor a sequence of strings, whatever
                ``on_error`` says.
            GuardCheckError: Scoring failed and ``on_error="raise"``.
        """
        batch = _as_batch(texts)
        batcher = self._batcher
        if batcher is not None and not batcher.closed:
            return await batcher.check(batch)
        return await asyncio.to_thread(self.check, batch)

    def astream(self, chunks: AsyncIterable[str] | Iterable[str], *, tokens: int | None = None,
                max_segment_chars: int = 2_000,
                lookbehind_chars: int = 200) -> AsyncGuardedStream:
        """:meth:`stream` for async code: check a stream of chunks segment by segment.

        Same segments, look-behind, redaction and failures as :meth:`stream` (the same code
        decides); each check goes through :meth:`acheck`, so through the batcher when one is
        attached. A sync iterable is advanced in a worker thread, so a blocking source (a
        streamer waiting on its generation thread) does not block the loop.

        The source is closed (``aclose()`` for an async source, ``close()`` for a sync one;
        both the iterable and its iterator when they differ) before the safe message is
        handed out, when it is exhausted, when it or a check raises, and when the consumer
        stops early: ``await stream.aclose()`` or ``contextlib.aclosing``; a stream dropped
        while running is closed by the event loop's async-generator finaliser, and one dropped
        before its first item closes a sync source at once. A sync source cancelled while its
        ``next()`` blocks in the worker thread is closed as soon as that ``next()`` returns.

        Args:
            chunks: The text as it arrives, async or sync.
            tokens: End segments every this many tokens instead of at sentence ends.
            max_segment_chars: Longest segment, in characters.
            lookbehind_chars: How much released text each segment is checked together with.

        Returns:
            An async iterator of the texts to show, in order; its ``stopped`` is the decision
            that ended it early, as :attr:`GuardedStream.stopped`.

        Raises:
            ConfigError: An option is out of range (raised by this call, not on iteration).
        """
        # a sync stream holds the segmenter and the look-behind state, and a sync source
        is_async = isinstance(chunks, AsyncIterable)
        state = self._guarded_stream(() if is_async else chunks,  # type: ignore[arg-type]
                                     tokens, max_segment_chars, lookbehind_chars)
        return AsyncGuardedStream(
            self._astream(chunks if is_async else None, state), state)  # type: ignore[arg-type]

    async def _astream(self, chunks: AsyncIterable[str] | None,
                       state: GuardedStream) -> AsyncGenerator[str, None]:
        """The body of :meth:`astream`: ``GuardedStream.__next__``'s loop, awaiting.

        ``chunks`` is the async source, or ``None`` when ``state`` holds a sync one.
        """
        loop = asyncio.get_running_loop()
        iterator: Any = None if chunks is None else aiter(chunks)
        pull: asyncio.Future[Any] | None = None  # a sync source's next(), in a worker thread
        closed = False

        async def close_source() -> None:
            nonlocal closed
            if closed:
                return
            closed = True
            if chunks is None:
                if pull is not None and not pull.done():  # next() is still running: close after
                    pull.add_done_callback(lambda _: state._close_source())
                else:
                    state._close_source()
                return
            for obj in (iterator,) if chunks is iterator else (iterator, chunks):
                close = getattr(obj, "aclose", None) or getattr(obj, "close", None)
                if close is not None:
                    result = close()
                    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                        await result

        segments = state._segments
        try:
            while True:
                if segments:
                    plan = state._plan(segments.popleft())
                    texts = next(plan)
                    while True:
                        try:
                            texts = plan.send(await self.acheck(texts))
                        except StopIteration as stop:
                            text, ended_by = stop.value
                            break
                    if ended_by is not None:
                        state._stop(ended_by)
                        await close_source()  # stop the generation before the safe message
                        yield text
                        return
                    state._remember(text)
                    yield text
                    continue
                if closed:  # exhausted and flushed
                    return
                if chunks is None:
                    pull = loop.run_in_executor(None, next, state._iterator, _END)
                    chunk = await asyncio.shield(pull)  # a cancel leaves next() to finish
                    pull = None
                else:
                    chunk = await anext(iterator, _END)
                if chunk is _END:
                    await close_source()
                    rest = state._segmenter.flush()
                    if rest:
                        segments.append(rest)
                elif not isinstance(chunk, str):
                    await close_source()
                    failure = self._failure("", f"stream chunk is {type(chunk).__name__}, not str")
                    state._stop(failure)
                    yield failure.text
                    return
                else:
                    segments.extend(state._segmenter.feed(chunk))
        finally:
            segments.clear()
            state._segmenter.flush()
            await close_source()

    def close(self) -> None:
        """Release resources (none are held: each call under a deadline has its own thread).

        Kept so a guard can be used in a ``with`` block and closed like other clients.
        """

    def __enter__(self) -> OutputGuard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _as_batch(texts: Any) -> list[Any]:
    """``texts`` as a list; raise :class:`UsageError` for anything but a str or a sequence."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray, memoryview)):
        raise UsageError(f"check() takes str or a sequence of str, got {type(texts).__name__}; "
                         "decode bytes first (e.g. data.decode('utf-8'))")
    if texts is None or isinstance(texts, Mapping) or not isinstance(texts, Iterable):
        raise UsageError(f"check() takes str or a sequence of str, got {type(texts).__name__}")
    return list(texts)


class _Segmenter:
    """Cuts a growing text into segments of at most ``limit`` characters.

    Each search for a segment end stops at the limit, and a segment is cut by position, not by
    copying the rest of the buffer, so a long chunk costs time linear in its length.

    Args:
        tokens: Segment length in whitespace-separated tokens; ``None``: sentence ends.
        limit: Longest segment in characters.
    """

    def __init__(self, tokens: int | None, limit: int) -> None:
        self.tokens = tokens
        self.limit = limit
        self._buffer = ""
        self._start = 0  # where the current segment starts in the buffer
        self._scanned = 0  # buffer position up to which a segment end was searched for
        self._count = 0  # tokens completed in the current segment (token mode)
        self._in_token = False

    def feed(self, chunk: str) -> list[str]:
        """Add ``chunk``; return the segments it completes."""
        self._buffer = self._buffer[self._start:] + chunk
        self._scanned -= self._start
        self._start = 0
        segments: list[str] = []
        while True:
            bound = min(len(self._buffer), self._start + self.limit)
            end = self._next_end(bound)
            if end is None and len(self._buffer) - self._start > self.limit:
                space = self._buffer.rfind(" ", self._start, bound)
                end = space + 1 if space > self._start else bound
            if end is None:
                return segments
            segments.append(self._cut(end))

    def flush(self) -> str:
        """What is left at the end of the stream."""
        rest = self._buffer[self._start:]
        self._buffer = ""
        self._start = self._scanned = self._count = 0
        self._in_token = False
        return rest

    def _cut(self, end: int) -> str:
        segment = self._buffer[self._start:end]
        self._start = self._scanned = end
        self._count = 0
        self._in_token = False
        return segment

    def _next_end(self, bound: int) -> int | None:
        """The end of the current segment if it lies at or before ``bound``, else ``None``."""
        if self.tokens is None:
            # the look-behind sees a sentence mark just before the scan position
            match = _SENTENCE_END.search(self._buffer, self._scanned, bound)
            if (match is not None and match.start() == self._start > 0
                    and self._buffer[self._start] != "\n"):
                # the mark ended the previous (hard-cut) segment: this white space opens
                # the current one
                match = _SENTENCE_END.search(self._buffer, self._start + 1, bound)
            if match is None:
                self._scanned = bound
                return None
            return match.end()
        for i in range(self._scanned, bound):
            space = self._buffer[i].isspace()
            if space and self._in_token:
                self._count += 1
            elif not space and not self._in_token and self._count == self.tokens:
                self._scanned = i
                return i  # the segment keeps the whitespace after its last token
            self._in_token = not space
        self._scanned = bound
        return None


_END = object()
_SPACE = re.compile(r"\s")


class GuardedStream(Iterator[str]):
    """The checked text of a stream, from :meth:`OutputGuard.stream`; see its docstring.

    Iterate it for the texts to show. :meth:`close` (also called on leaving a ``with`` block
    and when the stream is dropped) stops it and closes the source. Not thread-safe: one
    consumer at a time.

    Attributes:
        stopped: The decision that ended the stream early (a block, a replaced segment, a
            failure, a non-string chunk), set before the safe message is handed out; ``None``
            while the stream goes on and when it ran to its end.
    """

    def __init__(self, guard: OutputGuard, chunks: Iterable[str], *, segmenter: _Segmenter,
                 lookbehind_chars: int) -> None:
        self._closed = True  # until the source is held, there is nothing to close
        self._guard = guard
        self._source: object = chunks
        self._iterator = iter(chunks)
        self._segmenter = segmenter
        self._lookbehind = lookbehind_chars
        self._segments: deque[str] = deque()  # cut, not yet checked
        self._released = ""  # the last lookbehind_chars + 1 characters released
        self._exhausted = False
        self._finished = False
        self._closed = False
        self.stopped: GuardDecision | None = None

    def __iter__(self) -> GuardedStream:
        return self

    def __next__(self) -> str:
        try:
            while not self._finished:
                if self._segments:
                    text, ended_by = self._check(self._segments.popleft())
                    if ended_by is None:
                        self._remember(text)
                    else:
                        self._stop(ended_by)
                        self.close()  # stop the generation before the safe message is out
                    return text
                if self._exhausted:
                    self.close()
                    break
                chunk = next(self._iterator, _END)
                if chunk is _END:
                    self._exhausted = True
                    self._close_source()
                    rest = self._segmenter.flush()
                    if rest:
                        self._segments.append(rest)
                elif not isinstance(chunk, str):
                    failure = self._guard._failure(
                        "", f"stream chunk is {type(chunk).__name__}, not str")
                    self._stop(failure)
                    self.close()
                    return failure.text
                else:
                    self._segments.extend(self._segmenter.feed(chunk))
        except BaseException:
            self.close()
            raise
        raise StopIteration

    def close(self) -> None:
        """End the stream: drop what is held back and close the source (at most once)."""
        if self._closed:
            return
        self._closed = self._finished = True
        self._segments.clear()
        self._segmenter.flush()
        self._close_source()

    def __enter__(self) -> GuardedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()

    def _close_source(self) -> None:
        iterator, source = self._iterator, self._source
        self._source = self._iterator = iter(())  # nothing is closed twice
        try:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        finally:
            close = getattr(source, "close", None) if source is not iterator else None
            if close is not None:
                close()

    def _window(self, segment: str) -> str:
        """The released text to check ``segment`` with: bounded, starting at a white space."""
        size = min(self._lookbehind, self._guard.max_chars - len(segment))
        tail = self._released
        if size <= 0:
            return ""
        if len(tail) <= size:  # everything released so far
            return tail
        cut = len(tail) - size
        window = tail[cut:]
        if tail[cut - 1].isspace() or window[0].isspace():
            return window
        space = _SPACE.search(window)
        return window if space is None else window[space.start():]

    def _remember(self, text: str) -> None:
        if self._lookbehind:
            self._released = (self._released + text)[-(self._lookbehind + 1):]

    def _check(self, segment: str) -> tuple[str, GuardDecision | None]:
        """What to release for ``segment``, and the decision that ends the stream, if any."""
        plan = self._plan(segment)
        texts = next(plan)
        while True:
            try:
                texts = plan.send(self._guard.check(texts))
            except StopIteration as stop:
                result: tuple[str, GuardDecision | None] = stop.value
                return result

    def _stop(self, decision: GuardDecision) -> None:
        if self.stopped is None:
            self.stopped = decision

    def _plan(self, segment: str
              ) -> Generator[list[str], list[GuardDecision], tuple[str, GuardDecision | None]]:
        """The look-behind decision for ``segment``, free of I/O (shared with ``astream``).

        Yields each batch of texts to check and is sent their decisions; returns what to
        release and the decision that ends the stream (``None``: it goes on).
        """
        guard = self._guard
        window = self._window(segment)
        if not window:
            [decision] = yield [segment]
            return decision.text, None if decision.allowed else decision
        own, joint = yield [segment, window + segment]
        if not own.allowed:
            return own.text, own
        if not joint.allowed:  # blocked across the boundary, or nothing to mask
            return joint.text, joint
        if joint.action == "allow":
            return own.text, None
        # the joined text violates only redacting categories
        if own.text != segment:  # judge the joined text with the segment's own masks
            [joint] = yield [window + own.text]
            if not joint.allowed:
                return joint.text, joint
            if joint.action == "allow":
                return own.text, None
        if joint.text.startswith(window):  # every masked word lies in the new segment
            return joint.text[len(window):], None
        # a word to blame was already released
        return guard.policy.safe_message, GuardDecision(
            False, "redact", guard.policy.safe_message, joint.scores,
            (*joint.reasons, "a word to mask was already released: stream ended"))


class AsyncGuardedStream(AsyncIterator[str]):
    """The checked text of a stream, from :meth:`OutputGuard.astream`; see its docstring.

    Iterate it with ``async for``; ``await stream.aclose()`` (or ``contextlib.aclosing``) stops
    it early and closes the source.
    """

    def __init__(self, texts: AsyncGenerator[str, None], state: GuardedStream) -> None:
        self._texts = texts
        self._state = state

    @property
    def stopped(self) -> GuardDecision | None:
        """The decision that ended the stream early, as :attr:`GuardedStream.stopped`."""
        return self._state.stopped

    def __aiter__(self) -> AsyncGuardedStream:
        return self

    async def __anext__(self) -> str:
        return await self._texts.__anext__()

    async def aclose(self) -> None:
        """Stop the stream and close its source."""
        await self._texts.aclose()


_TEXT_KEYS = ("generated_text", "summary_text", "translation_text")


def _collect_texts(output: Any, texts: list[str]) -> None:
    if isinstance(output, str):
        texts.append(output)
    elif isinstance(output, dict):
        keys = [k for k in _TEXT_KEYS if isinstance(output.get(k), str)]
        if not keys:
            raise GuardError(f"no text field ({', '.join(_TEXT_KEYS)}) in output {output!r:.80}")
        texts.extend(output[k] for k in keys)
    elif isinstance(output, (list, tuple)):
        for item in output:
            _collect_texts(item, texts)
    else:
        raise GuardError(f"cannot find text in an output of type {type(output).__name__}")


def _replace_texts(output: Any, decisions: Iterator[GuardDecision]) -> Any:
    if isinstance(output, str):
        return next(decisions).text
    if isinstance(output, dict):
        replaced = dict(output)
        for key in _TEXT_KEYS:
            if isinstance(output.get(key), str):
                replaced[key] = next(decisions).text
        return replaced
    items = [_replace_texts(item, decisions) for item in output]
    return tuple(items) if isinstance(output, tuple) else items


class GuardedGenerator:
    """A :class:`guard.types.Generator` whose completions pass through an :class:`OutputGuard`.

    Args:
        generator: Anything with ``generate(prompts) -> list[str]``.
        guard: The guard to check completions with.
    """

    def __init__(self, generator: Any, guard: OutputGuard) -> None:
        self.generator = generator
        self.guard = guard

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """Generate, then return what the guard allows for each completion."""
        return [d.text for d in self.guard.check(self.generator.generate(prompts))]
