"""Paired bootstrap intervals: is system B better than system A on the same queries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BootstrapInterval:
    """Mean of ``b − a`` over shared items and its percentile interval (same units as inputs)."""

    metric: str
    items: int
    mean_a: float
    mean_b: float
    difference: float
    low: float
    high: float
    confidence: float


def paired_bootstrap(
    a: Mapping[str, Mapping[str, float]],
    b: Mapping[str, Mapping[str, float]],
    metric: str,
    *,
    samples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """Resample the shared query ids with replacement; interval of the mean difference ``b − a``.

    Efron and Tibshirani (1993); for IR, Sakai (2006). Values are scaled ×100.
    """
    _check_confidence(confidence, samples)
    ids = sorted(set(a) & set(b))
    if not ids:
        raise ValueError("the two runs share no query ids")
    for name, run in (("a", a), ("b", b)):
        if missing := [q for q in ids if metric not in run[q]]:
            raise ValueError(
                f"run {name} has no {metric!r} for query {missing[0]!r}; it has "
                f"{sorted(run[missing[0]])}"
            )
    x = np.array([a[q][metric] for q in ids])
    y = np.array([b[q][metric] for q in ids])
    diff = y - x
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(ids), size=(samples, len(ids)))].mean(1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return BootstrapInterval(
        metric,
        len(ids),
        100 * float(x.mean()),
        100 * float(y.mean()),
        100 * float(diff.mean()),
        100 * float(low),
        100 * float(high),
        confidence,
    )


def bootstrap_spearman_difference(
    a: np.ndarray,
    b: np.ndarray,
    gold: np.ndarray,
    *,
    samples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """Paired bootstrap over pairs of ``Spearman(b, gold) − Spearman(a, gold)`` (×100).

    A resample whose gold scores are all equal has no correlation and is left out of the
    interval (it made the whole interval NaN); a constant prediction correlates 0, as in
    :func:`~sentsim.evaluation.sts.correlations`.
    """
    from scipy.stats import spearmanr

    from sentsim.evaluation.sts import correlations

    _check_confidence(confidence, samples)
    a, b, gold = (np.asarray(x, dtype=np.float64) for x in (a, b, gold))
    if not len(a) == len(b) == len(gold):
        raise ValueError(f"{len(a)} and {len(b)} scores for {len(gold)} gold scores")
    sa, sb = correlations(a, gold)[0], correlations(b, gold)[0]  # refuses constant gold

    def rho(x: np.ndarray, y: np.ndarray) -> float:
        return float(spearmanr(x, y)[0]) if np.ptp(x) else 0.0

    rng = np.random.default_rng(seed)
    n = len(gold)
    diffs = np.full(samples, np.nan)
    for i in range(samples):
        idx = rng.integers(0, n, n)
        if np.ptp(gold[idx]):
            diffs[i] = rho(b[idx], gold[idx]) - rho(a[idx], gold[idx])
    defined = diffs[~np.isnan(diffs)]
    if len(defined) < samples / 2:
        raise ValueError(
            f"{samples - len(defined)} of {samples} resamples of the {n} pairs have one gold "
            "score only; too few pairs (or distinct gold scores) to bootstrap"
        )
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(defined, [tail, 100 - tail])
    return BootstrapInterval(
        "spearman", n, sa, sb, sb - sa, 100 * float(low), 100 * float(high), confidence
    )


def _check_confidence(confidence: float, samples: int) -> None:
    if not 0 < confidence < 1:  # NaN fails this too
        raise ValueError(f"confidence must be between 0 and 1, e.g. 0.95; got {confidence}")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
