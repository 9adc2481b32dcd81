"""Duplicate detection in a collection: every pair of texts that says the same thing.

Retrieve and judge, as in search, with the collection as its own queries:

1. the bi-encoder encodes every text once; exact inner-product search (faiss) gives each text its
   ``neighbours`` nearest others by the bi-encoder's similarity, and every such pair with cosine
   ≥ ``min_cosine`` is a candidate (each unordered pair once);
2. without a judge a candidate is a duplicate when its similarity ≥ ``threshold``; with a judge
   (a cross-encoder, or a fused judge) the judge scores each candidate and decides, its score
   against ``threshold``;
3. duplicates are grouped into connected components (``a ~ b`` and ``b ~ c`` put ``a``, ``b`` and
   ``c`` in one group), the groups a deduplicated collection keeps one text of.

The similarity is the bi-encoder's own (its ``similarity_fn_name``, as sentence-transformers'
``model.similarity`` and search compare): the cosine (vectors normalized here), or for a
dot-product model (TAS-B, ``msmarco-*-dot-*``) the dot product of its raw vectors. A threshold is
then in that model's units: a cosine at most 1 (a text and its copy), or a dot product, which has
no such top and grows with the vectors' lengths, so choose it on labelled pairs (``--dev``) rather
than carry over a cosine's. ``min_cosine`` stays a cosine for every model: a bound on how far
apart a candidate's texts may point, whatever its length.

A threshold is a property of the model and the data: :func:`choose_threshold` picks the one with the
best F1 on labelled dev pairs (0/1), the same rule as ``sentsim eval pairs --dev``. A pair the
bi-encoder does not put among either text's ``neighbours`` nearest is never seen: raise
``neighbours`` for collections where one text has many duplicates.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from sentsim.base import Encoder, PairScorer, check_texts
from sentsim.cross_encoder import CrossEncoder
from sentsim.data import PairDataset
from sentsim.evaluation.pairs import ThresholdResult, best_threshold, binary_labels
from sentsim.index_cache import AnnKind, AnnSettings, new_faiss
from sentsim.similarity import Metric, encoder_metric, normalize

# Exact below 100,000 texts, HNSW above: on clustered 384-d vectors exact search took 22.5 s for
# 50,000 and 89.0 s for 100,000, HNSW (build included) 31.0 s and 72.2 s, finding every exact pair
# (benchmarks/bench_duplicates.py --synthetic N; README "Duplicate detection").
DEFAULT_ANN = AnnSettings(flat_max=100_000)

# Two copies of one text have cosine 1 only up to float32 rounding (often 0.99999994): a cosine
# this close to the threshold reaches it, so that threshold 1 finds exact copies.
COSINE_SLACK = 1e-6


@dataclass(frozen=True)
class DuplicatePair:
    """Two texts judged duplicates: their positions and ids, the deciding score, the cosine.

    ``score`` is the judge's, else the bi-encoder's similarity (:attr:`DuplicateReport.similarity`).
    """

    first: int
    second: int
    first_id: str
    second_id: str
    score: float
    cosine: float


@dataclass(frozen=True)
class DuplicateReport:
    """What :func:`find_duplicates` found, and how long each stage took."""

    pairs: list[DuplicatePair]  # highest score first
    groups: list[list[str]]  # ids, largest group first; each in input order
    texts: int
    candidates: int
    threshold: float
    judged: bool
    seconds: dict[str, float] = field(default_factory=dict)
    # what the bi-encoder compared by (its similarity_fn_name): what ``score`` is without a judge
    similarity: Metric = Metric.COSINE


def candidate_pairs(
    vectors: NDArray[np.float32],
    *,
    neighbours: int,
    min_cosine: float,
    ann: AnnSettings = DEFAULT_ANN,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32]]:
    """Each row's ``neighbours`` nearest other rows by inner product, as unique pairs ``i < j``.

    ``vectors`` L2-normalized make the inner product their cosine (a dot-product model's raw
    vectors are searched by their dot product). Returns ``(i, j, inner product)`` arrays, pairs
    below ``min_cosine`` left out. Exact search (faiss ``IndexFlatIP``)
    below ``ann.flat_max`` rows, an HNSW graph above (its cost grows far slower than exact search's
    ``n²``; it may miss a few neighbours; the cosines it returns are exact).
    """
    if neighbours < 1:
        raise ValueError(f"neighbours must be at least 1, got {neighbours}")
    n = len(vectors)
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    kind = ann.kind_for(n)
    index = new_faiss(kind, matrix.shape[1], ann)
    index.add(matrix)
    k = min(neighbours + 1, n)  # + 1: a text is usually its own nearest
    if kind is AnnKind.HNSW:
        import faiss

        params = faiss.SearchParametersHNSW(efSearch=max(ann.ef_search, 2 * k))  # type: ignore[attr-defined]
        sims, found = index.search(matrix, k, params=params)
    else:
        sims, found = index.search(matrix, k)
    rows = np.repeat(np.arange(n), k)
    cols, cos = found.ravel(), sims.ravel()
    keep = (cols >= 0) & (cols != rows) & (cos >= min_cosine)
    first, second = np.minimum(rows, cols)[keep], np.maximum(rows, cols)[keep]
    key = first.astype(np.int64) * n + second
    _, unique = np.unique(key, return_index=True)
    return first[unique].astype(np.int64), second[unique].astype(np.int64), cos[keep][unique]


def group_duplicates(pairs: Sequence[tuple[int, int]], n: int) -> list[list[int]]:
    """Connected components of the duplicate graph on ``n`` items (only those with a duplicate).

    Largest group first (ties: the one whose first member comes first); members in input order.
    """
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for a, b in pairs:
        for x in (a, b):
            members.setdefault(root(x), [])
    for x in range(n):
        r = root(x)
        if r in members:
            members[r].append(x)
    return sorted(members.values(), key=lambda g: (-len(g), g[0]))


def find_duplicates(
    texts: Sequence[str],
    encoder: Encoder,
    *,
    threshold: float,
    ids: Sequence[str] | None = None,
    judge: PairScorer | CrossEncoder | None = None,
    neighbours: int = 10,
    min_cosine: float = 0.5,
    ann: AnnSettings = DEFAULT_ANN,
    batch_size: int = 32,
    show_progress: bool | None = None,
) -> DuplicateReport:
    """Find the duplicate pairs and groups of ``texts`` (see the module doc).

    ``encoder``: a :class:`~sentsim.bi_encoder.BiEncoder` or any encoder, compared by its own
    similarity (:func:`~sentsim.similarity.encoder_metric`: cosine, its vectors L2-normalized
    here, or a dot-product model's dot product); ``ids``: unique names for the texts (default:
    their positions from 0, as strings); ``judge``: what decides among the candidates — a
    :class:`~sentsim.cross_encoder.CrossEncoder` (both orders averaged), or any pair scorer such
    as ``sentsim.fusion.load_judge(...)``; without one the bi-encoder's similarity decides, at
    ``threshold`` (at most 1 for a cosine or a judge, any number for a dot product).
    ``min_cosine`` bounds the candidates by their cosine, for every model; for a cosine model
    without a judge the effective bound is ``max(min_cosine, threshold)``. ``ann``: how
    candidates are searched (exact below 100,000 texts, HNSW above; :func:`candidate_pairs`).
    """
    texts = check_texts(texts)
    for name, value in (("threshold", threshold), ("min_cosine", min_cosine)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
            raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if isinstance(ids, str):
        raise TypeError("ids must be a list of names, one per text, not one string")
    metric = encoder_metric(encoder)
    if metric not in (Metric.COSINE, Metric.DOT):
        raise ValueError(
            f"{encoder.name} compares its vectors by {metric.value}; duplicates are found by "
            "cosine or dot product only: give a bi-encoder of either"
        )
    by_dot = metric is Metric.DOT and judge is None  # a dot product has no top of 1
    if not (math.isfinite(threshold) and (by_dot or threshold <= 1.0)):
        raise ValueError(
            f"threshold must be a number ≤ 1 (cosines and judge scores are at most 1), got "
            f"{threshold}"
        )
    if not (math.isfinite(min_cosine) and min_cosine <= 1.0):
        raise ValueError(f"min_cosine must be a number ≤ 1 (a cosine), got {min_cosine}")
    names = [str(i) for i in range(len(texts))] if ids is None else [str(i) for i in ids]
    if len(names) != len(texts):
        raise ValueError(f"{len(names)} ids for {len(texts)} texts")
    if len(set(names)) != len(names):
        twice = next(i for i, n in Counter(names).items() if n > 1)
        raise ValueError(f"id {twice!r} names two texts; ids must be unique")
    if judge is not None and not hasattr(judge, "score_pairs"):  # a CrossEncoder: both orders
        from sentsim.fusion import CrossEncoderScorer

        judge = CrossEncoderScorer(judge, symmetric=True)
    seconds: dict[str, float] = {}
    tick = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=batch_size, show_progress=show_progress)
    if metric is Metric.COSINE:
        # normalized here: an encoder that does not normalize (a plain Hugging Face BiEncoder,
        # GloVe) would give inner products, not cosines, to compare with the threshold
        vectors = normalize(vectors)
    seconds["encode"] = time.perf_counter() - tick
    tick = time.perf_counter()
    if metric is Metric.COSINE:
        bound = min_cosine if judge is not None else max(min_cosine, threshold)
        first, second, similar = candidate_pairs(
            vectors, neighbours=neighbours, min_cosine=bound - COSINE_SLACK, ann=ann
        )
        cosine = similar
    else:  # nearest by dot product, as the model ranks; then bounded by cosine
        first, second, similar = candidate_pairs(
            vectors, neighbours=neighbours, min_cosine=-np.inf, ann=ann
        )
        norms = np.linalg.norm(vectors, axis=1).astype(np.float64)
        lengths = np.maximum(norms[first] * norms[second], 1e-12)
        cosine = (similar / lengths).astype(np.float32)
        near = cosine >= min_cosine - COSINE_SLACK
        first, second, similar, cosine = first[near], second[near], similar[near], cosine[near]
    seconds["candidates"] = time.perf_counter() - tick
    scores = similar.astype(np.float64)
    if judge is not None and len(first):
        tick = time.perf_counter()
        pairs = [(texts[a], texts[b]) for a, b in zip(first, second, strict=True)]
        scores = np.asarray(judge.score_pairs(pairs, show_progress=show_progress), np.float64)
        seconds["judge"] = time.perf_counter() - tick
    cutoff = threshold - COSINE_SLACK if judge is None and metric is Metric.COSINE else threshold
    keep = np.flatnonzero(scores >= cutoff)
    keep = keep[np.lexsort((second[keep], first[keep], -scores[keep]))]
    found = [
        DuplicatePair(
            int(first[i]),
            int(second[i]),
            names[first[i]],
            names[second[i]],
            float(scores[i]),
            float(cosine[i]),
        )
        for i in keep
    ]
    groups = group_duplicates([(p.first, p.second) for p in found], len(texts))
    return DuplicateReport(
        pairs=found,
        groups=[[names[x] for x in g] for g in groups],
        texts=len(texts),
        candidates=len(first),
        threshold=threshold,
        judged=judge is not None,
        seconds={k: round(v, 3) for k, v in seconds.items()},
        similarity=metric,
    )


def choose_threshold(scorer: PairScorer, dev: PairDataset) -> ThresholdResult:
    """The threshold with the best F1 on labelled (0/1) dev pairs, scored by ``scorer``."""
    from sentsim.evaluation.scorers import as_pair_scorer, score_dataset

    scorer = as_pair_scorer(scorer)
    gold = binary_labels(dev)  # before scoring: a file of one class cannot choose a threshold
    return best_threshold(score_dataset(scorer, dev, show_progress=False), gold)
