"""Write SciFact (claim, cited abstract) pairs of one of our claim splits, for mining and training.

    python scripts/scifact_pairs.py SPLIT OUT.jsonl     (SPLIT: train or select; never report)
    python scripts/scifact_pairs.py titles OUT.jsonl CORPUS.jsonl

Rows are ``{"anchor": claim, "positive": title + newline + abstract}`` — the text the index
encodes for a document (``sentsim.corpus.document_text``) — one per relevant abstract in
SciFact's ``qrels/train.tsv`` for the claims listed in ``resources/splits/scifact-SPLIT.txt``.

``titles`` uses no claim and no judgement: every abstract of the corpus gives one pseudo-claim,
its title, whose positive is the abstract's text without the title (rows ``{"anchor": title,
"positive": text}``), and CORPUS.jsonl gets the corpus with the titles left out, so that negatives
mined from it (``sentsim mine --corpus CORPUS.jsonl``) look like the positives. Titles of papers
read much like SciFact's claims (a finding stated in one sentence); this is in-domain training
data for a re-ranker when 459 labelled claims are too few.
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
    if len(argv) == 3 and argv[0] == "titles":
        titles(Path(argv[1]), Path(argv[2]))
        return
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


def titles(out: Path, corpus_out: Path) -> None:
    """Write (title, abstract) pairs of every titled abstract, and the corpus without titles."""
    data = load_beir(dataset_path("scifact"), "train")
    rows, docs = [], []
    for doc_id, (title, text) in sorted(data.corpus.items(), key=lambda item: int(item[0])):
        if not text.strip():
            continue
        docs.append({"_id": doc_id, "text": text})
        if title.strip():
            rows.append({"anchor": title.strip(), "positive": text})
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    corpus_out.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    print(f"{out}: {len(rows)} (title, abstract) pairs; {corpus_out}: {len(docs)} abstracts")


if __name__ == "__main__":
    main(sys.argv[1:])
