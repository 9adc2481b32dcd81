"""Build the training and selection pairs of the shipped re-ranker ``ce-rerank``.

Two sources, both under ``$SENTSIM_DATA``, none of it test data:

- help center: Banking77 **train** questions (a fixed sample) with the primary article of their
  intent as the positive, 2 look-alike articles mined by ``minilm`` (ranks 1–20) and 1 random
  article as negatives;
  the held-out part of train (``sentsim helpcenter-data``'s dev) gives the selection pairs;
- SciFact: claims of our ``train`` split with their cited abstracts as positives and 2 BM25
  negatives (ranks 1–30) from the whole corpus; the ``select`` split gives selection pairs.
  The ``report`` split is never touched here.

Usage: python scripts/rerank_data.py OUT_DIR   (then the command printed at the end)
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from sentsim.bi_encoder import BiEncoder
from sentsim.corpus import document_text, read_corpus
from sentsim.helpcenter import HELPCENTER, write_training_triples
from sentsim.models import RESOURCES
from sentsim.settings import dataset_path
from sentsim.training.data import Triple, read_triples
from sentsim.training.mining import MiningSettings, mine_negatives

HELP_TRAIN, HELP_DEV = 1500, 300


def _scifact(split: str) -> tuple[list[Triple], list[str]]:
    ids = set((RESOURCES / "splits" / f"scifact-{split}.txt").read_text().split())
    corpus = {d.id: document_text(d) for d in read_corpus(dataset_path("scifact", "corpus.jsonl"))}
    queries = {}
    for line in dataset_path("scifact", "queries.jsonl").open(encoding="utf-8"):
        row = json.loads(line)
        queries[row["_id"]] = row["text"]
    triples = []
    for line in dataset_path("scifact", "qrels", "train.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if qid in ids and int(score) > 0:
            triples.append(Triple(queries[qid], corpus[did]))
    return triples, list(corpus.values())


def _write_pairs(path: Path, positives: list[Triple], negatives: list[Triple]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for t in positives:
            handle.write(
                json.dumps({"sentence1": t.anchor, "sentence2": t.positive, "label": 1}) + "\n"
            )
        for t in negatives:
            handle.write(
                json.dumps({"sentence1": t.anchor, "sentence2": t.negative, "label": 0}) + "\n"
            )


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    train_file, dev_file = write_training_triples(out / "helpcenter")
    rng = random.Random(0)
    help_train = rng.sample(read_triples(train_file), HELP_TRAIN)
    help_dev = rng.sample(read_triples(dev_file), HELP_DEV)
    articles = [document_text(d) for d in read_corpus(HELPCENTER / "articles.jsonl")]
    encoder = BiEncoder.load("minilm")
    dense = MiningSettings(negatives=2, rank_window=(1, 20))
    lexical = MiningSettings(negatives=2, rank_window=(1, 30), use_bm25=True, use_dense=False)
    sci_train, sci_corpus = _scifact("train")
    sci_select, _ = _scifact("select")
    parts = {
        "train": (help_train, sci_train),
        "dev": (help_dev, sci_select),
    }
    for name, (help_part, sci_part) in parts.items():
        neg = mine_negatives(help_part, encoder, corpus=articles, settings=dense)
        # one easy negative per question too: a random other article
        neg += [
            Triple(t.anchor, t.positive, rng.choice([a for a in articles if a != t.positive]))
            for t in help_part
        ]
        neg += mine_negatives(sci_part, None, corpus=sci_corpus, settings=lexical)
        _write_pairs(out / f"rerank-{name}.jsonl", help_part + sci_part, neg)
        positives = len(help_part) + len(sci_part)
        print(f"{out}/rerank-{name}.jsonl: {positives} positives, {len(neg)} negatives")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
