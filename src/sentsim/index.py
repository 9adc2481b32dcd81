"""An embedded on-disk index: dense (faiss) and lexical (SQLite FTS5 BM25) search, no server.

The index is encoder-agnostic: callers pass float32 vectors and it scores by their inner product
(so a cosine model's are passed as unit vectors: :func:`sentsim.search.index_vectors`). On disk, a
folder holds::

    manifest.json        format version, encoder identity, ANN settings (written once, atomically)
    index.sqlite (+wal)  the source of truth: documents, passages with vectors, FTS5, generation
    writer.lock          flock held by the one writer
    cache/               derived: vectors .npy, keys/live .npz, HNSW graph, current.json pointer

Each ``add``/``delete`` is one SQLite transaction, so a crash leaves the state after the last
returned commit (or the one in flight, if it reached the disk). The search cache is rebuilt or
caught up from SQLite when it is stale, missing or corrupt; deleted passages are tombstones in it
until more than :data:`COMPACT_RATIO` of its rows are dead, when it is rebuilt without them.

A read-only index holds an SQLite read transaction as its snapshot: its results, and ``get`` of
any document it returned, stay fixed while a writer commits, until :meth:`Index.refresh`. (The
WAL cannot be checkpointed past an open snapshot, so long-lived readers should refresh now and
then.) One writer at a time; a second gets :class:`~sentsim.errors.IndexLockedError`.

>>> index = Index.create("idx", EncoderIdentity("minilm", "ab12", 384))  # doctest: +SKIP
>>> index.add([Document("d1", "A cat sat.")], None, vectors)  # doctest: +SKIP
>>> index.search_dense(query_vectors, k=10)[0][0].doc_id  # doctest: +SKIP
'd1'
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from sentsim.errors import EncoderMismatchError, IndexFormatError
from sentsim.index_cache import AnnCache, AnnKind, AnnSettings, Quantize, Subset, parse_ann
from sentsim.index_checks import (
    check_ids,
    check_k,
    check_queries,
    check_vectors,
    document_rows,
    passage_lists,
)
from sentsim.index_filter import Where
from sentsim.index_store import (
    CACHE_DIR,
    DATABASE,
    FORMAT_VERSION,
    MANIFEST,
    REBUILD,
    Store,
    WriterLock,
    create_folder,
    read_manifest,
)

__all__ = [
    "AnnKind",
    "Document",
    "EncoderIdentity",
    "Index",
    "IndexHit",
    "IndexInfo",
    "Quantize",
    "Where",
]

COMPACT_RATIO = 0.2  # rebuild the cache when more than this share of its rows are tombstones
SAVE_RATIO, SAVE_MIN = 0.25, 1000  # the writer saves the cache once this many rows changed
SUBSET_BUDGET = 512 * 2**20  # bytes of filters' rows (and vectors) kept until the next commit


@dataclass(frozen=True)
class Document:
    """A document: its id, text, optional title and JSON-serialisable metadata."""

    id: str
    text: str
    title: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EncoderIdentity:
    """Which encoder made the vectors: an index refuses to open for another one."""

    name: str
    weights_hash: str
    dim: int


@dataclass(frozen=True)
class IndexHit:
    """One ranked document (rank from 1); ``passage`` is its best passage's ordinal (None: BM25)."""

    doc_id: str
    score: float
    rank: int
    passage: int | None = None


@dataclass(frozen=True)
class IndexInfo:
    """Counts and sizes; ``tombstones`` are dead cache rows awaiting compaction.

    ``ann`` and ``quantize`` say what the search cache is now: an ``auto`` index made with
    ``quantize="sq8"`` reports ``flat`` and ``none`` until it grows past ``flat_max``.
    """

    path: Path
    encoder: EncoderIdentity
    documents: int
    passages: int
    generation: int
    ann: AnnKind
    quantize: Quantize
    cache_rows: int
    tombstones: int
    database_bytes: int
    cache_bytes: int


_F = TypeVar("_F", bound=Callable[..., Any])


def _locked(method: _F) -> _F:
    """Serialise calls on one Index across threads and refuse them after ``close``."""

    @functools.wraps(method)
    def wrapper(self: Index, *args: Any, **kwargs: Any) -> Any:
        with self._mutex:
            if self._store is None:
                raise ValueError(f"index {self.path} is closed; open it again with Index.open")
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Index:
    """A folder holding documents, passage vectors and a BM25 index; see the module docstring."""

    def __init__(
        self,
        path: Path,
        encoder: EncoderIdentity,
        settings: AnnSettings,
        *,
        readonly: bool,
        lock_timeout: float,
    ) -> None:
        """Open an existing folder; use :meth:`create` or :meth:`open` instead."""
        self.path, self.encoder, self.readonly = path, encoder, readonly
        self._settings = settings
        self._mutex = threading.RLock()
        self._lock = None if readonly else WriterLock(path, lock_timeout)
        self._store: Store | None = None
        self._documents_at: tuple[int, int] | None = None  # (generation, document count)
        self._subsets: dict[str, Subset] = {}  # filter key -> its rows, for _subsets_of
        self._subsets_of: tuple[int, int, int] | None = None  # (cache id, generation, rows)
        try:
            self._store = Store(path / DATABASE, readonly=readonly)
            self._load_cache()
        except BaseException:
            self._release()
            raise

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        encoder: EncoderIdentity,
        *,
        ann: str | AnnKind = "auto",
        flat_max: int = 50_000,
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        quantize: str | Quantize = "none",
    ) -> Index:
        """Create an empty index in a new (or empty) folder and open it for writing.

        ``ann="auto"`` searches exactly below ``flat_max`` passages and by HNSW (``hnsw_m`` links
        per node, ``ef_construction``/``ef_search`` beam widths) above; ``"flat"``/``"hnsw"``
        force one. ``quantize="sq8"`` keeps 8 bits a dimension in the HNSW graph (a quarter of
        its memory; candidates are scored again from the float32 vectors, so scores stay
        exact). The folder is built under a temporary name and renamed into place.
        """
        folder = Path(path)
        kind, codes = parse_ann(ann, quantize)
        if not isinstance(encoder, EncoderIdentity):
            raise TypeError("encoder must be an EncoderIdentity(name, weights_hash, dim)")
        if not encoder.name or not isinstance(encoder.weights_hash, str):
            raise ValueError(f"encoder {encoder!r} needs a name and a weights_hash string")
        limits = {"dim": 1, "flat_max": 0, "hnsw_m": 2, "ef_construction": 1, "ef_search": 1}
        values = {"dim": encoder.dim, "flat_max": flat_max, "hnsw_m": hnsw_m}
        values |= {"ef_construction": ef_construction, "ef_search": ef_search}
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < limits[name]:
                raise ValueError(f"{name}={value!r} must be an integer ≥ {limits[name]}")
        settings = AnnSettings(kind, flat_max, hnsw_m, ef_construction, ef_search, codes)
        ann_settings = {**asdict(settings), "kind": kind.value, "quantize": codes.value}
        if codes is Quantize.NONE:  # format 1 has no such key, and older sentsim refuses one
            del ann_settings["quantize"]
        manifest = {
            # the oldest format that holds it, so that older sentsim still opens what it can read
            "format_version": FORMAT_VERSION if codes is Quantize.SQ8 else 1,
            "encoder": asdict(encoder),
            "ann": ann_settings,
        }
        create_folder(folder, manifest)
        return cls.open(folder, encoder)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        encoder: EncoderIdentity | None = None,
        *,
        readonly: bool = False,
        lock_timeout: float = 0.0,
    ) -> Index:
        """Open an index; with ``encoder``, refuse it unless it was built by that encoder.

        A writer (``readonly=False``) waits up to ``lock_timeout`` seconds for another writer to
        close. A reader sees a fixed snapshot until :meth:`refresh`.
        """
        folder = Path(path)
        manifest = read_manifest(folder)
        try:
            stored = EncoderIdentity(**manifest["encoder"])
            ann = dict(manifest["ann"])
            ann["kind"] = AnnKind.parse(ann["kind"])
            ann["quantize"] = Quantize.parse(ann.get("quantize", Quantize.NONE))
            settings = AnnSettings(**ann)
        except (TypeError, ValueError, KeyError) as exc:
            raise IndexFormatError(f"{folder / MANIFEST} is corrupt ({exc}); {REBUILD}") from exc
        if encoder is not None and encoder != stored:
            raise EncoderMismatchError(
                f"{folder} was built with encoder {_describe(stored)} but is opened with "
                f"{_describe(encoder)}; encode with the index's encoder or {REBUILD}"
            )
        return cls(folder, stored, settings, readonly=readonly, lock_timeout=lock_timeout)

    def _load_cache(self) -> None:
        """Load the saved cache and catch it up with the database, within one read snapshot.

        A reader keeps that snapshot open; a writer ends it (nobody else writes) and then
        compacts or saves the cache if it needed much catching up.
        """
        store = self._live_store()
        generation = store.begin_snapshot()
        try:
            cache = AnnCache.load(self.path / CACHE_DIR, self._settings, self.encoder.dim)
            if cache is None:
                keys, vectors = store.all_vectors(self.encoder.dim)
                cache = AnnCache.build(keys, vectors, self._settings, generation)
            elif cache.generation != generation:
                cache.reconcile(store.live_keys(), self._fetch, generation)
        finally:
            if not self.readonly:
                store.conn.execute("COMMIT")
        self._cache = cache
        if not self.readonly:
            self._maintain()

    def _fetch(self, keys: np.ndarray) -> np.ndarray:
        return self._live_store().vectors(keys, self.encoder.dim)

    def _live_store(self) -> Store:
        assert self._store is not None  # guarded by @_locked
        return self._store

    def _document_count(self) -> int:
        """The number of documents at the cache's generation (counted once per generation)."""
        generation = self._cache.generation
        if self._documents_at is None or self._documents_at[0] != generation:
            self._documents_at = (generation, self._live_store().document_count())
        return self._documents_at[1]

    # -- writing ---------------------------------------------------------------------------------

    @_locked
    def add(
        self,
        docs: Sequence[Document],
        passages: Sequence[Sequence[str]] | None,
        vectors: np.ndarray,
        *,
        upsert: bool = False,
    ) -> None:
        """Add documents in one transaction; ``upsert=True`` replaces documents with the same id.

        ``passages[i]`` are the passage texts of ``docs[i]`` (None: one passage, the text) and
        ``vectors`` holds one row per passage in that order. A duplicate id, in the batch or
        against the index without ``upsert``, is an error and nothing is written.
        """
        self._check_writable("add documents")
        for i, doc in enumerate(docs):
            if not isinstance(doc, Document):
                raise TypeError(f"document {i} is a {type(doc).__name__}; pass index.Document")
        rows = document_rows(docs)
        vectors = check_vectors(vectors, self.encoder.dim, "vectors")
        if self._settings.quantize is Quantize.SQ8 and len(vectors):
            row, column = np.unravel_index(int(np.argmax(np.abs(vectors))), vectors.shape)
            if abs(vectors[row, column]) > 1.0 + 1e-4:  # would be clipped: candidates lost
                raise ValueError(
                    f"vectors row {row} has {vectors[row, column]:.4g} in dimension {column}; "
                    "an index made with quantize='sq8' codes components in [-1, 1], as unit "
                    "vectors have them: normalise the rows (vectors compared by cosine), or make "
                    "the index without quantize"
                )
        texts = passage_lists(rows, passages, len(vectors))
        if not rows:
            return
        ids = [row[0] for row in rows]

        def write(store: Store) -> tuple[np.ndarray, np.ndarray]:
            dead = np.empty(0, dtype=np.int64)
            if upsert:
                dead = store.delete(ids)[1]
            elif clash := store.existing(ids):
                shown = ", ".join(repr(i) for i in clash[:5])
                raise ValueError(
                    f"{len(clash)} document id(s) already in the index ({shown}); "
                    "pass upsert=True to replace them or delete them first"
                )
            return dead, store.insert(rows, texts, vectors)

        self._commit(write, vectors)

    @_locked
    def delete(self, ids: Sequence[str]) -> int:
        """Delete documents by id in one transaction; return how many existed.

        Ids not in the index are ignored (the count tells how many were there). An id no document
        can have (not a str, empty, holding a NUL or a lone surrogate) is refused by its
        position, as :meth:`add` refuses it, and nothing is deleted.
        """
        self._check_writable("delete documents")
        unique = check_ids(ids)
        if not unique or not self._live_store().existing(unique):
            return 0  # nothing to delete: no commit (it would bump the generation for nothing)
        removed = 0

        def write(store: Store) -> tuple[np.ndarray, np.ndarray]:
            nonlocal removed
            removed, dead = store.delete(unique)
            return dead, np.empty(0, dtype=np.int64)

        self._commit(write, np.empty((0, self.encoder.dim), dtype=np.float32))
        return removed

    def _commit(
        self, write: Callable[[Store], tuple[np.ndarray, np.ndarray]], vectors: np.ndarray
    ) -> None:
        """Run ``write`` as one transaction, then apply its (dead, new) passage keys to the cache.

        The cache changes only after the commit: if this process dies in between, the next open
        catches the cache up from SQLite.
        """
        store = self._live_store()
        with store.write() as before:
            if before != self._cache.generation:  # another writer slipped in (no flock here)
                self._cache.reconcile(store.live_keys(), self._fetch, before)
            dead, new = write(store)
        try:
            self._cache.kill(dead)
            self._cache.append(new, vectors)
            self._cache.generation = before + 1
            self._maintain()
        except BaseException:
            self._load_cache()  # the commit stands; rebuild rather than serve a torn cache
            raise

    def _maintain(self) -> None:
        """Compact past COMPACT_RATIO tombstones or when ``auto`` should switch kind; maybe save.

        ``auto`` goes to HNSW at ``flat_max`` live passages and back to flat below half of it,
        so an index hovering at the threshold is not rebuilt on every commit.
        """
        cache, settings = self._cache, self._settings
        live = cache.rows - cache.dead
        switch = settings.kind is AnnKind.AUTO and (
            (cache.kind is AnnKind.FLAT and live >= settings.flat_max)
            or (cache.kind is AnnKind.HNSW and live < settings.flat_max // 2)
        )
        if cache.dead > COMPACT_RATIO * cache.rows or switch:
            self._cache = cache = cache.compacted(cache.generation)
        if not self.readonly and cache.unsaved >= max(SAVE_MIN, SAVE_RATIO * cache.rows):
            cache.save(self.path / CACHE_DIR)

    @_locked
    def compact(self) -> None:
        """Rebuild the search cache from the live passages only and save it."""
        self._check_writable("compact")
        self._cache = self._cache.compacted(self._cache.generation)
        self._cache.save(self.path / CACHE_DIR)

    def _check_writable(self, what: str) -> None:
        if self.readonly:
            raise ValueError(
                f"{self.path} is open read-only; open it with readonly=False to {what}"
            )

    # -- reading ---------------------------------------------------------------------------------

    def _subset(self, where: Where) -> Subset:
        """The cache rows of live passages whose documents match ``where`` (kept per commit)."""
        cache = self._cache
        state = (id(cache), cache.generation, cache.rows)
        if self._subsets_of != state:
            self._subsets, self._subsets_of = {}, state
        subset = self._subsets.get(where.key)
        if subset is None:
            keys = self._live_store().filtered_keys(where)
            subset = cache.subset(np.isin(cache.keys, keys))
            held = sum(s.nbytes for s in self._subsets.values())
            while self._subsets and held + subset.nbytes > SUBSET_BUDGET:  # oldest go first
                held -= self._subsets.pop(next(iter(self._subsets))).nbytes
            self._subsets[where.key] = subset
        return subset

    @_locked
    def search_dense(
        self,
        query_vectors: np.ndarray,
        k: int = 10,
        *,
        where: Mapping[str, Any] | Where | None = None,
    ) -> list[list[IndexHit]]:
        """Return the top ``k`` documents per query row; a document scores its best passage.

        ``score = max over the document's passages p of <query, vector(p)>``, exact for
        ``flat``; with HNSW the candidates are approximate but their scores exact. Deleted
        documents are never returned. ``where`` keeps only documents whose metadata matches
        (:class:`Where`); a filter that leaves few passages is searched exactly even with HNSW.
        """
        queries = check_vectors(query_vectors, self.encoder.dim, "query_vectors")
        k, parsed = check_k(k), Where.parse(where)
        store = self._live_store()
        subset = None if parsed is None else self._subset(parsed)
        ranked = self._cache.top_documents(queries, k, store.owners, self._document_count, subset)
        return [
            [
                IndexHit(doc, score, rank, passage)
                for rank, (doc, score, passage) in enumerate(row, 1)
            ]
            for row in ranked
        ]

    @_locked
    def search_bm25(
        self,
        queries: Sequence[str],
        k: int = 10,
        *,
        where: Mapping[str, Any] | Where | None = None,
    ) -> list[list[IndexHit]]:
        """Return the top ``k`` documents per query by BM25 over title and text (SQLite FTS5).

        Each whitespace-separated word is matched as a quoted token, so punctuation is safe; a
        query with no word characters matches nothing. An empty query is an error. ``where``
        keeps only documents whose metadata matches (:class:`Where`); the BM25 statistics stay
        those of the whole index.
        """
        texts, k, parsed = check_queries(queries), check_k(k), Where.parse(where)
        store = self._live_store()
        return [
            [IndexHit(doc_id, score, rank) for rank, (doc_id, score) in enumerate(hits, 1)]
            for hits in (store.bm25(text, k, parsed) for text in texts)
        ]

    @_locked
    def get(self, ids: Sequence[str]) -> list[Document]:
        """Return the documents with these ids, in order; raise KeyError naming any missing.

        An id no document can have is refused by its position, as :meth:`delete` refuses it.
        """
        wanted = check_ids(ids)
        found = self._live_store().documents(wanted)
        missing = [i for i in wanted if i not in found]
        if missing:
            raise KeyError(f"{len(missing)} id(s) not in the index: {missing[:5]!r}")
        return [Document(i, found[i][1], found[i][0], json.loads(found[i][2])) for i in wanted]

    @_locked
    def existing(
        self, ids: Sequence[str], *, where: Mapping[str, Any] | Where | None = None
    ) -> set[str]:
        """Return which of ``ids`` are documents of the index now (and match ``where``)."""
        return set(self._live_store().documents(check_ids(ids), Where.parse(where)))

    @_locked
    def passages(self, refs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """Return the text of each (document id, passage ordinal) that exists, as encoded.

        ``IndexHit.passage`` is such an ordinal: the passage a dense hit scored best by.
        """
        return self._live_store().passage_texts(list(refs)) if refs else {}

    @_locked
    def metadata_fields(self) -> dict[str, int]:
        """Return {metadata field: how many documents have it}: what ``where=`` can filter on."""
        return self._live_store().metadata_fields()

    @_locked
    def __len__(self) -> int:
        """Return the number of documents."""
        return self._live_store().document_count()

    @_locked
    def info(self) -> IndexInfo:
        """Return counts, the generation, the ANN kind, tombstones and sizes on disk."""
        store = self._live_store()
        documents, passages = store.counts()
        cache_bytes = 0
        with contextlib.suppress(OSError):  # a writer may be replacing the files
            cache_bytes = sum(p.stat().st_size for p in (self.path / CACHE_DIR).iterdir())
        return IndexInfo(
            path=self.path,
            encoder=self.encoder,
            documents=documents,
            passages=passages,
            generation=store.generation(),
            ann=self._cache.kind,
            quantize=self._settings.quantize if self._cache.quantized else Quantize.NONE,
            cache_rows=self._cache.rows,
            tombstones=self._cache.dead,
            database_bytes=store.size_bytes(),
            cache_bytes=cache_bytes,
        )

    @_locked
    def refresh(self) -> None:
        """Move to the latest committed state (a reader's snapshot otherwise stays fixed).

        A reader catches its in-memory cache up with the commits since its snapshot and, past
        COMPACT_RATIO tombstones, compacts it in memory (it never writes files).
        """
        store = self._live_store()
        generation = store.begin_snapshot() if self.readonly else store.generation()
        if generation != self._cache.generation:
            self._cache.reconcile(store.live_keys(), self._fetch, generation)
            self._maintain()

    def close(self) -> None:
        """Save the search cache if it changed (writer), close the database and release the lock."""
        with self._mutex:
            try:
                if self._store is not None and not self.readonly and self._cache.unsaved:
                    self._cache.save(self.path / CACHE_DIR)
            finally:
                self._release()

    def _release(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Index({str(self.path)!r}, encoder={_describe(self.encoder)})"


def _describe(encoder: EncoderIdentity) -> str:
    return f"{encoder.name!r} (weights {encoder.weights_hash!r}, dim {encoder.dim})"
