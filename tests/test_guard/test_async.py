"""OutputGuard.acheck / astream and the MicroBatcher: coalescing, routing, failing closed."""

from __future__ import annotations

import asyncio
import gc
import math
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from guard import GuardCheckError, OutputGuard, Policy, UsageError
from guard.batching import BatcherClosedError, MicroBatcher
from guard.errors import ConfigError
from guard.policy import CategoryRule
from guard.scorers.base import Scores
from guard.scorers.profanity import LinearProfanityScorer

SAFE = Policy().safe_message


class _Counting:
    """The real profanity scorer, recording the size of every batch it scores."""

    def __init__(self, inner: LinearProfanityScorer) -> None:
        self.inner = inner
        self.categories = inner.categories
        self.sizes: list[int] = []

    def score(self, texts: Sequence[str]) -> Scores:
        self.sizes.append(len(texts))
        return self.inner.score(texts)


class _Raising:
    categories = ("toxicity",)

    def __init__(self) -> None:
        self.calls = 0

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        self.calls += 1
        raise RuntimeError("scorer crashed")


class _Hanging:
    categories = ("toxicity",)

    def __init__(self) -> None:
        self.release = threading.Event()

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        self.release.wait(30)
        return {"toxicity": np.zeros(len(texts))}


class _WaitsForTheLoop:
    """Scores only once the event loop has set ``release``: it can only if it is not blocked."""

    categories = ("toxicity",)

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.released: list[bool] = []

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        self.entered.set()
        self.released.append(self.release.wait(20))
        return {"toxicity": np.zeros(len(texts))}


@pytest.fixture(scope="module")
def profanity() -> LinearProfanityScorer:
    return LinearProfanityScorer()


def _texts(k: int) -> list[str]:
    """1-3 distinct texts for caller ``k``, some harmful."""
    texts = [f"visitor {k} says the plaza opens at noon"]
    if k % 3:
        texts.append(f"visitor {k} thinks you are an idiot")
    if k % 4 == 0:
        texts.append(f"visitor {k} asks where tickets are sold")
    return texts


# -- acheck ----------------------------------------------------------------------------------

def test_acheck_decides_exactly_as_check(profanity: LinearProfanityScorer) -> None:
    texts = ["have a nice day", "you are an idiot", "What a stupid rule.", "x" * 30, ""]
    for policy in (Policy(), Policy(default=CategoryRule(threshold=0.5, action="redact"))):
        guard = OutputGuard(profanity, policy)
        assert asyncio.run(guard.acheck(texts)) == guard.check(texts)
        assert asyncio.run(guard.acheck("you are an idiot")) == guard.check("you are an idiot")
    assert [d.action for d in asyncio.run(guard.acheck(texts))][:3] == ["allow", "redact",
                                                                        "redact"]


@pytest.mark.parametrize("bad", [None, b"you are an idiot", 3, {"text": "hi"}])
def test_bad_input_raises_usage_error_with_and_without_a_batcher(
        profanity: LinearProfanityScorer, bad: Any) -> None:
    guard = OutputGuard(profanity, on_error="raise" if bad is None else "block")

    async def main() -> None:
        with pytest.raises(UsageError):
            await guard.acheck(bad)
        batcher = guard.with_batcher()
        with pytest.raises(UsageError):
            await guard.acheck(bad)
        with pytest.raises(UsageError):
            await batcher.check(bad)
        await batcher.aclose()

    asyncio.run(main())


def test_a_non_string_item_fails_closed_only_for_its_own_caller(
        profanity: LinearProfanityScorer) -> None:
    async def main(guard: OutputGuard) -> tuple[Any, Any]:
        guard.with_batcher(max_wait_ms=50)
        mixed: list[Any] = ["hello there", 7]
        return await asyncio.gather(guard.acheck(mixed), guard.acheck(["have a nice day"]),
                                    return_exceptions=True)

    mixed, clean = asyncio.run(main(OutputGuard(profanity)))
    assert [d.action for d in mixed] == ["allow", "block"] and mixed[1].error
    assert [d.text for d in clean] == ["have a nice day"]
    # with on_error="raise" the error reaches its own caller only
    mixed, clean = asyncio.run(main(OutputGuard(profanity, on_error="raise")))
    assert isinstance(mixed, GuardCheckError)
    assert [d.text for d in clean] == ["have a nice day"]


# -- the micro-batcher -----------------------------------------------------------------------

def test_fifty_concurrent_callers_get_their_own_decisions_in_few_calls(
        profanity: LinearProfanityScorer) -> None:
    scorer = _Counting(profanity)
    guard = OutputGuard(scorer)
    requests = [_texts(k) for k in range(50)]
    expected = [guard.check(texts) for texts in requests]
    scorer.sizes.clear()

    async def main() -> list[list[Any]]:
        async with guard.with_batcher(max_batch=8, max_wait_ms=5):
            return await asyncio.gather(*(guard.acheck(texts) for texts in requests))

    answers = asyncio.run(main())
    total = sum(map(len, requests))
    assert total > 90
    for texts, got, want in zip(requests, answers, expected, strict=True):
        assert [d.action for d in got] == [d.action for d in want]
        assert [d.text for d in got] == [d.text for d in want]  # benign texts name their caller
        assert [d.scores for d in got] == [pytest.approx(d.scores) for d in want]
        assert [d.action for d in got] == ["block" if "idiot" in t else "allow" for t in texts]
    # every request is queued before the worker runs: full batches, then one partial
    assert len(scorer.sizes) == math.ceil(total / 8)
    assert max(scorer.sizes) <= 8 and sum(scorer.sizes) == total


def test_a_request_larger_than_max_batch_is_split(profanity: LinearProfanityScorer) -> None:
    scorer = _Counting(profanity)
    guard = OutputGuard(scorer)
    texts = [f"message {i}: " + ("you are an idiot" if i % 5 == 0 else "see you") for i in
             range(20)]

    async def main() -> list[Any]:
        batcher = MicroBatcher(guard, max_batch=8, max_wait_ms=0)
        try:
            return await batcher.check(texts)
        finally:
            await batcher.aclose()

    decisions = asyncio.run(main())
    assert scorer.sizes == [8, 8, 4]
    assert [d.text for d in decisions] == [SAFE if i % 5 == 0 else texts[i] for i in range(20)]


def test_a_raising_scorer_fails_every_caller_in_the_batch_closed() -> None:
    scorer = _Raising()

    async def main(guard: OutputGuard) -> list[Any]:
        guard.with_batcher(max_batch=32, max_wait_ms=50)
        return await asyncio.gather(*(guard.acheck([f"hello {k}", f"bye {k}"]) for k in range(5)),
                                    return_exceptions=True)

    answers = asyncio.run(main(OutputGuard(scorer)))
    assert scorer.calls == 1
    for decisions in answers:
        assert [(d.allowed, d.text) for d in decisions] == [(False, SAFE), (False, SAFE)]
        assert all("scorer crashed" in (d.error or "") for d in decisions)

    answers = asyncio.run(main(OutputGuard(scorer, on_error="raise")))
    assert scorer.calls == 2
    assert all(isinstance(a, GuardCheckError) and "scorer crashed" in str(a) for a in answers)
    assert len({id(a) for a in answers}) == 5  # each caller its own exception


def test_a_hanging_scorer_under_a_deadline_gives_the_safe_message() -> None:
    scorer = _Hanging()
    guard = OutputGuard(scorer, deadline_s=0.2)

    async def main() -> list[Any]:
        async with guard.with_batcher(max_wait_ms=20):
            return await asyncio.gather(*(guard.acheck(f"hello {k}") for k in range(3)))

    try:
        answers = asyncio.run(main())
    finally:
        scorer.release.set()
    assert [[d.text for d in a] for a in answers] == [[SAFE]] * 3
    assert all("DeadlineExceeded" in (a[0].error or "") for a in answers)


@pytest.mark.parametrize("batched", [False, True], ids=["thread", "batcher"])
def test_the_event_loop_keeps_running_while_scoring(batched: bool) -> None:
    scorer = _WaitsForTheLoop()
    guard = OutputGuard(scorer)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not scorer.entered.is_set():
            await asyncio.sleep(0.001)
        for _ in range(3):  # only a loop that is not blocked by the scoring gets here
            ticks += 1
            await asyncio.sleep(0)
        scorer.release.set()

    async def main() -> list[Any]:
        if batched:
            guard.with_batcher()
        decisions, _ = await asyncio.gather(guard.acheck("hello"), ticker())
        return decisions

    try:
        decisions = asyncio.run(main())
    finally:
        scorer.release.set()
    assert ticks == 3 and scorer.released == [True]
    assert [d.text for d in decisions] == ["hello"]


def test_a_closed_batcher_refuses_work_and_fails_waiting_requests_closed(
        profanity: LinearProfanityScorer) -> None:
    scorer = _Counting(profanity)
    guard = OutputGuard(scorer)

    async def main() -> tuple[list[Any], list[Any]]:
        batcher = guard.with_batcher(max_batch=32, max_wait_ms=60_000)
        waiting = asyncio.create_task(guard.acheck(["have a nice day", "see you"]))
        await asyncio.sleep(0)  # queued, waiting for the batch to fill
        await batcher.aclose()
        with pytest.raises(BatcherClosedError, match="closed"):
            await batcher.check("hello")
        second = guard.with_batcher()
        with pytest.raises(UsageError, match="already"):  # one open batcher per guard ...
            guard.with_batcher()
        second.close()
        return await waiting, await guard.acheck("hello")  # ... and closing detaches it

    waited, after = asyncio.run(main())
    assert [(d.allowed, d.text) for d in waited] == [(False, SAFE), (False, SAFE)]
    assert all("closed" in (d.error or "") for d in waited)
    assert [d.text for d in after] == ["hello"] and scorer.sizes == [1]


def test_a_cancelled_caller_is_not_scored(profanity: LinearProfanityScorer) -> None:
    scorer = _Counting(profanity)
    guard = OutputGuard(scorer)

    async def main() -> list[Any]:
        async with guard.with_batcher(max_batch=32, max_wait_ms=20):
            gone = asyncio.create_task(guard.acheck(["one", "two", "three"]))
            kept = asyncio.create_task(guard.acheck(["four"]))
            await asyncio.sleep(0)
            gone.cancel()
            return await kept

    assert [d.text for d in asyncio.run(main())] == ["four"]
    assert scorer.sizes == [1]


def test_batcher_options_are_checked(profanity: LinearProfanityScorer) -> None:
    guard = OutputGuard(profanity)
    for options in ({"max_batch": 0}, {"max_batch": 2.5}, {"max_wait_ms": -1},
                    {"max_wait_ms": math.inf}):
        with pytest.raises(ConfigError):
            MicroBatcher(guard, **options)


def test_a_batcher_can_serve_a_later_event_loop(profanity: LinearProfanityScorer) -> None:
    guard = OutputGuard(profanity)
    batcher = guard.with_batcher(max_wait_ms=1)
    for _ in range(2):  # each asyncio.run is a new loop
        assert [d.action for d in asyncio.run(guard.acheck(["hi", "you idiot"]))] == [
            "allow", "block"]
    batcher.close()


# -- astream ---------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return [w + " " for w in text.split(" ")[:-1]] + [text.split(" ")[-1]]


async def _collect(stream: AsyncIterator[str]) -> list[str]:
    return [text async for text in stream]


def test_astream_blocks_mid_stream_and_closes_an_async_generator_first(
        profanity: LinearProfanityScorer) -> None:
    guard = OutputGuard(profanity)
    produced: list[str] = []
    closed: list[int] = []

    async def tokens() -> AsyncIterator[str]:
        try:
            for chunk in ["Welcome to ", "Neon Harbor. ", "You are an ", "idiot. ", "More. ",
                          "Even more."]:
                produced.append(chunk)
                yield chunk
        finally:
            closed.append(len(produced))

    async def main() -> list[tuple[str, bool]]:
        return [(text, bool(closed)) async for text in guard.astream(tokens())]

    assert asyncio.run(main()) == [("Welcome to Neon Harbor. ", False), (SAFE, True)]
    assert closed == [4]  # the generation stopped at the block


@pytest.mark.parametrize(("chunks", "options"), [
    (_words("you are a nasty piece of work."), {"tokens": 4}),  # across a boundary
    (["idi", "ot"], {"max_segment_chars": 3}),
    (["The tour is at noon. ", "What a stupid ", "rule. ", "Bye."], {}),
    (["Hello. ", "See you at the plaza. ", "Bye"], {"lookbehind_chars": 0}),
], ids=["phrase", "split-word", "redact", "no-lookbehind"])
def test_astream_releases_what_stream_releases(profanity: LinearProfanityScorer,
                                               chunks: list[str], options: Any) -> None:
    guard = OutputGuard(profanity, Policy(default=CategoryRule(threshold=0.5, action="redact")))
    want = list(guard.stream(iter(chunks), **options))

    async def source() -> AsyncIterator[str]:
        for chunk in chunks:
            yield chunk

    assert asyncio.run(_collect(guard.astream(source(), **options))) == want
    assert asyncio.run(_collect(guard.astream(chunks, **options))) == want  # a sync source
    assert len(want) >= 2


def test_concurrent_astreams_share_the_batcher(profanity: LinearProfanityScorer) -> None:
    scorer = _Counting(profanity)
    guard = OutputGuard(scorer)
    streams = [_words(f"Stream {k} says hello. The tour is at noon. You are an idiot {k}. Bye.")
               for k in range(6)]
    want = [list(guard.stream(iter(chunks))) for chunks in streams]
    alone = len(scorer.sizes)
    scorer.sizes.clear()

    async def source(chunks: list[str]) -> AsyncIterator[str]:
        for chunk in chunks:
            yield chunk

    async def main() -> list[list[str]]:
        async with guard.with_batcher(max_batch=32, max_wait_ms=20):
            return await asyncio.gather(*(_collect(guard.astream(source(c))) for c in streams))

    assert asyncio.run(main()) == want
    assert want[0][-1] == SAFE
    # the streams move in step: each round of segment checks is one call for all six (the
    # first segment alone, the next ones with their look-behind window)
    assert scorer.sizes == [6, 12, 12] and alone == 18


def test_an_abandoned_astream_closes_its_source(profanity: LinearProfanityScorer) -> None:
    guard = OutputGuard(profanity)
    closed: list[bool] = []

    class Source:
        def __init__(self) -> None:
            self.chunks = iter(["Hello. ", "Bye. ", "Again. "])

        def __aiter__(self) -> Source:
            return self

        async def __anext__(self) -> str:
            try:
                return next(self.chunks)
            except StopIteration:
                raise StopAsyncIteration from None

        async def aclose(self) -> None:
            closed.append(True)

    async def main() -> str:
        stream = guard.astream(Source())
        first = await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        return first

    assert asyncio.run(main()) == "Hello. " and closed == [True]


def test_astream_fails_closed_on_a_raising_scorer_and_a_bad_chunk(
        profanity: LinearProfanityScorer) -> None:
    def source(items: list[Any]) -> Iterator[Any]:
        yield from items

    out = asyncio.run(_collect(OutputGuard(_Raising()).astream(["Hello. ", "Bye."])))
    assert out == [SAFE]
    out = asyncio.run(_collect(OutputGuard(profanity).astream(source(["Hello. ", 3, "Bye."]))))
    assert out == ["Hello. ", SAFE]
    with pytest.raises(GuardCheckError):
        asyncio.run(_collect(OutputGuard(_Raising(), on_error="raise").astream(["Hi."])))


def test_astream_options_are_checked_at_the_call(profanity: LinearProfanityScorer) -> None:
    guard = OutputGuard(profanity)
    for options in ({"tokens": 0}, {"max_segment_chars": 0}, {"lookbehind_chars": -1}):
        with pytest.raises(ConfigError):
            guard.astream(["hi"], **options)


class _BlockingSource:
    """A sync source whose next() blocks until released, like a streamer; it has close()."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting = threading.Event()
        self.closed = False
        self.produced = 0

    def __iter__(self) -> _BlockingSource:
        return self

    def __next__(self) -> str:
        if self.produced == 1:
            self.waiting.set()
            self.release.wait(20)
        self.produced += 1
        return "More words. "

    def close(self) -> None:
        self.closed = True


def test_a_cancelled_astream_closes_a_blocked_sync_source_once_it_returns(
        profanity: LinearProfanityScorer) -> None:
    guard = OutputGuard(profanity)
    source = _BlockingSource()

    async def main() -> tuple[bool, bool]:
        task = asyncio.create_task(_collect(guard.astream(source)))
        while not source.waiting.is_set():  # the loop runs while next() blocks in its thread
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        closed_while_blocked = source.closed
        source.release.set()
        for _ in range(2_000):
            if source.closed:
                break
            await asyncio.sleep(0.005)
        return closed_while_blocked, source.closed

    try:
        assert asyncio.run(main()) == (False, True)
    finally:
        source.release.set()
    assert source.produced == 2


def test_an_astream_dropped_before_its_first_item_closes_a_sync_source(
        profanity: LinearProfanityScorer) -> None:
    source = _BlockingSource()
    stream = OutputGuard(profanity).astream(source)
    del stream
    gc.collect()
    assert source.closed and source.produced == 0


def test_astream_says_what_ended_it(profanity: LinearProfanityScorer) -> None:
    guard = OutputGuard(profanity)

    async def main() -> tuple[list[str], Any, list[str], Any, Any]:
        blocked = guard.astream(["Hi there. ", "You are an idiot. ", "Bye."])
        before = blocked.stopped
        texts = await _collect(blocked)
        finished = guard.astream(["Hi there. ", "Bye."])
        rest = await _collect(finished)
        return texts, blocked.stopped, rest, finished.stopped, before

    texts, stopped, rest, none, before = asyncio.run(main())
    assert texts == ["Hi there. ", SAFE] and before is None
    assert stopped is not None and stopped.action == "block" and stopped.error is None
    assert rest == ["Hi there. ", "Bye."] and none is None


def test_the_batcher_property_shows_only_an_open_batcher(
        profanity: LinearProfanityScorer) -> None:
    guard = OutputGuard(profanity)
    assert guard.batcher is None
    batcher = guard.with_batcher(max_batch=4)
    assert guard.batcher is batcher
    batcher.close()
    assert guard.batcher is None
