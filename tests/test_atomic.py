"""Atomic writes: a save that fails (or is killed) part way leaves the old file, and no temporary.

Each test writes a file once, then writes it again with the final step made to fail: the file
must hold its first content and the folder nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from sentsim.atomic import STAGING, atomic_text, staged_folder, write_text_atomic
from sentsim.baselines.static import StaticEncoder
from sentsim.bi_encoder import BiEncoder
from sentsim.cli import main
from sentsim.cross_encoder import CrossEncoder
from sentsim.fusion import FusionConfig, read_fusion, write_fusion


class Cut(Exception):
    """The simulated failure (a full disk, a kill)."""


def _cut(*args: object, **kwargs: object) -> None:
    raise Cut


@pytest.fixture
def failing_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``os.replace`` fails: the new content never reaches its name."""
    monkeypatch.setattr(os, "replace", _cut)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_atomic_text_failing_mid_write_keeps_the_old_file(tmp_path: Path) -> None:
    """An exception after half the lines: the old file is whole and no temporary is left."""
    path = tmp_path / "out.jsonl"
    write_text_atomic(path, "old\n")
    with pytest.raises(Cut), atomic_text(path) as handle:
        handle.write("new line 1\n")
        raise Cut
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]
    with atomic_text(path) as handle:
        handle.write("new\n")
    assert path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_staged_folder_moves_files_and_empty_folders_and_cleans_up(tmp_path: Path) -> None:
    root = tmp_path / "model"
    with staged_folder(root) as stage:
        (stage / "sub").mkdir()
        (stage / "sub" / "a.json").write_text("1")
        (stage / "empty").mkdir()
        (stage / "b.bin").write_bytes(b"x")
    assert _snapshot(root) == {"b.bin": b"x", "sub/a.json": b"1"}
    assert (root / "empty").is_dir() and not (root / STAGING).exists()
    (root / STAGING).mkdir()  # one a killed save left behind
    (root / STAGING / "b.bin").write_bytes(b"half")
    with pytest.raises(Cut), staged_folder(root) as stage:
        (stage / "b.bin").write_bytes(b"new")
        raise Cut
    assert _snapshot(root) == {"b.bin": b"x", "sub/a.json": b"1"}
    assert not (root / STAGING).exists()


def test_static_encoder_save_cut_keeps_the_old_model(
    tmp_path: Path, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tiny_bert_dir / "tokenizer.json"))
    size = tokenizer.get_vocab_size()
    encoder = StaticEncoder(np.ones((size, 4), dtype=np.float32), tokenizer, "tiny")
    encoder.save(tmp_path, config={"run": 1})
    before = _snapshot(tmp_path)
    assert StaticEncoder.load(tmp_path).embeddings.shape == (size, 4)
    monkeypatch.setattr(os, "replace", _cut)
    encoder.embeddings = np.zeros((size, 4), dtype=np.float32)
    with pytest.raises(Cut):
        encoder.save(tmp_path, config={"run": 2})
    assert _snapshot(tmp_path) == before


def test_bi_encoder_save_cut_keeps_the_old_model(
    tmp_path: Path, tiny_st_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = BiEncoder.load(tiny_st_dir)
    out = tmp_path / "bi"
    model.save(out, card="# first\n")
    before = _snapshot(out)
    with torch.no_grad():
        next(model.transformer.model.parameters()).add_(1.0)
    monkeypatch.setattr(os, "replace", _cut)
    with pytest.raises(Cut):
        model.save(out, card="# second\n")
    monkeypatch.undo()
    assert _snapshot(out) == before
    assert not (out / STAGING).exists()
    model.save(out, card="# second\n")  # and a save that goes through replaces every file
    assert (out / "README.md").read_text() == "# second\n"
    assert (out / "2_Normalize").is_dir() == model.normalize
    again = BiEncoder.load(out).encode(["a card"])
    np.testing.assert_allclose(again, model.encode(["a card"]), atol=1e-6)


def test_cross_encoder_save_cut_keeps_the_old_model(
    tmp_path: Path, tiny_ce_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = CrossEncoder.load(tiny_ce_dir)
    out = tmp_path / "ce"
    model.save(out)
    before = _snapshot(out)

    def broken(*args: object, **kwargs: object) -> None:
        raise Cut  # after the weights were written

    monkeypatch.setattr(model.tokenizer, "save_pretrained", broken)
    with pytest.raises(Cut):
        model.save(out, fp16=True)
    assert _snapshot(out) == before
    assert not (out / STAGING).exists()


def test_write_fusion_cut_keeps_the_old_config(tmp_path: Path, failing_rename: None) -> None:
    config = FusionConfig(
        bi_encoder="tiny-bi",
        weight=0.25,
        ce_mean=0.5,
        ce_std=0.2,
        bi_mean=0.6,
        bi_std=0.1,
        selected_on="dev.csv",
    )
    file = tmp_path / "sentsim_config.json"
    file.write_text(json.dumps({"max_length": 64}))
    with pytest.raises(Cut):
        write_fusion(tmp_path, config)
    assert json.loads(file.read_text()) == {"max_length": 64}
    assert read_fusion(tmp_path) is None
    assert [p.name for p in tmp_path.iterdir()] == ["sentsim_config.json"]


def test_helpcenter_files_cut_mid_write_keep_the_old_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write_examples, write_beir and write_training_triples, cut after their first row."""
    import sentsim.helpcenter as helpcenter
    from sentsim.index import Document

    doc = Document("a1", "How to top up", "Use a transfer.", {})

    def one_then_cut(*args: object, **kwargs: object) -> Iterator[Document]:
        yield doc
        raise Cut

    monkeypatch.setattr(helpcenter, "example_questions", one_then_cut)
    monkeypatch.setattr(helpcenter, "articles", one_then_cut)
    examples = tmp_path / "examples.jsonl"
    examples.write_text("old\n")
    with pytest.raises(Cut):
        helpcenter.write_examples(examples)
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text("old\n")
    with pytest.raises(Cut):
        helpcenter.write_beir(beir, questions=[("q", "a1")])
    monkeypatch.setattr(helpcenter, "articles", lambda: [doc])  # the rows are cut instead
    monkeypatch.setattr(helpcenter, "intent_articles", lambda: {"top_up": "a1"})

    def split(*args: object) -> tuple[Iterator[tuple[str, str]], list[tuple[str, str]]]:
        def rows() -> Iterator[tuple[str, str]]:
            yield "how do I top up", "top_up"
            raise Cut

        return rows(), []

    monkeypatch.setattr(helpcenter, "train_dev_split", split)
    triples = tmp_path / "triples"
    triples.mkdir()
    (triples / "train.jsonl").write_text("old\n")
    with pytest.raises(Cut):
        helpcenter.write_training_triples(triples)
    assert _snapshot(tmp_path) == {
        "examples.jsonl": b"old\n",
        "beir/corpus.jsonl": b"old\n",
        "triples/train.jsonl": b"old\n",
    }


def test_reports_cut_keep_the_old_files(
    tmp_path: Path,
    tiny_st_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """TREC runs, the model card, ``encode --out`` and ``search --out`` are written whole."""
    from sentsim.evaluation.retrieval import write_trec_run

    run_file = tmp_path / "run.trec"
    run_file.write_text("old\n")
    texts = tmp_path / "texts.txt"
    texts.write_text("a card\nlost card\n")
    vectors = tmp_path / "v.npy"
    vectors.write_bytes(b"old")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "d1", "text": "a lost card"}) + "\n")
    idx = str(tmp_path / "idx")
    argv = ["index", "build", str(corpus), "--index", idx, "--model", str(tiny_st_dir)]
    assert main([*argv, "--no-progress"]) == 0
    found = tmp_path / "found.jsonl"
    found.write_text("old\n")
    files = [run_file, vectors, found]
    before = {p: p.read_bytes() for p in files}
    monkeypatch.setattr(os, "replace", _cut)
    with pytest.raises(Cut):
        write_trec_run({"q1": [("d1", 1.0), ("d2", 0.5)]}, run_file)
    encode = ["encode", str(texts), "--out", str(vectors), "--model", str(tiny_st_dir)]
    with pytest.raises(Cut):
        main(encode)
    search = ["search", "--queries", str(texts), "--out", str(found), "--index", idx]
    with pytest.raises(Cut):
        main([*search, "--retriever", "dense", "--no-rerank", "--no-progress"])
    monkeypatch.undo()
    assert {p: p.read_bytes() for p in files} == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_staging_folder_left_by_a_killed_save_is_not_part_of_the_model(
    tmp_path: Path, tiny_st_dir: Path
) -> None:
    """A save killed before its files moved in leaves the staging folder: the model's identity
    (the hash an index and a judge's fusion record) must not read the weights inside it."""
    from sentsim.models import weights_hash

    out = tmp_path / "bi"
    BiEncoder.load(tiny_st_dir).save(out)
    before = weights_hash(out)
    (out / STAGING).mkdir()
    (out / STAGING / "model.safetensors").write_bytes(b"half of a new model")
    assert weights_hash(out) == before
