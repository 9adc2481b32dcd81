"""The derived search cache: passage vectors (``.npy``), their keys, and a faiss index over them.

Rows are only ever appended; a row whose passage was deleted or replaced stays as a *tombstone*
(``live[row] = False``) because HNSW cannot remove vectors, and is filtered at search time. A
rebuild (compaction) drops them. The cache is saved as one set of files named by a random token
and published by atomically replacing ``cache/current.json``, so a crash leaves the previous set.
Everything here can be rebuilt from SQLite; a missing or corrupt cache is rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

import faiss
import numpy as np

from sentsim.atomic import atomic_write, fsync_dir
from sentsim.index_store import sha256_file

log = logging.getLogger(__name__)

POINTER = "current.json"
# A filter that leaves at most this many passages, or less than this share of them, is searched
# exactly over its rows (a matrix product on vectors gathered once, up to CACHED_SUBSET_ROWS); a
# broader one goes through faiss with the filter as an ID selector, which with HNSW loses recall
# as fewer of the graph's nodes pass the filter: on 1M vectors recall@10 0.49 / 0.70 / 0.88 / 0.92
# at 0.1 / 1 / 5 / 10% kept, against 1.0 and 0.5-8 ms exactly (benchmarks/bench_index.py
# --filters; unfiltered HNSW 0.96 there).
EXACT_FILTERED_ROWS = 20_000
EXACT_FILTERED_SHARE = 0.15
CACHED_SUBSET_ROWS = 100_000


@dataclass
class Subset:
    """The rows a filter keeps (``mask``: a bool per cache row, tombstones False).

    ``vectors`` holds their vectors, gathered once, when the subset is searched exactly and has
    at most :data:`CACHED_SUBSET_ROWS` rows; ``exact`` says which path searches it.
    """

    mask: np.ndarray
    rows: np.ndarray
    exact: bool
    vectors: np.ndarray | None = None
    _bits: np.ndarray | None = None
    _selector: Any = None

    @property
    def nbytes(self) -> int:
        """Memory the subset holds (mask, rows and gathered vectors)."""
        held = self.vectors.nbytes if self.vectors is not None else 0
        return int(self.mask.nbytes + self.rows.nbytes + held)

    def selector(self) -> Any:
        """A faiss ID selector over the subset's rows (kept, with the bitmap it points into)."""
        if self._selector is None:
            self._bits = np.packbits(self.mask, bitorder="little")  # bit i of byte i >> 3
            self._selector = faiss.IDSelectorBitmap(len(self.mask), faiss.swig_ptr(self._bits))
        return self._selector


class _Choice(StrEnum):
    """A setting with a closed set of string values; ``parse`` names them when one is wrong."""

    @classmethod
    def parse(cls, value: str | _Choice) -> Any:
        """Return the member for ``value``, or raise listing the valid values."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(repr(m.value) for m in cls)
            setting, what = cls._setting()
            raise ValueError(f"{setting}={value!r} is not {what}; use one of {valid}") from None

    @classmethod
    def _setting(cls) -> tuple[str, str]:
        """The setting's name and what its values are, for the error message."""
        raise NotImplementedError


class AnnKind(_Choice):
    """How the first stage searches: exactly (``flat``), by HNSW graph, or chosen by size."""

    AUTO = "auto"
    FLAT = "flat"
    HNSW = "hnsw"

    @classmethod
    def _setting(cls) -> tuple[str, str]:
        return "ann", "an ANN kind"


class Quantize(_Choice):
    """What an HNSW graph holds of each vector: all of it (``none``) or 8 bits a dimension.

    ``sq8`` (faiss scalar quantizer on [-1, 1]; see :func:`new_faiss`) keeps a quarter of the
    memory; the graph then only proposes candidates, whose scores are recomputed from the float32
    vectors on disk, so scores stay exact and only which passages are candidates is approximate.
    A flat index is never quantized.
    """

    NONE = "none"
    SQ8 = "sq8"

    @classmethod
    def _setting(cls) -> tuple[str, str]:
        return "quantize", "a way to store an HNSW graph's vectors"


def parse_ann(ann: str | AnnKind, quantize: str | Quantize) -> tuple[AnnKind, Quantize]:
    """Return the ANN kind and quantization named, refusing a value or pair that is wrong."""
    kind, codes = AnnKind.parse(ann), Quantize.parse(quantize)
    if kind is AnnKind.FLAT and codes is not Quantize.NONE:
        raise ValueError(
            f"quantize={codes.value!r} applies to an HNSW graph and ann='flat' never builds "
            "one; use ann='hnsw' (or 'auto': flat while small, 8-bit HNSW above flat_max)"
        )
    return kind, codes


@dataclass(frozen=True)
class AnnSettings:
    """ANN settings stored in the manifest; ``auto`` is flat below ``flat_max`` passages."""

    kind: AnnKind = AnnKind.AUTO
    flat_max: int = 50_000
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 128
    quantize: Quantize = Quantize.NONE

    def kind_for(self, rows: int) -> AnnKind:
        """Return the concrete kind (flat or hnsw) for a cache of ``rows`` passages."""
        if self.kind is AnnKind.AUTO:
            return AnnKind.FLAT if rows < self.flat_max else AnnKind.HNSW
        return self.kind


def new_faiss(kind: AnnKind, dim: int, settings: AnnSettings) -> faiss.Index:
    """An empty inner-product faiss index of ``kind`` (flat or hnsw) for ``dim``-wide vectors.

    An 8-bit HNSW graph (``settings.quantize``) codes every component on one fixed range,
    [-1, 1], the range of a unit vector's components. Ranges learnt from the vectors were no
    better on 100,000 clustered 384-d vectors (recall@10 after rescoring 0.9943, fixed 0.9950)
    and depend on which vectors come first: a corpus added in topic order would be coded on its
    first topic's ranges, clipping the rest.
    """
    if kind is AnnKind.FLAT:
        return faiss.IndexFlatIP(dim)
    index: Any
    if settings.quantize is Quantize.SQ8:
        uniform: Any = faiss.ScalarQuantizer.QT_8bit_uniform  # one range for every dimension
        index = faiss.IndexHNSWSQ(dim, uniform, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.train(np.stack([np.ones(dim), -np.ones(dim)]).astype(np.float32))  # min/max
    else:
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = settings.ef_construction
    return index


class _Growable:
    """An array with amortised O(1) appends (capacity doubles); ``view`` is its current content."""

    def __init__(self, initial: np.ndarray) -> None:
        self._data, self.size = initial, len(initial)

    @property
    def view(self) -> np.ndarray:
        return self._data[: self.size]

    def extend(self, values: np.ndarray) -> None:
        need = self.size + len(values)
        if need > len(self._data):
            shape = (max(need, 2 * len(self._data), 64), *self._data.shape[1:])
            grown = np.empty(shape, dtype=self._data.dtype)
            grown[: self.size] = self.view
            self._data = grown
        self._data[self.size : need] = values
        self.size = need


class AnnCache:
    """Vectors, keys, live mask and faiss index of one set of passages, at one generation."""

    def __init__(
        self,
        kind: AnnKind,
        settings: AnnSettings,
        keys: np.ndarray,
        live: np.ndarray,
        vectors: np.ndarray,
        index: faiss.Index,
        generation: int,
    ) -> None:
        self.kind, self.settings, self.generation = kind, settings, generation
        self._keys, self._live = _Growable(keys), _Growable(live)
        self._base = vectors  # memory-mapped after a load
        self._tail = _Growable(np.empty((0, vectors.shape[1]), dtype=np.float32))
        self._index = index
        self._order: np.ndarray | None = None  # argsort of keys, None while keys ascend
        if len(keys) > 1 and not bool(np.all(np.diff(keys) > 0)):
            self._order = np.argsort(keys, kind="stable")
        self.unsaved = 0  # rows appended or killed since the last save or load

    @classmethod
    def build(
        cls, keys: np.ndarray, vectors: np.ndarray, settings: AnnSettings, generation: int
    ) -> AnnCache:
        """Return a new cache over ``vectors`` (rows of ``keys``), all live."""
        kind = settings.kind_for(len(keys))
        index = new_faiss(kind, vectors.shape[1], settings)
        for start in range(0, len(vectors), 65_536):
            index.add(np.ascontiguousarray(vectors[start : start + 65_536]))
        live = np.ones(len(keys), dtype=bool)
        cache = cls(kind, settings, keys, live, vectors, index, generation)
        cache.unsaved = len(keys)
        return cache

    @property
    def quantized(self) -> bool:
        """Whether faiss holds 8-bit codes (an HNSW graph with ``quantize="sq8"``)."""
        return self.kind is AnnKind.HNSW and self.settings.quantize is Quantize.SQ8

    @property
    def keys(self) -> np.ndarray:
        """Passage key of each row."""
        return self._keys.view

    @property
    def live(self) -> np.ndarray:
        """Whether each row's passage is live (False: a tombstone)."""
        return self._live.view

    @property
    def rows(self) -> int:
        """Number of rows, tombstones included."""
        return len(self.keys)

    @property
    def dead(self) -> int:
        """Number of tombstones."""
        return int(self.rows - np.count_nonzero(self.live))

    @property
    def dim(self) -> int:
        """Vector width."""
        return int(self._base.shape[1])

    def append(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add live rows for new passages."""
        if len(keys) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ascending = self._order is None and bool(np.all(np.diff(keys) > 0))
        if self.rows and ascending:
            ascending = bool(keys[0] > self.keys[-1])
        self._index.add(vectors)
        self._tail.extend(vectors)
        self._keys.extend(keys.astype(np.int64))
        self._live.extend(np.ones(len(keys), dtype=bool))
        self._order = None if ascending else np.argsort(self.keys, kind="stable")
        self.unsaved += len(keys)

    def kill(self, keys: np.ndarray) -> None:
        """Mark the rows of deleted passages as tombstones (unknown keys are ignored)."""
        if len(keys) == 0:
            return
        ordered = self.keys if self._order is None else self.keys[self._order]
        at = np.searchsorted(ordered, keys)
        inside = at < self.rows
        at, keys = at[inside], keys[inside]
        rows = at[ordered[at] == keys]
        if self._order is not None:
            rows = self._order[rows]
        rows = rows[self.live[rows]]
        self.live[rows] = False
        self.unsaved += len(rows)

    def reconcile(
        self,
        live_keys: np.ndarray,
        fetch: Callable[[np.ndarray], np.ndarray],
        generation: int,
    ) -> None:
        """Make the cache reflect ``live_keys`` (all passage keys at ``generation``).

        Rows not live become tombstones (a reader on an older snapshot may also revive rows),
        and live keys absent from the cache are appended with vectors from ``fetch(keys)``.
        """
        live = np.isin(self.keys, live_keys)
        self.unsaved += int(np.count_nonzero(live != self.live))
        self.live[:] = live
        missing = np.setdiff1d(live_keys, self.keys)
        if len(missing):
            self.append(missing, fetch(missing))
        self.generation = generation

    def vectors_at(self, rows: np.ndarray) -> np.ndarray:
        """Return the float32 vectors of cache rows (from the memory map or the appended tail)."""
        base = len(self._base)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        head = rows < base
        out[head] = self._base[rows[head]]
        out[~head] = self._tail.view[rows[~head] - base]
        return out

    def search(
        self, queries: np.ndarray, k: int, selector: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (q, k) inner products and candidate rows, best first, row ``-1`` past the end.

        The scores are exact: flat and plain HNSW indexes keep the float32 vectors, and the
        candidates of an 8-bit graph are scored again from the vectors on disk; only HNSW's
        choice of candidates is approximate. ``selector`` (a faiss ID selector over rows) limits
        the candidates to the rows it holds.
        """
        k = min(k, self.rows)
        if self.kind is AnnKind.HNSW:
            params: Any = faiss.SearchParametersHNSW(  # type: ignore[attr-defined]
                efSearch=max(self.settings.ef_search, k)
            )
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        scores, rows = self._index.search(queries, k, params=params)
        scores, rows = np.asarray(scores, dtype=np.float32), np.asarray(rows, dtype=np.int64)
        if self.quantized:
            scores, rows = self._rescored(queries, rows)
        return scores, rows

    def _rescored(self, queries: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products of each query with its candidate rows, best first (-1 last).

        One query at a time: gathering all queries' candidate vectors at once held a float32
        copy of (queries × candidates × dim) values, a transient hundreds of MiB for a batch.
        """
        scores = np.full(rows.shape, -np.inf, dtype=np.float32)
        for i, query in enumerate(queries):
            found = rows[i] >= 0
            scores[i, found] = self.vectors_at(rows[i, found]) @ query
        order = np.argsort(-scores, axis=1, kind="stable")
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)

    def subset(self, mask: np.ndarray) -> Subset:
        """The rows of ``mask`` (live ones only) and how they are searched."""
        mask = mask & self.live
        rows = np.flatnonzero(mask)
        live = self.rows - self.dead
        exact = len(rows) <= EXACT_FILTERED_ROWS or len(rows) < EXACT_FILTERED_SHARE * live
        vectors = self.vectors_at(rows) if exact and len(rows) <= CACHED_SUBSET_ROWS else None
        return Subset(mask, rows, exact, vectors)

    def top_documents(
        self,
        queries: np.ndarray,
        k: int,
        owners: Callable[[list[int]], dict[int, tuple[str, int]]],
        count_documents: Callable[[], int],
        subset: Subset | None = None,
    ) -> list[list[tuple[str, float, int]]]:
        """Return per query the top ``k`` (document id, score, passage ordinal), best first.

        A document scores its best passage, ``max_p <query, vector(p)>``, exact (see
        :meth:`search`; HNSW only approximates which passages are candidates). Tombstones are
        skipped, and candidates are fetched in doubling batches until ``k`` documents are found,
        or all of them, or the cache is exhausted. ``owners(keys)`` maps passage keys to
        (id, ordinal). ``subset`` (from :meth:`subset`) limits the search to its rows: exactly
        over them when it is small, else through faiss with the subset as an ID selector.
        """
        results: list[list[tuple[str, float, int]]] = [[] for _ in queries]
        live = self.rows - self.dead
        allowed = live if subset is None else len(subset.rows)
        if allowed == 0:
            return results
        # Enough candidates for k documents of average length, allowing for tombstones and a
        # tenth more; a query whose candidates hold fewer documents asks again for twice as many.
        per_document = live / max(1, count_documents())
        search: Callable[[list[int], int], tuple[np.ndarray, np.ndarray]]
        if subset is None:
            keep_rows, limit = self.live, self.rows
            fetch = min(self.rows, math.ceil(1.1 * k * per_document * self.rows / live) + 8)

            def search(pending: list[int], fetch: int) -> tuple[np.ndarray, np.ndarray]:
                return self.search(queries[pending], fetch)
        else:
            keep_rows, limit = subset.mask, allowed
            fetch = min(allowed, math.ceil(1.1 * k * per_document) + 8)
            search = self._subset_search(queries, subset)
        want, pending = k, list(range(len(queries)))
        while pending:
            all_scores, all_rows = search(pending, fetch)
            keep = all_rows >= 0
            keep[keep] = keep_rows[all_rows[keep]]
            found_keys = [self.keys[r[m]].tolist() for r, m in zip(all_rows, keep, strict=True)]
            found_scores = [s[m].tolist() for s, m in zip(all_scores, keep, strict=True)]
            owner = owners(sorted({key for keys in found_keys for key in keys}))
            for query, keys, scores in zip(pending, found_keys, found_scores, strict=True):
                best: dict[str, tuple[float, int]] = {}
                for key, score in zip(keys, scores, strict=True):  # best first
                    hit = owner.get(key)
                    if hit is not None and hit[0] not in best:
                        best[hit[0]] = (score, hit[1])
                        if len(best) == want:
                            break
                results[query] = [(doc, score, ordinal) for doc, (score, ordinal) in best.items()]
            short = [query for query in pending if len(results[query]) < want]
            if not short or fetch >= limit:
                break
            want = min(want, count_documents())  # fewer than k documents may exist at all
            pending = [query for query in short if len(results[query]) < want]
            fetch = min(limit, fetch * 2)
        return results

    def _subset_search(
        self, queries: np.ndarray, subset: Subset
    ) -> Callable[[list[int], int], tuple[np.ndarray, np.ndarray]]:
        """A search over the subset's rows only, answering as :meth:`search` does."""
        if not subset.exact:

            def through_faiss(pending: list[int], fetch: int) -> tuple[np.ndarray, np.ndarray]:
                return self.search(queries[pending], fetch, subset.selector())

            return through_faiss
        rows = subset.rows
        vectors = subset.vectors if subset.vectors is not None else self.vectors_at(rows)
        scores = queries @ vectors.T  # (queries, subset rows)

        def exact(pending: list[int], fetch: int) -> tuple[np.ndarray, np.ndarray]:
            part = scores[pending]
            fetch = min(fetch, len(rows))
            top = np.argpartition(-part, fetch - 1, axis=1)[:, :fetch]
            top_scores = np.take_along_axis(part, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            return (
                np.take_along_axis(top_scores, order, axis=1),
                rows[np.take_along_axis(top, order, axis=1)],
            )

        return exact

    def compacted(self, generation: int) -> AnnCache:
        """Return a cache rebuilt from the live rows only (and re-chosen flat or hnsw)."""
        rows = np.flatnonzero(self.live)
        vectors = np.empty((len(rows), self.dim), dtype=np.float32)
        for start in range(0, len(rows), 65_536):
            vectors[start : start + 65_536] = self.vectors_at(rows[start : start + 65_536])
        return AnnCache.build(self.keys[rows], vectors, self.settings, generation)

    def save(self, folder: Path) -> None:
        """Write the cache under ``folder`` atomically, then delete files of older caches."""
        folder.mkdir(exist_ok=True)
        stem = f"g{self.generation:09d}-{secrets.token_hex(4)}"
        vectors, rows = f"{stem}.vectors.npy", f"{stem}.rows.npz"
        atomic_write(folder / vectors, self._write_vectors)
        atomic_write(folder / rows, lambda f: np.savez(f, keys=self.keys, live=self.live))
        pointer: dict[str, Any] = {
            "generation": self.generation,
            "kind": self.kind.value,
            "rows": self.rows,
            "dim": self.dim,
            "files": {"vectors": vectors, "rows": rows, "ann": None},
        }
        if self.kind is AnnKind.HNSW:
            ann = pointer["files"]["ann"] = f"{stem}.hnsw.faiss"
            atomic_write(folder / ann, self._write_faiss)
            pointer["ann_sha256"] = sha256_file(folder / ann)
            pointer["hnsw_m"] = self.settings.hnsw_m
            pointer["quantize"] = self.settings.quantize.value
        data = json.dumps(pointer, indent=2).encode()
        atomic_write(folder / POINTER, lambda handle: handle.write(data))
        keep = {POINTER, *(n for n in pointer["files"].values() if n)}
        for path in folder.iterdir():
            if path.name not in keep:
                with contextlib.suppress(OSError):  # e.g. still mapped on Windows
                    path.unlink()
        fsync_dir(folder)
        # Serve from the new file from now on, which frees the appended rows' memory.
        self._base = np.load(folder / vectors, mmap_mode="r", allow_pickle=False)
        self._tail = _Growable(np.empty((0, self.dim), dtype=np.float32))
        self.unsaved = 0

    def _write_vectors(self, handle: IO[bytes]) -> None:
        header = {"descr": "<f4", "fortran_order": False, "shape": (self.rows, self.dim)}
        np.lib.format.write_array_header_1_0(handle, header)
        for part in (self._base, self._tail.view):
            for start in range(0, len(part), 65_536):
                handle.write(np.ascontiguousarray(part[start : start + 65_536]).tobytes())

    def _write_faiss(self, handle: IO[bytes]) -> None:
        writer = faiss.PyCallbackIOWriter(handle.write)  # type: ignore[attr-defined]
        faiss.write_index(self._index, writer)
        del writer  # flushes its buffer

    @classmethod
    def load(cls, folder: Path, settings: AnnSettings, dim: int) -> AnnCache | None:
        """Return the saved cache, or None (logged) when it is missing, corrupt or unsuitable."""
        for attempt in range(2):
            try:
                return cls._load(folder, settings, dim)
            except FileNotFoundError:
                if attempt == 0 and (folder / POINTER).exists():
                    continue  # a writer replaced the cache between our reads; read it again
                log.info("no search cache under %s; rebuilding it from the database", folder)
            except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
                log.warning("search cache under %s is unusable (%s); rebuilding it", folder, exc)
            break
        return None

    @classmethod
    def _load(cls, folder: Path, settings: AnnSettings, dim: int) -> AnnCache:
        pointer = json.loads((folder / POINTER).read_text(encoding="utf-8"))
        kind, rows, files = AnnKind(pointer["kind"]), int(pointer["rows"]), pointer["files"]
        if int(pointer["dim"]) != dim or settings.kind not in (AnnKind.AUTO, kind):
            raise ValueError(f"cache is {kind.value} of width {pointer['dim']}")
        vectors = np.load(folder / files["vectors"], mmap_mode="r", allow_pickle=False)
        with np.load(folder / files["rows"], allow_pickle=False) as arrays:
            keys, live = arrays["keys"], arrays["live"]
        if (
            vectors.dtype != np.float32
            or vectors.shape != (rows, dim)
            or keys.shape != (rows,)
            or live.shape != (rows,)
            or keys.dtype != np.int64
            or live.dtype != bool
            or len(np.unique(keys)) != rows
        ):
            raise ValueError("arrays do not match current.json")
        if kind is AnnKind.HNSW:
            ann_path = folder / files["ann"]
            if sha256_file(ann_path) != pointer["ann_sha256"]:
                raise ValueError(f"{ann_path.name} fails its checksum")
            if pointer.get("hnsw_m") != settings.hnsw_m:
                raise ValueError("hnsw_m changed")
            if pointer.get("quantize", Quantize.NONE.value) != settings.quantize.value:
                raise ValueError("quantize changed")
            index: Any = faiss.read_index(str(ann_path))
            index.hnsw.efConstruction = settings.ef_construction
        else:
            index = new_faiss(kind, dim, settings)
            for start in range(0, rows, 65_536):
                index.add(np.ascontiguousarray(vectors[start : start + 65_536]))
        if (
            index.ntotal != rows
            or index.d != dim
            or index.metric_type != faiss.METRIC_INNER_PRODUCT
        ):
            raise ValueError("faiss index does not match the vectors")
        return cls(kind, settings, keys, np.array(live), vectors, index, int(pointer["generation"]))
