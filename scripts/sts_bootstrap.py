"""Is one STS scorer better than another on the same pairs? A paired bootstrap of Spearman.

Usage: python scripts/sts_bootstrap.py PAIRS A B   (A, B: bi-encoder names/dirs, or ce:NAME for
a cross-encoder judge, fused if its config says so)
"""

from __future__ import annotations

import sys

from sentsim.base import PairScorer
from sentsim.data import read_pairs
from sentsim.evaluation.scorers import model_scorer
from sentsim.evaluation.stats import bootstrap_spearman_difference
from sentsim.fusion import load_judge


def scorer(spec: str) -> PairScorer:
    return load_judge(spec[3:]) if spec.startswith("ce:") else model_scorer(spec)


def main(path: str, a: str, b: str) -> None:
    data = read_pairs(path)
    pairs, gold = data.pairs(), data.scores()
    sa = scorer(a).score_pairs(pairs, show_progress=False)
    sb = scorer(b).score_pairs(pairs, show_progress=False)
    r = bootstrap_spearman_difference(sa, sb, gold)
    print(
        f"{path}: {a} {r.mean_a:.2f} → {b} {r.mean_b:.2f}  Δ {r.difference:+.2f} "
        f"[{r.low:+.2f}, {r.high:+.2f}] "
        f"({100 * r.confidence:.0f}% paired bootstrap, {r.items} pairs)"
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
