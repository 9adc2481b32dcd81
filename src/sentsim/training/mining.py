"""Hard-negative mining: for each anchor, texts that look relevant but are not labelled so.

Candidates come from the bi-encoder and/or BM25 over a pool of texts (every positive in the file,
plus an optional corpus). The bi-encoder ranks by its own similarity, as search does: cosine, or
the dot product for a dot-product model (``similarity_fn_name: "dot"``). A candidate is kept only
if it is not a labelled positive of that anchor, its rank lies in ``rank_window`` (skipping the
very top, where unlabelled positives hide), its score is below the positive's by at least
``margin`` (bi-encoder scores), and — when a judge is given — the judge scores it below
``max_judge_score``. ``sentsim mine --cross-encoder``
judges with :func:`~sentsim.fusion.load_judge`'s scorer, the score ``sentsim similarity
--cross-encoder`` prints: a fused judge (``ce-sts``) its fusion with its bi-encoder.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, zip_longest

import numpy as np

from sentsim.base import PairScorer
from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder
from sentsim.similarity import similarity
from sentsim.training.data import Triple
from sentsim.training.sampling import text_key

#: (anchor, candidate) pairs the judge scores a call, at least: those of several anchors.
JUDGE_PAIRS = 1024


@dataclass(frozen=True)
class MiningSettings:
    """How negatives are chosen (see the module docstring)."""

    negatives: int = 3
    rank_window: tuple[int, int] = (1, 30)
    margin: float = 0.0
    use_bm25: bool = False
    use_dense: bool = True
    max_judge_score: float = 0.5

    def __post_init__(self) -> None:
        lo, hi = self.rank_window
        for name, value in (("--margin", self.margin), ("max_judge_score", self.max_judge_score)):
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if self.negatives < 1:
            raise ValueError(f"--negatives must be at least 1, got {self.negatives}")
        if not 1 <= lo <= hi:
            raise ValueError(
                f"--rank-window {lo} {hi}: ranks count from 1 and the window is LOW HIGH with "
                "LOW ≤ HIGH (e.g. 3 30)"
            )


def _bm25_ranks(anchors: Sequence[str], pool: Sequence[str], depth: int) -> list[list[int]]:
    """Each anchor's best BM25 matches in ``pool``, best first; a text sharing no word is none."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(list(pool), stopwords="en", show_progress=False), show_progress=False
    )
    tokens = bm25s.tokenize(list(anchors), stopwords="en", show_progress=False)
    docs, scores = retriever.retrieve(tokens, k=min(depth, len(pool)), show_progress=False)
    return [
        [int(d) for d, s in zip(ids, row, strict=True) if s > 0]
        for ids, row in zip(docs, scores, strict=True)
    ]


def mine_negatives(
    triples: Sequence[Triple],
    encoder: BiEncoder | None,
    *,
    corpus: Sequence[str] = (),
    settings: MiningSettings = MiningSettings(),
    judge: PairScorer | CrossEncoder | None = None,
) -> list[Triple]:
    """Return ``settings.negatives`` triples at most per (anchor, positive) pair of ``triples``.

    ``judge`` drops each candidate whose score with its anchor, ``(anchor, candidate)``, is at
    least ``settings.max_judge_score``: a pair scorer's ``score_pairs`` (such as
    ``sentsim.fusion.load_judge(...)``: a fused judge's fusion, both orders averaged where its
    folder says so), or a bare :class:`~sentsim.cross_encoder.CrossEncoder`'s ``predict`` (that
    order only), one call for the candidates of many anchors (:data:`JUDGE_PAIRS` pairs or more).
    An anchor with no candidate left after the filters gets no triple (the caller can count
    them).
    """
    # one text per identity: a corpus copy of a positive that differs only in whitespace is
    # that positive, not a candidate negative (the positive's spelling is kept)
    firsts: dict[str, str] = {}
    for text in chain((t.positive for t in triples), corpus):
        firsts.setdefault(text_key(text), text)
    pool = sorted(firsts.values())
    row = {text_key(text): i for i, text in enumerate(pool)}
    positives: dict[str, dict[int, None]] = {}  # an ordered set: the file's order
    for t in triples:
        positives.setdefault(t.anchor, {})[row[text_key(t.positive)]] = None
    anchors = list(positives)
    lo, hi = settings.rank_window
    if not (settings.use_dense or settings.use_bm25):
        raise ValueError("mining needs candidates from the bi-encoder, BM25 or both")
    if judge is not None and not hasattr(judge, "score_pairs") and judge.num_labels != 1:
        raise ValueError(
            f"the judge {judge.name} has {judge.num_labels} outputs; dropping candidates it "
            "scores as positive needs a one-score cross-encoder"
        )
    # deep enough for the window once an anchor's positives and its own text are skipped
    depth = hi + max(len(g) for g in positives.values()) + 1
    lexical = _bm25_ranks(anchors, pool, depth) if settings.use_bm25 else None
    scores = dense_order = None
    if settings.use_dense:
        if encoder is None:
            raise ValueError("dense mining needs a bi-encoder")
        # the model's similarity, as search ranks: cosine also for an encoder that does not
        # normalize (a plain Hugging Face BiEncoder), the dot product for a dot-product model
        scores = similarity(
            encoder.encode_query(anchors, show_progress=None),
            encoder.encode_document(pool),
            encoder.similarity_fn_name,
        )
        dense_order = np.argsort(-scores, axis=1)[:, :depth]

    def candidates(a: int) -> list[int]:
        """Anchor ``a``'s candidates in the window (and below its best positive), best first."""
        # never a positive, nor the anchor's own text (a pair file written both ways round has it
        # in the pool, and BM25 ranks it first)
        itself = row.get(text_key(anchors[a]))
        skip = set(positives[anchors[a]]) | (set() if itself is None else {itself})
        ranked: list[int] = []
        if dense_order is not None:
            ranked = [int(i) for i in dense_order[a] if int(i) not in skip][lo - 1 : hi]
        if lexical is not None:
            extra = [i for i in lexical[a] if i not in skip][lo - 1 : hi]
            mixed = chain.from_iterable(zip_longest(ranked, extra))
            ranked = list(dict.fromkeys(x for x in mixed if x is not None))
        if scores is None:
            return ranked
        # below the best positive first: the judge need not score the rest
        best = max(scores[a, g] for g in positives[anchors[a]])
        return [i for i in ranked if scores[a, i] <= best - settings.margin]

    kept_of: Iterable[tuple[int, list[int]]] = ((a, candidates(a)) for a in range(len(anchors)))
    if judge is not None:
        kept_of = _judged(judge, kept_of, anchors, pool, settings.max_judge_score)
    out: list[Triple] = []
    for a, kept in kept_of:
        # Every positive of the anchor gets its own negatives, taken in turn from the kept list
        # (reused when it is short), so an anchor with several positives keeps all of them; each
        # lies the margin below its own triple's positive, not only below the anchor's best one.
        for k, positive in enumerate(positives[anchors[a]]):
            own = kept
            if scores is not None:
                own = [i for i in kept if scores[a, i] <= scores[a, positive] - settings.margin]
            take = min(settings.negatives, len(own))
            chosen = [own[(k * take + i) % len(own)] for i in range(take)]
            out += [Triple(anchors[a], pool[positive], pool[i]) for i in chosen]
    return out


def _judged(
    judge: PairScorer | CrossEncoder,
    kept_of: Iterable[tuple[int, list[int]]],
    anchors: Sequence[str],
    pool: Sequence[str],
    threshold: float,
) -> Iterator[tuple[int, list[int]]]:
    """Each ``(anchor, candidates)`` of ``kept_of``, in order, less those judged ≥ ``threshold``.

    The ``(anchor, candidate)`` pairs of consecutive anchors go to the judge together, one call
    per :data:`JUDGE_PAIRS` or more (and one for the rest): a call per anchor scored a window's
    few pairs at a time, a fused judge encoding them with its bi-encoder each time.
    """
    waiting: list[tuple[int, list[int]]] = []
    count = 0
    for a, kept in kept_of:
        waiting.append((a, kept))
        count += len(kept)
        if count >= JUDGE_PAIRS:
            yield from _judge_batch(judge, waiting, anchors, pool, threshold)
            waiting, count = [], 0
    yield from _judge_batch(judge, waiting, anchors, pool, threshold)


def _judge_batch(
    judge: PairScorer | CrossEncoder,
    waiting: list[tuple[int, list[int]]],
    anchors: Sequence[str],
    pool: Sequence[str],
    threshold: float,
) -> list[tuple[int, list[int]]]:
    """``waiting``'s anchors with their candidates judged below ``threshold``, by one call."""
    pairs = [(anchors[a], pool[i]) for a, kept in waiting for i in kept]
    if not pairs:
        return waiting
    judged = _judge_scores(judge, pairs)
    out, start = [], 0
    for a, kept in waiting:
        own = judged[start : start + len(kept)]
        out.append((a, [i for i, s in zip(kept, own, strict=True) if s < threshold]))
        start += len(kept)
    return out


def _judge_scores(judge: PairScorer | CrossEncoder, pairs: list[tuple[str, str]]) -> np.ndarray:
    """The judge's score of each pair: a pair scorer's, else a cross-encoder's one-order score."""
    if hasattr(judge, "score_pairs"):
        return np.asarray(judge.score_pairs(pairs, show_progress=False))
    return judge.predict(pairs, show_progress=False)
