"""Run a search pipeline over a BEIR data set and score it (``sentsim eval retrieval``)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder
from sentsim.evaluation.retrieval import BeirData, Run, evaluate_run, per_query
from sentsim.index import Document, Index
from sentsim.search import SearchPipeline, build_index, encoder_identity
from sentsim.settings import cache_root


@dataclass(frozen=True)
class RetrievalOutcome:
    """Metrics ×100, per-query metrics, the run, and mean seconds per query for each stage."""

    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    run: Run
    latency: dict[str, float]


def corpus_index(data: BeirData, encoder: BiEncoder, folder: Path | None = None) -> Index:
    """Open the cached index of ``data.corpus`` for ``encoder``, building it on first use."""
    identity = encoder_identity(encoder)
    digest = hashlib.sha256(identity.weights_hash.encode())
    for doc_id in sorted(data.corpus):
        title, text = data.corpus[doc_id]
        digest.update(f"{doc_id}\x00{title}\x00{text}\x01".encode())
    path = folder or cache_root() / "indexes" / digest.hexdigest()[:20]
    if (path / "manifest.json").exists():
        return Index.open(path, identity, readonly=True)
    docs = [Document(d, text, title) for d, (title, text) in data.corpus.items()]
    build_index(docs, path, encoder).close()
    return Index.open(path, identity, readonly=True)


def evaluate_retrieval(
    data: BeirData,
    encoder: BiEncoder,
    *,
    retriever: str = "dense",
    reranker: CrossEncoder | None = None,
    k_retrieve: int = 100,
    hybrid: str = "rrf",
    hybrid_weight: float = 0.5,
    index: Index | None = None,
    query_vectors: np.ndarray | None = None,
) -> RetrievalOutcome:
    """Search every query of ``data``; rank by the re-ranker when given, else by the first stage.

    ``query_vectors`` (rows in ``data.queries`` order) saves encoding the queries again.
    """
    own = index is None
    idx = index or corpus_index(data, encoder)
    try:
        pipeline = SearchPipeline(
            idx,
            encoder,
            reranker,
            retriever=retriever,
            k_retrieve=k_retrieve,
            hybrid=hybrid,
            hybrid_weight=hybrid_weight,
        )
        qids = list(data.queries)
        texts = [data.queries[q] for q in qids]
        start = time.perf_counter()
        candidates = pipeline.first_stage(texts, query_vectors=query_vectors)
        first = (time.perf_counter() - start) / len(qids)
        run: Run = {}
        rerank_seconds = 0.0
        for qid, text, cands in zip(qids, texts, candidates, strict=True):
            if reranker is None:
                run[qid] = cands
                continue
            t0 = time.perf_counter()
            ids = [d for d, _ in cands]
            scores = pipeline.rerank_scores(text, ids)
            rerank_seconds += time.perf_counter() - t0
            run[qid] = [(d, float(s)) for d, s in zip(ids, scores, strict=True)]
    finally:
        if own:
            idx.close()
    latency = {"first_stage_ms": round(1000 * first, 2)}
    if reranker is not None:
        latency["rerank_ms"] = round(1000 * rerank_seconds / len(qids), 1)
    return RetrievalOutcome(evaluate_run(run, data.qrels), per_query(run, data.qrels), run, latency)
