"""The HTTP service: started on 127.0.0.1 by the tests, answered over real sockets."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder
from sentsim.index import Document, Index
from sentsim.search import build_index, encoder_identity
from sentsim.server import BadRequest, SentsimServer, ServeConfig, create_app

DOCS = [
    Document(
        "cards", "my card was declined abroad when paying", "Declined card", {"topic": "card"}
    ),
    Document("topup", "top up your account with cash or a card", "Top up", {"topic": "card"}),
    Document(
        "rates", "exchange rate and currency fees for travel", "Exchange rates", {"topic": "fx"}
    ),
]


@pytest.fixture(scope="module")
def served(
    tiny_st_dir: Path, tiny_ce_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SentsimServer]:
    folder = tmp_path_factory.mktemp("served") / "idx"
    build_index(DOCS, folder, BiEncoder.load(tiny_st_dir), show_progress=False).close()
    config = ServeConfig(index=folder, reranker=str(tiny_ce_dir), port=0)
    server = create_app(config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def call(server: SentsimServer, path: str, body: object = None) -> tuple[int, dict[str, Any]]:
    """``POST`` ``body`` as JSON (``GET`` without one); the status and the decoded answer."""
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if data is None else "POST"
    request = urllib.request.Request(server.url + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def send_while_busy(
    server: SentsimServer, requests: list[tuple[str, dict[str, Any]]], queued: int
) -> tuple[list[tuple[int, dict[str, Any]]], dict[str, int]]:
    """Send ``requests`` at once while the model is busy, until ``queued`` of them wait for it;
    each one's status and answer, and the model calls and requests /health counted meanwhile."""
    from test_batching import wait_until

    answers: list[tuple[int, dict[str, Any]]] = [(0, {})] * len(requests)

    def ask(i: int) -> None:
        answers[i] = call(server, *requests[i])

    before = call(server, "/health")[1]["batching"]
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(requests))]
    with server.lock:  # the model is busy: the valid requests queue behind it
        for thread in threads:
            thread.start()
        wait_until(lambda: len(server.batches._queue) == queued)
    for thread in threads:
        thread.join(timeout=30)
    after = call(server, "/health")[1]["batching"]
    return answers, {key: after[key] - before[key] for key in ("calls", "jobs")}


def test_binds_to_localhost_and_reports_health(served: SentsimServer, tiny_st_dir: Path) -> None:
    """Without --model it loads the encoder the index records; 127.0.0.1 unless told otherwise."""
    assert served.server_address[0] == "127.0.0.1"
    status, health = call(served, "/health")
    assert status == 200
    assert health["status"] == "ok" and health["documents"] == len(DOCS)
    assert health["encoder"] == str(tiny_st_dir)
    assert health["precision"] == {"encoder": "fp32", "judge": "fp32"}


def test_encode_and_similarity_agree_with_the_library(
    served: SentsimServer, tiny_st_dir: Path
) -> None:
    texts = ["card declined", "exchange rate"]
    status, out = call(served, "/encode", {"texts": texts})
    assert status == 200 and out["dim"] == served.encoder.dim
    expected = BiEncoder.load(tiny_st_dir).encode(texts)
    np.testing.assert_allclose(np.array(out["vectors"]), expected, atol=1e-5)
    status, sim = call(served, "/similarity", {"a": texts, "b": texts[:1]})
    assert status == 200 and sim["similarity"] == "cosine"
    np.testing.assert_allclose(np.array(sim["scores"]), expected @ expected[:1].T, atol=1e-5)


def test_similarity_of_a_dot_product_model_is_its_dot_product(
    tiny_dot_dir: Path, tmp_path: Path
) -> None:
    """/similarity answered the cosine matrix whatever the model; a dot-product model
    (msmarco-*-dot-*, TAS-B) answers sentence-transformers' ``model.similarity``, its dot
    products, and says which function it used."""
    from sentence_transformers import SentenceTransformer

    server = create_app(ServeConfig(model=str(tiny_dot_dir), port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    texts = ["card declined", "exchange rate abroad", "top up with cash"]
    try:
        status, out = call(server, "/similarity", {"a": texts[:1], "b": texts})
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert status == 200 and out["similarity"] == "dot"
    reference = SentenceTransformer(str(tiny_dot_dir), device="cpu")
    vectors = reference.encode(texts)
    expected = reference.similarity(vectors[:1], vectors).numpy()
    np.testing.assert_allclose(np.array(out["scores"]), expected, rtol=1e-5)
    assert np.abs(expected).max() > 1.5  # dot products, not cosines


def test_score_and_rerank_agree_with_the_judge(served: SentsimServer, tiny_ce_dir: Path) -> None:
    judge = CrossEncoder.load(tiny_ce_dir)
    pairs = [["card declined", "my card was declined"], ["card declined", "exchange rate"]]
    status, out = call(served, "/score", {"pairs": pairs, "symmetric": True})
    assert status == 200
    expected = judge.predict([(a, b) for a, b in pairs], symmetric=True)
    np.testing.assert_allclose(out["scores"], expected, atol=1e-5)
    docs = [d.text for d in DOCS]
    status, ranked = call(
        served, "/rerank", {"query": "card declined", "documents": docs, "top_k": 2}
    )
    assert status == 200
    want = judge.rank("card declined", docs, top_k=2)
    assert [(r["index"], r["rank"]) for r in ranked["results"]] == [(r.index, r.rank) for r in want]


def test_score_answers_a_fused_judge_as_eval_measures_it(
    tiny_st_dir: Path, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """/score with a judge whose folder fuses it (ce-sts) answered the cross-encoder alone, so
    the service's scores were not the ones `sentsim eval sts --cross-encoder` reports."""
    import shutil

    from sentsim.fusion import FusionConfig, load_judge, write_fusion

    judge_dir = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge_dir)
    config = FusionConfig(str(tiny_st_dir), weight=0.25, ce_mean=0.5, ce_std=0.1,
                          bi_mean=0.6, bi_std=0.2, symmetric=True)  # fmt: skip
    write_fusion(judge_dir, config)
    server = create_app(ServeConfig(model=str(tiny_st_dir), reranker=str(judge_dir), port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        pairs = [["card declined", "my card was declined"], ["card declined", "exchange rate"]]
        items = [(a, b) for a, b in pairs]
        status, out = call(server, "/score", {"pairs": pairs})
        assert status == 200 and out["fused"] is True
        np.testing.assert_allclose(
            out["scores"], load_judge(judge_dir).score_pairs(items), atol=1e-5
        )
        alone = CrossEncoder.load(judge_dir)
        status, out = call(server, "/score", {"pairs": pairs, "fused": False})
        assert status == 200 and out["fused"] is False
        np.testing.assert_allclose(out["scores"], alone.predict(items), atol=1e-5)
        status, out = call(server, "/score", {"pairs": pairs, "symmetric": False})
        one_way = load_judge(replace_symmetric(judge_dir, config, tmp_path)).score_pairs(items)
        np.testing.assert_allclose(out["scores"], one_way, atol=1e-5)
        assert call(server, "/health")[1]["fused_with"] == [str(tiny_st_dir)]
        # /rerank ranks by the same fused judge (it ranked by the cross-encoder alone)
        docs = ["my card was declined", "exchange rate", "card declined abroad", "fees"]
        status, out = call(server, "/rerank", {"query": "card declined", "documents": docs})
        want = load_judge(judge_dir).rank("card declined", docs)
        assert status == 200 and out["fused"] is True
        assert [(r["index"], r["rank"]) for r in out["results"]] == [(w.index, w.rank)
                                                                     for w in want]  # fmt: skip
        np.testing.assert_allclose([r["score"] for r in out["results"]], [w.score for w in want],
                                   atol=1e-5)  # fmt: skip
        status, out = call(server, "/rerank", {"query": "card declined", "documents": docs,
                                               "fused": False, "top_k": 2})  # fmt: skip
        want = alone.rank("card declined", docs, top_k=2)
        assert status == 200 and out["fused"] is False
        assert [r["index"] for r in out["results"]] == [w.index for w in want]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_score_of_a_judge_of_several_labels_answers_its_rows(
    tiny_st_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """An NLI judge has no fusion: /score answers predict's class probabilities, as before."""
    nli = CrossEncoder.load(tiny_bert_dir, num_labels=3).save(tmp_path / "nli")
    server = create_app(ServeConfig(model=str(tiny_st_dir), reranker=str(nli), port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, out = call(server, "/score", {"pairs": [["a dog", "a cat"]]})
        assert status == 200 and out["fused"] is False
        expected = CrossEncoder.load(nli).predict([("a dog", "a cat")])
        np.testing.assert_allclose(out["scores"], expected, atol=1e-5)
        status, out = call(server, "/rerank", {"query": "a dog", "documents": ["a cat"]})
        assert status == 400 and "/rerank needs one relevance score: use /score" in out["error"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def replace_symmetric(judge_dir: Path, config: Any, tmp_path: Path) -> Path:
    """A copy of ``judge_dir`` whose fusion reads the cross-encoder in one order only."""
    import shutil
    from dataclasses import replace

    from sentsim.fusion import write_fusion

    copy = tmp_path / "one-way"
    shutil.copytree(judge_dir, copy)
    write_fusion(copy, replace(config, symmetric=False))
    return copy


def test_search_runs_the_pipeline(served: SentsimServer) -> None:
    status, out = call(served, "/search", {"query": "exchange rate currency", "top_k": 2,
                                           "retriever": "bm25", "rerank": False})  # fmt: skip
    assert status == 200 and out["retriever"] == "bm25" and out["reranked"] is False
    assert [r["doc_id"] for r in out["results"]] == ["rates"]  # the only one with those words
    status, judged = call(served, "/search", {"query": "card declined"})
    assert status == 200 and judged["reranked"] is True and judged["note"] is None
    assert all(r["rerank_score"] is not None for r in judged["results"])
    assert len(judged["results"]) == 3
    status, only = call(served, "/search", {"query": "card declined", "where": {"topic": "fx"}})
    assert status == 200 and [r["doc_id"] for r in only["results"]] == ["rates"]
    assert only["results"][0]["metadata"] == {"topic": "fx"}  # where a result came from
    assert only["where"] == {"topic": "fx"} and judged["where"] is None  # as search --json says
    status, none = call(served, "/search", {"query": "card", "where": {"topic": 10**20}})
    assert status == 200 and none["results"] == []  # was 500: OverflowError inside sqlite3
    not_fx = {"topic": {"$ne": "fx"}}
    status, out = call(served, "/search", {"query": "card", "rerank": False, "where": not_fx})
    assert status == 200 and {r["doc_id"] for r in out["results"]} == {"cards", "topup"}
    assert out["where"] == not_fx
    ranged = {"topic": {"$gte": "c", "$lt": "d"}, "year": {"$exists": False}}
    status, out = call(served, "/search", {"query": "card", "rerank": False, "where": ranged})
    assert status == 200 and {r["doc_id"] for r in out["results"]} == {"cards", "topup"}


def test_search_scores_a_cosine_model_without_normalize_by_cosine(
    tiny_paraphrase_dir: Path, tmp_path: Path
) -> None:
    """/search with a paraphrase-* model (cosine, no Normalize) answered dot products of its raw
    vectors; its scores are now sentence-transformers' cosines, as the library's."""
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "idx"
    build_index(DOCS, folder, BiEncoder.load(tiny_paraphrase_dir), show_progress=False).close()
    server = create_app(ServeConfig(index=folder, port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        body = {"query": "card declined", "retriever": "dense", "top_k": 3}
        status, out = call(server, "/search", body)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert status == 200
    reference = SentenceTransformer(str(tiny_paraphrase_dir), device="cpu")
    passages = reference.encode_document([f"{d.title}\n{d.text}" for d in DOCS])
    cosines = reference.similarity(reference.encode_query(["card declined"]), passages)[0]
    expected = {d.id: float(c) for d, c in zip(DOCS, cosines, strict=True)}
    assert {r["doc_id"]: r["score"] for r in out["results"]} == pytest.approx(expected, abs=1e-5)


def test_search_sees_what_a_writer_commits_after_start(
    served: SentsimServer, tiny_st_dir: Path
) -> None:
    """Each search moves to the latest commit: an added document is found, a deleted one gone."""
    encoder = BiEncoder.load(tiny_st_dir)
    new = Document("lost", "zebra quokka lost stolen card", "Lost card")
    query = {"query": "zebra quokka", "retriever": "bm25", "rerank": False}
    with Index.open(served.config.index, encoder_identity(encoder)) as writer:
        writer.add([new], None, encoder.encode([new.text]))
    assert call(served, "/health")[1]["documents"] == len(DOCS) + 1  # before any search too
    assert call(served, "/search", query)[1]["results"][0]["doc_id"] == "lost"
    with Index.open(served.config.index, encoder_identity(encoder)) as writer:
        writer.delete(["lost"])
    assert "lost" not in [r["doc_id"] for r in call(served, "/search", query)[1]["results"]]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/encode", {"texts": "one string"}, 400, "'texts' must be a list of strings"),
        ("/similarity", {"a": ["x"]}, 400, "'b' must be a list of strings"),
        ("/score", {"pairs": [["a", "b"], ["only one"]]}, 400, "'pairs' item 1 is not a"),
        ("/rerank", {"query": " ", "documents": []}, 400, "'query' must be a non-empty string"),
        ("/search", {"query": "x", "top_k": 0}, 400, "'top_k' must be a whole number ≥ 1"),
        (  # the judge would read the whole index: one request could hold the server for hours
            "/search",
            {"query": "x", "top_k": 10**9},
            400,
            "'top_k' is 1000000000; this server answers at most 1000 results a search (start it "
            "with --max-top-k N",
        ),
        (
            "/search",
            {"query": "x", "retriever": "sparse"},
            400,
            "unknown retriever 'sparse'; expected one of: dense, bm25, hybrid",
        ),
        ("/search", [1, 2], 400, "the body must be a JSON object"),
        ("/search", {"query": "x", "where": "topic=fx"}, 400, "'where' must be an object"),
        ("/search", {"query": "x", "where": {"topic": []}}, 400, "where['topic'] is an empty"),
        ("/search", {"query": "x", "rerank": "false"}, 400, "'rerank' must be true or false"),
        ("/search", {"query": "x", "where": {"t": "\udc80"}}, 400, "where['t'] holds the byte"),
        (
            "/search",
            {"query": "x", "where": {"topic": {"$like": "f%"}}},
            400,
            "where['topic'] has the unknown operator '$like'; the operators are $eq, $in, $ne",
        ),
        (
            "/search",
            {"query": "x", "where": {"year": {"$gte": 2020, "min": 1}}},
            400,
            "where['year'] mixes operators with the key 'min'",
        ),
        (
            "/search",
            {"query": "x", "where": {"year": {"$lt": False}}},
            400,
            "where['year']['$lt'] is false; a range bound is a number or a string",
        ),
        ("/search", {"query": "x", "where": {"year": {}}}, 400, "where['year'] is an empty object"),
        ("/score", {"pairs": [["a", "b"]], "symmetric": "no"}, 400, "'symmetric' must be true"),
        ("/encode", {"texts": ["ok", 3]}, 400, "'texts' must be a list of strings; item 1 is 3"),
        # a lone surrogate escape or a NUL: named by the item (a NUL reached the tokenizer, which
        # dropped it, and /search's BM25 split the query at it)
        ("/encode", {"texts": ["ok", "\ud800"]}, 400, "'texts' item 1 holds an unpaired surrogate"),
        ("/encode", {"texts": ["ok", "a\0b"]}, 400, "'texts' item 1 holds a NUL character"),
        ("/similarity", {"a": ["x"], "b": ["y", "\udc80"]}, 400, "'b' item 1 holds the byte"),
        ("/score", {"pairs": [["\udfff", "b"]]}, 400, "'pairs' item 0 (text_a) holds an unpaired"),
        (
            "/score",
            {"pairs": [["a", "b"], ["c", "\0"]]},
            400,
            "'pairs' item 1 (text_b) holds a NUL",
        ),
        ("/rerank", {"query": "x\0", "documents": ["a"]}, 400, "'query' holds a NUL character"),
        ("/rerank", {"query": "x", "documents": ["a", "\ud83d"]}, 400, "'documents' item 1 holds"),
        ("/search", {"query": "card\0declined"}, 400, "'query' holds a NUL character"),
        ("/nowhere", {}, 404, "no POST /nowhere; try /encode"),
        (  # a typo was ignored: the search ran unfiltered
            "/search",
            {"query": "x", "filter": {"topic": "fx"}},
            400,
            "/search takes no field 'filter'; its fields are query, top_k, retriever, rerank",
        ),
        ("/rerank", {"query": "x", "documents": ["a"], "topk": 1}, 400, "no field 'topk'"),
        (  # 4e8 scores as JSON: the server was killed for memory after encoding 40,000 texts
            "/similarity",
            {"a": ["x"] * 20_000, "b": ["y"] * 20_000},
            400,
            "'a' × 'b' is 20000 × 20000 scores; at most 4,000,000 are answered at once",
        ),
        (  # its answer grows with the texts: 4 million one-letter texts fit in a body
            "/encode",
            {"texts": ["x"] * 200_000},
            400,
            "'texts' holds 200,000 texts; at most ",
        ),
    ],
)
def test_bad_requests_name_the_field(
    served: SentsimServer, path: str, body: object, status: int, message: str
) -> None:
    got, out = call(served, path, body)
    assert got == status and message in out["error"]


def test_empty_texts_are_encoded_and_scored(served: SentsimServer) -> None:
    """An empty text is valid where the library takes one: a vector, a score (a query is not)."""
    status, encoded = call(served, "/encode", {"texts": ["", "card"]})
    assert status == 200 and len(encoded["vectors"]) == 2
    status, scored = call(served, "/score", {"pairs": [["", "card"]], "fused": False})
    assert status == 200 and len(scored["scores"]) == 1


def test_body_that_is_not_json_and_unknown_get(served: SentsimServer) -> None:
    request = urllib.request.Request(served.url + "/encode", data=b"{texts: [", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 400 and "not JSON" in json.loads(info.value.read())["error"]
    deep = b"[" * 100_000 + b"]" * 100_000  # the decoder's RecursionError answered 500
    request = urllib.request.Request(served.url + "/encode", data=deep, method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 400 and "too deeply" in json.loads(info.value.read())["error"]
    assert call(served, "/metrics")[0] == 404


def test_head_answers_like_get_without_a_body(served: SentsimServer) -> None:
    """HEAD answered 501 (a load balancer's health check failed): it now has GET's status and
    headers, Content-Length the size of GET's body, and no body; an unknown path is 404."""
    import socket

    def raw(method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        host, port = served.server_address[:2]
        with socket.create_connection((str(host), int(port)), timeout=30) as sock:
            sock.sendall(f"{method} {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):  # HTTP/1.0: the server closes after its answer
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status, *fields = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (f.split(":", 1) for f in fields)}
        return int(status.split()[1]), headers, body

    for path, status in (("/health", 200), ("/metrics", 404), ("/encode", 404)):
        got, headers, body = raw("GET", path)
        head_got, head_headers, head_body = raw("HEAD", path)
        assert (got, head_got) == (status, status)
        assert head_body == b"" and int(head_headers["content-length"]) == len(body) > 0
        assert head_headers["content-type"] == headers["content-type"]


def test_a_negative_content_length_is_refused_not_waited_on(served: SentsimServer) -> None:
    """read(-1) would wait for the client to close the connection: the request would hang."""
    import http.client

    host, port = served.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=30)
    try:
        conn.putrequest("POST", "/encode")
        conn.putheader("Content-Length", "-1")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 400
        assert "Content-Length is -1" in json.loads(response.read())["error"]
    finally:
        conn.close()


def test_a_chunked_body_is_read(served: SentsimServer, tiny_st_dir: Path) -> None:
    """A body sent chunked (curl -T -, requests with a generator) was taken as empty: the answer
    said 'texts' was missing from a request that held it."""
    import http.client
    import socket

    host, port = served.server_address[:2]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=30)
    try:  # an iterable body without a length is sent chunked, here in two chunks
        conn.request("POST", "/encode", body=iter([b'{"texts": ', b'["a dog"]}']))
        response = conn.getresponse()
        assert response.status == 200
        vectors = json.loads(response.read())["vectors"]
    finally:
        conn.close()
    expected = BiEncoder.load(tiny_st_dir).encode(["a dog"])
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    for head, error in [
        ("Transfer-Encoding: chunked\r\n\r\nzz\r\n", "a chunk of the body starts with b'zz"),
        ("Content-Length: ten\r\n\r\n", "Content-Length is 'ten'"),
    ]:
        with socket.create_connection((str(host), int(port)), timeout=30) as raw:
            raw.sendall(f"POST /encode HTTP/1.1\r\nHost: x\r\n{head}".encode())
            answer = raw.makefile("rb").read().decode()
        assert answer.startswith("HTTP/1.0 400") and error in answer


def test_a_failure_inside_answers_500_and_the_server_goes_on(
    served: SentsimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(served.encoder, "encode", broken)
    status, out = call(served, "/encode", {"texts": ["a"]})
    assert status == 500 and out["error"] == "RuntimeError: boom"
    monkeypatch.undo()
    assert call(served, "/encode", {"texts": ["a"]})[0] == 200


def test_a_client_that_leaves_before_its_answer_is_not_an_error(
    served: SentsimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client whose timeout ran out while the model worked left the server writing to a reset
    socket: two tracebacks (the answer's, then the 500's) on the server's terminal per request."""
    import socket
    import struct
    import time

    encode = served.encoder.encode

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)  # the client is gone by the time the answer is written
        return encode(*args, **kwargs)

    errors: list[object] = []
    monkeypatch.setattr(served.encoder, "encode", slow)
    monkeypatch.setattr(served, "handle_error", lambda *args: errors.append(args))
    host, port = served.server_address[:2]
    body = b'{"texts": ["a dog"]}'
    raw = socket.create_connection((str(host), int(port)), timeout=30)
    raw.sendall(
        b"POST /encode HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # linger 0: a reset, as a client's timeout leaves
    time.sleep(1.5)
    monkeypatch.undo()
    assert errors == []
    assert call(served, "/encode", {"texts": ["a"]})[0] == 200


def test_an_ipv6_host_is_served(tiny_st_dir: Path) -> None:
    """--host ::1 said 'Address family for hostname not supported': the server bound IPv4 only."""
    import socket

    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    server = create_app(ServeConfig(model=str(tiny_st_dir), host="::1", port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.url.startswith("http://[::1]:")
        assert call(server, "/health")[1]["status"] == "ok"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_without_index_or_judge_those_endpoints_say_how_to_start(tiny_st_dir: Path) -> None:
    server = create_app(ServeConfig(model=str(tiny_st_dir), port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, out = call(server, "/search", {"query": "card"})
        assert status == 400 and "started without an index (--index DIR)" in out["error"]
        status, out = call(server, "/rerank", {"query": "card", "documents": ["a"]})
        assert status == 400 and "without a cross-encoder (--reranker CE)" in out["error"]
        assert call(server, "/health")[1]["documents"] is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_index_may_be_named_by_a_string(tiny_st_dir: Path, tmp_path: Path) -> None:
    """``ServeConfig(index="idx")``, as ``build_index`` and ``open_index`` take a folder, loads
    the encoder the index records (a ``str`` failed inside with ``TypeError: str / str``)."""
    folder = tmp_path / "idx"
    build_index(DOCS, folder, BiEncoder.load(tiny_st_dir), show_progress=False).close()
    server = create_app(ServeConfig(index=str(folder), port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        health = call(server, "/health")[1]
        assert health["encoder"] == str(tiny_st_dir) and health["index"] == str(folder)
        status, out = call(server, "/search", {"query": "declined", "retriever": "bm25"})
        assert status == 200 and [r["doc_id"] for r in out["results"]] == ["cards"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_silent_connection_is_closed_after_the_idle_timeout(tiny_st_dir: Path) -> None:
    """A client that connected and never spoke (or stopped inside its body) held a thread for
    good; it is now closed after ``idle_timeout`` seconds, a stalled body answered 408."""
    server = create_app(ServeConfig(model=str(tiny_st_dir), port=0, idle_timeout=0.3))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        with socket.create_connection((host, port), timeout=10) as silent:
            assert silent.recv(1024) == b""  # closed by the server, well before 10 s
        with socket.create_connection((host, port), timeout=10) as stalled:
            stalled.sendall(b"POST /encode HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            answer = b""
            while chunk := stalled.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.0 408") and b"no body data for 0.3 s" in answer
        assert call(server, "/health")[0] == 200  # still serving
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_cli_refuses_a_bad_port_and_a_missing_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    from sentsim.cli import main

    assert main(["serve", "--port", "70000", "--no-rerank"]) == 1
    assert "--port must be in 0..65535" in capsys.readouterr().err
    assert main(["serve", "--max-top-k", "0", "--no-rerank"]) == 1
    assert "--max-top-k must be at least 1, got 0" in capsys.readouterr().err
    assert main(["serve", "--idle-timeout", "0", "--no-rerank"]) == 1
    assert "--idle-timeout must be above 0 seconds, got 0.0" in capsys.readouterr().err
    assert main(["serve", "--max-batch", "0", "--no-rerank"]) == 1
    assert "--max-batch must be at least 1, got 0" in capsys.readouterr().err
    argv = ["serve", "--index", str(tmp_path / "none"), "--model", str(tiny_st_dir), "--port", "0"]
    assert main([*argv, "--no-rerank"]) == 1
    assert "none" in capsys.readouterr().err
    # a judge that does not load said 'cannot listen on 127.0.0.1:0: None' (its error is an OSError)
    argv = ["serve", "--model", str(tiny_st_dir), "--reranker", str(tiny_st_dir), "--port", "0"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "is not a cross-encoder" in err and "cannot listen" not in err


def test_sentsim_serve_prints_its_address_answers_and_stops_on_ctrl_c(tiny_st_dir: Path) -> None:
    """The command itself, as a user runs it: a line with the URL, answers, Ctrl-C exits 0."""
    import signal
    import subprocess
    import sys

    # Ctrl-C's handler is installed first: a test run started in the background (`cmd &` in a
    # script) passes SIGINT on ignored, and Python then never turns it into KeyboardInterrupt.
    start = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv = ['sentsim', *sys.argv[1:]]; runpy.run_module('sentsim', run_name='__main__')"
    )
    argv = [sys.executable, "-c", start, "serve", "--model", str(tiny_st_dir), "--no-rerank",
            "--port", "0"]  # fmt: skip
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("sentsim serving on http://127.0.0.1:"), line
            url = line.split()[3]
            with urllib.request.urlopen(url + "/health", timeout=30) as response:
                assert json.loads(response.read())["encoder"] == str(tiny_st_dir)
            process.send_signal(signal.SIGINT)
            try:  # communicate, not wait: a server writing to a full, unread stderr pipe blocks
                _, errors = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                _, errors = process.communicate()
                pytest.fail(f"the server did not stop within 30 s of Ctrl-C; stderr:\n{errors}")
            assert process.returncode == 0, errors
        finally:
            if process.poll() is None:
                process.kill()


def test_closing_does_not_wait_for_a_connection_that_sends_nothing(tiny_st_dir: Path) -> None:
    """A client that opened a connection and sent no request (a browser's preconnect) held the
    close, and so Ctrl-C, until the client left: the request threads are joined on close."""
    import socket

    server = create_app(ServeConfig(model=str(tiny_st_dir), port=0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    idle = socket.create_connection((str(host), int(port)), timeout=30)
    try:
        assert call(server, "/health")[0] == 200  # the idle connection has been accepted
        server.shutdown()
        closing = threading.Thread(target=server.server_close, daemon=True)
        closing.start()
        closing.join(timeout=10)
        assert not closing.is_alive(), "server_close waited for the idle client"
    finally:
        idle.close()
        thread.join(timeout=5)


def test_encode_takes_a_role_that_puts_the_models_prompt_first(
    tiny_st_dir: Path, tmp_path: Path
) -> None:
    """/encode encoded only plain texts: a client could not get the query vectors search compares
    with an E5-style index. ``role`` query / document adds the model's prompt, as ``--as`` does."""
    folder = tmp_path / "e5"
    shutil.copytree(tiny_st_dir, folder)
    prompts = {"query": "query: ", "passage": "passage: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    encoder = BiEncoder.load(folder)
    server = SentsimServer(ServeConfig(port=0), encoder, None)
    try:
        texts = ["card declined", ""]
        for body, expected in [
            ({"texts": texts}, encoder.encode(texts)),
            ({"texts": texts, "role": "text"}, encoder.encode(texts)),
            ({"texts": texts, "role": "query"}, encoder.encode_query(texts)),
            ({"texts": texts, "role": "document"}, encoder.encode_document(texts)),
        ]:
            vectors = np.array(server.answer("/encode", body)["vectors"])
            np.testing.assert_allclose(vectors, expected, atol=1e-6)
        assert not np.allclose(encoder.encode_query(texts), encoder.encode(texts))
        with pytest.raises(BadRequest, match=r"'role' must be text .*, got .passage."):
            server.answer("/encode", {"texts": texts, "role": "passage"})
    finally:
        server.server_close()


def test_requests_waiting_together_are_one_model_call_with_their_own_answers(
    served: SentsimServer, tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """Clients sending a text or a pair each while the model is busy share its next call; each
    gets what it gets alone (a bad one its own 400), and /health counts the calls saved."""
    texts = ["card declined", "exchange rate abroad", "top up with cash", "fees"]
    pairs = [["card declined", "my card was declined"], ["fees", "top up"]]
    requests: list[tuple[str, dict[str, Any]]] = [("/encode", {"texts": [t]}) for t in texts]
    requests += [("/encode", {"texts": texts[:2], "role": "query"})]
    requests += [("/score", {"pairs": [p], "symmetric": True}) for p in pairs]
    requests += [("/similarity", {"a": texts[:1], "b": texts[1:]})]
    requests += [("/score", {"pairs": [["a", "b"]], "symmetric": "yes"})]  # refused on its own
    answers, counted = send_while_busy(served, requests, len(requests) - 1)
    # encode (text), encode (query) and score: three calls for the eight valid requests
    assert counted == {"calls": 3, "jobs": 8}
    assert call(served, "/health")[1]["batching"]["max_batch"] == 256

    encoder, judge = BiEncoder.load(tiny_st_dir), CrossEncoder.load(tiny_ce_dir)
    for (path, body), (status, out) in zip(requests, answers, strict=True):
        if body.get("symmetric") == "yes":
            assert status == 400 and "'symmetric' must be true or false" in out["error"]
            continue
        assert status == 200, out
        if path == "/encode" and "role" in body:
            expected = encoder.encode_query(body["texts"])
            np.testing.assert_allclose(out["vectors"], expected, atol=1e-5)
        elif path == "/encode":
            np.testing.assert_allclose(out["vectors"], encoder.encode(body["texts"]), atol=1e-5)
        elif path == "/score":
            expected = judge.predict([tuple(p) for p in body["pairs"]], symmetric=True)
            np.testing.assert_allclose(out["scores"], expected, atol=1e-5)
        else:
            a, b = encoder.encode(body["a"]), encoder.encode(body["b"])
            np.testing.assert_allclose(out["scores"], a @ b.T, atol=1e-5)


def test_max_batch_one_answers_each_request_alone(tiny_st_dir: Path) -> None:
    from test_batching import wait_until

    server = create_app(ServeConfig(model=str(tiny_st_dir), port=0, max_batch=1))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        asks = [
            threading.Thread(target=call, args=(server, "/encode", {"texts": [f"text {i}"]}))
            for i in range(3)
        ]
        with server.lock:
            for ask in asks:
                ask.start()
            wait_until(lambda: len(server.batches._queue) == 3)
        for ask in asks:
            ask.join(timeout=30)
        assert call(server, "/health")[1]["batching"]["calls"] == 3
    finally:
        server.shutdown()
        server.server_close()


def test_many_clients_connecting_at_once_are_all_answered(tiny_st_dir: Path) -> None:
    """The listen backlog was the standard library's 5: with the server busy (not accepting),
    the sixth client onwards could not connect (reset, or a stall) under a burst of 16."""
    server = create_app(ServeConfig(model=str(tiny_st_dir), port=0))
    host, port = server.server_address[:2]
    clients: list[socket.socket] = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    try:
        for _ in range(32):  # the server accepts nothing yet: each waits in the backlog
            clients.append(socket.create_connection((host, port), timeout=2))
        thread.start()
        for client in clients:
            client.sendall(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n")
        for client in clients:
            assert client.recv(64).startswith(b"HTTP/1.0 200")
    finally:
        for client in clients:
            client.close()
        if thread.is_alive():  # shutdown() waits for a serve_forever that never started
            server.shutdown()
        server.server_close()


def test_searches_waiting_together_share_one_pipeline_call_with_their_own_answers(
    served: SentsimServer,
) -> None:
    """/search was answered one request at a time under the model's lock: concurrent searches
    each paid a query encoding, an index search and a judge call. Searches queued while the model
    is busy now run as one batch per retriever, re-ranking and filter (top_k 1 and 3 share it);
    each answer is what the request gets alone, a bad one is refused alone, and /health counts
    the calls and requests."""
    plain = {"retriever": "dense", "rerank": False}
    requests: list[dict[str, Any]] = [
        {"query": "card declined", **plain, "top_k": 1},
        {"query": "exchange rate abroad", **plain, "top_k": 3},
        {"query": "top up with cash", **plain},
        {"query": "declined", "retriever": "bm25", "rerank": False},
        {"query": "card fees", "retriever": "bm25", "rerank": False},
        {"query": "card", **plain, "where": {"topic": "card"}},
        {"query": "card declined abroad"},  # re-ranked by the judge, the hybrid default
        {"query": "currency exchange"},
        {"query": "card", "where": {"topic": []}},  # refused before it waits for the model
    ]
    searches = [("/search", body) for body in requests]
    answers, counted = send_while_busy(served, searches, len(requests) - 1)
    # dense, bm25, dense with the filter, re-ranked: four calls for the eight valid searches
    assert counted == {"calls": 4, "jobs": 8}

    status, refused = answers[-1]
    assert status == 400 and "where['topic'] is an empty list" in refused["error"]
    for body, (status, out) in zip(requests[:-1], answers[:-1], strict=True):
        assert status == 200, out
        alone_status, alone = call(served, "/search", body)  # sequentially, nothing beside it
        assert alone_status == 200
        assert 0 < len(out["results"]) == len(alone["results"]) <= body.get("top_k", 10)
        assert {k: v for k, v in out.items() if k not in ("results", "timings")} == {
            k: v for k, v in alone.items() if k not in ("results", "timings")
        }
        for got, want in zip(out["results"], alone["results"], strict=True):
            scores = ("score", "first_stage_score", "rerank_score")
            assert {k: v for k, v in got.items() if k not in scores} == {
                k: v for k, v in want.items() if k not in scores
            }
            for key in scores:  # a batch's padding may change the last float32 digits
                assert got[key] == pytest.approx(want[key], abs=1e-5)
        assert set(out["timings"]) == set(alone["timings"])
    judged = [out for body, (_, out) in zip(requests, answers, strict=True) if "rerank" not in body]
    assert all(out["reranked"] and "rerank" in out["timings"] for out in judged[:2])


def test_a_re_ranked_search_counts_its_candidates_toward_max_batch(
    served: SentsimServer,
) -> None:
    """The judge reads up to k_retrieve (100) candidates a search: three such searches with
    ``max_batch`` 256 run as two calls (two, then one), as /rerank's pairs are bounded."""
    queries = ["card declined", "exchange rate", "top up with cash"]
    _, counted = send_while_busy(served, [("/search", {"query": q}) for q in queries], 3)
    assert counted == {"calls": 2, "jobs": 3}


def test_int8_serves_int8_and_health_says_so(
    monkeypatch: pytest.MonkeyPatch, tiny_st_dir: Path, tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """`sentsim --precision int8 serve` answers as the int8 models do, a float32-built index
    included, and /health names each model's precision (it named neither: an operator could not
    tell an int8 server from a float32 one)."""
    folder = tmp_path / "idx"
    build_index(DOCS, folder, BiEncoder.load(tiny_st_dir), show_progress=False).close()
    monkeypatch.setenv("SENTSIM_PRECISION", "int8")
    config = ServeConfig(index=folder, reranker=str(tiny_ce_dir), port=0)
    server = create_app(config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        health = call(server, "/health")[1]
        assert health["precision"] == {"encoder": "int8", "judge": "int8"}
        texts = ["card declined", "top up"]
        status, out = call(server, "/encode", {"texts": texts})
        assert status == 200
        int8 = BiEncoder.load(tiny_st_dir).encode(texts)  # int8 from the environment
        np.testing.assert_allclose(out["vectors"], int8, atol=1e-6)
        pairs = [["card declined", "my card was declined"]]
        status, out = call(server, "/score", {"pairs": pairs})
        judge = CrossEncoder.load(tiny_ce_dir)
        assert status == 200 and judge.precision == "int8"
        np.testing.assert_allclose(out["scores"], judge.predict([tuple(pairs[0])]), atol=1e-6)
        status, out = call(server, "/search", {"query": "card declined", "top_k": 2})
        assert status == 200 and len(out["results"]) == 2
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
