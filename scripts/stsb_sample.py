"""The fixed 10% sample of STS-B train for the low-resource AugSBERT experiment.

``python scripts/stsb_sample.py ids`` draws the sample once (574 of 5,749 rows, seed below) and
writes its line numbers to ``src/sentsim/resources/splits/stsb-train-10pct.txt`` (committed).
``python scripts/stsb_sample.py write OUT.csv`` writes those rows of ``sts-train.csv``, unchanged
(STS-B TSV), to OUT.csv outside the repository, as the ``--gold`` of ``sentsim augsbert``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sentsim.settings import dataset_path

IDS = Path(__file__).resolve().parents[1] / "src/sentsim/resources/splits/stsb-train-10pct.txt"
SEED = 20261124


def _lines() -> list[str]:
    return dataset_path("stsbenchmark", "sts-train.csv").read_text(encoding="utf-8").splitlines()


def main(argv: list[str]) -> None:
    """Draw the ids (``ids``) or write the sampled rows (``write OUT``)."""
    lines = _lines()
    if argv[:1] == ["ids"]:
        rng = np.random.default_rng(SEED)
        chosen = rng.choice(len(lines), size=len(lines) // 10, replace=False)
        IDS.write_text("".join(f"{i + 1}\n" for i in sorted(chosen)), encoding="utf-8")
        print(f"{IDS}: {len(chosen)} of {len(lines)} line numbers of sts-train.csv")
    elif argv[:1] == ["write"] and len(argv) == 2:
        numbers = [int(x) for x in IDS.read_text(encoding="utf-8").split()]
        rows = [lines[n - 1] for n in numbers]
        Path(argv[1]).write_text("\n".join(rows) + "\n", encoding="utf-8")
        scores = [float(r.split("\t")[4]) for r in rows]
        print(f"{argv[1]}: {len(rows)} rows, scores {min(scores)}..{max(scores)}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
