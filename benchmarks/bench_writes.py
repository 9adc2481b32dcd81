"""What one write costs the server (``sentsim serve --writable``) on an index of N passages.

    python benchmarks/bench_writes.py [N,N,...]     (default 1000,20000,60000)

The server opens the index for writing only while it writes
(:class:`~sentsim.index_writes.SharedWriter`): each opening loads the search cache and each
closing saves it, so a write costs more as the index grows. For each N (one passage a document,
384-dimensional random unit vectors, ``ann="auto"``: flat below 50,000 passages, HNSW above) it
prints, as the median of 5 runs:

- ``shared``: a one-document upsert through ``SharedWriter`` (open, look up, add, close);
- ``held``: the same upsert on an :class:`~sentsim.index.Index` kept open for writing (what a
  server holding the writer lock, and so locking ``sentsim index add`` out, would pay);
- ``refresh``: a read-only index's :meth:`~sentsim.index.Index.refresh` after such a write (what
  the server's next search pays to see it);
- ``8 at once``: 8 threads upserting one document each at the same moment, the wall time and
  how many times the index was opened for them.

Encoding is not timed (it is the model's, as for any request).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sentsim.index import Document, EncoderIdentity, Index
from sentsim.index_writes import SharedWriter

DIM = 384
ENCODER = EncoderIdentity("bench-writes", "0123456789abcdef", DIM)
RUNS = 5


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def median_ms(action: Callable[[int], object]) -> float:
    times = []
    for run in range(RUNS):
        start = time.perf_counter()
        action(run)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench(n: int, folder: Path) -> None:
    rng = np.random.default_rng(0)
    with Index.create(folder, ENCODER) as index:
        for start in range(0, n, 10_000):
            count = min(10_000, n - start)
            docs = [Document(f"d{start + i}", f"text {start + i}") for i in range(count)]
            index.add(docs, None, unit(rng, count))
    vector = unit(rng, 1)
    writer = SharedWriter(folder, ENCODER)
    reader = Index.open(folder, ENCODER, readonly=True)

    def shared(run: int) -> None:
        writer.upsert([Document(f"s{run}", "new")], [["new"]], vector)

    def held(run: int, index: Index) -> None:
        index.add([Document(f"h{run}", "new")], None, vector, upsert=True)

    shared_ms = median_ms(shared)
    refresh_ms = []
    for run in range(RUNS):
        writer.upsert([Document(f"r{run}", "new")], [["new"]], vector)
        refresh_ms.append(_timed(reader.refresh))
    with Index.open(folder, ENCODER) as index:
        held_ms = median_ms(lambda run: held(run, index))
    reader.close()

    before = writer.stats.calls
    threads = [
        threading.Thread(target=writer.upsert, args=([Document(f"c{i}", "new")], [["new"]], vector))
        for i in range(8)
    ]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    together = 1000 * (time.perf_counter() - start)
    with Index.open(folder, ENCODER, readonly=True) as index:
        kind = index.info().ann.value
    print(
        f"{n:>7,} passages ({kind}): shared {shared_ms:7.1f} ms, held {held_ms:6.1f} ms, "
        f"refresh {statistics.median(refresh_ms):6.1f} ms; 8 at once {together:7.1f} ms in "
        f"{writer.stats.calls - before} opening(s)"
    )


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return 1000 * (time.perf_counter() - start)


def main(argv: list[str]) -> int:
    sizes = [int(s) for s in (argv[0] if argv else "1000,20000,60000").split(",")]
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            bench(n, Path(tmp) / "idx")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
