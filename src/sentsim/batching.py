"""Requests that arrive together run together: one model call for the items of all waiting.

A server thread answering one short text pays a whole forward pass for it: tokenizer, Python and
kernel set-up that a batch of 32 pays once. :class:`Coalescer` lets threads that wait for the same
model share its calls. Each thread queues its job, then takes the model's lock; whoever holds the
lock runs every job queued by then (up to ``max_items`` items, or the sizes jobs declare),
grouped by key, one call a group, and hands each thread its rows. Nothing waits on a timer: a job
queued while the model is idle runs at once, alone, and jobs queued while it is busy run together
when it is free, so batches grow with the load and latency never exceeds one call plus the call
already running.

Rows come back as the model gives them for the combined batch: for a transformer with smart
batching (texts sorted by length, padded per batch) a text's vector may differ from the one it
gets alone in the last float32 digits (padding changes the order of additions), never more.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar


class Rows(Protocol):
    """What a runner returns: one row (or value) per item, in order, that slices (array, list)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> Any: ...


Item = TypeVar("Item")
R = TypeVar("R", bound=Rows)

#: ``run(key, items)`` → one row (or one value) per item, in order: an array's rows, a list.
Runner = Callable[[Any, list[Item]], R]


@dataclass(eq=False)
class _Job(Generic[Item, R]):
    key: Hashable
    items: list[Item]
    size: int  # what the job counts toward max_items
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None


@dataclass
class BatchStats:
    """What the coalescer has done: model calls, jobs and items (for /health and benchmarks)."""

    calls: int = 0
    jobs: int = 0
    items: int = 0
    largest_call: int = 0


class Coalescer(Generic[Item, R]):
    """Run concurrent jobs' items through ``run`` together, under ``lock``.

    ``lock`` is the model's lock, shared with anything else that uses the model (the server's
    index refreshes); ``max_items`` bounds the items (or declared sizes) one call combines (a job
    larger than it runs alone; 1: every job runs alone, as a server without batching does).
    """

    def __init__(
        self,
        run: Runner[Item, R],
        lock: threading.Lock,
        *,
        max_items: int = 256,
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self.run = run
        self.lock = lock
        self.max_items = max_items
        self.stats = BatchStats()
        self._queue: deque[_Job[Item, R]] = deque()
        self._queue_lock = threading.Lock()

    def __call__(self, key: Hashable, items: Sequence[Item], *, size: int | None = None) -> R:
        """``run(key, items)``'s rows for ``items``, computed alone or beside other jobs'.

        ``size``: what the job counts toward ``max_items`` (default: its item count); a search
        whose judge reads 100 candidates weighs 100 pairs, not one query.
        """
        job: _Job[Item, R] = _Job(key, list(items), len(items) if size is None else size)
        with self._queue_lock:
            self._queue.append(job)
        while not job.done.is_set():
            with self.lock:
                if not job.done.is_set():  # another thread may have run it while this one waited
                    self._run_queued()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _take(self) -> list[_Job[Item, R]]:
        """The queued jobs the next call runs: the oldest first, up to ``max_items`` in size."""
        taken: list[_Job[Item, R]] = []
        total = 0
        with self._queue_lock:
            while self._queue:
                size = self._queue[0].size
                if taken and total + size > self.max_items:
                    break
                taken.append(self._queue.popleft())
                total += size
        return taken

    def _run_queued(self) -> None:
        """Run what is queued now, grouped by key (called holding :attr:`lock`)."""
        groups: dict[Hashable, list[_Job[Item, R]]] = {}
        for job in self._take():
            groups.setdefault(job.key, []).append(job)
        try:
            for key, jobs in groups.items():
                try:
                    self._run_group(key, jobs)
                except Exception as exc:  # a fault of the batch: its jobs get it, not the caller
                    _fail(jobs, exc)
        finally:  # cut off (KeyboardInterrupt): no thread may wait for ever on a job taken here
            for jobs in groups.values():
                _fail(jobs, RuntimeError("the batch was cut off before this request ran"))

    def _run_group(self, key: Hashable, jobs: list[_Job[Item, R]]) -> None:
        items = [item for job in jobs for item in job.items]
        try:
            rows = self.run(key, items)
        except Exception as exc:
            if len(jobs) == 1:
                jobs[0].error = exc
                jobs[0].done.set()
                return
            for job in jobs:  # one job's bad input must fail that job, not its neighbours
                self._run_group(key, [job])
            return
        if len(rows) != len(items):
            raise RuntimeError(f"the model gave {len(rows)} rows for {len(items)} items")
        self.stats.calls += 1
        self.stats.jobs += len(jobs)
        self.stats.items += len(items)
        self.stats.largest_call = max(self.stats.largest_call, len(items))
        start = 0
        for job in jobs:
            job.result = rows[start : start + len(job.items)]
            start += len(job.items)
            job.done.set()


def _fail(jobs: list[_Job[Any, Any]], error: BaseException) -> None:
    """Give each of ``jobs`` that has no answer yet ``error``."""
    for job in jobs:
        if not job.done.is_set():
            job.error = error
            job.done.set()
