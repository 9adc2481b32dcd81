"""Metadata filters: the SQL rule against its Python statement; filtered search against numpy."""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentsim import index_cache
from sentsim.index import Document, EncoderIdentity, Index, Where
from sentsim.index_filter import parse_where_option

DIM = 16
ENC = EncoderIdentity("toy-encoder", "feedface00000000", DIM)

# Values a metadata field may hold: scalars of every JSON type, arrays, an object, odd text.
STORED: list[Any] = [
    "cards", "loans", "Cards", "", "ünïcode", "2024", 2024, 2024.0, 1, 0, 1.5, True, False, None,
    ["cards", "travel"], [1, "x"], [], [["cards"]], {"cards": "cards"},
]  # fmt: skip
WANTED: list[Any] = ["cards", "Cards", "ünïcode", "2024", 2024, 1, 1.0, 0, True, False, None, "x"]
FIELDS = ["product", "year", "a.b", 'quote"d', "é", "x[0]", "$.y", "with space"]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def random_metadata(rng: random.Random) -> dict[str, Any]:
    return {f: rng.choice(STORED) for f in FIELDS if rng.random() < 0.7}


def random_where(rng: random.Random) -> dict[str, Any]:
    where: dict[str, Any] = {}
    for field in rng.sample(FIELDS, rng.randint(1, 2)):
        where[field] = rng.choice(WANTED) if rng.random() < 0.6 else rng.sample(WANTED, 2)
    return where


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Index, list[Document], dict[str, np.ndarray]]:
    """300 documents of 1–3 passages with random metadata; {id: its passage vectors}."""
    rng, gen = random.Random(0), np.random.default_rng(0)
    docs = [
        Document(f"d{i}", f"word{i % 7} text {i}", "", random_metadata(rng)) for i in range(300)
    ]
    counts = [rng.randint(1, 3) for _ in docs]
    vectors = unit(gen.normal(size=(sum(counts), DIM)))
    passages = [[f"{d.id} p{o}" for o in range(c)] for d, c in zip(docs, counts, strict=True)]
    index = Index.create(tmp_path / "idx", ENC)
    index.add(docs, passages, vectors)
    ends = np.cumsum(counts)
    by_id = {d.id: vectors[e - c : e] for d, c, e in zip(docs, counts, ends, strict=True)}
    return index, docs, by_id


def brute_force(
    queries: np.ndarray, vectors: dict[str, np.ndarray], allowed: set[str], k: int
) -> list[list[tuple[str, float]]]:
    out = []
    for query in queries:
        scored = sorted(((float((vectors[d] @ query).max()), d) for d in allowed), reverse=True)
        out.append([(d, s) for s, d in scored[:k]])
    return out


def test_sql_filter_equals_the_python_rule(corpus: tuple[Index, list[Document], Any]) -> None:
    """Random filters over random metadata (every JSON type, arrays, objects, odd keys): the
    documents SQLite selects are exactly those :meth:`Where.matches` accepts."""
    index, docs, _ = corpus
    rng = random.Random(1)
    ids = [d.id for d in docs]
    nonempty = 0
    for _ in range(150):
        where = Where.parse(random_where(rng))
        assert where is not None
        expected = {d.id for d in docs if where.matches(d.metadata)}
        assert index.existing(ids, where=where) == expected, where
        nonempty += bool(expected)
    assert nonempty > 40  # the filters did select something, so equality means something
    index.close()


@pytest.mark.parametrize(
    ("stored", "wanted", "hit"),
    [
        ("cards", "cards", True),
        ("cards", "Cards", False),  # exact, case-sensitive
        (2024, 2024.0, True),  # numbers by value
        ("2024", 2024, False),  # text is not a number
        (True, 1, False),  # booleans only match booleans
        (1, True, False),
        (None, None, True),
        (["cards", "travel"], "travel", True),  # an array matches by element
        ([["cards"]], "cards", False),  # not nested arrays
        ({"k": "cards"}, "cards", False),  # nor objects
    ],
)
def test_match_rule_by_hand(tmp_path: Path, stored: Any, wanted: Any, hit: bool) -> None:
    where = Where.parse({"f": wanted})
    assert where is not None and where.matches({"f": stored}) is hit
    with Index.create(tmp_path / "idx", ENC) as index:
        index.add([Document("a", "text", "", {"f": stored})], None, unit(np.ones((1, DIM))))
        assert index.existing(["a"], where=where) == ({"a"} if hit else set())


def test_missing_field_never_matches() -> None:
    where = Where.parse({"f": None})
    assert where is not None and not where.matches({"g": None})


@pytest.mark.parametrize("exact", [True, False])  # the exact path, then faiss's ID selector
def test_filtered_flat_search_equals_brute_force(
    corpus: tuple[Index, list[Document], dict[str, np.ndarray]],
    monkeypatch: pytest.MonkeyPatch,
    exact: bool,
) -> None:
    """Exact search within the filter: ids and scores equal numpy's over the matching documents,
    k larger than the matches gives them all, and a filter matching nothing gives nothing."""
    monkeypatch.setattr(index_cache, "EXACT_FILTERED_ROWS", 10**9 if exact else 0)
    monkeypatch.setattr(index_cache, "EXACT_FILTERED_SHARE", 1.0 if exact else 0.0)
    index, docs, vectors = corpus
    queries = unit(np.random.default_rng(2).normal(size=(8, DIM)))
    rng = random.Random(3)
    for _ in range(12):
        raw = random_where(rng)
        where = Where.parse(raw)
        assert where is not None
        allowed = {d.id for d in docs if where.matches(d.metadata)}
        for k in (1, 10, len(allowed) + 5):
            got = index.search_dense(queries, k, where=raw)
            want = brute_force(queries, vectors, allowed, k)
            for row, expected in zip(got, want, strict=True):
                assert [h.doc_id for h in row] == [d for d, _ in expected]
                np.testing.assert_allclose(
                    [h.score for h in row], [s for _, s in expected], rtol=1e-5, atol=1e-6
                )
    assert index.search_dense(queries, 5, where={"product": "no such value"}) == [[]] * 8
    index.close()


def test_filtered_hnsw_search_finds_the_matching_neighbours(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HNSW: a selective filter is searched exactly; a broad one through the graph with the
    filter as a selector (recall ≥ 0.95, scores exact); neither returns a document outside it."""
    gen = np.random.default_rng(4)
    centres = gen.normal(size=(10, DIM))
    vectors = unit(centres[gen.integers(10, size=3000)] + 0.4 * gen.normal(size=(3000, DIM)))
    docs = [Document(f"d{i}", f"t{i}", "", {"shard": i % 10}) for i in range(3000)]
    index = Index.create(tmp_path / "idx", ENC, ann="hnsw", hnsw_m=16, ef_construction=64)
    index.add(docs, None, vectors)
    queries = unit(centres[gen.integers(10, size=30)] + 0.4 * gen.normal(size=(30, DIM)))
    by_id = {d.id: vectors[i : i + 1] for i, d in enumerate(docs)}
    for exact_rows, where, recall_floor in (
        (400, {"shard": 3}, 1.0),
        (400, {"shard": [1, 2, 3, 4, 5]}, 0.95),
    ):
        monkeypatch.setattr(index_cache, "EXACT_FILTERED_ROWS", exact_rows)
        allowed = {d.id for d in docs if d.metadata["shard"] in np.atleast_1d(where["shard"])}
        got = index.search_dense(queries, 10, where=where)
        want = brute_force(queries, by_id, allowed, 10)
        found = sum(
            len({h.doc_id for h in g} & {d for d, _ in w}) for g, w in zip(got, want, strict=True)
        )
        assert found / (10 * len(queries)) >= recall_floor
        for row, query in zip(got, queries, strict=True):
            assert len(row) == 10 and {h.doc_id for h in row} <= allowed
            for hit in row:
                assert hit.score == pytest.approx(float(by_id[hit.doc_id][0] @ query), abs=1e-6)
    index.close()


def test_the_subset_path_follows_its_size_and_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """Exact up to EXACT_FILTERED_ROWS rows or below EXACT_FILTERED_SHARE of the live rows (its
    vectors gathered once up to CACHED_SUBSET_ROWS); the ID selector above both; tombstones never
    in a subset."""
    settings = index_cache.AnnSettings(index_cache.AnnKind.FLAT, 10**6, 16, 32, 32)
    vectors = unit(np.random.default_rng(7).normal(size=(1000, DIM)))
    cache = index_cache.AnnCache.build(np.arange(1000), vectors, settings, 0)
    cache.kill(np.arange(0, 1000, 10))  # 900 live rows
    monkeypatch.setattr(index_cache, "EXACT_FILTERED_ROWS", 100)
    monkeypatch.setattr(index_cache, "CACHED_SUBSET_ROWS", 200)
    small, share, broad = (np.arange(1000) < n for n in (100, 400, 600))
    monkeypatch.setattr(index_cache, "EXACT_FILTERED_SHARE", 0.45)
    got = cache.subset(small)
    assert got.exact and got.vectors is not None and len(got.rows) == 90
    np.testing.assert_array_equal(got.vectors, vectors[got.rows])
    assert not cache.live[np.arange(0, 1000, 10)].any() and not got.mask[::10].any()
    got = cache.subset(share)  # 360 rows: over 100 but under 0.45 of 900
    assert got.exact and got.vectors is None
    got = cache.subset(broad)  # 540 rows
    assert not got.exact and got.vectors is None


def test_filter_follows_deletes_and_upserts(tmp_path: Path) -> None:
    """The filter is read at each commit: a deleted document is gone from filtered results, an
    upserted one is found by its new metadata and not by its old."""
    vectors = unit(np.random.default_rng(5).normal(size=(20, DIM)))
    docs = [Document(f"d{i}", f"t{i}", "", {"lang": "en" if i < 10 else "fr"}) for i in range(20)]
    with Index.create(tmp_path / "idx", ENC) as index:
        index.add(docs, None, vectors)
        query = vectors[:1]
        assert {h.doc_id for h in index.search_dense(query, 50, where={"lang": "en"})[0]} == {
            f"d{i}" for i in range(10)
        }
        index.delete(["d0"])
        index.add([Document("d1", "t1", "", {"lang": "fr"})], None, vectors[1:2], upsert=True)
        en = {h.doc_id for h in index.search_dense(query, 50, where={"lang": "en"})[0]}
        fr = {h.doc_id for h in index.search_dense(query, 50, where={"lang": "fr"})[0]}
        assert en == {f"d{i}" for i in range(2, 10)}
        assert fr == {"d1", *(f"d{i}" for i in range(10, 20))}
        bm25 = index.search_bm25(["t1"], 5, where={"lang": "en"})
        assert bm25 == [[]]  # d1 is French now


def test_filtered_bm25_keeps_the_unfiltered_order_and_scores(tmp_path: Path) -> None:
    """BM25 within a filter: the unfiltered ranking restricted to matching documents, with the
    same scores (the statistics are the whole index's)."""
    rng = random.Random(6)
    words = ["card", "cash", "loan", "rate", "abroad", "fee", "pin", "transfer"]
    docs = [
        Document(f"d{i}", " ".join(rng.choices(words, k=6)), "", {"tier": i % 3}) for i in range(60)
    ]
    with Index.create(tmp_path / "idx", ENC) as index:
        index.add(docs, None, unit(np.ones((60, DIM))))
        everything = index.search_bm25(["card abroad fee"], 60)[0]
        filtered = index.search_bm25(["card abroad fee"], 60, where={"tier": [0, 2]})[0]
        expected = [(h.doc_id, h.score) for h in everything if int(h.doc_id[1:]) % 3 != 1]
        assert [(h.doc_id, h.score) for h in filtered] == expected
        assert [h.rank for h in filtered] == list(range(1, len(filtered) + 1))
        assert len(filtered) > 10


@pytest.mark.parametrize(
    ("where", "error", "message"),
    [
        ("lang=en", TypeError, "mapping of field"),
        ({"lang": []}, ValueError, "empty list"),
        ({"lang": {"a": 1}}, TypeError, "where['lang'] is a dict"),
        ({"lang": [1, [2]]}, TypeError, "where['lang'] is a list"),
        ({"x": float("nan")}, ValueError, "finite"),
        ({"": "en"}, ValueError, "non-empty"),
        ({1: "en"}, ValueError, "field names"),
        ({"id": 10**400}, ValueError, "too large to compare"),
        (
            {"lang": ["en", "\ud800"]},
            ValueError,
            "where['lang'] holds an unpaired surrogate (U+D800)",
        ),
        ({"l\udce9": "x"}, ValueError, "holds the byte 0xe9, which is not UTF-8"),
    ],
)
def test_bad_filters_are_refused(
    tmp_path: Path, where: Any, error: type[Exception], message: str
) -> None:
    with Index.create(tmp_path / "idx", ENC) as index:
        with pytest.raises(error, match=re.escape(message)):
            index.search_dense(unit(np.ones((1, DIM))), 3, where=where)
        with pytest.raises(error, match=re.escape(message)):
            index.search_bm25(["text"], 3, where=where)


def test_integers_past_64_bits_compare_by_value(tmp_path: Path) -> None:
    """SQLite holds 64-bit integers: a longer one (an order number, an ISBN-like id) was an
    OverflowError from inside sqlite3; it now matches the document that stores it."""
    big = 12345678901234567890123
    with Index.create(tmp_path / "idx", ENC) as index:
        docs = [Document("a", "text", "", {"n": big}), Document("b", "text", "", {"n": [1, big]})]
        index.add(docs, None, unit(np.ones((2, DIM))))
        index.add([Document("c", "text", "", {"n": 7})], None, unit(np.ones((1, DIM))))
        assert index.existing(["a", "b", "c"], where={"n": big}) == {"a", "b"}
        hits = index.search_dense(unit(np.ones((1, DIM))), 5, where={"n": [big, 7]})[0]
        assert {h.doc_id for h in hits} == {"a", "b", "c"}
        assert [h.doc_id for h in index.search_bm25(["text"], 5, where={"n": -big})[0]] == []
    assert parse_where_option([f"n={big}"]) == {"n": [str(big), big]}
    assert parse_where_option(["n=" + "9" * 400])["n"][1] == int("9" * 400)


def test_a_list_longer_than_sqlites_host_parameters_filters(tmp_path: Path) -> None:
    """An allow-list of 40,000 ids (SQLite builds commonly take 32,766 host parameters) was
    ``OperationalError: too many SQL variables``; the values now travel as one JSON array."""
    with Index.create(tmp_path / "idx", ENC) as index:
        docs = [Document(f"d{i}", "text", "", {"n": i, "s": str(i)}) for i in range(4)]
        index.add(docs, None, unit(np.ones((4, DIM))))
        assert index._store is not None
        index._store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
        wanted = {"n": list(range(1, 40_000)), "s": [str(i) for i in range(2, 40_000)]}
        assert index.existing([d.id for d in docs], where=wanted) == {"d2", "d3"}
        assert len(index.search_dense(unit(np.ones((1, DIM))), 5, where=wanted)[0]) == 2
        assert len(index.search_bm25(["text"], 5, where=wanted)[0]) == 2


@pytest.mark.parametrize("field", ["tags", "étiquettes"])  # by JSON path, by walking the keys
def test_a_long_list_against_arrays_is_a_lookup_not_a_product(tmp_path: Path, field: str) -> None:
    """Each array element was compared with each wanted value: 1,000 documents of 3 tags against
    10,000 wanted tags took 5 s (200,000 documents, minutes); now each element is looked up."""
    import time

    with Index.create(tmp_path / "idx", ENC) as index:
        docs = [Document(f"d{i}", "text", "", {field: [f"t{i}", i, "x"]}) for i in range(1000)]
        index.add(docs, None, unit(np.ones((1000, DIM))))
        wanted = [f"t{i}" for i in range(0, 20_000, 2)]
        start = time.perf_counter()
        found = index.existing([d.id for d in docs], where={field: wanted})
        assert time.perf_counter() - start < 1.0
        assert found == {f"d{i}" for i in range(0, 1000, 2)}


def test_empty_filter_is_no_filter() -> None:
    assert Where.parse({}) is None and Where.parse(None) is None
    assert Where.parse({"b": 1, "a": [2, 2]}) == Where.parse({"a": 2, "b": [1]})


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["lang=en"], {"lang": ["en"]}),
        (["year=2024"], {"year": ["2024", 2024]}),
        (["ok=true", "ok=null"], {"ok": ["true", True, "null", None]}),
        (["n=1.5", "lang=fr"], {"n": ["1.5", 1.5], "lang": ["fr"]}),
        (['name="2024"'], {"name": ['"2024"', "2024"]}),
        (["expr=a=b"], {"expr": ["a=b"]}),
        (["empty="], {"empty": [""]}),
    ],
)
def test_where_option_reads_field_equals_value(items: list[str], expected: dict) -> None:
    assert parse_where_option(items) == expected


@pytest.mark.parametrize("item", ["lang", "=en"])
def test_where_option_without_a_field_is_refused(item: str) -> None:
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_where_option([item])


def test_kept_filters_stay_within_their_memory_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Filters' rows are kept for the next search only while they fit SUBSET_BUDGET (oldest go
    first); the answers do not depend on what is kept."""
    import sentsim.index as index_module

    vectors = unit(np.random.default_rng(8).normal(size=(200, DIM)))
    docs = [Document(f"d{i}", f"t{i}", "", {"g": i % 4}) for i in range(200)]
    with Index.create(tmp_path / "idx", ENC) as index:
        index.add(docs, None, vectors)
        query = vectors[:3]
        fresh = [index.search_dense(query, 5, where={"g": g}) for g in range(4)]
        one = index._subsets[Where.parse({"g": 3}).key].nbytes  # type: ignore[union-attr]
        monkeypatch.setattr(index_module, "SUBSET_BUDGET", 2 * one)
        index._subsets.clear()
        for g in range(4):
            assert index.search_dense(query, 5, where={"g": g}) == fresh[g]
            assert sum(s.nbytes for s in index._subsets.values()) <= 2 * one
        assert len(index._subsets) == 2
