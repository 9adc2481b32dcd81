"""Which unlabelled pairs AugSBERT labels: random, BM25 or semantic-search (kNN) sampling.

Thakur et al. (2021), "Augmented SBERT", NAACL, §4–5: which pairs are labelled matters more
than how many. Random pairs are almost all dissimilar, so a random silver set is skewed to low
scores; on STS-B it *hurt* compared with gold only. BM25 sampling (each sentence's lexically
nearest others) and semantic-search sampling (its nearest others by a bi-encoder) give a
balanced mix of similar and dissimilar pairs and helped most; their union is about as good as
the better of the two. The bi-encoder ranks by its own similarity (its ``similarity_fn_name``, as
search ranks): the cosine, or a dot-product model's dot product.

``given`` samples nothing: it labels the pairs of an unlabelled file as written (the paper's
domain-transfer setting, where the target data set's pairs exist and only their scores do not),
each once, with the same exclusions and cap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum

import numpy as np

from sentsim.base import Encoder, check_pairs, check_texts
from sentsim.choices import parse_choice
from sentsim.similarity import Metric, encoder_metric, normalize, similarity

Pair = tuple[str, str]


class Sampling(StrEnum):
    """How unlabelled pairs are chosen (Thakur et al., 2021, §4)."""

    RANDOM = "random"  # top_k random partners per sentence
    BM25 = "bm25"  # top_k lexically nearest others (BM25, via bm25s)
    KNN = "knn"  # top_k nearest others by a bi-encoder's similarity ("semantic search")
    BM25_KNN = "bm25+knn"  # the union of both
    GIVEN = "given"  # the unlabelled file's own pairs, as written (see :func:`given_pairs`)

    @classmethod
    def parse(cls, value: str | Sampling) -> Sampling:
        """Return the sampling named by ``value`` or raise listing the valid names."""
        return parse_choice(cls, value, "sampling")

    @classmethod
    def parse_many(cls, values: Iterable[str]) -> list[Sampling]:
        """Parse repeated and/or comma-separated names, without duplicates, in the order given."""
        names = [part for value in values for part in str(value).split(",") if part.strip()]
        if not names:
            valid = ", ".join(s.value for s in cls)
            raise ValueError(f"no sampling strategy given; choose from: {valid}")
        return list(dict.fromkeys(cls.parse(name) for name in names))

    @property
    def needs_encoder(self) -> bool:
        """Whether the strategy ranks by a bi-encoder's similarity."""
        return self in (Sampling.KNN, Sampling.BM25_KNN)


def text_key(text: str) -> str:
    """The identity of a text: its words joined by one space (``"A  man. "`` is ``"A man."``).

    A tokenizer reads no difference in whitespace, and STS-B train holds 32 sentences twice,
    once with an extra space, which made self-pairs and gold pairs look new.
    """
    return " ".join(text.split())


def pair_key(a: str, b: str) -> Pair:
    """The order-free identity of a pair: ``(a, b)`` and ``(b, a)`` share one key."""
    a, b = text_key(a), text_key(b)
    return (a, b) if a <= b else (b, a)


def sample_pairs(
    sentences: Sequence[str],
    strategy: str | Sampling,
    *,
    cap: int,
    top_k: int = 3,
    exclude: Iterable[Pair] = (),
    encoder: Encoder | None = None,
    seed: int = 0,
) -> list[Pair]:
    """Choose unlabelled pairs among ``sentences`` (see the module docstring for why).

    ``random``: ``top_k`` random partners per sentence; ``bm25``: each sentence's ``top_k`` best
    BM25 matches among the others (a shared non-stopword is required); ``knn``: its ``top_k``
    nearest others by ``encoder``'s similarity (:func:`~sentsim.similarity.encoder_metric`: the
    cosine, or a dot-product model's dot product); ``bm25+knn``: both. Self-pairs, pairs in
    ``exclude`` and repeats are skipped in either order, texts compared by :func:`text_key` (a
    sentence written twice, once with an extra space, is one sentence, kept as first written);
    excluded partners do not count towards ``top_k``.
    Over ``cap`` pairs, a random subset of ``cap`` is kept in order. Deterministic given ``seed``.

    >>> sample_pairs(["a red car", "a blue car", "my cat"], "bm25", cap=10, top_k=1)
    [('a red car', 'a blue car')]
    """
    kind = Sampling.parse(strategy)
    if kind == Sampling.GIVEN:
        raise ValueError("given pairs are not sampled from sentences: use given_pairs(pairs, ...)")
    firsts: dict[str, str] = {}
    for text in check_texts(sentences):
        if text.strip():
            firsts.setdefault(text_key(text), text)
    texts = list(firsts.values())
    if cap < 1:
        raise ValueError(f"cap must be at least 1 pair, got {cap}")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1 partner per sentence, got {top_k}")
    if kind.needs_encoder and encoder is None:
        raise ValueError(
            f"sampling {kind.value} ranks by a bi-encoder's similarity; pass encoder= (e.g. "
            "BiEncoder.load('minilm')) or choose bm25 or random"
        )
    excluded = {pair_key(a, b) for a, b in check_pairs(list(exclude))}
    if len(texts) < 2:
        return []
    partners: dict[int, set[int]] = {}
    index = {text_key(t): i for i, t in enumerate(texts)}
    for a, b in excluded:
        if a in index and b in index:
            partners.setdefault(index[a], set()).add(index[b])
            partners.setdefault(index[b], set()).add(index[a])
    depth = min(len(texts), top_k + 1 + max((len(p) for p in partners.values()), default=0))
    ranked: list[Iterator[list[int]]] = []
    if kind == Sampling.RANDOM:
        ranked.append(_random_partners(len(texts), depth - 1, seed))
    if kind in (Sampling.BM25, Sampling.BM25_KNN):
        ranked.append(_bm25_neighbours(texts, depth))
    if kind.needs_encoder and encoder is not None:
        ranked.append(_nearest_neighbours(texts, encoder, depth))
    out: list[Pair] = []
    seen = set(excluded)
    for ranking in ranked:
        for i, candidates in enumerate(ranking):
            kept = [j for j in candidates if j != i and j not in partners.get(i, ())][:top_k]
            for j in kept:
                key = pair_key(texts[i], texts[j])
                if key not in seen:
                    seen.add(key)
                    out.append((texts[i], texts[j]))
    return _capped(out, cap, seed)


def given_pairs(
    pairs: Sequence[Pair], *, cap: int, exclude: Iterable[Pair] = (), seed: int = 0
) -> list[Pair]:
    """``pairs`` as given, each once: self-pairs, pairs in ``exclude`` and repeats skipped.

    Pairs and texts are compared as :func:`sample_pairs` compares them (either order, by
    :func:`text_key`); the first writing is kept. Over ``cap`` pairs, a random subset of ``cap``
    is kept in order (deterministic given ``seed``).

    >>> given_pairs([("a cat", "a dog"), ("a dog", "a  cat"), ("x", "x")], cap=10)
    [('a cat', 'a dog')]
    """
    if cap < 1:
        raise ValueError(f"cap must be at least 1 pair, got {cap}")
    seen = {pair_key(a, b) for a, b in check_pairs(list(exclude))}
    out: list[Pair] = []
    for a, b in check_pairs(pairs):
        key = pair_key(a, b)
        if key[0] != key[1] and key not in seen:
            seen.add(key)
            out.append((a, b))
    return _capped(out, cap, seed)


def _capped(pairs: list[Pair], cap: int, seed: int) -> list[Pair]:
    """``pairs``, or over ``cap`` of them a random subset of ``cap`` in their order."""
    if len(pairs) <= cap:
        return pairs
    keep = np.sort(np.random.default_rng([seed, 1]).choice(len(pairs), cap, replace=False))
    return [pairs[int(i)] for i in keep]


def _random_partners(n: int, draws: int, seed: int) -> Iterator[list[int]]:
    """``draws`` distinct random other indices per index (spares for excluded partners)."""
    rng = np.random.default_rng([seed, 0])
    for i in range(n):
        draw = rng.choice(n - 1, size=min(draws, n - 1), replace=False) if n > 1 else ()
        yield [int(j) + int(j >= i) for j in draw]  # indices of the others, never i itself


def _bm25_neighbours(texts: list[str], depth: int) -> Iterator[list[int]]:
    """Each text's best BM25 matches among ``texts`` (score > 0 only), best first."""
    import bm25s

    tokens = bm25s.tokenize(texts, stopwords="en", show_progress=False)
    if not tokens.vocab:  # only stopwords: nothing shares a word
        yield from ([] for _ in texts)
        return
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    inverse = {i: w for w, i in tokens.vocab.items()}
    words = [[inverse[i] for i in ids] for ids in tokens.ids]
    queries = [i for i, w in enumerate(words) if w]
    docs, scores = retriever.retrieve(
        [words[i] for i in queries], k=depth, show_progress=False, n_threads=1
    )
    found = {i: [int(d) for d, s in zip(docs[r], scores[r], strict=True) if s > 0]
             for r, i in enumerate(queries)}  # fmt: skip
    yield from (found.get(i, []) for i in range(len(texts)))


def _nearest_neighbours(texts: list[str], encoder: Encoder, depth: int) -> Iterator[list[int]]:
    """Each text's nearest others by ``encoder``'s similarity; best first, ties by index.

    ``cos(u, v) = u·v / (‖u‖ ‖v‖)``, or ``u·v`` for a dot-product model (whose vectors' lengths
    are part of its score), as :func:`~sentsim.similarity.encoder_metric` says.
    """
    vectors = np.asarray(encoder.encode(texts, batch_size=64, show_progress=False), np.float32)
    if vectors.shape != (len(texts), encoder.dim):
        raise ValueError(
            f"encoder {encoder.name} returned shape {vectors.shape} for {len(texts)} texts; "
            f"expected ({len(texts)}, {encoder.dim})"
        )
    metric = encoder_metric(encoder)
    if metric is Metric.COSINE:  # unit rows once: their inner products are the cosines
        vectors, metric = normalize(vectors), Metric.DOT
    for start in range(0, len(texts), 1024):  # a block of rows at a time bounds memory
        sims = similarity(vectors[start : start + 1024], vectors, metric)
        for r, row in enumerate(sims):
            top = (
                np.argpartition(-row, depth - 1)[:depth]
                if depth < len(row)
                else np.arange(len(row))
            )
            yield [int(j) for j in sorted(top, key=lambda j: (-row[j], j)) if j != start + r]
