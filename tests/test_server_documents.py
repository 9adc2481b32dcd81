"""The server's write endpoints: POST /documents, /documents/delete and GET /documents/{id}."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sentsim.bi_encoder import BiEncoder
from sentsim.index import Index
from sentsim.search import build_index
from sentsim.server import SentsimServer, ServeConfig, create_app
from test_server import DOCS, call


@pytest.fixture
def folder(tiny_st_dir: Path, tmp_path: Path) -> Path:
    """A fresh index of :data:`DOCS` by the tiny encoder (each test writes its own)."""
    path = tmp_path / "idx"
    build_index(DOCS, path, BiEncoder.load(tiny_st_dir), show_progress=False).close()
    return path


def start(folder: Path, **config: Any) -> SentsimServer:
    server = create_app(ServeConfig(index=folder, port=0, **config))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop(server: SentsimServer) -> None:
    server.shutdown()
    server.server_close()


@pytest.fixture
def writable(folder: Path) -> Iterator[SentsimServer]:
    server = start(folder, writable=True)
    yield server
    stop(server)


def ids_found(server: SentsimServer, query: str, retriever: str = "bm25") -> list[str]:
    body = {"query": query, "retriever": retriever, "rerank": False, "top_k": 50}
    status, out = call(server, "/search", body)
    assert status == 200, out
    return [r["doc_id"] for r in out["results"]]


def get(server: SentsimServer, doc_id: str) -> tuple[int, dict[str, Any]]:
    return call(server, "/documents/" + urllib.parse.quote(doc_id, safe=""))


def test_add_replace_get_and_delete_round_trip(writable: SentsimServer) -> None:
    """A document added is found by the next search (BM25 and dense) and read back whole; its
    replacement takes its place; once deleted it is neither found nor read."""
    before = call(writable, "/health")[1]
    assert before["writable"] and before["documents"] == len(DOCS)
    new = [
        {"id": "lost/1", "text": "zebra my card was lost", "title": "Lost card",
         "metadata": {"topic": "card", "tags": ["lost", "ünïcode"], "year": 2024}},
        {"id": "cards", "text": "quokka card declined when paying abroad"},  # replaces DOCS[0]
    ]  # fmt: skip
    status, out = call(writable, "/documents", {"documents": new})
    assert status == 200 and out == {"added": ["lost/1"], "replaced": ["cards"]}

    assert ids_found(writable, "zebra") == ["lost/1"]
    assert "lost/1" in ids_found(writable, "lost card", "dense")
    assert ids_found(writable, "quokka") == ["cards"]
    assert get(writable, "lost/1") == (200, {"id": "lost/1", "title": "Lost card", **new[0]})
    replaced = get(writable, "cards")[1]
    assert replaced == {"id": "cards", "title": "", "text": new[1]["text"], "metadata": {}}
    health = call(writable, "/health")[1]
    assert health["documents"] == len(DOCS) + 1
    assert health["generation"] == before["generation"] + 1  # one request, one commit

    status, out = call(writable, "/documents/delete", {"ids": ["lost/1", "ghost", "lost/1"]})
    assert status == 200 and out == {"deleted": ["lost/1"], "not_found": ["ghost"]}
    assert ids_found(writable, "zebra") == []
    assert "lost/1" not in ids_found(writable, "lost card", "dense")
    status, out = get(writable, "lost/1")
    assert status == 404 and out["error"] == 'no document with the id "lost/1"'
    assert call(writable, "/health")[1]["documents"] == len(DOCS)
    # nothing to do is no commit
    assert call(writable, "/documents/delete", {"ids": ["ghost"]})[1]["deleted"] == []
    assert call(writable, "/documents", {"documents": []})[1] == {"added": [], "replaced": []}
    assert call(writable, "/health")[1]["generation"] == before["generation"] + 2


@pytest.mark.parametrize(
    ("path", "item", "message"),
    [
        ("/documents", {"id": 7, "text": "x"}, "'documents' item 1: its 'id' must be a string"),
        ("/documents", {"id": " ", "text": "x"}, "in 'documents', document 1 has an empty id"),
        ("/documents", {"id": "b", "text": " "}, "document 1 (id 'b') has empty text"),
        ("/documents", {"id": "b"}, "'documents' item 1 has no 'text'"),
        ("/documents", {"id": "b", "text": "x", "title": 3}, "item 1: its 'title' must be a str"),
        (
            "/documents",
            {"id": "b", "text": "x", "metadata": [["k", "v"]]},
            "'documents' item 1: its 'metadata' must be an object of field to value",
        ),
        (
            "/documents",
            {"id": "b", "text": "lost \ud83d card"},
            "document 1 (id 'b'): its text holds an unpaired surrogate",
        ),
        (
            "/documents",
            {"id": "b", "text": "x", "metadata": {"k": ["\udc80"]}},
            "document 1 (id 'b'): metadata['k'][0] holds the byte 0x80",
        ),
        ("/documents", {"id": "b\0", "text": "x"}, "its id holds a NUL character"),
        ("/documents", {"id": "a", "text": "x"}, "documents 0 and 1 share the id 'a'"),
        ("/documents", {"id": "b", "text": "x", "body": "y"}, "item 1 has the field 'body'"),
        ("/documents", "b", "'documents' item 1 must be an object"),
        ("/documents/delete", 3, "in 'ids', id 1 is int (3); ids are strings"),
        ("/documents/delete", "", "in 'ids', id 1 ('') is empty"),
        ("/documents/delete", "\ud800", "in 'ids', id 1 ('\\ud800') holds an unpaired"),
    ],
)
def test_a_bad_item_is_named_and_nothing_of_its_request_is_written(
    writable: SentsimServer, path: str, item: object, message: str
) -> None:
    """Item 0 is valid; item 1 is refused by its position and field, and item 0 is not written
    either (nothing was committed: the generation is unchanged)."""
    before = call(writable, "/health")[1]["generation"]
    body = (
        {"documents": [{"id": "a", "text": "zebra valid"}, item]}
        if path == "/documents"
        else {"ids": ["cards", item]}
    )
    status, out = call(writable, path, body)
    assert status == 400 and message in out["error"], out
    assert call(writable, "/health")[1]["generation"] == before
    assert get(writable, "a")[0] == 404 and get(writable, "cards")[0] == 200


def test_a_read_only_server_answers_403_and_a_large_request_413(folder: Path) -> None:
    read_only = start(folder)
    try:
        for path, body in [("/documents", {"documents": []}), ("/documents/delete", {"x": 1})]:
            status, out = call(read_only, path, body)
            assert status == 403, out
            assert "start it with --writable (sentsim serve --index DIR --writable)" in out["error"]
        assert get(read_only, "rates")[1]["title"] == "Exchange rates"  # reading is allowed
        assert not call(read_only, "/health")[1]["writable"]
        status, out = call(read_only, "/documents/a%00b")  # percent-encoded as sent
        assert status == 400 and "the id in the path: id 0 ('a\\x00b') holds a NUL" in out["error"]
        assert call(read_only, "/documents/%ff")[0] == 400  # not UTF-8
    finally:
        stop(read_only)
    small = start(folder, writable=True, max_documents=2)
    try:
        docs = [{"id": f"d{i}", "text": "x"} for i in range(3)]
        status, out = call(small, "/documents", {"documents": docs})
        assert (
            status == 413
            and "'documents' holds 3 documents; this server writes at most 2" in (out["error"])
        )
        status, out = call(small, "/documents/delete", {"ids": ["a", "b", "c"]})
        assert status == 413 and "--max-documents N" in out["error"]
    finally:
        stop(small)


def test_searches_during_writes_see_each_write_whole(writable: SentsimServer) -> None:
    """Threads search while writes replace a group of 4 documents, all with one ``version``, and
    delete it again: every search succeeds and sees the group whole at one version, or not at
    all, never a mix (each write is one transaction; a search reads one snapshot)."""
    group = ["g0", "g1", "g2", "g3"]
    seen: list[tuple[str, ...]] = []
    errors: list[object] = []
    done = threading.Event()

    def search() -> None:
        while not done.is_set():
            for retriever in ("bm25", "dense"):
                body = {"query": "zebra card", "retriever": retriever, "rerank": False}
                status, out = call(writable, "/search", {**body, "top_k": 20})
                if status != 200:
                    errors.append(out)
                    continue
                hits = [r for r in out["results"] if r["doc_id"] in group]
                seen.append(tuple(sorted(f"{r['doc_id']}@{r['metadata']['v']}" for r in hits)))

    threads = [threading.Thread(target=search) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for version in range(6):
            if version % 3 == 2:
                assert call(writable, "/documents/delete", {"ids": group})[0] == 200
                continue
            docs = [
                {"id": i, "text": f"zebra card version {version}", "metadata": {"v": version}}
                for i in group
            ]
            assert call(writable, "/documents", {"documents": docs})[0] == 200
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors and len(seen) >= 6
    assert any(seen), "no search ran while the group existed"
    for hits in seen:
        versions = {hit.split("@")[1] for hit in hits}
        assert len(hits) in (0, len(group)) and len(versions) <= 1, hits
    assert ids_found(writable, "zebra") == []  # the last write deleted the group


WRITER = """
import sys
import numpy as np
from sentsim.index import Document, Index
with Index.open(sys.argv[1], lock_timeout=30) as index:
    vector = np.zeros((1, index.encoder.dim), dtype=np.float32)
    vector[0, 0] = 1.0
    index.add([Document("other", "okapi written by another process")], None, vector)
    print("holding", flush=True)
    sys.stdin.readline()
"""


def test_a_write_waits_for_another_process_writing_or_answers_503(folder: Path) -> None:
    """The server holds the writer lock only while it writes: another process (a Python Index
    here) can write while it runs, and a server write waits for that writer to close, or answers
    503 with nothing written once ``write_timeout`` has passed."""
    server = start(folder, writable=True, write_timeout=30)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    argv = [sys.executable, "-c", WRITER, str(folder)]
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    ) as other:
        try:
            assert other.stdin is not None and other.stdout is not None
            assert other.stdout.readline() == "holding\n"
            answers: list[tuple[int, dict[str, Any]]] = []
            body = {"documents": [{"id": "mine", "text": "wombat written by the server"}]}
            waiting = threading.Thread(
                target=lambda: answers.append(call(server, "/documents", body))
            )
            waiting.start()
            waiting.join(timeout=1.0)
            assert waiting.is_alive() and not answers  # waits for the other writer
            other.stdin.write("\n")
            other.stdin.close()
            waiting.join(timeout=60)
            assert answers == [(200, {"added": ["mine"], "replaced": []})]
            assert other.wait(timeout=60) == 0
        finally:
            if other.poll() is None:
                other.kill()
    assert ids_found(server, "okapi") == ["other"] and ids_found(server, "wombat") == ["mine"]
    stop(server)

    impatient = start(folder, writable=True, write_timeout=0.2)
    try:
        with Index.open(folder):  # this process's own writer: the server's waits on it
            body = {"documents": [{"id": "late", "text": "x"}]}
            status, out = call(impatient, "/documents", body)
        assert status == 503 and "nothing of this request was written: send it" in out["error"]
        assert get(impatient, "late")[0] == 404
        status, out = call(impatient, "/documents/delete", {"ids": ["mine"]})  # lock free again
        assert status == 200 and out["deleted"] == ["mine"]
    finally:
        stop(impatient)


def test_the_cli_writes_beside_a_writable_server(folder: Path, tmp_path: Path) -> None:
    """``sentsim index add`` and ``delete`` (other processes) still write the served index; the
    server's next search and read see their commits, and its own writes go on after them."""
    server = start(folder, writable=True)
    try:
        assert call(server, "/documents", {"documents": [{"id": "s", "text": "emu"}]})[0] == 200
        corpus = tmp_path / "more.jsonl"
        corpus.write_text(json.dumps({"id": "c", "title": "", "text": "kiwi from the cli"}) + "\n")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        cli = [sys.executable, "-m", "sentsim", "index"]
        for argv in (["add", str(corpus)], ["delete", "s"]):
            done = subprocess.run(
                [*cli, *argv, "--index", str(folder)], capture_output=True, text=True, env=env
            )
            assert done.returncode == 0, done.stderr
        assert ids_found(server, "kiwi") == ["c"] and ids_found(server, "emu") == []
        assert get(server, "c")[1]["text"] == "kiwi from the cli"
        status, out = call(server, "/documents", {"documents": [{"id": "c", "text": "kiwi 2"}]})
        assert status == 200 and out == {"added": [], "replaced": ["c"]}
        assert call(server, "/health")[1]["documents"] == len(DOCS) + 1
    finally:
        stop(server)


def test_writable_needs_an_index_it_may_write(
    folder: Path, tiny_st_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sentsim.cli import main

    assert main(["serve", "--writable", "--model", str(tiny_st_dir), "--port", "0"]) == 1
    assert "--writable needs --index DIR" in capsys.readouterr().err
    assert main(["serve", "--index", str(folder), "--max-documents", "0"]) == 1
    assert "--max-documents must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--writable needs --index DIR"):
        create_app(ServeConfig(model=str(tiny_st_dir), port=0, writable=True))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anything")
def test_a_read_only_folder_is_refused_at_start(folder: Path) -> None:
    (folder / "index.sqlite").chmod(0o444)
    try:
        with pytest.raises(ValueError, match="is not writable by this user, and --writable"):
            create_app(ServeConfig(index=folder, port=0, writable=True))
        server = start(folder)  # read-only it still serves
        stop(server)
    finally:
        (folder / "index.sqlite").chmod(0o644)
