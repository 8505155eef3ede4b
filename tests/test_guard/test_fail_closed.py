"""The output guard fails closed: bad scorer output, bad input, hung scorers, endless streams."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard import OutputGuard, Policy, UsageError
from guard.errors import ConfigError
from guard.scorers.profanity import LinearProfanityScorer


class _Returns:
    """A scorer that returns whatever it is given, for every batch."""

    def __init__(self, output: Any, categories: Sequence[str] = ("toxicity",)) -> None:
        self.output = output
        self.categories = tuple(categories)

    def score(self, texts: Sequence[str]) -> Any:
        return self.output(len(texts)) if callable(self.output) else self.output


class _Hanging:
    categories = ("toxicity",)

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        self.calls += 1
        self.release.wait(30)
        return {"toxicity": np.zeros(len(texts))}


class _Recording:
    """Scores 0 and remembers each text it saw."""

    categories = ("toxicity",)

    def __init__(self) -> None:
        self.seen: list[str] = []

    def score(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        self.seen.extend(texts)
        return {"toxicity": np.zeros(len(texts))}


# -- 5: score sets that do not cover the categories or are not real numbers -------------------

@pytest.mark.parametrize("output", [
    {},
    {"hate": np.zeros(1)},                      # a category, but not the declared one
    {"toxicity": np.array([0.9j])},             # complex: used to be cast to 0.0
    {"toxicity": ["0.9"]},                      # strings
    {"toxicity": [None]},
    {"toxicity": np.array([object()])},
    {"toxicity": [[0.1, 0.2]]},                 # wrong shape
    [0.1],                                      # not a mapping at all
    None,
], ids=["empty", "other-category", "complex", "str", "none", "object", "2d", "list", "None"])
def test_invalid_score_sets_block(output: Any) -> None:
    [decision] = OutputGuard(_Returns(output)).check(["you are wonderful"])
    assert decision.action == "block" and not decision.allowed
    assert decision.text == Policy().safe_message and decision.error


def test_a_scorer_without_categories_is_refused() -> None:
    with pytest.raises(ConfigError, match="declares no categories"):
        OutputGuard(_Returns({}, categories=()))
    with pytest.raises(ConfigError, match="at least one scorer"):
        OutputGuard([])


def test_real_valued_scores_of_any_numeric_dtype_are_used() -> None:
    for values in (np.array([1], dtype=np.int64), np.array([True]), np.array([0.75], np.float16)):
        [decision] = OutputGuard(_Returns({"toxicity": values})).check(["x"])
        assert decision.action == "block" and decision.error is None
        assert decision.scores["toxicity"] == pytest.approx(float(values[0]))


# -- 6: what check() accepts -----------------------------------------------------------------

@pytest.mark.parametrize("bad", [None, 123, 1.5, b"idiot", bytearray(b"idiot"), {"text": "x"}],
                         ids=["None", "int", "float", "bytes", "bytearray", "dict"])
def test_check_refuses_what_is_not_text(bad: Any) -> None:
    guard = OutputGuard(LinearProfanityScorer())
    with pytest.raises(UsageError, match="str or a sequence of str"):
        guard.check(bad)
    # on_error decides what scoring failures do, not what a wrong call does
    with pytest.warns(UserWarning), pytest.raises(UsageError):
        OutputGuard(LinearProfanityScorer(), on_error="allow").check(bad)


def test_check_takes_any_sequence_or_iterable_of_str() -> None:
    guard = OutputGuard(LinearProfanityScorer())
    assert [d.action for d in guard.check(("hello", "you idiot"))] == ["allow", "block"]
    assert [d.action for d in guard.check(t for t in ["hello"])] == ["allow"]
    [item] = guard.check([b"idiot"])  # type: ignore[list-item]
    assert item.action == "block" and "bytes, not str" in (item.error or "")


# -- 8: a hung scorer ------------------------------------------------------------------------

def _guard_threads() -> int:
    return sum(t.name.startswith("guard-score") for t in threading.enumerate())


def test_a_hung_scorer_is_abandoned_and_the_thread_count_stays_bounded() -> None:
    scorer = _Hanging()
    guard = OutputGuard(scorer, deadline_s=0.05, max_abandoned=2)
    before = threading.active_count()
    decisions = []
    for _ in range(3):
        decisions += guard.check(["a"] * 1) + guard.check(["b"]) + guard.check(["c"])
        guard.close()
    assert all(d.action == "block" for d in decisions)
    assert scorer.calls == 2  # later checks did not start another hung call
    assert "longer than 0.05 s" in (decisions[0].error or "")
    assert "still running" in (decisions[-1].error or "")
    assert _guard_threads() == 2 and threading.active_count() <= before + 2
    # the hung calls return: the guard recovers by itself and the threads end
    scorer.release.set()
    deadline = time.monotonic() + 10
    while _guard_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _guard_threads() == 0
    [decision] = guard.check(["hello"])
    assert decision.action == "allow" and decision.error is None


def test_concurrent_checks_under_a_deadline_keep_their_own_decisions() -> None:
    guard = OutputGuard(LinearProfanityScorer(), deadline_s=30)
    texts = [f"hello number {k}" if k % 2 else f"you idiot number {k}" for k in range(64)]

    def call(k: int) -> tuple[str, str]:
        [decision] = guard.check([texts[k]])
        return texts[k], decision.action

    threads_results: list[tuple[str, str]] = []
    lock = threading.Lock()

    def worker(ks: range) -> None:
        for k in ks:
            result = call(k)
            with lock:
                threads_results.append(result)

    workers = [threading.Thread(target=worker, args=(range(i, 64, 8),)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert sorted(threads_results) == sorted(
        (t, "block" if "idiot" in t else "allow") for t in texts)
    assert _guard_threads() == 0  # every worker thread ended with its call


# -- 9: streams ------------------------------------------------------------------------------

def test_a_stream_without_sentence_ends_is_released_in_bounded_segments() -> None:
    scorer = _Recording()
    guard = OutputGuard(scorer, normalize=False)  # the scorer sees the segments as cut
    chunks = ["word "] * 16_000  # 80,000 characters, no sentence end
    # lookbehind_chars=0: this test is about segmentation (the look-behind has its own tests)
    out = list(guard.stream(iter(chunks), max_segment_chars=500, lookbehind_chars=0))
    assert "".join(out) == "".join(chunks)
    assert max(len(t) for t in scorer.seen) <= 500
    assert all(t.endswith(" ") for t in scorer.seen)  # cut at a space, never inside a word
    # a segment with no space at all is cut at the limit
    scorer.seen.clear()
    out = list(guard.stream(iter(["x"] * 1_200), max_segment_chars=500, lookbehind_chars=0))
    assert "".join(out) == "x" * 1_200 and [len(t) for t in scorer.seen] == [500, 500, 200]


def test_stream_segments_match_whole_text_segmentation() -> None:
    text = "One. Two!  Three?\nFour five six seven. Eight"
    expected = ["One. ", "Two!  ", "Three?\n", "Four five six seven. ", "Eight"]
    guard = OutputGuard(_Recording())
    for size in (1, 2, 3, 7, len(text)):
        chunks = [text[i : i + size] for i in range(0, len(text), size)]
        assert "".join(guard.stream(iter(chunks))) == text
        scorer = _Recording()
        list(OutputGuard(scorer, normalize=False).stream(iter(chunks), lookbehind_chars=0))
        assert "".join(scorer.seen) == text
        if size == len(text):
            assert scorer.seen == expected
    scorer = _Recording()
    chunks = ["one two", " three ", "four", " five"]
    list(OutputGuard(scorer, normalize=False).stream(iter(chunks), tokens=2,
                                                     lookbehind_chars=0))
    assert scorer.seen == ["one two ", "three four ", "five"]


def test_a_non_string_chunk_ends_the_stream_closed() -> None:
    guard = OutputGuard(LinearProfanityScorer())
    out = list(guard.stream(iter(["Hello. ", None, "you idiot"])))  # type: ignore[list-item]
    assert out == ["Hello. ", guard.policy.safe_message]


def test_stream_limits_are_checked() -> None:
    guard = OutputGuard(LinearProfanityScorer())
    with pytest.raises(ConfigError, match="max_segment_chars"):
        list(guard.stream(iter(["x"]), max_segment_chars=0))


# -- fuzz: the fail-closed contract over arbitrary scorer outputs ----------------------------

_CATEGORIES = ("toxicity", "insult")
_number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(min_value=0, max_value=1),
    st.integers(min_value=-2, max_value=2),
    st.booleans(),
    st.complex_numbers(max_magnitude=2),
    st.text(max_size=3),
    st.none(),
)
_values = st.one_of(
    st.lists(_number, min_size=0, max_size=4),
    st.lists(st.floats(min_value=0, max_value=1), min_size=3, max_size=3).map(np.array),
    _number,
)
_probability = st.floats(min_value=0, max_value=1)
# mostly probabilities, so that a single bad value decides the outcome
_row = st.lists(st.one_of(*[_probability] * 8, _number), min_size=3, max_size=3)
_array = st.one_of(_row, _row.map(lambda v: np.array(v, dtype=object)),
                   st.lists(st.complex_numbers(max_magnitude=1), min_size=3, max_size=3).map(
                       np.array))
# mostly well formed (every category, three values), so the fuzz reaches the value checks
_well_formed = st.fixed_dictionaries({c: _array for c in _CATEGORIES},
                                     optional={"hate": _values, "": _array})
_outputs = st.one_of(
    _well_formed,
    _well_formed,
    st.dictionaries(st.sampled_from([*_CATEGORIES, "hate", ""]), _values, max_size=4),
    st.dictionaries(st.integers(), _values, max_size=2),
    _values,
)


def _valid(output: Any, n: int) -> bool:
    """A reference statement of what a valid score set is, written apart from check_scores."""
    if not isinstance(output, dict) or not all(isinstance(k, str) for k in output):
        return False
    if any(c not in output for c in _CATEGORIES):
        return False
    for values in output.values():
        if isinstance(values, np.ndarray) and values.dtype == object:
            return False  # numbers boxed as objects are refused, whatever they hold
        items = list(values) if isinstance(values, (list, np.ndarray)) else None
        if items is None or len(items) != n:
            return False
        for v in items:
            if isinstance(v, (str, complex, type(None), list, tuple)):
                return False
            if not (math.isfinite(float(v)) and 0 <= float(v) <= 1):
                return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(output=_outputs)
def test_fuzz_only_valid_low_scores_let_text_through(output: Any) -> None:
    texts = ["first", "second", "third"]
    guard = OutputGuard(_Returns(output, _CATEGORIES), Policy())
    decisions = guard.check(texts)
    assert len(decisions) == 3
    if not _valid(output, 3):
        assert all(d.action == "block" and d.error for d in decisions), output
        return
    for row, decision in enumerate(decisions):
        worst = max(float(output[c][row]) for c in output)
        assert decision.allowed == (worst < 0.5), (output, decision)
        assert decision.error is None
