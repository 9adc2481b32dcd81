"""Metadata filters: the SQL rule against its Python statement; filtered search against numpy."""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Iterator
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
# ... and for ranges: dates, numbers near each other and past 64 bits, numbers in arrays.
STORED_MORE: list[Any] = [
    -3, 2.5, 2023, 2**53 + 1, 10**20, 1e20, "2023-06-01", "2024-01-15T10:00:00", "10", "9", "é",
    ["2023-06-01", 5], [2019, 2025], [2024.5, "cards"], [True, None],
]  # fmt: skip
BOUNDS: list[Any] = [
    -5, 0, 1, 1.5, 2023, 2024, 2024.5, 2**53, 10**20, 1e20,
    "", "1", "2023", "2024-01-01", "9", "a", "cards", "é", "Z",
]  # fmt: skip


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def random_metadata(rng: random.Random) -> dict[str, Any]:
    return {f: rng.choice(STORED) for f in FIELDS if rng.random() < 0.7}


def random_where(rng: random.Random) -> dict[str, Any]:
    where: dict[str, Any] = {}
    for field in rng.sample(FIELDS, rng.randint(1, 2)):
        where[field] = rng.choice(WANTED) if rng.random() < 0.6 else rng.sample(WANTED, 2)
    return where


def random_condition(rng: random.Random) -> Any:
    """A value, a list, or an operator object mixing equality, bounds, negation and $exists."""
    if rng.random() < 0.15:
        return rng.choice(WANTED) if rng.random() < 0.5 else rng.sample(WANTED, 2)
    values = WANTED + BOUNDS
    ops: dict[str, Any] = {}
    if rng.random() < 0.3:
        ops["$eq"] = rng.choice(values)
    elif rng.random() < 0.2:
        ops["$in"] = rng.sample(values, rng.randint(1, 3))
    if rng.random() < 0.6:
        kind = rng.choice([str, int])  # bounds of one kind
        ranged = [b for b in BOUNDS if isinstance(b, str) == (kind is str)]
        for op in rng.sample(["$gt", "$gte", "$lt", "$lte"], rng.randint(1, 2)):
            ops[op] = rng.choice(ranged)
    if rng.random() < 0.3:
        ops["$ne"] = rng.choice(values)
    if rng.random() < 0.3:
        ops["$nin"] = rng.sample(values, rng.randint(1, 3))
    if rng.random() < 0.15:
        ops["$exists"] = rng.random() < 0.5
    return ops or {"$ne": rng.choice(values)}


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


def test_sql_operators_equal_the_python_rule(tmp_path: Path) -> None:
    """Random operator filters ($eq, $in, $ne, $nin, bounds of either kind, $exists, combined)
    over random metadata (every JSON type, arrays, dates, integers past 64 bits, odd keys): the
    documents SQLite selects are exactly those :meth:`Where.matches` accepts."""
    rng = random.Random(11)
    stored = STORED + STORED_MORE
    docs = [
        Document(f"d{i}", "text", "", {f: rng.choice(stored) for f in FIELDS if rng.random() < 0.7})
        for i in range(400)
    ]
    ids = [d.id for d in docs]
    sizes = []
    with Index.create(tmp_path / "idx", ENC) as index:
        index.add(docs, None, unit(np.ones((len(docs), DIM))))
        for _ in range(400):
            raw = {f: random_condition(rng) for f in rng.sample(FIELDS, rng.randint(1, 2))}
            where = Where.parse(raw)
            assert where is not None
            expected = {d.id for d in docs if where.matches(d.metadata)}
            assert index.existing(ids, where=where) == expected, raw
            sizes.append(len(expected))
    # the filters selected something, nothing and everything often enough to mean something
    assert sum(0 < n < len(docs) for n in sizes) > 150 and sizes.count(0) > 20


MISSING = object()
# One document per stored value of the field; the filters below name the ones they match.
BY_HAND: dict[str, Any] = {
    "missing": MISSING, "null": None, "en": "en", "de": "de", "n2023": 2023, "n2024": 2024.0,
    "t2024": "2024", "true": True, "date": "2024-03-01", "ten": "10", "nine": "9",
    "de,en": ["de", "en"], "2019,2025": [2019, 2025], "[]": [], "[[en]]": [["en"]],
    "{en}": {"en": 1},
}  # fmt: skip
EVERY = set(BY_HAND)
HAND_FIELDS = ["f", "é f"]  # by JSON path, by walking the keys


@pytest.fixture(scope="module")
def by_hand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Index, list[Document]]]:
    """An index of one document per value of BY_HAND under each of HAND_FIELDS (ids field:name)."""
    docs = [
        Document(f"{field}:{name}", "text", "", {} if value is MISSING else {field: value, "o": 1})
        for field in HAND_FIELDS
        for name, value in BY_HAND.items()
    ]
    with Index.create(tmp_path_factory.mktemp("by_hand") / "idx", ENC) as index:
        index.add(docs, None, unit(np.ones((len(docs), DIM))))
        yield index, docs


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("en", {"en", "de,en"}),
        ({"$in": ["en", 2024]}, {"en", "de,en", "n2024"}),  # the number, not the text
        # the complement of $eq / $in: a missing field, and arrays without the value, match
        ({"$ne": "de"}, EVERY - {"de", "de,en"}),
        ({"$nin": ["de", "en"]}, EVERY - {"en", "de", "de,en"}),
        ({"$ne": None}, EVERY - {"null"}),
        ({"$ne": 2024}, EVERY - {"n2024"}),
        ({"$ne": "de", "$exists": True}, EVERY - {"de", "de,en", "missing"}),
        ({"$exists": True}, EVERY - {"missing"}),  # whatever the value: null, [] too
        ({"$exists": False}, {"missing"}),
        # numbers by value, never booleans nor digits in text; one element in the whole range
        ({"$gte": 2020, "$lt": 2025}, {"n2023", "n2024"}),
        ({"$gt": 2024}, {"2019,2025"}),
        ({"$lte": 2023}, {"n2023", "2019,2025"}),
        ({"$gt": 2019, "$lt": 2025}, {"n2023", "n2024"}),  # 2019 and 2025 are not one element
        ({"$gte": 0, "$lte": 1}, set()),  # not true
        # text by code points: ISO dates in order, "10" < "9"
        ({"$gte": "2024-01-01", "$lt": "2025"}, {"date"}),
        ({"$gte": "1", "$lt": "9"}, {"ten", "t2024", "date"}),
        ({"$gte": "a"}, {"en", "de", "de,en"}),
        ({"$in": ["en", "de", 2023], "$gt": "df"}, {"en", "de,en"}),
        ({"$gt": 2000, "$ne": 2023}, {"n2024", "2019,2025"}),
        ({"$eq": True}, {"true"}),
    ],
)
@pytest.mark.parametrize("field", HAND_FIELDS)
def test_operators_by_hand(
    by_hand: tuple[Index, list[Document]], field: str, condition: Any, expected: set
) -> None:
    """The documented rule on one document per kind of value, in Python and in SQLite."""
    index, docs = by_hand
    where = Where.parse({field: condition})
    assert where is not None
    ids = [d.id for d in docs if d.id.startswith(f"{field}:")]
    want = {f"{field}:{name}" for name in expected}
    assert {d.id for d in docs if d.id in ids and where.matches(d.metadata)} == want
    assert index.existing(ids, where=where) == want


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"f": 1}, {"f": {"$eq": 1}}),
        ({"f": [2, 1, 2]}, {"f": {"$in": [1, 2]}}),
        ({"f": {"$ne": 1, "$nin": [2]}}, {"f": {"$nin": [2, 1]}}),
        ({"f": {"$lt": 3, "$gt": 1}}, {"f": {"$gt": 1, "$lt": 3}}),
    ],
)
def test_equal_filters_parse_equal(a: dict, b: dict) -> None:
    """The plain forms are $eq and $in; $ne and $nin merge; order does not matter."""
    parsed_a, parsed_b = Where.parse(a), Where.parse(b)
    assert parsed_a == parsed_b and parsed_a is not None and parsed_b is not None
    assert parsed_a.key == parsed_b.key


def test_integers_past_64_bits_compare_as_sqlite_reads_them() -> None:
    """SQLite reads a JSON integer past 64 bits as a real: the Python rule does the same, so
    10**20 + 1 is not above 1e20 (nor is a 400-digit integer a number unlike infinity)."""
    where = Where.parse({"n": {"$gt": 10**20}})
    assert where is not None and not where.matches({"n": 10**20 + 1})
    assert where.matches({"n": int("9" * 400)})


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
        ({"lang": {"a": 1}}, TypeError, "where['lang'] is an object with the key 'a', not an op"),
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
        ({"lang": {"$regex": "e"}}, ValueError, "where['lang'] has the unknown operator '$regex'"),
        ({"lang": {"$NE": "de"}}, ValueError, "the operators are $eq, $in, $ne, $nin, $gt, $gte"),
        ({"y": {"$gte": 1, "max": 2}}, ValueError, "where['y'] mixes operators with the key 'max'"),
        ({"y": {}}, ValueError, "where['y'] is an empty object; give a value, a list of"),
        ({"y": {"$eq": [1, 2]}}, TypeError, "where['y']['$eq'] is a list; it takes one value"),
        ({"y": {"$ne": [1]}}, TypeError, "['$ne'] is a list; it takes one value (use $nin"),
        ({"y": {"$in": "en"}}, TypeError, "where['y']['$in'] is a str; give a list of values"),
        ({"y": {"$nin": {"$eq": 1}}}, TypeError, "where['y']['$nin'] is a dict; give a list"),
        ({"y": {"$in": []}}, ValueError, "where['y']['$in'] is an empty list, which nothing match"),
        ({"y": {"$nin": []}}, ValueError, "where['y']['$nin'] is an empty list, which excludes"),
        ({"y": {"$in": [1, {}]}}, TypeError, "where['y']['$in'] is a dict; a list holds strings"),
        ({"y": {"$eq": 1, "$in": [2]}}, ValueError, "where['y'] has both $eq and $in; give one"),
        ({"y": {"$gte": True}}, TypeError, "where['y']['$gte'] is true; a range bound is a number"),
        ({"y": {"$lt": None}}, TypeError, "where['y']['$lt'] is null; a range bound is a"),
        ({"y": {"$gt": [1]}}, TypeError, "where['y']['$gt'] is a list; a range bound is a number"),
        ({"y": {"$lte": float("nan")}}, ValueError, "where['y']['$lte'] is nan; filter values"),
        ({"y": {"$lt": float("inf")}}, ValueError, "where['y']['$lt'] is inf; filter values must"),
        ({"y": {"$ne": float("-inf")}}, ValueError, "where['y']['$ne'] is -inf; filter values"),
        ({"y": {"$gt": 10**400}}, ValueError, "where['y']['$gt'] is an integer of 401 digits"),
        ({"y": {"$gt": "\ud800"}}, ValueError, "where['y']['$gt'] holds an unpaired surrogate"),
        (
            {"y": {"$gte": 2020, "$lt": "2024"}},
            ValueError,
            "where['y'] has a number bound and a string bound ($gte 2020, $lt \"2024\"); no value",
        ),
        ({"y": {"$exists": 1}}, TypeError, "where['y']['$exists'] is 1; give true or false"),
        ({"$or": [{"a": 1}, {"b": 2}]}, ValueError, "where has '$or', which is not supported"),
        ({"y": 1 + 2j}, TypeError, "where['y'] is a complex; give a string, number, bool or None"),
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


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["year>=2020", "year<2024"], {"year": {"$gte": 2020, "$lt": 2024}}),
        (["d>2024-01-01"], {"d": {"$gt": "2024-01-01"}}),  # not a number: compared as text
        (['n<="10"'], {"n": {"$lte": "10"}}),  # quoted: text that spells a number
        (["p<1e2", "p>-0.5"], {"p": {"$lt": 100.0, "$gt": -0.5}}),
        (["ok>true"], {"ok": {"$gt": "true"}}),  # a bound is never a boolean
        (["lang!=de", "lang!=fr"], {"lang": {"$nin": ["de", "fr"]}}),
        (["year!=2024"], {"year": {"$nin": ["2024", 2024]}}),  # the text and the number
        (["lang=en", "lang!=de"], {"lang": {"$in": ["en"], "$nin": ["de"]}}),
        (["e=a<b"], {"e": ["a<b"]}),  # the field ends at the first sign
        (["e<a=b"], {"e": {"$lt": "a=b"}}),
        (["wow!x=1"], {"wow!x": ["1", 1]}),
    ],
)
def test_where_option_reads_comparisons(items: list[str], expected: dict) -> None:
    assert parse_where_option(items) == expected
    assert Where.parse(parse_where_option(items)) is not None


@pytest.mark.parametrize("item", ["lang", "=en", ">=2020", "!=de"])
def test_where_option_without_a_field_is_refused(item: str) -> None:
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        parse_where_option([item])


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["year>="], "--where 'year>=' has no bound; e.g. --where 'year>=2020'"),
        (["p<NaN"], "--where 'p<NaN': NaN is not a finite number"),
        (["p<1e999"], "--where 'p<1e999': 1e999 is not a finite number"),
        (["y>=1", "y>=2"], "--where 'y>=2': 'y' already has the bound >=1; give each of <, <="),
    ],
)
def test_where_option_bad_comparisons_are_refused(items: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_where_option(items)


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
