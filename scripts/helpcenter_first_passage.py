"""Re-rank the help center's dense top 20 with a judge reading each article's start only.

    python scripts/helpcenter_first_passage.py CROSS_ENCODER [--model bi-helpcenter] [--sample 200]

A check of the pipeline's max-over-passages rule for a short-window judge: each candidate
article is scored once, as title + text truncated to the judge's ``max_length`` (what such a
judge is trained on), instead of as the best of its passages. Questions: the same fixed sample of
the held-out dev tenth of Banking77 train as ``sentsim eval helpcenter --split dev --sample N``.
Prints Accuracy@1 at each fusion weight (``sentsim.search.rerank_fuse``; 0 = first stage).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from sentsim.bi_encoder import BiEncoder
from sentsim.corpus import document_text
from sentsim.cross_encoder import CrossEncoder
from sentsim.helpcenter import articles, intent_articles, train_dev_split
from sentsim.search import rerank_fuse

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
DEPTH = 20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cross_encoder")
    parser.add_argument("--model", default="bi-helpcenter")
    parser.add_argument("--sample", type=int, default=200)
    args = parser.parse_args(argv)
    docs = articles()
    texts, ids = [document_text(d) for d in docs], [d.id for d in docs]
    dev = train_dev_split()[1]
    keep = np.sort(np.random.default_rng(0).choice(len(dev), args.sample, replace=False))
    questions = [dev[int(i)] for i in keep]  # the sample write_beir(split="dev") draws
    mapping = intent_articles()
    gold = [mapping[intent] for _, intent in questions]
    encoder, judge = BiEncoder.load(args.model), CrossEncoder.load(args.cross_encoder)
    scores = encoder.encode([q for q, _ in questions]) @ encoder.encode(texts).T
    top = np.argsort(-scores, axis=1)[:, :DEPTH]
    pairs = [(questions[i][0], texts[j]) for i in range(len(questions)) for j in top[i]]
    judged = judge.predict(pairs, batch_size=64).reshape(len(questions), DEPTH)
    for weight in WEIGHTS:
        hits = [
            ids[top[i][int(np.argmax(rerank_fuse(scores[i, top[i]], judged[i], weight)))]]
            == gold[i]
            for i in range(len(questions))
        ]
        print(f"w={weight:g}: Accuracy@1 {100 * np.mean(hits):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
