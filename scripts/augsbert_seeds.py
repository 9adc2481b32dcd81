"""Summarise ``sentsim augsbert`` runs of several seeds: a per-seed table and mean ± spread.

    python scripts/augsbert_seeds.py RUN_DIR [RUN_DIR ...] [--json OUT.json]

Each RUN_DIR is one ``--out`` of ``sentsim augsbert`` (one ``--seed``). Prints, for every model
row (gold only and each sampling strategy), its STS-B dev and test Spearman per seed, the mean
and sample standard deviation over seeds, and each strategy's test gain over gold only of the
same seed (mean, spread, and how many seeds gained). Dev is the selection split; test reports.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def _rows(run: Path) -> dict[str, dict[str, float]]:
    data = json.loads((run / "results.json").read_text(encoding="utf-8"))
    return {r["model"]: r for r in data["rows"]}


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    runs = {run.name: _rows(run) for run in args.runs}
    models = [m for m in next(iter(runs.values())) if m not in ("base", "judge")]
    first = next(iter(runs.values()))
    for fixed in ("base", "judge"):
        if fixed in first:
            row = first[fixed]
            dev, test = row["dev_spearman"], row["test_spearman"]
            print(f"{fixed}: dev {dev}, test {test} ({row['path']})")
    names = list(runs)
    print("\n| model | split | " + " | ".join(names) + " | mean ± sd |")
    print("|---|---|" + "---|" * (len(names) + 1))
    summary: dict[str, dict[str, object]] = {}
    for model in models:
        for split in ("dev", "test"):
            values = [float(runs[n][model][f"{split}_spearman"]) for n in names]
            cells = " | ".join(f"{v:.2f}" for v in values)
            print(f"| {model} | {split} | {cells} | {_mean_sd(values)} |")
            summary.setdefault(model, {})[split] = values
    print("\ntest gain over gold only, same seed:")
    for model in models:
        if model == "gold":
            continue
        gains = [
            float(runs[n][model]["test_spearman"]) - float(runs[n]["gold"]["test_spearman"])
            for n in names
        ]
        wins = sum(g > 0 for g in gains)
        print(f"  {model}: {_mean_sd(gains)} ({wins}/{len(gains)} seeds gained)")
        summary[model]["test_gain"] = gains
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
