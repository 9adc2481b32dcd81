"""Does keeping only a bi-encoder's top principal directions change its STS-B scores?

    python scripts/sts_pca.py MODEL SENTENCES.txt [K ...]     # default K: 384 320 256 192

The directions come from the model's vectors of the unlabelled sentences (no labels); each STS-B
dev and test sentence is projected onto the top K and re-normalized, and Spearman ×100 of the
cosine is printed beside the variance kept. Analysis only: the projection is not shipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sentsim.bi_encoder import BiEncoder
from sentsim.data import read_pairs
from sentsim.evaluation.sts import correlations
from sentsim.settings import dataset_path
from sentsim.training.distill import principal_projection, project


def main() -> None:
    """Encode, project for each K, score dev and test."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("sentences", type=Path)
    parser.add_argument("dims", nargs="*", type=int, default=[384, 320, 256, 192])
    args = parser.parse_args()
    model = BiEncoder.load(args.model)
    lines = args.sentences.read_text(encoding="utf-8").splitlines()
    vectors = model.encode([s for s in lines if s.strip()], batch_size=64)
    splits = {s: read_pairs(dataset_path("stsbenchmark", f"sts-{s}.csv")) for s in ("dev", "test")}
    sides = {
        s: [model.encode([p[i] for p in data.pairs()], show_progress=False) for i in (0, 1)]
        for s, data in splits.items()
    }
    print("| K | variance kept | dev | test |\n|---|---|---|---|")
    for k in args.dims:
        directions, kept = principal_projection(vectors, k)
        scores = [
            correlations(
                np.sum(project(left, directions) * project(right, directions), axis=1),
                splits[s].graded_scores(),
            )[0]
            for s, (left, right) in sides.items()
        ]
        print(f"| {k} | {kept:.3f} | {scores[0]:.2f} | {scores[1]:.2f} |")


if __name__ == "__main__":
    main()
