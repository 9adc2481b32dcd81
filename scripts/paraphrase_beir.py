"""Turn a pair file into a paraphrase-retrieval folder: find a sentence's paraphrase among many.

    python scripts/paraphrase_beir.py PAIRS OUT [--min-score 4.0]

Duplicate detection as retrieval, a kind of data no re-ranker here was trained or tuned for: every
distinct second sentence of the file becomes a document of ``OUT/corpus.jsonl``; every first
sentence whose pair is a paraphrase (a graded score ≥ ``--min-score`` on the file's own scale, or
the label 1) becomes a query, and that pair's second sentence its relevant document
(``OUT/qrels/test.tsv``; a query with several such partners has each). The other second sentences
are the distractors, many of them on the same topic (STS-B and MRPC draw their pairs from the same
news, captions and forums). For checking that a judge does not make a first stage worse on data it
never saw: use development splits (STS-B dev, MRPC val) for anything that decides.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sentsim.data import read_pairs


def main() -> None:
    """Write the folder."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--min-score", type=float, default=4.0, help="graded files: paraphrase at")
    args = parser.parse_args()
    data = read_pairs(args.pairs)
    doc_ids: dict[str, str] = {}
    query_ids: dict[str, str] = {}
    qrels: dict[str, set[str]] = {}
    for example in data.examples:
        doc = doc_ids.setdefault(example.sentence2, f"d{len(doc_ids)}")
        if example.score is not None:
            positive = example.score >= args.min_score
        else:
            positive = str(example.label).strip() == "1"
        if positive:
            query = query_ids.setdefault(example.sentence1, f"q{len(query_ids)}")
            qrels.setdefault(query, set()).add(doc)
    (args.out / "qrels").mkdir(parents=True, exist_ok=True)
    with (args.out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for text, doc in doc_ids.items():
            handle.write(json.dumps({"_id": doc, "title": "", "text": text}) + "\n")
    with (args.out / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for text, query in query_ids.items():
            handle.write(json.dumps({"_id": query, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t1" for q, docs in qrels.items() for d in sorted(docs)]
    (args.out / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(doc_ids)} documents, {len(query_ids)} queries from {args.pairs}")


if __name__ == "__main__":
    main()
