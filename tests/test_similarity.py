"""Similarity functions against hand-computed values, and the matrix/pairwise contract."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from sentsim.similarity import (
    Metric,
    cosine_matrix,
    cosine_pairwise,
    dot_matrix,
    dot_pairwise,
    euclidean_matrix,
    euclidean_pairwise,
    normalize,
    similarity,
)

A = np.array([[3.0, 4.0], [1.0, 0.0]], dtype=np.float32)
B = np.array([[4.0, 3.0], [0.0, 2.0], [-1.0, 0.0]], dtype=np.float32)
Sim = Callable[[np.ndarray, np.ndarray], np.ndarray]


def test_cosine_matrix_hand_computed() -> None:
    """cos([3,4],[4,3]) = 24/25; cos([3,4],[0,2]) = 8/10; opposite vectors give -1."""
    expected = [[24 / 25, 8 / 10, -3 / 5], [4 / 5, 0.0, -1.0]]
    np.testing.assert_allclose(cosine_matrix(A, B), expected, atol=1e-6)


def test_dot_matrix_hand_computed() -> None:
    expected = [[24.0, 8.0, -3.0], [4.0, 0.0, -1.0]]
    np.testing.assert_allclose(dot_matrix(A, B), expected, atol=1e-6)


def test_euclidean_matrix_is_negated_distance() -> None:
    """res[i, j] = -||a_i - b_j||: [3,4] vs [4,3] is -sqrt(2), [1,0] vs [-1,0] is -2."""
    expected = [
        [-math.sqrt(2), -math.sqrt(9 + 4), -math.sqrt(16 + 16)],
        [-math.sqrt(9 + 9), -math.sqrt(1 + 4), -2.0],
    ]
    np.testing.assert_allclose(euclidean_matrix(A, B), expected, atol=1e-5)


def test_euclidean_of_identical_vectors_is_exactly_zero_not_nan() -> None:
    """Rounding can make ||a||² + ||b||² - 2a·b slightly negative; the result must stay 0."""
    v = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    out = euclidean_matrix(v, v)
    assert np.isfinite(out).all()
    assert abs(float(out[0, 0])) < 1e-3


def test_euclidean_matrix_agrees_with_pairwise_for_long_vectors() -> None:
    """The matrix expands ||a||² + ||b||² - 2a·b, which cancelled in float32: a vector of norm
    ~100 was at distance 0.125 from itself (unit vectors: 0.0005, shown by sentsim similarity)."""
    a = (100 * np.random.default_rng(0).normal(size=(5, 8))).astype(np.float32)
    assert np.abs(np.diag(euclidean_matrix(a, a))).max() < 1e-4
    b = a[::-1].copy()
    np.testing.assert_allclose(np.diag(euclidean_matrix(a, b)), euclidean_pairwise(a, b), rtol=1e-6)
    assert euclidean_matrix(a, b).dtype == np.float32


@pytest.mark.parametrize(
    ("matrix", "pairwise"),
    [
        (cosine_matrix, cosine_pairwise),
        (dot_matrix, dot_pairwise),
        (euclidean_matrix, euclidean_pairwise),
    ],
)
def test_pairwise_is_the_diagonal_of_the_matrix(matrix: Sim, pairwise: Sim) -> None:
    """pairwise(a, b)[i] == matrix(a, b)[i, i] for random a, b of the same shape."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 7)).astype(np.float32)
    b = rng.normal(size=(5, 7)).astype(np.float32)
    np.testing.assert_allclose(pairwise(a, b), np.diag(matrix(a, b)), atol=1e-4)
    assert pairwise(a, b).shape == (5,)
    assert matrix(a, b).shape == (5, 5)


@pytest.mark.parametrize("metric", list(Metric))
def test_similarity_dispatches_matrix_and_pairwise(metric: Metric) -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 4)).astype(np.float32)
    b = rng.normal(size=(3, 4)).astype(np.float32)
    full = similarity(a, b, metric)
    assert full.shape == (3, 3)
    assert full.dtype == np.float32
    np.testing.assert_allclose(similarity(a, b, metric, pairwise=True), np.diag(full), atol=1e-4)


def test_similarity_accepts_metric_names_in_any_case() -> None:
    np.testing.assert_allclose(similarity(A, B, "DOT"), dot_matrix(A, B))
    np.testing.assert_allclose(similarity(A, B, "Cosine"), cosine_matrix(A, B))


def test_similarity_docstring_example() -> None:
    assert similarity([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]).round(3).tolist() == [[1.0, 0.0]]


def test_one_dimensional_input_is_one_row() -> None:
    out = cosine_matrix([1.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    assert out.shape == (1, 2)
    np.testing.assert_allclose(out, [[1.0, 0.0]])


def test_zero_vector_has_cosine_zero_not_nan() -> None:
    """A zero vector is orthogonal to everything, itself included."""
    zero = np.zeros((1, 3), dtype=np.float32)
    other = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_array_equal(cosine_matrix(zero, other), [[0.0, 0.0]])
    np.testing.assert_array_equal(cosine_pairwise(zero, zero), [0.0])
    np.testing.assert_array_equal(normalize(zero), zero)


def test_normalize_gives_unit_rows_and_keeps_direction() -> None:
    out = normalize(A)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out[0], [0.6, 0.8], atol=1e-6)


def test_empty_inputs_give_empty_results() -> None:
    empty = np.zeros((0, 2), dtype=np.float32)
    assert cosine_matrix(empty, B).shape == (0, 3)
    assert dot_matrix(A, empty).shape == (2, 0)
    assert euclidean_pairwise(empty, empty).shape == (0,)


@pytest.mark.parametrize("metric", list(Metric))
@pytest.mark.parametrize("pairwise", [False, True])
def test_dimension_mismatch_raises_naming_both_sizes(metric: Metric, pairwise: bool) -> None:
    with pytest.raises(ValueError, match="embedding sizes differ: 2 and 3"):
        similarity(A, np.ones((2, 3)), metric, pairwise=pairwise)


def test_pairwise_row_count_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="as many rows in a as in b: 2 vs 3"):
        cosine_pairwise(A, B)


def test_three_dimensional_input_raises() -> None:
    with pytest.raises(ValueError, match=r"a must have shape \(n, dim\) or \(dim,\)"):
        cosine_matrix(np.ones((2, 2, 2)), A)


def test_unknown_metric_lists_valid_names() -> None:
    with pytest.raises(
        ValueError, match="unknown metric 'manhattan'; expected one of: cosine, dot, euclidean"
    ):
        similarity(A, B, "manhattan")


def test_an_empty_list_is_not_a_vector() -> None:
    """``similarity([], [])`` was [[0.]]: [] read as one vector of no dimensions."""
    with pytest.raises(ValueError, match=r"a has vectors of width 0 \(shape \(1, 0\)\)"):
        similarity([], [])
    assert similarity(np.zeros((0, 3)), np.ones((2, 3))).shape == (0, 2)
