"""Fuse several similarity scorers by a z-scored weighted sum, weights chosen on STS-B dev.

    python scripts/sts_ensemble.py CE_DIR [CE_DIR ...] [--bi bi-sts [--bi MODEL ...]]

Each cross-encoder (both orders averaged) and each bi-encoder's cosine score STS-B dev and test;
each score is z-scored with its dev mean and deviation, every weight vector on a 0.05 grid that
sums to 1 is tried on dev, and the best one is applied to test once.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from sentsim.cross_encoder import CrossEncoder
from sentsim.data import read_pairs
from sentsim.evaluation.scorers import model_scorer
from sentsim.evaluation.sts import correlations
from sentsim.fusion import CrossEncoderScorer
from sentsim.settings import dataset_path


def main() -> None:
    """Score, choose the weights on dev, report dev and test."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cross_encoders", nargs="+")
    parser.add_argument(
        "--bi",
        action="append",
        help="bi-encoder whose cosine joins the sum (repeat; default bi-sts)",
    )
    args = parser.parse_args()
    bis = args.bi or ["bi-sts"]
    scorers = [CrossEncoderScorer(CrossEncoder.load(d)) for d in args.cross_encoders]
    names = [*args.cross_encoders, *bis]
    splits = {s: read_pairs(dataset_path("stsbenchmark", f"sts-{s}.csv")) for s in ("dev", "test")}
    gold = {s: data.graded_scores() for s, data in splits.items()}
    raw = {
        s: np.stack(
            [sc.score_pairs(data.pairs(), show_progress=False) for sc in scorers]
            + [model_scorer(b).score_pairs(data.pairs(), show_progress=False) for b in bis]
        )
        for s, data in splits.items()
    }
    mean, std = raw["dev"].mean(1, keepdims=True), raw["dev"].std(1, keepdims=True)
    z = {s: (x - mean) / std for s, x in raw.items()}
    for i, name in enumerate(names):
        dev, test = (correlations(z[s][i], gold[s])[0] for s in ("dev", "test"))
        print(f"{name}: dev {dev:.2f}  test {test:.2f}")
    grid = [w for w in itertools.product(range(21), repeat=len(names)) if sum(w) == 20]
    best = max(grid, key=lambda w: correlations(np.array(w) @ z["dev"], gold["dev"])[0])
    weights = np.array(best) / 20
    dev, test = (correlations(weights @ z[s], gold[s])[0] for s in ("dev", "test"))
    print(f"weights {dict(zip(names, weights.round(2).tolist(), strict=True))}")
    print(f"ensemble: dev {dev:.2f}  test {test:.2f}")


if __name__ == "__main__":
    main()
