"""Metadata filters (``where=``) on an index of N documents: equality, negation and ranges.

    python benchmarks/bench_filters.py [N]     (default 20,000 one-passage documents)

Each document carries ``lang`` (one of 5), ``year`` (an integer 2000-2024), ``date`` (an ISO
date), ``price`` (a real), ``tags`` (3 of 51 strings) and ``région`` (one of 4; its key needs a
JSON escape, so the filter walks the keys instead of following a path). For each filter it
prints how many documents match; the SQL selection of their passages (what a filtered dense
search reads once per filter and then keeps), as the best and the median of 15 runs, and as
SQLite virtual-machine steps, which a busy machine does not change; the first filtered dense
search (the selection, then exact search over it); and a filtered BM25 search (the filter runs
inside each BM25 query). Vectors are random, 64 dimensions: the filter, not the search, is timed.
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from sentsim.index import Document, EncoderIdentity, Index, Where

FILTERS: dict[str, dict[str, Any]] = {
    "lang=en": {"lang": "en"},
    "lang in [en,fr]": {"lang": ["en", "fr"]},
    "tags=t3 (array)": {"tags": "t3"},
    "région=Bayern (keys walked)": {"région": "Bayern"},
    "lang=en & year=2020": {"lang": "en", "year": 2020},
    "2020 <= year < 2024": {"year": {"$gte": 2020, "$lt": 2024}},
    "date >= 2023-01-01": {"date": {"$gte": "2023-01-01"}},
    "price < 100": {"price": {"$lt": 100}},
    "lang != de": {"lang": {"$ne": "de"}},
    "lang nin [de,fr]": {"lang": {"$nin": ["de", "fr"]}},
    "tags >= t40 (array)": {"tags": {"$gte": "t40"}},
    "région > C (keys walked)": {"région": {"$gt": "C"}},
    "région != Kent (keys walked)": {"région": {"$ne": "Kent"}},
    "lang=en & price<100 & year>=2020": {
        "lang": "en",
        "price": {"$lt": 100},
        "year": {"$gte": 2020},
    },
}


def documents(n: int) -> list[Document]:
    rng = random.Random(0)
    docs = []
    for i in range(n):
        date = f"{rng.randint(2015, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        metadata = {
            "lang": rng.choice(["en", "fr", "de", "es", "it"]),
            "year": rng.randint(2000, 2024),
            "date": date,
            "price": round(rng.uniform(0, 500), 2),
            "tags": [f"t{rng.randint(0, 50)}" for _ in range(3)],
            "région": rng.choice(["Bayern", "Bretagne", "Lazio", "Kent"]),
        }
        docs.append(Document(f"d{i}", f"word{i % 97} text{i % 13} more{i % 31}", "", metadata))
    return docs


def timed(call: Callable[[], object], runs: int = 15) -> list[float]:
    """Milliseconds of each of ``runs`` calls."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    n, dim = (int(sys.argv[1]) if len(sys.argv) > 1 else 20_000), 64
    vectors = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        index = Index.create(Path(tmp) / "idx", EncoderIdentity("toy", "feedface00000000", dim))
        index.add(documents(n), None, vectors)
        store = index._store
        assert store is not None
        print(f"{n:,} documents; ms as best / median of 15; VM steps in millions")
        print(f"{'filter':34} {'docs':>6}  {'selection':>13} {'steps':>6}  {'first dense':>13}")
        for name, raw in FILTERS.items():
            where = Where.parse(raw)
            assert where is not None
            condition, params = where.sql("d")
            sql = f"SELECT count(*) FROM documents AS d WHERE {condition}"
            matched = store.conn.execute(sql, params).fetchone()[0]
            select = timed(partial(store.filtered_keys, where))
            steps = [0]

            def tick(steps: list[int] = steps) -> int:
                steps[0] += 1000
                return 0

            store.conn.set_progress_handler(tick, 1000)
            store.filtered_keys(where)
            store.conn.set_progress_handler(None, 1000)

            def first(w: Where = where) -> None:
                index._subsets.clear()  # the selection is read on a filter's first search
                index.search_dense(vectors[:1], 10, where=w)

            dense = timed(first)
            bm25 = timed(partial(index.search_bm25, ["word5 text3"], 10, where=where))
            print(
                f"{name:34} {matched:6d}  {min(select):5.1f} / {statistics.median(select):5.1f} "
                f"{steps[0] / 1e6:6.2f}  {min(dense):5.1f} / {statistics.median(dense):5.1f}  "
                f"bm25 {min(bm25):5.1f} / {statistics.median(bm25):5.1f}"
            )
        index.close()


if __name__ == "__main__":
    main()
