"""Paired bootstrap between per-query metric files written by ``sentsim eval ... --per-query``.

Usage: python scripts/bootstrap.py BASELINE.json SYSTEM.json [metric ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sentsim.evaluation.stats import paired_bootstrap


def main(argv: list[str]) -> None:
    a, b = (json.loads(Path(p).read_text()) for p in argv[:2])
    for metric in argv[2:] or ["mrr@10", "accuracy@1", "ndcg@10"]:
        r = paired_bootstrap(a, b, metric)
        print(
            f"{metric}: {r.mean_a:.2f} → {r.mean_b:.2f}  Δ {r.difference:+.2f} "
            f"[{r.low:+.2f}, {r.high:+.2f}] ({100 * r.confidence:.0f}% paired bootstrap, "
            f"{r.items} queries)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
