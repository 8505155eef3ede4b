"""Micro-batching for the output guard: concurrent async checks share one scoring call.

A server that checks each reply as it is produced sends many small, concurrent checks. A
:class:`MicroBatcher` queues them on the event loop and hands them to the guard's own
:meth:`~guard.output_guard.OutputGuard.check` in one call: once ``max_batch`` texts are waiting,
or ``max_wait_ms`` after the oldest waiting text arrived, whichever comes first. Normalisation,
policy, deadline and fail-closed behaviour are therefore exactly those of ``check``::

    guard = OutputGuard.default(deadline_s=0.5)
    batcher = guard.with_batcher(max_batch=32, max_wait_ms=5)
    ...
    decisions = await guard.acheck(["reply one", "reply two"])   # goes through the batcher
    ...
    await batcher.aclose()

**Device.** Nothing here knows about devices: batches are scored through the guard's scorer,
which already runs where it was built (CUDA when its backend put it there). Larger batches are
what makes a GPU scorer worth having; one batch is in flight at a time, so the next one fills
while the device works.

**Routing.** Each caller gets exactly its own decisions, in order: a request's texts are queued
as (request, index) items and every decision is put back at its item's place. A request larger
than ``max_batch`` is split over several batches, so no ``check`` call ever sees more than
``max_batch`` texts. A request holding an item that ``check`` refuses on its own (not a string,
longer than the guard's ``max_chars``) is checked alone, so that with ``on_error="raise"`` its
error never reaches the other callers.

**Failures.** When the batched ``check`` raises, every caller in the batch fails as the guard's
``on_error`` says: the safe message (``"block"``, the default), the unguarded text with a warning
(``"allow"``), or its own :class:`~guard.errors.GuardCheckError` (``"raise"``; with that mode a
scorer failure or deadline in a batch reaches every caller in it, as it would in one ``check``).
A closed batcher refuses new requests with :class:`BatcherClosedError` and fails the requests
still waiting in the same way; a batch already in flight is delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guard.errors import ConfigError, GuardCheckError, GuardError, UsageError

if TYPE_CHECKING:
    from guard.output_guard import GuardDecision, OutputGuard


class BatcherClosedError(GuardError, RuntimeError):
    """A request was sent to a :class:`MicroBatcher` that is closed."""


@dataclass(eq=False)
class _Request:
    """One caller's texts, the decisions found so far, and the future it waits on."""

    texts: list[Any]
    future: asyncio.Future[list[GuardDecision]]
    decisions: list[GuardDecision | None]
    left: int
    arrived: float


_Item = tuple[_Request, int]


class MicroBatcher:
    """Coalesces concurrent async checks into single calls of ``guard.check``.

    Use it directly (``await batcher.check(texts)``) or attach it to its guard with
    :meth:`OutputGuard.with_batcher <guard.output_guard.OutputGuard.with_batcher>`, so that
    :meth:`~guard.output_guard.OutputGuard.acheck` and
    :meth:`~guard.output_guard.OutputGuard.astream` go through it. One batcher serves one event
    loop at a time; it starts its worker task on first use and may be reused in a later loop
    once idle. Its methods are to be called from the loop's thread.

    Args:
        guard: The guard whose ``check`` scores each batch.
        max_batch: Most texts in one ``check`` call (default 32).
        max_wait_ms: Longest a text waits for others to join its batch, from the arrival of
            the oldest waiting text, in milliseconds (default 5). ``0`` batches only what is
            queued at the same time.

    Raises:
        ConfigError: ``max_batch`` is below 1 or ``max_wait_ms`` is negative or not finite.
    """

    def __init__(self, guard: OutputGuard, *, max_batch: int = 32,
                 max_wait_ms: float = 5.0) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ConfigError(f"max_batch must be an integer >= 1, got {max_batch!r}")
        if (isinstance(max_wait_ms, bool) or not isinstance(max_wait_ms, (int, float))
                or not math.isfinite(max_wait_ms) or max_wait_ms < 0):
            raise ConfigError(f"max_wait_ms must be a finite number >= 0, got {max_wait_ms!r}")
        self.guard = guard
        self.max_batch = max_batch
        self.max_wait_ms = float(max_wait_ms)
        self._items: deque[_Item] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called; a closed batcher takes no new requests."""
        return self._closed

    async def check(self, texts: str | Sequence[str]) -> list[GuardDecision]:
        """Decide on each text, batched with concurrent requests; one decision per input.

        Args:
            texts: A string or a sequence of strings, as for ``OutputGuard.check``.

        Returns:
            One decision per text, in order: this caller's own.

        Raises:
            UsageError: ``texts`` is neither a string nor a sequence of strings, or the batcher
                is busy in another event loop.
            BatcherClosedError: The batcher is closed.
            GuardCheckError: Scoring failed and the guard has ``on_error="raise"``.
        """
        from guard.output_guard import _as_batch

        batch = _as_batch(texts)
        if self._closed:
            raise BatcherClosedError("this MicroBatcher is closed; check with the guard itself "
                                     "or attach a new batcher")
        if not batch:
            return []
        guard = self.guard
        if any(not isinstance(t, str) or len(t) > guard.max_chars for t in batch):
            return await asyncio.to_thread(guard.check, batch)  # alone: its failure is its own
        loop = asyncio.get_running_loop()
        wakeup = self._start(loop)
        request = _Request(batch, loop.create_future(), [None] * len(batch), len(batch),
                           loop.time())
        was_empty = not self._items
        self._items.extend((request, i) for i in range(len(batch)))
        if was_empty or len(self._items) >= self.max_batch:
            wakeup.set()
        return await request.future  # a cancelled caller's items are skipped

    def close(self) -> None:
        """Refuse new requests, fail the waiting ones (as ``on_error`` says) and detach.

        A batch already being scored is still delivered; :meth:`aclose` waits for it.
        """
        if self._closed:
            return
        self._closed = True
        waiting = list(self._items)
        self._items.clear()
        self._fail(waiting, BatcherClosedError("the batcher was closed before the check ran"))
        if getattr(self.guard, "_batcher", None) is self:
            self.guard._batcher = None
        if self._wakeup is not None and self._loop is not None and not self._loop.is_closed():
            self._wakeup.set()

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the batch in flight (if any) is delivered."""
        self.close()
        worker = self._worker
        if (worker is not None and not worker.done()
                and worker.get_loop() is asyncio.get_running_loop()):
            await worker

    async def __aenter__(self) -> MicroBatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the worker ------------------------------------------------------------------------

    def _start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Event:
        """The wake-up event of the worker serving ``loop``, starting the worker if needed."""
        worker = self._worker
        if worker is not None and not worker.done() and self._wakeup is not None:
            if self._loop is not loop:
                raise UsageError("this MicroBatcher is serving another event loop; use one "
                                 "batcher per loop")
            return self._wakeup
        # requests left from a loop that has ended can never be answered or awaited
        self._items = deque(item for item in self._items
                            if item[0].future.get_loop() is loop and not item[0].future.done())
        self._loop = loop
        self._wakeup = wakeup = asyncio.Event()
        self._worker = loop.create_task(self._run(wakeup), name="guard-micro-batcher")
        return wakeup

    async def _run(self, wakeup: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        batch: list[_Item] = []
        try:
            while True:
                if not self._items:
                    if self._closed:
                        return
                    wakeup.clear()
                    await wakeup.wait()
                    continue
                if len(self._items) < self.max_batch and not self._closed:
                    due = self._items[0][0].arrived + self.max_wait_ms / 1000
                    if due > loop.time():
                        wakeup.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wakeup.wait(), due - loop.time())
                        continue  # look again: full, due, or closed
                batch = self._take()
                if batch:
                    await self._score(batch)
                    batch = []
        except BaseException as exc:  # cancelled or broken: nobody may be left waiting
            self._fail([*batch, *self._items], exc)
            self._items.clear()
            raise

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        while self._items and len(batch) < self.max_batch:
            item = self._items.popleft()
            if not item[0].future.done():  # its caller was cancelled, or failed already
                batch.append(item)
        return batch

    async def _score(self, batch: list[_Item]) -> None:
        texts = [request.texts[i] for request, i in batch]
        try:
            decisions = await asyncio.to_thread(self.guard.check, texts)
            if len(decisions) != len(texts):
                raise GuardError(f"check returned {len(decisions)} decisions for "
                                 f"{len(texts)} texts")
        except Exception as exc:  # fail every caller in the batch, as on_error says
            self._fail(batch, exc)
            return
        for (request, i), decision in zip(batch, decisions, strict=True):
            self._put(request, i, decision)

    # -- delivering ------------------------------------------------------------------------

    @staticmethod
    def _open(request: _Request) -> bool:
        future = request.future
        return not future.done() and not future.get_loop().is_closed()

    def _put(self, request: _Request, index: int, decision: GuardDecision) -> None:
        if not self._open(request):
            return
        request.decisions[index] = decision
        request.left -= 1
        if request.left == 0:
            request.future.set_result([d for d in request.decisions if d is not None])

    def _fail(self, items: list[_Item], exc: BaseException) -> None:
        reason = f"batched check failed: {exc!r}"[:500]
        for request, i in items:
            if not self._open(request):
                continue
            if self.guard.on_error == "raise":
                if isinstance(exc, GuardCheckError):
                    error = GuardCheckError(*exc.args)
                else:
                    error = GuardCheckError(reason)
                error.__cause__ = exc
                request.future.set_exception(error)  # one per caller, never shared
            else:
                text = request.texts[i]
                self._put(request, i, self.guard._failure(
                    text if isinstance(text, str) else "", reason))
