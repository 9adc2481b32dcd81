"""Duplicate detection: candidate pairs, grouping, the judge's decision, thresholds and the CLI.

The core is checked on hand-made vectors (every cosine known); the command runs end to end on the
tiny model of ``conftest.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from sentsim.cli import main
from sentsim.data import read_pairs
from sentsim.duplicates import (
    candidate_pairs,
    choose_threshold,
    find_duplicates,
    group_duplicates,
)
from sentsim.errors import DataError
from test_cli import last_json, user_error

# unit vectors at angles (degrees) on a circle: cosine = cos(difference)
ANGLES = {"a": 0.0, "a'": 10.0, "a''": 20.0, "b": 90.0, "b'": 95.0, "c": 200.0}


class AngleEncoder:
    """Each text is the unit vector at its angle in ANGLES."""

    name = "angles"
    dim = 2

    def __init__(self) -> None:
        self.calls = 0

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        self.calls += 1
        radians = np.deg2rad([ANGLES[t] for t in texts])
        return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


class ListJudge:
    """Scores a pair 0.9 when both texts start with the same letter, else 0.2; records calls."""

    name = "letters"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        self.seen += list(pairs)
        return np.array([0.9 if a[0] == b[0] else 0.2 for a, b in pairs], dtype=np.float32)


TEXTS = list(ANGLES)


def cos(x: str, y: str) -> float:
    return float(np.cos(np.deg2rad(ANGLES[x] - ANGLES[y])))


def test_candidates_are_unique_nearest_pairs_above_the_bound() -> None:
    vectors = AngleEncoder().encode(TEXTS)
    first, second, cosine = candidate_pairs(vectors, neighbours=2, min_cosine=0.5)
    found = {(TEXTS[i], TEXTS[j]): c for i, j, c in zip(first, second, cosine, strict=True)}
    # each text's two nearest others, kept when cos ≥ 0.5, each unordered pair once (i < j)
    assert set(found) == {("a", "a'"), ("a", "a''"), ("a'", "a''"), ("b", "b'")}
    assert all(i < j for i, j in zip(first, second, strict=True))
    for (x, y), c in found.items():
        assert c == pytest.approx(cos(x, y), abs=1e-6)
    one, _, _ = candidate_pairs(vectors, neighbours=1, min_cosine=0.5)
    assert len(one) == 3  # a–a', a''–a', b–b' (a's and a'''s nearest is a')
    empty = candidate_pairs(vectors[:1], neighbours=3, min_cosine=0.0)
    assert [len(x) for x in empty] == [0, 0, 0]
    with pytest.raises(ValueError, match="neighbours must be at least 1"):
        candidate_pairs(vectors, neighbours=0, min_cosine=0.0)


def test_hnsw_candidates_agree_with_exact_search() -> None:
    """Large collections search an HNSW graph (auto from 100,000 texts); on a small one it finds
    what exact search finds, with the same (exact) cosines."""
    from sentsim.index_cache import AnnKind, AnnSettings

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 16))
    vectors = (centres[rng.integers(0, 40, 600)] + 0.3 * rng.normal(size=(600, 16))).astype(
        np.float32
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = candidate_pairs(vectors, neighbours=5, min_cosine=0.6)
    graph = candidate_pairs(
        vectors, neighbours=5, min_cosine=0.6, ann=AnnSettings(kind=AnnKind.HNSW)
    )
    pairs = {(int(i), int(j)): float(c) for i, j, c in zip(*exact, strict=True)}
    found = {(int(i), int(j)): float(c) for i, j, c in zip(*graph, strict=True)}
    assert len(pairs) > 500 and len(set(pairs) & set(found)) >= 0.99 * len(pairs)
    assert all(abs(pairs[p] - found[p]) < 1e-5 for p in set(pairs) & set(found))


def test_groups_are_connected_components_largest_first() -> None:
    groups = group_duplicates([(4, 5), (0, 2), (2, 3)], 7)
    assert groups == [[0, 2, 3], [4, 5]]  # 1 and 6 have no duplicate: in no group
    assert group_duplicates([], 3) == []
    assert group_duplicates([(1, 0), (3, 2)], 4) == [[0, 1], [2, 3]]


def test_without_a_judge_the_cosine_decides() -> None:
    report = find_duplicates(TEXTS, AngleEncoder(), threshold=0.96, ids=list("ABCDEF"))
    # cos 10° 0.985 (a–a', a'–a''), cos 5° 0.996 (b–b'), cos 20° 0.940 (a–a'') is below
    assert [(p.first_id, p.second_id) for p in report.pairs] == [("D", "E"), ("A", "B"), ("B", "C")]
    assert [p.score for p in report.pairs] == sorted((p.score for p in report.pairs), reverse=True)
    assert report.groups == [["A", "B", "C"], ["D", "E"]]
    assert not report.judged and report.texts == 6
    assert set(report.seconds) == {"encode", "candidates"}


def test_threshold_1_finds_exact_copies() -> None:
    """The float32 cosine of a' (10°) with itself is 0.99999994: with --threshold 1, a
    collection's identical texts were not duplicates."""
    report = find_duplicates(["a'", "b", "a'", "b"], AngleEncoder(), threshold=1.0)
    assert sorted((p.first_id, p.second_id) for p in report.pairs) == [("0", "2"), ("1", "3")]
    assert report.groups == [["0", "2"], ["1", "3"]]


class ScaledAngleEncoder(AngleEncoder):
    """AngleEncoder's vectors times 10, as an encoder without normalization gives (norm 10)."""

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        return 10 * super().encode(texts)


def test_an_encoder_that_does_not_normalize_is_compared_by_cosine() -> None:
    """A plain Hugging Face BiEncoder (normalize=False) gave inner products as "cosines" (100
    here): every pair passed the threshold."""
    report = find_duplicates(TEXTS, ScaledAngleEncoder(), threshold=0.96)
    assert [(p.first_id, p.second_id) for p in report.pairs] == [("3", "4"), ("0", "1"), ("1", "2")]
    expected = [cos("b", "b'"), cos("a", "a'"), cos("a'", "a''")]
    assert [p.cosine for p in report.pairs] == pytest.approx(expected, abs=1e-6)


# lengths of a dot-product model's vectors, each at its ANGLES direction
LENGTHS = {"a": 1.0, "a'": 1.0, "a''": 3.0, "b": 2.0, "b'": 2.0, "c": 1.0}


class DotAngleEncoder(AngleEncoder):
    """A dot-product model (``similarity_fn_name: "dot"``): AngleEncoder's directions, with the
    lengths of LENGTHS, so that the dot product ranks pairs otherwise than the cosine."""

    similarity_fn_name = "dot"

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        lengths = np.array([[LENGTHS[t]] for t in texts], dtype=np.float32)
        return lengths * super().encode(texts)


def dot(x: str, y: str) -> float:
    return LENGTHS[x] * LENGTHS[y] * cos(x, y)


def test_a_dot_product_model_decides_by_its_dot_product_bounded_by_cosine() -> None:
    """A dot-product model's pairs were decided by cosine, and a threshold above 1 refused: its
    dot product decides (as sentence-transformers' model.similarity compares), each pair keeps
    its cosine, and ``min_cosine`` still bounds the candidates by cosine."""
    report = find_duplicates(TEXTS, DotAngleEncoder(), threshold=2.5)
    assert report.similarity == "dot"
    # b–b' 3.98, a'–a'' 2.95, a–a'' 2.82; a–a' (cosine 0.985, dot 0.985) is not one
    found = [(TEXTS[p.first], TEXTS[p.second]) for p in report.pairs]
    assert found == [("b", "b'"), ("a'", "a''"), ("a", "a''")]
    assert [p.score for p in report.pairs] == pytest.approx([dot(*f) for f in found], abs=1e-5)
    assert [p.cosine for p in report.pairs] == pytest.approx([cos(*f) for f in found], abs=1e-6)
    bounded = find_duplicates(TEXTS, DotAngleEncoder(), threshold=2.5, min_cosine=0.95)
    assert [(p.first_id, p.second_id) for p in bounded.pairs] == [("3", "4"), ("1", "2")]
    with pytest.raises(ValueError, match="threshold must be a number ≤ 1"):  # a judge's score
        find_duplicates(TEXTS, DotAngleEncoder(), threshold=2.5, judge=ListJudge())


def test_a_model_compared_by_a_distance_is_refused() -> None:
    """Duplicates are found by cosine or dot product; an encoder compared otherwise is named."""

    class EuclideanEncoder(AngleEncoder):
        similarity_fn_name = "euclidean"

    with pytest.raises(ValueError, match="angles compares its vectors by euclidean; duplicates"):
        find_duplicates(TEXTS, EuclideanEncoder(), threshold=0.5)


def test_with_a_judge_it_decides_among_the_candidates_only() -> None:
    judge = ListJudge()
    report = find_duplicates(
        TEXTS, AngleEncoder(), threshold=0.5, judge=judge, neighbours=5, min_cosine=0.0
    )
    # the judge saw every candidate with cos ≥ 0 and kept the same-letter ones
    assert len(judge.seen) == report.candidates
    assert all(cos(x, y) >= 0 for x, y in judge.seen)
    kept = {(p.first_id, p.second_id) for p in report.pairs}
    assert kept == {("0", "1"), ("0", "2"), ("1", "2"), ("3", "4")}
    assert all(p.score == pytest.approx(0.9) for p in report.pairs)
    assert report.judged and "judge" in report.seconds
    # a high min_cosine keeps the far pairs away from the judge
    judge = ListJudge()
    report = find_duplicates(TEXTS, AngleEncoder(), threshold=0.5, judge=judge, min_cosine=0.99)
    assert judge.seen == [("b", "b'")] and [p.first_id for p in report.pairs] == ["3"]


def test_ids_must_match_the_texts() -> None:
    with pytest.raises(ValueError, match="2 ids for 6 texts"):
        find_duplicates(TEXTS, AngleEncoder(), threshold=0.5, ids=["x", "y"])


def test_threshold_from_dev_pairs_maximises_f1(tmp_path: Path) -> None:
    dev = tmp_path / "dev.csv"
    rows = [("a", "a'", 1), ("a", "a''", 1), ("b", "b'", 1), ("a", "b", 0), ("a''", "c", 0)]
    dev.write_text("sentence1,sentence2,label\n" + "".join(f"{x},{y},{z}\n" for x, y, z in rows))

    class CosineScorer:
        name = "cos"

        def score_pairs(
            self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
        ) -> NDArray[np.float32]:
            return np.array([cos(x, y) for x, y in pairs], dtype=np.float32)

    chosen = choose_threshold(CosineScorer(), read_pairs(dev))
    assert chosen.f1 == 100.0 and cos("a", "b") < chosen.threshold <= cos("a", "a''")


# --- command line -------------------------------------------------------------------------------


def test_cli_txt_threshold_writes_pairs_and_groups(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    src = tmp_path / "texts.txt"
    src.write_text("card declined abroad\n\ncard declined abroad\nopen a savings account\n")
    out, groups = tmp_path / "out" / "pairs.jsonl", tmp_path / "groups.jsonl"
    argv = ["duplicates", str(src), "--model", str(tiny_st_dir), "--threshold", "0.99"]
    argv += ["--out", str(out), "--groups", str(groups), "--json"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    summary = last_json(printed)
    assert summary["texts"] == 3 and summary["duplicates"] == 1 and summary["groups"] == 1
    assert summary["threshold_from"] == "--threshold" and summary["decided_by"] == "cosine"
    (pair,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (pair["id1"], pair["id2"]) == ("1", "3")  # ids are line numbers; the blank line 2
    assert pair["score"] == pytest.approx(1.0, abs=1e-5)
    assert json.loads(groups.read_text()) == {"size": 2, "ids": ["1", "3"]}
    assert "1: card declined abroad" in printed
    # a folder as --groups: refused before the work, not a traceback when writing at the end
    bad = ["duplicates", str(src), "--model", str(tiny_st_dir), "--threshold", "0.99"]
    line = user_error(capsys, [*bad, "--groups", str(tmp_path)])
    assert f"--groups {tmp_path} is a folder; give a file name" in line


def test_cli_reports_the_cosine_threshold_that_decided(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    """--threshold -3 reported "cosine ≥ -3.0000", though no pair under --min-cosine (0.5) is
    ever a candidate: the summary gives the bound that decided and where it came from."""
    src = tmp_path / "texts.txt"
    src.write_text("card declined abroad\ncard declined abroad\nopen a savings account\n")
    argv = ["duplicates", str(src), "--model", str(tiny_st_dir), "--json", "--threshold"]
    assert main([*argv, "-3"]) == 0
    printed = capsys.readouterr().out
    assert "duplicates (cosine ≥ 0.5000: --min-cosine; --threshold -3.0000 is below it)" in printed
    summary = last_json(printed)
    assert (summary["threshold"], summary["threshold_from"]) == (0.5, "--min-cosine")
    assert main([*argv, "0.7"]) == 0  # above --min-cosine: as given
    printed = capsys.readouterr().out
    assert "duplicates (cosine ≥ 0.7000) in " in printed
    assert (last_json(printed)["threshold"], last_json(printed)["threshold_from"]) == (
        0.7,
        "--threshold",
    )


def test_cli_decides_a_dot_product_model_by_its_dot_product(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_dot_dir: Path
) -> None:
    """``sentsim duplicates --model`` a dot-product model (msmarco-*-dot-*) compared by cosine;
    its pairs are now scored by sentence-transformers' ``model.similarity`` (the dot product),
    the --dev threshold is chosen on the same scores, and the summary says which."""
    from sentence_transformers import SentenceTransformer

    src = tmp_path / "texts.txt"
    texts = ["card declined abroad", "my card was declined abroad", "open a savings account"]
    src.write_text("\n".join(texts) + "\n")
    dev = tmp_path / "dev.csv"
    dev.write_text(
        "sentence1,sentence2,label\ncard declined,my card was declined,1\n"
        "card declined,a savings account,0\n"
    )
    out = tmp_path / "pairs.jsonl"
    argv = ["duplicates", str(src), "--model", str(tiny_dot_dir), "--dev", str(dev)]
    assert main([*argv, "--min-cosine", "-1", "--out", str(out), "--json"]) == 0
    printed = capsys.readouterr().out
    summary = last_json(printed)
    assert (
        summary["decided_by"] == "dot" and f"(dot product ≥ {summary['threshold']:.4f})" in printed
    )
    reference = SentenceTransformer(str(tiny_dot_dir), device="cpu")
    vectors = reference.encode(texts)
    scores = reference.similarity(vectors, vectors).numpy()
    dev_scores = reference.similarity_pairwise(
        reference.encode(["card declined", "card declined"]),
        reference.encode(["my card was declined", "a savings account"]),
    ).numpy()
    assert min(dev_scores) < summary["threshold"] <= max(dev_scores)  # between the dev pairs'
    assert summary["threshold"] > 1.5  # a dot product
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows, "no pair passed the dev threshold: the test checks nothing"
    for row in rows:
        i, j = int(row["id1"]) - 1, int(row["id2"]) - 1
        assert row["score"] == pytest.approx(float(scores[i, j]), rel=1e-5)
        assert row["score"] >= summary["threshold"]


def test_cli_dev_chooses_the_threshold_and_a_corpus_keeps_its_ids(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    corpus = tmp_path / "faq.jsonl"
    docs = [("q1", "how do I reset my PIN"), ("q2", "how do I reset my PIN"), ("q3", "fees")]
    corpus.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in docs))
    dev = tmp_path / "dev.csv"
    dev.write_text("sentence1,sentence2,label\nreset PIN,reset PIN,1\nreset PIN,fees abroad,0\n")
    argv = ["duplicates", str(corpus), "--model", str(tiny_st_dir), "--dev", str(dev), "--json"]
    assert main([*argv, "--cross-encoder", str(tiny_ce_dir)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("threshold ") and f"best F1 on {dev} (2 pairs)" in printed
    summary = last_json(printed)
    assert summary["threshold_from"] == f"dev:{dev}" and summary["decided_by"] == "judge"


def test_cli_batch_size_reaches_the_judge(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_st_dir: Path,
    tiny_ce_dir: Path,
) -> None:
    """``--batch-size`` set the bi-encoder's batches only; the judge read 32 pairs at a time."""
    from sentsim.cross_encoder import CrossEncoder

    sizes: list[int] = []
    original = CrossEncoder.predict

    def spy(self: CrossEncoder, pairs: Sequence[tuple[str, str]], **kw: object) -> NDArray:
        sizes.append(int(kw["batch_size"]))  # type: ignore[call-overload]
        return original(self, pairs, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(CrossEncoder, "predict", spy)
    src = tmp_path / "texts.txt"
    src.write_text("card declined abroad\ncard declined abroad\nopen a savings account\n")
    argv = ["duplicates", str(src), "--model", str(tiny_st_dir), "--threshold", "0.5"]
    assert main([*argv, "--cross-encoder", str(tiny_ce_dir), "--batch-size", "5"]) == 0
    capsys.readouterr()
    assert sizes and set(sizes) == {5}


def test_cli_batch_size_reaches_the_dev_scoring_of_the_bi_encoder(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_st_dir: Path,
) -> None:
    """The --dev pairs were encoded 32 texts at a time whatever --batch-size said."""
    from sentsim.bi_encoder import BiEncoder

    sizes: list[int] = []
    original = BiEncoder.encode

    def spy(self: BiEncoder, texts: Sequence[str], **kw: object) -> NDArray:
        sizes.append(int(kw.get("batch_size", 32)))  # type: ignore[call-overload]
        return original(self, texts, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(BiEncoder, "encode", spy)
    src = tmp_path / "texts.txt"
    src.write_text("card declined abroad\ncard declined abroad\nopen a savings account\n")
    dev = tmp_path / "dev.csv"
    dev.write_text("sentence1,sentence2,label\na card,the card,1\na card,a loan,0\n")
    argv = ["duplicates", str(src), "--model", str(tiny_st_dir), "--dev", str(dev)]
    assert main([*argv, "--batch-size", "7"]) == 0
    capsys.readouterr()
    assert sizes and set(sizes) == {7}


@pytest.mark.parametrize(
    ("content", "name", "extra", "message"),
    [
        ("\n \n", "t.txt", [], r"t\.txt: no text \(every line is empty\)"),
        (
            '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n',
            "c.jsonl",
            [],
            r"c\.jsonl: id 'a' is used by entries 1 and 2",
        ),
        ("a\nb\n", "t.txt", ["--neighbours", "0"], r"--neighbours must be at least 1"),
    ],
)
def test_cli_bad_input_is_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tiny_st_dir: Path,
    content: str,
    name: str,
    extra: list[str],
    message: str,
) -> None:
    src = tmp_path / name
    src.write_text(content)
    argv = ["duplicates", str(src), "--model", str(tiny_st_dir), "--threshold", "0.5", *extra]
    line = user_error(capsys, argv)
    assert re.search(message, line), line


def test_cli_needs_a_threshold_or_dev(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["duplicates", str(tmp_path / "t.txt")])
    assert info.value.code == 2
    assert "one of the arguments --threshold --dev is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # was "ann='ivf' is not an ANN kind", the Python name
        main(["duplicates", str(tmp_path / "t.txt"), "--threshold", "0.5", "--ann", "ivf"])
    assert "argument --ann: invalid choice: 'ivf'" in capsys.readouterr().err


def test_read_collection_errors_name_the_file(tmp_path: Path) -> None:
    from sentsim.cli.duplicates import read_collection

    with pytest.raises(DataError, match="corpus not found"):
        read_collection(tmp_path / "nothing.jsonl")
    # the corpus reader's list left out the .txt file that duplicates reads (a text a line)
    (tmp_path / "notes.md").write_text("a\nb\n")
    with pytest.raises(DataError, match=r"notes\.md: unknown collection format '\.md'; expected a "
                       r"\.txt file \(a text a line\), \.jsonl"):  # fmt: skip
        read_collection(tmp_path / "notes.md")


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="single str; wrap it in a list"):
        find_duplicates("abc", AngleEncoder(), threshold=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="id 'x' names two texts"):
        find_duplicates(["a", "b", "c"], AngleEncoder(), threshold=0.5, ids=["x", "y", "x"])
    for bad in (float("nan"), 2.0):
        with pytest.raises(ValueError, match="threshold must be a number ≤ 1"):
            find_duplicates(TEXTS, AngleEncoder(), threshold=bad)
        with pytest.raises(ValueError, match="min_cosine must be a number ≤ 1"):
            find_duplicates(TEXTS, AngleEncoder(), threshold=0.5, min_cosine=bad)
    # a text threshold failed inside math.isfinite naming no argument; a string of ids was
    # taken as one id per character
    with pytest.raises(TypeError, match=r"threshold must be a number, got str '0\.5'"):
        find_duplicates(TEXTS, AngleEncoder(), threshold="0.5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ids must be a list of names"):
        find_duplicates(TEXTS[:3], AngleEncoder(), threshold=0.5, ids="abc")


def test_a_cross_encoder_can_judge_directly(tiny_ce_dir: Path) -> None:
    from sentsim.cross_encoder import CrossEncoder

    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")
    report = find_duplicates(TEXTS, AngleEncoder(), threshold=0.0, judge=judge, min_cosine=0.9)
    expected = judge.predict([("a", "a'")], symmetric=True)[0]
    pair = next(p for p in report.pairs if (p.first_id, p.second_id) == ("0", "1"))
    assert report.judged and pair.score == pytest.approx(float(expected), abs=1e-6)


def test_identical_files_are_duplicates_whatever_their_names(tmp_path: Path) -> None:
    """The text is compared, not the title (a folder's title falls back to the file name)."""
    from sentsim.cli.duplicates import read_collection

    (tmp_path / "refund-policy.txt").write_text("Refunds take 14 days.\n")
    (tmp_path / "old-copy.txt").write_text("Refunds take 14 days.\n")
    ids, texts = read_collection(tmp_path)
    assert ids == ["old-copy.txt", "refund-policy.txt"] and texts[0] == texts[1]


def test_cli_outputs_never_overwrite_an_input_or_each_other(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_st_dir: Path
) -> None:
    """``--out`` naming the collection replaced the user's texts with the pairs found in them (and
    ``--out`` equal to ``--groups`` kept only the groups); each is now refused before any work,
    the file untouched."""
    src = tmp_path / "texts.txt"
    src.write_text("card declined\ncard declined\nopen an account\n")
    dev = tmp_path / "dev.csv"
    dev.write_text("sentence1,sentence2,label\ncard,card,1\ncard,account,0\n")
    argv = ["duplicates", str(src), "--model", str(tiny_st_dir), "--threshold", "0.99"]
    line = user_error(capsys, [*argv, "--out", str(src)])
    assert f"--out {src} is the input collection" in line
    line = user_error(capsys, [*argv, "--groups", str(tmp_path / "." / "texts.txt")])
    assert "--groups" in line and "is the input collection" in line
    both = str(tmp_path / "found.jsonl")
    line = user_error(capsys, [*argv, "--out", both, "--groups", both])
    assert f"--out and --groups both name {both}" in line
    dev_argv = ["duplicates", str(src), "--model", str(tiny_st_dir), "--dev", str(dev)]
    line = user_error(capsys, [*dev_argv, "--out", str(dev)])
    assert f"--out {dev} is the --dev file" in line
    assert src.read_text() == "card declined\ncard declined\nopen an account\n"
    assert dev.read_text().startswith("sentence1,sentence2,label\n")
