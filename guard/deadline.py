"""Run a call under a deadline, abandoning it when it overruns, with a bound on what is abandoned.

Python cannot kill a thread. A scoring call that hangs past its deadline is therefore abandoned:
its caller gets :class:`DeadlineExceededError` at once and the call's thread is left to finish (or
not) on its own. Each call runs in a fresh daemon thread, so a hung call never holds up the next
one, and :class:`DeadlineRunner` counts the abandoned calls that are still running. Once
``max_abandoned`` of them are, later calls fail at once with :class:`ScorerHungError` instead of
starting yet another thread that would hang too: the number of threads stays bounded, and the
runner recovers by itself as soon as the hung calls return.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

from guard.errors import GuardError

T = TypeVar("T")


class DeadlineExceededError(GuardError, TimeoutError):
    """A call took longer than its deadline and was abandoned."""


class ScorerHungError(GuardError, TimeoutError):
    """Too many abandoned calls are still running; new calls are refused until they return."""


class _Call(Generic[T]):
    """One call's state, shared between the caller and the worker thread."""

    __slots__ = ("abandoned", "done", "error", "finished", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.finished = False
        self.abandoned = False
        self.result: T | None = None
        self.error: BaseException | None = None


class DeadlineRunner:
    """Runs callables in worker threads and gives up on them after ``deadline_s``.

    Args:
        deadline_s: Longest a call may take, in seconds.
        max_abandoned: How many overrunning calls may still be running before new calls are
            refused with :class:`ScorerHungError`.
        thread_name: Prefix of the worker threads' names.
    """

    def __init__(self, deadline_s: float, *, max_abandoned: int = 2,
                 thread_name: str = "guard-score") -> None:
        if deadline_s <= 0:
            raise ValueError(f"deadline_s must be positive, got {deadline_s}")
        if max_abandoned < 1:
            raise ValueError(f"max_abandoned must be >= 1, got {max_abandoned}")
        self.deadline_s = deadline_s
        self.max_abandoned = max_abandoned
        self.thread_name = thread_name
        self._lock = threading.Lock()
        self._abandoned = 0
        self._serial = 0

    @property
    def abandoned(self) -> int:
        """Calls that overran their deadline and are still running."""
        with self._lock:
            return self._abandoned

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()``, or :class:`DeadlineExceededError` if it does not return within the deadline.

        Raises:
            DeadlineExceededError: ``fn`` overran; it keeps running in its thread, abandoned.
            ScorerHungError: ``max_abandoned`` earlier calls are still running; ``fn`` was not run.
            BaseException: Whatever ``fn`` raised, re-raised in the caller.
        """
        call: _Call[T] = _Call()
        with self._lock:
            if self._abandoned >= self.max_abandoned:
                raise ScorerHungError(
                    f"{self._abandoned} earlier scoring calls are still running past their "
                    f"{self.deadline_s} s deadline; refusing new calls until they return")
            self._serial += 1
            name = f"{self.thread_name}-{self._serial}"
        worker = threading.Thread(target=self._work, args=(fn, call), name=name, daemon=True)
        worker.start()
        if not call.done.wait(self.deadline_s):
            with self._lock:
                if not call.finished:  # it may have finished while the lock was taken
                    call.abandoned = True
                    self._abandoned += 1
                    raise DeadlineExceededError(f"scoring took longer than {self.deadline_s} s")
        if call.error is not None:
            raise call.error
        return cast(T, call.result)  # set whenever error is None

    def _work(self, fn: Callable[[], T], call: _Call[T]) -> None:
        try:
            call.result = fn()
        except BaseException as exc:  # handed to the caller, who decides
            call.error = exc
        finally:
            with self._lock:
                call.finished = True
                if call.abandoned:
                    self._abandoned -= 1
                    call.result = call.error = None  # nobody will read them
            call.done.set()
