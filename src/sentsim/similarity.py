"""Similarity of embeddings: small pure functions, pairwise and as a matrix.

Pairwise functions take two arrays of shape ``(n, d)`` and return ``(n,)``: row ``i`` of ``a``
against row ``i`` of ``b``. Matrix functions return ``(n, m)``: every row of ``a`` against every
row of ``b``.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sentsim.choices import parse_choice

F32 = NDArray[np.float32]


class Metric(StrEnum):
    """Similarity metrics; higher always means more similar."""

    COSINE = "cosine"
    DOT = "dot"
    EUCLIDEAN = "euclidean"

    @classmethod
    def parse(cls, value: str | Metric) -> Metric:
        """Return the metric named by ``value`` or raise listing the valid names."""
        return parse_choice(cls, value, "metric")


def _as_2d(x: ArrayLike, name: str) -> F32:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, dim) or (dim,); got {arr.shape}")
    if arr.shape[1] == 0:  # [] read as one vector of no dimensions gave a similarity of 0
        raise ValueError(
            f"{name} has vectors of width 0 (shape {arr.shape}); for no vectors pass an array of "
            "shape (0, dim)"
        )
    return arr


def _check_dims(a: F32, b: F32) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embedding sizes differ: {a.shape[1]} and {b.shape[1]}")


def normalize(x: ArrayLike, eps: float = 1e-12) -> F32:
    """Return rows scaled to unit L2 norm: ``x[i] / max(||x[i]||, eps)`` (zero rows stay zero)."""
    arr = _as_2d(x, "x")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return (arr / np.maximum(norms, eps)).astype(np.float32)


def cosine_matrix(a: ArrayLike, b: ArrayLike) -> F32:
    """``res[i, j] = a[i]·b[j] / (||a[i]|| ||b[j]||)``; a zero vector has similarity 0."""
    a2, b2 = _as_2d(a, "a"), _as_2d(b, "b")
    _check_dims(a2, b2)
    return normalize(a2) @ normalize(b2).T


def dot_matrix(a: ArrayLike, b: ArrayLike) -> F32:
    """``res[i, j] = a[i]·b[j]``."""
    a2, b2 = _as_2d(a, "a"), _as_2d(b, "b")
    _check_dims(a2, b2)
    return a2 @ b2.T


def euclidean_matrix(a: ArrayLike, b: ArrayLike) -> F32:
    """``res[i, j] = -||a[i] - b[j]||``: negated so that higher means more similar."""
    a2, b2 = _as_2d(a, "a"), _as_2d(b, "b")
    _check_dims(a2, b2)
    # in float64: in float32 the expansion cancels to ~1e-7·||a||², and a text's distance to
    # itself came out as -0.0005 (unit vectors) or -0.1 (vectors of norm 100) instead of 0
    a2, b2 = a2.astype(np.float64), b2.astype(np.float64)
    sq = (a2**2).sum(1)[:, None] + (b2**2).sum(1)[None, :] - 2.0 * (a2 @ b2.T)
    return -np.sqrt(np.maximum(sq, 0.0)).astype(np.float32)


def cosine_pairwise(a: ArrayLike, b: ArrayLike) -> F32:
    """``res[i] = a[i]·b[i] / (||a[i]|| ||b[i]||)``."""
    a2, b2 = _paired(a, b)
    return (normalize(a2) * normalize(b2)).sum(1).astype(np.float32)


def dot_pairwise(a: ArrayLike, b: ArrayLike) -> F32:
    """``res[i] = a[i]·b[i]``."""
    a2, b2 = _paired(a, b)
    return (a2 * b2).sum(1).astype(np.float32)


def euclidean_pairwise(a: ArrayLike, b: ArrayLike) -> F32:
    """``res[i] = -||a[i] - b[i]||``."""
    a2, b2 = _paired(a, b)
    return -np.linalg.norm(a2 - b2, axis=1).astype(np.float32)


def _paired(a: ArrayLike, b: ArrayLike) -> tuple[F32, F32]:
    a2, b2 = _as_2d(a, "a"), _as_2d(b, "b")
    _check_dims(a2, b2)
    if a2.shape[0] != b2.shape[0]:
        raise ValueError(
            f"pairwise similarity needs as many rows in a as in b: {len(a2)} vs {len(b2)}"
        )
    return a2, b2


def encoder_metric(encoder: object) -> Metric:
    """The metric ``encoder``'s vectors are compared by: its ``similarity_fn_name``, else cosine.

    A :class:`~sentsim.bi_encoder.BiEncoder` names its own (sentence-transformers'
    ``similarity_fn_name``: ``cosine``, or ``dot`` for a dot-product model such as TAS-B), as
    ``model.similarity`` uses it; an encoder that names none (GloVe, a static model) is cosine.
    """
    value = getattr(encoder, "similarity_fn_name", None)
    return Metric.COSINE if value is None else Metric.parse(value)


_MATRIX = {Metric.COSINE: cosine_matrix, Metric.DOT: dot_matrix, Metric.EUCLIDEAN: euclidean_matrix}
_PAIRWISE = {
    Metric.COSINE: cosine_pairwise,
    Metric.DOT: dot_pairwise,
    Metric.EUCLIDEAN: euclidean_pairwise,
}


def similarity(
    a: ArrayLike, b: ArrayLike, metric: str | Metric = Metric.COSINE, *, pairwise: bool = False
) -> F32:
    """Return the similarity of embeddings ``a`` and ``b`` under ``metric``.

    With ``pairwise=False`` the result is the ``(n, m)`` matrix of every row of ``a`` against every
    row of ``b``; with ``pairwise=True`` it is ``(n,)``, row ``i`` against row ``i``.

    >>> similarity([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]).round(3).tolist()
    [[1.0, 0.0]]
    """
    table = _PAIRWISE if pairwise else _MATRIX
    return table[Metric.parse(metric)](a, b)
