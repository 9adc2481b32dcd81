"""The index's lexical side, SQLite FTS5 ``bm25()``, against ``bm25s`` on the same data.

    python benchmarks/bench_bm25.py [--scifact-split report] [--helpcenter-split dev]

Two corpora: SciFact (5,183 abstracts; our claim split of ``resources/splits``, qrels from
``qrels/train.tsv``) and the help center (154 articles; Banking77 questions of a split: ``dev`` is
the held-out tenth of train, ``test`` the 3,080 test questions). For each engine it reports
build time, the time to add one document to a built index (FTS5: one transaction; bm25s cannot
add, so a full re-index), single-query latency (p50 / p99) and quality (nDCG@10, MRR@10,
Recall@100, Accuracy@1). Both engines score title + text with Okapi BM25 (k1 1.2 / b 0.75 for
FTS5, fixed by SQLite; bm25s's defaults k1 1.5 / b 0.75, English stop words, no stemming).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import bm25s
import numpy as np

from sentsim.corpus import document_text
from sentsim.evaluation.retrieval import BeirData, Run, evaluate_run, load_beir
from sentsim.helpcenter import write_beir
from sentsim.index import Document, EncoderIdentity, Index
from sentsim.machine import cpu_description
from sentsim.models import RESOURCES
from sentsim.settings import dataset_path

DEPTH = 100


def _docs(data: BeirData) -> list[Document]:
    return [Document(i, text, title) for i, (title, text) in data.corpus.items()]


def _latency(search: object, queries: list[str]) -> tuple[float, float]:
    times = []
    for q in queries:
        tick = time.perf_counter()
        search(q)  # type: ignore[operator]
        times.append(time.perf_counter() - tick)
    p50, p99 = np.percentile(np.asarray(times) * 1000, [50, 99])
    return float(p50), float(p99)


def run_fts5(data: BeirData, folder: Path) -> tuple[Run, dict[str, float]]:
    """Build the sentsim index (vectors are placeholders: 1-d zeros) and search it by BM25."""
    docs = _docs(data)
    identity = EncoderIdentity("none", "bench", 1)
    tick = time.perf_counter()
    index = Index.create(folder / "fts", identity, ann="flat")
    index.add(docs, None, np.zeros((len(docs), 1), dtype=np.float32))
    build = time.perf_counter() - tick
    tick = time.perf_counter()
    index.add([Document("extra", "one more document about savings")], None, np.zeros((1, 1)))
    add_one = time.perf_counter() - tick
    qids = list(data.queries)
    hits = index.search_bm25([data.queries[q] for q in qids], DEPTH)
    run = {q: [(h.doc_id, h.score) for h in row] for q, row in zip(qids, hits, strict=True)}
    p50, p99 = _latency(lambda q: index.search_bm25([q], DEPTH), list(data.queries.values()))
    index.close()
    return run, {"build_s": build, "add_one_s": add_one, "p50_ms": p50, "p99_ms": p99}


def run_bm25s(data: BeirData) -> tuple[Run, dict[str, float]]:
    """Index with bm25s and retrieve; adding a document means indexing everything again."""
    docs = _docs(data)
    ids = [d.id for d in docs]

    def build(texts: list[str]) -> bm25s.BM25:
        retriever = bm25s.BM25()
        tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
        retriever.index(tokens, show_progress=False)
        return retriever

    texts = [document_text(d) for d in docs]
    tick = time.perf_counter()
    retriever = build(texts)
    build_s = time.perf_counter() - tick
    tick = time.perf_counter()
    build([*texts, "one more document about savings"])
    add_one = time.perf_counter() - tick
    depth = min(DEPTH, len(ids))

    def search(q: str) -> tuple[np.ndarray, np.ndarray]:
        tokens = bm25s.tokenize([q], stopwords="en", show_progress=False)
        if not tokens.vocab:  # only stop words: bm25s cannot retrieve an empty query
            return np.empty((1, 0), dtype=np.int64), np.empty((1, 0))
        return retriever.retrieve(tokens, k=depth, show_progress=False)

    run = {}
    for qid, text in data.queries.items():
        rows, scores = search(text)
        run[qid] = [(ids[int(r)], float(s)) for r, s in zip(rows[0], scores[0], strict=True)]
    p50, p99 = _latency(search, list(data.queries.values()))
    return run, {"build_s": build_s, "add_one_s": add_one, "p50_ms": p50, "p99_ms": p99}


def report(name: str, data: BeirData, folder: Path) -> None:
    print(f"\n{name}: {len(data.corpus):,} documents, {len(data.queries):,} queries")
    print(
        f"{'engine':8} {'build s':>8} {'add 1 s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'nDCG@10':>8} {'MRR@10':>7} {'R@100':>6} {'Acc@1':>6}"
    )
    for engine, (run, timing) in (
        ("fts5", run_fts5(data, folder)),
        ("bm25s", run_bm25s(data)),
    ):
        m = evaluate_run(run, data.qrels)
        print(
            f"{engine:8} {timing['build_s']:8.2f} {timing['add_one_s']:8.3f} "
            f"{timing['p50_ms']:7.2f} {timing['p99_ms']:7.2f} {m['ndcg@10']:8.2f} "
            f"{m['mrr@10']:7.2f} {m['recall@100']:6.2f} {m['accuracy@1']:6.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scifact-split", default="report", choices=["train", "select", "report"])
    parser.add_argument("--helpcenter-split", default="dev", choices=["dev", "test"])
    args = parser.parse_args(argv)
    print(cpu_description())
    with tempfile.TemporaryDirectory(prefix="bench-bm25-") as tmp:
        root = Path(tmp)
        ids = (RESOURCES / "splits" / f"scifact-{args.scifact_split}.txt").read_text().split()
        scifact = load_beir(dataset_path("scifact"), "train", queries_subset=ids)
        report(f"SciFact, {args.scifact_split} claims", scifact, root / "scifact")
        beir = write_beir(root / "helpcenter-data", args.helpcenter_split)
        helpcenter = load_beir(beir, args.helpcenter_split)
        report(f"help center, Banking77 {args.helpcenter_split}", helpcenter, root / "helpcenter")
    return 0


if __name__ == "__main__":
    sys.exit(main())
