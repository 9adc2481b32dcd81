"""STS-B Spearman per source file (genre) for several bi-encoders: where a model gains or loses.

    python scripts/sts_by_genre.py --data …/sts-test.csv MODEL [MODEL ...] [--json OUT]

STS-B mixes sources (headlines, MSRpar, MSRvid, images, answer-answer, track5...); test holds
one, answer-answer (2016, 254 pairs), that train and dev lack. Prints one row per source
(pairs, Spearman ×100 of each model's score) and the whole set. A model is a bi-encoder (built-in
name or directory; its cosine), ``ce:NAME`` (a cross-encoder alone, both orders) or ``judge:NAME``
(a cross-encoder fused as its config says). Analysis only: nothing is selected on these numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from sentsim.evaluation.scorers import model_scorer
from sentsim.fusion import load_judge


def _scores(name: str, pairs: list[tuple[str, str]]) -> np.ndarray:
    kind, _, target = name.partition(":")
    if kind in ("ce", "judge") and target:
        scorer = load_judge(target, fused=kind == "judge")
    else:
        scorer = model_scorer(name)
    return np.asarray(scorer.score_pairs(pairs, show_progress=False), dtype=np.float64)


def _rows(path: Path) -> list[tuple[str, str, str, float]]:
    with path.open(encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [(r[1], r[5], r[6], float(r[4])) for r in rows]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="an STS-B TSV file")
    parser.add_argument("models", nargs="+")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = _rows(args.data)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (source, *_rest) in enumerate(rows):
        groups[source].append(i)
    groups["all"] = list(range(len(rows)))
    gold = np.array([r[3] for r in rows])
    table: dict[str, dict[str, float]] = {}
    for name in args.models:
        scores = _scores(name, [(r[1], r[2]) for r in rows])
        table[name] = {
            g: round(100 * float(spearmanr(scores[idx], gold[idx]).statistic), 2)
            for g, idx in groups.items()
        }
    print("| source | pairs | " + " | ".join(args.models) + " |")
    print("|---|---|" + "---|" * len(args.models))
    for g, idx in sorted(groups.items(), key=lambda kv: (kv[0] == "all", -len(kv[1]))):
        cells = " | ".join(f"{table[m][g]:.2f}" for m in args.models)
        print(f"| {g} | {len(idx)} | {cells} |")
    if args.json:
        args.json.write_text(json.dumps({"data": str(args.data), "spearman": table}, indent=1))


if __name__ == "__main__":
    main()
