"""Corpus reading, passage splitting, rank fusion, and retrieve-and-rerank on a tiny index."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentsim.bi_encoder import BiEncoder
from sentsim.corpus import read_corpus, split_passages
from sentsim.cross_encoder import CrossEncoder
from sentsim.errors import DataError, EncoderMismatchError, ModelLoadError
from sentsim.index import Document, EncoderIdentity, Index, IndexHit
from sentsim.search import (
    ExampleQueries,
    Retriever,
    SearchPipeline,
    SearchResponse,
    SearchResult,
    build_index,
    encoder_identity,
    example_fuse,
    index_vectors,
    minmax_fuse,
    open_index,
    passages_for,
    rerank_fuse,
    rrf_fuse,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VOCAB_WORDS = (  # noqa: SIM905 - a word list reads better as one string
    "bank money account transfer payment cash atm pin balance fee exchange rate currency euro "
    "dollar pound abroad travel country refund lost stolen freeze block new order arrive delivery "
    "help please dog cat man woman girl boy play guitar piano hair soccer beach eat food car road"
).split()


# -- read_corpus -----------------------------------------------------------------------------------


def test_read_corpus_jsonl(tmp_path: Path) -> None:
    """``id``/``title``/``text``; other keys become metadata; an int id becomes a str."""
    path = tmp_path / "docs.jsonl"
    rows = [
        {"id": "a", "title": "Cards", "text": "my card was declined", "lang": "en"},
        {"id": 7, "text": "top up with cash"},
    ]
    path.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n", encoding="utf-8")
    assert read_corpus(path) == [
        Document("a", "my card was declined", "Cards", {"lang": "en"}),
        Document("7", "top up with cash", "", {}),
    ]


def test_read_corpus_beir_id(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text(json.dumps({"_id": "d1", "title": None, "text": "café ☕"}) + "\n")
    assert read_corpus(path) == [Document("d1", "café ☕", "", {})]


@pytest.mark.parametrize(("name", "sep"), [("docs.csv", ","), ("docs.tsv", "\t")])
def test_read_corpus_csv_and_tsv(tmp_path: Path, name: str, sep: str) -> None:
    path = tmp_path / name
    lines = [sep.join(["id", "title", "text"]), sep.join(["a", "Cards", "card declined"])]
    lines.append(sep.join(["b", "", "top up"]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_corpus(path) == [
        Document("a", "card declined", "Cards", {}),
        Document("b", "top up", "", {}),
    ]


def test_read_corpus_folder(tmp_path: Path) -> None:
    """A folder of .md / .txt: id = relative path; title = the ``# `` heading or the file name."""
    root = tmp_path / "kb"
    (root / "sub").mkdir(parents=True)
    (root / "cards.md").write_text("# Declined cards\n\nWhy a card is declined.\n")
    (root / "sub" / "top-up_cash.txt").write_text("Top up with cash at an ATM.\n")
    (root / "only-heading.md").write_text("# Nothing below\n")  # searched by its title
    (root / "notes.json").write_text("{}")  # not a text file: ignored
    (root / "site.md").write_text(  # a static-site page: front matter is not text
        "---\ntitle: 'Card refused abroad'\ntags: [cards]\n---\n# Heading\nTravel notice.\n"
    )
    (root / "dashes.md").write_text("---\nno closing line, so not front matter\n")
    assert read_corpus(root) == [
        Document("cards.md", "Why a card is declined.", "Declined cards"),
        Document("dashes.md", "---\nno closing line, so not front matter\n", "dashes"),
        Document("only-heading.md", "Nothing below", ""),
        Document("site.md", "Travel notice.", "Card refused abroad"),
        Document("sub/top-up_cash.txt", "Top up with cash at an ATM.\n", "top up cash"),
    ]
    (root / "sub" / "blank.md").write_text("  \n")
    with pytest.raises(DataError, match=r"blank\.md: the file is empty; give it text or move"):
        read_corpus(root)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.jsonl", '{"id": "a", "text": "x"}\n{"text": "y"}\n', r"d\.jsonl, line 2: missing 'id'"),
        ("d.jsonl", '{"id": "a", "text": "x"}\n\n{"id": "b"}\n', r"line 3: document 'b' has no"),
        ("d.jsonl", '{"id": " ", "text": "x"}\n', r"line 1: missing 'id'"),
        ("d.jsonl", '{"id": 5.0, "text": "x"}\n', r"line 1: 'id' is 5\.0, a float; an id must"),
        ("d.jsonl", '{"id": true, "text": "x"}\n', r"line 1: 'id' is true, a bool; an id must"),
        (
            "d.jsonl",
            '{"id": "a", "text": "  "}\n',
            r"line 1: document 'a' has no 'text' or 'title'",
        ),
        ("d.jsonl", '{"id": "a", "text": "x"}\n{oops\n', r"d\.jsonl, line 2: not valid JSON"),
        ("d.jsonl", '["a", "x"]\n', r"line 1: expected a JSON object"),
        ("d.csv", "id,text\na,x\n,y\n", r"d\.csv, line 3: missing 'id'"),
        ("d.csv", "id,body\na,x\n", r"d\.csv, line 1: header needs 'id' and 'text'"),
        ("d.csv", "id,text\na,x\nb,y, z\n", r"d\.csv, line 3: 3 fields but the header has 2"),
        (
            "d.tsv",
            "id\ttext\na\tx\ty\n",
            r"line 2: 3 fields but the header has 2; a text may not hold a tab",
        ),
        ("d.xml", "<doc/>", r"unknown corpus format '\.xml'; expected \.jsonl"),
        # a lone surrogate escape: the tokenizer raised a TypeError from inside while splitting
        ("d.jsonl", '{"id": "a", "text": "x \\ud800"}\n', r"line 1: 'text' holds an unpaired"),
        ("d.jsonl", '{"id": "a\\udfff", "text": "x"}\n', r"line 1: 'id' holds an unpaired"),
        # a title's list or object was indexed as its Python repr "['x']"
        ("d.jsonl", '{"id": "a", "title": ["x"], "text": "y"}\n', r"'title' of type list"),
        # the index named the document by position in the corpus, not by file and line
        ("d.jsonl", '{"id": "a", "text": "x", "n": NaN}\n', r"line 1: document 'a' has a 'n'"),
        ("d.jsonl", '{"id": "a", "text": "x", "m": {"k": "\\ud800"}}\n', r"1: 'm'\['k'\] holds"),
        # a NUL escape: BERT's tokenizer dropped it, SQLite compared an id only up to it
        ("d.jsonl", '{"id": "a\\u0000", "text": "x"}\n', r"line 1: 'id' holds a NUL character"),
        ("d.tsv", "id\ttext\na\tx\x00y\n", r"d\.tsv, line 2: holds a NUL character"),
        # csv kept the last 'text' column only: the first was lost silently
        ("d.csv", "id,text,text\na,x,y\n", r"d\.csv, line 1: the header names column 'text' tw"),
        ("d.jsonl", "\n\n", r"d\.jsonl: the corpus has no documents"),
    ],
)
def test_read_corpus_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_corpus(path)


def test_a_title_without_text_is_the_documents_text(tmp_path: Path) -> None:
    """As in TREC-COVID, whose papers without an abstract still have a title worth finding."""
    path = tmp_path / "d.jsonl"
    path.write_text('{"_id": 7, "title": "Rates", "text": ""}\n{"id": "b", "title": "T"}\n')
    assert read_corpus(path) == [Document("7", "Rates", ""), Document("b", "T", "")]


def test_read_corpus_folder_refuses_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """A Latin-1 name (b"caf\\xe9.txt") made an id and title with undecodable bytes, and
    ``index build`` a TypeError traceback from the tokenizer after creating the index."""
    root = tmp_path / "kb"
    root.mkdir()
    (root / "ok.txt").write_text("card declined\n")
    try:
        (root / os.fsdecode(b"caf\xe9.txt")).write_text("top up\n")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes UTF-8 names only")
    with pytest.raises(DataError, match=r"caf.*\.txt: the file name is not UTF-8 .*rename it"):
        read_corpus(root)


def test_read_corpus_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="corpus not found"):
        read_corpus(tmp_path / "nowhere.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="the corpus has no documents"):
        read_corpus(tmp_path / "empty")


# -- split_passages --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert_dir, local_files_only=True)


def _n_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _assert_covers(text: str, passages: list[str]) -> None:
    """Each passage is a verbatim slice, in order, and together they cover every non-space char."""
    covered = np.zeros(len(text), dtype=bool)
    start = 0
    for passage in passages:
        at = text.find(passage, start)
        assert at >= 0, f"passage is not a slice of the text after offset {start}: {passage!r}"
        covered[at : at + len(passage)] = True
        start = at + 1
    gaps = [i for i, c in enumerate(text) if not covered[i] and not c.isspace()]
    assert gaps == [], f"characters in no passage: {[text[i] for i in gaps[:10]]}"


def test_split_passages_short_text_is_one_passage(tokenizer: Any) -> None:
    text = "  my card was declined  "
    assert split_passages(text, tokenizer, max_tokens=8) == [text]
    exactly = " ".join(VOCAB_WORDS[:8])
    assert split_passages(exactly, tokenizer, max_tokens=8) == [exactly]


@pytest.mark.parametrize(
    ("max_tokens", "stride", "step"), [(8, 3, 6), (20, 5, 15), (32, 32, 24), (50, 0, 50)]
)
def test_split_passages_cover_every_token(
    tokenizer: Any, max_tokens: int, stride: int, step: int
) -> None:
    """Windows of ≤ ``max_tokens`` pieces cover it all, overlapping by ``stride`` but never by
    more than a quarter of the window (8 → 2, 32 → 8)."""
    rng = np.random.default_rng(max_tokens)
    words = [str(w) for w in rng.choice(VOCAB_WORDS, size=150)]  # one word piece each
    text = " ".join(words)
    passages = split_passages(text, tokenizer, max_tokens=max_tokens, stride=stride)
    assert len(passages) > 1
    _assert_covers(text, passages)
    assert all(_n_tokens(tokenizer, p) <= max_tokens for p in passages)
    assert passages[0] == " ".join(words[:max_tokens])
    assert passages[1] == " ".join(words[step : step + max_tokens])
    assert text.endswith(passages[-1])


def test_split_passages_covers_unicode_and_word_pieces(tokenizer: Any) -> None:
    """Words split into pieces and accented text are still covered end to end."""
    text = " ".join(["zebra café naïve quokka transferring ☕ money"] * 12)
    passages = split_passages(text, tokenizer, max_tokens=16, stride=4)
    assert len(passages) > 1
    _assert_covers(text, passages)


def test_split_passages_measures_a_long_text_without_a_length_warning(
    tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Splitting a text longer than the model's limit is the point: no 'indexing errors' noise.

    transformers logs that warning once per tokenizer and records it in deprecation_warnings.
    """
    monkeypatch.setattr(tokenizer, "model_max_length", 16)
    monkeypatch.setattr(tokenizer, "deprecation_warnings", {})
    text = " ".join(VOCAB_WORDS[:12] * 4)
    assert len(split_passages(text, tokenizer, max_tokens=8)) > 1
    assert not tokenizer.deprecation_warnings


def test_split_passages_rejects_tiny_windows(tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="max_tokens=7 is too small"):
        split_passages("a b c", tokenizer, max_tokens=7)


# -- fusion ----------------------------------------------------------------------------------------


def hits(*pairs: tuple[str, float]) -> list[IndexHit]:
    return [IndexHit(doc, score, rank) for rank, (doc, score) in enumerate(pairs, start=1)]


def test_rrf_fuse_by_hand() -> None:
    """``Σ 1/(60 + rank)``; a document missing from a list gets nothing from it."""
    dense = hits(("a", 0.9), ("b", 0.8), ("c", 0.1))
    lexical = hits(("b", 12.0), ("d", 3.0))
    fused = dict(rrf_fuse([dense, lexical]))
    assert fused == pytest.approx(
        {"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 63, "d": 1 / 62}, rel=1e-12
    )
    assert [d for d, _ in rrf_fuse([dense, lexical])] == ["b", "a", "d", "c"]
    assert dict(rrf_fuse([dense], k=0)) == pytest.approx({"a": 1.0, "b": 1 / 2, "c": 1 / 3})


def test_rrf_fuse_ties_keep_first_appearance_and_scores_ignored() -> None:
    """Equal fused scores keep the order of first appearance; raw scores play no part."""
    fused = rrf_fuse([hits(("x", 0.1)), hits(("y", 99.0))])
    assert [d for d, _ in fused] == ["x", "y"]
    assert rrf_fuse([]) == [] and rrf_fuse([[], []]) == []


def test_minmax_fuse_by_hand() -> None:
    """Each list min–max scaled to 0–1, then ``w · dense + (1 − w) · bm25``, missing counts 0."""
    dense = hits(("a", 0.9), ("c", 0.7), ("b", 0.5))  # a 1, c 0.5, b 0
    lexical = hits(("b", 10.0), ("d", 4.0))  # b 1, d 0
    fused = minmax_fuse(dense, lexical, 0.5)
    assert dict(fused) == pytest.approx({"a": 0.5, "b": 0.5, "c": 0.25, "d": 0.0})
    assert [d for d, _ in fused] == ["a", "b", "c", "d"]  # a = b: ties by id
    assert dict(minmax_fuse(dense, lexical, 0.8)) == pytest.approx(
        {"a": 0.8, "b": 0.2, "c": 0.4, "d": 0.0}
    )


def test_minmax_fuse_single_hit_and_empty_list() -> None:
    """One hit (no spread) scales to 1; an empty list contributes nothing."""
    assert minmax_fuse(hits(("a", 0.3)), [], 0.25) == [("a", 0.25)]
    assert minmax_fuse([], hits(("b", 2.0), ("c", 1.0)), 0.25) == [("b", 0.75), ("c", 0.0)]


# -- pipeline --------------------------------------------------------------------------------------

SHORT_DOCS = [
    Document("declined", "why was my card declined abroad", "Declined card"),
    Document("topup", "how can i top up my account with cash", "Top up"),
    Document("rate", "the exchange rate for euro and dollar", "Exchange rate"),
    Document("lost", "my card was lost or stolen please freeze it", "Lost card"),
    Document("guitar", "a man plays guitar on the beach", "Guitar"),
    Document("food", "a woman is eating food in the house"),
]
# ~130 word pieces: over the tiny model's 62-token passages, so it is split.
LONG_TEXT = " ".join(VOCAB_WORDS * 3) + " zebra quokka"
LONG = Document("long", LONG_TEXT, "Long read")


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir: Path) -> BiEncoder:
    return BiEncoder.load(tiny_bert_dir, normalize=True, device="cpu")


@pytest.fixture(scope="module")
def reranker(tiny_ce_dir: Path) -> CrossEncoder:
    return CrossEncoder.load(tiny_ce_dir, device="cpu")


@pytest.fixture(scope="module")
def index(encoder: BiEncoder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    built = build_index([*SHORT_DOCS, LONG], tmp_path_factory.mktemp("search") / "idx", encoder)
    yield built
    built.close()


def test_build_index_splits_the_long_document(index: Index, encoder: BiEncoder) -> None:
    """Short documents are one passage; the long one several, each within the model's limit."""
    info = index.info()
    passages = passages_for(LONG, encoder.transformer.tokenizer, encoder.max_seq_length - 2)
    assert len(passages) > 1
    assert (info.documents, info.passages) == (7, 6 + len(passages))
    assert index.encoder == encoder_identity(encoder)
    assert all(p.startswith("Long read\n") for p in passages)
    tokenizer = encoder.transformer.tokenizer
    assert all(_n_tokens(tokenizer, p) <= encoder.max_seq_length - 2 for p in passages)


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_search_returns_typed_ranked_results(
    index: Index, encoder: BiEncoder, retriever: str
) -> None:
    pipeline = SearchPipeline(index, encoder, retriever=retriever, k_retrieve=5)
    response = pipeline.search("my card was declined", top_k=3)
    assert isinstance(response, SearchResponse)
    assert response.query == "my card was declined"
    assert set(response.timings) == {"first_stage", "fetch"}  # no judge, no rerank time
    results = response.results
    assert 1 <= len(results) <= 3
    assert all(isinstance(r, SearchResult) for r in results)
    assert [r.rank for r in results] == list(range(1, len(results) + 1))
    assert [r.first_stage_rank for r in results] == [r.rank for r in results]  # no re-ranking
    scores = [r.first_stage_score for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(r.rerank_score is None for r in results)
    by_id = {d.id: d for d in [*SHORT_DOCS, LONG]}
    for r in results:
        assert r.title == by_id[r.doc_id].title
        assert r.snippet and by_id[r.doc_id].text.startswith(r.snippet.rstrip("…"))


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_top_k_past_k_retrieve_still_gives_top_k(
    index: Index, encoder: BiEncoder, reranker: CrossEncoder, retriever: str
) -> None:
    """``top_k=6`` with ``k_retrieve=2`` gave 2 results, silently (the server's ``top_k`` stopped
    at 100 so); the first stage now goes as deep as ``top_k``, re-ranked or not."""
    query = "card declined top up cash exchange rate euro dog guitar"
    for judge in (None, reranker):
        pipeline = SearchPipeline(index, encoder, judge, retriever=retriever, k_retrieve=2)
        results = pipeline.search(query, top_k=6).results
        assert len(results) == 6 and len({r.doc_id for r in results}) == 6
        assert [r.rank for r in results] == list(range(1, 7))
    assert len(pipeline.first_stage([query])[0]) == 2  # the first stage alone keeps k_retrieve


def test_bm25_finds_the_document_whose_text_is_the_query(index: Index, encoder: BiEncoder) -> None:
    pipeline = SearchPipeline(index, encoder, retriever="bm25")
    for doc in SHORT_DOCS:
        assert pipeline.search(doc.text).results[0].doc_id == doc.id


def test_long_document_is_found_by_words_from_its_end(index: Index, encoder: BiEncoder) -> None:
    """Words past the first window still reach the index: BM25 and the dense passage vectors."""
    bm25 = SearchPipeline(index, encoder, retriever="bm25").search("quokka")
    assert [r.doc_id for r in bm25.results] == ["long"]
    last = passages_for(LONG, encoder.transformer.tokenizer, encoder.max_seq_length - 2)[-1]
    assert "quokka" in last and "quokka" not in LONG_TEXT[:200]
    hit = index.search_dense(encoder.encode([last]), 1)[0][0]
    assert hit.doc_id == "long"
    assert hit.score == pytest.approx(1.0, abs=1e-5)
    assert hit.passage is not None and hit.passage > 0
    dense = SearchPipeline(index, encoder, retriever="dense").search(last)
    assert dense.results[0].doc_id == "long"


@pytest.mark.parametrize("hybrid", ["rrf", "minmax"])
def test_hybrid_first_stage_fuses_dense_and_bm25(
    index: Index, encoder: BiEncoder, hybrid: str
) -> None:
    """The hybrid candidates are the fusion of the index's own dense and BM25 lists."""
    query, k = "card declined abroad", 4
    pipeline = SearchPipeline(index, encoder, hybrid=hybrid, hybrid_weight=0.3, k_retrieve=k)
    dense = index.search_dense(encoder.encode([query]), k)[0]
    lexical = index.search_bm25([query], k)[0]
    expected = rrf_fuse([dense, lexical]) if hybrid == "rrf" else minmax_fuse(dense, lexical, 0.3)
    assert pipeline.first_stage([query])[0] == expected[:k]


def test_reranking_sets_rerank_scores_and_orders_by_them(
    index: Index, encoder: BiEncoder, reranker: CrossEncoder
) -> None:
    pipeline = SearchPipeline(index, encoder, reranker, retriever="hybrid", k_retrieve=7)
    response = pipeline.search("card declined", top_k=7)
    ce = [r.rerank_score for r in response.results]
    assert all(s is not None and 0 < s < 1 for s in ce)
    assert ce == sorted(ce, reverse=True)  # type: ignore[type-var]
    assert [r.rank for r in response.results] == list(range(1, len(ce) + 1))
    first = pipeline.first_stage(["card declined"])[0]
    for r in response.results:  # first-stage facts survive re-ordering
        assert first[r.first_stage_rank - 1][0] == r.doc_id
        assert first[r.first_stage_rank - 1][1] == pytest.approx(r.first_stage_score)
    assert set(response.timings) == {"first_stage", "rerank", "fetch"}
    plain = pipeline.search("card declined", top_k=7, rerank=False)
    assert all(r.rerank_score is None for r in plain.results)
    assert "rerank" not in plain.timings
    assert [r.doc_id for r in plain.results] == [d for d, _ in first]


def test_a_fused_ranking_is_ordered_by_the_score_it_reports(
    index: Index, encoder: BiEncoder, reranker: CrossEncoder
) -> None:
    """Below weight 1 the order is the fusion's; each result says the score it was placed by."""
    query, k = "card declined", 7
    pipeline = SearchPipeline(index, encoder, reranker, k_retrieve=k, rerank_weight=0.5)
    response = pipeline.search(query, top_k=k)
    first = pipeline.first_stage([query])[0]
    judge = pipeline.rerank_scores(query, [d for d, _ in first])
    fused = rerank_fuse([s for _, s in first], judge, 0.5)
    for r in response.results:
        assert r.score == pytest.approx(fused[r.first_stage_rank - 1])
        assert r.rerank_score == pytest.approx(judge[r.first_stage_rank - 1], abs=1e-6)
    scores = [r.score for r in response.results]
    assert scores == sorted(scores, reverse=True)
    plain = pipeline.search(query, top_k=k, rerank=False)
    assert [r.score for r in plain.results] == [pytest.approx(s) for _, s in first]


def test_rerank_score_of_a_long_document_is_its_best_passage(
    index: Index, encoder: BiEncoder, reranker: CrossEncoder
) -> None:
    """Reference: the cross-encoder's max over the document's passages (title prepended)."""
    query = "zebra quokka"
    pipeline = SearchPipeline(index, encoder, reranker)
    budget = reranker.max_length - _n_tokens(reranker.tokenizer, query) - 3
    passages = passages_for(LONG, reranker.tokenizer, budget)
    assert len(passages) > 1
    expected = reranker.predict([(query, p) for p in passages]).max()
    got = pipeline.rerank_scores(query, ["long", "rate"])
    assert got[0] == pytest.approx(float(expected), abs=1e-6)
    assert got[1] == pytest.approx(
        float(reranker.predict([(query, "Exchange rate\n" + SHORT_DOCS[2].text)])[0]), abs=1e-6
    )
    assert pipeline.rerank_scores(query, []).shape == (0,)


def test_search_many_batches_the_first_stage(index: Index, encoder: BiEncoder) -> None:
    pipeline = SearchPipeline(index, encoder, retriever="hybrid")
    queries = ["card declined", "exchange rate", "guitar"]
    many = pipeline.search_many(queries, top_k=2)
    assert [r.query for r in many] == queries
    for query, response in zip(queries, many, strict=True):
        assert response.results == pipeline.search(query, top_k=2).results


def test_search_many_scores_all_candidates_in_one_judge_call(
    index: Index, encoder: BiEncoder, reranker: CrossEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each query's candidates went to the judge in a call of their own; the pairs of all queries
    are now one call, and each query still gets what it gets alone: the same documents, order and
    best passages (the long document's too), and its judge scores to float32 precision."""
    pipeline = SearchPipeline(index, encoder, reranker, retriever="hybrid", k_retrieve=7)
    queries = ["card declined", "zebra quokka", "guitar on the beach"]
    alone = [pipeline.search(query, top_k=5) for query in queries]
    calls: list[int] = []
    predict = reranker.predict

    def counted(pairs: Any, **kwargs: Any) -> Any:
        calls.append(len(pairs))
        return predict(pairs, **kwargs)

    monkeypatch.setattr(reranker, "predict", counted)
    many = pipeline.search_many(queries, top_k=5)
    assert len(calls) == 1 and calls[0] >= 3 * 7  # every candidate of every query, the long
    for got, want in zip(many, alone, strict=True):  # document's passages each a pair
        assert [r.doc_id for r in got.results] == [r.doc_id for r in want.results]
        assert [r.passage for r in got.results] == [r.passage for r in want.results]
        for g, w in zip(got.results, want.results, strict=True):
            assert g.rerank_score == pytest.approx(w.rerank_score, abs=1e-5)
        assert set(got.timings) == {"first_stage", "rerank", "fetch"}
    assert any(r.doc_id == "long" and r.passage for r in many[1].results)


@pytest.mark.parametrize("query", ["", "   ", "\n\t"])
def test_empty_query_is_refused(index: Index, encoder: BiEncoder, query: str) -> None:
    for retriever in Retriever:
        with pytest.raises(ValueError, match="query 0 is empty"):
            SearchPipeline(index, encoder, retriever=retriever).search(query)


def test_query_with_an_undecodable_byte_is_refused(index: Index, encoder: BiEncoder) -> None:
    """``sentsim search $'caf\\xe9'`` in a UTF-8 locale hands Python "caf\\udce9": it was a
    TypeError traceback from the tokenizer (dense) or a bare codec message (BM25)."""
    for retriever in Retriever:
        with pytest.raises(ValueError, match="query 0 holds the byte 0xe9, which is not UTF-8"):
            SearchPipeline(index, encoder, retriever=retriever).search("caf\udce9")


def test_top_k_zero_gives_nothing_and_negative_is_refused(index: Index, encoder: BiEncoder) -> None:
    pipeline = SearchPipeline(index, encoder)
    assert pipeline.search("card declined", top_k=0).results == []
    with pytest.raises(ValueError, match="top_k must be ≥ 0, got -1"):
        pipeline.search("card declined", top_k=-1)


def test_non_string_query_is_refused(index: Index, encoder: BiEncoder) -> None:
    with pytest.raises(TypeError, match="query 1 is int"):
        SearchPipeline(index, encoder).search_many(["ok", 3])  # type: ignore[list-item]


def test_pipeline_settings_are_checked(index: Index, encoder: BiEncoder) -> None:
    with pytest.raises(ValueError, match="unknown hybrid fusion 'sum'; expected rrf or minmax"):
        SearchPipeline(index, encoder, hybrid="sum")
    with pytest.raises(ValueError, match="k_retrieve must be ≥ 1, got 0"):
        SearchPipeline(index, encoder, k_retrieve=0)
    with pytest.raises(
        ValueError, match="unknown retriever 'sparse'; expected one of: dense, bm25"
    ):
        SearchPipeline(index, encoder, retriever="sparse")
    assert Retriever.parse("BM25") is Retriever.BM25


def test_encoder_identity_needs_a_saved_encoder(encoder: BiEncoder) -> None:
    unsaved = BiEncoder(encoder.transformer, normalize=True)
    with pytest.raises(ValueError, match="not loaded from disk"):
        encoder_identity(unsaved)


def test_deleted_document_is_never_returned(encoder: BiEncoder, tmp_path: Path) -> None:
    """After ``delete``, no retriever returns the document, even for its exact text."""
    with build_index([*SHORT_DOCS, LONG], tmp_path / "idx", encoder) as idx:
        assert idx.delete(["rate", "long"]) == 2
        for retriever in Retriever:
            pipeline = SearchPipeline(idx, encoder, retriever=retriever, k_retrieve=10)
            for query in (SHORT_DOCS[2].text, "quokka exchange rate euro"):
                found = [r.doc_id for r in pipeline.search(query, top_k=10).results]
                assert "rate" not in found and "long" not in found
                assert found or retriever is Retriever.BM25


def test_build_index_upsert_replaces_a_document(encoder: BiEncoder, tmp_path: Path) -> None:
    """Re-running ``build_index`` with ``upsert=True`` replaces a document's text and vectors."""
    path = tmp_path / "idx"
    build_index(SHORT_DOCS, path, encoder).close()
    changed = Document("rate", "the dog plays soccer", "Dogs")
    with build_index([changed], path, encoder, upsert=True) as idx:
        assert len(idx) == len(SHORT_DOCS)
        assert idx.get(["rate"])[0].text == "the dog plays soccer"
        bm25 = SearchPipeline(idx, encoder, retriever="bm25").search("soccer")
        assert [r.doc_id for r in bm25.results] == ["rate"]
        assert SearchPipeline(idx, encoder, retriever="bm25").search("euro").results == []


def test_build_index_refuses_a_clash_before_adding_anything(
    encoder: BiEncoder, tmp_path: Path
) -> None:
    """Batches are separate commits, so a clash in the last batch must stop the first one too."""
    path = tmp_path / "idx"
    build_index(SHORT_DOCS[:1], path, encoder).close()
    fresh = [Document(f"new{i}", f"fresh text number {i}", "") for i in range(5)]
    clash = Document(SHORT_DOCS[0].id, "another text under a taken id", "")
    with pytest.raises(DataError, match=r"1 document id\(s\) already in the index .*nothing was"):
        build_index([*fresh, clash], path, encoder, batch_docs=2)
    with Index.open(path, encoder_identity(encoder), readonly=True) as idx:
        assert len(idx) == 1


# -- example queries -------------------------------------------------------------------------------


def test_example_fuse_by_hand() -> None:
    """``w · dense + (1 − w) · example``; a missing document takes that list's lowest score."""
    dense = hits(("a", 0.9), ("b", 0.5))
    fused = example_fuse(dense, {"b": 0.95, "c": 0.8}, 0.7, 0.25)
    assert dict(fused) == pytest.approx(
        {"a": 0.25 * 0.9 + 0.75 * 0.7, "b": 0.25 * 0.5 + 0.75 * 0.95, "c": 0.25 * 0.5 + 0.75 * 0.8}
    )
    assert [d for d, _ in fused] == ["b", "a", "c"]
    assert [d for d, _ in example_fuse(dense, {"b": 0.95}, 0.7, 1.0)] == ["a", "b"]
    assert example_fuse([], {}, 0.0, 0.5) == []


EXAMPLE = "zebra quokka guitar piano"  # words of no short document but "rate"'s example


def _examples(path: Path, encoder: BiEncoder, *rows: tuple[str, str, str | None]) -> Index:
    docs = [
        Document(i, text, "", {"answer": answer} if answer is not None else {})
        for i, text, answer in rows
    ]
    return build_index(docs, path, encoder)


def test_example_queries_bring_the_document_they_name(
    index: Index, encoder: BiEncoder, tmp_path: Path
) -> None:
    """A query matching an example ranks the example's document first, whatever its own text."""
    plain = SearchPipeline(index, encoder, retriever="dense", k_retrieve=10)
    with _examples(
        tmp_path / "ex", encoder, ("e1", EXAMPLE, "rate"), ("e2", "dog cat", "guitar")
    ) as ex:
        query = encoder.encode([EXAMPLE])
        match = ExampleQueries(ex, k=2).scores(query)[0]
        assert match.scores["rate"] > 0.99 and match.floor == pytest.approx(match.scores["guitar"])
        assert match.texts == {"rate": EXAMPLE, "guitar": "dog cat"}
        assert ExampleQueries(ex, k=5).scores(query)[0].floor <= -1.0  # all seen: none for others
        for weight, first in ((0.0, "rate"), (0.2, "rate")):
            pipeline = SearchPipeline(
                index,
                encoder,
                retriever="dense",
                examples=ExampleQueries(ex),
                example_weight=weight,
            )
            top = pipeline.search(EXAMPLE).results[0]
            assert (top.doc_id, top.example) == (first, EXAMPLE)  # says which example matched
        only_dense = SearchPipeline(
            index, encoder, retriever="dense", examples=ExampleQueries(ex), example_weight=1.0
        )
        assert all(r.example is None for r in plain.search(EXAMPLE).results)
        expected = [r.doc_id for r in plain.search(EXAMPLE).results]
        assert [r.doc_id for r in only_dense.search(EXAMPLE).results] == expected
        assert expected[0] != "rate"  # so the first loop's check could fail


def test_judge_weight_follows_the_first_stage(
    index: Index, encoder: BiEncoder, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """A judge storing a weight for first stages with example queries gets it there, and its
    plain weight elsewhere; a judge without one uses its plain weight; an explicit one wins."""
    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    config = judge_dir / "sentsim_config.json"
    stored = json.loads(config.read_text()) if config.exists() else {}
    config.write_text(json.dumps({**stored, "rerank_weight": 0.4}))
    plain_judge = CrossEncoder.load(judge_dir, device="cpu")
    config.write_text(
        json.dumps({**stored, "rerank_weight": 0.4, "rerank_weight_with_examples": 0.1})
    )
    judge = CrossEncoder.load(judge_dir, device="cpu")
    assert (judge.weight_after(examples=True), judge.weight_after(examples=False)) == (0.1, 0.4)
    assert plain_judge.weight_after(examples=True) == 0.4
    with _examples(tmp_path / "ex", encoder, ("e1", EXAMPLE, "rate")) as ex:

        def weight(reranker: CrossEncoder, examples: bool, **kw: float) -> float:
            pipeline = SearchPipeline(
                index,
                encoder,
                reranker,
                retriever="dense",
                examples=ExampleQueries(ex) if examples else None,
                **kw,
            )
            return pipeline.rerank_weight

        assert weight(judge, True) == 0.1 and weight(judge, False) == 0.4
        assert weight(plain_judge, True) == 0.4
        assert weight(judge, True, rerank_weight=0.7) == 0.7


def test_a_judge_with_weight_0_after_this_encoder_is_not_run(
    index: Index, encoder: BiEncoder, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """A judge can store a weight per first-stage bi-encoder (by its weights' hash); 0 means dev
    found it only hurts there, so the pipeline does not run it, and says why; an explicit weight
    still runs it, and another encoder gets the plain weight."""
    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    config = judge_dir / "sentsim_config.json"
    stored = json.loads(config.read_text()) if config.exists() else {}
    ours = index.encoder.weights_hash
    by_encoder = {ours: {"encoder": "tiny", "weight": 0.0}, "0123abcd": {"weight": 0.3}}
    config.write_text(json.dumps({**stored, "rerank_weight": 0.4,
                                  "rerank_weight_by_encoder": by_encoder}))  # fmt: skip
    judge = CrossEncoder.load(judge_dir, device="cpu")
    assert judge.weight_after(examples=False, encoder_hash=ours) == 0.0
    assert judge.weight_after(examples=False, encoder_hash="0123abcd") == 0.3
    assert judge.weight_after(examples=False, encoder_hash="ffff") == 0.4
    idle = SearchPipeline(index, encoder, judge, retriever="dense")
    assert idle.rerank_weight == 0.0
    assert idle.judge_idle is not None and "stored weight after" in idle.judge_idle
    response = idle.search("card declined", top_k=3)
    assert all(r.rerank_score is None for r in response.results)
    assert "rerank" not in response.timings
    plain = SearchPipeline(index, encoder, retriever="dense").search("card declined", top_k=3)
    assert [r.doc_id for r in response.results] == [r.doc_id for r in plain.results]
    forced = SearchPipeline(index, encoder, judge, retriever="dense", rerank_weight=0.0)
    assert forced.judge_idle is None
    assert all(r.rerank_score is not None for r in forced.search("card declined").results)
    config.write_text(json.dumps({**stored, "rerank_weight_by_encoder": {ours: 0.5}}))
    with pytest.raises(ModelLoadError, match="'rerank_weight_by_encoder' must map"):
        CrossEncoder.load(judge_dir, device="cpu")


def test_a_weight_stored_after_an_encoder_is_for_its_dense_first_stage_only(
    index: Index, encoder: BiEncoder, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """The weight stored after a bi-encoder was chosen on that encoder's dense first stage; a BM25
    or hybrid search of its index (bi-helpcenter's, where BM25 put "Unblocking your PIN" first for
    a card refused abroad) skipped the judge too, with a note blaming that encoder's dev run. They
    take the plain weight."""
    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    config = judge_dir / "sentsim_config.json"
    stored = json.loads(config.read_text()) if config.exists() else {}
    by_encoder = {index.encoder.weights_hash: {"encoder": "tiny", "weight": 0.0}}
    config.write_text(json.dumps({**stored, "rerank_weight": 0.4,
                                  "rerank_weight_by_encoder": by_encoder}))  # fmt: skip
    judge = CrossEncoder.load(judge_dir, device="cpu")
    assert SearchPipeline(index, encoder, judge, retriever="dense").judge_idle is not None
    for retriever in ("bm25", "hybrid"):
        pipeline = SearchPipeline(index, encoder, judge, retriever=retriever)
        assert pipeline.judge_idle is None and pipeline.rerank_weight == 0.4
        results = pipeline.search("card declined", top_k=3).results
        assert results and all(r.rerank_score is not None for r in results)


def test_example_naming_a_deleted_document_is_ignored(encoder: BiEncoder, tmp_path: Path) -> None:
    with (
        build_index(SHORT_DOCS, tmp_path / "idx", encoder) as idx,
        _examples(tmp_path / "ex", encoder, ("e1", EXAMPLE, "rate"), ("e2", "x", "gone")) as ex,
    ):
        idx.delete(["rate"])
        pipeline = SearchPipeline(
            idx, encoder, retriever="dense", examples=ExampleQueries(ex), example_weight=0.0
        )
        found = [r.doc_id for r in pipeline.search(EXAMPLE, top_k=10).results]
        assert found and "rate" not in found and "gone" not in found


def test_an_example_names_its_answer_as_the_corpus_reads_ids(
    encoder: BiEncoder, tmp_path: Path
) -> None:
    """A corpus reads ``{"id": 7}`` as document "7" and strips ids; an example's ``"answer": 8``
    was refused as having no 'answer' field, and ``" 8 "`` was silently ignored."""
    docs = [Document("7", "why was my card declined abroad"), Document("8", "top up with cash")]
    with (
        build_index(docs, tmp_path / "idx", encoder) as idx,
        build_index([Document("e", EXAMPLE, "", {"answer": 8})], tmp_path / "ex", encoder) as ex,
        build_index(
            [Document("e", EXAMPLE, "", {"answer": " 8 "})], tmp_path / "csv", encoder
        ) as spaced,  # a CSV written "e, text, 8": the corpus reader strips ids, not other cells
    ):
        for examples in (ex, spaced):
            pipeline = SearchPipeline(
                idx, encoder, retriever="dense", examples=ExampleQueries(examples), example_weight=0
            )
            top = pipeline.search(EXAMPLE, top_k=1).results[0]
            assert (top.doc_id, top.example) == ("8", EXAMPLE)


def test_example_queries_are_checked(index: Index, encoder: BiEncoder, tmp_path: Path) -> None:
    """No answer field, a lexical retriever, another encoder, a bad weight: clear errors."""
    with _examples(tmp_path / "ex", encoder, ("e1", EXAMPLE, None)) as ex:
        pipeline = SearchPipeline(index, encoder, retriever="dense", examples=ExampleQueries(ex))
        with pytest.raises(DataError, match=r"example 'e1' .* no 'answer' field"):
            pipeline.search(EXAMPLE)
        for retriever in ("bm25", "hybrid"):
            with pytest.raises(ValueError, match="dense retriever"):
                SearchPipeline(index, encoder, retriever=retriever, examples=ExampleQueries(ex))
        with pytest.raises(ValueError, match="example_weight"):
            SearchPipeline(
                index, encoder, retriever="dense", examples=ExampleQueries(ex), example_weight=2
            )
    with pytest.raises(ValueError, match="k must be"):
        ExampleQueries(index, k=0)
    other = EncoderIdentity("other", "0" * 16, encoder.dim)
    with (
        Index.create(tmp_path / "other", other) as foreign,
        pytest.raises(ValueError, match="same bi-encoder"),
    ):
        SearchPipeline(index, encoder, retriever="dense", examples=ExampleQueries(foreign))


def test_a_build_refused_for_a_bad_document_makes_no_index(
    tmp_path: Path, tiny_st_dir: Path
) -> None:
    """It left an empty index behind, so building the fixed corpus there was then refused."""
    encoder = BiEncoder.load(tiny_st_dir, device="cpu")
    docs = [Document("a", "card declined"), Document("b", "   ")]
    with pytest.raises(ValueError, match=r"document 1 \(id 'b'\) has empty text"):
        build_index(docs, tmp_path / "idx", encoder)
    assert not (tmp_path / "idx").exists()
    build_index(docs[:1], tmp_path / "idx", encoder).close()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (Document("b", "abc\ud800"), r"document 1 \(id 'b'\): its text holds an unpaired"),
        (Document("b", "ok", "t\udce9"), r"document 1 \(id 'b'\): its title holds the byte 0xe9"),
        (Document("b\x00", "ok"), r"document 1 \(id 'b\\x00'\): its id holds a NUL"),
    ],
)
def test_a_build_refuses_invalid_text_naming_the_document(
    encoder: BiEncoder, tmp_path: Path, doc: Document, message: str
) -> None:
    """A lone surrogate ended in a TypeError from the tokenizer (text, title) or a
    UnicodeEncodeError from sqlite (id), after the index was made."""
    with pytest.raises(ValueError, match=message):
        build_index([Document("a", "card declined"), doc], tmp_path / "idx", encoder)
    assert not (tmp_path / "idx").exists()


def test_a_query_holding_a_nul_is_refused(index: Index, encoder: BiEncoder) -> None:
    """BERT's tokenizer dropped the NUL silently; FTS5 searched the words around it."""
    for retriever in Retriever:
        with pytest.raises(ValueError, match="query 0 holds a NUL character"):
            SearchPipeline(index, encoder, retriever=retriever).search("card\x00declined")


def test_the_snippet_of_a_long_document_is_the_passage_the_judge_chose(
    index: Index, encoder: BiEncoder, tiny_ce_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snippet was always the document's opening, far from what matched the query."""
    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")

    def likes_zebras(pairs: Sequence[tuple[str, str]], **_: object) -> np.ndarray:
        return np.array([0.9 if "zebra" in p else 0.1 for _, p in pairs], dtype=np.float32)

    monkeypatch.setattr(judge, "predict", likes_zebras)
    pipeline = SearchPipeline(index, encoder, judge, retriever="bm25", rerank_weight=1.0)
    hit = pipeline.search("zebra quokka", top_k=1).results[0]
    assert hit.doc_id == "long" and "zebra quokka" in hit.snippet
    short = pipeline.search("card declined abroad", top_k=8).results
    declined = next(r for r in short if r.doc_id == "declined")
    assert declined.snippet == "why was my card declined abroad"  # one passage: its opening


def test_a_filtered_search_returns_only_matching_documents(
    encoder: BiEncoder, reranker: CrossEncoder, tmp_path: Path
) -> None:
    """Every first stage, with and without the judge and with example queries, keeps to the
    filter; the same search unfiltered does return documents outside it (so the test can fail)."""
    tagged = [
        Document(d.id, d.text, d.title, {"topic": "cards" if i % 2 == 1 else "other", "n": i})
        for i, d in enumerate(SHORT_DOCS)
    ]
    cards = {d.id for d in tagged if d.metadata["topic"] == "cards"}
    tagged_by_id = {d.id: d for d in tagged}
    with (
        build_index(tagged, tmp_path / "idx", encoder) as idx,
        _examples(tmp_path / "ex", encoder, ("e1", EXAMPLE, "rate"), ("e2", "x", "declined")) as ex,
    ):
        for retriever, judge, examples in (
            ("dense", None, None),
            ("bm25", None, None),
            ("hybrid", reranker, None),
            ("dense", reranker, ExampleQueries(ex)),
        ):
            pipeline = SearchPipeline(
                idx, encoder, judge, retriever=retriever, examples=examples, rerank_weight=0.5
            )
            for query in ("my card was declined", EXAMPLE, "cash guitar food"):
                everything = {r.doc_id for r in pipeline.search(query, top_k=10).results}
                found = pipeline.search(query, top_k=10, where={"topic": "cards"}).results
                assert {r.doc_id for r in found} <= cards
                assert all(r.metadata == tagged_by_id[r.doc_id].metadata for r in found)
                assert [r.rank for r in found] == list(range(1, len(found) + 1))
            assert everything - cards  # unfiltered, other documents come back
        assert "rate" not in cards  # the example's answer is filtered out, not forced in
        numbers = pipeline.search(EXAMPLE, where={"n": [0, 2.0]}).results
        assert {r.doc_id for r in numbers} <= {tagged[0].id, tagged[2].id}
        assert pipeline.search("card", where={"topic": "none"}).results == []


def test_each_result_carries_its_best_passage_in_full(
    index: Index, encoder: BiEncoder, tiny_ce_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dense: the stored passage whose vector is nearest the query; with a judge: the passage it
    scored best; BM25 alone reads no passage, so None. The snippet stays a short preview."""
    query = "zebra quokka guitar"
    dense = SearchPipeline(index, encoder, retriever="dense").search(query, top_k=7)
    query_vector = encoder.encode([query])[0]
    tokenizer, width = encoder.transformer.tokenizer, encoder.max_seq_length - 2
    docs = {d.id: d for d in [*SHORT_DOCS, LONG]}
    for r in dense.results:
        passages = passages_for(docs[r.doc_id], tokenizer, width)
        best = passages[int(np.argmax(encoder.encode(passages) @ query_vector))]
        assert r.passage == best
    long_hit = next(r for r in dense.results if r.doc_id == "long")
    assert long_hit.passage is not None and long_hit.passage.startswith("Long read\n")
    assert long_hit.passage.endswith("zebra quokka") and "zebra quokka" in long_hit.snippet
    bm25 = SearchPipeline(index, encoder, retriever="bm25").search(query, top_k=3)
    assert bm25.results and all(r.passage is None for r in bm25.results)

    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")

    def likes_zebras(pairs: Sequence[tuple[str, str]], **_: object) -> np.ndarray:
        return np.array([0.9 if "zebra" in p else 0.1 for _, p in pairs], dtype=np.float32)

    monkeypatch.setattr(judge, "predict", likes_zebras)
    judged = SearchPipeline(index, encoder, judge, retriever="bm25", rerank_weight=1.0)
    top = judged.search("zebra quokka", top_k=2).results
    assert top[0].doc_id == "long" and top[0].passage is not None
    assert "zebra quokka" in top[0].passage
    assert index.passages([("long", 0), ("long", 999), ("nope", 0)]).keys() == {("long", 0)}


def test_a_pipeline_refuses_an_encoder_the_index_was_not_built_with(
    encoder: BiEncoder, tmp_path: Path
) -> None:
    """The CLI and server open the index with the encoder's identity; a pipeline built in Python
    took any encoder of the same width and ranked by vectors of two different models."""
    for name, weights, dim in (("other", "0" * 16, encoder.dim), ("wide", "0" * 16, 7)):
        identity = EncoderIdentity(name, weights, dim)
        with (
            Index.create(tmp_path / name, identity) as foreign,
            pytest.raises(EncoderMismatchError, match=f"built with the encoder '{name}'"),
        ):
            SearchPipeline(foreign, encoder, retriever="dense")
    with build_index(SHORT_DOCS, tmp_path / "own", encoder) as own:
        assert SearchPipeline(own, encoder, retriever="dense").search("card").results


def test_a_long_title_never_pushes_a_passage_past_the_limit(tokenizer: Any) -> None:
    """A 50-word title made 84-token passages against a 62-token window, so the encoder dropped
    the end of every window; the title is now cut to half the window in the passages."""
    doc = Document("x", LONG_TEXT, "card " * 50)
    passages = passages_for(doc, tokenizer, 62)
    assert len(passages) > 1 and all(_n_tokens(tokenizer, p) <= 62 for p in passages)
    _assert_covers(LONG_TEXT, [p.split("\n", 1)[1] for p in passages])
    short = passages_for(Document("y", "some text", "Short title"), tokenizer, 62)
    assert short == ["Short title\nsome text"]  # a title that fits is kept as written


def test_an_index_reads_documents_and_queries_with_the_models_prompts(
    tiny_st_dir: Path, tmp_path: Path
) -> None:
    """A model with E5-style prompts ("query: ", "passage: ") was indexed and searched with bare
    texts; passages now carry the document prompt and queries the query prompt, and the index
    records the prompts in its encoder identity, so another set of prompts cannot search it."""
    folder = tmp_path / "e5-like"
    shutil.copytree(tiny_st_dir, folder)
    prompts = {"query": "query: ", "passage": "passage: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    encoder = BiEncoder.load(folder)
    docs = [Document("a", "card declined abroad"), Document("b", "top up with cash at the atm")]
    index = build_index(docs, tmp_path / "idx", encoder)
    try:
        assert index.encoder.weights_hash == encoder.vector_hash() != encoder.weights_hash()
        query = "my card was declined"
        [hits] = index.search_dense(encoder.encode_query([query]), k=2)
        stored = encoder.encode_document([d.text for d in docs])
        wanted = stored @ encoder.encode_query([query])[0]
        assert {h.doc_id: h.score for h in hits} == pytest.approx(
            {"a": wanted[0], "b": wanted[1]}, abs=1e-5
        )
        bare = stored @ encoder.encode([query])[0]  # what a bare query would have scored
        assert not np.allclose(wanted, bare, atol=1e-4)
        pipeline = SearchPipeline(index, encoder, retriever="dense")
        results = pipeline.search(query, top_k=2).results
        assert {r.doc_id: r.first_stage_score for r in results} == pytest.approx(
            {"a": wanted[0], "b": wanted[1]}, abs=1e-5
        )
        with pytest.raises(EncoderMismatchError):
            SearchPipeline(index, BiEncoder.load(tiny_st_dir), retriever="dense")
    finally:
        index.close()


def test_an_index_built_without_the_models_prompts_says_so(
    tiny_st_dir: Path, tmp_path: Path
) -> None:
    """An index built before sentsim read a model's prompts was refused with 'built with encoder
    'e5' (weights H1) but is opened with 'e5' (weights H2)': two hashes of the same weights."""
    folder = tmp_path / "e5"
    shutil.copytree(tiny_st_dir, folder)
    docs = [Document("a", "card declined abroad"), Document("b", "top up with cash")]
    build_index(docs, tmp_path / "idx", BiEncoder.load(folder)).close()
    prompts = {"query": "query: ", "passage": "passage: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    encoder = BiEncoder.load(folder)
    why = r"idx was built from the weights of .*e5 without its prompts \(query 'query: ', document"
    with pytest.raises(EncoderMismatchError, match=why):
        open_index(tmp_path / "idx", encoder, readonly=True)
    with pytest.raises(EncoderMismatchError, match=why):
        build_index(docs, tmp_path / "idx", encoder)
    with Index.open(tmp_path / "idx") as index, pytest.raises(EncoderMismatchError, match=why):
        SearchPipeline(index, encoder, retriever="dense")
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"q": "q"}}))
    build_index(docs, tmp_path / "other", BiEncoder.load(folder)).close()
    with pytest.raises(EncoderMismatchError, match="but is opened with"):
        open_index(tmp_path / "other", encoder)  # other prompts: the general message


def test_a_tsv_corpus_row_is_one_line_whatever_quotes_it_holds(tmp_path: Path) -> None:
    """A TSV corpus was read with CSV quoting: a text opening with an unbalanced quote made one
    document of every line up to the next quote, so the documents between were lost silently."""
    path = tmp_path / "docs.tsv"
    path.write_text(
        'id\ttext\na\t"Card declined" she said\nb\t"never arrived\nc\ttop up with cash\n'
        'd\t"a ""quoted"" cell, as pandas writes it"\n',
        encoding="utf-8",
    )
    assert read_corpus(path) == [
        Document("a", '"Card declined" she said', "", {}),
        Document("b", '"never arrived', "", {}),
        Document("c", "top up with cash", "", {}),
        Document("d", 'a "quoted" cell, as pandas writes it', "", {}),
    ]


def test_an_index_is_not_searched_with_its_encoders_weights_pooled_otherwise(
    tiny_st_dir: Path, tmp_path: Path
) -> None:
    """The identity named the weights only: the same weights loaded with max pooling searched an
    index of mean-pooled vectors without a word."""
    encoder = BiEncoder.load(tiny_st_dir)
    index = build_index([Document("a", "card declined abroad")], tmp_path / "idx", encoder)
    try:
        with pytest.raises(EncoderMismatchError):
            SearchPipeline(index, BiEncoder.load(tiny_st_dir, pooling="max"), retriever="dense")
        SearchPipeline(index, BiEncoder.load(tiny_st_dir), retriever="dense")  # the same: fine
    finally:
        index.close()


# -- the model's similarity function ---------------------------------------------------------------

SIMILARITY_DOCS = [Document(d.id, d.text) for d in SHORT_DOCS]  # untitled: each text one passage
SIMILARITY_QUERIES = ["my card was declined", "cash at the atm"]


def reference_scores(folder: Path) -> np.ndarray:
    """sentence-transformers' ``model.similarity`` of the queries and documents: the model's
    own similarity function (cosine unless its config says otherwise)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    queries = model.encode_query(SIMILARITY_QUERIES)
    documents = model.encode_document([d.text for d in SIMILARITY_DOCS])
    return model.similarity(queries, documents).numpy()


def dense_scores(pipeline: SearchPipeline) -> np.ndarray:
    """Each query's dense score of every document, in SIMILARITY_DOCS order."""
    out = []
    for response in pipeline.search_many(SIMILARITY_QUERIES, top_k=len(SIMILARITY_DOCS)):
        got = {r.doc_id: r.first_stage_score for r in response.results}
        assert [r.doc_id for r in response.results] == sorted(got, key=lambda d: -got[d])
        out.append([got[d.id] for d in SIMILARITY_DOCS])
    return np.array(out)


def test_a_cosine_model_without_normalize_is_searched_by_cosine(
    tiny_paraphrase_dir: Path, tmp_path: Path
) -> None:
    """A paraphrase-* model (cosine, no Normalize module) was indexed and searched by the inner
    product of its raw vectors: documents with longer vectors ranked higher than their cosine
    says. The index now stores and searches unit vectors: dense scores, example-query scores and
    their order are sentence-transformers' cosines."""
    encoder = BiEncoder.load(tiny_paraphrase_dir)
    assert (encoder.similarity_fn_name, encoder.normalize) == ("cosine", False)
    expected = reference_scores(tiny_paraphrase_dir)
    raw = (
        encoder.encode_query(SIMILARITY_QUERIES)
        @ encoder.encode_document([d.text for d in SIMILARITY_DOCS]).T
    )
    assert not np.array_equal(np.argsort(-raw), np.argsort(-expected))  # the orders differ
    with build_index(SIMILARITY_DOCS, tmp_path / "idx", encoder) as index:
        pipeline = SearchPipeline(index, encoder, retriever="dense")
        np.testing.assert_allclose(dense_scores(pipeline), expected, atol=1e-5)
    examples = [
        Document(f"q{i}", d.text, "", {"answer": d.id}) for i, d in enumerate(SIMILARITY_DOCS)
    ]
    with (
        build_index(examples, tmp_path / "examples", encoder) as found,
        Index.open(tmp_path / "idx", readonly=True) as index,
    ):
        examples_found = ExampleQueries(found, k=2)
        pipeline = SearchPipeline(index, encoder, examples=examples_found)
        queries = encoder.encode_query(SIMILARITY_QUERIES)  # raw: the pipeline makes them unit
        given = pipeline.first_stage(SIMILARITY_QUERIES, query_vectors=queries)
        for mine, own in zip(given, pipeline.first_stage(SIMILARITY_QUERIES), strict=True):
            assert dict(mine) == pytest.approx(dict(own), abs=1e-6)
        matches = examples_found.scores(index_vectors(encoder, queries))
        for row, match in zip(expected, matches, strict=True):  # examples are the documents
            ids = [d.id for d in SIMILARITY_DOCS]
            best = dict(sorted(zip(ids, row, strict=True), key=lambda x: -x[1])[:2])
            assert match.scores == pytest.approx(best, abs=1e-5)
            assert match.floor == pytest.approx(min(best.values()), abs=1e-5)  # the k-th cosine


def test_a_dot_product_model_is_searched_by_its_dot_product(
    tiny_dot_dir: Path, tmp_path: Path
) -> None:
    """A dot-product model (msmarco-*-dot-*, TAS-B) keeps its raw vectors: their lengths are
    part of its score, and dense scores are sentence-transformers' dot products."""
    encoder = BiEncoder.load(tiny_dot_dir)
    assert (encoder.similarity_fn_name, encoder.normalize) == ("dot", False)
    expected = reference_scores(tiny_dot_dir)
    with build_index(SIMILARITY_DOCS, tmp_path / "idx", encoder) as index:
        scores = dense_scores(SearchPipeline(index, encoder, retriever="dense"))
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert np.abs(scores).max() > 1.5  # not cosines


def test_example_queries_of_a_dot_product_model_floor_at_the_querys_opposite(
    tiny_dot_dir: Path, tmp_path: Path
) -> None:
    """With fewer than k examples, a document without one got the lowest cosine, −1, also from a
    dot-product model, whose scores are not cosines: −1 was no bound of them. It now gets the
    score of the query's opposite, −‖q‖² (−1 for a unit vector), or the lowest seen if lower;
    example scores are sentence-transformers' dot products."""
    encoder = BiEncoder.load(tiny_dot_dir)
    examples = [
        Document(f"q{i}", d.text, "", {"answer": d.id}) for i, d in enumerate(SIMILARITY_DOCS)
    ]
    expected = reference_scores(tiny_dot_dir)
    with build_index(examples, tmp_path / "examples", encoder) as found:
        queries = index_vectors(encoder, encoder.encode_query(SIMILARITY_QUERIES))
        matches = ExampleQueries(found).scores(queries)  # k 20: every example seen
        for query, match, row in zip(queries, matches, expected, strict=True):
            ids = [d.id for d in SIMILARITY_DOCS]
            assert match.scores == pytest.approx(dict(zip(ids, row, strict=True)), rel=1e-5)
            opposite = -float(query.astype(np.float64) @ query)
            assert match.floor == pytest.approx(min(opposite, row.min()), rel=1e-5)
            assert match.floor < -1.5  # on the model's scale, not a cosine's −1


def test_an_sq8_index_takes_a_cosine_model_without_normalize(
    tiny_paraphrase_dir: Path, tmp_path: Path
) -> None:
    """``index build --quantize sq8`` refused a paraphrase-* model's vectors (components past
    ±1); its unit vectors now fit the 8-bit codes."""
    encoder = BiEncoder.load(tiny_paraphrase_dir)
    with build_index(
        SIMILARITY_DOCS, tmp_path / "idx", encoder, ann="hnsw", quantize="sq8"
    ) as index:
        hits = SearchPipeline(index, encoder, retriever="dense").search("my card was declined")
    expected = reference_scores(tiny_paraphrase_dir)[0]
    best = max(zip(expected, SIMILARITY_DOCS, strict=True), key=lambda x: x[0])
    assert hits.results[0].doc_id == best[1].id
    assert hits.results[0].score == pytest.approx(best[0], abs=1e-5)


def test_an_sq8_index_refuses_a_dot_product_model_before_making_anything(
    tiny_dot_dir: Path, tmp_path: Path
) -> None:
    """A dot-product model's vectors keep their lengths, past the [-1, 1] that sq8 codes: the
    build failed at the first batch holding such a component, after earlier batches were
    committed, saying to normalise the rows (which would change the model's scores)."""
    encoder = BiEncoder.load(tiny_dot_dir)
    with pytest.raises(ValueError, match=r"dot-product model, whose vectors keep their lengths"):
        build_index(SIMILARITY_DOCS, tmp_path / "idx", encoder, ann="hnsw", quantize="sq8")
    assert not (tmp_path / "idx").exists()
    build_index(SIMILARITY_DOCS, tmp_path / "idx", encoder, ann="hnsw").close()  # unquantized


def built_before(folder: Path, encoder: BiEncoder, docs: Sequence[Document]) -> Path:
    """An index as sentsim built it before it read the similarity function: recorded under the
    encoder's vector hash, holding its vectors as the model makes them."""
    old = EncoderIdentity(encoder.name, encoder.vector_hash(), encoder.dim)
    with Index.create(folder, old) as index:
        index.add(list(docs), None, encoder.encode_document([d.text for d in docs]))
    return folder


def test_the_identity_of_a_normalizing_or_dot_model_is_unchanged(
    tiny_st_dir: Path, tiny_dot_dir: Path, tmp_path: Path
) -> None:
    """Every shipped model normalizes: the indexes users built with one (and with a dot-product
    model, whose vectors are stored as they were) keep opening and searching."""
    for name, folder in (("cosine", tiny_st_dir), ("dot", tiny_dot_dir)):
        encoder = BiEncoder.load(folder)
        assert encoder_identity(encoder).weights_hash == encoder.vector_hash()
        path = built_before(tmp_path / name, encoder, SIMILARITY_DOCS)
        with open_index(path, encoder, readonly=True) as index:
            response = SearchPipeline(index, encoder, retriever="dense").search("card declined")
            assert len(response.results) == len(SIMILARITY_DOCS)
        build_index([Document("new", "a new card")], path, encoder).close()  # and extend


def test_an_index_of_raw_vectors_of_a_cosine_model_is_refused_saying_to_rebuild_it(
    tiny_paraphrase_dir: Path, tmp_path: Path
) -> None:
    """An index a cosine model without Normalize filled with its raw vectors (sentsim ranked them
    by dot product) must not be searched, nor extended, with unit vectors: it says why, and to
    rebuild it."""
    encoder = BiEncoder.load(tiny_paraphrase_dir)
    assert encoder_identity(encoder).weights_hash != encoder.vector_hash()
    path = built_before(tmp_path / "idx", encoder, SIMILARITY_DOCS)
    why = r"idx was built with the vectors of .*model as the model makes them, not as unit vectors"
    with pytest.raises(EncoderMismatchError, match=why) as info:
        open_index(path, encoder, readonly=True)
    assert str(info.value).endswith("rebuild the index with `sentsim index build`")
    with pytest.raises(EncoderMismatchError, match=why):
        build_index([Document("new", "a new card")], path, encoder, upsert=True)
    with Index.open(path) as index, pytest.raises(EncoderMismatchError, match=why):
        SearchPipeline(index, encoder, retriever="dense")
    rebuilt = build_index(SIMILARITY_DOCS, tmp_path / "rebuilt", encoder)
    rebuilt.close()
    open_index(tmp_path / "rebuilt", encoder, readonly=True).close()
    other = BiEncoder.load(tiny_paraphrase_dir, pooling="max")  # another encoder: the general one
    with pytest.raises(EncoderMismatchError, match="but is opened with"):
        open_index(path, other, readonly=True)
