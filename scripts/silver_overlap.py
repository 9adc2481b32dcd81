"""Where AugSBERT silver pairs come from, against STS-B train and a gold file.

    python scripts/silver_overlap.py --gold GOLD.csv SILVER.jsonl [SILVER.jsonl ...]

For each silver file (``sentence1``, ``sentence2``, ``score`` lines, as ``sentsim augsbert``
writes them) prints its pair count and how many pairs are exactly a pair of STS-B train (either
order), a pair of GOLD, and made only of STS-B train sentences; the rest hold at least one
sentence from elsewhere in the unlabelled pool.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sentsim.data import read_pairs
from sentsim.settings import dataset_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gold", type=Path, required=True)
    parser.add_argument("silver", nargs="+", type=Path)
    args = parser.parse_args()
    train = read_pairs(dataset_path("stsbenchmark", "sts-train.csv")).pairs()
    train_pairs = {frozenset(p) for p in train}
    train_sentences = {s for p in train for s in p}
    gold_pairs = {frozenset(p) for p in read_pairs(args.gold).pairs()}
    for path in args.silver:
        pairs = [frozenset(p) for p in read_pairs(path).pairs()]
        in_train = sum(p in train_pairs for p in pairs)
        in_gold = sum(p in gold_pairs for p in pairs)
        only_train = sum(p <= train_sentences for p in pairs)
        outside = len(pairs) - only_train
        print(
            f"{path}: {len(pairs)} pairs; STS-B train pairs {in_train}; gold pairs {in_gold}; "
            f"only STS-B train sentences {only_train}; with another sentence {outside} "
            f"({100 * outside / len(pairs):.1f}%)"
        )


if __name__ == "__main__":
    main()
