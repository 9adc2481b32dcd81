"""How much shipping a cross-encoder in fp16 moves its scores.

    python scripts/fp16_check.py RUN_DIR NAME PAIRS [N]

Scores the first N (default 300) pairs of PAIRS with the fp32 run directory and with the shipped
model NAME, and prints the largest absolute difference and the Spearman correlation.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from sentsim.cross_encoder import CrossEncoder
from sentsim.data import read_pairs


def main(argv: list[str]) -> None:
    """Compare the two models' scores on the same pairs."""
    if len(argv) not in (3, 4):
        sys.exit(__doc__)
    pairs = read_pairs(Path(argv[2])).pairs()[: int(argv[3]) if len(argv) == 4 else 300]
    fp32 = np.asarray(CrossEncoder.load(argv[0]).predict(pairs))
    fp16 = np.asarray(CrossEncoder.load(argv[1]).predict(pairs))
    rho = spearmanr(fp32, fp16).correlation
    gap = np.abs(fp32 - fp16).max()
    print(f"{len(pairs)} pairs: max |fp32 − fp16| {gap:.4f}, Spearman {rho:.6f}")


if __name__ == "__main__":
    main(sys.argv[1:])
