"""Checks on what callers hand to :class:`sentsim.index.Index`; each message says how to fix it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from sentsim.base import check_json_text, check_text


def check_k(k: int) -> int:
    """Return ``k`` as an int ≥ 1."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k={k!r} must be an integer ≥ 1")
    return int(k)


def check_ids(ids: Sequence[str]) -> list[str]:
    r"""Return the ids as a list without repeats, refusing a bad one by its position.

    An id is refused as :meth:`Index.add <sentsim.index.Index.add>` refuses a document's: one
    that is not a str (a list passed as one id, say) is a ``TypeError``; an empty or
    whitespace-only one, or one :func:`~sentsim.base.check_text` refuses, a ``ValueError``. No
    document can have such an id, and SQLite compared ``"a\x00b"`` only up to the NUL: a delete
    of it removed the document ``"a"``. A bare string is refused (not a list of chars); a 1-D
    numpy array is taken as a list.
    """
    if isinstance(ids, str):
        raise TypeError("ids must be a list of strings, got a single str; for one id pass [id]")
    if isinstance(ids, np.ndarray) and ids.ndim == 1:
        ids = ids.tolist()  # numpy's str_ items become str, its numbers int or float (refused)
    if not isinstance(ids, Sequence | set | frozenset):
        raise TypeError(f"ids must be a list of strings, got {type(ids).__name__}")
    for i, doc_id in enumerate(ids):
        if not isinstance(doc_id, str):
            flat = "; pass one flat list of ids" if isinstance(doc_id, list | tuple | set) else ""
            raise TypeError(
                f"id {i} is {type(doc_id).__name__} ({doc_id!r:.60}); ids are strings{flat}"
            )
        if not doc_id.strip():
            raise ValueError(
                f"id {i} ({doc_id!r}) is empty; no document has one (add refuses it): drop it"
            )
        check_text(doc_id, f"id {i} ({doc_id!r:.60})")
    return list(dict.fromkeys(ids))


def check_queries(queries: Sequence[str]) -> list[str]:
    """Return the query strings; an empty or whitespace-only one is refused by position.

    So is one that :func:`~sentsim.base.check_text` refuses (a lone surrogate or a NUL).
    """
    if isinstance(queries, str) or not isinstance(queries, Sequence):
        raise TypeError("queries must be a list of strings; for one query pass [query]")
    for i, query in enumerate(queries):
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query {i} is empty or not a string; pass text with a word")
        check_text(query, f"query {i}")
    return list(queries)


def check_vectors(vectors: np.ndarray, dim: int, name: str) -> np.ndarray:
    """Return ``vectors`` as a C-contiguous float32 (n, dim) array with finite values."""
    array = np.asarray(vectors)
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValueError(
            f"{name} has shape {array.shape}; the index's encoder gives (n, {dim}) "
            "(for one vector use v[None, :])"
        )
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} has dtype {array.dtype}; pass float32 vectors")
    array = np.ascontiguousarray(array, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if len(bad):
        raise ValueError(f"{name} row {int(bad[0])} has NaN or infinite values; fix the encoder")
    return array


def document_rows(docs: Sequence[Any]) -> list[tuple[str, str, str, str]]:
    """Return (id, title, text, metadata JSON) per document, naming the position of a bad one."""
    rows: list[tuple[str, str, str, str]] = []
    seen: dict[str, int] = {}
    for i, doc in enumerate(docs):
        if not isinstance(doc.id, str):
            raise ValueError(
                f"document {i} has id {doc.id!r}, a {type(doc.id).__name__}; ids are strings "
                f"(Document(str({doc.id!r}), ...))"
            )
        if not doc.id.strip():
            raise ValueError(f"document {i} has an empty id; give every document a unique id")
        if not isinstance(doc.text, str) or not doc.text.strip():
            raise ValueError(f"document {i} (id {doc.id!r}) has empty text")
        if not isinstance(doc.title, str):
            raise TypeError(f"document {i} (id {doc.id!r}) has a non-string title")
        for field in ("id", "title", "text"):
            check_text(getattr(doc, field), f"document {i} (id {doc.id!r}): its {field}")
        if doc.id in seen:
            raise ValueError(
                f"documents {seen[doc.id]} and {i} share the id {doc.id!r}; ids must be unique"
            )
        seen[doc.id] = i
        try:
            meta = json.dumps(dict(doc.metadata), allow_nan=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"document {i} (id {doc.id!r}) has metadata that is not plain JSON ({exc})"
            ) from None
        check_json_text(doc.metadata, "metadata", f"document {i} (id {doc.id!r}): ")
        rows.append((doc.id, doc.title, doc.text, meta))
    return rows


def passage_lists(
    rows: Sequence[tuple[str, str, str, str]],
    passages: Sequence[Sequence[str]] | None,
    vector_rows: int,
) -> list[list[str]]:
    """Return each document's passage texts (default: its text), checked against the vectors."""
    if passages is None:
        out = [[text] for _, _, text, _ in rows]
    else:
        if isinstance(passages, str) or len(passages) != len(rows):
            raise ValueError(
                f"passages has {len(passages)} entries for {len(rows)} documents; "
                "give one list of passage texts per document"
            )
        out = []
        for i, texts in enumerate(passages):
            if isinstance(texts, str) or not texts:
                raise ValueError(
                    f"passages[{i}] (document {rows[i][0]!r}) must be a non-empty list of strings"
                )
            if not all(isinstance(t, str) and t.strip() for t in texts):
                raise ValueError(f"passages[{i}] (document {rows[i][0]!r}) has an empty passage")
            for j, text in enumerate(texts):
                check_text(text, f"passages[{i}][{j}] (document {rows[i][0]!r})")
            out.append(list(texts))
    total = sum(len(p) for p in out)
    if vector_rows != total:
        raise ValueError(
            f"vectors has {vector_rows} rows but the passages number {total}; "
            "pass one vector per passage, in order"
        )
    return out
