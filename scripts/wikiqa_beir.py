"""Turn WikiQA (../shared/data/wikiqa) into a retrieval folder and re-ranker training pairs.

    python scripts/wikiqa_beir.py OUT

WikiQA gives, for each question, the sentences of one Wikipedia summary, each labelled 1 if it
answers the question. Here every sentence of the dev and test splits (deduplicated within a
split) becomes a document of one BEIR corpus, ``OUT/corpus.jsonl``, so a question is answered by
retrieving its sentence among all 3,400-odd, not only among its own page's: a second retrieval
domain (general knowledge, short passages) beside SciFact and the help center, for choosing and
checking a re-ranker. ``OUT/qrels/dev.tsv`` selects, ``OUT/qrels/test.tsv`` reports; questions
without an answering sentence are left out, as in the usual WikiQA evaluation.

``OUT/train-pairs.jsonl`` holds WikiQA train as labelled cross-encoder pairs
(``sentence1`` question, ``sentence2`` sentence, ``label`` 0/1), every candidate of every question.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sentsim.settings import dataset_path


def _split(root: Path, split: str) -> list[tuple[str, str, str, int]]:
    """(question id, question, sentence, label) rows of one WikiQA split."""
    cols = [
        (root / split / name).read_text(encoding="utf-8").splitlines()
        for name in ("id.txt", "a.toks", "b.toks", "sim.txt")
    ]
    if len({len(c) for c in cols}) != 1:
        sys.exit(f"{root / split}: id.txt, a.toks, b.toks and sim.txt differ in length")
    return [(i, q, s, int(float(y))) for i, q, s, y in zip(*cols, strict=True)]


def main(argv: list[str]) -> None:
    """Write the BEIR folder and the training pairs under ``argv[0]``."""
    if len(argv) != 1:
        sys.exit(__doc__)
    out = Path(argv[0])
    root = dataset_path("wikiqa")
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    corpus: list[dict[str, str]] = []
    queries: list[dict[str, str]] = []
    for split in ("dev", "test"):
        doc_ids: dict[str, str] = {}
        qrels: dict[str, set[str]] = {}
        texts: dict[str, str] = {}
        for qid, question, sentence, label in _split(root, split):
            if sentence not in doc_ids:
                doc_ids[sentence] = f"{split}-s{len(doc_ids)}"
                corpus.append({"_id": doc_ids[sentence], "title": "", "text": sentence})
            key = f"{split}-q{qid}"
            texts[key] = question
            if label > 0:
                qrels.setdefault(key, set()).add(doc_ids[sentence])
        queries += [{"_id": q, "text": texts[q]} for q in qrels]
        lines = ["query-id\tcorpus-id\tscore"]
        lines += [f"{q}\t{d}\t1" for q, docs in qrels.items() for d in sorted(docs)]
        (out / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{split}: {len(qrels)} questions with an answer, {len(doc_ids)} sentences")
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    train = _split(root, "train")
    pairs = [{"sentence1": q, "sentence2": s, "label": y} for _, q, s, y in train]
    (out / "train-pairs.jsonl").write_text(
        "".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8"
    )
    print(f"train: {len(pairs)} pairs, {sum(y for *_, y in train)} positive")


if __name__ == "__main__":
    main(sys.argv[1:])
