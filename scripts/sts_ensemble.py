"""Fuse several similarity scorers by a z-scored weighted sum, weights chosen on STS-B dev.

    python scripts/sts_ensemble.py CE_DIR [CE_DIR ...] [--bi bi-sts [--bi MODEL ...]]
        [--dev-only] [--cache DIR]

Each cross-encoder (both orders averaged) and each bi-encoder's cosine score STS-B dev and test;
each score is z-scored with its dev mean and deviation, every weight vector on a 0.05 grid that
sums to 1 is tried on dev, and the best one is applied to test once. ``--dev-only`` scores and
prints dev alone, for a choice that must be made before test is looked at; ``--cache DIR`` keeps
each scorer's scores as ``DIR/<name>-<split>.npy`` and reuses them on the next run.
"""

from __future__ import annotations

import argparse
import itertools
import re
from pathlib import Path

import numpy as np

from sentsim.base import PairScorer
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
    parser.add_argument("--dev-only", action="store_true", help="score and print dev only")
    parser.add_argument("--cache", type=Path, help="folder keeping each scorer's scores")
    args = parser.parse_args()
    bis = args.bi or ["bi-sts"]
    names = [*args.cross_encoders, *bis]

    def make(name: str) -> PairScorer:
        if name in args.cross_encoders:
            return CrossEncoderScorer(CrossEncoder.load(name))
        return model_scorer(name)

    split_names = ("dev",) if args.dev_only else ("dev", "test")
    splits = {s: read_pairs(dataset_path("stsbenchmark", f"sts-{s}.csv")) for s in split_names}
    gold = {s: data.graded_scores() for s, data in splits.items()}
    loaded: dict[str, PairScorer] = {}

    def scores(name: str, split: str) -> np.ndarray:
        file = (
            args.cache / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{split}.npy"
            if args.cache
            else None
        )
        if file is not None and file.is_file():
            return np.load(file)
        if name not in loaded:
            loaded[name] = make(name)
        value = np.asarray(loaded[name].score_pairs(splits[split].pairs(), show_progress=False))
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            np.save(file, value)
        return value

    raw = {s: np.stack([scores(name, s) for name in names]) for s in split_names}
    mean, std = raw["dev"].mean(1, keepdims=True), raw["dev"].std(1, keepdims=True)
    z = {s: (x - mean) / std for s, x in raw.items()}

    def report(label: str, weights: np.ndarray) -> None:
        values = [f"{s} {correlations(weights @ z[s], gold[s])[0]:.2f}" for s in split_names]
        print(f"{label}: {'  '.join(values)}")

    for i, name in enumerate(names):
        report(name, np.eye(len(names))[i])
    grid = [w for w in itertools.product(range(21), repeat=len(names)) if sum(w) == 20]
    best = max(grid, key=lambda w: correlations(np.array(w) @ z["dev"], gold["dev"])[0])
    weights = np.array(best) / 20
    print(f"weights {dict(zip(names, weights.round(2).tolist(), strict=True))}")
    report("ensemble", weights)


if __name__ == "__main__":
    main()
