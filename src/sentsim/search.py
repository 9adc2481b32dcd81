"""Retrieve and re-rank: a first stage finds candidates, the cross-encoder orders them.

First stages: ``dense`` (bi-encoder vectors in the index), ``bm25`` (the index's lexical side)
or ``hybrid``, which fuses the two lists, each taken to the same depth ``k_retrieve``:

- ``rrf``: reciprocal-rank fusion, ``score(d) = Σ_lists 1 / (60 + rank(d))`` with ranks from 1;
  a document missing from a list contributes 0 (Cormack, Clarke and Büttcher, 2009);
- ``minmax``: per query, each list's scores are mapped to 0–1 by min–max, then
  ``score(d) = w · dense(d) + (1 − w) · bm25(d)``, 0 for a list the document is missing from.

Dense scores are the bi-encoder's own similarity (its ``similarity_fn_name``): the index ranks by
inner product, so a cosine model's vectors are stored and searched as unit vectors
(:func:`index_vectors`) and its scores are cosines, a dot-product model's (TAS-B) as they are.

With labelled example queries (:class:`ExampleQueries`: past questions, each naming the document
that answered it), the dense scores are fused with the best similarity between the query and each
document's examples: ``score(d) = w · dense(d) + (1 − w) · example(d)``, ``w`` chosen on dev.

Re-ranking scores every passage of each candidate with the query (title prepended) and keeps the
best passage's score, so no part of a long document is ignored.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from sentsim.base import check_text
from sentsim.bi_encoder import BiEncoder
from sentsim.choices import Precision, Retriever
from sentsim.corpus import split_passages
from sentsim.cross_encoder import CrossEncoder
from sentsim.errors import DataError, EncoderMismatchError
from sentsim.index import Document, EncoderIdentity, Index, IndexHit, Quantize
from sentsim.index_cache import parse_ann
from sentsim.index_checks import document_rows
from sentsim.index_filter import Where
from sentsim.index_store import REBUILD, index_exists, read_manifest
from sentsim.similarity import Metric, normalize

RRF_K = 60


@dataclass(frozen=True)
class SearchResult:
    """One result: first-stage score and rank, cross-encoder score (None without re-ranking).

    ``score`` is what the results are ordered by: the fusion of the judge's and the first stage's
    scores when re-ranked (``rerank_fuse``, equal to the judge's score at weight 1), else the
    first-stage score. ``metadata`` is the document's own (its corpus row's other fields: a URL,
    a section, a date). ``passage`` is the whole passage (title first, as it was scored) that the
    judge scored best, else the one the bi-encoder matched; None when neither read passages
    (a BM25 hit, or a document reached only through an example query): what a RAG pipeline passes
    on, where ``snippet`` is a short preview.
    """

    doc_id: str
    title: str
    snippet: str
    first_stage_score: float
    first_stage_rank: int
    rerank_score: float | None
    rank: int
    score: float
    example: str | None = None  # the example query that matched this document best, if any
    metadata: Mapping[str, Any] = field(default_factory=dict)  # the document's own fields
    passage: str | None = None  # the passage that scored best, in full (see the class docstring)


@dataclass(frozen=True)
class SearchResponse:
    """The results of one query and the seconds each stage took."""

    query: str
    results: list[SearchResult]
    timings: dict[str, float] = field(default_factory=dict)


def index_encoder(folder: str | Path, model: str | None = None) -> BiEncoder:
    """``model``; without it, the encoder the index at ``folder`` records (``minilm`` for none).

    A recorded name that cannot be found from here is an error that says to pass the model; one
    that is found but broken says what is wrong with it.
    """
    from sentsim.errors import ModelLoadError
    from sentsim.index_store import read_manifest
    from sentsim.models import resolve_model_path

    if model is not None:
        return BiEncoder.load(model)
    folder = Path(folder)  # a str, as open_index and build_index take, failed inside
    if not index_exists(folder):
        return BiEncoder.load("minilm")
    name = read_manifest(folder)["encoder"]["name"]
    try:
        resolve_model_path(name)
    except ModelLoadError:
        raise ModelLoadError(
            f"{folder} was built with the encoder {name!r}, which is neither a built-in name "
            "nor a folder from here; pass --model with that encoder's folder"
        ) from None
    return BiEncoder.load(name)


def _unit_by_index(encoder: BiEncoder) -> bool:
    """Whether an index scales ``encoder``'s vectors to unit length: a cosine model that does not.

    A paraphrase-* or older nli-* model, or a plain Hugging Face encoder loaded with mean pooling,
    is compared by cosine but has no Normalize step.
    """
    return encoder.similarity_fn_name is Metric.COSINE and not encoder.normalize


def index_vectors(encoder: BiEncoder, vectors: np.ndarray) -> np.ndarray:
    """``encoder``'s vectors as an index stores and searches them: inner product = its similarity.

    A cosine model's rows are scaled to unit length, so that the inner product the index ranks by
    is their cosine (and ``quantize="sq8"`` can code them); a model that normalizes its vectors
    itself (every shipped one) gets them back untouched, and so does a dot-product model (TAS-B,
    ``msmarco-*-dot-*``), whose vectors' lengths are part of its score. Document vectors before
    :meth:`Index.add` and query vectors before :meth:`Index.search_dense` both go through here.
    """
    return normalize(vectors) if _unit_by_index(encoder) else vectors


def encoder_identity(encoder: BiEncoder) -> EncoderIdentity:
    """The identity an index records for vectors made by ``encoder`` (see :func:`index_vectors`).

    Its hash is the encoder's :meth:`~BiEncoder.vector_hash`, mixed with a mark where the index
    stores unit vectors the encoder does not make: the identity of a model that normalizes, or
    of a dot-product model, is what it always was, while an index that an encoder without a
    Normalize step filled with its raw vectors is not searched with unit ones.
    """
    if encoder.source is None:
        raise ValueError("the encoder was not loaded from disk; save it before indexing")
    vector_hash = encoder.vector_hash()
    if _unit_by_index(encoder):
        digest = hashlib.sha256(f"{vector_hash}\x00unit vectors for cosine".encode())
        vector_hash = digest.hexdigest()[:16]
    return EncoderIdentity(encoder.name, vector_hash, encoder.dim)


def open_index(path: str | Path, encoder: BiEncoder, *, readonly: bool = False) -> Index:
    """:meth:`Index.open` for ``encoder``'s vectors; refuses an index another encoder built.

    An index built by an older sentsim from the same weights, without the model's prompts or with
    raw vectors where it now stores unit ones, is named as such (:func:`_built_before`): the
    generic message showed two hashes of the same weights.
    """
    try:
        return Index.open(path, encoder_identity(encoder), readonly=readonly)
    except EncoderMismatchError as exc:
        because = _built_before(read_manifest(Path(path))["encoder"]["weights_hash"], encoder)
        if because is None:
            raise
        raise EncoderMismatchError(f"{path} {because}; {REBUILD}") from exc


def _built_before(stored_hash: object, encoder: BiEncoder) -> str | None:
    """Why an index whose vectors hash to ``stored_hash`` was built by an older sentsim, if so.

    Its vectors were made from ``encoder``'s weights without the prompts sentsim now reads, or as
    the model makes them where the index now holds unit vectors; None: another encoder's.
    """
    return _without_prompts(stored_hash, encoder) or _not_unit(stored_hash, encoder)


def _not_unit(stored_hash: object, encoder: BiEncoder) -> str | None:
    """Why vectors of ``stored_hash`` are not ``encoder``'s when only their length differs."""
    if (
        not _unit_by_index(encoder)
        or encoder.source is None
        or stored_hash != encoder.vector_hash()
    ):
        return None
    return (
        f"was built with the vectors of {encoder.name} as the model makes them, not as unit "
        "vectors: the model is compared by cosine but does not normalize them (no Normalize "
        "step), and sentsim now stores and searches its vectors at unit length, so that the "
        "index ranks by cosine rather than by dot product"
    )


def _without_prompts(stored_hash: object, encoder: BiEncoder) -> str | None:
    """Why vectors of ``stored_hash`` are not ``encoder``'s when only its prompts differ."""
    if not encoder.prompts or encoder.source is None or stored_hash != encoder.weights_hash():
        return None
    return (
        f"was built from the weights of {encoder.name} without its prompts (query "
        f"{encoder.query_prompt!r}, document {encoder.document_prompt!r}, from "
        "config_sentence_transformers.json), which sentsim now puts before each text: its "
        "vectors and the queries' would not match"
    )


def rrf_fuse(lists: Sequence[Sequence[IndexHit]], k: int = RRF_K) -> list[tuple[str, float]]:
    """``score(d) = Σ_lists 1 / (k + rank(d))``; best first, ties by first appearance."""
    scores: dict[str, float] = {}
    for hits in lists:
        for hit in hits:
            scores[hit.doc_id] = scores.get(hit.doc_id, 0.0) + 1.0 / (k + hit.rank)
    return sorted(scores.items(), key=lambda x: -x[1])


def minmax_fuse(
    dense: Sequence[IndexHit], lexical: Sequence[IndexHit], weight: float
) -> list[tuple[str, float]]:
    """``w · minmax(dense) + (1 − w) · minmax(bm25)`` per query; a missing document counts 0."""

    def scaled(hits: Sequence[IndexHit]) -> dict[str, float]:
        if not hits:
            return {}
        values = np.array([h.score for h in hits], dtype=np.float64)
        lo, span = values.min(), np.ptp(values)
        return {h.doc_id: (h.score - lo) / span if span else 1.0 for h in hits}

    d, b = scaled(dense), scaled(lexical)
    scores = {doc: weight * d.get(doc, 0.0) + (1 - weight) * b.get(doc, 0.0) for doc in {*d, *b}}
    return sorted(scores.items(), key=lambda x: (-x[1], x[0]))


def rerank_fuse(first: ArrayLike, judge: ArrayLike, weight: float) -> np.ndarray:
    """``w · minmax(judge) + (1 − w) · minmax(first stage)`` over one query's candidates.

    ``w = 1`` ranks by the cross-encoder alone; a lower ``w`` (chosen on a dev split) keeps the
    first stage's opinion, so a judge trained elsewhere cannot throw away a good first ranking.
    """

    def scaled(values: ArrayLike) -> np.ndarray:
        arr = np.asarray(values, dtype=np.float64)
        span = np.ptp(arr) if len(arr) else 0.0
        return (arr - arr.min()) / span if span else np.ones_like(arr)

    if weight >= 1.0:
        return np.asarray(judge, dtype=np.float64)
    return weight * scaled(judge) + (1.0 - weight) * scaled(first)


def example_fuse(
    dense: Sequence[IndexHit], examples: Mapping[str, float], floor: float, weight: float
) -> list[tuple[str, float]]:
    """``w · dense(d) + (1 − w) · example(d)``, best first.

    A document missing from the dense list gets its lowest score; one without a near example gets
    ``floor`` (see :meth:`ExampleQueries.scores`).
    """
    d = {h.doc_id: h.score for h in dense}
    d_floor = min(d.values(), default=0.0)
    scores = {
        doc: weight * d.get(doc, d_floor) + (1 - weight) * examples.get(doc, floor)
        for doc in {*d, *examples}
    }
    return sorted(scores.items(), key=lambda x: (-x[1], x[0]))


@dataclass(frozen=True)
class ExampleMatches:
    """One query's example scores, for the documents whose examples are near it.

    ``scores``: each document's best example score; ``texts``: that example's text; ``floor``:
    the score every other document gets.
    """

    scores: dict[str, float]
    texts: dict[str, str]
    floor: float


class ExampleQueries:
    """Labelled example queries, matched by vectors: each names the document that answers it.

    ``index`` holds short texts such as past customer questions, encoded by the same bi-encoder
    as the documents, each with the id of the document that answered it in its ``answer``
    metadata field (corpus rows ``{"id": ..., "text": ..., "answer": ...}``). A query's example
    score for a document is its best score (the encoder's similarity: a cosine for a cosine
    model, a dot product for a dot-product model) with that document's examples among the ``k``
    examples nearest to the query; a document with none among them gets the k-th score (or, when
    the index has fewer than ``k`` examples, the score of the query ``q``'s opposite, ``−‖q‖²``:
    −1 for a cosine model's unit vectors, or the lowest score seen if lower). Examples naming a
    document that is not in the searched index (deleted, say) are ignored.
    """

    FIELD = "answer"

    def __init__(self, index: Index, *, k: int = 20) -> None:
        if k < 1:
            raise ValueError(f"k must be ≥ 1, got {k}")
        self.index = index
        self.k = k

    def scores(self, query_vectors: np.ndarray) -> list[ExampleMatches]:
        """Per query: each near document's best example score and text, and the others' score."""
        hits = self.index.search_dense(query_vectors, self.k)
        ids = sorted({h.doc_id for row in hits for h in row})
        answers: dict[str, str] = {}
        texts: dict[str, str] = {}
        for doc in self.index.get(ids) if ids else []:
            texts[doc.id] = doc.text
            answer = doc.metadata.get(self.FIELD)
            if isinstance(answer, int) and not isinstance(answer, bool):
                answer = str(answer)  # a corpus's whole-number ids are read as text
            if not isinstance(answer, str) or not answer.strip():
                raise DataError(
                    f"example {doc.id!r} in {self.index.path} has no {self.FIELD!r} field: give "
                    "each example query the id of the document that answers it"
                )
            answers[doc.id] = answer.strip()  # as the corpus reader strips the ids it names
        out = []
        for row, query in zip(hits, np.asarray(query_vectors, dtype=np.float32), strict=True):
            best: dict[str, float] = {}
            text: dict[str, str] = {}
            for h in row:  # best first
                target = answers[h.doc_id]
                if target not in best:
                    best[target], text[target] = h.score, texts[h.doc_id]
            # Past the k nearest, a document's examples are at most the k-th score; when fewer
            # than k examples exist, those not seen do not exist and count as the query's
            # opposite: the lowest cosine, −1, or for a dot-product model −‖q‖² on its own scale
            # (−1, a cosine's bound, could lie anywhere among a dot product's scores).
            opposite = _opposite_score(query)
            lowest = row[-1].score if row else opposite
            floor = lowest if len(row) == self.k else min(opposite, lowest)
            out.append(ExampleMatches(best, text, floor))
        return out


def _opposite_score(query: np.ndarray) -> float:
    """The inner product of a query vector ``q`` with its opposite: ``q·(−q) = −‖q‖²``.

    −1 for a unit vector (a cosine model's: the lowest cosine), rounded so that float32 rounding
    does not make it −0.9999999; for a dot-product model's raw vector the score of a text pointing
    away from the query with its length, on that model's scale.
    """
    q = np.asarray(query, dtype=np.float64)
    return -round(float(q @ q), 6)


def passages_for(doc: Document, tokenizer: Any, max_tokens: int) -> list[str]:
    """The passages a document is encoded and re-ranked as: title, then a window of the text.

    A title longer than half of ``max_tokens`` is cut to that half in the passages (the document
    keeps it whole, and BM25 reads it whole), so every passage fits the model: a long title used
    to push each window past the limit, where the encoder dropped the window's end.
    """
    title = doc.title
    ids = tokenizer(title, add_special_tokens=False)["input_ids"] if title else []
    if len(ids) > max_tokens // 2:
        ids = ids[: max_tokens // 2]
        title = tokenizer.decode(ids)
    budget = max_tokens - len(ids) - 1
    windows = split_passages(doc.text, tokenizer, max_tokens=max(8, budget))
    return [f"{title}\n{w}" if title else w for w in windows]


class SearchPipeline:
    """A first stage over an :class:`Index`, then an optional cross-encoder re-ranking.

    ``retriever`` (``dense``, ``bm25``, ``hybrid``) defaults to ``dense`` with ``examples``, else
    to the one the encoder's folder stores (``sentsim_config.json``, chosen on a dev split), else
    ``hybrid``.
    """

    def __init__(
        self,
        index: Index,
        encoder: BiEncoder,
        reranker: CrossEncoder | None = None,
        *,
        retriever: str | Retriever | None = None,
        k_retrieve: int = 100,
        hybrid: str = "rrf",
        hybrid_weight: float = 0.5,
        rerank_weight: float | None = None,
        examples: ExampleQueries | None = None,
        example_weight: float = 0.2,
    ) -> None:
        if retriever is None:  # dense beside example queries; else the encoder's choice on dev
            retriever = "dense" if examples is not None else (encoder.retriever or "hybrid")
        # another encoder's query vectors against the index's would rank silently wrong
        if encoder.dim != index.encoder.dim or (
            encoder.source is not None
            and encoder_identity(encoder).weights_hash != index.encoder.weights_hash
        ):
            if because := _built_before(index.encoder.weights_hash, encoder):
                raise EncoderMismatchError(f"{index.path} {because}; {REBUILD}")
            raise EncoderMismatchError(
                f"{index.path} was built with the encoder {index.encoder.name!r} (weights "
                f"{index.encoder.weights_hash}, dim {index.encoder.dim}), not {encoder.name!r}; "
                "search it with the encoder that built it"
            )
        if examples is not None:
            if Retriever.parse(retriever) is not Retriever.DENSE:
                raise ValueError(
                    "example queries are matched by vectors: use them with the dense retriever"
                )
            if examples.index.encoder.weights_hash != index.encoder.weights_hash:
                raise ValueError(
                    f"the example queries in {examples.index.path} were encoded by "
                    f"{examples.index.encoder.name}, the index by {index.encoder.name}; build both "
                    "with the same bi-encoder"
                )
        if not 0.0 <= example_weight <= 1.0:
            raise ValueError(f"example_weight must be in 0..1, got {example_weight}")
        # A judge whose stored weight after this first stage is 0 (dev found it only hurts
        # there) is not run at all; an explicit weight 0 still runs it, to show its scores.
        self.judge_idle: str | None = None
        if rerank_weight is None:
            # a weight stored after a bi-encoder was chosen on its dense first stage: BM25 and
            # hybrid over the same index are other first stages and take the plain weight
            dense = Retriever.parse(retriever) is Retriever.DENSE
            rerank_weight = (
                reranker.weight_after(
                    examples=examples is not None,
                    encoder_hash=index.encoder.weights_hash if dense else None,
                )
                if reranker is not None
                else 1.0
            )
            if reranker is not None and rerank_weight == 0.0:
                self.judge_idle = (
                    f"{reranker.name} not run: its stored weight after {index.encoder.name} is 0 "
                    "(it only lowered that first stage on dev); give a weight to run it anyway"
                )
        if not 0.0 <= rerank_weight <= 1.0:
            raise ValueError(f"rerank_weight must be in 0..1, got {rerank_weight}")
        if hybrid not in ("rrf", "minmax"):
            raise ValueError(f"unknown hybrid fusion {hybrid!r}; expected rrf or minmax")
        if not 0.0 <= hybrid_weight <= 1.0:  # NaN fails this too
            raise ValueError(f"hybrid_weight must be in 0..1, got {hybrid_weight}")
        if k_retrieve < 1:
            raise ValueError(f"k_retrieve must be ≥ 1, got {k_retrieve}")
        self.index = index
        self.encoder = encoder
        self.reranker = reranker
        self.retriever = Retriever.parse(retriever)
        self.k_retrieve = k_retrieve
        self.hybrid = hybrid
        self.hybrid_weight = hybrid_weight
        self.rerank_weight = rerank_weight
        self.examples = examples
        self.example_weight = example_weight

    def first_stage(
        self,
        queries: Sequence[str],
        *,
        query_vectors: np.ndarray | None = None,
        where: Mapping[str, Any] | Where | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Candidates per query, best first, as ``(doc_id, score)``.

        ``query_vectors`` (the encoder's vectors of ``queries``, as :meth:`BiEncoder.encode_query`
        or :func:`index_vectors` gives them) skips encoding them again;
        ``where`` keeps only documents whose metadata matches (see :class:`Where`).
        """
        return self._first_stage(queries, query_vectors, Where.parse(where))[0]

    def _first_stage(
        self,
        queries: Sequence[str],
        query_vectors: np.ndarray | None,
        where: Where | None,
        depth: int | None = None,
    ) -> tuple[list[list[tuple[str, float]]], list[dict[str, str]], list[dict[str, int]]]:
        """:meth:`first_stage`'s candidates, and per query two maps by document id.

        The matched example query of each document, and the ordinal of each dense hit's best
        passage. ``depth`` candidates are kept (default ``k_retrieve``).
        """
        for i, q in enumerate(queries):
            if not isinstance(q, str):
                raise TypeError(f"query {i} is {type(q).__name__}, expected str")
            if not q.strip():
                raise ValueError(f"query {i} is empty; type some words to search for")
            check_text(q, f"query {i}")
        k = self.k_retrieve if depth is None else depth
        dense = lexical = None
        if self.retriever in (Retriever.DENSE, Retriever.HYBRID):
            if query_vectors is None:
                query_vectors = self.encoder.encode_query(list(queries), show_progress=False)
            query_vectors = index_vectors(self.encoder, query_vectors)
            dense = self.index.search_dense(query_vectors, k, where=where)
        if self.retriever in (Retriever.BM25, Retriever.HYBRID):
            lexical = self.index.search_bm25(list(queries), k, where=where)
        best_passage = [
            {h.doc_id: h.passage for h in row if h.passage is not None} for row in dense or []
        ] or [{} for _ in queries]
        if self.examples is not None and dense is not None:
            assert query_vectors is not None
            matches = self.examples.scores(query_vectors)
            fused = self._with_examples(dense, matches, where, k)
            return fused, [m.texts for m in matches], best_passage
        out = []
        for i in range(len(queries)):
            if dense is not None and lexical is not None:
                if self.hybrid == "rrf":
                    out.append(rrf_fuse([dense[i], lexical[i]])[:k])
                else:
                    out.append(minmax_fuse(dense[i], lexical[i], self.hybrid_weight)[:k])
            else:
                hits = dense[i] if dense is not None else lexical[i]  # type: ignore[index]
                out.append([(h.doc_id, h.score) for h in hits])
        return out, [{} for _ in queries], best_passage

    def _with_examples(
        self,
        dense: list[list[IndexHit]],
        examples: list[ExampleMatches],
        where: Where | None,
        k: int,
    ) -> list[list[tuple[str, float]]]:
        named = {doc for match in examples for doc in match.scores}
        # an example's answer counts only if it is in the index now and passes the filter
        live = self.index.existing(sorted(named), where=where) if named else set()
        out = []
        for hits, match in zip(dense, examples, strict=True):
            kept = {doc: score for doc, score in match.scores.items() if doc in live}
            fused = example_fuse(hits, kept, match.floor, self.example_weight)
            out.append(fused[:k])
        return out

    def rerank_scores(self, query: str, doc_ids: Sequence[str]) -> np.ndarray:
        """The cross-encoder's score of each document: the max over its passages."""
        return self._rerank_many([query], [doc_ids])[0].scores

    def _rerank_many(
        self, queries: Sequence[str], doc_ids: Sequence[Sequence[str]]
    ) -> list[_Judged]:
        """Per query, its documents' best passage scores, those passages, and the seconds taken.

        The (query, passage) pairs of all queries go to the judge in one call; each query is
        given its own seconds reading passages plus the call's seconds times its share of the
        pairs.
        """
        if self.reranker is None:
            return [
                _Judged(np.zeros(len(ids), dtype=np.float32), [("", 0)] * len(ids), 0.0)
                for ids in doc_ids
            ]
        tokenizer = self.reranker.tokenizer
        pairs: list[tuple[str, str]] = []
        # per query: each of its pairs' document and passage ordinal, and its seconds so far
        read: list[tuple[list[int], list[int], float]] = []
        for query, ids in zip(queries, doc_ids, strict=True):
            start = time.perf_counter()
            owners, ordinals = [], []
            if ids:
                docs = self.index.get(list(ids))
                query_tokens = len(tokenizer(query, add_special_tokens=False)["input_ids"])
                budget = max(32, self.reranker.max_length - query_tokens - 3)
                for i, doc in enumerate(docs):
                    for ordinal, passage in enumerate(passages_for(doc, tokenizer, budget)):
                        owners.append(i)
                        ordinals.append(ordinal)
                        pairs.append((query, passage))
            read.append((owners, ordinals, time.perf_counter() - start))
        start = time.perf_counter()
        scores = (
            self.reranker.predict(pairs, batch_size=32, show_progress=False)
            if pairs
            else np.zeros(0, dtype=np.float32)
        )
        judge_seconds = time.perf_counter() - start
        out, first = [], 0
        for (owners, ordinals, seconds), ids in zip(read, doc_ids, strict=True):
            mine = scores[first : first + len(owners)]
            texts = [passage for _, passage in pairs[first : first + len(owners)]]
            first += len(owners)
            best = np.full(len(ids), -np.inf, dtype=np.float32)
            np.maximum.at(best, np.array(owners, dtype=np.intp), mine)
            chosen: list[tuple[str, int] | None] = [None] * len(ids)
            for k, owner in enumerate(owners):
                if mine[k] == best[owner] and chosen[owner] is None:
                    chosen[owner] = (texts[k], ordinals[k])
            share = judge_seconds * len(owners) / len(pairs) if pairs else 0.0
            passages = [c if c is not None else ("", 0) for c in chosen]
            out.append(_Judged(best, passages, seconds + share))
        return out

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        rerank: bool = True,
        where: Mapping[str, Any] | Where | None = None,
    ) -> SearchResponse:
        """Run both stages for one query; results best first.

        ``where`` keeps only documents whose metadata matches, e.g. ``{"lang": "en"}``,
        ``{"product": ["cards", "loans"]}`` (any of the values) or ``{"year": {"$gte": 2020},
        "lang": {"$ne": "de"}}`` (see :mod:`sentsim.index_filter`).
        """
        return self.search_many([query], top_k=top_k, rerank=rerank, where=where)[0]

    def search_many(
        self,
        queries: Sequence[str],
        *,
        top_k: int = 10,
        rerank: bool = True,
        where: Mapping[str, Any] | Where | None = None,
    ) -> list[SearchResponse]:
        """Run both stages for several queries, each stage one batch for all of them.

        The queries are encoded and searched together, and the judge scores all their candidates
        in one call: each query's results are those it gets alone (up to the last float32 digits
        of a batch's padding). The first stage keeps ``max(k_retrieve, top_k)`` candidates, so
        ``top_k`` results come back whenever that many documents are found.

        Each response's ``timings`` are its share of the shared steps: ``first_stage`` the
        batch's seconds divided by the number of queries, ``rerank`` its own passage reading plus
        the judge call's seconds times its share of the pairs, ``fetch`` its own.
        """
        if top_k < 0:
            raise ValueError(f"top_k must be ≥ 0, got {top_k}")
        parsed = Where.parse(where)
        start = time.perf_counter()
        # at least top_k candidates: asking for 200 results must not stop at k_retrieve's 100
        depth = max(self.k_retrieve, top_k)
        candidates, matched, dense_passage = self._first_stage(queries, None, parsed, depth)
        first_seconds = (time.perf_counter() - start) / max(1, len(queries))
        use_ce = rerank and self.reranker is not None and self.judge_idle is None
        all_ids = [[d for d, _ in cands] for cands in candidates]
        judgements = self._rerank_many(queries, all_ids) if use_ce else [None] * len(queries)
        responses = []
        for query, cands, ids, judgement, examples, ordinals in zip(
            queries, candidates, all_ids, judgements, matched, dense_passage, strict=True
        ):
            ce = judgement.scores if judgement is not None else None
            if ce is not None:
                final = rerank_fuse([c[1] for c in cands], ce, self.rerank_weight)
                order = np.argsort(-final, kind="stable")
            else:
                final = np.array([c[1] for c in cands], dtype=np.float64)
                order = np.arange(len(ids))
            order = order[:top_k]
            t1 = time.perf_counter()
            docs = {d.id: d for d in self.index.get([ids[i] for i in order])}
            # each document's best passage (text, ordinal): the judge's, else the bi-encoder's
            if judgement is not None:
                best_passage = {ids[i]: judgement.passages[i] for i in order}
            else:
                refs = [(ids[i], ordinals[ids[i]]) for i in order if ids[i] in ordinals]
                best_passage = {d: (t, o) for (d, o), t in self.index.passages(refs).items()}
            results = [
                SearchResult(
                    doc_id=ids[i],
                    title=docs[ids[i]].title,
                    snippet=_snippet(_shown(best_passage.get(ids[i], ("", 0)), docs[ids[i]].text)),
                    first_stage_score=float(cands[i][1]),
                    first_stage_rank=int(i) + 1,
                    rerank_score=float(ce[i]) if ce is not None else None,
                    rank=rank,
                    score=float(final[i]),
                    example=examples.get(ids[i]),
                    metadata=docs[ids[i]].metadata,
                    passage=best_passage.get(ids[i], ("", 0))[0] or None,
                )
                for rank, i in enumerate(order, start=1)
            ]
            timings = {"first_stage": first_seconds}
            if judgement is not None:
                timings["rerank"] = judgement.seconds
            timings["fetch"] = time.perf_counter() - t1
            responses.append(SearchResponse(query, results, timings))
        return responses


class _Judged(NamedTuple):
    """One query's re-ranking: each candidate's best passage score, that passage, the seconds."""

    scores: np.ndarray
    passages: list[tuple[str, int]]  # (text, ordinal) of each candidate's best passage
    seconds: float


def _shown(best: tuple[str, int], opening: str) -> str:
    """The text a result's snippet is cut from.

    Its best passage (text, ordinal) where that is not the document's first, else the
    document's opening (the first passage starts with the title).
    """
    text, ordinal = best
    return text if ordinal > 0 and text else opening


def _snippet(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rsplit(" ", 1)[0] + "…"


def build_index(
    docs: Sequence[Document],
    path: str | Path,
    encoder: BiEncoder,
    *,
    upsert: bool = False,
    batch_docs: int = 256,
    show_progress: bool | None = None,
    ann: str = "auto",
    quantize: str = "none",
) -> Index:
    """Create (or open and extend) an index at ``path`` with ``docs`` encoded by ``encoder``.

    ``ann`` and ``quantize`` are used only when the index is created (see :meth:`Index.create`).
    Documents are committed in batches of ``batch_docs``; without ``upsert``, ids already in the
    index are refused before the first batch, so a clash never leaves part of ``docs`` added.
    """
    from tqdm.auto import tqdm

    identity = encoder_identity(encoder)
    folder = Path(path)
    document_rows(docs)  # a bad or repeated id, an empty text: refused before anything is made
    exists = index_exists(folder)
    raw = encoder.similarity_fn_name is Metric.DOT and not encoder.normalize  # not unit vectors
    if not exists and raw and parse_ann(ann, quantize)[1] is Quantize.SQ8:
        # refused here, not at the first batch past ±1, once earlier batches were committed
        raise ValueError(
            f"quantize='sq8' codes each component in [-1, 1], as unit vectors have them; "
            f"{encoder.name} is a dot-product model, whose vectors keep their lengths (part of "
            "its score): build its index without quantize"
        )
    if exists:
        index = open_index(folder, encoder)
    else:
        index = Index.create(folder, identity, ann=ann, quantize=quantize)
    if exists and not upsert and (clash := index.existing([d.id for d in docs])):
        index.close()
        shown = ", ".join(repr(i) for i in sorted(clash)[:5])
        raise DataError(
            f"{len(clash)} document id(s) already in the index {folder} ({shown}); nothing was "
            "added: upsert them (--upsert, or upsert=True) or delete them first"
        )
    show = len(docs) >= 1000 if show_progress is None else show_progress
    for start in tqdm(
        range(0, len(docs), batch_docs), desc="index", unit="batch", disable=not show
    ):
        batch = list(docs[start : start + batch_docs])
        passages, vectors = encode_documents(batch, encoder)
        index.add(batch, passages, vectors, upsert=upsert)
    return index


def encode_documents(
    docs: Sequence[Document], encoder: BiEncoder
) -> tuple[list[list[str]], np.ndarray]:
    """The passages of each document (:func:`passages_for`) and one vector a passage, in order.

    What :meth:`Index.add` takes for ``docs``: the passages as the index stores and re-ranks
    them, encoded with the model's document prompt as the index searches them
    (:func:`index_vectors`).
    """
    tokenizer = encoder.transformer.tokenizer
    prompt = encoder.document_prompt  # read before each passage: it takes room from the window
    prompt_tokens = len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) if prompt else 0
    max_tokens = max(8, encoder.max_seq_length - 2 - prompt_tokens)
    passages = [passages_for(d, tokenizer, max_tokens) for d in docs]
    flat = [p for ps in passages for p in ps]
    vectors = index_vectors(encoder, encoder.encode_document(flat, show_progress=False))
    return passages, vectors


def cache_key(encoder: BiEncoder) -> str:
    """What a cached index of ``encoder``'s vectors is keyed by: all :func:`open_index` checks.

    The encoder's name, the hash of its vectors and their dimension. Keyed by the weights alone,
    one model named two ways (``DIR`` and ``DIR/``) found the other's cache and was refused it.
    An ``int8`` encoder has caches of its own: its vectors are further from float32's (mean
    cosine 0.985 on STS-B) than bfloat16's (0.99998), which share float32's cache.
    """
    identity = encoder_identity(encoder)
    key = f"{identity.name}\x00{identity.weights_hash}\x00{identity.dim}"
    return key + "\x00int8" if encoder.precision == Precision.INT8 else key


def cached_index(
    docs: Sequence[Document],
    path: Path,
    encoder: BiEncoder,
    *,
    show_progress: bool | None = None,
) -> tuple[Index, bool]:
    """Open the index at ``path`` if it holds exactly ``docs``' count, else (re)build it there.

    Returns the index opened read-only and whether it was built now. A build cut off part way
    (its manifest exists but documents are missing) is removed and built again, never reused.
    """
    import shutil

    identity = encoder_identity(encoder)
    if index_exists(path):
        index = open_index(path, encoder, readonly=True)
        if len(index) == len(docs):
            return index, False
        index.close()
        shutil.rmtree(path)
    build_index(docs, path, encoder, show_progress=show_progress).close()
    return Index.open(path, identity, readonly=True), True
