"""Pair-file readers: every format on small hand-written files, and every malformed case."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from sentsim.data import PairFormat, detect_format, read_pairs
from sentsim.errors import DataError

STSB_ROWS = [
    # genre, file, year, id, score, sentence1, sentence2
    ["main-captions", "MSRvid", "2012test", "0001", "5.000", "A plane is taking off.",
     "An air plane is taking off."],
    ["main-news", "headlines", "2015", "0002", "1.250", 'He said "no way',
     'The "quote" stays "as is"'],
    ["main-forums", "answers", "2016", "0003", "0.000", "It's 5'10\" tall.", "Nothing alike."],
]  # fmt: skip


def write(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def stsb_file(tmp_path: Path, extra: list[str] | None = None) -> Path:
    lines = ["\t".join(row + (extra or [])) for row in STSB_ROWS]
    return write(tmp_path / "sts.csv", "\n".join(lines) + "\n")


def assert_data_error(path: Path, line: int, fragment: str, **kwargs: object) -> DataError:
    """read_pairs raises DataError naming the file, the line and the problem."""
    with pytest.raises(DataError) as info:
        read_pairs(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert path.name in message
    assert re.search(rf"\bline {line}\b", message), message
    assert fragment in message
    return info.value


# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [None, ["none", "none"]], ids=["7-columns", "9-columns"])
def test_stsb_tsv(tmp_path: Path, extra: list[str] | None) -> None:
    path = stsb_file(tmp_path, extra)
    data = read_pairs(path)
    assert data.format == PairFormat.STSB
    assert len(data) == 3
    assert data.pairs()[0] == ("A plane is taking off.", "An air plane is taking off.")
    np.testing.assert_array_equal(data.scores(), [5.0, 1.25, 0.0])
    assert [e.line for e in data.examples] == [1, 2, 3]
    assert data.has_scores and not data.has_labels


def test_stsb_keeps_unbalanced_quotes_verbatim(tmp_path: Path) -> None:
    """STS-B is read with csv.QUOTE_NONE: a quote never starts a quoted field or eats a tab."""
    data = read_pairs(stsb_file(tmp_path))
    assert data.examples[1].sentence1 == 'He said "no way'
    assert data.examples[1].sentence2 == 'The "quote" stays "as is"'
    assert data.examples[2].sentence1 == "It's 5'10\" tall."
    assert data.examples[2].sentence2 == "Nothing alike."


def test_stsb_with_explicit_format(tmp_path: Path) -> None:
    path = stsb_file(tmp_path)
    assert read_pairs(path, fmt="stsb").format == PairFormat.STSB
    assert read_pairs(path, fmt=PairFormat.STSB).format == PairFormat.STSB


def test_mrpc_with_bom_and_crlf(tmp_path: Path) -> None:
    text = (
        "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n"
        "1\t101\t102\tThe bank raised its fee.\tThe bank's fee went up.\r\n"
        '0\t103\t104\tA "quoted\tNothing in common here.\r\n'
    )
    path = write(tmp_path / "msr.tsv", text)
    data = read_pairs(path)
    assert data.format == PairFormat.MRPC
    assert data.labels() == ["1", "0"]
    assert data.pairs() == [
        ("The bank raised its fee.", "The bank's fee went up."),
        ('A "quoted', "Nothing in common here."),
    ]
    assert [e.line for e in data.examples] == [2, 3]
    assert data.has_labels and not data.has_scores
    assert data.graded_scores().tolist() == [1.0, 0.0]  # MRPC read as graded pairs


def test_blank_lines_in_stsb_and_mrpc_are_no_rows(tmp_path: Path) -> None:
    """A blank line (a trailing one from an editor, CR LF included) is skipped, as CSV, TSV and
    JSON lines skip it; it was a bad row of "0 tab-separated columns" that refused the file."""
    sts = "\n".join("\t".join(row) for row in STSB_ROWS)
    data = read_pairs(write(tmp_path / "sts.csv", sts.replace("\n", "\n\n", 1) + "\n\r\n"))
    assert [e.line for e in data.examples] == [1, 3, 4]
    mrpc = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t1\t2\ta\tb\r\n\r\n"
    data = read_pairs(write(tmp_path / "msr.tsv", mrpc))
    assert (data.labels(), data.skipped) == (["1"], [])


def test_graded_scores_refuses_word_labels(tmp_path: Path) -> None:
    text = "sentence1,sentence2,label\na,b,1\nc,d,entailment\n"
    data = read_pairs(write(tmp_path / "nli.csv", text))
    with pytest.raises(DataError, match=r"nli.csv, line 3: label 'entailment' is not a number"):
        data.graded_scores()


def test_graded_scores_prefers_scores(tmp_path: Path) -> None:
    data = read_pairs(write(tmp_path / "s.csv", "sentence1,sentence2,score\na,b,4\nc,d,1\n"))
    assert data.graded_scores().tolist() == [4.0, 1.0]


def test_csv_with_quoted_commas_and_newlines(tmp_path: Path) -> None:
    text = (
        "sentence1,sentence2,score\n"
        '"Hello, world","Line one\nline two",3.5\n'
        'plain,"He said ""hi""",1\n'
    )
    data = read_pairs(write(tmp_path / "pairs.csv", text))
    assert data.format == PairFormat.CSV
    assert data.pairs() == [("Hello, world", "Line one\nline two"), ("plain", 'He said "hi"')]
    np.testing.assert_array_equal(data.scores(), [3.5, 1.0])


def test_csv_with_bom_crlf_and_extra_columns(tmp_path: Path) -> None:
    text = "\ufeffid,sentence1,sentence2,score\r\n7,a cat,a dog,2\r\n8,a car,a road,4\r\n"
    data = read_pairs(write(tmp_path / "pairs.csv", text))
    assert data.pairs() == [("a cat", "a dog"), ("a car", "a road")]
    np.testing.assert_array_equal(data.scores(), [2.0, 4.0])


def test_tsv_with_labels(tmp_path: Path) -> None:
    text = "sentence1\tsentence2\tlabel\nmy card\tthe card\tsame \nhello\tgoodbye\tdifferent\n"
    data = read_pairs(write(tmp_path / "pairs.tsv", text))
    assert data.format == PairFormat.TSV
    assert data.labels() == ["same", "different"]  # stripped
    assert data.has_labels and not data.has_scores


def test_tsv_is_one_pair_per_line_whatever_its_quotes(tmp_path: Path) -> None:
    """A TSV with a header was read with CSV quoting: STS-B's sentences cut into such a file
    (a sentence opening with an unbalanced quote) made one record of every line up to the next
    quote, or to the end of the file: 262 of STS-B test's 1,379 pairs were lost, counted by
    --skip-bad-rows as 3 rows, and balanced quotes vanished from the text. A TSV row is now one
    line, its cells verbatim; a cell wholly quoted in CSV style (pandas' ``sep="\\t"``) is
    unquoted."""
    rows = [
        ('"We believe we are ready," said Burger.', "We are ready, said Burger.", "3.75"),
        ("\"Tony's not feeling well, said the coach.", "We're thrilled,'' Popovich said.", "1.6"),
        ("A plane is taking off.", "An air plane is taking off.", "5.0"),
        ('"He said ""hi"" to me"', '"Stop"', "2.0"),
        ('He said "no way', "It's 5'10\" tall.", "0.5"),
    ]
    text = "sentence1\tsentence2\tscore\n" + "".join("\t".join(r) + "\n" for r in rows)
    data = read_pairs(write(tmp_path / "pairs.tsv", text))
    assert data.pairs() == [
        ('"We believe we are ready," said Burger.', "We are ready, said Burger."),
        ("\"Tony's not feeling well, said the coach.", "We're thrilled,'' Popovich said."),
        ("A plane is taking off.", "An air plane is taking off."),
        ('He said "hi" to me', "Stop"),
        ('He said "no way', "It's 5'10\" tall."),
    ]
    assert [e.line for e in data.examples] == [2, 3, 4, 5, 6]
    np.testing.assert_array_equal(data.scores(), [3.75, 1.6, 5.0, 2.0, 0.5])


def test_jsonl_with_scores_labels_and_blank_lines(tmp_path: Path) -> None:
    records = [
        {"sentence1": "a", "sentence2": "b", "score": 4.2, "label": 1},
        {"sentence1": "Café 東京", "sentence2": "🙂", "score": "0", "label": 0},
    ]
    text = json.dumps(records[0]) + "\n\n" + json.dumps(records[1], ensure_ascii=False) + "\n"
    data = read_pairs(write(tmp_path / "pairs.jsonl", text))
    assert data.format == PairFormat.JSONL
    assert data.pairs() == [("a", "b"), ("Café 東京", "🙂")]
    np.testing.assert_array_equal(data.scores(), [4.2, 0.0])
    assert data.labels() == ["1", "0"]
    assert [e.line for e in data.examples] == [1, 3]


def test_float_and_boolean_labels_read_as_0_and_1(tmp_path: Path) -> None:
    """A JSONL file exported with labels 1.0 / 0.0 or true / false, or a CSV with "1.0": binary
    labels, not two classes named "1.0" and "0.0" (a cross-encoder trained on them got two
    outputs and cross-entropy; a bi-encoder refused them as classes)."""
    rows = [("1.0", 1.0), ("0.0", 0.0), ("true", True), ("false", False), ("int", 1)]
    text = "".join(json.dumps({"text1": a, "text2": "b", "label": y}) + "\n" for a, y in rows)
    assert read_pairs(write(tmp_path / "p.jsonl", text)).labels() == ["1", "0", "1", "0", "1"]
    csv_text = "sentence1,sentence2,label\na,b,1.0\nc,d, 0.0\ne,f,2.0\ng,h,same\n"
    assert read_pairs(write(tmp_path / "p.csv", csv_text)).labels() == ["1", "0", "2.0", "same"]


def test_true_and_false_labels_in_a_csv_read_as_1_and_0(tmp_path: Path) -> None:
    """pandas writes a boolean column as ``True`` / ``False``; those are the same binary labels
    as JSON's ``true`` / ``false`` (case aside), not two classes named "True" and "False" (a
    cross-encoder trained on them got two outputs and cross-entropy). ``yes`` / ``no`` stay
    classes: they are words a labeller chose, like ``entailment``, and no rule says which is 1.
    """
    from sentsim.training.data import TargetKind, target_kind

    csv_text = "sentence1,sentence2,label\na,b,True\nc,d,False\ne,f, TRUE\ng,h,false\n"
    data = read_pairs(write(tmp_path / "p.csv", csv_text))
    assert data.labels() == ["1", "0", "1", "0"]
    assert target_kind(data) == TargetKind.BINARY
    jsonl = "".join(
        json.dumps({"sentence1": "a", "sentence2": "b", "label": y}) + "\n"
        for y in ("true", "False", "yes", "no")
    )
    data = read_pairs(write(tmp_path / "p.jsonl", jsonl))
    assert data.labels() == ["1", "0", "yes", "no"]
    yes_no = read_pairs(write(tmp_path / "y.csv", "sentence1,sentence2,label\na,b,yes\nc,d,no\n"))
    assert target_kind(yes_no) == TargetKind.CLASSES


def test_jsonl_labels_written_as_floats_or_booleans_are_0_and_1(tmp_path: Path) -> None:
    """A dataframe's 1.0 / 0.0 (or true / false) were labels "1.0" and "True": eval pairs refused
    them as "labels must be 0 or 1; found ['0.0', '1.0']"."""
    rows = [("a", "b", 1.0), ("c", "d", 0.0), ("e", "f", True), ("g", "h", False)]
    text = "".join(
        json.dumps({"sentence1": s1, "sentence2": s2, "is_duplicate": y}) + "\n"
        for s1, s2, y in rows
    )
    assert read_pairs(write(tmp_path / "pairs.jsonl", text)).labels() == ["1", "0", "1", "0"]


@pytest.mark.parametrize("name", ["p.csv", "p.tsv", "p.jsonl", "p.txt"])
@pytest.mark.parametrize("text", ["", "\n", "\ufeff", " \r\n\t\n"])
def test_an_empty_pair_file_is_called_empty(tmp_path: Path, name: str, text: str) -> None:
    """A file of nothing (or of blank lines, or a lone byte-order mark) was "line 1: cannot tell
    the format", which sends the user looking for a wrong header; it says the file is empty."""
    path = write(tmp_path / name, text)
    with pytest.raises(DataError, match=rf"pair file {re.escape(str(path))} is empty; expected"):
        read_pairs(path)
    with pytest.raises(DataError, match="is empty"):
        read_pairs(path, fmt="csv")


def test_jsonl_with_bom(tmp_path: Path) -> None:
    text = json.dumps({"sentence1": "a", "sentence2": "b", "score": 1}) + "\n"
    data = read_pairs(write(tmp_path / "pairs.jsonl", text, encoding="utf-8-sig"))
    assert data.pairs() == [("a", "b")]


@pytest.mark.parametrize(
    ("name", "first_line", "expected"),
    [
        ("x.jsonl", '{"sentence1": "a"}', PairFormat.JSONL),
        ("x.ndjson", '{"sentence1": "a"}', PairFormat.JSONL),
        # JSON lines, as corpora and training files: it was "cannot tell the format"
        ("x.json", '{"sentence1": "a"}', PairFormat.JSONL),
        ("x.txt", "sentence1,sentence2,score", PairFormat.CSV),
        ("x.txt", "sentence1\tsentence2\tscore", PairFormat.TSV),
        ("x.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", PairFormat.MRPC),
        ("x.csv", "g\tf\ty\ti\t1.0\ta\tb", PairFormat.STSB),
    ],
)
def test_detect_format(tmp_path: Path, name: str, first_line: str, expected: PairFormat) -> None:
    assert detect_format(write(tmp_path / name, first_line + "\n")) == expected


SICK_TEXT = (
    "pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n"
    "1\tA man is playing a guitar\tA man plays the guitar\t4.9\tENTAILMENT\n"
    "2\tA dog runs\tA cat sleeps on a sofa\t1.3\tNEUTRAL\n"
)


def test_sick_file_is_read_as_graded_pairs(tmp_path: Path) -> None:
    """SICK's own header (sentence_A, sentence_B, relatedness_score) needs no conversion."""
    path = write(tmp_path / "SICK_test_annotated.txt", SICK_TEXT)
    assert detect_format(path) == PairFormat.TSV
    data = read_pairs(path)
    assert data.pairs() == [
        ("A man is playing a guitar", "A man plays the guitar"),
        ("A dog runs", "A cat sleeps on a sofa"),
    ]
    np.testing.assert_array_equal(data.scores(), [4.9, 1.3])
    assert not data.has_labels  # entailment_judgment is not a similarity label


@pytest.mark.parametrize(
    ("header", "row", "pair", "score", "label"),
    [
        ("text1,text2,label", "a,b,1", ("a", "b"), None, "1"),
        ("Sentence 1,Sentence-2,Similarity", "a,b,3.5", ("a", "b"), 3.5, None),
        ("id,qid1,qid2,question1,question2,is_duplicate", "7,1,2,a,b,0", ("a", "b"), None, "0"),
        ("premise,hypothesis,label", "a,b,entailment", ("a", "b"), None, "entailment"),
        ("Quality,#1 ID,#2 ID,#1 String,#2 String", "1,11,12,a,b", ("a", "b"), None, "1"),
    ],
    ids=["text1-text2", "spaces-case-hyphens", "quora", "nli", "mrpc-as-csv"],
)
def test_other_published_column_names(
    tmp_path: Path, header: str, row: str, pair: tuple[str, str], score: float | None,
    label: str | None,
) -> None:  # fmt: skip
    data = read_pairs(write(tmp_path / "pairs.csv", f"{header}\n{row}\n"))
    assert data.format == PairFormat.CSV
    example = data.examples[0]
    assert (example.sentence1, example.sentence2) == pair
    assert (example.score, example.label) == (score, label)


def test_jsonl_with_other_column_names(tmp_path: Path) -> None:
    text = (
        '{"sentence_A": "a", "sentence_B": "b", "relatedness_score": 4}\n'
        '{"text1": "c", "text2": "d", "label": 0}\n'
    )
    data = read_pairs(write(tmp_path / "pairs.jsonl", text))
    assert data.pairs() == [("a", "b"), ("c", "d")]
    assert [(e.score, e.label) for e in data.examples] == [(4.0, None), (None, "0")]


def test_two_names_for_one_column_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.csv", "sentence1,sentence2,score,similarity\na,b,1,2\n")
    error = assert_data_error(path, 1, "name the score column; keep one of them")
    assert "'score', 'similarity'" in str(error)


# --- score normalization ------------------------------------------------------------------------


def scores_csv(tmp_path: Path, scores: list[str]) -> Path:
    rows = [f"a{i},b{i},{s}" for i, s in enumerate(scores)]
    return write(tmp_path / "scores.csv", "sentence1,sentence2,score\n" + "\n".join(rows) + "\n")


def test_normalization_by_found_range(tmp_path: Path) -> None:
    """(s - lo) / (hi - lo) over the range found in the file: 1, 3, 5 → 0, 0.5, 1."""
    data = read_pairs(scores_csv(tmp_path, ["1", "3", "5"]))
    assert data.score_range == (1.0, 5.0)
    np.testing.assert_allclose(data.normalized_scores(), [0.0, 0.5, 1.0])


def test_normalization_by_given_range(tmp_path: Path) -> None:
    """With score_range=(0, 5): 1, 3, 5 → 0.2, 0.6, 1."""
    data = read_pairs(scores_csv(tmp_path, ["1", "3", "5"]), score_range=(0.0, 5.0))
    assert data.score_range == (0.0, 5.0)
    np.testing.assert_allclose(data.normalized_scores(), [0.2, 0.6, 1.0])
    np.testing.assert_array_equal(data.scores(), [1.0, 3.0, 5.0])  # raw scores untouched


def test_score_range_bounds_are_inclusive(tmp_path: Path) -> None:
    data = read_pairs(scores_csv(tmp_path, ["0", "5"]), score_range=(0.0, 5.0))
    assert len(data) == 2


def test_constant_scores_cannot_be_normalized(tmp_path: Path) -> None:
    data = read_pairs(scores_csv(tmp_path, ["2", "2"]))
    with pytest.raises(DataError, match=re.escape("every score is 2.0; cannot normalize")) as info:
        data.normalized_scores()
    assert "scores.csv" in str(info.value)


def test_scores_of_a_label_file_raise(tmp_path: Path) -> None:
    data = read_pairs(write(tmp_path / "l.tsv", "sentence1\tsentence2\tlabel\na\tb\t1\n"))
    with pytest.raises(DataError, match="has no 'score' column") as info:
        data.scores()
    assert "l.tsv" in str(info.value)


def test_a_row_without_a_score_is_named_and_labels_do_not_replace_the_scores(
    tmp_path: Path,
) -> None:
    """One row lacked its score: the file was said to have "no 'score' column", and graded
    scores silently became the 0/1 labels of every row."""
    text = "sentence1,sentence2,score,label\na,b,4.5,1\nc,d,,0\ne,f,1.0,0\n"
    data = read_pairs(write(tmp_path / "p.csv", text))
    message = r"p\.csv, line 3: has no score \(other rows have one\)"
    for method in (data.scores, data.graded_scores):
        with pytest.raises(DataError, match=message):
            method()
    text = "sentence1,sentence2,score,label\na,b,4.5,1\nc,d,2,\n"
    with pytest.raises(DataError, match=r"line 3: has no label \(other rows have one\)"):
        read_pairs(write(tmp_path / "q.csv", text)).labels()


def test_labels_of_a_score_file_raise(tmp_path: Path) -> None:
    data = read_pairs(scores_csv(tmp_path, ["1", "2"]))
    with pytest.raises(DataError, match="has no 'label' column"):
        data.labels()


# --- malformed input ----------------------------------------------------------------------------


def test_bad_score(tmp_path: Path) -> None:
    assert_data_error(scores_csv(tmp_path, ["1", "abc", "3"]), 3, "score 'abc' is not a number")


def test_non_finite_score(tmp_path: Path) -> None:
    assert_data_error(scores_csv(tmp_path, ["1", "2", "nan"]), 4, "score 'nan' is not finite")


def test_bad_score_in_stsb(tmp_path: Path) -> None:
    path = write(tmp_path / "sts.csv", "g\tf\ty\t1\t2.0\ta\tb\ng\tf\ty\t2\thigh\tc\td\n")
    assert_data_error(path, 2, "score 'high' is not a number")


def test_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.csv", "sentence1,other,score\na,b,1\n")
    error = assert_data_error(path, 1, "expected sentence1, sentence2 and score or label")
    assert "'other'" in str(error)


def test_header_without_score_or_label(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.tsv", "sentence1\tsentence2\tnote\na\tb\tx\n")
    assert_data_error(path, 1, "expected sentence1, sentence2 and score or label")


def test_too_few_columns_in_stsb(tmp_path: Path) -> None:
    lines = ["g\tf\ty\t1\t2.0\ta\tb", "g\tf\ty\t1\t2.0\ta\tb", "g\tf\t3.0\tonly five"]
    path = write(tmp_path / "sts.csv", "\n".join(lines) + "\n")
    assert_data_error(path, 3, "has 4 tab-separated columns; STS-B rows have 7 to 9")


def test_wrong_column_count_in_mrpc(tmp_path: Path) -> None:
    text = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\tb\n1\t1\ta\tb\n"
    assert_data_error(write(tmp_path / "msr.tsv", text), 3, "has 4 tab-separated columns")


def test_too_many_cells_in_csv_row(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.csv", "sentence1,sentence2,score\na,b,1,extra\n")
    assert_data_error(path, 2, "has more cells than the 3 header columns")


@pytest.mark.parametrize(
    ("name", "text", "cells"),
    [
        ("pairs.csv", "sentence1,sentence2,score\na,b,1\na dog,\n", 2),
        ("pairs.csv", "sentence1,sentence2,score\na,b,1\na dog\n", 1),
        ("pairs.tsv", "sentence1\tsentence2\tscore\na\tb\t1\na dog\ta cat\n", 2),
    ],
)
def test_too_few_cells_in_a_header_file_row(
    tmp_path: Path, name: str, text: str, cells: int
) -> None:
    """A short row was "has neither a score nor a label" (or "sentence2 is missing or empty")."""
    path = write(tmp_path / name, text)
    said = "1 cell" if cells == 1 else f"{cells} cells"
    expected = f"has {said}, fewer than the 3 header columns (sentence1, sentence2, score)"
    assert_data_error(path, 3, expected)


def test_a_short_row_with_every_cell_read_is_kept(tmp_path: Path) -> None:
    """Only a row that lacks a cell sentsim reads is refused: a trailing note may be left out."""
    path = write(tmp_path / "pairs.csv", "sentence1,sentence2,score,note\na,b,1\nc,d,2,x\n")
    assert read_pairs(path).pairs() == [("a", "b"), ("c", "d")]


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_sentence(tmp_path: Path, blank: str) -> None:
    path = write(tmp_path / "pairs.csv", f"sentence1,sentence2,score\na,b,1\n{blank},b,2\n")
    assert_data_error(path, 3, "sentence1 is missing or empty")


def test_row_without_score_or_label(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.csv", "sentence1,sentence2,score,label\na,b,,\n")
    assert_data_error(path, 2, "has neither a score nor a label")


def test_line_numbers_count_physical_lines_after_multiline_cells(tmp_path: Path) -> None:
    """A quoted newline in row 1 makes the bad second record start on line 4."""
    text = 'sentence1,sentence2,score\n"two\nlines",b,1\nc,d,bad\n'
    assert_data_error(write(tmp_path / "pairs.csv", text), 4, "score 'bad' is not a number")


def test_invalid_json(tmp_path: Path) -> None:
    good = json.dumps({"sentence1": "a", "sentence2": "b", "score": 1})
    path = write(tmp_path / "pairs.jsonl", f"{good}\n{good}\n{{'sentence1': 'a'}}\n")
    assert_data_error(path, 3, "not valid JSON")


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.jsonl", '["a", "b", 1]\n')
    assert_data_error(path, 1, "expected a JSON object")


def test_bad_json_lines_are_skipped_on_request(tmp_path: Path) -> None:
    good = json.dumps({"sentence1": "a", "sentence2": "b", "score": 1})
    path = write(tmp_path / "pairs.jsonl", f"{good}\n{{bad\n[1]\n{good}\n")
    data = read_pairs(path, skip_bad_rows=True)
    assert [e.line for e in data.examples] == [1, 4]
    assert [line for line, _ in data.skipped] == [2, 3]
    assert data.skipped[0][1].startswith("not valid JSON")
    assert data.skipped[1][1] == "expected a JSON object"


def test_json_line_missing_a_sentence(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.jsonl", '{"sentence1": "a", "score": 1}\n')
    assert_data_error(path, 1, "sentence2 is missing or empty")


def test_json_sentence_that_is_not_a_string(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.jsonl", '{"sentence1": 5, "sentence2": "b", "score": 1}\n')
    assert_data_error(path, 1, "sentence1 is missing or empty")


def test_score_outside_range(tmp_path: Path) -> None:
    path = scores_csv(tmp_path, ["1", "6", "3"])
    assert_data_error(
        path, 3, "score 6.0 is outside --score-range 0.0..5.0", score_range=(0.0, 5.0)
    )


@pytest.mark.parametrize("bounds", [(5.0, 0.0), (2.0, 2.0), (0.0, float("nan"))])
def test_an_empty_score_range_is_refused(tmp_path: Path, bounds: tuple[float, float]) -> None:
    """--score-range 5 0 called every row's score outside it and suggested --skip-bad-rows."""
    with pytest.raises(DataError, match=r"scores\.csv: --score-range .* is empty; give LO < HI"):
        read_pairs(scores_csv(tmp_path, ["1", "3"]), score_range=bounds, skip_bad_rows=True)


def test_unknown_format(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.txt", "just some text\nmore text\n")
    assert_data_error(path, 1, "cannot tell the format")


def test_unknown_format_name_lists_valid_names(tmp_path: Path) -> None:
    path = stsb_file(tmp_path)
    with pytest.raises(
        DataError, match="unknown format 'xml'; expected one of: auto, stsb"
    ) as info:
        read_pairs(path, fmt="xml")
    assert "sts.csv" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match="pair file not found") as info:
        read_pairs(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(DataError, match=r"pair file .* is a folder; give the file itself"):
        read_pairs(tmp_path)  # it said "not found" of a folder that exists


def test_header_only_file_has_no_pairs(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.csv", "sentence1,sentence2,score\n")
    with pytest.raises(DataError, match="no usable pairs found") as info:
        read_pairs(path)
    assert "pairs.csv" in str(info.value)


def test_error_message_suggests_skipping(tmp_path: Path) -> None:
    assert_data_error(scores_csv(tmp_path, ["x"]), 2, "use --skip-bad-rows to skip")


# --- skip_bad_rows ------------------------------------------------------------------------------


def test_skip_bad_rows_counts_and_keeps_the_rest(tmp_path: Path) -> None:
    text = (
        "sentence1,sentence2,score\n"
        "a,b,1\n"  # line 2
        "c,d,oops\n"  # line 3: bad score
        ",e,2\n"  # line 4: empty sentence
        "f,g,3\n"  # line 5
        "h,i,9\n"  # line 6: outside the range
    )
    data = read_pairs(write(tmp_path / "p.csv", text), skip_bad_rows=True, score_range=(0, 5))
    assert data.pairs() == [("a", "b"), ("f", "g")]
    assert [e.line for e in data.examples] == [2, 5]
    assert sorted(line for line, _ in data.skipped) == [3, 4, 6]
    problems = dict(data.skipped)
    assert "not a number" in problems[3]
    assert "missing or empty" in problems[4]
    assert "outside" in problems[6]


def test_skip_bad_rows_in_stsb_and_jsonl(tmp_path: Path) -> None:
    sts = write(tmp_path / "sts.csv", "g\tf\ty\t1\t2.0\ta\tb\nshort row\ng\tf\ty\t1\t4.0\tc\td\n")
    data = read_pairs(sts, skip_bad_rows=True)
    assert (len(data), [n for n, _ in data.skipped]) == (2, [2])

    good = json.dumps({"sentence1": "a", "sentence2": "b", "score": 1})
    jsonl = write(tmp_path / "p.jsonl", f"{good}\nnot json\n[1]\n{good}\n")
    data = read_pairs(jsonl, skip_bad_rows=True)
    assert (len(data), [n for n, _ in data.skipped]) == (2, [2, 3])


def test_skip_bad_rows_with_nothing_left_still_raises(tmp_path: Path) -> None:
    path = scores_csv(tmp_path, ["x", "y"])
    with pytest.raises(DataError, match="no usable pairs found"):
        read_pairs(path, skip_bad_rows=True)


def test_clean_file_skips_nothing(tmp_path: Path) -> None:
    assert read_pairs(stsb_file(tmp_path), skip_bad_rows=True).skipped == []


@pytest.mark.parametrize(
    "text",
    [
        '[\n  {"sentence1": "a", "sentence2": "b", "score": 1},\n'
        '  {"sentence1": "c", "sentence2": "d", "score": 2}\n]\n',
        '[{"sentence1": "a", "sentence2": "b", "score": 1}]\n',
    ],
    ids=["indented", "one-line"],
)
def test_json_array_is_named_not_skipped_row_by_row(tmp_path: Path, text: str) -> None:
    """A .json file holding a JSON array was "line 1: not valid JSON ... use --skip-bad-rows",
    and skipping them dropped every row; it is now one error saying how to convert it."""
    path = write(tmp_path / "pairs.json", text)
    for skip in (False, True):
        error = assert_data_error(path, 1, "a JSON array, not JSON lines", skip_bad_rows=skip)
        assert f"jq -c '.[]' {path} > pairs-lines.jsonl" in str(error)
