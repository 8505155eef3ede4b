"""OutputGuard.stream on token streams: look-behind across segments, blocks, failures, closing."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator, Sequence
from typing import cast

import pytest

from guard import GuardCheckError, OutputGuard, Policy
from guard.errors import ConfigError
from guard.policy import CategoryRule
from guard.scorers.base import Scores
from guard.scorers.profanity import LinearProfanityScorer

SAFE = Policy().safe_message


class _Source:
    """A token source with ``close()``, like a streamer that stops its generation thread."""

    def __init__(self, chunks: Sequence[object]) -> None:
        self.chunks = list(chunks)
        self.produced = 0
        self.closed = False

    def __iter__(self) -> _Source:
        return self

    def __next__(self) -> str:
        if self.closed or self.produced == len(self.chunks):
            raise StopIteration
        self.produced += 1
        chunk = self.chunks[self.produced - 1]
        if isinstance(chunk, BaseException):
            raise chunk
        return cast(str, chunk)  # a test may slip in something else

    def close(self) -> None:
        self.closed = True


class _Recording:
    """A real scorer that remembers each text it scored; it may fail or hang at one call."""

    def __init__(self, inner: LinearProfanityScorer, *, fault_at: int | None = None,
                 fault: str = "raise") -> None:
        self.inner = inner
        self.categories = inner.categories
        self.seen: list[str] = []
        self.calls = 0
        self.fault_at = fault_at
        self.fault = fault
        self.hung = threading.Event()
        self.release = threading.Event()

    def score(self, texts: Sequence[str]) -> Scores:
        self.calls += 1
        if self.calls == self.fault_at:
            if self.fault == "raise":
                raise RuntimeError("scorer crashed")
            self.hung.set()
            self.release.wait(30)
        self.seen.extend(texts)
        return self.inner.score(texts)


@pytest.fixture(scope="module")
def profanity() -> LinearProfanityScorer:
    return LinearProfanityScorer()


@pytest.fixture
def guard(profanity: LinearProfanityScorer) -> OutputGuard:
    return OutputGuard(profanity)


def _words(text: str) -> list[str]:
    """``text`` as a streamer yields it: one word (with its trailing space) per chunk."""
    return [w + " " for w in text.split(" ")[:-1]] + [text.split(" ")[-1]]


# -- blocks: mid-stream, across a boundary, in the last segment --------------------------------

def test_a_block_mid_stream_ends_it_and_closes_the_source_first(guard: OutputGuard) -> None:
    source = _Source(["Welcome to ", "Neon Harbor. ", "The tour starts at noon. ",
                      "You are an ", "idiot. ", "More text. ", "And more."])
    out, closed_when_seen = [], []
    for text in guard.stream(source):
        out.append(text)
        closed_when_seen.append(source.closed)
    assert out == ["Welcome to Neon Harbor. ", "The tour starts at noon. ", SAFE]
    assert closed_when_seen == [False, False, True]  # stopped before the safe message was out
    assert source.produced == 5  # the generation did not run on


def test_a_generator_source_is_closed_at_a_block(guard: OutputGuard) -> None:
    produced, closed = [], []

    def tokens() -> Iterator[str]:
        try:
            for chunk in ["Hello there. ", "You are an ", "idiot. ", "Bye. ", "Bye again. "]:
                produced.append(chunk)
                yield chunk
        finally:
            closed.append(len(produced))

    stream = guard.stream(tokens())
    assert next(stream) == "Hello there. "
    assert next(stream) == SAFE
    assert closed == [3]  # closed while the consumer still holds the stream
    assert list(stream) == []


@pytest.mark.parametrize(("chunks", "options", "released"), [
    # "nasty" (0.39) and "piece of work" (0.23) pass alone; the phrase scores 0.54
    (_words("you are a nasty piece of work."), {"tokens": 4}, ["you are a nasty "]),
    # letters spaced over two segments: the normaliser joins them only when it sees both
    (_words("you are an i d i o t"), {"tokens": 4}, ["you are an i "]),
    # a hard cut inside a word: "idi" and "ot" are harmless
    (["idi", "ot"], {"max_segment_chars": 3}, ["idi"]),
], ids=["phrase", "spaced-letters", "split-word"])
def test_a_phrase_split_across_a_segment_boundary_is_blocked(
        guard: OutputGuard, chunks: list[str], options: dict[str, int],
        released: list[str]) -> None:
    source = _Source(chunks)
    out = list(guard.stream(source, **options))
    assert out == [*released, SAFE]
    assert source.closed
    # each part on its own passes: only the look-behind can catch it
    off = list(guard.stream(iter(chunks), lookbehind_chars=0, **options))
    assert SAFE not in off and "".join(off) == "".join(chunks)


def test_the_default_guard_catches_a_threat_split_across_segments() -> None:
    guard = OutputGuard.default()
    chunks = _words("You should go and kill yourself. Bye.")
    assert [d.action for d in guard.check(["You should go and ", "kill yourself. "])] == [
        "allow", "allow"]
    assert list(guard.stream(iter(chunks), tokens=4)) == ["You should go and ",
                                                         guard.policy.safe_message]


def test_a_block_in_the_last_segment_is_caught_at_flush(guard: OutputGuard) -> None:
    source = _Source(["Welcome. ", "You are an ", "idiot"])  # no sentence end after "idiot"
    assert list(guard.stream(source)) == ["Welcome. ", SAFE]
    assert source.closed
    tokens = _Source(_words("one two three four idiot"))
    assert list(guard.stream(tokens, tokens=2)) == ["one two ", "three four ", SAFE]


def test_a_word_split_by_the_window_is_not_checked_as_a_fragment(
        profanity: LinearProfanityScorer) -> None:
    recording = _Recording(profanity)
    guard = OutputGuard(recording, normalize=False)
    chunks = _words("Practice this skill daily. ")
    # a window cut at the last 5 characters would read "kill " and block a benign reply
    assert list(guard.stream(iter(chunks), tokens=3, lookbehind_chars=5)) == [
        "Practice this skill ", "daily. "]
    assert recording.seen == ["Practice this skill ", "daily. ", " daily. "]


# -- redact policies: released text cannot be changed ----------------------------------------

def _redacting(scorer: LinearProfanityScorer, threshold: float) -> OutputGuard:
    return OutputGuard(scorer, Policy(default=CategoryRule(threshold=threshold, action="redact")))


def test_redaction_across_a_boundary_masks_the_new_segment(
        profanity: LinearProfanityScorer) -> None:
    guard = _redacting(profanity, 0.45)  # "piece of work." 0.23, "what a clown" 0.29, both 0.46
    out = list(guard.stream(iter(_words("what a clown piece of work. Bye.")), tokens=3))
    assert out == ["what a clown ", "**** of work. ", "Bye."]


def test_redaction_that_would_need_released_words_ends_the_stream(
        profanity: LinearProfanityScorer) -> None:
    guard = _redacting(profanity, 0.5)  # the word to blame, "nasty", is already out
    source = _Source(_words("you are a nasty piece of work."))
    assert list(guard.stream(source, tokens=4)) == ["you are a nasty ", SAFE]
    assert source.closed


def test_a_segment_redacted_on_its_own_is_released_masked(
        profanity: LinearProfanityScorer) -> None:
    guard = _redacting(profanity, 0.5)
    out = list(guard.stream(iter(["The tour is at noon. ", "What a stupid ", "rule. ", "Bye."])))
    assert out == ["The tour is at noon. ", "What a **** rule. ", "Bye."]


# -- failures mid-stream ---------------------------------------------------------------------

def test_a_scorer_that_raises_mid_stream_ends_it_with_the_safe_message(
        profanity: LinearProfanityScorer) -> None:
    scorer = _Recording(profanity, fault_at=2)
    source = _Source(["Hello. ", "The tour starts at noon. ", "Bye. ", "Bye again."])
    assert list(OutputGuard(scorer).stream(source)) == ["Hello. ", SAFE]
    assert source.closed and source.produced == 2
    # on_error="raise": the error reaches the consumer and the source is still closed
    source = _Source(["Hello. ", "The tour starts at noon. ", "Bye. "])
    stream = OutputGuard(_Recording(profanity, fault_at=2), on_error="raise").stream(source)
    assert next(stream) == "Hello. "
    with pytest.raises(GuardCheckError, match="scorer crashed"):
        next(stream)
    assert source.closed and list(stream) == []


def test_a_scorer_that_hangs_mid_stream_ends_it_at_the_deadline(
        profanity: LinearProfanityScorer) -> None:
    scorer = _Recording(profanity, fault_at=2, fault="hang")
    source = _Source(["Hello. ", "The tour starts at noon. ", "Bye. ", "Bye again."])
    try:
        out = list(OutputGuard(scorer, deadline_s=1.0).stream(source))
    finally:
        scorer.release.set()
    assert scorer.hung.is_set()
    assert out == ["Hello. ", SAFE]
    assert source.closed and source.produced == 2


def test_a_non_string_chunk_closes_the_source(guard: OutputGuard) -> None:
    source = _Source(["Hello. ", 42, "Bye. "])
    assert list(guard.stream(source)) == ["Hello. ", SAFE]
    assert source.closed and source.produced == 2


# -- closing when the consumer or the source stops -------------------------------------------

def test_a_consumer_that_stops_early_closes_the_source(guard: OutputGuard) -> None:
    chunks = ["Hello. ", "The tour starts at noon. ", "Bye. "]
    source = _Source(chunks)
    stream = guard.stream(source)
    assert next(stream) == "Hello. "
    stream.close()
    assert source.closed and source.produced == 1
    assert list(stream) == []
    # dropped without closing, after its first item or before it
    source = _Source(chunks)
    stream = guard.stream(source)
    next(stream)
    del stream
    gc.collect()
    assert source.closed
    source = _Source(chunks)
    stream = guard.stream(source)
    del stream
    gc.collect()
    assert source.closed and source.produced == 0
    # a with block
    source = _Source(chunks)
    with guard.stream(source) as stream:
        next(stream)
    assert source.closed


def test_a_source_that_raises_is_closed_and_the_error_propagates(guard: OutputGuard) -> None:
    source = _Source(["Hello. ", "held back ", RuntimeError("generation failed"), "Bye. "])
    out = []
    with pytest.raises(RuntimeError, match="generation failed"):
        for text in guard.stream(source):
            out.append(text)
    assert out == ["Hello. "]  # the unchecked text held back is not released
    assert source.closed

    def failing() -> Iterator[str]:
        yield "Hello. "
        raise ValueError("boom")

    stream = guard.stream(failing())
    assert next(stream) == "Hello. "
    with pytest.raises(ValueError, match="boom"):
        next(stream)
    assert list(stream) == []


def test_an_iterable_source_with_close_is_closed_too(guard: OutputGuard) -> None:
    class Streamer:
        """Iterable (not an iterator) whose close() stops the generation."""

        closed = False

        def __iter__(self) -> Iterator[str]:
            yield from ["Hello. ", "You are an idiot. ", "Bye. "]

        def close(self) -> None:
            self.closed = True

    streamer = Streamer()
    assert list(guard.stream(streamer)) == ["Hello. ", SAFE]
    assert streamer.closed


# -- bounds and modes ------------------------------------------------------------------------

def test_the_look_behind_stays_bounded_on_a_long_benign_stream(
        profanity: LinearProfanityScorer) -> None:
    recording = _Recording(profanity)
    guard = OutputGuard(recording, normalize=False)  # the scorer sees the texts as checked
    text = "the tour starts at noon and the Sky Library opens at ten for everyone " * 400
    out = list(guard.stream(iter(_words(text)), max_segment_chars=120, lookbehind_chars=50))
    assert "".join(out) == text and max(len(t) for t in out) <= 120
    assert max(len(t) for t in recording.seen) <= 50 + 120
    assert max(len(t) for t in recording.seen) > 120  # the window was used
    assert len(recording.seen) <= 2 * len(out)  # each segment checked once alone, once joined
    # one huge chunk with sentences longer than the limit: segments stay within it too
    recording.seen.clear()
    long = ("word " * 100 + "end. ") * 20
    out = list(guard.stream(iter([long]), max_segment_chars=120, lookbehind_chars=50))
    assert "".join(out) == long
    assert max(len(t) for t in out) <= 120
    assert max(len(t) for t in recording.seen) <= 50 + 120


def test_without_look_behind_segments_are_checked_as_cut(
        profanity: LinearProfanityScorer) -> None:
    text = "One. Two!  Three?\nFour five six seven. Eight"
    for size in (1, 3, len(text)):
        recording = _Recording(profanity)
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        out = list(OutputGuard(recording, normalize=False).stream(iter(chunks),
                                                                  lookbehind_chars=0))
        assert out == recording.seen and "".join(out) == text
    assert out == ["One. ", "Two!  ", "Three?\n", "Four five six seven. ", "Eight"]


def test_token_mode_still_releases_every_n_tokens(guard: OutputGuard) -> None:
    out = list(guard.stream(iter(["one two", " three ", "four", " five"]), tokens=2))
    assert out == ["one two ", "three four ", "five"]
    out = list(guard.stream(iter(_words("the tour starts at noon today")), tokens=4))
    assert out == ["the tour starts at ", "noon today"]


def test_stream_options_are_checked_at_the_call(guard: OutputGuard) -> None:
    for options in ({"lookbehind_chars": -1}, {"tokens": 0}, {"max_segment_chars": 0}):
        with pytest.raises(ConfigError):
            guard.stream(iter(["x"]), **options)


def test_the_window_shrinks_to_keep_joined_texts_within_max_chars(
        profanity: LinearProfanityScorer) -> None:
    recording = _Recording(profanity)
    guard = OutputGuard(recording, normalize=False, max_chars=30)
    text = "the tour starts at noon. " * 4
    out = list(guard.stream(iter(_words(text)), max_segment_chars=30, lookbehind_chars=200))
    assert "".join(out) == text  # no check failed for length
    assert max(len(t) for t in recording.seen) <= 30
    assert max(len(t) for t in recording.seen) > len("the tour starts at noon. ")  # a window


# -- what ended the stream ---------------------------------------------------------------------

def test_stopped_holds_the_decision_that_ended_the_stream(guard: OutputGuard) -> None:
    finished = guard.stream(["Welcome. ", "The tour starts at noon."])
    assert list(finished) == ["Welcome. ", "The tour starts at noon."]
    assert finished.stopped is None  # ran to its end
    blocked = guard.stream(["Welcome. ", "You are an idiot. ", "Bye."])
    assert blocked.stopped is None  # nothing decided yet
    assert list(blocked) == ["Welcome. ", SAFE]
    assert blocked.stopped is not None and blocked.stopped.action == "block"
    assert blocked.stopped.scores["toxicity"] >= 0.5 and blocked.stopped.error is None
    odd = guard.stream(["Welcome. ", 42])  # type: ignore[list-item]
    assert list(odd) == ["Welcome. ", SAFE]
    assert odd.stopped is not None and "not str" in (odd.stopped.error or "")
