"""The coalescer: jobs that wait together run as one call, and each gets its own rows back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sentsim.batching import Coalescer


class Recorder:
    """A model stand-in: each call's key and items are kept; a row is ``[value, len(call)]``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, list[int]]] = []

    def __call__(self, key: Any, items: list[int]) -> np.ndarray:
        if any(item < 0 for item in items):
            raise ValueError(f"negative item in {items}")
        self.calls.append((key, list(items)))
        return np.array([[item, len(items)] for item in items], dtype=np.float32).reshape(-1, 2)


def run_while_busy(
    coalescer: Coalescer[int, np.ndarray], jobs: list[tuple[Any, list[int]]]
) -> list[np.ndarray | BaseException]:
    """Queue ``jobs`` from threads while the model's lock is held, then free it; their answers."""
    answers: list[np.ndarray | BaseException] = [RuntimeError("no answer")] * len(jobs)

    def ask(i: int, key: Any, items: list[int]) -> None:
        try:
            answers[i] = coalescer(key, items)
        except Exception as exc:
            answers[i] = exc

    threads = [threading.Thread(target=ask, args=(i, *job)) for i, job in enumerate(jobs)]
    with coalescer.lock:  # the model is busy: every job queues behind it
        for thread in threads:
            thread.start()
        wait_until(lambda: len(coalescer._queue) == len(jobs))
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), "a request never got its answer"
    return answers


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_job_alone_is_one_call() -> None:
    model = Recorder()
    out = Coalescer(model, threading.Lock())("k", [3, 4])
    assert out.tolist() == [[3, 2], [4, 2]]
    assert model.calls == [("k", [3, 4])]


def test_jobs_waiting_together_share_one_call_and_get_their_own_rows() -> None:
    model = Recorder()
    coalescer = Coalescer(model, threading.Lock())
    jobs: list[tuple[Any, list[int]]] = [("k", [i, 10 + i]) for i in range(6)]
    answers = run_while_busy(coalescer, jobs)
    assert len(model.calls) == 1 and len(model.calls[0][1]) == 12
    for (_, items), answer in zip(jobs, answers, strict=True):
        assert isinstance(answer, np.ndarray)
        assert answer[:, 0].tolist() == items  # its own rows, in its order
        assert set(answer[:, 1].tolist()) == {12}  # computed in the combined call
    assert coalescer.stats.calls == 1 and coalescer.stats.jobs == 6
    assert coalescer.stats.items == 12 and coalescer.stats.largest_call == 12


def test_keys_are_never_mixed() -> None:
    """Queries and documents (different prompts) or fused and bare scores are separate calls."""
    model = Recorder()
    jobs: list[tuple[Any, list[int]]] = [("query", [1]), ("doc", [2]), ("query", [3])]
    answers = run_while_busy(Coalescer(model, threading.Lock()), jobs)
    assert sorted(model.calls) == [("doc", [2]), ("query", [1, 3])]
    assert [a[0, 0] for a in answers if isinstance(a, np.ndarray)] == [1, 2, 3]


def test_max_items_bounds_a_call_and_one_turns_batching_off() -> None:
    model = Recorder()
    jobs: list[tuple[Any, list[int]]] = [("k", [i, i]) for i in range(5)]
    run_while_busy(Coalescer(model, threading.Lock(), max_items=4), jobs)
    assert [len(items) for _, items in model.calls] == [4, 4, 2]
    model.calls.clear()
    run_while_busy(Coalescer(model, threading.Lock(), max_items=1), jobs)
    assert [len(items) for _, items in model.calls] == [2] * 5  # each request alone
    model.calls.clear()
    big: list[tuple[Any, list[int]]] = [("k", list(range(9)))]
    run_while_busy(Coalescer(model, threading.Lock(), max_items=4), big)
    assert [len(items) for _, items in model.calls] == [9]  # larger than a batch: alone, whole


def test_a_jobs_size_counts_toward_max_items_in_place_of_its_item_count() -> None:
    """A search carries one query but has its judge read ~100 candidates: it says so."""
    model = Recorder()
    coalescer = Coalescer(model, threading.Lock(), max_items=10)
    answers: list[np.ndarray] = []
    threads = [
        threading.Thread(target=lambda i=i: answers.append(coalescer("k", [i], size=4)))
        for i in range(5)
    ]
    with coalescer.lock:
        for thread in threads:
            thread.start()
        wait_until(lambda: len(coalescer._queue) == 5)
    for thread in threads:
        thread.join(timeout=10)
    assert [len(items) for _, items in model.calls] == [2, 2, 1]  # 4 + 4 ≤ 10 < 4 + 4 + 4
    assert sorted(int(a[0, 0]) for a in answers) == list(range(5))


def test_a_bad_job_fails_alone_and_its_neighbours_are_answered() -> None:
    model = Recorder()
    jobs: list[tuple[Any, list[int]]] = [("k", [1]), ("k", [-1]), ("k", [2, 3])]
    answers = run_while_busy(Coalescer(model, threading.Lock()), jobs)
    assert isinstance(answers[1], ValueError) and "negative" in str(answers[1])
    assert isinstance(answers[0], np.ndarray) and answers[0][:, 0].tolist() == [1]
    assert isinstance(answers[2], np.ndarray) and answers[2][:, 0].tolist() == [2, 3]


def test_a_model_giving_the_wrong_row_count_fails_its_jobs_not_the_caller() -> None:
    coalescer = Coalescer(lambda key, items: np.zeros((len(items) + 1, 2)), threading.Lock())
    with pytest.raises(RuntimeError, match="2 rows for 1 items"):
        coalescer("k", [5])
    answers = run_while_busy(coalescer, [("k", [1]), ("k", [2])])
    assert all(isinstance(a, RuntimeError) for a in answers)


def test_max_items_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Coalescer(Recorder(), threading.Lock(), max_items=0)
