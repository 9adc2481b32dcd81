"""Write the fixed query-id splits sentsim trains, selects and reports on (run once; committed).

SciFact ships only its train claims here. They are carved by claim into three disjoint parts:
``train`` (fitting), ``select`` (choosing weights, epochs, thresholds) and ``report`` (the figures
the README quotes). Usage: python scripts/make_splits.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from sentsim.settings import dataset_path

OUT = Path(__file__).resolve().parents[1] / "src" / "sentsim" / "resources" / "splits"
SEED = 20261124
SIZES = {"report": 200, "select": 150}


def main() -> None:
    """Carve SciFact train claims into train / select / report id lists."""
    qrels = dataset_path("scifact", "qrels", "train.tsv")
    with qrels.open(encoding="utf-8", newline="") as handle:
        claims = sorted(
            {row["query-id"] for row in csv.DictReader(handle, delimiter="\t")}, key=int
        )
    order = np.random.default_rng(SEED).permutation(len(claims))
    shuffled = [claims[i] for i in order]
    report = shuffled[: SIZES["report"]]
    select = shuffled[SIZES["report"] : SIZES["report"] + SIZES["select"]]
    train = shuffled[SIZES["report"] + SIZES["select"] :]
    OUT.mkdir(parents=True, exist_ok=True)
    for name, ids in (("train", train), ("select", select), ("report", report)):
        path = OUT / f"scifact-{name}.txt"
        path.write_text("\n".join(sorted(ids, key=int)) + "\n", encoding="utf-8")
        print(f"{path}: {len(ids)} claims")


if __name__ == "__main__":
    main()
