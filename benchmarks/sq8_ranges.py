"""Which range should an 8-bit HNSW graph code its vectors on? Recall@10 after exact rescoring.

    python benchmarks/sq8_ranges.py [N]        (default 100,000 vectors of 384 dimensions)

The vectors are bench_index.py's synthetic clustered unit vectors; 300 fresh queries; HNSW M 32,
efConstruction 200, efSearch 128; each query's top 118 candidates (what ``Index.search_dense``
asks for at k = 100) are scored exactly and the top 10 compared with exact search. Variants: the
float32 graph; 8-bit codes with a range per dimension learnt from every vector; the same learnt
from the first 10% of the vectors sorted along one direction (a corpus added topic by topic); one
range for all dimensions learnt from that prefix; and the fixed range [-1, 1] sentsim uses.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_index import Synthetic, cpu_report, exact_top


def main() -> None:
    n, dim = (int(sys.argv[1]) if len(sys.argv) > 1 else 100_000), 384
    print(cpu_report())
    generator = Synthetic(n, dim)
    corpus = generator.sample(n).astype(np.float32)
    queries = generator.sample(300).astype(np.float32)
    order = np.argsort(corpus @ np.random.default_rng(1).normal(size=dim))
    in_order = corpus[order]  # one end of the distribution first
    exact = exact_top(queries, corpus, 10)

    def recall(name: str, make: Callable[[], faiss.Index], data: np.ndarray) -> None:
        start = time.time()
        index = make()
        index.hnsw.efConstruction = 200
        index.add(data)
        built = time.time() - start
        index.hnsw.efSearch = 128
        _, rows = index.search(queries, 118)
        ids = order[rows] if data is in_order else rows
        scores = np.einsum("qd,qkd->qk", queries, corpus[ids])
        top = np.take_along_axis(ids, np.argsort(-scores, axis=1)[:, :10], axis=1)
        found = np.mean([len(set(t) & set(e)) / 10 for t, e in zip(top, exact, strict=True)])
        print(f"{name:48s} build {built:5.1f} s  recall@10 {found:.4f}", flush=True)

    def eight_bit(kind: int, train: np.ndarray, margin: float) -> Callable[[], faiss.Index]:
        def make() -> faiss.Index:
            index = faiss.IndexHNSWSQ(dim, kind, 32, faiss.METRIC_INNER_PRODUCT)
            faiss.downcast_index(index.storage).sq.rangestat_arg = margin
            index.train(np.ascontiguousarray(train, dtype=np.float32))
            return index

        return make

    unit = np.stack([np.ones(dim), -np.ones(dim)])
    per_dim, uniform = faiss.ScalarQuantizer.QT_8bit, faiss.ScalarQuantizer.QT_8bit_uniform
    prefix = in_order[: n // 10]
    recall("float32", lambda: faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT), corpus)
    recall(
        "8-bit, a range per dimension from every vector", eight_bit(per_dim, corpus, 0.05), corpus
    )
    recall(
        "8-bit, a range per dimension from the first 10%",
        eight_bit(per_dim, prefix, 0.05),
        in_order,
    )
    recall("8-bit, one range from the first 10%", eight_bit(uniform, prefix, 0.05), in_order)
    recall("8-bit, the fixed range [-1, 1] (sentsim)", eight_bit(uniform, unit, 0.0), corpus)


if __name__ == "__main__":
    main()
