"""Word-matching pair scorers: BM25 (via ``bm25s``) and word-overlap (Jaccard).

Both see only surface words, so "my card isn't working abroad" and "International transaction
declined" score 0: the gap the neural models close.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from sentsim.base import check_pairs

_WORD = re.compile(r"\w+")


class BM25PairScorer:
    """Symmetric BM25 between the two texts of a pair.

    ``score(a, b) = (BM25(q=a, d=b) + BM25(q=b, d=a)) / 2`` with Lucene-style BM25 (``k1=1.5``,
    ``b=0.75``); document frequencies and lengths come from every distinct text among the pairs
    scored together, English stopwords removed (``bm25s`` tokenization).
    """

    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return one BM25 score per pair (0 when the texts share no non-stopword)."""
        import bm25s

        items = check_pairs(pairs)
        if not items:
            return np.zeros(0, dtype=np.float32)
        texts = sorted({t for pair in items for t in pair})
        row = {t: i for i, t in enumerate(texts)}
        tokenized = bm25s.tokenize(texts, stopwords="en", show_progress=False)
        if not tokenized.vocab:  # only stopwords or empty texts: bm25s cannot index nothing
            return np.zeros(len(items), dtype=np.float32)
        retriever = bm25s.BM25(k1=self.k1, b=self.b)
        retriever.index(tokenized, show_progress=False)
        inverse = {i: w for w, i in tokenized.vocab.items()}
        words = [[inverse[i] for i in ids] for ids in tokenized.ids]
        cache: dict[int, NDArray[np.float32]] = {}

        def scores_for(i: int) -> NDArray[np.float32]:
            if i not in cache:
                if words[i]:
                    cache[i] = np.asarray(retriever.get_scores(words[i]), dtype=np.float32)
                else:  # only stopwords: nothing to match
                    cache[i] = np.zeros(len(texts), dtype=np.float32)
            return cache[i]

        out = np.empty(len(items), dtype=np.float32)
        for k, (a, b) in enumerate(items):
            ia, ib = row[a], row[b]
            out[k] = 0.5 * (scores_for(ia)[ib] + scores_for(ib)[ia])
        return out


class OverlapPairScorer:
    """Jaccard overlap of lower-cased word sets: ``|A ∩ B| / |A ∪ B|`` (0 for two empty texts)."""

    name = "word-overlap"

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return one Jaccard overlap per pair."""
        out = []
        for a, b in check_pairs(pairs):
            wa, wb = set(_WORD.findall(a.lower())), set(_WORD.findall(b.lower()))
            union = wa | wb
            out.append(len(wa & wb) / len(union) if union else 0.0)
        return np.asarray(out, dtype=np.float32)
