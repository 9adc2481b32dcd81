"""Where the time of a dense index query goes, and what a covering index would save.

    python benchmarks/profile_dense.py REAL.npy [--queries 500]

1. Indexes the real embeddings of ``benchmarks/embed_shared.py`` (HNSW; the first ``--queries``
   rows held out as queries), then profiles single top-100 ``Index.search_dense`` calls with
   cProfile (one faiss thread) and prints the mean latency and the costliest functions.
2. A sandbox SQLite table shaped like the index's ``passages`` (200,000 rows, each with a
   1.5 KB vector) times the owner lookup of 208 random keys — the candidate count of a top-100
   query before the third session — by rowid, and through a covering index on
   (key, doc_id, ordinal) forced with ``INDEXED BY`` (SQLite's planner prefers the rowid). The
   index now uses the covering index (``passages_owner``).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from sentsim.index import Document, EncoderIdentity, Index
from sentsim.machine import cpu_description


def profile_search(real: np.ndarray, queries: int) -> None:
    """Part 1: cProfile of ``search_dense`` on the real embeddings."""
    held, corpus = real[:queries], real[queries:]
    identity = EncoderIdentity("real", "profile", real.shape[1])
    with tempfile.TemporaryDirectory() as tmp:
        index = Index.create(Path(tmp) / "index", identity, ann="hnsw")
        for start in range(0, len(corpus), 10_000):
            stop = min(len(corpus), start + 10_000)
            docs = [Document(f"doc{i}", "text") for i in range(start, stop)]
            index.add(docs, None, corpus[start:stop])
        index.close()
        index = Index.open(Path(tmp) / "index", identity, readonly=True)
        faiss.omp_set_num_threads(1)
        for vector in held[:20]:  # warm-up
            index.search_dense(vector[None, :], 100)
        profiler = cProfile.Profile()
        tick = time.perf_counter()
        profiler.enable()
        for vector in held:
            index.search_dense(vector[None, :], 100)
        profiler.disable()
        print(f"{len(corpus):,} vectors: {1000 * (time.perf_counter() - tick) / len(held):.2f} ms")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(8)
        index.close()


def owner_lookup_sandbox(rows: int = 200_000, keys: int = 208, trials: int = 300) -> None:
    """Part 2: owner lookup by rowid against a covering index."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = sqlite3.connect(Path(tmp) / "sandbox.sqlite")
        conn.execute(
            "CREATE TABLE passages (key INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, "
            "ordinal INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL)"
        )
        blob = np.zeros(384, dtype=np.float32).tobytes()
        conn.executemany(
            "INSERT INTO passages(doc_id, ordinal, text, vector) VALUES (?, ?, ?, ?)",
            ((f"doc{i}", 0, "text", blob) for i in range(rows)),
        )
        conn.execute("CREATE INDEX passages_owner ON passages(key, doc_id, ordinal)")
        conn.commit()
        rng = random.Random(0)
        draws = [sorted(rng.sample(range(1, rows + 1), keys)) for _ in range(trials)]
        for label, hint in (("by rowid", ""), ("covering index", " INDEXED BY passages_owner")):
            tick = time.perf_counter()
            for draw in draws:
                marks = ",".join("?" * len(draw))
                sql = f"SELECT key, doc_id, ordinal FROM passages{hint} WHERE key IN ({marks})"
                {k: (d, o) for k, d, o in conn.execute(sql, draw)}
            ms = 1000 * (time.perf_counter() - tick) / trials
            print(f"owner lookup of {keys} keys among {rows:,} rows, {label}: {ms:.2f} ms")
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("real", type=Path, help="embeddings from benchmarks/embed_shared.py")
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args(argv)
    print(cpu_description())
    profile_search(np.load(args.real).astype(np.float32), args.queries)
    owner_lookup_sandbox()
    return 0


if __name__ == "__main__":
    sys.exit(main())
