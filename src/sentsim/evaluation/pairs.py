"""Pair classification metrics: average precision, and accuracy / F1 at a threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sentsim.base import PairScorer
from sentsim.data import PairDataset
from sentsim.errors import DataError


def _one_per_label(
    scores: NDArray[np.floating], gold: NDArray[np.floating]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``scores`` and ``gold`` as float arrays, raising unless there is one score per label."""
    s, g = np.asarray(scores, dtype=np.float64), np.asarray(gold, dtype=np.float64)
    if s.ndim != 1 or g.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D; got shapes {s.shape} and {g.shape}")
    if len(s) != len(g):
        raise ValueError(f"{len(s)} scores for {len(g)} labels; expected one score per pair")
    return s, g


def average_precision(scores: NDArray[np.floating], gold: NDArray[np.floating]) -> float:
    """``AP = Σ_n (R_n − R_{n−1}) · P_n`` over the distinct scores, descending (0 with no positive).

    ``P_n`` and ``R_n`` are precision and recall when every pair scoring at least the ``n``-th
    highest score is predicted positive: tied pairs enter together, as in scikit-learn's
    ``average_precision_score``. Without ties this is ``Σ_k P@k · rel_k / Σ rel``.
    """
    s, g = _one_per_label(scores, gold)
    order = np.argsort(-s, kind="stable")
    ranked, rel = s[order], g[order] > 0
    if not rel.any():
        return 0.0
    # breaking ties by input order made AP depend on the file's order: a constant scorer had
    # AP 1 on a file listing its positives first
    last = np.append(np.flatnonzero(np.diff(ranked)), len(ranked) - 1)  # each tie's last pair
    hits = np.cumsum(rel)[last]
    precision = hits / (last + 1)
    return float((precision * np.diff(hits, prepend=0)).sum() / rel.sum())


@dataclass(frozen=True)
class ThresholdResult:
    """Accuracy, precision, recall and F1 (×100) at one threshold (predict 1 when score ≥ it)."""

    threshold: float
    accuracy: float
    precision: float
    recall: float
    f1: float


def at_threshold(
    scores: NDArray[np.floating], gold: NDArray[np.floating], threshold: float
) -> ThresholdResult:
    """Classification metrics when ``score ≥ threshold`` predicts the positive class."""
    s, g = _one_per_label(scores, gold)
    pred = s >= threshold
    rel = g > 0
    tp = float((pred & rel).sum())
    precision = tp / pred.sum() if pred.any() else 0.0
    recall = tp / rel.sum() if rel.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = float((pred == rel).mean())
    return ThresholdResult(threshold, 100 * accuracy, 100 * precision, 100 * recall, 100 * f1)


def best_threshold(
    scores: NDArray[np.floating], gold: NDArray[np.floating], *, by: str = "f1"
) -> ThresholdResult:
    """The threshold among the midpoints of sorted scores that maximizes ``by`` (f1 or accuracy).

    Just below the lowest score (predict every pair positive) and just above the highest
    (predict none: the best accuracy where positives are rare and scored low) are tried too.
    """
    if by not in ("f1", "accuracy"):
        raise ValueError(f"by must be one of: f1, accuracy; got {by!r}")
    scores, gold = _one_per_label(scores, gold)
    if not len(scores):
        raise ValueError("a threshold needs at least one score")
    values = np.unique(scores)
    above = np.nextafter(values[-1], np.inf)
    midpoints = (values[:-1] + values[1:]) / 2
    candidates = np.concatenate([[values[0] - 1e-6], midpoints, [values[-1], above]])
    results = [at_threshold(scores, gold, float(t)) for t in candidates]
    return max(results, key=lambda r: getattr(r, by))  # the first of equals: "none" wins no tie


def evaluate_pairs(
    dataset: PairDataset, scorer: PairScorer, *, dev: PairDataset | None = None
) -> dict[str, object]:
    """AP on ``dataset``; accuracy and F1 at the max-F1 threshold of ``dev`` (else ``oracle``).

    Without ``dev`` the threshold is chosen on the evaluated data itself and marked ``oracle``:
    an upper bound, not a figure to report.
    """
    import time

    from sentsim.evaluation.scorers import as_pair_scorer, score_dataset

    scorer = as_pair_scorer(scorer)
    gold = binary_labels(dataset)
    dev_gold = binary_labels(dev) if dev is not None else None  # both checked before scoring
    start = time.perf_counter()
    scores = score_dataset(scorer, dataset, show_progress=False)
    seconds = time.perf_counter() - start
    if dev is not None and dev_gold is not None:
        chosen = best_threshold(score_dataset(scorer, dev, show_progress=False), dev_gold)
        same = dev.path.resolve() == dataset.path.resolve()
        # the threshold of the evaluated file itself is an upper bound, whatever flag chose it
        source = "oracle (--dev is the evaluated file)" if same else f"dev:{dev.path}"
    else:
        chosen = best_threshold(scores, gold)
        source = "oracle"
    result = at_threshold(scores, gold, chosen.threshold)
    return {
        "task": "pairs",
        "data": str(dataset.path),
        "pairs": len(dataset),
        "model": scorer.name,
        "average_precision": round(100 * average_precision(scores, gold), 2),
        "accuracy": round(result.accuracy, 2),
        "precision": round(result.precision, 2),
        "recall": round(result.recall, 2),
        "f1": round(result.f1, 2),
        "threshold": chosen.threshold,
        "threshold_from": source,
        "positive_rate": round(100 * float(gold.mean()), 2),
        "seconds": round(seconds, 3),
    }


def binary_labels(dataset: PairDataset) -> NDArray[np.float64]:
    """The 0/1 labels of ``dataset`` as numbers; any other label is an error naming the file."""
    labels = dataset.labels()
    bad = sorted(set(labels) - {"0", "1"})
    if bad:
        raise DataError(
            f"{dataset.path}: labels must be 0 or 1 for pair classification; found {bad}"
        )
    if len(set(labels)) < 2:
        raise DataError(
            f"{dataset.path}: every label is {labels[0]}; average precision, a threshold and F1 "
            "need pairs of both classes (0 and 1)"
        )
    return np.array([float(x) for x in labels])
