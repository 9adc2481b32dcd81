"""The index's source of truth: an SQLite database (documents, passages, FTS5) and its manifest.

Every change is one SQLite transaction that also bumps the ``generation`` counter in ``meta``; the
derived search cache (:mod:`sentsim.index_cache`) is stamped with the generation it reflects.
Passage keys come from ``AUTOINCREMENT``, so a key is never reused: a cache row whose key is no
longer in ``passages`` is a tombstone, and a key never changes its vector.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentsim.atomic import atomic_write, fsync_dir
from sentsim.errors import IndexExistsError, IndexFormatError, IndexLockedError
from sentsim.index_filter import Where

try:  # POSIX only; elsewhere SQLite's own write lock is the only guard
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

# 2: the manifest's ann settings may say quantize="sq8" (an 8-bit HNSW graph); an index
# without it is still written as format 1.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
DATABASE = "index.sqlite"
LOCK_FILE = "writer.lock"
CACHE_DIR = "cache"
REBUILD = "rebuild the index with `sentsim index build`"


def index_exists(folder: Path) -> bool:
    """Whether ``folder`` holds an index (its manifest; whether it is intact is checked on open)."""
    return (folder / MANIFEST).exists()


_OWNER = "passages_owner"  # covering index for the owner lookup of search candidates
_OWNER_INDEX = f"{_OWNER} ON passages(key, doc_id, ordinal)"
_SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE documents (
    key INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL, text TEXT NOT NULL, metadata TEXT NOT NULL);
CREATE TABLE passages (
    key INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX passages_doc ON passages(doc_id);
CREATE INDEX {_OWNER_INDEX};
CREATE VIRTUAL TABLE documents_fts USING fts5(
    title, text, content='documents', content_rowid='key',
    tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER documents_ai AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts(rowid, title, text) VALUES (new.key, new.title, new.text);
END;
CREATE TRIGGER documents_ad AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, text)
    VALUES ('delete', old.key, old.title, old.text);
END;
CREATE TRIGGER documents_au AFTER UPDATE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, text)
    VALUES ('delete', old.key, old.title, old.text);
    INSERT INTO documents_fts(rowid, title, text) VALUES (new.key, new.title, new.text);
END;
INSERT INTO meta VALUES ('generation', 0);
"""

# A JSON array bound as one parameter avoids SQLite's limit on host parameters.
_IN_KEYS = "(SELECT value FROM json_each(?))"


# English function words left out of BM25 queries (documents keep them, so lengths are true):
# they match nearly every document, add noise to the ranking and make FTS5 walk long lists.
_STOP_TEXT = """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its itself
    just me more most my myself no nor not now of off on once only or other our ours ourselves out
    over own same she should so some such than that the their theirs them themselves then there
    these they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours yourself yourselves"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


def fts_query(text: str) -> str:
    """Return ``text`` as an FTS5 query that matches any of its words, each one quoted.

    Quoting makes punctuation inert (``"c++" OR "what's"`` is never a syntax error) and ``OR``
    gives BM25 its bag-of-words meaning. Repeated words count once and :data:`STOP_WORDS` are
    left out unless the query has nothing else. A query without word characters matches nothing.
    """
    words = text.replace("\0", " ").split()  # FTS5 ends a query at NUL: 'unterminated string'
    chunks = list(dict.fromkeys(c.lower() for c in words if re.search(r"[^\W_]", c)))
    content = [c for c in chunks if re.sub(r"[^\w']", "", c) not in STOP_WORDS]
    return " OR ".join('"' + c.replace('"', '""') + '"' for c in content or chunks)


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically."""
    data = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    atomic_write(folder / MANIFEST, lambda handle: handle.write(data))


def read_manifest(folder: Path) -> dict[str, Any]:
    """Return the parsed manifest, refusing a missing, corrupt or newer one."""
    path = folder / MANIFEST
    if not folder.exists():  # a mistyped path: nothing to rebuild
        raise IndexFormatError(
            f"no index at {folder}: the folder does not exist; check the path, or build one with "
            f"`sentsim index build CORPUS --index {folder}`"
        )
    if not path.is_file():
        raise IndexFormatError(f"{path} is missing, so {folder} is not a sentsim index; {REBUILD}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        version = manifest["format_version"]
        encoder, ann = manifest["encoder"], manifest["ann"]
        ok = isinstance(version, int) and version >= 1 and isinstance(ann, dict)
        ok = ok and isinstance(encoder["name"], str) and isinstance(encoder["weights_hash"], str)
        ok = ok and isinstance(encoder["dim"], int) and encoder["dim"] >= 1
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexFormatError(f"{path} is corrupt ({exc!r}); {REBUILD}") from exc
    if not ok:
        raise IndexFormatError(f"{path} is corrupt (a field has the wrong type); {REBUILD}")
    if version > FORMAT_VERSION:
        raise IndexFormatError(
            f"{folder} was built by a newer sentsim (format {version}, this reads "
            f"≤ {FORMAT_VERSION}); upgrade sentsim or {REBUILD}"
        )
    return dict(manifest)


class WriterLock:
    """An exclusive ``flock`` on ``writer.lock``: one writer per index; the OS frees it on exit."""

    def __init__(self, folder: Path, timeout: float) -> None:
        self._fd: int | None = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:  # pragma: no cover
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
                    self.release()
                    if holder == str(os.getpid()):
                        raise IndexLockedError(
                            f"{folder} is already open for writing in this process; close that"
                            " Index first, open this one with readonly=True, or pass"
                            " lock_timeout=SECONDS to wait for it to close"
                        ) from None
                    # said for the command line too: there only waiting for it is open to a user
                    raise IndexLockedError(
                        f"{folder} is open for writing by another process (pid {holder or '?'}),"
                        " and an index takes one writer at a time: run this again once that one"
                        " has finished (in Python, lock_timeout=SECONDS waits for it and"
                        " readonly=True opens the index only to read)"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Release the lock (closing the descriptor drops the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def create_folder(folder: Path, manifest: dict[str, Any]) -> None:
    """Create an index folder (manifest, empty database, cache folder), all or nothing.

    The folder is built under a temporary sibling name and renamed into place, so a crash
    never leaves a half-made index; an existing empty folder is replaced (POSIX rename).
    """
    if folder.exists():
        if (folder / MANIFEST).exists() or (folder / DATABASE).exists():
            raise IndexExistsError(
                f"{folder} already holds an index; open it with Index.open or delete it first"
            )
        if not folder.is_dir() or any(folder.iterdir()):
            raise IndexExistsError(f"{folder} exists and is not an empty folder; pick another")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.creating-{secrets.token_hex(4)}"
    try:
        staging.mkdir()
        conn = sqlite3.connect(staging / DATABASE, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(f"BEGIN;{_SCHEMA}COMMIT;")
        finally:
            conn.close()
        (staging / CACHE_DIR).mkdir()
        write_manifest(staging, manifest)
        fsync_dir(staging)
        try:
            os.replace(staging, folder)
        except OSError as exc:
            raise IndexExistsError(f"could not create the index at {folder}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(folder.parent)


class Store:
    """One connection to ``index.sqlite``; a reader keeps a read transaction as its snapshot."""

    def __init__(self, path: Path, *, readonly: bool, busy_timeout: float = 10.0) -> None:
        if not path.is_file():
            raise IndexFormatError(f"{path} is missing; documents live only there, so {REBUILD}")
        uri = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rw'}"
        self.path = path
        self.conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        try:
            self.conn.execute("PRAGMA synchronous=FULL")  # a returned commit survives power loss
            mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
            self.generation()
            self.conn.execute("SELECT key, id, title, text, metadata FROM documents LIMIT 0")
            self.conn.execute("SELECT key, doc_id, ordinal, text, vector FROM passages LIMIT 0")
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise IndexFormatError(
                f"{path} is not a sentsim index database ({exc}); {REBUILD}"
            ) from exc
        if mode.lower() != "wal" and not readonly:
            self.conn.execute("PRAGMA journal_mode=WAL")
        if not readonly:  # indexes made before the covering index get it on first write-open
            self.conn.execute(f"CREATE INDEX IF NOT EXISTS {_OWNER_INDEX}")
        exists = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
        # The planner prefers the rowid, whose table rows carry the vectors: the covering index
        # reads a few small pages instead (about half the time of a top-100 owner lookup).
        found = self.conn.execute(exists, (_OWNER,)).fetchone()
        self._owner_hint = f" INDEXED BY {_OWNER}" if found else ""

    def close(self) -> None:
        """End any open transaction and close the connection."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.close()

    def generation(self) -> int:
        """Return the commit counter as this connection sees it."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        if row is None:
            raise sqlite3.DatabaseError("meta table has no generation")
        return int(row[0])

    def begin_snapshot(self) -> int:
        """Start (or restart) a read transaction and return the generation it sees."""
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")
        self.conn.execute("BEGIN")
        return self.generation()  # the first read pins the snapshot

    @contextlib.contextmanager
    def write(self) -> Iterator[int]:
        """Run the block as one write transaction that bumps the generation; yield the old one."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            before = self.generation()
            yield before
            self.conn.execute("UPDATE meta SET value = ? WHERE key = 'generation'", (before + 1,))
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def document_count(self) -> int:
        """Return the number of documents."""
        return int(self.conn.execute("SELECT count(*) FROM documents").fetchone()[0])

    def counts(self) -> tuple[int, int]:
        """Return (documents, passages)."""
        docs = self.conn.execute("SELECT count(*) FROM documents").fetchone()[0]
        passages = self.conn.execute("SELECT count(*) FROM passages").fetchone()[0]
        return int(docs), int(passages)

    def existing(self, ids: Sequence[str]) -> list[str]:
        """Return those of ``ids`` that are stored."""
        sql = f"SELECT id FROM documents WHERE id IN {_IN_KEYS}"
        return [r[0] for r in self.conn.execute(sql, (json.dumps(list(ids)),))]

    def delete(self, ids: Sequence[str]) -> tuple[int, np.ndarray]:
        """Delete documents and their passages; return (documents removed, their passage keys)."""
        arg = (json.dumps(list(ids)),)
        keys = [
            r[0]
            for r in self.conn.execute(f"SELECT key FROM passages WHERE doc_id IN {_IN_KEYS}", arg)
        ]
        self.conn.execute(f"DELETE FROM passages WHERE doc_id IN {_IN_KEYS}", arg)
        removed = self.conn.execute(f"DELETE FROM documents WHERE id IN {_IN_KEYS}", arg).rowcount
        return removed, np.asarray(keys, dtype=np.int64)

    def insert(
        self,
        docs: Sequence[tuple[str, str, str, str]],
        passages: Sequence[Sequence[str]],
        vectors: np.ndarray,
    ) -> np.ndarray:
        """Insert (id, title, text, metadata JSON) rows and their passages; return passage keys."""
        self.conn.executemany(
            "INSERT INTO documents(id, title, text, metadata) VALUES (?, ?, ?, ?)", docs
        )
        seq = self.conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'passages'"
        ).fetchone()
        start = int(seq[0]) if seq else 0
        rows, row = [], 0
        for (doc_id, *_), texts in zip(docs, passages, strict=True):
            for ordinal, text in enumerate(texts):
                rows.append((doc_id, ordinal, text, vectors[row].tobytes()))
                row += 1
        self.conn.executemany(
            "INSERT INTO passages(doc_id, ordinal, text, vector) VALUES (?, ?, ?, ?)", rows
        )
        sql = "SELECT key FROM passages WHERE key > ? ORDER BY key"
        return np.asarray([r[0] for r in self.conn.execute(sql, (start,))], dtype=np.int64)

    def live_keys(self) -> np.ndarray:
        """Return every passage key, ascending."""
        rows = self.conn.execute("SELECT key FROM passages ORDER BY key").fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    def all_vectors(self, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (keys ascending, (n, dim) vectors) of every passage, read in one pass."""
        count = int(self.conn.execute("SELECT count(*) FROM passages").fetchone()[0])
        keys = np.empty(count, dtype=np.int64)
        out = np.empty((count, dim), dtype=np.float32)
        cursor = self.conn.execute("SELECT key, vector FROM passages ORDER BY key")
        done = 0
        while batch := cursor.fetchmany(65_536):
            end = done + len(batch)
            keys[done:end] = [key for key, _ in batch]
            flat = np.frombuffer(b"".join(blob for _, blob in batch), dtype="<f4")
            out[done:end] = flat.reshape(len(batch), dim)
            done = end
        return keys, out

    def vectors(self, keys: np.ndarray, dim: int) -> np.ndarray:
        """Return the stored vectors of ``keys`` (in that order) as a (len(keys), dim) array."""
        out = np.empty((len(keys), dim), dtype=np.float32)
        where = {int(k): i for i, k in enumerate(keys)}
        sql = f"SELECT key, vector FROM passages WHERE key IN {_IN_KEYS}"
        for start in range(0, len(keys), 50_000):
            chunk = json.dumps([int(k) for k in keys[start : start + 50_000]])
            for key, blob in self.conn.execute(sql, (chunk,)):
                out[where.pop(key)] = np.frombuffer(blob, dtype="<f4", count=dim)
        if where:
            raise sqlite3.DatabaseError(f"{len(where)} passages vanished while reading vectors")
        return out

    def owners(self, keys: Sequence[int]) -> dict[int, tuple[str, int]]:
        """Return {passage key: (document id, passage ordinal)} for the keys that exist."""
        select = f"SELECT key, doc_id, ordinal FROM passages{self._owner_hint} WHERE key IN"
        if len(keys) <= 5000:  # host parameters are faster than json_each on the search path
            rows = self.conn.execute(f"{select} ({','.join('?' * len(keys))})", list(keys))
        else:
            rows = self.conn.execute(f"{select} {_IN_KEYS}", (json.dumps(list(keys)),))
        return {k: (d, o) for k, d, o in rows}

    def documents(
        self, ids: Sequence[str], where: Where | None = None
    ) -> dict[str, tuple[str, str, str]]:
        """Return {id: (title, text, metadata JSON)} for the ids that exist (and match)."""
        sql = f"SELECT id, title, text, metadata FROM documents AS d WHERE id IN {_IN_KEYS}"
        condition, params = where.sql("d") if where is not None else ("", [])
        if condition:
            sql += f" AND {condition}"
        rows = self.conn.execute(sql, (json.dumps(list(ids)), *params))
        return {i: (t, x, m) for i, t, x, m in rows}

    def passage_texts(self, refs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """Return {(document id, ordinal): passage text} for the passages that exist."""
        sql = (
            "SELECT p.doc_id, p.ordinal, p.text FROM passages AS p JOIN json_each(?) AS r "
            "ON p.doc_id = json_extract(r.value, '$[0]') "
            "AND p.ordinal = json_extract(r.value, '$[1]')"
        )
        rows = self.conn.execute(sql, (json.dumps([list(r) for r in refs]),))
        return {(d, int(o)): t for d, o, t in rows}

    def metadata_fields(self) -> dict[str, int]:
        """Return {metadata field: number of documents that have it}, most common first."""
        sql = (
            "SELECT f.key, count(*) AS n FROM documents AS d, json_each(d.metadata) AS f "
            "GROUP BY f.key ORDER BY n DESC, f.key"
        )
        return {str(key): int(n) for key, n in self.conn.execute(sql)}

    def filtered_keys(self, where: Where) -> np.ndarray:
        """Return the passage keys of the documents that match ``where``, ascending."""
        condition, params = where.sql("d")
        sql = (
            "SELECT p.key FROM documents AS d JOIN passages AS p ON p.doc_id = d.id "
            f"WHERE {condition} ORDER BY p.key"
        )
        return np.asarray([r[0] for r in self.conn.execute(sql, params)], dtype=np.int64)

    def bm25(self, query: str, k: int, where: Where | None = None) -> list[tuple[str, float]]:
        """Return up to ``k`` (document id, BM25 score) pairs, best first (higher is better).

        FTS5's ``bm25()`` is negated Okapi BM25 over title and text taken as one field:
        ``sum_t idf(t) tf (k1 + 1) / (tf + k1 (1 - b + b |d| / avgdl))`` with k1 = 1.2, b = 0.75
        and ``idf(t) = max(ln((N - n_t + 0.5) / (n_t + 0.5)), 1e-6)``.
        """
        match = fts_query(query)
        if not match:
            return []
        condition, params = where.sql("d") if where is not None else ("", [])
        sql = (
            "SELECT d.id, -bm25(documents_fts) FROM documents_fts "
            "JOIN documents AS d ON d.key = documents_fts.rowid "
            f"WHERE documents_fts MATCH ?{f' AND {condition}' if condition else ''} "
            "ORDER BY bm25(documents_fts), d.key LIMIT ?"
        )
        limit = min(k, (1 << 63) - 1)  # SQLite's LIMIT is 64-bit; a larger k means every hit
        return [(i, float(s)) for i, s in self.conn.execute(sql, (match, *params, limit))]

    def size_bytes(self) -> int:
        """Return the bytes of the database file and its WAL."""
        wal = self.path.with_name(self.path.name + "-wal")
        return sum(p.stat().st_size for p in (self.path, wal) if p.exists())
