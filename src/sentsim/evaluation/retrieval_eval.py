"""Run a search pipeline over a BEIR data set and score it (``sentsim eval retrieval``)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder
from sentsim.evaluation.retrieval import BeirData, Run, capped_metrics, evaluate_run, per_query
from sentsim.index import Document, Index
from sentsim.search import (
    ExampleQueries,
    SearchPipeline,
    cache_key,
    cached_index,
    rerank_fuse,
)
from sentsim.settings import cache_root


@dataclass(frozen=True)
class RetrievalOutcome:
    """Metrics ×100, per-query metrics, the run, and mean seconds per query for each stage.

    With a re-ranker, ``first_run`` and ``judge_run`` keep both stages' scores of the same
    candidates, so that fusion weights can be tried without scoring again (:func:`fused_run`).
    ``capped`` names the metrics whose cutoff is deeper than ``k_retrieve``, when the first stage
    stopped at ``k_retrieve`` candidates for some query: they are in effect measured at
    ``k_retrieve`` (see ``capped_metrics``). Where every query got fewer, nothing was cut.
    """

    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    run: Run
    latency: dict[str, float]
    first_run: Run
    judge_run: Run | None = None
    rerank_weight: float = 1.0
    capped: tuple[str, ...] = ()


def fused_run(first_run: Run, judge_run: Run, weight: float) -> Run:
    """The run ranked by :func:`~sentsim.search.rerank_fuse` of both stages at ``weight``."""
    out: Run = {}
    for qid, cands in first_run.items():
        judged = dict(judge_run[qid])
        fused = rerank_fuse([s for _, s in cands], [judged[d] for d, _ in cands], weight)
        out[qid] = [(d, float(f)) for (d, _), f in zip(cands, fused, strict=True)]
    return out


def corpus_index(
    data: BeirData,
    encoder: BiEncoder,
    folder: Path | None = None,
    *,
    show_progress: bool | None = None,
) -> Index:
    """Open the cached index of ``data.corpus`` for ``encoder``, building it on first use."""
    digest = hashlib.sha256(cache_key(encoder).encode())
    for doc_id in sorted(data.corpus):
        title, text = data.corpus[doc_id]
        digest.update(f"{doc_id}\x00{title}\x00{text}\x01".encode())
    path = folder or cache_root() / "indexes" / digest.hexdigest()[:20]
    docs = [Document(d, text, title) for d, (title, text) in data.corpus.items()]
    return cached_index(docs, path, encoder, show_progress=show_progress)[0]


def documents_index(
    docs: Sequence[Document], encoder: BiEncoder, *, show_progress: bool | None = None
) -> Index:
    """Open the cached index of ``docs`` (metadata included) for ``encoder``, building it once."""
    digest = hashlib.sha256(cache_key(encoder).encode())
    for doc in docs:
        digest.update(json.dumps([doc.id, doc.title, doc.text, dict(doc.metadata)]).encode())
    path = cache_root() / "indexes" / digest.hexdigest()[:20]
    return cached_index(list(docs), path, encoder, show_progress=show_progress)[0]


def evaluate_retrieval(
    data: BeirData,
    encoder: BiEncoder,
    *,
    retriever: str = "dense",
    reranker: CrossEncoder | None = None,
    k_retrieve: int = 100,
    hybrid: str = "rrf",
    hybrid_weight: float = 0.5,
    rerank_weight: float | None = None,
    index: Index | None = None,
    query_vectors: np.ndarray | None = None,
    examples: Index | None = None,
    example_weight: float = 0.2,
    show_progress: bool | None = None,
) -> RetrievalOutcome:
    """Search every query of ``data``; rank by the re-ranker when given, else by the first stage.

    ``query_vectors`` (rows in ``data.queries`` order) saves encoding the queries again;
    ``examples`` is an index of labelled example queries (see :class:`ExampleQueries`).
    ``show_progress``: bars for building the corpus index and for re-ranking (``None``: when
    there are at least 1,000 documents to encode, or at least 10 queries to re-rank).
    """
    from tqdm.auto import tqdm

    own = index is None
    idx = index or corpus_index(data, encoder, show_progress=show_progress)
    try:
        pipeline = SearchPipeline(
            idx,
            encoder,
            reranker,
            retriever=retriever,
            k_retrieve=k_retrieve,
            hybrid=hybrid,
            hybrid_weight=hybrid_weight,
            rerank_weight=rerank_weight,
            examples=ExampleQueries(examples) if examples is not None else None,
            example_weight=example_weight,
        )
        qids = list(data.queries)
        texts = [data.queries[q] for q in qids]
        start = time.perf_counter()
        candidates = pipeline.first_stage(texts, query_vectors=query_vectors)
        first = (time.perf_counter() - start) / len(qids)
        first_run: Run = dict(zip(qids, candidates, strict=True))
        cut = any(len(c) >= k_retrieve for c in candidates)  # else each got all it could
        judge_run: Run = {}
        rerank_seconds = 0.0
        show = len(qids) >= 10 if show_progress is None else show_progress
        if reranker is not None:
            rows = zip(qids, texts, candidates, strict=True)
            for qid, text, cands in tqdm(
                rows, total=len(qids), desc="re-rank", unit="query", disable=not show
            ):
                t0 = time.perf_counter()
                ids = [d for d, _ in cands]
                scores = pipeline.rerank_scores(text, ids)
                rerank_seconds += time.perf_counter() - t0
                judge_run[qid] = [(d, float(s)) for d, s in zip(ids, scores, strict=True)]
    finally:
        if own:
            idx.close()
    latency = {"first_stage_ms": round(1000 * first, 2)}
    if reranker is not None:
        latency["rerank_ms"] = round(1000 * rerank_seconds / len(qids), 1)
    run = first_run if reranker is None else fused_run(first_run, judge_run, pipeline.rerank_weight)
    return RetrievalOutcome(
        evaluate_run(run, data.qrels),
        per_query(run, data.qrels),
        run,
        latency,
        first_run,
        judge_run if reranker is not None else None,
        pipeline.rerank_weight,
        tuple(capped_metrics(k_retrieve)) if cut else (),
    )
