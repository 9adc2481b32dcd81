"""``sentsim eval retrieval`` end to end on a tiny BEIR folder, tiny models and a temp cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sentsim.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DOCS = {
    "d1": ("Card declined abroad", "Your card may be refused in another country."),
    "d2": ("Top up by bank transfer", "Add money to your account with a transfer."),
    "d3": ("Lost card", "Freeze a lost or stolen card in the app."),
    "d4": ("Exchange rates", "We convert currency at the rate of the day."),
}
QUERIES = {"q1": "my card is refused abroad", "q2": "how to add money", "q3": "stolen card"}
QRELS = [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d3", 1)]


def _beir(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as handle:
        for doc_id, (title, text) in DOCS.items():
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as handle:
        for qid, text in QUERIES.items():
            handle.write(json.dumps({"_id": qid, "text": text}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in QRELS]
    (root / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def beir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny BEIR folder, with sentsim's cache in the test's temporary folder."""
    monkeypatch.setenv("SENTSIM_CACHE", str(tmp_path / "cache"))
    return _beir(tmp_path / "beir")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["eval", "retrieval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_sweep_ends_match_the_first_stage_and_the_judge_alone(
    beir: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """w=0 ranks exactly as the first stage; w=1 is the judge alone (the default weight)."""
    common = ["--data", str(beir), "--model", str(tiny_st_dir), "--retriever", "dense"]
    first = _run(capsys, *common)
    judged = _run(capsys, *common, "--rerank", str(tiny_ce_dir), "--sweep", "0,1")
    sweep = judged["sweep"]
    assert isinstance(sweep, dict)
    for metric in ("ndcg@10", "mrr@10", "accuracy@1"):
        assert sweep["first stage"][metric] == first[metric]
        assert sweep["w=0"][metric] == first[metric]
        assert sweep["w=1"][metric] == judged[metric]
    assert judged["queries"] == 3


def test_eval_fuses_at_the_judges_stored_weight_unless_told(
    beir: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path, tiny_ce_dir: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    """A judge's sentsim_config.json weight is eval's default, as it is search's."""
    judge = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge)
    config = judge / "sentsim_config.json"
    stored = json.loads(config.read_text()) if config.exists() else {}
    config.write_text(json.dumps({**stored, "rerank_weight": 0.0}))
    common = ["--data", str(beir), "--model", str(tiny_st_dir), "--retriever", "dense"]
    first = _run(capsys, *common)
    kept = _run(capsys, *common, "--rerank", str(judge))
    assert kept["rerank_weight"] == 0.0
    assert kept["ndcg@10"] == first["ndcg@10"] and kept["mrr@10"] == first["mrr@10"]
    alone = _run(capsys, *common, "--rerank", str(judge), "--rerank-weight", "1", "--sweep", "0")
    assert alone["rerank_weight"] == 1.0
    assert alone["sweep"]["w=0"]["ndcg@10"] == first["ndcg@10"]


def test_rerank_progress_bar_shows_when_asked_and_hides_with_no_progress(
    beir: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """A long re-ranked evaluation draws a bar per query on stderr; ``--no-progress`` draws none
    (neither for the re-ranking nor for building the corpus index)."""
    from sentsim.bi_encoder import BiEncoder
    from sentsim.cross_encoder import CrossEncoder
    from sentsim.evaluation.retrieval import load_beir
    from sentsim.evaluation.retrieval_eval import evaluate_retrieval

    data = load_beir(beir, "test")
    encoder, judge = BiEncoder.load(tiny_st_dir), CrossEncoder.load(tiny_ce_dir)
    shown = evaluate_retrieval(data, encoder, reranker=judge, show_progress=True)
    assert "re-rank" in capsys.readouterr().err
    hidden = evaluate_retrieval(data, encoder, reranker=judge, show_progress=False)
    assert capsys.readouterr().err == ""
    assert shown.metrics == hidden.metrics
    args = ["--data", str(beir), "--model", str(tiny_st_dir), "--rerank", str(tiny_ce_dir)]
    assert main(["eval", "retrieval", *args, "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_metrics_deeper_than_k_retrieve_are_marked_in_the_output_and_the_json(
    beir: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """With --k-retrieve 2, "R@100" was the recall of 2 candidates, printed and stored as if it
    were Recall@100; it is now marked with a footnote, and the JSON names it."""
    common = ["--data", str(beir), "--model", str(tiny_st_dir)]
    full = _run(capsys, *common)
    assert full["capped_metrics"] == []
    assert main(["eval", "retrieval", *common, "--k-retrieve", "2", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    shallow = json.loads(lines[-1])
    assert shallow["k_retrieve"] == 2
    assert shallow["capped_metrics"] == ["ndcg@10", "mrr@10", "recall@100", "map@100"]
    summary, footnote = lines[-3:-1]
    assert "nDCG@10* " in summary and "R@100* " in summary and "Acc@1 " in summary
    assert footnote.startswith("* nDCG@10, MRR@10, R@100 and MAP@100 counted only the 2 ")
    assert "give --k-retrieve 100 or more" in footnote
    # 20 candidates of a 4-document corpus are every document: nothing was cut
    assert _run(capsys, *common, "--k-retrieve", "20")["capped_metrics"] == []


def test_sweep_without_a_reranker_is_a_one_line_error(
    beir: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    status = main(
        ["eval", "retrieval", "--data", str(beir), "--model", str(tiny_st_dir), "--sweep", "0.5"]
    )
    assert status == 1
    assert "--sweep needs --rerank" in capsys.readouterr().err


def test_weights_for_a_reranker_are_checked_before_the_run(
    beir: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """A bad --sweep was found only after every query was searched and re-ranked (minutes on a
    real data set), with "could not convert string to float"; --rerank-weight without --rerank
    was ignored and recorded in the JSON as the weight used. A model that does not exist shows
    the check comes before anything is loaded."""
    common = ["eval", "retrieval", "--data", str(beir), "--model", str(tiny_st_dir)]
    nowhere = [*common[:-1], str(beir / "no-model"), "--rerank", str(tiny_ce_dir)]
    assert main([*nowhere, "--sweep", "0.5,abc"]) == 1
    assert "--sweep 0.5,abc: 'abc' is not a number" in capsys.readouterr().err
    assert main([*nowhere, "--sweep", "0.5,"]) == 1
    assert "--sweep 0.5,: '' is not a number" in capsys.readouterr().err
    assert main([*common[:-1], str(beir / "no-model"), "--rerank-weight", "0.5"]) == 1
    assert "--rerank-weight needs --rerank" in capsys.readouterr().err
    assert _run(capsys, *common[2:])["rerank_weight"] is None


def test_cached_index_rebuilds_a_build_that_was_cut_off(tmp_path: Path, tiny_st_dir: Path) -> None:
    """An index holding fewer documents than the corpus (a cut-off build) is never reused."""
    from sentsim.bi_encoder import BiEncoder
    from sentsim.index import Document
    from sentsim.search import build_index, cached_index

    encoder = BiEncoder.load(tiny_st_dir)
    docs = [Document(d, text, title) for d, (title, text) in DOCS.items()]
    build_index(docs[:2], tmp_path / "idx", encoder).close()  # as if killed after 2 documents
    index, built = cached_index(docs, tmp_path / "idx", encoder)
    assert built and len(index) == len(docs)
    index.close()
    index, built = cached_index(docs, tmp_path / "idx", encoder)
    assert not built and len(index) == len(docs)
    index.close()


def test_example_queries_file_steers_the_dense_ranking(
    beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """``--examples FILE``: each query is an example; at weight 0 its answer comes first."""
    common = ["--data", str(beir), "--model", str(tiny_st_dir), "--retriever", "dense"]
    for answers, accuracy in (({"q1": "d1", "q2": "d2", "q3": "d3"}, 100.0), ({}, 0.0)):
        examples = tmp_path / f"examples-{accuracy:g}.jsonl"
        rows = [
            {"id": f"e{q}", "text": text, "answer": answers.get(q, "d4")}
            for q, text in QUERIES.items()
        ]
        examples.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out = _run(capsys, *common, "--examples", str(examples), "--example-weight", "0")
        assert out["accuracy@1"] == accuracy and out["example_weight"] == 0.0


# -- sentsim index / sentsim search ------------------------------------------------------------


def _corpus(path: Path, docs: dict[str, tuple[str, str]]) -> Path:
    rows = [{"id": d, "title": title, "text": text} for d, (title, text) in docs.items()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _search(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert main(["search", *args, "--no-rerank", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return [r["doc_id"] for r in out["results"]]


def test_index_add_needs_an_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped folder is an error, not a new index holding only the added documents."""
    corpus = _corpus(tmp_path / "a.jsonl", dict(list(DOCS.items())[:1]))
    assert main(["index", "add", str(corpus), "--index", str(tmp_path / "typo")]) == 1
    assert "holds no index to add to; make one with `sentsim index build" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists()
    with pytest.raises(SystemExit):  # was taken and ignored: the index keeps its build's kind
        main(["index", "add", str(corpus), "--index", str(tmp_path / "idx"), "--ann", "hnsw"])
    assert "unrecognized arguments: --ann hnsw" in capsys.readouterr().err


def test_index_build_quantize(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """``--quantize sq8`` makes an 8-bit HNSW graph that `index info` reports and search uses;
    a wrong value is refused before the corpus is read, and `index add` does not take it."""
    corpus = _corpus(tmp_path / "c.jsonl", DOCS)
    idx = str(tmp_path / "idx")
    build = ["index", "build", str(corpus), "--index", idx, "--model", str(tiny_st_dir)]
    with pytest.raises(SystemExit):  # named as the option, not the Python quantize='pq'
        main([*build, "--quantize", "pq", "--ann", "hnsw"])
    assert "argument --quantize: invalid choice: 'pq'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*build, "--ann", "ivf"])
    assert "argument --ann: invalid choice: 'ivf'" in capsys.readouterr().err
    assert not (tmp_path / "idx").exists()
    assert main([*build, "--quantize", "sq8", "--ann", "hnsw"]) == 0
    capsys.readouterr()
    assert main(["index", "info", "--index", idx, "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (info["ann"], info["quantize"]) == ("hnsw", "sq8")
    query = next(iter(DOCS.values()))[1]
    assert _search(capsys, "--index", idx, query, "--top-k", "1") == [next(iter(DOCS))]
    with pytest.raises(SystemExit):
        main(["index", "add", str(corpus), "--index", idx, "--quantize", "sq8"])
    assert "unrecognized arguments: --quantize sq8" in capsys.readouterr().err


def test_search_and_add_default_to_the_indexs_own_encoder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """Without --model, search and add load the encoder the index records, not minilm; an
    encoder that cannot be found from here is named, with what to pass."""
    idx = str(tmp_path / "idx")
    first = dict(list(DOCS.items())[:3])
    assert main(["index", "build", str(_corpus(tmp_path / "a.jsonl", first)), "--index", idx,
                 "--model", str(tiny_st_dir), "--no-progress"]) == 0  # fmt: skip
    rest = _corpus(tmp_path / "b.jsonl", {"d4": DOCS["d4"]})
    assert main(["index", "add", str(rest), "--index", idx, "--no-progress"]) == 0
    assert set(_search(capsys, "card", "--index", idx, "--retriever", "dense")) == set(DOCS)
    manifest = tmp_path / "idx" / "manifest.json"
    stored = json.loads(manifest.read_text())
    stored["encoder"]["name"] = "gone/model-dir"
    manifest.write_text(json.dumps(stored))
    assert main(["search", "card", "--index", idx, "--no-rerank"]) == 1
    err = capsys.readouterr().err
    assert "built with the encoder 'gone/model-dir'" in err and "pass --model" in err


def test_search_takes_the_retriever_the_encoder_stores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """Without --retriever: the encoder folder's sentsim_config.json choice, else hybrid; dense
    with --examples; an explicit --retriever wins; a bad stored value is a load error."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_st_dir, model)
    idx = str(tmp_path / "idx")
    assert main(["index", "build", str(_corpus(tmp_path / "a.jsonl", DOCS)), "--index", idx,
                 "--model", str(model), "--no-progress"]) == 0  # fmt: skip

    def retriever(*extra: str) -> str:
        assert main(["search", "card", "--index", idx, "--no-rerank", "--json", *extra]) == 0
        return str(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["retriever"])

    assert retriever() == "hybrid"
    (model / "sentsim_config.json").write_text('{"retriever": "bm25"}')
    assert retriever() == "bm25"
    assert retriever("--retriever", "dense") == "dense"
    (model / "sentsim_config.json").write_text('{"retriever": "sparse"}')
    assert main(["search", "card", "--index", idx, "--no-rerank"]) == 1
    err = capsys.readouterr().err
    expected = "unknown retriever 'sparse'; expected one of: dense, bm25, hybrid"
    assert f"sentsim_config.json: {expected}" in err
    (model / "sentsim_config.json").write_text('["bm25"]')  # was read as no choice: hybrid
    assert main(["search", "card", "--index", idx, "--no-rerank"]) == 1
    assert "sentsim_config.json must hold a JSON object of settings; found list" in (
        capsys.readouterr().err
    )


def test_index_and_search_commands_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """build, info, add, delete and search (dense, BM25, example queries) through the CLI."""
    idx, model = str(tmp_path / "idx"), str(tiny_st_dir)
    first = dict(list(DOCS.items())[:3])
    assert main(["index", "build", str(_corpus(tmp_path / "a.jsonl", first)), "--index", idx,
                 "--model", model, "--no-progress"]) == 0  # fmt: skip
    rest = {"d4": DOCS["d4"]}
    assert main(["index", "add", str(_corpus(tmp_path / "b.jsonl", rest)), "--index", idx,
                 "--model", model, "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["index", "info", "--index", idx, "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["documents"] == 4
    common = ["--index", idx, "--model", model]
    assert _search(capsys, "exchange rates currency", *common, "--retriever", "bm25")[0] == "d4"
    assert set(_search(capsys, "card", *common, "--retriever", "dense")) == set(DOCS)
    ex = str(tmp_path / "ex")
    examples = tmp_path / "ex.jsonl"
    examples.write_text(json.dumps({"id": "e1", "text": "zebra quokka", "answer": "d2"}) + "\n")
    assert main(["index", "build", str(examples), "--index", ex, "--model", model,
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    steered = ["zebra quokka", *common, "--examples", ex, "--example-weight", "0"]
    assert _search(capsys, *steered)[0] == "d2"  # dense is implied by --examples
    assert main(["index", "delete", "d2", "nope", "--index", idx]) == 0
    assert "deleted 1 of 2 ids; not in the index: 'nope'" in capsys.readouterr().out
    assert "d2" not in _search(capsys, *steered)
    assert main(["search", *steered, "--retriever", "bm25", "--no-rerank"]) == 1
    assert "dense retriever" in capsys.readouterr().err
    # the default re-ranker is the shipped ce-rerank: every result carries its score
    assert main(["search", "card", *common, "--top-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(out["results"]) == 2
    assert all(r["rerank_score"] is not None for r in out["results"])
    # at weight 0 the judge scores but the first stage's order stands
    assert main(["search", "card", *common, "--rerank-weight", "0", "--json"]) == 0
    judged = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert [r["first_stage_rank"] for r in judged] == list(range(1, len(judged) + 1))
    assert main(["search", "card", *common, "--rerank-weight", "1.5"]) == 1
    assert "rerank_weight" in capsys.readouterr().err
    assert main(["search", "card", *common, "--no-rerank", "--rerank-weight", "0.3"]) == 1
    assert "--rerank-weight has no effect with --no-rerank" in capsys.readouterr().err


def test_a_second_writer_from_the_command_line_is_told_to_wait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """Another process writing the index: the message says what a command-line user can do.

    It offered only readonly=True and lock_timeout=SECONDS, which no command takes.
    """
    idx = tmp_path / "idx"
    assert main(["index", "build", str(_corpus(tmp_path / "a.jsonl", DOCS)), "--index", str(idx),
                 "--model", str(tiny_st_dir), "--no-progress"]) == 0  # fmt: skip
    hold = (
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
        "fcntl.flock(fd, fcntl.LOCK_EX); os.pwrite(fd, f'{os.getpid()}\\n'.encode(), 0); "
        "print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(idx / "writer.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        capsys.readouterr()
        assert main(["index", "delete", "d1", "--index", str(idx)]) == 1
        err = capsys.readouterr().err
        assert f"by another process (pid {holder.pid})" in err
        assert "run this again once that one has finished" in err
    finally:
        holder.communicate(timeout=30)  # its stdin closes: it exits and the lock is free
    assert main(["index", "delete", "d1", "--index", str(idx)]) == 0


def test_index_delete_refuses_an_id_no_document_can_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """``index delete d1 ""`` deleted d1 and called '' "not in the index"; a byte that is not
    UTF-8 (``$'d\\xe9'``) was quietly not found. Now nothing is deleted and the id is named.
    """
    idx = str(tmp_path / "idx")
    assert main(["index", "build", str(_corpus(tmp_path / "a.jsonl", DOCS)), "--index", idx,
                 "--model", str(tiny_st_dir), "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["index", "delete", "d1", "", "--index", idx]) == 1
    assert "sentsim: error: id 1 ('') is empty" in capsys.readouterr().err
    assert main(["index", "delete", "d\udce9", "--index", idx]) == 1
    assert "id 0 ('d\\udce9') holds the byte 0xe9, which is not UTF-8" in capsys.readouterr().err
    assert main(["index", "info", "--index", idx, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["documents"] == len(DOCS)


def test_search_without_a_shipped_judge_says_how_to_go_on(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tiny_st_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A package without ce-rerank: the default re-ranked search is one clear error."""
    import sentsim.models

    idx, model = str(tmp_path / "idx"), str(tiny_st_dir)
    assert main(["index", "build", str(_corpus(tmp_path / "a.jsonl", DOCS)), "--index", idx,
                 "--model", model, "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    shipped = [n for n in sentsim.models.builtin_names() if n != "ce-rerank"]
    monkeypatch.setattr(sentsim.models, "builtin_names", lambda: shipped)
    assert main(["search", "card", "--index", idx, "--model", model]) == 1
    assert "--no-rerank" in capsys.readouterr().err


def test_index_build_refuses_duplicate_ids_and_an_existing_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    corpus = tmp_path / "dup.jsonl"
    corpus.write_text('{"id": "a", "text": "one"}\n{"id": "a", "text": "two"}\n')
    idx = str(tmp_path / "idx")
    args = ["index", "build", str(corpus), "--index", idx, "--model", str(tiny_st_dir)]
    assert main(args) == 1
    assert "'a' appears twice" in capsys.readouterr().err
    assert not (tmp_path / "idx").exists()  # nothing made: the fixed corpus can be built there
    assert main([*args, "--upsert", "--no-progress"]) == 0
    assert main([*args, "--upsert"]) == 1
    assert "already holds an index" in capsys.readouterr().err


def test_helpcenter_eval_takes_labelled_questions_of_your_own(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tiny_st_dir: Path,
) -> None:
    """Questions from another source, labelled by intent or by article id, are the queries."""
    monkeypatch.setenv("SENTSIM_CACHE", str(tmp_path / "cache"))
    own = tmp_path / "questions.csv"
    own.write_text(
        "text,category\n"
        "tracking a card that hasn't arrived,card_arrival\n"
        "how our exchange rates work,exchange_rate\n"
        "how our exchange rates work,card_arrival\n"
    )
    per_query = tmp_path / "perq.json"
    args = ["eval", "helpcenter", "--questions", str(own), "--retriever", "bm25"]
    assert main([*args, "--model", str(tiny_st_dir), "--per-query", str(per_query), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["queries"] == 3
    hits = [row["accuracy@1"] for row in json.loads(per_query.read_text()).values()]
    assert hits == [1.0, 1.0, 0.0]  # a question that is its article's title is found first
    assert main([*args, "--model", str(tiny_st_dir), "--sample", "0"]) == 1
    assert "--sample must be at least 1 question, got 0" in capsys.readouterr().err

    rows = tmp_path / "questions.jsonl"
    rows.write_text(
        json.dumps({"text": "ordering a metal card", "article": "metal-card"})
        + "\n"
        + json.dumps({"text": "where is my card", "intent": "card_arival"})
        + "\n"
    )
    assert main([*args[:-2], "--questions", str(rows), "--model", str(tiny_st_dir)]) == 1
    err = capsys.readouterr().err
    assert f"{rows}, line 2: unknown intent 'card_arival'" in err


def test_helpcenter_eval_labels_a_sample_only_when_it_samples(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tiny_st_dir: Path,
) -> None:
    """--sample 5 of 3 questions used all three, and the report said "-sample5"."""
    monkeypatch.setenv("SENTSIM_CACHE", str(tmp_path / "cache"))
    own = tmp_path / "questions.csv"
    own.write_text(
        "text,category\n"
        "tracking a card that hasn't arrived,card_arrival\n"
        "how our exchange rates work,exchange_rate\n"
        "my card never came,card_arrival\n"
    )
    args = ["eval", "helpcenter", "--questions", str(own), "--retriever", "bm25", "--json"]
    for sample, label, queries in ((5, "helpcenter/questions.csv", 3), (2, "-sample2", 2)):
        assert main([*args, "--model", str(tiny_st_dir), "--sample", str(sample)]) == 0
        captured = capsys.readouterr()
        out = json.loads(captured.out.strip().splitlines()[-1])
        assert out["data"].endswith(label) and out["queries"] == queries
        noted = "--sample 5 is more than the 3 questions; all of them are used" in captured.err
        assert noted == (sample == 5)


def test_read_questions_maps_intents_and_names_the_bad_line(tmp_path: Path) -> None:
    from sentsim.errors import DataError
    from sentsim.helpcenter import intent_articles, read_questions

    good = tmp_path / "q.jsonl"
    good.write_text(
        '{"text": "card never came", "intent": "card_arrival"}\n\n'
        '{"text": "metal card?", "article": "metal-card"}\n'
    )
    assert read_questions(good) == [
        ("card never came", intent_articles()["card_arrival"]),
        ("metal card?", "metal-card"),
    ]
    for body, problem in (
        ("text,category\n,card_arrival\n", "line 2: no question in field 'text'"),
        ("text,category\nwhere is it,\n", "line 2: no label"),
        ("text,article\nwhere is it,no-such-article\n", "line 2: unknown article"),
        ("text,category\n", "no questions"),
        ("sentence,category\nwhere is it,card_arrival\n", "line 1: header needs 'text'"),
        ('text,category\n"two\nlines",card_arrival\n,card_arrival\n', "line 4: no question"),
    ):
        bad = tmp_path / "bad.csv"
        bad.write_text(body)
        with pytest.raises(DataError, match=problem):
            read_questions(bad)
    with pytest.raises(DataError, match="no such file"):
        read_questions(tmp_path / "missing.csv")


def test_read_questions_takes_the_usual_other_names(tmp_path: Path) -> None:
    """Tab-separated whatever the suffix; question/query/utterance and label columns; an intent
    written with capitals and spaces ("Card arrival") is Banking77's card_arrival."""
    from sentsim.helpcenter import intent_articles, read_questions

    path = tmp_path / "tickets.txt"
    path.write_text("Question\tLabel\nwhere is my card\tCard arrival\nrate?\texchange-rate\n")
    intents = intent_articles()
    assert read_questions(path) == [
        ("where is my card", intents["card_arrival"]),
        ("rate?", intents["exchange_rate"]),
    ]


def test_tab_separated_questions_keep_every_line_whatever_quotes_they_hold(tmp_path: Path) -> None:
    """Read with CSV quoting, a question opening with an unbalanced quote swallowed the lines up to
    the next quote: those questions were never evaluated, and nothing said so."""
    from sentsim.helpcenter import intent_articles, read_questions

    path = tmp_path / "tickets.tsv"
    path.write_text(
        'text\tintent\n"my card\tcard_arrival\nrate?\texchange_rate\n'
        '"why" was I charged\tcard_payment_fee_charged\n'
    )
    intents = intent_articles()
    assert read_questions(path) == [
        ('"my card', intents["card_arrival"]),
        ("rate?", intents["exchange_rate"]),
        ('"why" was I charged', intents["card_payment_fee_charged"]),
    ]


def test_nothing_to_evaluate_is_one_line_and_outputs_go_where_asked(
    beir: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path, tmp_path: Path
) -> None:
    """A header-only qrels, or --queries naming nothing judged, was a ZeroDivisionError after
    the corpus was encoded; --run into a missing folder was a traceback after the whole run."""
    common = ["eval", "retrieval", "--data", str(beir), "--model", str(tiny_st_dir)]
    run = tmp_path / "new" / "deeper" / "run.txt"
    assert main([*common, "--retriever", "bm25", "--run", str(run)]) == 0
    assert run.read_text().count(" Q0 ") > 0
    assert main([*common, "--run", str(tmp_path)]) == 1
    assert "is a folder; give a file name" in capsys.readouterr().err
    # two outputs into one file: the second written replaced the first without a word
    assert main([*common, "--run", str(run), "--per-query", str(run.parent / "." / run.name)]) == 1
    assert f"--run and --per-query both name {run}" in capsys.readouterr().err
    assert run.read_text().count(" Q0 ") > 0  # refused before anything was written
    wanted = tmp_path / "wanted.txt"
    wanted.write_text("q-unknown\n")
    assert main([*common, "--queries", str(wanted)]) == 1
    assert "--queries names 1 queries without judgments" in capsys.readouterr().err
    wanted.write_text("")
    assert main([*common, "--queries", str(wanted)]) == 1
    assert "no judgment for the queries --queries names" in capsys.readouterr().err
    qrels = (beir / "qrels" / "test.tsv").read_text()
    (beir / "qrels" / "test.tsv").write_text(qrels + "q1\tnot-in-corpus\t1\n")
    assert main([*common, "--retriever", "bm25"]) == 0
    assert "note: the qrels judge 1 document(s) relevant that the corpus lacks (ids not-in" in (
        capsys.readouterr().err
    )
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    assert main(common) == 1
    assert "test.tsv: no judgment for any query; nothing can be evaluated" in (
        capsys.readouterr().err
    )


def test_fusion_and_sweep_weights_outside_0_1_are_refused_and_recorded(
    beir: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """--hybrid-weight 5 and --sweep -3 printed metrics as if they were settings."""
    common = ["eval", "retrieval", "--data", str(beir), "--model", str(tiny_st_dir)]
    hybrid = [*common, "--retriever", "hybrid", "--hybrid", "minmax"]
    assert main([*hybrid, "--hybrid-weight", "5"]) == 1
    assert "hybrid_weight must be in 0..1, got 5" in capsys.readouterr().err
    assert main([*hybrid, "--hybrid-weight", "nan"]) == 1
    assert "hybrid_weight must be in 0..1, got nan" in capsys.readouterr().err
    out = _run(capsys, *hybrid[2:], "--hybrid-weight", "0.3")
    assert (out["hybrid"], out["hybrid_weight"]) == ("minmax", 0.3)
    sweep = [*common, "--retriever", "dense", "--rerank", str(tiny_ce_dir), "--sweep", "0,-3,nan"]
    assert main(sweep) == 1
    assert "--sweep weights must be in 0..1, got -3.0, nan" in capsys.readouterr().err


def test_search_takes_the_hybrid_fusion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """min-max fusion with all weight on the dense list ranks as dense does; bad weights fail."""
    idx = str(tmp_path / "idx")
    assert main(["index", "build", str(_corpus(tmp_path / "a.jsonl", DOCS)), "--index", idx,
                 "--model", str(tiny_st_dir), "--no-progress"]) == 0  # fmt: skip

    def order(*extra: str) -> list[str]:
        assert main(["search", "card abroad", "--index", idx, "--no-rerank", "--json", *extra]) == 0
        found = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
        return [r["doc_id"] for r in found]

    dense = order("--retriever", "dense")
    assert main(["search", "card", "--index", idx, "--no-rerank", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["reranked"] is False and answer["note"] is None  # the server's fields too
    assert order("--retriever", "hybrid", "--hybrid", "minmax", "--hybrid-weight", "1") == dense
    assert main(["search", "card", "--index", idx, "--retriever", "hybrid", "--hybrid",
                 "minmax", "--hybrid-weight", "5", "--no-rerank"]) == 1  # fmt: skip
    assert "hybrid_weight must be in 0..1, got 5" in capsys.readouterr().err
    ignored = {  # each was taken and changed nothing
        ("--retriever", "dense", "--hybrid-weight", "0"): "the retriever here is dense",
        ("--retriever", "bm25", "--hybrid", "minmax"): "add --retriever hybrid or drop --hybrid",
        ("--retriever", "hybrid", "--hybrid-weight", "0.3"): "add --hybrid minmax",
        ("--example-weight", "0.5"): "--example-weight weighs the --examples scores",
    }
    for extra, message in ignored.items():
        assert main(["search", "card", "--index", idx, "--no-rerank", *extra]) == 1
        assert message in capsys.readouterr().err


def test_search_where_filters_by_metadata_from_jsonl_and_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """``--where FIELD=VALUE``: a JSONL number and a CSV's text both match ``year=2024``;
    repeated fields all apply, a repeated field takes any value; a bad item is one clear error."""
    rows = [
        {"id": "a", "text": "card declined abroad", "year": 2024, "lang": "en"},
        {"id": "b", "text": "card declined at home", "year": 2023, "lang": "en"},
        {"id": "c", "text": "carte refusée", "year": 2024, "lang": "fr"},
    ]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    csv_file = tmp_path / "b.csv"
    csv_file.write_text("id,text,year,lang,région\nd,card lost abroad,2024,de,Bayern\n")
    idx = str(tmp_path / "idx")
    assert main(["index", "build", str(jsonl), "--index", idx, "--model", str(tiny_st_dir),
                 "--no-progress"]) == 0  # fmt: skip
    assert main(["index", "add", str(csv_file), "--index", idx, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["index", "info", "--index", idx, "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["metadata_fields"] == {"lang": 4, "year": 4, "région": 1}  # for --where
    assert main(["index", "info", "--index", idx]) == 0
    assert '"région": 1' in capsys.readouterr().out  # was "r\u00e9gion", not what --where takes
    common = ["card", "--index", idx, "--retriever", "dense"]
    assert sorted(_search(capsys, *common)) == ["a", "b", "c", "d"]
    assert sorted(_search(capsys, *common, "--where", "year=2024")) == ["a", "c", "d"]
    both = ["--where", "year=2024", "--where", "lang=en"]
    assert _search(capsys, *common, *both) == ["a"]
    either = ["--where", "lang=fr", "--where", "lang=de"]
    assert sorted(_search(capsys, *common, *either)) == ["c", "d"]
    assert _search(capsys, *common, "--where", "lang=xx") == []
    assert main(["search", *common, "--no-rerank", "--where", "lnag=en"]) == 0  # a typo
    assert "no document has the metadata field 'lnag'; the index's fields: lang, year" in (
        capsys.readouterr().err
    )
    assert main(["search", *common, "--no-rerank", "--json", "--where", "lang=en"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["where"] == {"lang": ["en"]}
    assert main(["search", *common, "--no-rerank", "--where", "lang"]) == 1
    assert "--where 'lang' is not FIELD=VALUE" in capsys.readouterr().err
    # comparisons: a bound that spells a number compares with numbers (the CSV's "2024" is text)
    assert _search(capsys, *common, "--where", "year<2024") == ["b"]
    assert sorted(_search(capsys, *common, "--where", "year>=2023")) == ["a", "b", "c"]
    assert _search(capsys, *common, "--where", 'year>="2024"') == ["d"]  # quoted: as text
    assert sorted(_search(capsys, *common, "--where", "lang!=en")) == ["c", "d"]
    assert _search(capsys, *common, "--where", "lang!=en", "--where", "lang!=fr") == ["d"]
    assert _search(capsys, *common, "--where", "year!=2024") == ["b"]  # neither 2024 nor "2024"
    assert main(["search", *common, "--no-rerank", "--json", "--where", "year>2023",
                 "--where", "lang!=fr"]) == 0  # fmt: skip
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["where"] == {"year": {"$gt": 2023}, "lang": {"$nin": ["fr"]}}
    assert [r["doc_id"] for r in answer["results"]] == ["a"]
    for items, message in (
        (["year>="], "--where 'year>=' has no bound"),
        (["year>=2020", "year<x"], "where['year'] has a number bound and a string bound"),
    ):
        assert main(["search", *common, "--no-rerank", *(f"--where={i}" for i in items)]) == 1
        assert message in capsys.readouterr().err


def test_search_queries_file_writes_one_json_line_per_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """``--queries FILE``: text lines (ids by line) or BEIR JSONL; each line of the output equals
    the single-query search's answer, in file order; bad files are named by line."""
    idx = str(tmp_path / "idx")
    assert main(["index", "build", str(_corpus(tmp_path / "a.jsonl", DOCS)), "--index", idx,
                 "--model", str(tiny_st_dir), "--no-progress"]) == 0  # fmt: skip
    texts = ["card declined abroad", "exchange rates currency", "zebra"]
    lines = tmp_path / "q.txt"
    lines.write_text(f"{texts[0]}\n\n{texts[1]}\r\n{texts[2]}")
    beir = tmp_path / "queries.jsonl"
    beir.write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    named_json = tmp_path / "queries.json"  # was read as text: each JSON line was a query
    named_json.write_text(beir.read_text())
    common = [
        "--index",
        idx,
        "--retriever",
        "dense",
        "--no-rerank",
        "--no-progress",
        "--top-k",
        "3",
    ]
    capsys.readouterr()
    for path, ids in (
        (lines, ["1", "3", "4"]),
        (beir, ["q0", "q1", "q2"]),
        (named_json, ["q0", "q1", "q2"]),
    ):
        out = tmp_path / f"{path.stem}.out.jsonl"
        assert main(["search", "--queries", str(path), "--out", str(out), *common]) == 0
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r["id"] for r in rows] == ids and [r["query"] for r in rows] == texts
        for row, text in zip(rows, texts, strict=True):
            assert main(["search", text, *common, "--json"]) == 0
            single = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            assert [r["doc_id"] for r in row["results"]] == [r["doc_id"] for r in single["results"]]
            assert row["retriever"] == "dense" and row["reranked"] is False
    assert main(["search", "--queries", str(lines), *common]) == 0  # no --out: stdout
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    bad = {
        "dup.jsonl": (
            '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n',
            "line 2: query id 'a' is also on line 1",
        ),
        "blank.jsonl": ('{"id": "a", "text": " "}\n', "line 1: the query is empty"),
        "notext.jsonl": (
            '{"id": "a", "title": "x"}\n',
            "line 1: expected an object with a string 'text'",
        ),
        "empty.txt": ("\n\n", "holds no queries"),
        "q.csv": ("id,text\n1,card\n", "a CSV file is not read here"),  # was 3 queries
    }
    for name, (content, message) in bad.items():
        (tmp_path / name).write_text(content)
        assert main(["search", "--queries", str(tmp_path / name), *common]) == 1
        assert message in capsys.readouterr().err
    assert main(["search", "card", "--queries", str(lines), *common]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(["search", "card", "--out", str(tmp_path / "x.jsonl"), *common]) == 1
    assert "--out writes the results of --queries" in capsys.readouterr().err
    same = ["search", "--queries", str(lines), "--out", str(tmp_path / "." / "q.txt"), *common]
    assert main(same) == 1  # the queries were overwritten by their results
    assert "is the --queries file; write the results elsewhere" in capsys.readouterr().err
    assert lines.read_text().startswith(texts[0])


def test_build_upsert_counts_repeated_ids_and_judge_options_exclude_each_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """``--upsert`` over a file repeating an id said "(2 read)" of 3 rows; ``--reranker`` with
    ``--no-rerank`` was accepted and the judge silently not run."""
    corpus = tmp_path / "a.jsonl"
    rows = [("a", "card one"), ("b", "card two"), ("a", "card three")]
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows))
    idx = str(tmp_path / "idx")
    assert main(["index", "build", str(corpus), "--index", idx, "--model", str(tiny_st_dir),
                 "--upsert", "--no-progress"]) == 0  # fmt: skip
    assert "2 documents, 2 passages (3 read; 1 repeated ids, the last row of each kept)" in (
        capsys.readouterr().out
    )
    for argv in (["search", "card", "--index", idx], ["serve", "--index", idx]):
        with pytest.raises(SystemExit) as info:
            main([*argv, "--reranker", "ce-sts", "--no-rerank"])
        assert info.value.code == 2
        assert "not allowed with argument --reranker" in capsys.readouterr().err


def test_index_build_resume_finishes_a_cut_off_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    """A build cut off part way left an index the same command then refused ("already holds an
    index"); ``--resume`` keeps what was committed and adds the rest, and refuses an index that
    is not part of this corpus. Its summary once counted the committed documents as repeated
    ids too ("4 read; 2 repeated ids, the last row of each kept; 2 already committed")."""
    idx = str(tmp_path / "idx")
    half = _corpus(tmp_path / "half.jsonl", dict(list(DOCS.items())[:2]))
    full = _corpus(tmp_path / "full.jsonl", DOCS)
    build = ["index", "build", "--index", idx, "--model", str(tiny_st_dir), "--no-progress"]
    assert main([*build[:2], str(half), *build[2:]]) == 0  # as if cut off after two documents
    capsys.readouterr()
    assert main([*build[:2], str(full), *build[2:]]) == 1
    assert "pass --resume to finish it" in capsys.readouterr().err
    assert main([*build[:2], str(full), *build[2:], "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"{len(DOCS)} documents" in out and "2 already committed by the cut-off build" in out
    assert "repeated ids" not in out  # the committed documents were once counted as repeats
    assert set(_search(capsys, "card", "--index", idx, "--retriever", "dense")) == set(DOCS)
    changed = dict(DOCS)
    changed["d1"] = ("Another title", "other text")
    other = _corpus(tmp_path / "other.jsonl", changed)
    assert main([*build[:2], str(other), *build[2:], "--resume"]) == 1
    assert "holds document 'd1' with other content" in capsys.readouterr().err
    fewer = _corpus(tmp_path / "fewer.jsonl", dict(list(DOCS.items())[1:]))
    assert main([*build[:2], str(fewer), *build[2:], "--resume"]) == 1
    assert "holds 1 document(s) that" in capsys.readouterr().err
    # the kind of graph is the cut-off build's: another one asked for was silently ignored
    assert main([*build[:2], str(full), *build[2:], "--resume", "--quantize", "sq8"]) == 1
    assert (
        "--quantize sq8: the cut-off build in " + idx + " was made with --quantize none"
    ) in capsys.readouterr().err
    assert main([*build[:2], str(full), *build[2:], "--resume", "--ann", "auto"]) == 0


def test_one_model_named_two_ways_shares_no_broken_cache(
    beir: Path, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The cached corpus index was keyed by the weights alone but opened only by an encoder of the
    same name: after ``--model DIR``, ``--model DIR/`` (or the folder relative to another working
    directory) failed with "was built with encoder 'DIR' ... but is opened with 'DIR/'", about a
    cache the user never built. Each name now has its own cache; both evaluate alike."""
    common = ["--data", str(beir), "--retriever", "dense"]
    first = _run(capsys, *common, "--model", str(tiny_st_dir))
    slash = _run(capsys, *common, "--model", f"{tiny_st_dir}/")
    monkeypatch.chdir(tiny_st_dir.parent)
    relative = _run(capsys, *common, "--model", tiny_st_dir.name)
    assert first["ndcg@10"] == slash["ndcg@10"] == relative["ndcg@10"]
