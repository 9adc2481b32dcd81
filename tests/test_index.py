"""The on-disk index against brute force, across reopen, compaction, crashes and snapshots."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import faiss
import numpy as np
import pytest

from _index_writer import ENCODER as WRITER_ENCODER
from _index_writer import Doc, replay
from sentsim.errors import (
    EncoderMismatchError,
    IndexExistsError,
    IndexFormatError,
    IndexLockedError,
)
from sentsim.index import AnnKind, Document, EncoderIdentity, Index, IndexHit, Quantize
from sentsim.index_cache import AnnCache, AnnSettings
from sentsim.index_store import fts_query

DIM = 16
ENC = EncoderIdentity("toy-encoder", "feedface00000000", DIM)
WRITER = Path(__file__).with_name("_index_writer.py")
SRC = Path(__file__).resolve().parents[1] / "src"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def clustered(n: int, rng: np.random.Generator, dim: int = DIM, clusters: int = 12) -> np.ndarray:
    """Unit vectors around a few random centres, like embeddings of topical text."""
    centres = rng.normal(size=(clusters, dim))
    return unit(centres[rng.integers(clusters, size=n)] + 0.4 * rng.normal(size=(n, dim)))


def docs_for(n: int, prefix: str = "d") -> list[Document]:
    return [
        Document(f"{prefix}{i}", f"text of {prefix}{i} word{i}", f"title {i}") for i in range(n)
    ]


Ranked = list[list[tuple[str, float, int]]]


def brute_force(queries: np.ndarray, corpus: Mapping[str, np.ndarray], k: int) -> Ranked:
    """Exact document-level top k: a document scores max over its passages (numpy reference)."""
    out = []
    for query in queries:
        best = []
        for doc_id, vectors in corpus.items():
            scores = vectors @ query
            best.append((doc_id, float(scores.max()), int(scores.argmax())))
        best.sort(key=lambda hit: -hit[1])
        out.append(best[:k])
    return out


def assert_matches(hits: list[list[IndexHit]], expected: Ranked) -> None:
    for got, want in zip(hits, expected, strict=True):
        assert [h.doc_id for h in got] == [w[0] for w in want]
        np.testing.assert_allclose([h.score for h in got], [w[1] for w in want], rtol=1e-5)
        assert [h.passage for h in got] == [w[2] for w in want]
        assert [h.rank for h in got] == list(range(1, len(got) + 1))


def recall(hits: list[list[IndexHit]], expected: Ranked) -> float:
    pairs = zip(hits, expected, strict=True)
    found = sum(len({h.doc_id for h in g} & {w[0] for w in e}) for g, e in pairs)
    return found / sum(len(e) for e in expected)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def build(path: Path, n: int, rng: np.random.Generator, **options: object) -> tuple[Index, dict]:
    """An index of ``n`` one-passage documents; returns it and {id: (1, DIM) vectors}."""
    index = Index.create(path, ENC, **options)  # type: ignore[arg-type]
    vectors = clustered(n, rng)
    docs = docs_for(n)
    index.add(docs, None, vectors)
    return index, {d.id: vectors[i : i + 1] for i, d in enumerate(docs)}


# -- dense search against brute force ------------------------------------------------------------


def test_flat_search_equals_brute_force(tmp_path: Path, rng: np.random.Generator) -> None:
    """Exact search: ids, scores and ranks equal numpy's inner-product top k."""
    index, corpus = build(tmp_path / "idx", 300, rng)
    queries = clustered(20, rng)
    assert index.info().ann is AnnKind.FLAT
    assert_matches(index.search_dense(queries, 10), brute_force(queries, corpus, 10))
    assert_matches(index.search_dense(queries, 1), brute_force(queries, corpus, 1))
    index.close()


def test_document_score_is_max_over_its_passages(tmp_path: Path, rng: np.random.Generator) -> None:
    """Documents of 1–4 passages: score = best passage, ``passage`` = its ordinal, one hit each."""
    index = Index.create(tmp_path / "idx", ENC)
    counts = rng.integers(1, 5, size=120)
    vectors = clustered(int(counts.sum()), rng)
    docs = docs_for(len(counts))
    passages = [
        [f"{d.id} passage {o}" for o in range(c)] for d, c in zip(docs, counts, strict=True)
    ]
    index.add(docs, passages, vectors)
    ends = np.cumsum(counts)
    corpus = {d.id: vectors[e - c : e] for d, c, e in zip(docs, counts, ends, strict=True)}
    queries = clustered(15, rng)
    hits = index.search_dense(queries, 25)
    assert_matches(hits, brute_force(queries, corpus, 25))
    assert all(len({h.doc_id for h in row}) == len(row) for row in hits)
    assert index.info().passages == int(counts.sum())
    index.close()


def test_long_documents_that_fill_the_first_fetch_still_give_k(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """A few documents of 60 passages near the query crowd out the first fetch (sized for the
    average document): the search asks again and still returns the exact top k."""
    index = Index.create(tmp_path / "idx", ENC)
    query = unit(rng.normal(size=DIM))
    long_vectors = unit(query + 0.05 * rng.normal(size=(180, DIM)))  # 3 long docs, all close
    short_vectors = clustered(300, rng)
    docs = docs_for(3, "long") + docs_for(300, "short")
    passages = [[f"p{o}" for o in range(60)] for _ in range(3)] + [["p0"] for _ in range(300)]
    index.add(docs, passages, np.vstack([long_vectors, short_vectors]))
    corpus = {f"long{i}": long_vectors[60 * i : 60 * (i + 1)] for i in range(3)}
    corpus |= {f"short{i}": short_vectors[i : i + 1] for i in range(300)}
    hits = index.search_dense(query[None, :], 20)
    assert_matches(hits, brute_force(query[None, :], corpus, 20))
    assert len(hits[0]) == 20
    index.close()


def test_index_without_the_covering_owner_index_still_searches(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """An index made before ``passages_owner`` existed: readers search without it, and the first
    writer to open it adds it."""
    import sqlite3

    index, corpus = build(tmp_path / "idx", 200, rng)
    index.close()
    conn = sqlite3.connect(tmp_path / "idx" / "index.sqlite")
    conn.execute("DROP INDEX passages_owner")
    conn.commit()
    conn.close()
    queries = clustered(5, rng)
    with Index.open(tmp_path / "idx", ENC, readonly=True) as reader:
        assert_matches(reader.search_dense(queries, 10), brute_force(queries, corpus, 10))
    Index.open(tmp_path / "idx", ENC).close()
    conn = sqlite3.connect(tmp_path / "idx" / "index.sqlite")
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    assert "passages_owner" in names


def test_hnsw_recall_on_clustered_set(tmp_path: Path, rng: np.random.Generator) -> None:
    """HNSW candidates rescored exactly: recall@10 ≥ 0.95 and every score is exact."""
    index, corpus = build(
        tmp_path / "idx", 2000, rng, ann="hnsw", hnsw_m=16, ef_construction=64, ef_search=64
    )
    assert index.info().ann is AnnKind.HNSW
    queries = clustered(40, rng)
    hits = index.search_dense(queries, 10)
    assert recall(hits, brute_force(queries, corpus, 10)) >= 0.95
    for row, query in zip(hits, queries, strict=True):
        for hit in row:
            assert hit.score == pytest.approx(float(corpus[hit.doc_id][0] @ query), abs=1e-6)
    index.close()


def test_sq8_graph_scores_candidates_exactly(tmp_path: Path, rng: np.random.Generator) -> None:
    """An 8-bit HNSW graph: recall@10 ≥ 0.95, every score the float32 one, and across reopen."""
    options = {"ann": "hnsw", "quantize": "sq8", "hnsw_m": 16, "ef_construction": 64}
    index, corpus = build(tmp_path / "idx", 2000, rng, **options)
    info = index.info()
    assert (info.ann, info.quantize) == (AnnKind.HNSW, Quantize.SQ8)
    queries = clustered(40, rng)
    hits = index.search_dense(queries, 10)
    assert recall(hits, brute_force(queries, corpus, 10)) >= 0.95
    for row, query in zip(hits, queries, strict=True):
        assert [h.score for h in row] == sorted((h.score for h in row), reverse=True)
        for hit in row:
            assert hit.score == pytest.approx(float(corpus[hit.doc_id][0] @ query), abs=1e-6)
    # the faiss scores alone are not exact: without the rescoring the test above could not pass
    cache = index._cache
    raw, _ = cache._index.search(queries, 10)
    assert np.abs(raw[:, 0] - [row[0].score for row in hits]).max() > 1e-4
    index.close()
    with Index.open(tmp_path / "idx", ENC, readonly=True) as reader:
        assert reader.info().quantize is Quantize.SQ8
        assert reader.search_dense(queries, 10) == hits
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["format_version"] == 2 and manifest["ann"]["quantize"] == "sq8"


def test_sq8_rescoring_gathers_one_querys_candidates_at_a_time(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of queries is rescored query by query, so the float32 vectors gathered at once are
    one query's candidates, not the whole batch's (a transient of hundreds of MiB at 384 dims)."""
    options = {"ann": "hnsw", "quantize": "sq8", "hnsw_m": 16, "ef_construction": 64}
    index, corpus = build(tmp_path / "idx", 1200, rng, **options)
    cache = index._cache
    gathered: list[int] = []

    def vectors_at(rows: np.ndarray) -> np.ndarray:
        gathered.append(len(rows))
        return AnnCache.vectors_at(cache, rows)

    monkeypatch.setattr(cache, "vectors_at", vectors_at)
    queries = clustered(16, rng)
    hits = index.search_dense(queries, 20)
    assert recall(hits, brute_force(queries, corpus, 20)) >= 0.95
    assert 0 < max(gathered) <= 30  # 1.1 k + 8 candidates of one query; all 16 held 480
    index.close()


def test_unquantized_index_keeps_format_1(tmp_path: Path) -> None:
    """Only an index that needs format 2 says so, so an older sentsim still opens the rest: its
    manifest holds only format 1's ann settings (older sentsim refuses any other key)."""
    Index.create(tmp_path / "idx", ENC, ann="hnsw").close()
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    format_1 = {"kind", "flat_max", "hnsw_m", "ef_construction", "ef_search"}
    assert set(manifest["ann"]) == format_1
    with Index.open(tmp_path / "idx", ENC) as index:
        assert index.info().quantize is Quantize.NONE


def test_sq8_codes_on_the_unit_range_whatever_comes_first(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Documents added one topic at a time keep their recall: the 8-bit range is [-1, 1], not
    learnt from the first commit (which clipped later topics), and a row outside it is refused."""
    options = {"ann": "hnsw", "quantize": "sq8", "hnsw_m": 16, "ef_construction": 64}
    index = Index.create(tmp_path / "idx", ENC, **options)  # type: ignore[arg-type]
    vectors = clustered(3000, rng)
    by_topic = np.argsort(vectors[:, 0])  # one end of the distribution first
    vectors = vectors[by_topic]
    corpus = {}
    for start in range(0, 3000, 300):
        docs = docs_for(300, f"b{start}-")
        index.add(docs, None, vectors[start : start + 300])
        corpus |= {d.id: vectors[start + i : start + i + 1] for i, d in enumerate(docs)}
    storage = faiss.downcast_index(index._cache._index.storage)
    assert faiss.vector_to_array(storage.sq.trained).tolist() == [-1.0, 2.0]  # min, span
    queries = clustered(40, rng)
    assert recall(index.search_dense(queries, 10), brute_force(queries, corpus, 10)) >= 0.95
    with pytest.raises(ValueError, match=r"vectors row 0 has 3 in dimension 1; .* \[-1, 1\]"):
        index.add(docs_for(2, "x"), None, np.eye(2, DIM, 1, dtype=np.float32) * 3)
    assert len(index) == 3000
    index.close()


def test_quantize_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"quantize='pq'.*'none', 'sq8'"):
        Index.create(tmp_path / "idx", ENC, quantize="pq")
    assert not (tmp_path / "idx").exists()
    with pytest.raises(ValueError, match=r"quantize='sq8' applies to an HNSW graph"):
        Index.create(tmp_path / "idx", ENC, ann="flat", quantize="sq8")
    assert not (tmp_path / "idx").exists()


def test_auto_switches_between_flat_and_hnsw(tmp_path: Path, rng: np.random.Generator) -> None:
    index = Index.create(tmp_path / "idx", ENC, flat_max=100, hnsw_m=8, ef_construction=32)
    index.add(docs_for(90), None, clustered(90, rng))
    assert index.info().ann is AnnKind.FLAT
    index.add(docs_for(20, "e"), None, clustered(20, rng))
    assert index.info().ann is AnnKind.HNSW
    index.delete([f"d{i}" for i in range(70)])
    assert index.info().ann is AnnKind.FLAT
    index.close()


def test_empty_index_returns_no_hits(tmp_path: Path, rng: np.random.Generator) -> None:
    with Index.create(tmp_path / "idx", ENC) as index:
        assert index.search_dense(clustered(2, rng), 5) == [[], []]
        assert index.search_bm25(["anything"], 5) == [[]]
        assert len(index) == 0
        index.add([], None, np.zeros((0, DIM), np.float32))
        assert index.info().generation == 0


# -- add / upsert / delete / reopen / compaction -------------------------------------------------


@pytest.mark.parametrize("ann", ["flat", "hnsw"])
def test_deleted_documents_are_never_returned(
    tmp_path: Path, rng: np.random.Generator, ann: str
) -> None:
    """Delete every query's 30 nearest documents: none comes back, before or after reopening."""
    options = {"ann": ann, "hnsw_m": 16, "ef_construction": 64}
    index, corpus = build(tmp_path / "idx", 600, rng, **options)
    queries = clustered(10, rng)
    doomed = sorted({h[0] for row in brute_force(queries, corpus, 30) for h in row})
    assert index.delete(doomed) == len(doomed)
    live = {i: v for i, v in corpus.items() if i not in doomed}
    expected = brute_force(queries, live, 20)
    for _ in range(2):  # as written, then reopened from disk
        hits = index.search_dense(queries, 20)
        assert not {h.doc_id for row in hits for h in row} & set(doomed)
        assert all(len(row) == 20 for row in hits)
        if ann == "flat":
            assert_matches(hits, expected)
        else:
            assert recall(hits, expected) >= 0.95
        index.close()
        index = Index.open(tmp_path / "idx", ENC)
    assert len(index) == 600 - len(doomed)
    assert index.delete(["not-there", doomed[0]]) == 0
    index.close()


def test_upsert_replaces_text_and_vector(tmp_path: Path, rng: np.random.Generator) -> None:
    index, corpus = build(tmp_path / "idx", 50, rng)
    old = corpus["d7"]
    new = unit(rng.normal(size=(2, DIM)))
    changed = Document("d7", "a zebra crossing", "renamed", {"v": 2})
    index.add([changed], [["a zebra", "crossing"]], new, upsert=True)
    for _ in range(2):
        assert index.get(["d7"]) == [changed]
        assert index.search_bm25(["zebra"], 5)[0][0].doc_id == "d7"
        assert index.search_bm25(["word7"], 5) == [[]]
        hit = index.search_dense(new[1:2], 1)[0][0]
        assert (hit.doc_id, hit.passage) == ("d7", 1)
        assert hit.score == pytest.approx(1.0, abs=1e-5)
        by_old = index.search_dense(old, 50)[0]
        assert {h.doc_id for h in by_old} == set(corpus)
        assert next(h for h in by_old if h.doc_id == "d7").score < 0.999
        index.close()
        index = Index.open(tmp_path / "idx", ENC)
    assert len(index) == 50 and index.info().passages == 51
    index.close()


def test_compaction_triggers_and_keeps_results(tmp_path: Path, rng: np.random.Generator) -> None:
    """Tombstones stay below 20% of the cache; past it the writer rebuilds without them."""
    index, corpus = build(tmp_path / "idx", 100, rng)
    queries = clustered(8, rng)
    index.delete([f"d{i}" for i in range(15)])
    info = index.info()
    assert (info.cache_rows, info.tombstones) == (100, 15)
    live = {i: v for i, v in corpus.items() if int(i[1:]) >= 15}
    before = index.search_dense(queries, 10)
    assert_matches(before, brute_force(queries, live, 10))
    index.delete([f"d{i}" for i in range(15, 25)])  # 25 of 100 rows dead: compact
    info = index.info()
    assert (info.cache_rows, info.tombstones) == (75, 0)
    live = {i: v for i, v in live.items() if int(i[1:]) >= 25}
    assert_matches(index.search_dense(queries, 10), brute_force(queries, live, 10))
    index.delete(["d30"])
    index.compact()
    assert (index.info().cache_rows, index.info().tombstones) == (74, 0)
    after = index.search_dense(queries, 10)
    index.close()
    with Index.open(tmp_path / "idx", ENC, readonly=True) as reader:
        assert reader.search_dense(queries, 10) == after


def test_hnsw_compaction_keeps_recall(tmp_path: Path, rng: np.random.Generator) -> None:
    index, corpus = build(tmp_path / "idx", 800, rng, ann="hnsw", hnsw_m=16, ef_construction=64)
    gone = [f"d{i}" for i in range(0, 800, 3)]
    index.delete(gone)
    assert index.info().tombstones == 0 and index.info().cache_rows == 800 - len(gone)
    queries = clustered(20, rng)
    live = {i: v for i, v in corpus.items() if i not in set(gone)}
    assert recall(index.search_dense(queries, 10), brute_force(queries, live, 10)) >= 0.95
    index.close()


def test_cache_reconciles_to_an_older_snapshot(rng: np.random.Generator) -> None:
    """A reader may load a cache saved after its snapshot: rows are revived, killed or fetched."""
    vectors = clustered(10, rng)
    keys = np.arange(1, 11)
    cache = AnnCache.build(keys[3:], vectors[3:], AnnSettings(AnnKind.FLAT), generation=5)
    cache.kill(np.array([4, 5]))  # deleted by generation 5; keys 1-3 were compacted away
    fetched: list[list[int]] = []

    def fetch(wanted: np.ndarray) -> np.ndarray:
        fetched.append(wanted.tolist())
        return vectors[wanted - 1]

    cache.reconcile(np.array([1, 2, 4, 6, 7]), fetch, generation=3)
    assert fetched == [[1, 2]]
    assert sorted(cache.keys[cache.live].tolist()) == [1, 2, 4, 6, 7]
    assert (cache.rows, cache.dead, cache.generation) == (9, 4, 3)

    def owners(wanted: list[int]) -> dict[int, tuple[str, int]]:
        return {key: (f"k{key}", 0) for key in wanted}

    top = cache.top_documents(vectors[[0, 4]], 5, owners, lambda: 5)
    assert top[0][0][0] == "k1" and {hit[0] for hit in top[1]} == {"k1", "k2", "k4", "k6", "k7"}
    cache.kill(np.array([1, 99]))  # keys no longer ascend by row: the sorted lookup path
    assert sorted(cache.keys[cache.live].tolist()) == [2, 4, 6, 7]


def test_missing_or_corrupt_cache_is_rebuilt(tmp_path: Path, rng: np.random.Generator) -> None:
    """The cache is derived: removed or damaged, it is rebuilt from SQLite with equal results."""
    path = tmp_path / "idx"
    index, _ = build(path, 200, rng, ann="hnsw", hnsw_m=8, ef_construction=32)
    index.delete(["d1", "d2"])
    queries = clustered(5, rng)
    index.close()
    with Index.open(path, ENC) as index:
        expected = index.search_dense(queries, 10)
    faiss_file = next((path / "cache").glob("*.faiss"))
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    with Index.open(path, ENC, readonly=True) as index:
        assert {h.doc_id for h in index.search_dense(queries, 10)[0]} == {
            h.doc_id for h in expected[0]
        }
    (path / "cache" / "current.json").write_text("{not json")
    with Index.open(path, ENC) as index:
        assert index.info().tombstones == 0
        assert len(index.search_dense(queries, 10)[0]) == 10
    for file in (path / "cache").iterdir():
        file.unlink()
    with Index.open(path, ENC) as index:
        assert index.info().cache_rows == 198


def test_get_and_metadata_roundtrip(tmp_path: Path, rng: np.random.Generator) -> None:
    docs = [
        Document("ü-1", "Grüße aus Köln ☕", "Überschrift", {"tags": ["a", "b"], "n": 1.5}),
        Document("x", "plain", metadata={"nested": {"k": None}}),
    ]
    with Index.create(tmp_path / "idx", ENC) as index:
        index.add(docs, None, unit(rng.normal(size=(2, DIM))))
        assert index.get(["x", "ü-1"]) == [docs[1], docs[0]]
        assert index.search_bm25(["koln"], 3)[0][0].doc_id == "ü-1"  # diacritics folded
        with pytest.raises(KeyError, match="nope"):
            index.get(["x", "nope"])


@pytest.mark.parametrize(
    ("ids", "error", "message"),
    [
        ("d1", TypeError, r"got a single str; for one id pass \[id\]"),
        ((i for i in ["d1"]), TypeError, "must be a list of strings, got generator"),
        (["d1", 7], TypeError, r"id 1 is int \(7\); ids are strings"),
        (["d1", None], TypeError, "id 1 is NoneType"),
        ([["d1", "d2"]], TypeError, r"id 0 is list \(\['d1', 'd2'\]\); .* one flat list"),
        (["d1", ""], ValueError, r"id 1 \(''\) is empty; .*add refuses it"),
        (["  "], ValueError, "id 0 .* is empty"),
        (["d1\x00x"], ValueError, "id 0 .* holds a NUL character"),
        (["d\udce9"], ValueError, "id 0 .* holds the byte 0xe9, which is not UTF-8"),
        (["d\ud83d"], ValueError, "id 0 .* holds an unpaired surrogate"),
    ],
)
def test_get_delete_and_existing_refuse_ids_no_document_can_have(
    tmp_path: Path, rng: np.random.Generator, ids: object, error: type, message: str
) -> None:
    """As ``add`` refuses them. A list item was "unhashable type: 'list'" from inside; an empty
    id or a lone surrogate was quietly "not in the index"; ``delete(["d1\x00x"])`` deleted d1,
    as SQLite's JSON compared the id only up to its NUL.
    """
    index, _ = build(tmp_path / "idx", 3, rng)
    generation = index.info().generation
    for method in (index.get, index.delete, index.existing):
        with pytest.raises(error, match=message):
            method(ids)  # type: ignore[arg-type]
    assert len(index) == 3 and index.info().generation == generation
    index.close()


def test_ids_are_checked_before_they_are_looked_up(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Unknown ids: ``get`` names them, ``delete`` and ``existing`` leave them out; a tuple, a
    set and a 1-D numpy array of str are lists of ids; a repeated id is one id.
    """
    index, _ = build(tmp_path / "idx", 3, rng)
    with pytest.raises(KeyError, match=r"1 id\(s\) not in the index: \['nope'\]"):
        index.get(["d0", "nope"])
    assert [d.id for d in index.get(np.array(["d2", "d0"]))] == ["d2", "d0"]  # type: ignore[arg-type]
    assert [d.id for d in index.get(("d1", "d1"))] == ["d1"]
    assert index.existing({"d0", "nope"}) == {"d0"}  # type: ignore[arg-type]
    assert index.delete(["nope", "d1", "d1"]) == 1
    with pytest.raises(TypeError, match="id 0 is float"):
        index.delete(np.array([1.5]))  # type: ignore[arg-type]
    assert sorted(index.existing(["d0", "d1", "d2"])) == ["d0", "d2"]
    index.close()


def test_bm25_equals_hand_computed_okapi(tmp_path: Path, rng: np.random.Generator) -> None:
    """FTS5 bm25 over title + text as one field: k1 = 1.2, b = 0.75,

    score(q, d) = sum_t idf(t) * tf (k1 + 1) / (tf + k1 (1 - b + b |d| / avgdl)),
    idf(t) = max(ln((N - n_t + 0.5) / (n_t + 0.5)), 1e-6).
    """
    corpus = [
        ("fox tales", "the quick brown fox jumps"),
        ("", "a lazy dog sleeps all day long"),
        ("quick", "quick quick fox"),
        ("dog", "dogs and cats and birds"),
        ("", "nothing to see here at all really"),
    ]
    tokens = [f"{title} {text}".split() for title, text in corpus]
    avgdl = sum(map(len, tokens)) / len(tokens)

    def okapi(query: str, doc: list[str]) -> float:
        score = 0.0
        for term in query.split():
            n = sum(term in other for other in tokens)
            idf = max(np.log((len(tokens) - n + 0.5) / (n + 0.5)), 1e-6)
            tf = doc.count(term)
            score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(doc) / avgdl))
        return float(score)

    with Index.create(tmp_path / "idx", ENC) as index:
        docs = [Document(f"d{i}", text, title) for i, (title, text) in enumerate(corpus)]
        index.add(docs, None, unit(rng.normal(size=(5, DIM))))
        hits = index.search_bm25(["quick fox dog"], 10)[0]
    expected = sorted(
        ((f"d{i}", okapi("quick fox dog", doc)) for i, doc in enumerate(tokens)),
        key=lambda pair: -pair[1],
    )
    expected = [pair for pair in expected if pair[1] > 0]
    assert [h.doc_id for h in hits] == [doc_id for doc_id, _ in expected]
    np.testing.assert_allclose([h.score for h in hits], [s for _, s in expected], rtol=1e-9)


def test_bm25_ranks_and_tolerates_punctuation(tmp_path: Path, rng: np.random.Generator) -> None:
    docs = [
        Document("a", "the cat sat on the mat with another cat"),
        Document("b", "a dog and a cat"),
        Document("c", "stock markets fell", title="cat"),
        Document("d", "nothing relevant here"),
    ]
    with Index.create(tmp_path / "idx", ENC) as index:
        index.add(docs, None, unit(rng.normal(size=(4, DIM))))
        hits = index.search_bm25(["cat"], 10)[0]
        assert {h.doc_id for h in hits} == {"a", "b", "c"}
        assert hits[0].score >= hits[1].score >= hits[2].score > 0
        assert hits[0].passage is None and hits[0].rank == 1
        odd = ['"unbalanced AND (OR * cat', "NEAR(cat dog)", "c++ -dog: ^cat", "?!"]
        results = index.search_bm25(odd, 10)
        assert {h.doc_id for h in results[0]} == {"a", "b", "c"}
        assert results[3] == []
        # a NUL ended SQLite's reading of the query (OperationalError, a 500 from sentsim serve);
        # it is now refused by name, as in any text (the tokenizers drop it silently)
        with pytest.raises(ValueError, match="query 1 holds a NUL character"):
            index.search_bm25(["cat", "x\0cat"], 10)


def test_any_k_returns_every_hit(tmp_path: Path, rng: np.random.Generator) -> None:
    """A k past SQLite's 64-bit LIMIT (``--k-retrieve 10**20``) was an OverflowError from inside
    sqlite3 for BM25; both sides now return every document there is."""
    with Index.create(tmp_path / "idx", ENC) as index:
        index.add(docs_for(3), None, clustered(3, rng))
        assert len(index.search_bm25([docs_for(3)[0].text], 10**20)[0]) == 3
        assert len(index.search_dense(clustered(1, rng), 10**20)[0]) == 3


def test_bm25_query_drops_stop_words_unless_nothing_else(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    assert fts_query("What is the FEE for the card? fee") == '"fee" OR "card?"'
    assert fts_query("what is the") == '"what" OR "is" OR "the"'  # nothing else: keep them
    docs = [
        Document("fee", "a monthly fee applies to premium accounts"),
        Document("stop", "what is this and what is that and where is the other"),
    ]
    with Index.create(tmp_path / "idx", ENC) as index:
        index.add(docs, None, unit(rng.normal(size=(2, DIM))))
        # without the stop-word rule the long list of 'what is the' would rank "stop" first
        assert [h.doc_id for h in index.search_bm25(["what is the fee"], 10)[0]] == ["fee"]
        assert index.search_bm25(["what is the"], 10)[0][0].doc_id == "stop"


# -- files on disk, encoder identity, locking ----------------------------------------------------


def test_newer_format_is_refused(tmp_path: Path) -> None:
    Index.create(tmp_path / "idx", ENC).close()
    manifest = tmp_path / "idx" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format_version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(IndexFormatError, match=r"newer sentsim \(format 99, this reads ≤ 2\)"):
        Index.open(tmp_path / "idx")


def test_encoder_mismatch_is_refused(tmp_path: Path) -> None:
    Index.create(tmp_path / "idx", ENC).close()
    other = EncoderIdentity("toy-encoder", "0000000000000000", DIM)
    with pytest.raises(EncoderMismatchError, match=r"feedface00000000.*0000000000000000"):
        Index.open(tmp_path / "idx", other)
    with pytest.raises(EncoderMismatchError, match=r"dim 16.*dim 8"):
        Index.open(tmp_path / "idx", EncoderIdentity("toy-encoder", "feedface00000000", 8))
    with Index.open(tmp_path / "idx", ENC) as index:
        assert index.encoder == ENC


@pytest.mark.parametrize(
    ("damage", "file"),
    [
        ("delete", "manifest.json"),
        ("garble", "manifest.json"),
        ("truncate", "manifest.json"),
        ("delete", "index.sqlite"),
        ("garble", "index.sqlite"),
    ],
)
def test_missing_or_corrupt_file_is_named(
    tmp_path: Path, rng: np.random.Generator, damage: str, file: str
) -> None:
    index, _ = build(tmp_path / "idx", 5, rng)
    index.close()
    target = tmp_path / "idx" / file
    if damage == "delete":
        target.unlink()
    elif damage == "garble":
        target.write_bytes(b"this is not what you think it is" * 200)
    else:
        target.write_text('{"format_version": 1}')
    with pytest.raises(IndexFormatError, match=rf"{file}.*sentsim index build"):
        Index.open(tmp_path / "idx", ENC)


def test_a_folder_that_does_not_exist_is_not_told_to_rebuild(tmp_path: Path) -> None:
    """A mistyped --index said "idx/manifest.json is missing, so idx is not a sentsim index;
    rebuild the index": there is nothing to rebuild; it says the folder does not exist."""
    missing = tmp_path / "no-such-idx"
    with pytest.raises(IndexFormatError) as info:
        Index.open(missing, ENC)
    message = str(info.value)
    assert message.startswith(f"no index at {missing}: the folder does not exist")
    assert "rebuild" not in message and "sentsim index build CORPUS --index" in message


def test_create_refuses_existing_index_or_files(tmp_path: Path) -> None:
    Index.create(tmp_path / "idx", ENC).close()
    with pytest.raises(IndexExistsError, match="already holds an index"):
        Index.create(tmp_path / "idx", ENC)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(IndexExistsError, match="not an empty folder"):
        Index.create(tmp_path / "other", ENC)
    (tmp_path / "empty").mkdir()
    Index.create(tmp_path / "empty", ENC).close()
    assert not [p for p in tmp_path.iterdir() if "creating" in p.name]


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    writer = Index.create(tmp_path / "idx", ENC)
    # its own writer: not "another process (pid <its own pid>)"
    with pytest.raises(
        IndexLockedError, match=r"already open for writing in this process; .*readonly=True"
    ):
        Index.open(tmp_path / "idx", ENC)
    with Index.open(tmp_path / "idx", ENC, readonly=True) as reader:
        assert len(reader) == 0
        with pytest.raises(ValueError, match="read-only"):
            reader.delete(["x"])
        with pytest.raises(ValueError, match="read-only"):
            reader.compact()
    threading.Timer(0.3, writer.close).start()
    Index.open(tmp_path / "idx", ENC, lock_timeout=10).close()  # waits for the close
    with pytest.raises(ValueError, match="closed"):
        writer.search_bm25(["x"], 1)


# -- validation at the boundary ------------------------------------------------------------------


def test_duplicate_ids_error_unless_upsert(tmp_path: Path, rng: np.random.Generator) -> None:
    with Index.create(tmp_path / "idx", ENC) as index:
        twice = [Document("a", "one"), Document("b", "two"), Document("a", "three")]
        with pytest.raises(ValueError, match="documents 0 and 2 share the id 'a'"):
            index.add(twice, None, unit(rng.normal(size=(3, DIM))))
        index.add(twice[:2], None, unit(rng.normal(size=(2, DIM))))
        with pytest.raises(ValueError, match=r"already in the index \('a'\).*upsert=True"):
            index.add([Document("a", "again")], None, unit(rng.normal(size=(1, DIM))))
        assert index.get(["a"])[0].text == "one" and index.info().generation == 1
        index.add([Document("a", "again")], None, unit(rng.normal(size=(1, DIM))), upsert=True)
        assert index.get(["a"])[0].text == "again" and len(index) == 2


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda ix, v: ix.search_bm25([""], 3), ValueError, "query 0 is empty"),
        (lambda ix, v: ix.search_bm25(["ok", "  \n"], 3), ValueError, "query 1 is empty"),
        (lambda ix, v: ix.search_bm25(["\ud83d"], 3), ValueError, r"unpaired surrogate \(U\+D83D"),
        (lambda ix, v: ix.search_bm25("cat", 3), TypeError, "list of strings"),
        (lambda ix, v: ix.search_bm25(["cat"], 0), ValueError, "k=0"),
        (lambda ix, v: ix.search_dense(v[:, :8], 3), ValueError, r"shape \(2, 8\).*\(n, 16\)"),
        (lambda ix, v: ix.search_dense(v[0], 3), ValueError, r"v\[None, :\]"),
        (lambda ix, v: ix.search_dense(v * np.nan, 3), ValueError, "row 0 has NaN"),
        (lambda ix, v: ix.delete("d1"), TypeError, "pass \\[id\\]"),
        (
            lambda ix, v: ix.add([Document("x", "t")], None, v),
            ValueError,
            "vectors has 2 rows but the passages number 1",
        ),
        (
            lambda ix, v: ix.add([Document("x", "t"), Document(" ", "t")], None, v),
            ValueError,
            "document 1 has an empty id",
        ),
        (
            lambda ix, v: ix.add([Document(5, "t")], None, v[:1]),  # type: ignore[arg-type]
            ValueError,
            r"document 0 has id 5, a int; ids are strings",
        ),
        (
            lambda ix, v: ix.add([Document("x", "t"), Document("y", "\t")], None, v),
            ValueError,
            r"document 1 \(id 'y'\) has empty text",
        ),
        (
            lambda ix, v: ix.add([Document("x", "t")], [["a"], ["b"]], v),
            ValueError,
            "passages has 2 entries for 1 documents",
        ),
        (
            lambda ix, v: ix.add([Document("x", "t")], [["a", ""]], v),
            ValueError,
            r"passages\[0\] \(document 'x'\) has an empty passage",
        ),
        (
            lambda ix, v: ix.add([Document("x", "t", metadata={"f": {1, 2}})], None, v[:1]),
            ValueError,
            "metadata that is not plain JSON",
        ),
        # a lone surrogate was a UnicodeEncodeError from sqlite; a NUL id was stored but never
        # found again (SQLite compares text up to the NUL), and a NUL metadata value matched a
        # where filter on its first part
        (
            lambda ix, v: ix.add([Document("x", "t"), Document("y", "t\ud800")], None, v),
            ValueError,
            r"document 1 \(id 'y'\): its text holds an unpaired surrogate \(U\+D800\)",
        ),
        (
            lambda ix, v: ix.add([Document("x\x00y", "t")], None, v[:1]),
            ValueError,
            r"document 0 \(id 'x\\x00y'\): its id holds a NUL character",
        ),
        (
            lambda ix, v: ix.add([Document("x", "t", "caf\udce9")], None, v[:1]),
            ValueError,
            r"its title holds the byte 0xe9",
        ),
        (
            lambda ix, v: ix.add([Document("x", "t", metadata={"f": ["a", "b\x00"]})], None, v[:1]),
            ValueError,
            r"document 0 \(id 'x'\): metadata\['f'\]\[1\] holds a NUL",
        ),
        (
            lambda ix, v: ix.add([Document("x", "t", metadata={"\ud800": 1})], None, v[:1]),
            ValueError,
            r"a key of metadata holds an unpaired surrogate",
        ),
        (
            lambda ix, v: ix.add([Document("x", "t")], [["a", "b\ud800"]], v),
            ValueError,
            r"passages\[0\]\[1\] \(document 'x'\) holds an unpaired surrogate",
        ),
        (lambda ix, v: ix.search_bm25(["ok", "a\x00"], 3), ValueError, "query 1 holds a NUL"),
        (
            lambda ix, v: ix.add([Document("x", "t")], None, np.full((1, DIM), np.inf)),
            ValueError,
            "row 0 has NaN or infinite",
        ),
    ],
)
def test_bad_input_is_refused_with_a_fix(
    tmp_path: Path, rng: np.random.Generator, call: object, error: type, message: str
) -> None:
    with Index.create(tmp_path / "idx", ENC) as index:
        index.add(docs_for(3), None, clustered(3, rng))
        with pytest.raises(error, match=message):
            call(index, clustered(2, rng))  # type: ignore[operator]
        assert len(index) == 3 and index.info().generation == 1


def test_bad_create_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'auto', 'flat', 'hnsw'"):
        Index.create(tmp_path / "a", ENC, ann="ivf")
    with pytest.raises(ValueError, match="hnsw_m=1"):
        Index.create(tmp_path / "b", ENC, hnsw_m=1)
    with pytest.raises(ValueError, match="dim"):
        Index.create(tmp_path / "c", EncoderIdentity("x", "y", 0))
    assert not list(tmp_path.iterdir())


# -- crashes and concurrent readers --------------------------------------------------------------


def _writer(path: Path, until: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(until)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _run_writer(path: Path, until: int) -> None:
    out, err = _writer(path, until).communicate(timeout=60)
    assert f"committed {until}" in out, err


def check_state(index: Index, state: dict[str, Doc], queries: np.ndarray) -> None:
    """The index holds exactly ``state``: counts, ids, texts, dense and BM25 results."""
    assert len(index) == len(state)
    assert index.info().passages == sum(len(d.passages) for d in state.values())
    ids = sorted(state)
    for doc, doc_id in zip(index.get(ids), ids, strict=True):
        assert (doc.text, doc.title) == (state[doc_id].text, state[doc_id].title)
    corpus = {i: d.vectors for i, d in state.items()}
    hits = index.search_dense(queries, len(state) + 5)
    assert all({h.doc_id for h in row} == set(ids) for row in hits)
    assert_matches(index.search_dense(queries, 8), brute_force(queries, corpus, 8))
    for doc_id in ids[:: max(1, len(ids) // 5)]:
        unique_word = state[doc_id].passages[0].split()[-1]
        assert index.search_bm25([unique_word], 3)[0][0].doc_id == doc_id


def test_killed_writer_leaves_a_committed_state(tmp_path: Path) -> None:
    """SIGKILL a writer at 22 random moments; each time the index equals commit N or N+1.

    N is the last "committed N" the writer printed (it prints after the commit returns, so the
    kill may fall between a commit and its line). The writer restarts from the index's state.
    """
    path = tmp_path / "idx"
    Index.create(path, WRITER_ENCODER).close()
    chance = random.Random(20240611)
    queries = unit(np.random.default_rng(5).normal(size=(4, WRITER_ENCODER.dim)))
    known = progressed = 0
    first = ""
    for kill in range(22):
        writer = _writer(path, 1_000_000)
        if kill % 6 == 5:  # sometimes kill while it starts up (opening, catching up the cache)
            time.sleep(chance.uniform(0.05, 0.3))
        else:
            assert writer.stdout is not None
            ready = writer.stdout.readline()
            assert ready == f"ready {known}\n", writer.stderr.read() if writer.stderr else ""
            first = writer.stdout.readline()  # one commit at least, however busy the machine
            assert first == f"committed {known + 1}\n", first
            progressed += 1
            time.sleep(chance.uniform(0.0, 0.45))
        writer.send_signal(signal.SIGKILL)
        out, _ = writer.communicate()
        out = (first if kill % 6 != 5 else "") + out
        lines = [int(line.split()[1]) for line in out.splitlines() if line.startswith("committed")]
        last = lines[-1] if lines else known
        with Index.open(path, WRITER_ENCODER, readonly=True) as index:
            generation = index.info().generation
            assert generation in (last, last + 1)
            check_state(index, replay(generation), queries)
        known = generation
    # the writer made progress: a commit at least per kill after "ready" (200-300 in all on an
    # idle machine; a count of commits in a time would fail on a busy one)
    assert known >= progressed == 19


def test_reader_keeps_its_snapshot_until_refresh(tmp_path: Path) -> None:
    """A reader's results and fetched documents stay fixed while another process commits."""
    path = tmp_path / "idx"
    Index.create(path, WRITER_ENCODER).close()
    _run_writer(path, 20)
    queries = unit(np.random.default_rng(1).normal(size=(5, WRITER_ENCODER.dim)))
    reader = Index.open(path, WRITER_ENCODER, readonly=True)
    state = replay(20)
    words = [d.passages[0].split()[-1] for d in list(state.values())[:5]]

    def view(index: Index) -> tuple[object, ...]:
        dense = index.search_dense(queries, 10)
        found = sorted({h.doc_id for row in dense for h in row})
        return len(index), dense, index.search_bm25(words, 5), index.get(found)

    before = view(reader)
    check_state(reader, state, queries)
    _run_writer(path, 60)
    later = replay(60)
    gone = [d.id for d in before[3] if d.id not in later or later[d.id].text != d.text]
    assert gone  # the writer deleted or replaced documents the reader had found
    assert view(reader) == before
    reader.refresh()
    check_state(reader, replay(60), queries)
    with Index.open(path, WRITER_ENCODER, readonly=True) as fresh:
        assert view(reader) == view(fresh) != before
    reader.close()


def test_writer_sees_its_own_commits_and_readers_in_process(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    writer, _ = build(tmp_path / "idx", 40, rng)
    reader = Index.open(tmp_path / "idx", ENC, readonly=True)
    queries = clustered(3, rng)
    before = reader.search_dense(queries, 5)
    before_ids = [h.doc_id for h in before[0]]
    writer.delete(before_ids)
    assert reader.search_dense(queries, 5) == before
    assert not {h.doc_id for h in writer.search_dense(queries, 5)[0]} & {
        h.doc_id for h in before[0]
    }
    reader.refresh()
    assert reader.search_dense(queries, 5) == writer.search_dense(queries, 5)
    writer.delete([f"d{i}" for i in range(20)])  # past 20% tombstones: both compact
    reader.refresh()
    assert reader.info().tombstones == writer.info().tombstones == 0
    assert reader.search_dense(queries, 5) == writer.search_dense(queries, 5)
    assert len(reader) == len(writer) == 40 - len({f"d{i}" for i in range(20)} | set(before_ids))
    reader.close()
    writer.close()


def test_deleting_only_absent_ids_commits_nothing(tmp_path: Path, rng: np.random.Generator) -> None:
    """It made an empty commit: the generation rose, and every reader caught up for nothing."""
    index, _ = build(tmp_path / "idx", 10, rng)
    before = index.info().generation
    assert index.delete(["not-there", "nor-this"]) == 0
    assert index.info().generation == before
    assert index.delete(["d1", "not-there"]) == 1
    assert index.info().generation == before + 1
    index.close()
