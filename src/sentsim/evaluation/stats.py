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
    ids = sorted(set(a) & set(b))
    if not ids:
        raise ValueError("the two runs share no query ids")
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
    """Paired bootstrap over pairs of ``Spearman(b, gold) − Spearman(a, gold)`` (×100)."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    n = len(gold)
    diffs = np.empty(samples)
    for i in range(samples):
        idx = rng.integers(0, n, n)
        diffs[i] = spearmanr(b[idx], gold[idx])[0] - spearmanr(a[idx], gold[idx])[0]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(diffs, [tail, 100 - tail])
    sa, sb = spearmanr(a, gold)[0], spearmanr(b, gold)[0]
    return BootstrapInterval(
        "spearman",
        n,
        100 * float(sa),
        100 * float(sb),
        100 * float(sb - sa),
        100 * float(low),
        100 * float(high),
        confidence,
    )
