"""The command line, run in-process: outputs against the library, and one-line user errors."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentsim.baselines import OverlapPairScorer
from sentsim.bi_encoder import BiEncoder
from sentsim.cli import basic, main
from sentsim.data import read_pairs
from sentsim.evaluation.scorers import model_scorer
from sentsim.evaluation.sts import evaluate_sts

STS_ROWS = [
    ("a man plays the guitar", "a man is playing a guitar", 4.8),
    ("a woman eats food", "a woman is eating", 4.0),
    ("a dog on the beach", "a dog plays on the beach", 3.2),
    ("my card was declined", "the cat plays piano", 0.2),
    ("a boy plays soccer", "a girl plays piano", 1.5),
    ("cash at the atm", "money from the atm", 3.9),
]
JSON_KEYS = {"task", "data", "pairs", "model", "spearman", "pearson", "seconds"}


@pytest.fixture
def sts_csv(tmp_path: Path) -> Path:
    path = tmp_path / "sts.csv"
    lines = ["sentence1,sentence2,score", *(f"{a},{b},{s}" for a, b, s in STS_ROWS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def user_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run argv, expect exit 1 with exactly one ``sentsim: error:`` line on stderr; return it."""
    assert main(argv) == 1
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sentsim: error: ")
    assert "Traceback" not in err
    assert out == ""
    return lines[0]


# --- similarity and encode ----------------------------------------------------------------------


def test_similarity_prints_the_cosine(
    capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    assert main(["similarity", "a dog plays", "a cat plays", "--model", str(tiny_st_dir)]) == 0
    out = capsys.readouterr().out.strip()
    vectors = BiEncoder.load(tiny_st_dir).encode(["a dog plays", "a cat plays"])
    assert re.fullmatch(r"-?\d\.\d{4}", out)
    assert float(out) == pytest.approx(float(vectors[0] @ vectors[1]), abs=1e-4)


def test_similarity_with_a_cross_encoder_prints_the_judges_score(
    capsys: pytest.CaptureFixture[str], tiny_ce_dir: Path, tiny_st_dir: Path
) -> None:
    from sentsim.fusion import load_judge

    argv = ["similarity", "a dog plays", "a cat plays", "--cross-encoder", str(tiny_ce_dir)]
    assert main(argv) == 0
    expected = load_judge(tiny_ce_dir).score_pairs([("a dog plays", "a cat plays")])[0]
    assert capsys.readouterr().out.strip() == f"{expected:.4f}"
    line = user_error(capsys, [*argv, "--model", str(tiny_st_dir)])
    assert "--cross-encoder scores the pair itself: drop --model and --metric" in line


def test_similarity_of_a_dot_product_model_prints_its_dot_product_and_says_so(
    capsys: pytest.CaptureFixture[str], tiny_dot_dir: Path
) -> None:
    """A dot-product model (msmarco-*-dot-*, TAS-B) was scored by cosine, which it was not
    trained for; its own function is now the default, as sentence-transformers' model.similarity
    and search use it, and the line says it is a dot product (no cosine, not bounded by 1)."""
    from sentence_transformers import SentenceTransformer

    texts = ["a dog plays", "a cat plays"]
    assert main(["similarity", *texts, "--model", str(tiny_dot_dir)]) == 0
    out = capsys.readouterr().out.strip()
    reference = SentenceTransformer(str(tiny_dot_dir), device="cpu")
    vectors = reference.encode(texts)
    expected = float(reference.similarity(vectors[:1], vectors[1:])[0, 0])
    assert expected > 1.5  # a dot product, not a cosine
    value, said = out.split(" ", 1)
    assert float(value) == pytest.approx(expected, abs=1e-3)
    assert said == "(dot product, the model's similarity function; --metric cosine for the cosine)"
    assert main(["similarity", *texts, "--model", str(tiny_dot_dir), "--metric", "cosine"]) == 0
    cosine = expected / float(np.linalg.norm(vectors[0]) * np.linalg.norm(vectors[1]))
    assert float(capsys.readouterr().out) == pytest.approx(cosine, abs=1e-4)  # a bare number


def test_similarity_other_metric(capsys: pytest.CaptureFixture[str], tiny_bert_dir: Path) -> None:
    argv = ["similarity", "dog", "dog", "--model", str(tiny_bert_dir), "--metric", "euclidean"]
    assert main(argv) == 0
    assert capsys.readouterr().out == "0.0000\n"  # not "-0.0000": the distance is negated


def test_similarity_bad_metric_is_a_user_error(
    capsys: pytest.CaptureFixture[str], tiny_st_dir: Path
) -> None:
    argv = ["similarity", "a", "b", "--model", str(tiny_st_dir), "--metric", "l1"]
    line = user_error(capsys, argv)
    assert "unknown metric 'l1'; expected one of: cosine, dot, euclidean" in line


def test_encode_txt_writes_npy(
    capsys: pytest.CaptureFixture[str], tiny_st_dir: Path, tmp_path: Path
) -> None:
    texts = ["a dog plays", "", "Café 東京 🙂", "my card was declined abroad"]
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "sub" / "vectors.npy"
    argv = ["encode", str(src), "--out", str(out), "--model", str(tiny_st_dir), "--batch-size", "1"]
    assert main(argv) == 0
    assert f"wrote {out}: 4 × 32 float32" in capsys.readouterr().out
    vectors = np.load(out)
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, BiEncoder.load(tiny_st_dir).encode(texts), atol=1e-6)


def test_encode_refuses_to_write_the_vectors_over_its_texts(
    capsys: pytest.CaptureFixture[str], tiny_st_dir: Path, tmp_path: Path
) -> None:
    """--out naming the input replaced the user's texts with an .npy matrix."""
    src = tmp_path / "texts.jsonl"
    src.write_text('{"text": "a dog"}\n', encoding="utf-8")
    argv = ["encode", str(src), "--out", str(src), "--model", str(tiny_st_dir)]
    line = user_error(capsys, argv)
    assert f"--out {src} is the file of texts; give the vectors a file of their own" in line
    assert src.read_text(encoding="utf-8") == '{"text": "a dog"}\n'


@pytest.mark.parametrize("role", ["query", "document", "text"])
def test_encode_as_query_or_document_adds_the_models_prompt(
    role: str, capsys: pytest.CaptureFixture[str], tiny_st_dir: Path, tmp_path: Path
) -> None:
    """Vectors for an E5-style model's index or queries need its prompts, as search adds them."""
    folder = tmp_path / "m"
    shutil.copytree(tiny_st_dir, folder)
    prompts = {"query": "query: ", "passage": "passage: "}
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    texts = ["a dog plays", "my card was declined abroad"]
    src = tmp_path / "texts.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    assert main(["encode", str(src), "--out", str(out), "--model", str(folder), "--as", role]) == 0
    before = {"query": "query: ", "document": "passage: ", "text": ""}[role]
    wanted = BiEncoder.load(tiny_st_dir).encode([before + t for t in texts])
    np.testing.assert_allclose(np.load(out), wanted, atol=1e-6)


def test_encode_keeps_one_row_per_line_whatever_a_line_holds(
    capsys: pytest.CaptureFixture[str], tiny_st_dir: Path, tmp_path: Path
) -> None:
    """Form feeds, U+0085, U+2028 and U+2029 are text, not line ends: row i is line i.

    (``str.splitlines()`` split at them and gave 6 rows for these 3 lines.) CR LF ends a line.
    """
    texts = ["page one\x0cpage two", "a\u2028b\u2029c", "next\x85line"]
    src = tmp_path / "texts.txt"
    src.write_bytes("\r\n".join(texts).encode("utf-8") + b"\r\n")
    out = tmp_path / "v.npy"
    assert main(["encode", str(src), "--out", str(out), "--model", str(tiny_st_dir)]) == 0
    assert f"wrote {out}: 3 × 32" in capsys.readouterr().out
    expected = BiEncoder.load(tiny_st_dir).encode(texts)
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)
    folder = tmp_path / "folder"
    folder.mkdir()
    argv = ["encode", str(src), "--out", str(folder), "--model", str(tiny_st_dir)]
    assert "--out " + str(folder) + " is a folder; give a file name" in user_error(capsys, argv)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "texts.txt", "v.npy"]


def test_encode_jsonl(
    tmp_path: Path, tiny_st_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [{"text": "a dog", "id": 1}, {"text": "Café 🙂"}]
    src = tmp_path / "texts.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n\n")
    out = tmp_path / "vectors.bin"  # any name: the file is written where --out says
    assert main(["encode", str(src), "--out", str(out), "--model", str(tiny_st_dir)]) == 0
    assert f"wrote {out}:" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["texts.jsonl", "vectors.bin"]
    expected = BiEncoder.load(tiny_st_dir).encode(["a dog", "Café 🙂"])
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)


def test_encode_missing_input_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    missing = tmp_path / "nope.txt"
    argv = ["encode", str(missing), "--out", str(tmp_path / "v.npy"), "--model", str(tiny_st_dir)]
    line = user_error(capsys, argv)
    assert f"texts file not found: {missing}" in line
    assert not (tmp_path / "v.npy").exists()


@pytest.mark.parametrize(
    ("second_line", "fragment"),
    [
        ("{not json", "line 2: not valid JSON"),
        ('{"txt": "a"}', "line 2: expected an object with a string 'text' field"),
        ('["a"]', "line 2: expected an object with a string 'text' field"),
    ],
)
def test_encode_malformed_jsonl_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_st_dir: Path,
    second_line: str,
    fragment: str,
) -> None:
    src = tmp_path / "texts.jsonl"
    src.write_text('{"text": "ok"}\n' + second_line + "\n")
    argv = ["encode", str(src), "--out", str(tmp_path / "v.npy"), "--model", str(tiny_st_dir)]
    line = user_error(capsys, argv)
    assert str(src) in line and fragment in line


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("texts.txt", b"ok\nfine\nx\x00y\n", "texts.txt, line 3: holds a NUL character"),
        ("texts.jsonl", b'{"text": "ok"}\n{"text": "x\\ud800"}\n', "line 2: 'text' holds an unpa"),
    ],
)
def test_encode_names_the_line_of_text_a_model_cannot_take(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: bytes, fragment: str
) -> None:
    """A lone surrogate escape was a TypeError traceback from the tokenizer; a NUL was dropped."""
    src = tmp_path / name
    src.write_bytes(content)
    argv = ["encode", str(src), "--out", str(tmp_path / "v.npy"), "--model", "no-model-needed"]
    assert fragment in user_error(capsys, argv)
    assert not (tmp_path / "v.npy").exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["similarity", "ok", "caf\udce9"], "the second text"),
        (["search", "caf\udce9", "--index", "no-index", "--no-rerank"], "the query"),
    ],
)
def test_an_argument_byte_that_is_not_utf8_is_named_before_a_model_loads(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    """``$'caf\\xe9'`` from a Latin-1 shell reaches Python as "caf\\udce9": a TypeError
    traceback from the tokenizer (similarity), or an error only once the models had loaded."""
    line = user_error(capsys, [*argv, "--model", "no-model-needed"])
    assert f"{fragment} holds the byte 0xe9, which is not UTF-8, at character 4" in line


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("texts.csv", 'id,text\n1,"a dog, running"\n', "a CSV file is not read here"),
        ("texts.tsv", "id\ttext\n1\ta dog\n", "a TSV file is not read here"),
        ("texts.json", '["a dog", "a cat"]\n', "line 1: expected an object"),
    ],
)
def test_encode_refuses_files_it_would_read_as_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: str, fragment: str
) -> None:
    """A CSV's header and quoted cells, or a JSON array's brackets, were encoded as texts."""
    src = tmp_path / name
    src.write_text(content)
    argv = ["encode", str(src), "--out", str(tmp_path / "v.npy"), "--model", "no-model-needed"]
    assert fragment in user_error(capsys, argv)


def test_similarity_of_an_empty_text_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    line = user_error(capsys, ["similarity", "a dog", "   ", "--model", "no-model-needed"])
    assert "the second text is empty" in line


def test_missing_model_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    line = user_error(capsys, ["similarity", "a", "b", "--model", str(missing)])
    assert f"model '{missing}' not found" in line


def test_incomplete_model_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = user_error(capsys, ["similarity", "a", "b", "--model", str(tmp_path)])
    assert f"expected {tmp_path / 'config.json'}" in line


def test_distill_static(
    capsys: pytest.CaptureFixture[str], tiny_bert_dir: Path, tmp_path: Path
) -> None:
    from sentsim.baselines import StaticEncoder

    out = tmp_path / "static"
    argv = ["distill-static", "--teacher", str(tiny_bert_dir), "--dim", "8", "--out", str(out)]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert (config["teacher"], config["pca_dim"]) == (str(tiny_bert_dir), 8)
    assert StaticEncoder.load(out).encode(["a dog"]).shape == (1, 8)


# --- eval sts -----------------------------------------------------------------------------------


def last_json(out: str) -> dict[str, object]:
    return json.loads(out.strip().splitlines()[-1])


def test_eval_sts_model_json(
    capsys: pytest.CaptureFixture[str], sts_csv: Path, tiny_st_dir: Path
) -> None:
    """The JSON line agrees with evaluate_sts called directly on the same file and model."""
    argv = ["eval", "sts", "--data", str(sts_csv), "--model", str(tiny_st_dir), "--json"]
    assert main(argv) == 0
    result = last_json(capsys.readouterr().out)
    assert set(result) >= JSON_KEYS
    expected = evaluate_sts(read_pairs(sts_csv), model_scorer(str(tiny_st_dir)))
    assert result["task"] == "sts"
    assert result["data"] == str(sts_csv)
    assert result["pairs"] == len(STS_ROWS)
    assert result["model"] == str(tiny_st_dir)
    assert result["spearman"] == pytest.approx(expected.spearman, abs=0.01)
    assert result["pearson"] == pytest.approx(expected.pearson, abs=0.01)
    assert isinstance(result["seconds"], float)


def test_eval_sts_no_progress_hides_the_encode_bar(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    """A file big enough to draw a bar draws none with --no-progress (background job logs)."""
    path = tmp_path / "big.csv"
    rows = [f"sentence {i} here,another sentence {i},{i % 5}" for i in range(1100)]
    path.write_text("sentence1,sentence2,score\n" + "\n".join(rows) + "\n")
    argv = ["eval", "sts", "--data", str(path), "--model", str(tiny_st_dir)]
    assert main(argv) == 0
    assert "encode" in capsys.readouterr().err
    assert main([*argv, "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "encode" not in err
    assert "(1100 pairs)" in out


@pytest.mark.parametrize(
    "command",
    [
        "train cross-encoder --train {f} --base {ce} --out {o}",
        "eval sts --data {f} --model {bi}",
        "eval pairs --data {f} --model {ce}",
        "augsbert --gold {f} --cross-encoder train --base {bi} --out {o} --sampling bm25 --cap 10",
    ],
)
def test_an_empty_pair_file_is_called_empty_by_each_command(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_st_dir: Path,
    tiny_ce_dir: Path,
    command: str,
) -> None:
    """Each command that reads pairs says the file is empty (it said "line 1: cannot tell the
    format"), before any model is loaded or trained."""
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    values = {"f": empty, "ce": tiny_ce_dir, "bi": tiny_st_dir, "o": tmp_path / "out"}
    argv = [a.format(**values) for a in command.split()]
    assert f"pair file {empty} is empty" in user_error(capsys, argv)


def test_fuse_needs_a_judge_folder_it_can_write(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A built-in name would be scored from the package and then written to a folder of that name
    in the working directory (or fail there after minutes of scoring): refused before any work."""
    monkeypatch.chdir(tmp_path)
    dev = tmp_path / "dev.csv"
    dev.write_text("sentence1,sentence2,score\na,b,1\nc,d,2\n")
    line = user_error(capsys, ["fuse", "--cross-encoder", "ce-sts", "--bi-encoder", "x", "--dev",
                               str(dev)])  # fmt: skip
    assert "--cross-encoder ce-sts: no such folder" in line and "copy its folder first" in line
    assert not (tmp_path / "ce-sts").exists()


def test_fuse_refuses_a_judge_with_several_outputs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_bert_dir: Path, tiny_st_dir: Path
) -> None:
    """A classifier (NLI: three outputs) ended in numpy's 'operands could not be broadcast'."""
    from sentsim.cross_encoder import CrossEncoder

    judge = tmp_path / "nli"
    CrossEncoder.load(tiny_bert_dir, num_labels=3, device="cpu").save(judge)
    dev = tmp_path / "dev.csv"
    dev.write_text("sentence1,sentence2,score\na man,a dog,1\nthe cat,a car,2\n")
    argv = ["fuse", "--cross-encoder", str(judge), "--bi-encoder", str(tiny_st_dir)]
    line = user_error(capsys, [*argv, "--dev", str(dev), "--no-progress"])
    assert f"{judge} has 3 outputs; similarity needs one score" in line
    assert "fusion" not in (judge / "sentsim_config.json").read_text()


def test_fuse_scores_a_dot_product_bi_encoder_by_cosine_as_its_judge_does(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_dot_dir: Path, tiny_ce_dir: Path
) -> None:
    """A fusion's statistics are measured on cosines and the fused judge scores by cosine, a
    dot-product model's too (eval sts now scores such a model alone by its dot product): the
    stored mean is the dev pairs' mean cosine, and the judge's bi-encoder scorer is cosine."""
    from sentsim.fusion import load_judge
    from sentsim.similarity import cosine_pairwise

    judge = shutil.copytree(tiny_ce_dir, tmp_path / "judge")
    dev = tmp_path / "dev.csv"
    rows = [("a man", "a dog", 1), ("the cat", "a car", 2), ("my card", "my card was declined", 4)]
    dev.write_text("sentence1,sentence2,score\n" + "".join(f"{a},{b},{s}\n" for a, b, s in rows))
    argv = ["fuse", "--cross-encoder", str(judge), "--bi-encoder", str(tiny_dot_dir)]
    assert main([*argv, "--dev", str(dev), "--no-progress"]) == 0
    capsys.readouterr()
    fusion = json.loads((judge / "sentsim_config.json").read_text())["fusion"]
    encoder = BiEncoder.load(tiny_dot_dir)
    cosines = cosine_pairwise(*(encoder.encode([r[i] for r in rows]) for i in (0, 1)))
    assert fusion["bi_mean"] == pytest.approx(float(cosines.mean()), abs=1e-4)
    assert load_judge(judge).bi.metric == "cosine"


def test_fuse_loads_every_bi_encoder_before_the_judge_scores(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_st_dir: Path,
    tiny_ce_dir: Path,
) -> None:
    """A --bi-encoder that could not load (missing, or a cross-encoder) was found only after the
    judge had scored the whole dev set (both orders of every pair)."""
    from sentsim.cross_encoder import CrossEncoder

    scored: list[int] = []
    monkeypatch.setattr(CrossEncoder, "predict", lambda self, pairs, **_: scored.append(1))
    judge = shutil.copytree(tiny_ce_dir, tmp_path / "judge")
    dev = tmp_path / "dev.csv"
    dev.write_text("sentence1,sentence2,score\na man,a dog,1\nthe cat,a car,2\n")
    argv = ["fuse", "--cross-encoder", str(judge), "--dev", str(dev), "--no-progress"]
    argv += ["--bi-encoder", str(tiny_st_dir)]
    for bad, error in ((tmp_path / "nope", "not found"), (tiny_ce_dir, "is a cross-encoder")):
        assert error in user_error(capsys, [*argv, "--bi-encoder", str(bad)])
    assert scored == []


def test_fuse_refuses_a_dev_file_of_one_score_before_scoring(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    """It scored every pair, then ended with 'correlation with a constant is undefined', naming
    no file."""
    dev = tmp_path / "const.csv"
    dev.write_text("sentence1,sentence2,score\na man,a dog,3\nthe cat,a car,3\n")
    argv = ["fuse", "--cross-encoder", str(tmp_path), "--bi-encoder", str(tiny_st_dir)]
    line = user_error(capsys, [*argv, "--dev", str(dev), "--no-progress"])
    assert f"{dev}: 2 scored pair(s), all scored the same" in line


def test_mine_refuses_a_margin_without_dense_scores(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``--margin`` with ``--no-dense`` was accepted and had no effect."""
    train = tmp_path / "t.jsonl"
    train.write_text('{"anchor": "a", "positive": "b"}\n')
    argv = ["mine", "--train", str(train), "--bm25", "--no-dense", "--margin", "0.2"]
    line = user_error(capsys, [*argv, "--out", str(tmp_path / "m.jsonl")])
    assert "--margin compares the bi-encoder's similarities (cosines; a dot-product" in line


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.5", r"--max-judge-score 1\.5: the judge scores from 0 to 1; give a number from 0 to 1"),
        ("-0.1", r"--max-judge-score -0\.1: the judge scores from 0 to 1"),
        ("nan", r"--max-judge-score nan: the judge scores from 0 to 1"),
        ("inf", r"--max-judge-score inf: the judge scores from 0 to 1"),
    ],
)
def test_mine_refuses_a_judge_threshold_outside_0_to_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str, message: str
) -> None:
    """The threshold the Python API had (max_judge_score) was no option of ``sentsim mine``."""
    train = tmp_path / "t.jsonl"
    train.write_text('{"anchor": "a", "positive": "b"}\n')
    argv = ["mine", "--train", str(train), "--cross-encoder", "CE", "--max-judge-score", value]
    assert re.search(message, user_error(capsys, [*argv, "--out", str(tmp_path / "m.jsonl")]))


def test_mine_refuses_a_judge_threshold_without_a_judge(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    train = tmp_path / "t.jsonl"
    train.write_text('{"anchor": "a", "positive": "b"}\n')
    argv = ["mine", "--train", str(train), "--max-judge-score", "0.3"]
    line = user_error(capsys, [*argv, "--out", str(tmp_path / "m.jsonl")])
    assert "--max-judge-score is the --cross-encoder judge's threshold; give" in line
    with pytest.raises(SystemExit):  # argparse's usage error, naming the option
        main([*argv[:-1], "half", "--out", str(tmp_path / "m.jsonl")])
    assert "argument --max-judge-score: invalid float value: 'half'" in capsys.readouterr().err


def test_mine_refuses_to_write_over_its_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--out naming --train replaced the rows with the mined ones: anchors left without a
    negative were gone from the user's file, and a crash while writing would lose all of it."""
    train = tmp_path / "t.jsonl"
    train.write_text('{"anchor": "a", "positive": "b"}\n')
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"id": "1", "text": "b"}\n')
    argv = ["mine", "--train", str(train), "--corpus", str(corpus), "--bm25", "--no-dense"]
    line = user_error(capsys, [*argv, "--out", str(tmp_path / "." / "t.jsonl")])
    assert f"--out {train} is the --train file; give the mined rows a file of their own" in line
    line = user_error(capsys, [*argv, "--out", str(corpus)])
    assert "is the --corpus file" in line
    assert train.read_text() == '{"anchor": "a", "positive": "b"}\n'


def test_fuse_stores_the_dev_weight_and_no_progress_hides_the_bars(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """``sentsim fuse`` writes the weight it chose on dev into the judge; the judge then fuses."""
    judge = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, judge)
    dev = tmp_path / "dev.csv"
    rows = [f"sentence {i} here,another sentence {i},{i % 5}" for i in range(1100)]
    dev.write_text("sentence1,sentence2,score\n" + "\n".join(rows) + "\n")
    argv = ["fuse", "--cross-encoder", str(judge), "--bi-encoder", str(tiny_st_dir)]
    assert main([*argv, "--dev", str(dev)]) == 0
    assert "encode" in capsys.readouterr().err  # 2,200 texts draw a bar
    assert main([*argv, "--dev", str(dev), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "encode" not in err
    assert out.startswith("dev Spearman: cross-encoder ")
    fusion = json.loads((judge / "sentsim_config.json").read_text())["fusion"]
    # stored relative to the judge's folder, so that it loads from any working folder
    assert fusion["bi_encoder"] == os.path.relpath(tiny_st_dir, judge)
    assert 0.0 <= fusion["weight"] <= 1.0
    assert f"at w={fusion['weight']}" in out
    assert fusion["selected_on"] == str(dev)
    assert main(["eval", "sts", "--data", str(dev), "--cross-encoder", str(judge), "--json"]) == 0
    assert "fused with" in last_json(capsys.readouterr().out)["model"]

    second = shutil.copytree(tiny_st_dir, tmp_path / "second-bi")
    assert main([*argv, "--bi-encoder", str(second), "--dev", str(dev), "--no-progress"]) == 0
    out = capsys.readouterr().out
    fusion = json.loads((judge / "sentsim_config.json").read_text())["fusion"]
    (extra,) = fusion["extra"]
    assert extra["bi_encoder"] == "../second-bi"
    assert f"(bi-encoders: {tiny_st_dir} " in out and f"{second} {extra['weight']})" in out
    assert main(["eval", "sts", "--data", str(dev), "--cross-encoder", str(judge), "--json"]) == 0
    fused = last_json(capsys.readouterr().out)["model"]
    assert f"fused with {fusion['bi_encoder']} + ../second-bi" in fused


def test_a_fused_judge_moves_with_its_bi_encoder(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_st_dir: Path,
    tiny_ce_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The config names the bi-encoder relative to the judge: a folder holding both can move,
    and the judge loads from any working folder (it named the path as typed, relative to the
    working folder of the fuse command)."""
    kit = tmp_path / "kit"
    shutil.copytree(tiny_ce_dir, kit / "judge")
    shutil.copytree(tiny_st_dir, kit / "bi")
    dev = tmp_path / "dev.csv"
    rows = [f"sentence {i} here,another sentence {i},{i % 5}" for i in range(40)]
    dev.write_text("sentence1,sentence2,score\n" + "\n".join(rows) + "\n")
    monkeypatch.chdir(kit)
    assert main(["fuse", "--cross-encoder", "judge", "--bi-encoder", "bi", "--dev", str(dev)]) == 0
    fusion = json.loads((kit / "judge" / "sentsim_config.json").read_text())["fusion"]
    assert fusion["bi_encoder"] == "../bi"
    argv = ["eval", "sts", "--data", str(dev), "--cross-encoder", "judge", "--json"]
    assert main(argv) == 0
    before = last_json(capsys.readouterr().out)
    shutil.move(kit, tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    argv[argv.index("judge")] = str(tmp_path / "moved" / "judge")
    assert main(argv) == 0
    after = last_json(capsys.readouterr().out)
    assert after["spearman"] == before["spearman"] and "fused with ../bi" in after["model"]


def test_eval_sts_batch_size_reaches_a_fused_judge(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sts_csv: Path,
    tmp_path: Path,
    tiny_st_dir: Path,
    tiny_ce_dir: Path,
) -> None:
    """``--batch-size`` was ignored with --cross-encoder (the judge and its bi-encoder read 32 at
    a time whatever was asked; ``--batch-size 0`` ran): it now reaches both models."""
    from sentsim.bi_encoder import BiEncoder
    from sentsim.cross_encoder import CrossEncoder
    from sentsim.fusion import FusionConfig, write_fusion

    judge = shutil.copytree(tiny_ce_dir, tmp_path / "judge")
    write_fusion(judge, FusionConfig(str(tiny_st_dir), 0.5, 0.5, 0.1, 0.5, 0.1))
    sizes: list[tuple[str, int]] = []
    for cls in (CrossEncoder, BiEncoder):
        method = "predict" if cls is CrossEncoder else "encode"
        original = getattr(cls, method)

        def spy(self: Any, items: Any, *, _f: Any = original, **kw: Any) -> Any:
            sizes.append((type(self).__name__, kw["batch_size"]))
            return _f(self, items, **kw)

        monkeypatch.setattr(cls, method, spy)
    argv = ["eval", "sts", "--data", str(sts_csv), "--cross-encoder", str(judge)]
    assert main([*argv, "--batch-size", "3", "--no-progress"]) == 0
    capsys.readouterr()
    assert {size for _, size in sizes} == {3}
    assert {kind for kind, _ in sizes} == {"CrossEncoder", "BiEncoder"}
    line = user_error(capsys, [*argv, "--batch-size", "0"])
    assert "batch_size must be ≥ 1, got 0" in line


def _fused_judge(tiny_ce_dir: Path, tiny_st_dir: Path, folder: Path) -> Path:
    """The tiny cross-encoder fused with the tiny bi-encoder, both orders averaged."""
    from sentsim.fusion import FusionConfig, write_fusion

    judge = shutil.copytree(tiny_ce_dir, folder)
    write_fusion(judge, FusionConfig(str(tiny_st_dir), 0.5, 0.5, 0.1, 0.5, 0.1, symmetric=True))
    return judge


def _count_cross_encoded(monkeypatch: pytest.MonkeyPatch) -> Counter[tuple[str, str]]:
    """Every (a, b) the cross-encoder's forward pass reads from now on, counted."""
    from sentsim.cross_encoder import CrossEncoder

    seen: Counter[tuple[str, str]] = Counter()
    tokenize = CrossEncoder.tokenize

    def spy(self: CrossEncoder, pairs: Any) -> Any:
        seen.update(pairs)
        return tokenize(self, pairs)

    monkeypatch.setattr(CrossEncoder, "tokenize", spy)
    return seen


def test_eval_sts_reads_each_pair_once_per_order_for_a_fused_judges_two_rows(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sts_csv: Path,
    tmp_path: Path,
    tiny_st_dir: Path,
    tiny_ce_dir: Path,
) -> None:
    """A fused judge's report (the cross-encoder alone, then the fusion) ran the cross-encoder
    over every pair twice in each order, once a row. Both rows now come from one pass: each pair
    is read once a way round; the rows are what ``evaluate_sts`` gives each scorer, and the
    fusion's time includes the cross-encoder's (what scoring with the fusion takes)."""
    from sentsim.fusion import FusedScorer, load_judge

    judge = _fused_judge(tiny_ce_dir, tiny_st_dir, tmp_path / "judge")
    seen = _count_cross_encoded(monkeypatch)
    argv = ["eval", "sts", "--data", str(sts_csv), "--cross-encoder", str(judge), "--json"]
    assert main([*argv, "--no-progress"]) == 0
    report = last_json(capsys.readouterr().out)
    pairs = [(a, b) for a, b, _ in STS_ROWS]
    assert seen == Counter(pairs + [(b, a) for a, b in pairs])
    alone = report["cross_encoder_alone"]
    assert isinstance(alone, dict)
    scorer = load_judge(judge)
    assert isinstance(scorer, FusedScorer)
    data = read_pairs(sts_csv)
    for row, expected in [(alone, scorer.judge), (report, scorer)]:
        result = evaluate_sts(data, expected)
        assert (row["model"], row["spearman"], row["pearson"]) == (
            result.model, result.spearman, result.pearson
        )  # fmt: skip
    assert report["seconds"] >= alone["seconds"]  # type: ignore[operator]


def test_compare_sts_reads_each_pair_once_per_order_for_a_judges_two_rows(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sts_csv: Path,
    tmp_path: Path,
    tiny_st_dir: Path,
    tiny_ce_dir: Path,
) -> None:
    """``compare sts`` scored a judge's rows (alone, then as the judge) with two passes of the
    cross-encoder, fused or not; each judge's pairs are now read once a way round."""
    from sentsim.cli import evaluate
    from sentsim.fusion import FusedScorer, load_judge

    monkeypatch.setattr(evaluate, "COMPARE_ROWS", [])
    monkeypatch.setattr(evaluate, "SHIPPED_BI_ENCODERS", [])
    fused = _fused_judge(tiny_ce_dir, tiny_st_dir, tmp_path / "judge")
    seen = _count_cross_encoded(monkeypatch)
    argv = ["compare", "sts", "--data", str(sts_csv), "--json"]
    assert main([*argv, "--cross-encoder", str(fused), "--cross-encoder", str(tiny_ce_dir)]) == 0
    rows = last_json(capsys.readouterr().out)["rows"]
    assert isinstance(rows, list)
    pairs = [(a, b) for a, b, _ in STS_ROWS]
    assert seen == Counter(2 * (pairs + [(b, a) for a, b in pairs]))  # two judges
    assert [r["method"] for r in rows] == [
        f"cross-encoder {fused} alone",
        f"cross-encoder {fused}",
        f"cross-encoder {tiny_ce_dir} alone",
        f"cross-encoder {tiny_ce_dir}",
    ]
    scorer = load_judge(fused)
    assert isinstance(scorer, FusedScorer)
    data = read_pairs(sts_csv)
    for row, expected in [(rows[0], scorer.judge), (rows[1], scorer)]:
        result = evaluate_sts(data, expected)
        assert (row["model"], row["pearson"]) == (result.model, result.pearson)
    assert rows[0]["pearson"] != rows[1]["pearson"]  # the fusion is another score
    assert rows[2] | {"method": ""} == rows[3] | {"method": ""}  # no fusion: one judge, one pass


def test_eval_sts_baseline_overlap(capsys: pytest.CaptureFixture[str], sts_csv: Path) -> None:
    assert main(["eval", "sts", "--data", str(sts_csv), "--baseline", "overlap", "--json"]) == 0
    out = capsys.readouterr().out
    result = last_json(out)
    expected = evaluate_sts(read_pairs(sts_csv), OverlapPairScorer())
    assert result["model"] == "word-overlap"
    assert result["compute_precision"] is None  # no model ran: no number format to report
    assert result["spearman"] == expected.spearman
    assert f"word-overlap on {sts_csv} (6 pairs): Spearman {expected.spearman:.2f}" in out


def test_eval_sts_without_json_prints_one_summary_line(
    capsys: pytest.CaptureFixture[str], sts_csv: Path
) -> None:
    assert main(["eval", "sts", "--data", str(sts_csv), "--baseline", "overlap"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("word-overlap on ")


def test_eval_sts_malformed_row(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("sentence1,sentence2,score\na,b,1\nc,d,high\ne,f,2\n")
    line = user_error(capsys, ["eval", "sts", "--data", str(path), "--baseline", "overlap"])
    assert f"{path}, line 3: score 'high' is not a number" in line


def test_eval_sts_skip_bad_rows_reports_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("sentence1,sentence2,score\na b,b,1\nc,d,high\ne,e f,2\ng,h,0\n")
    argv = [
        "eval",
        "sts",
        "--data",
        str(path),
        "--baseline",
        "overlap",
        "--skip-bad-rows",
        "--json",
    ]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert f"skipped 1 bad rows of {path} (line 3: score 'high' is not a number)" in err
    assert last_json(out)["pairs"] == 3


def test_eval_sts_score_range(capsys: pytest.CaptureFixture[str], sts_csv: Path) -> None:
    argv = [
        "eval",
        "sts",
        "--data",
        str(sts_csv),
        "--baseline",
        "overlap",
        "--score-range",
        "0",
        "4",
    ]
    line = user_error(capsys, argv)
    assert "line 2: score 4.8 is outside --score-range 0.0..4.0" in line


def test_eval_sts_unknown_baseline(capsys: pytest.CaptureFixture[str], sts_csv: Path) -> None:
    line = user_error(capsys, ["eval", "sts", "--data", str(sts_csv), "--baseline", "nope"])
    assert (
        "unknown baseline 'nope'; expected one of: glove, sif, bm25, overlap, static, cls" in line
    )


def test_eval_sts_missing_data_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "none.csv"
    line = user_error(capsys, ["eval", "sts", "--data", str(missing), "--baseline", "overlap"])
    assert f"pair file not found: {missing}" in line


def test_eval_sts_missing_model_dir(
    capsys: pytest.CaptureFixture[str], sts_csv: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "no-model"
    line = user_error(capsys, ["eval", "sts", "--data", str(sts_csv), "--model", str(missing)])
    assert str(missing) in line and "not found" in line


def test_default_data_set_absent_names_it_and_the_path(
    capsys: pytest.CaptureFixture[str], no_data: Path
) -> None:
    line = user_error(capsys, ["eval", "sts", "--baseline", "overlap"])
    assert "stsbenchmark/sts-test.csv not found" in line
    assert str(no_data.resolve() / "stsbenchmark" / "sts-test.csv") in line
    assert "SENTSIM_DATA" in line


def test_compare_sts_table_and_json(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sts_csv: Path,
    tiny_st_dir: Path,
) -> None:
    """The comparison with its MiniLM rows swapped for the tiny model (fast): one table row and
    one JSON row per method, each equal to ``eval sts`` on its own."""
    from sentsim.cli import evaluate

    monkeypatch.setattr(
        evaluate,
        "COMPARE_ROWS",
        [("word overlap (Jaccard)", "baseline", "overlap"), ("BM25", "baseline", "bm25")],
    )
    monkeypatch.setattr(evaluate, "SHIPPED_JUDGES", [])
    monkeypatch.setattr(evaluate, "SHIPPED_BI_ENCODERS", [])
    argv = ["compare", "sts", "--data", str(sts_csv), "--model", str(tiny_st_dir), "--json"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    report = last_json(out)
    assert (report["task"], report["data"]) == ("compare-sts", str(sts_csv))
    rows = report["rows"]
    assert isinstance(rows, list)
    assert [r["method"] for r in rows] == [
        "word overlap (Jaccard)",
        "BM25",
        f"bi-encoder {tiny_st_dir}",
    ]
    data = read_pairs(sts_csv)
    assert rows[0]["spearman"] == evaluate_sts(data, OverlapPairScorer()).spearman
    tiny = evaluate_sts(data, model_scorer(str(tiny_st_dir)))
    assert rows[2]["spearman"] == pytest.approx(tiny.spearman, abs=0.01)
    table = out.splitlines()
    assert sum(line.startswith(("word overlap", "BM25", "bi-encoder")) for line in table) == 3
    assert "published anchors" in out


def test_eval_and_compare_sts_score_a_dot_product_model_by_its_dot_product_and_say_so(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sts_csv: Path,
    tiny_dot_dir: Path,
) -> None:
    """A dot-product model (msmarco-*-dot-*) was scored by cosine in eval sts and compare sts;
    it is scored by its dot product, as sentence-transformers' evaluator does, and its line and
    table row say so."""
    from sentence_transformers import SentenceTransformer

    from sentsim.cli import evaluate
    from sentsim.evaluation.sts import correlations

    data = read_pairs(sts_csv)
    reference = SentenceTransformer(str(tiny_dot_dir), device="cpu")
    a, b = (reference.encode([p[i] for p in data.pairs()]) for i in (0, 1))
    spearman = correlations(reference.similarity_pairwise(a, b).numpy(), data.scores())[0]
    assert main(["eval", "sts", "--data", str(sts_csv), "--model", str(tiny_dot_dir)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tiny_dot_dir} (dot product) on {sts_csv}")
    assert f"Spearman {spearman:.2f} " in line
    monkeypatch.setattr(evaluate, "COMPARE_ROWS", [("BM25", "baseline", "bm25")])
    monkeypatch.setattr(evaluate, "SHIPPED_JUDGES", [])
    argv = ["compare", "sts", "--data", str(sts_csv), "--model", str(tiny_dot_dir), "--json"]
    assert main(argv) == 0
    row = last_json(capsys.readouterr().out)["rows"][1]
    assert row["method"] == f"bi-encoder {tiny_dot_dir} (dot product)"
    assert row["spearman"] == pytest.approx(spearman, abs=0.01)


def test_compare_sts_scores_its_own_model_rows(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sts_csv: Path,
    tiny_st_dir: Path,
) -> None:
    """The table's built-in bi-encoder row (MiniLM; here the tiny model) is scored without any
    --model: it was looked up among --model's models only, and ``compare sts`` ended with a
    KeyError traceback after the baselines."""
    from sentsim.cli import evaluate

    monkeypatch.setattr(
        evaluate,
        "COMPARE_ROWS",
        [("word overlap", "baseline", "overlap"), ("tiny", "model", str(tiny_st_dir))],
    )
    monkeypatch.setattr(evaluate, "SHIPPED_JUDGES", [])
    monkeypatch.setattr(evaluate, "SHIPPED_BI_ENCODERS", [])
    assert main(["compare", "sts", "--data", str(sts_csv), "--json"]) == 0
    rows = last_json(capsys.readouterr().out)["rows"]
    assert isinstance(rows, list)
    assert [r["method"] for r in rows] == ["word overlap", "tiny"]
    tiny = evaluate_sts(read_pairs(sts_csv), model_scorer(str(tiny_st_dir)))
    assert rows[1]["spearman"] == pytest.approx(tiny.spearman, abs=0.01)


def test_compare_sts_names_a_missing_model_before_running_the_others(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sts_csv: Path,
    tmp_path: Path,
) -> None:
    """A mistyped --model or --cross-encoder was found only after every baseline and MiniLM had
    been scored and printed (minutes on STS-B test); it is now one error before the table."""
    from sentsim.cli import evaluate

    ran: list[str] = []
    monkeypatch.setattr(evaluate, "COMPARE_ROWS", [("word overlap", "baseline", "overlap")])
    monkeypatch.setattr(
        "sentsim.evaluation.scorers.baseline_scorer", lambda key, **_: ran.append(key)
    )
    for option in ("--model", "--cross-encoder"):
        argv = ["compare", "sts", "--data", str(sts_csv), option, str(tmp_path / "nope")]
        line = user_error(capsys, argv)
        assert f"model '{tmp_path / 'nope'}' not found" in line
    assert ran == []


def test_compare_sts_loads_each_model_before_running_the_others(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sts_csv: Path,
    tmp_path: Path,
    tiny_st_dir: Path,
    tiny_ce_dir: Path,
) -> None:
    """A model that exists but cannot load as asked (a bi-encoder as --cross-encoder, a judge as
    --model, a fused judge whose bi-encoder is gone) failed at its own row, after every baseline
    and MiniLM had been scored; each is now one error before the table."""
    from sentsim.cli import evaluate
    from sentsim.fusion import FusionConfig, write_fusion

    ran: list[str] = []
    monkeypatch.setattr(evaluate, "COMPARE_ROWS", [("word overlap", "baseline", "overlap")])
    monkeypatch.setattr(
        "sentsim.evaluation.scorers.baseline_scorer", lambda key, **_: ran.append(key)
    )
    orphan = shutil.copytree(tiny_ce_dir, tmp_path / "orphan")
    write_fusion(orphan, FusionConfig("../gone", 0.5, 0.5, 0.1, 0.5, 0.1))
    for option, model, error in (
        ("--cross-encoder", tiny_st_dir, "is not a cross-encoder"),
        ("--model", tiny_ce_dir, "is a cross-encoder"),
        ("--cross-encoder", orphan, "fuses this judge with the bi-encoder '../gone'"),
    ):
        argv = ["compare", "sts", "--data", str(sts_csv), option, str(model)]
        assert error in user_error(capsys, argv)
    assert ran == []


# --- what is and is not a user error ------------------------------------------------------------


def test_third_party_value_error_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ValueError raised outside sentsim's package is a bug: it propagates, even when the path
    of the code that raised it contains "/sentsim/" (a checkout named sentsim with its .venv)."""
    namespace: dict[str, object] = {}
    fake = "/home/user/sentsim/.venv/lib/python3.11/site-packages/thirdparty/mod.py"
    exec(compile("def boom(args):\n    raise ValueError('inner bug')\n", fake, "exec"), namespace)
    monkeypatch.setattr(basic, "_similarity", namespace["boom"])
    with pytest.raises(ValueError, match="inner bug"):
        main(["similarity", "a", "b"])


def test_keyboard_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(basic, "_similarity", interrupted)
    assert main(["similarity", "a", "b"]) == 130
    assert capsys.readouterr().err.strip() == "sentsim: interrupted"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from sentsim import __version__

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"sentsim {__version__}"


def test_parsing_the_command_line_imports_neither_torch_nor_scipy() -> None:
    """--help, --version and argument errors answer at once: the heavy libraries load only when a
    command runs (torch alone takes about a second here)."""
    import subprocess
    import sys

    code = (
        "import sys; from sentsim.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'scipy.stats', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_argument_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["similarity", "only-one-text"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["eval", "sts", "--model", "m", "--baseline", "overlap"])  # mutually exclusive


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["encode"],
        ["similarity"],
        ["distill-static"],
        ["demo"],
        ["eval"],
        ["eval", "sts"],
        ["compare"],
        ["compare", "sts"],
    ],
    ids=lambda argv: " ".join(argv) or "sentsim",
)
def test_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: sentsim {' '.join(argv)}".rstrip())


def test_every_option_of_every_command_says_what_it_does() -> None:
    """``--epochs EPOCHS`` with no text (and no default shown) was all some commands' help gave."""
    import argparse

    from sentsim.cli import build_parser

    def parsers(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, Any]]:
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    yield from parsers(child, f"{name} {sub}")

    silent = [
        f"{name}: {action.option_strings or action.dest}"
        for name, parser in parsers(build_parser(), "sentsim")
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and not action.help
        and action.option_strings != ["--version"]
    ]
    assert silent == []
    # `train bi-encoder --base` (minilm), `eval retrieval --retriever` (dense), augsbert's --lr:
    # the value used when an option is left out was not shown
    unstated = [
        f"{name}: {action.option_strings} = {action.default!r}"
        for name, parser in parsers(build_parser(), "sentsim")
        for action in parser._actions
        if action.option_strings
        and action.default not in (None, False, [], argparse.SUPPRESS)
        and "default" not in (action.help or "")
    ]
    assert unstated == []
    # `search --json` and `index info --json` said "print JSON instead of text": the one prints
    # its text and then a JSON line, the other's text is indented JSON
    claims = [
        name
        for name, parser in parsers(build_parser(), "sentsim")
        for action in parser._actions
        if "instead of text" in (action.help or "")
    ]
    assert claims == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["bi-encoder", "--loss", "cosent", "--corpus", "C"],
            "--corpus is the softmax's documents",
        ),
        (["bi-encoder", "--loss", "mnrl", "--both-orders"], "--both-orders and --skip-bad-rows"),
        (["bi-encoder", "--loss", "mnrl", "--skip-bad-rows"], "are for pair files"),
        (["cross-encoder", "--labels", "a", "b"], "--labels names classes, but the training"),
        (["cross-encoder", "--loss", "listwise", "--skip-bad-rows"], "are for pointwise pair"),
    ],
)
def test_training_options_that_would_be_ignored_are_refused(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    sts_csv: Path,
    tiny_st_dir: Path,
) -> None:
    """Each was accepted and silently had no effect."""
    rows = [f"sentence {i} here,another sentence {i},{i % 5}" for i in range(12)]
    data = tmp_path / "pairs.csv"
    data.write_text("sentence1,sentence2,score\n" + "\n".join(rows) + "\n")
    argv = [str(sts_csv) if a == "C" else a for a in argv]
    full = ["train", *argv[:1], "--train", str(data), "--base", str(tiny_st_dir)]
    full += ["--out", str(tmp_path / "out"), *argv[1:]]
    assert message in user_error(capsys, full)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["bi-encoder", "cross-encoder", "distill"])
@pytest.mark.parametrize(
    ("dev_rows", "what"),
    [
        (["a man plays,a dog runs,3"], "1 pair(s), every score 3.0"),
        (["a man plays,a dog runs,3", "the cat,a car,3"], "2 pair(s), every score 3.0"),
    ],
)
def test_a_dev_file_no_epoch_can_be_selected_on_is_refused_before_training(
    kind: str,
    dev_rows: list[str],
    what: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_st_dir: Path,
) -> None:
    """One dev pair, or every dev score equal: Spearman is undefined. The run trained a whole
    epoch, then ended with 'every gold score is 3.0' naming no file, and left no model."""
    rows = [f"sentence {i} here,another sentence {i},{i % 5}" for i in range(12)]
    data = tmp_path / "pairs.csv"
    data.write_text("sentence1,sentence2,score\n" + "\n".join(rows) + "\n")
    dev = tmp_path / "dev.csv"
    dev.write_text("sentence1,sentence2,score\n" + "\n".join(dev_rows) + "\n")
    source = ["--teacher", str(tiny_st_dir), "--sentences"] if kind == "distill" else ["--train"]
    argv = ["train", kind, *source, str(data), "--dev", str(dev), "--base", str(tiny_st_dir)]
    line = user_error(capsys, [*argv, "--out", str(tmp_path / "out"), "--no-progress"])
    assert f"dev file {dev}: {what}" in line and "different scores" in line
    assert not (tmp_path / "out").exists()


def test_train_bi_encoder_lists_every_loss(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """An unknown --loss listed "mnrl or one of ['cosent', 'cosine-mse']", leaving out
    corpus-softmax."""
    argv = ["train", "bi-encoder", "--train", "t.csv", "--out", str(tmp_path / "o"), "--loss", "x"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'x'" in err
    assert all(loss in err for loss in ("'cosent'", "'cosine-mse'", "'mnrl'", "'corpus-softmax'"))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("loss", ["cosent", "mnrl"])
def test_train_bi_encoder_max_length_is_read_during_training_and_saved(
    loss: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    """A bi-encoder trained at the base's length whatever the data: passages of SciFact are cut
    at MiniLM's 256 tokens, and there was no way to ask for fewer (faster) or more."""
    from sentsim.bi_encoder import BiEncoder

    if loss == "mnrl":
        data = write_anchor_positive_rows(tmp_path / "rows.jsonl", 12)
    else:
        rows = [f"sentence {i} here,another sentence {i},{i % 5}" for i in range(12)]
        data = tmp_path / "pairs.csv"
        data.write_text("sentence1,sentence2,score\n" + "\n".join(rows) + "\n")
    assert BiEncoder.load(tiny_st_dir).max_seq_length != 9
    out = tmp_path / "out"
    argv = ["train", "bi-encoder", "--train", str(data), "--base", str(tiny_st_dir), "--loss", loss,
            "--epochs", "1", "--no-progress", "--max-length", "9", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert BiEncoder.load(out).max_seq_length == 9
    assert "--max-length 9" in (out / "README.md").read_text()
    capsys.readouterr()
    too_long = user_error(capsys, [*argv[:-3], "1000", "--out", str(tmp_path / "o2")])
    assert "max length 1000" in too_long and "reads 1 to 64 tokens" in too_long
    assert "--max-length 0: a model reads at least 1" in user_error(
        capsys, [*argv[:-3], "0", "--out", str(tmp_path / "o3")]
    )
    assert not (tmp_path / "o3").exists()


def write_anchor_positive_rows(path: Path, count: int) -> Path:
    """``count`` JSON lines of anchor / positive, each positive distinct."""
    rows = [
        {"anchor": f"question {i} about cards", "positive": f"article {i}"} for i in range(count)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_mine_refuses_an_out_that_is_a_folder_before_mining(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    """--out naming a folder ended in an IsADirectoryError traceback after the whole run."""
    train = write_anchor_positive_rows(tmp_path / "ap.jsonl", 8)
    argv = ["mine", "--train", str(train), "--model", str(tiny_st_dir), "--out", str(tmp_path)]
    assert f"--out {tmp_path} is a folder; give a file name" in user_error(capsys, argv)


def test_mine_cut_off_while_writing_leaves_the_last_whole_output(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_st_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """mine wrote straight into --out: a kill mid-write left a shorter file of whole JSON lines
    that looked finished. It now writes beside it and renames the file into place."""
    import sentsim.training.mining as mining

    train = write_anchor_positive_rows(tmp_path / "ap.jsonl", 6)
    out = tmp_path / "negatives.jsonl"
    argv = ["mine", "--train", str(train), "--model", str(tiny_st_dir), "--negatives", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    whole = out.read_text()
    assert len(whole.splitlines()) == 12
    real = mining.mine_negatives

    def cut_off(*args: object, **kwargs: object) -> object:
        def rows():  # type: ignore[no-untyped-def]
            for i, row in enumerate(real(*args, **kwargs)):  # type: ignore[arg-type]
                if i == 3:
                    raise KeyboardInterrupt
                yield row

        return rows()

    monkeypatch.setattr(mining, "mine_negatives", cut_off)
    assert main([*argv, "--out", str(out)]) == 130
    assert out.read_text() == whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ap.jsonl", "negatives.jsonl"]
    capsys.readouterr()


def test_mine_takes_fewer_rows_than_training_needs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    """Three rows were refused with "training needs at least 8": mining trains nothing."""
    train = write_anchor_positive_rows(tmp_path / "ap.jsonl", 3)
    out = tmp_path / "mined" / "negatives.jsonl"
    argv = ["mine", "--train", str(train), "--model", str(tiny_st_dir), "--negatives", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "for 3 anchors" in capsys.readouterr().out
    mined = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(mined) == 3
    assert all(row["negative"] != row["positive"] for row in mined)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    line = user_error(capsys, ["mine", "--train", str(empty), "--out", str(out)])
    assert "empty.jsonl: 0 rows; mining needs at least 1" in line


def test_mine_names_mining_not_a_loss_when_its_rows_lack_columns(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """mine said "the loss needs anchor, positive ..." (mining has no loss)."""
    out = tmp_path / "negatives.jsonl"
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("sentence1,sentence2,score\na dog,a cat,1\n", encoding="utf-8")
    line = user_error(capsys, ["mine", "--train", str(pairs), "--bm25", "--out", str(out)])
    assert "; mining needs anchor, positive and optionally negative columns" in line
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"anchor": "a dog", "positive": ""}) + "\n", encoding="utf-8")
    line = user_error(capsys, ["mine", "--train", str(rows), "--bm25", "--out", str(out)])
    assert line.endswith("line 1: needs non-empty 'anchor' and 'positive' text for mining")
    assert "loss" not in line


def test_static_models_and_distill_static_outputs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    """A static model named as --model said 'no weights'; distill-static overwrote any folder
    and took a negative --dim (Python slicing made a 381-wide model)."""
    argv = ["similarity", "--model", "static-minilm", "a", "b"]
    assert "is a static embedding model (sentsim distill-static)" in user_error(capsys, argv)
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.json").write_text("keep")
    base = ["distill-static", "--teacher", str(tiny_st_dir)]
    line = user_error(capsys, [*base, "--out", str(project)])
    assert "is a folder of other files" in line and (project / "config.json").read_text() == "keep"
    assert "--dim must be at least 1, got -3" in user_error(
        capsys, [*base, "--dim", "-3", "--out", str(tmp_path / "s")]
    )
    assert "a static model from" in user_error(
        capsys, [*base, "--dim", "100000", "--out", str(tmp_path / "s")]
    )
    assert main([*base, "--dim", "4", "--out", str(tmp_path / "s")]) == 0
    assert main([*base, "--dim", "4", "--out", str(tmp_path / "s")]) == 0  # its own: rewritten
    capsys.readouterr()
    helpcenter = ["helpcenter-data", "--out", str(tmp_path / "hc"), "--dev-fraction"]
    assert "the dev fraction must be between 0 and 1" in user_error(capsys, [*helpcenter, "1.5"])
    assert not (tmp_path / "hc").exists()


def test_a_distilled_static_model_is_evaluated_as_itself(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    """A model from distill-static given as --model to eval sts was refused with "evaluate it with
    `sentsim eval sts --baseline static`", which scores the shipped static-minilm instead of it:
    another model's figures under the user's name for them. eval sts, eval pairs and compare sts
    now read it as --model; other commands' refusal names that way."""
    static = tmp_path / "static"
    assert (
        main(["distill-static", "--teacher", str(tiny_st_dir), "--dim", "4", "--out", str(static)])
        == 0
    )
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(
        "sentence1,sentence2,score,label\n"
        "a dog plays,a dog is playing,5,1\na man eats,a woman eats,2.5,1\n"
        "a cat,the bank card,0,0\nmy card,my pin,1,0\n"
    )
    capsys.readouterr()
    assert main(["eval", "sts", "--data", str(pairs), "--model", str(static), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["model"] == str(static) and result["compute_precision"] is None
    from sentsim.baselines.static import StaticEncoder
    from sentsim.data import read_pairs
    from sentsim.evaluation.scorers import EncoderPairScorer
    from sentsim.evaluation.sts import evaluate_sts

    expected = evaluate_sts(read_pairs(pairs), EncoderPairScorer(StaticEncoder.load(static)))
    assert result["spearman"] == expected.spearman
    assert main(["eval", "pairs", "--data", str(pairs), "--model", str(static)]) == 0
    assert f"{static} on {pairs}" in capsys.readouterr().out
    line = user_error(capsys, ["similarity", "--model", str(static), "a", "b"])
    assert "--baseline static" not in line and f"eval sts --model {static}" in line


@pytest.mark.usefixtures("no_data")
def test_helpcenter_data_refuses_a_file_as_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out naming a file ended in FileExistsError's traceback, after Banking77 was read."""
    out = tmp_path / "notes.txt"
    out.write_text("keep")
    line = user_error(capsys, ["helpcenter-data", "--out", str(out)])
    assert f"--out {out} is a file; give a folder" in line and out.read_text() == "keep"


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`sentsim index info | head` ended in a BrokenPipeError traceback."""
    import subprocess
    import sys

    script = (
        "import sys; import sentsim.cli.basic as b; from sentsim.cli import main\n"
        "def many(args):\n"
        "    for i in range(200000): print('line', i)\n"
        "b._similarity = many\n"
        "sys.exit(main(['similarity', 'a', 'b']))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"line 0\n"
    proc.stdout.close()  # the reader leaves, as head does
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141 and b"Traceback" not in err, err
