"""sentsim as a local HTTP service: JSON in, JSON out, over the same library calls as the CLI.

    sentsim serve [--index DIR] [--model M] [--reranker CE | --no-rerank] [--port 8765]

Built on the standard library's threading HTTP server (no extra dependency), bound to 127.0.0.1
unless ``--host`` says otherwise. :func:`create_app` loads the models and opens the index; nothing
happens at import. Endpoints (every body and answer a JSON object):

- ``GET /health`` (``HEAD`` too): the encoder, the judge, what each computes in (``precision``)
  and, with an index, its document count.
- ``POST /encode`` ``{"texts": [...], "role"?}``: ``{"dim", "vectors"}``, normalized as the encoder
  says (at most :data:`MAX_SIMILARITY_SCORES` numbers a request); ``role`` ``query`` or
  ``document`` puts the model's query or document prompt first, as search does (default
  ``text``: its default prompt, if any).
- ``POST /similarity`` ``{"a": [...], "b": [...]}``: ``{"scores", "similarity"}``, the matrix
  a × b (at most :data:`MAX_SIMILARITY_SCORES` scores) of the bi-encoder's own similarity function
  (its ``similarity_fn_name``, as sentence-transformers' ``model.similarity``), named in
  ``similarity``: ``cosine``, or ``dot`` for a dot-product model (TAS-B, ``msmarco-*-dot-*``),
  whose scores are not bounded by 1.
- ``POST /score`` ``{"pairs": [[a, b], ...], "symmetric"?, "fused": true}``: ``{"scores", "fused"}``
  of the judge: a judge whose folder fuses it with a bi-encoder (``ce-sts``) answers that fusion,
  as ``sentsim eval sts`` measures it, with its stored ``symmetric``; ``"fused": false``, or a
  judge without a fusion, answers the cross-encoder alone (``symmetric`` default false).
- ``POST /rerank`` ``{"query", "documents": [...], "top_k": null, "fused": true, "symmetric"?}``:
  ``{"results", "fused"}``, the documents best first by the judge's score with the query, the
  same judge ``/score`` answers (``ce-sts``: its fusion; ``ce-rerank``: the cross-encoder, one
  order).
- ``POST /search`` ``{"query", "top_k": 10, "retriever": null, "rerank": true, "where": null}``:
  the index's :class:`~sentsim.search.SearchPipeline`; ``where`` filters by metadata
  (``{"lang": "en", "product": ["cards", "loans"], "year": {"$gte": 2020}, "tier": {"$ne": 3}}``,
  see :mod:`sentsim.index_filter`; a bad filter answers 400 naming its field). Each
  search first moves to the index's latest commit, so documents another process adds or deletes
  are found (or gone) without a restart.
- ``GET /documents/{id}`` (the id percent-encoded): ``{"id", "title", "text", "metadata"}`` of
  the index's latest commit, or 404.

With ``--writable`` (``ServeConfig.writable``), the index can be changed while it is served;
without it these answer 403, naming the flag:

- ``POST /documents`` ``{"documents": [{"id", "text", "title"?, "metadata"?}, ...]}``: adds each
  document, or replaces the one with its id (upsert), as ``sentsim index add --upsert`` would:
  ``{"added": [ids], "replaced": [ids]}``. A request is one transaction: a bad document (named
  by its item and field, 400) leaves nothing of the request written.
- ``POST /documents/delete`` ``{"ids": [...]}``: ``{"deleted": [ids], "not_found": [ids]}``.

A request holds at most ``ServeConfig.max_documents`` documents or ids (413 beyond). Documents
are encoded under the model's lock, batched with other requests' texts; the index is then opened
for writing only while writes are applied (:class:`~sentsim.index_writes.SharedWriter`), so
``sentsim index add``/``delete`` can still write it meanwhile; a write that waits longer than
``ServeConfig.write_timeout`` seconds for such a writer answers 503 with nothing written.
Searches see each write whole or not at all, and the next search after a write's answer sees it.

Bad input answers 400 with ``{"error": "..."}`` naming the field (and the item of a list); an
unknown path 404. A text may be empty where the library takes one (``/encode``, ``/similarity``,
``/score``, ``/rerank``'s documents), a query not; a text holding a lone surrogate (an unpaired
surrogate escape) or a NUL is refused, as everywhere (:func:`~sentsim.base.check_text`). Model
calls are serialised by one lock: on a CPU two at once only share the same cores. Requests that
arrive while the model is busy are answered by one call together when it is free
(:class:`~sentsim.batching.Coalescer`, up to ``ServeConfig.max_batch`` texts or pairs): many
clients sending one text each cost a batch's forward pass, not one pass each. ``/encode``,
``/similarity``, ``/score`` and ``/rerank`` share a call where their role or judge settings match;
``/search`` requests with the same retriever, re-ranking, filter and candidate depth share one
:meth:`~sentsim.search.SearchPipeline.search_many`: one encoding of their queries, one index
search, one judge call over all their candidates (a re-ranked search counts its candidates, not
one text, toward ``max_batch``); ``/documents`` requests share the encoding of their passages
and one opening of the index for writing. ``/health`` counts the calls and requests so combined.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from sentsim.base import check_text
from sentsim.batching import Coalescer
from sentsim.bi_encoder import BiEncoder
from sentsim.choices import Retriever
from sentsim.cross_encoder import CrossEncoder, ranked
from sentsim.errors import IndexLockedError, SentsimError
from sentsim.fusion import CrossEncoderScorer, FusedScorer, judge_scorer
from sentsim.index import Document, Index
from sentsim.index_checks import check_ids, document_rows
from sentsim.index_filter import Where
from sentsim.index_store import CACHE_DIR, DATABASE
from sentsim.index_writes import SharedWriter
from sentsim.search import (
    SearchPipeline,
    SearchResponse,
    encode_documents,
    encoder_identity,
    index_encoder,
    open_index,
)
from sentsim.similarity import similarity

MAX_BODY_BYTES = 16 << 20
# /similarity answers len(a) × len(b) scores: 20,000 short texts a side fit in a body and asked for
# 4e8, gigabytes as JSON, enough to have the server killed for memory; /encode answers len(texts)
# × dim numbers: a body of 4 million one-letter texts asked for 1.5e9
MAX_SIMILARITY_SCORES = 4_000_000
FIELDS = {  # what each POST takes: a mistyped field ("filter", "topk") was silently ignored
    "/encode": ("texts", "role"),
    "/similarity": ("a", "b"),
    "/score": ("pairs", "symmetric", "fused"),
    "/rerank": ("query", "documents", "top_k", "fused", "symmetric"),
    "/search": ("query", "top_k", "retriever", "rerank", "where"),
    "/documents": ("documents",),
    "/documents/delete": ("ids",),
}
WRITES = ("/documents", "/documents/delete")  # answered only by a server started --writable
DOCUMENT_FIELDS = ("id", "text", "title", "metadata")  # what each of /documents' items takes

#: What /encode's texts are: plain texts (the model's default prompt, if any), or queries or
#: documents (its query or document prompt, as search puts before them).
ROLES = ("text", "query", "document")


@dataclass(frozen=True)
class ServeConfig:
    """What to serve: an index (optional), its bi-encoder, a judge (optional), where to listen."""

    index: str | Path | None = None
    model: str | None = None  # default: the encoder the index records, else minilm
    reranker: str | None = None
    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port (tests)
    # /search's top_k bounds how many candidates the judge reads (it re-ranks at least top_k),
    # so an unbounded one lets one request hold the server for as long as the index is large
    max_top_k: int = 1000
    # seconds a connection may stay silent (before a request, or inside its body) before it is
    # closed: each open connection holds a thread, and one that never spoke held it for good
    idle_timeout: float = 60.0
    # texts (or pairs) that one model call may combine from requests waiting together; 1: each
    # request alone
    max_batch: int = 256
    # POST /documents and /documents/delete: off unless asked for (a service exposed read-only
    # must not be writable by whoever reaches its port)
    writable: bool = False
    # documents (or ids) one write request may hold: each document is encoded under the model's
    # lock, which searches wait for
    max_documents: int = 1000
    # seconds a write waits for another process's writer (`sentsim index add`) before its 503
    write_timeout: float = 10.0


class BadRequest(ValueError):
    """A request the client must change; answered with 400 and its message."""


class Refused(Exception):
    """A request answered with ``status`` (403, 413, 503) and the message."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _Searches:
    """What searches must share to run as one batch: they then get what each gets alone.

    ``depth``: the candidates the first stage keeps, ``max(k_retrieve, top_k)``: searches asking
    for 5 and 10 results share it, each cut to its own ``top_k``. Filters are told apart by
    :attr:`Where.key` (``Where`` compares ``True`` equal to ``1``).
    """

    retriever: Retriever
    rerank: bool  # whether the judge was given to the pipeline
    depth: int
    where_key: str | None
    where: Where | None = field(compare=False)


class SentsimServer(ThreadingHTTPServer):
    """The HTTP server with the models it answers from; run it with ``serve_forever()``."""

    # Request threads are joined on close: a Ctrl-C while one runs lets it answer, then exits
    # (daemon threads were torn down inside torch's thread pool: SIGABRT, no reply to the client).
    daemon_threads = False
    block_on_close = True
    # connections the kernel holds until the server accepts them: the standard library's 5 reset
    # or stalled the 6th of 16 clients connecting while a model call held the interpreter
    request_queue_size = 1024

    def __init__(self, config: ServeConfig, encoder: BiEncoder, judge: CrossEncoder | None) -> None:
        self.config = config
        self.encoder = encoder
        self.judge = judge
        # what /score answers; a judge of several labels (NLI) has no fusion, only predict's rows
        fused = judge_scorer(judge) if judge is not None and judge.num_labels == 1 else None
        self.fused = fused if isinstance(fused, FusedScorer) else None
        self.index: Index | None = None
        self.writer: SharedWriter | None = None  # with ServeConfig.writable
        self.lock = threading.Lock()
        self.batches: Coalescer[Any, Any] = Coalescer(
            self._run_batch, self.lock, max_items=config.max_batch
        )
        self._connections: set[socket.socket] = set()  # open client sockets (see server_close)
        if ":" in config.host:  # '::1', '::': the server's default family, IPv4, refused them
            self.address_family = socket.AF_INET6
        super().__init__((config.host, config.port), _Handler)
        try:
            if config.index is not None:
                self.index = open_index(config.index, encoder, readonly=True)
            if config.writable:
                self.writer = _writer(config, encoder)
        except BaseException:
            super().server_close()  # nothing left listening when the index cannot open
            if self.index is not None:
                self.index.close()
            raise

    @property
    def url(self) -> str:
        """``http://host:port`` as bound (the real port when the config asked for 0)."""
        host, port = self.server_address[:2]
        return f"http://[{host!s}]:{port}" if ":" in str(host) else f"http://{host!s}:{port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Answer one connection, known to :meth:`server_close` while it is open."""
        self._connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            self._connections.discard(request)

    def server_close(self) -> None:
        """Stop listening, end connections that wait for a request, and close the index."""
        # The join of request threads below waited for every open connection: one that had not
        # sent its request (a browser's preconnect, a client's pooled socket) held Ctrl-C until
        # the client left. Their reading side is shut; a request being answered still answers.
        for connection in list(self._connections):
            with contextlib.suppress(OSError):  # closed meanwhile
                connection.shutdown(socket.SHUT_RD)
        super().server_close()
        if self.index is not None:
            self.index.close()

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The JSON answer to ``POST path``; :class:`BadRequest` for input the client must fix."""
        if path not in FIELDS:
            raise LookupError(path)
        if path in WRITES:
            self._writer(path)  # a read-only server says so whatever the body holds
        unknown = sorted(set(body) - set(FIELDS[path]))
        if unknown:
            raise BadRequest(
                f"{path} takes no field {unknown[0]!r}; its fields are {', '.join(FIELDS[path])}"
            )
        if path == "/encode":
            texts = _strings(body, "texts")
            if len(texts) * self.encoder.dim > MAX_SIMILARITY_SCORES:
                most = MAX_SIMILARITY_SCORES // self.encoder.dim
                raise BadRequest(
                    f"'texts' holds {len(texts):,} texts; at most {most:,} are encoded a request "
                    f"({self.encoder.dim} numbers each): send them in parts"
                )
            role = body.get("role", "text")
            if role not in ROLES:
                raise BadRequest(
                    f"'role' must be text (the default), query or document, got {json.dumps(role)}"
                )
            vectors = self.batches(("encode", role), texts)
            return {"dim": self.encoder.dim, "vectors": vectors.tolist()}
        if path == "/similarity":
            a, b = _strings(body, "a"), _strings(body, "b")
            if len(a) * len(b) > MAX_SIMILARITY_SCORES:
                raise BadRequest(
                    f"'a' × 'b' is {len(a)} × {len(b)} scores; at most {MAX_SIMILARITY_SCORES:,} "
                    "are answered at once: send fewer texts a request, or /encode them and "
                    "compare the vectors"
                )
            vectors = self.batches(("encode", "text"), a + b)
            metric = self.encoder.similarity_fn_name  # as sentence-transformers' model.similarity
            scores = similarity(vectors[: len(a)], vectors[len(a) :], metric)
            return {"scores": scores.tolist(), "similarity": metric.value}
        if path == "/score":
            self._judge()  # a server without one says so before the pairs are read
            return self._score(body)
        if path == "/rerank":
            return self._rerank(body)
        if path == "/search":
            return self._search(body)
        if path == "/documents":
            return self._upsert(body)
        if path == "/documents/delete":
            return self._delete(body)
        raise LookupError(path)

    def _writer(self, path: str) -> SharedWriter:
        if self.index is None:
            raise BadRequest("this server was started without an index (--index DIR)")
        if self.writer is None:
            raise Refused(
                HTTPStatus.FORBIDDEN,
                f"POST {path} changes the index, and this server serves it read-only: start it "
                "with --writable (sentsim serve --index DIR --writable)",
            )
        return self.writer

    def _upsert(self, body: dict[str, Any]) -> dict[str, Any]:
        """Encode the documents (under the model's lock, in batches) and upsert them, or none."""
        writer = self._writer("/documents")
        docs = _documents(body, self.config.max_documents)
        passages: list[list[str]] = []
        vectors = [np.empty((0, self.encoder.dim), dtype=np.float32)]
        step = self.config.max_batch  # searches waiting meanwhile run between the parts
        for start in range(0, len(docs), step):
            for texts, rows in self.batches(("documents",), docs[start : start + step]):
                passages.append(texts)
                vectors.append(rows)
        with _when_locked(writer):
            return asdict(writer.upsert(docs, passages, np.concatenate(vectors)))

    def _delete(self, body: dict[str, Any]) -> dict[str, Any]:
        writer = self._writer("/documents/delete")
        ids = _ids(body, self.config.max_documents)
        with _when_locked(writer):
            return asdict(writer.delete(ids))

    def document(self, doc_id: str) -> dict[str, Any] | None:
        """The document ``doc_id`` of the index's latest commit, as JSON; None if it has none."""
        if self.index is None:
            raise BadRequest("this server was started without an index (--index DIR)")
        try:
            check_ids([doc_id])
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"the id in the path: {exc}") from None
        with self.lock:  # as /search does; not between a search's stages
            self.index.refresh()
            try:
                doc = self.index.get([doc_id])[0]
            except KeyError:
                return None
        return {"id": doc.id, "title": doc.title, "text": doc.text, "metadata": doc.metadata}

    def _score(self, body: dict[str, Any]) -> dict[str, Any]:
        """The judge's scores, fused with its bi-encoder(s) where its folder says so.

        As ``sentsim eval sts --cross-encoder`` measures it, unless the body says
        ``"fused": false``.
        """
        pairs = _pairs(body)
        fused, symmetric = self._judged_as(body)
        scores = self.batches(("score", fused, symmetric), pairs)
        return {"scores": scores.tolist(), "fused": fused}

    def _rerank(self, body: dict[str, Any]) -> dict[str, Any]:
        """``documents`` best first by the judge /score answers (its fusion, where it has one)."""
        judge = self._judge()
        query, top_k = _text(body, "query"), _top_k(body, None)
        docs = _strings(body, "documents")
        if judge.num_labels != 1:
            raise BadRequest(
                f"the judge {judge.name} has {judge.num_labels} outputs ({', '.join(judge.labels)})"
                "; /rerank needs one relevance score: use /score for its class probabilities"
            )
        fused, symmetric = self._judged_as(body)
        scores = self.batches(("score", fused, symmetric), [(query, d) for d in docs])
        results = ranked(docs, scores, top_k) if docs else []
        return {"results": [asdict(r) for r in results], "fused": fused}

    def _judged_as(self, body: dict[str, Any]) -> tuple[bool, bool]:
        """Whether a request's pairs get the fusion, and both orders: its fields, else the judge's.

        The fusion's stored ``symmetric`` where it is used (as ``sentsim eval`` measures it), one
        order for the cross-encoder alone.
        """
        fused = _flag(body, "fused", True) and self.fused is not None
        default = self.fused.judge.symmetric if fused and self.fused is not None else False
        return fused, _flag(body, "symmetric", default)

    def _run_batch(
        self, key: tuple[Any, ...] | _Searches, items: list[Any]
    ) -> np.ndarray | list[SearchResponse] | list[tuple[list[str], np.ndarray]]:
        """One model call for the texts or pairs of requests batched together (holding the lock).

        ``key``: ``("encode", role)`` or ``("score", fused, symmetric)``: an array of rows;
        :class:`_Searches`: a list of :class:`SearchResponse`; ``("documents",)``: each
        :class:`Document`'s passages and their vectors, as :meth:`Index.add` takes them.
        """
        if isinstance(key, _Searches):
            return self._run_searches(key, items)
        if key[0] == "documents":
            passages, vectors = encode_documents(items, self.encoder)
            ends = np.cumsum([len(p) for p in passages])
            return [(p, vectors[end - len(p) : end]) for p, end in zip(passages, ends, strict=True)]
        if key[0] == "encode":  # as `sentsim encode --as`: vectors to compare with an index's
            encoder = self.encoder  # need the prompts
            encode = {"query": encoder.encode_query, "document": encoder.encode_document}.get(
                key[1], encoder.encode
            )
            return encode(items, show_progress=False)
        _, fused, symmetric = key
        judge = self._judge()
        if not fused or self.fused is None:
            return judge.predict(items, symmetric=symmetric, show_progress=False)
        judged = CrossEncoderScorer(judge, symmetric=symmetric)
        scorer = FusedScorer(judged, self.fused.bi, self.fused.config, self.fused.extra)
        return scorer.score_pairs(items)

    def _judge(self) -> CrossEncoder:
        if self.judge is None:
            raise BadRequest("this server was started without a cross-encoder (--reranker CE)")
        return self.judge

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.index is None:
            raise BadRequest("this server was started without an index (--index DIR)")
        query, top_k = _text(body, "query"), _top_k(body, 10) or 10
        if top_k > self.config.max_top_k:
            raise BadRequest(
                f"'top_k' is {top_k}; this server answers at most {self.config.max_top_k} "
                "results a search (start it with --max-top-k N to allow more)"
            )
        retriever = body.get("retriever")  # SearchPipeline names the valid ones if it is not
        rerank = _flag(body, "rerank", True) and self.judge is not None
        where = body.get("where")
        if where is not None and not isinstance(where, dict):
            raise BadRequest(
                "'where' must be an object of field to value, list or operators, got "
                f"{json.dumps(where)}"
            )
        pipeline = SearchPipeline(
            self.index, self.encoder, self.judge if rerank else None, retriever=retriever
        )
        parsed = Where.parse(where)  # a bad filter fails its own request, before it is queued
        depth = max(pipeline.k_retrieve, top_k)
        batch = _Searches(
            pipeline.retriever, rerank, depth, parsed.key if parsed is not None else None, parsed
        )
        judged = pipeline.reranker is not None and pipeline.judge_idle is None
        response: SearchResponse = self.batches(
            batch, [(query, top_k)], size=depth if judged else 1
        )[0]
        return {
            "query": response.query,
            "retriever": pipeline.retriever.value,
            "where": where or None,  # as `sentsim search --json` reports it
            "reranked": judged,
            "note": pipeline.judge_idle,  # why a judge that was asked for did not run, if so
            "results": [asdict(r) for r in response.results],
            "timings": response.timings,
        }

    def _run_searches(self, batch: _Searches, items: list[tuple[str, int]]) -> list[SearchResponse]:
        """The searches of ``items`` (query, top_k), as one batch (holding the lock)."""
        assert self.index is not None  # _search refused the request otherwise
        self.index.refresh()  # the latest commit of whoever writes the index
        pipeline = SearchPipeline(
            self.index,
            self.encoder,
            self.judge if batch.rerank else None,
            retriever=batch.retriever,
        )
        # every top_k here is at most depth, so the pipeline keeps depth candidates for each
        most = max(top_k for _, top_k in items)
        responses = pipeline.search_many([q for q, _ in items], top_k=most, where=batch.where)
        return [
            replace(response, results=response.results[:top_k])
            for response, (_, top_k) in zip(responses, items, strict=True)
        ]

    def health(self) -> dict[str, Any]:
        """What this server answers with; the document count of the index's latest commit."""
        documents = generation = None
        if self.index is not None:
            with self.lock:
                self.index.refresh()  # as /search does: another process may have written
                info = self.index.info()
            documents, generation = info.documents, info.generation
        return {
            "status": "ok",
            "encoder": self.encoder.name,
            "judge": self.judge.name if self.judge is not None else None,
            "fused_with": self.fused.config.bi_encoders if self.fused is not None else None,
            # what each model computes in (--precision, $SENTSIM_PRECISION); a fusion's
            # bi-encoders compute in the judge's
            "precision": {
                "encoder": self.encoder.precision.value,
                "judge": self.judge.precision.value if self.judge is not None else None,
            },
            "index": str(self.config.index) if self.config.index is not None else None,
            "documents": documents,
            "generation": generation,  # commits to the index so far (any writer's)
            "writable": self.writer is not None,
            "batching": {"max_batch": self.config.max_batch, **asdict(self.batches.stats)},
            # openings of the index for writing (calls) and the write requests they applied
            "writes": asdict(self.writer.stats) if self.writer is not None else None,
        }


class _Handler(BaseHTTPRequestHandler):
    server: SentsimServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.config.idle_timeout)  # the base class's: none

    def do_GET(self) -> None:
        self._send(*self._get())

    def do_HEAD(self) -> None:
        """GET's status and headers without its body (was 501: a load balancer's check failed)."""
        self._send(*self._get(), body=False)

    def _get(self) -> tuple[HTTPStatus, dict[str, Any]]:
        if self.path == "/health":
            return HTTPStatus.OK, self.server.health()
        path = self.path.split("?", 1)[0]
        if path.startswith("/documents/"):
            try:
                doc_id = urllib.parse.unquote(path[len("/documents/") :], errors="strict")
                found = self.server.document(doc_id)
            except UnicodeDecodeError:
                error = "the id in the path is not percent-encoded UTF-8"
                return HTTPStatus.BAD_REQUEST, {"error": error}
            except BadRequest as exc:
                return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
            except Exception as exc:  # a bug: answer it rather than drop the connection
                return HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"}
            if found is None:
                shown = json.dumps(doc_id, ensure_ascii=False)
                return HTTPStatus.NOT_FOUND, {"error": f"no document with the id {shown}"}
            return HTTPStatus.OK, found
        error = f"no GET {self.path}; try GET /health or GET /documents/{{id}}"
        return HTTPStatus.NOT_FOUND, {"error": error}

    def do_POST(self) -> None:
        try:
            body = self._body()
            self._send(HTTPStatus.OK, self.server.answer(self.path, body))
        except TimeoutError:  # the body stopped arriving (the request line's wait is the base's)
            wait = self.server.config.idle_timeout
            self._send(HTTPStatus.REQUEST_TIMEOUT, {"error": f"no body data for {wait:g} s"})
            self.close_connection = True
        except LookupError:
            paths = ", ".join(FIELDS)
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no POST {self.path}; try {paths}"})
        except Refused as exc:
            self._send(exc.status, {"error": str(exc)})
        except (BadRequest, SentsimError, TypeError, ValueError) as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except Exception as exc:  # a bug: answer it rather than drop the connection
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}"})

    def _body(self) -> dict[str, Any]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raw = self._read_chunked()  # was read as no body: "'texts' must be a list"
        else:
            given = self.headers.get("Content-Length") or "0"
            try:
                length = int(given)
            except ValueError:
                raise BadRequest(
                    f"Content-Length is {given!r}; it must be the body's size in bytes"
                ) from None
            if length < 0:
                raise BadRequest(f"Content-Length is {length}; it must be the body's size in bytes")
            if length > MAX_BODY_BYTES:
                raise BadRequest(f"the body has {length} bytes; at most {MAX_BODY_BYTES} are read")
            raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"the body is not JSON: {exc}") from None
        except RecursionError:  # '[' * 100_000: valid JSON too deep for the decoder, not a bug
            raise BadRequest("the body nests arrays or objects too deeply to be read") from None
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        return body

    def _read_chunked(self) -> bytes:
        """A body sent with ``Transfer-Encoding: chunked`` (curl -T -, a generator in requests)."""
        data = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0], 16)  # a chunk's size in hex, maybe ";extension"
            except ValueError:
                size = -1
            if size < 0:
                raise BadRequest(f"a chunk of the body starts with {line[:40]!r}, not its size")
            if size == 0:
                break
            if len(data) + size > MAX_BODY_BYTES:
                raise BadRequest(f"the body has over {MAX_BODY_BYTES} bytes; at most that are read")
            data += self.rfile.read(size)
            self.rfile.readline(1024)  # the line end after the chunk
        while self.rfile.readline(1024).strip():  # trailer fields, up to the blank line
            pass
        return bytes(data)

    def _send(self, status: HTTPStatus, value: dict[str, Any], *, body: bool = True) -> None:
        """Answer ``value`` as JSON; ``body=False`` (HEAD) sends the headers only."""
        data = json.dumps(value, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)
        except (ConnectionError, TimeoutError):  # the client gave up or stopped reading
            self.close_connection = True  # (was two tracebacks on the server's terminal)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line a request would drown the CLI's own output."""


def _strings(body: dict[str, Any], field: str) -> list[str]:
    value = body.get(field)
    if not isinstance(value, list):
        raise BadRequest(f"'{field}' must be a list of strings")
    for i, text in enumerate(value):
        if not isinstance(text, str):
            shown = json.dumps(text)
            shown = shown if len(shown) <= 40 else shown[:40] + "..."
            raise BadRequest(f"'{field}' must be a list of strings; item {i} is {shown}")
    return [_valid(t, f"'{field}' item {i}") for i, t in enumerate(value)]


def _text(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"'{field}' must be a non-empty string")
    return _valid(value, f"'{field}'")


def _valid(text: str, what: str) -> str:
    """``text``, unless :func:`~sentsim.base.check_text` refuses it (named as ``what``)."""
    try:
        return check_text(text, what)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _shown(value: object) -> str:
    shown = json.dumps(value)
    return shown if len(shown) <= 40 else shown[:40] + "..."


def _capped_list(body: dict[str, Any], field: str, items: str, most: int, verb: str) -> list[Any]:
    """``body[field]``, a list of ``items``, and at most ``most`` of them (else 400 / 413)."""
    value = body.get(field)
    if not isinstance(value, list):
        raise BadRequest(f"{field!r} must be a list of {items}")
    if len(value) > most:
        raise Refused(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{field!r} holds {len(value):,} {field}; this server {verb} at most {most:,} a "
            "request: send them in parts (or start it with --max-documents N)",
        )
    return value


def _documents(body: dict[str, Any], most: int) -> list[Document]:
    """``body["documents"]`` as documents, checked as :meth:`Index.add` checks them."""
    shape = "objects with id, text, title?, metadata?"
    value = _capped_list(body, "documents", shape, most, "writes")
    docs = []
    for i, item in enumerate(value):
        where = f"'documents' item {i}"
        if not isinstance(item, dict):
            raise BadRequest(
                f"{where} must be an object with id, text, title?, metadata?, got {_shown(item)}"
            )
        unknown = sorted(set(item) - set(DOCUMENT_FIELDS))
        if unknown:
            raise BadRequest(
                f"{where} has the field {unknown[0]!r}; a document's fields are "
                f"{', '.join(DOCUMENT_FIELDS)} (other fields go in its metadata)"
            )
        missing = [name for name in ("id", "text") if name not in item]
        if missing:
            raise BadRequest(f"{where} has no {missing[0]!r}")
        title = "" if item.get("title") is None else item["title"]  # null: none
        metadata = {} if item.get("metadata") is None else item["metadata"]
        for name, got in (("id", item["id"]), ("text", item["text"]), ("title", title)):
            if not isinstance(got, str):
                raise BadRequest(f"{where}: its {name!r} must be a string, got {_shown(got)}")
        if not isinstance(metadata, dict):
            raise BadRequest(
                f"{where}: its 'metadata' must be an object of field to value, got "
                f"{_shown(metadata)}"
            )
        docs.append(Document(item["id"], item["text"], title, metadata))
    try:
        document_rows(docs)  # empty id or text, repeated id, a lone surrogate, NaN
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"in 'documents', {exc}") from None
    return docs


def _ids(body: dict[str, Any], most: int) -> list[str]:
    value = _capped_list(body, "ids", "document ids (strings)", most, "deletes")
    try:
        return check_ids(value)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"in 'ids', {exc}") from None


@contextlib.contextmanager
def _when_locked(writer: SharedWriter) -> Iterator[None]:
    """Answer 503 when another process held the index for writing past the server's wait."""
    try:
        yield
    except IndexLockedError:
        raise Refused(
            HTTPStatus.SERVICE_UNAVAILABLE,
            f"{writer.path} stayed open for writing by another process (`sentsim index add`, "
            f"say) for {writer.lock_timeout:g} s, and an index takes one writer at a time; "
            "nothing of this request was written: send it again",
        ) from None


def _writer(config: ServeConfig, encoder: BiEncoder) -> SharedWriter:
    """The writer of a ``--writable`` server, once its index is known to be writable here."""
    if config.index is None:
        raise ValueError("--writable needs --index DIR: the index that the documents go to")
    folder = Path(config.index)
    for path in (folder, folder / DATABASE, folder / CACHE_DIR):
        if path.exists() and not os.access(path, os.W_OK):
            raise ValueError(
                f"{path} is not writable by this user, and --writable writes there: serve it "
                "without --writable, or as a user who may write it"
            )
    return SharedWriter(
        folder,
        encoder_identity(encoder),
        lock_timeout=config.write_timeout,
        max_items=config.max_batch,
    )


def _flag(body: dict[str, Any], field: str, default: bool) -> bool:
    value = body.get(field, default)
    if not isinstance(value, bool):
        raise BadRequest(f"'{field}' must be true or false, got {json.dumps(value)}")
    return value


def _pairs(body: dict[str, Any]) -> list[tuple[str, str]]:
    value = body.get("pairs")
    if not isinstance(value, list):
        raise BadRequest("'pairs' must be a list of [text, text] pairs")
    for i, pair in enumerate(value):
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)
        ):
            raise BadRequest(f"'pairs' item {i} is not a [text, text] pair")
    return [
        (_valid(a, f"'pairs' item {i} (text_a)"), _valid(b, f"'pairs' item {i} (text_b)"))
        for i, (a, b) in enumerate(value)
    ]


def _top_k(body: dict[str, Any], default: int | None) -> int | None:
    value = body.get("top_k", default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise BadRequest(f"'top_k' must be a whole number ≥ 1, got {value!r}")
    return value


def create_app(config: ServeConfig) -> SentsimServer:
    """Load the models, open the index (read-only) and bind the socket.

    Serving starts with ``serve_forever()`` on the returned server; ``server_close()`` ends it.
    """
    if config.index is not None:  # the encoder the index records, as `sentsim search` does
        encoder = index_encoder(config.index, config.model)
    else:
        encoder = BiEncoder.load(config.model or "minilm")
    judge = CrossEncoder.load(config.reranker) if config.reranker else None
    return SentsimServer(config, encoder, judge)
