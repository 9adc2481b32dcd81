"""Write SciFact (claim, cited abstract) pairs of one of our claim splits, for mining and training.

    python scripts/scifact_pairs.py SPLIT OUT.jsonl     (SPLIT: train or select; never report)

Rows are ``{"anchor": claim, "positive": title + newline + abstract}`` — the text the index
encodes for a document (``sentsim.corpus.document_text``) — one per relevant abstract in
SciFact's ``qrels/train.tsv`` for the claims listed in ``resources/splits/scifact-SPLIT.txt``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sentsim.corpus import document_text
from sentsim.evaluation.retrieval import load_beir
from sentsim.index import Document
from sentsim.models import RESOURCES
from sentsim.settings import dataset_path


def main(argv: list[str]) -> None:
    """Write the pairs of ``argv[0]``'s claims to ``argv[1]``."""
    if len(argv) != 2 or argv[0] not in ("train", "select"):
        sys.exit(__doc__)
    ids = (RESOURCES / "splits" / f"scifact-{argv[0]}.txt").read_text(encoding="utf-8").split()
    data = load_beir(dataset_path("scifact"), "train", queries_subset=ids)
    rows = [
        {"anchor": data.queries[q], "positive": document_text(Document(d, *data.corpus[d][::-1]))}
        for q, docs in sorted(data.qrels.items())
        for d, rel in sorted(docs.items())
        if rel > 0
    ]
    Path(argv[1]).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{argv[1]}: {len(rows)} pairs of {len(data.queries)} claims")


if __name__ == "__main__":
    main(sys.argv[1:])
