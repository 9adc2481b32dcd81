"""Writes to an index that other processes write too: the writer lock is held only while writing.

An :class:`~sentsim.index.Index` opened for writing holds the index's writer lock until it is
closed, so a long-running service that kept one open would lock ``sentsim index add`` and
``delete`` out for as long as it runs. :class:`SharedWriter` opens the index for writing only
while it has writes to apply, waiting up to ``lock_timeout`` seconds for another writer to
finish. Writes that arrive while it is writing wait and are then applied by one opening (the
opening loads the search cache and the closing saves it, which costs as much as the index is
large), each still its own transaction: one that fails leaves nothing of itself and does not
touch the others.

Readers of the index (a server's read-only :class:`~sentsim.index.Index`) see each write whole or
not at all, at their next :meth:`~sentsim.index.Index.refresh`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentsim.batching import BatchStats, Coalescer
from sentsim.index import Document, EncoderIdentity, Index

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upserted:
    """What an upsert did: the ids that were new and the ids whose documents it replaced."""

    added: list[str]
    replaced: list[str]


@dataclass(frozen=True)
class Deleted:
    """What a delete did: the ids it removed and the ids no document had."""

    deleted: list[str]
    not_found: list[str]


@dataclass(frozen=True)
class _Upsert:
    docs: list[Document]
    passages: list[list[str]]
    vectors: np.ndarray


@dataclass(frozen=True)
class _Delete:
    ids: list[str]


_Outcome = Upserted | Deleted | Exception


class SharedWriter:
    """Upserts and deletes on the index at ``path``, each one transaction, from many threads.

    ``encoder``: the identity the index must have been built with (see
    :func:`~sentsim.search.encoder_identity`). ``lock_timeout``: seconds a write waits for
    another process's writer before it fails with :class:`~sentsim.errors.IndexLockedError`.
    ``max_items``: documents (or ids) one opening of the index applies, from the writes waiting.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        encoder: EncoderIdentity,
        *,
        lock_timeout: float = 10.0,
        max_items: int = 256,
    ) -> None:
        self.path = Path(path)
        self.encoder = encoder
        self.lock_timeout = lock_timeout
        self._queue: Coalescer[_Upsert | _Delete, list[_Outcome]] = Coalescer(
            self._apply, threading.Lock(), max_items=max_items
        )

    @property
    def stats(self) -> BatchStats:
        """Openings of the index (``calls``), writes (``jobs``) and their documents or ids."""
        return self._queue.stats

    def upsert(
        self, docs: Sequence[Document], passages: Sequence[Sequence[str]], vectors: np.ndarray
    ) -> Upserted:
        """:meth:`Index.add` ``(docs, passages, vectors, upsert=True)``; which ids were new.

        Refused as :meth:`Index.add` refuses it, with nothing written.
        """
        if not docs:
            return Upserted([], [])
        write = _Upsert(list(docs), [list(p) for p in passages], vectors)
        outcome = self._write(write, len(write.docs))
        assert isinstance(outcome, Upserted)
        return outcome

    def delete(self, ids: Sequence[str]) -> Deleted:
        """:meth:`Index.delete` ``(ids)``; which of them were found and removed."""
        if not ids:
            return Deleted([], [])
        outcome = self._write(_Delete(list(dict.fromkeys(ids))), len(ids))
        assert isinstance(outcome, Deleted)
        return outcome

    def _write(self, write: _Upsert | _Delete, size: int) -> Upserted | Deleted:
        outcome = self._queue("write", [write], size=max(1, size))[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _apply(self, key: str, writes: list[_Upsert | _Delete]) -> list[_Outcome]:
        """Open the index for writing, apply each write as its own commit, close it.

        Never raises for a write (its outcome is its error): :class:`Coalescer` would run the
        writes again one by one, and a delete applied twice reports its ids as not found.
        """
        try:
            index = Index.open(self.path, self.encoder, lock_timeout=self.lock_timeout)
        except Exception as exc:  # another writer held on; a broken index: every write fails
            return [exc] * len(writes)
        outcomes: list[_Outcome] = []
        try:
            for write in writes:
                try:
                    outcomes.append(_apply_one(index, write))
                except Exception as exc:
                    outcomes.append(exc)
        finally:
            try:
                index.close()
            except Exception:  # saving the cache failed: the commits stand, and the next
                log.exception("could not save the search cache of %s", self.path)  # open rebuilds
        return outcomes


def _apply_one(index: Index, write: _Upsert | _Delete) -> Upserted | Deleted:
    """One write as one transaction, and which of its ids the index held before it.

    This process holds the writer lock, so no other writer commits between the look-up and the
    write.
    """
    if isinstance(write, _Delete):
        found = index.existing(write.ids)
        index.delete(write.ids)
        return Deleted(
            [i for i in write.ids if i in found], [i for i in write.ids if i not in found]
        )
    ids = [d.id for d in write.docs]
    found = index.existing(ids)
    index.add(write.docs, write.passages, write.vectors, upsert=True)
    return Upserted([i for i in ids if i not in found], [i for i in ids if i in found])
