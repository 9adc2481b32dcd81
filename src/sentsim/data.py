"""Readers for files of text pairs with a graded score or a class label.

Formats (``fmt="auto"`` picks by extension and first line):

- ``stsb``: the STS-B organizers' TSV — no header; genre, file, year, id, score, sentence1,
  sentence2 and up to two extra columns; read with ``csv.QUOTE_NONE`` (quotes are unbalanced).
- ``mrpc``: the MSR paraphrase TSV — header ``Quality, #1 ID, #2 ID, #1 String, #2 String``.
- ``csv`` / ``tsv``: a header row with ``sentence1``, ``sentence2`` and ``score`` or ``label``;
  CSV with standard quoting; TSV one row per line, its cells verbatim (a cell wholly in CSV
  quotes, as pandas writes it, is unquoted).
- ``jsonl``: one object per line with the same keys (``.jsonl``, ``.ndjson`` or ``.json``).

Header names are matched without regard to case, spaces, hyphens or underscores, and the names other
published pair files use are read as the same columns (:data:`COLUMN_NAMES`): SICK's
``sentence_A`` / ``sentence_B`` / ``relatedness_score``, ``text1`` / ``text2``, ``premise`` /
``hypothesis``, Quora's ``question1`` / ``question2`` / ``is_duplicate`` and so on. A file with two
candidates for one column (``score`` and ``similarity``) is an error naming both.

A malformed row raises :class:`~sentsim.errors.DataError` naming the file, line and problem, unless
``skip_bad_rows=True``: then it is counted in :attr:`PairDataset.skipped` and nothing else is lost.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from sentsim.errors import DataError
from sentsim.jsonl import read_objects
from sentsim.textfile import TableReader, open_text

csv.field_size_limit(1 << 24)

#: For each column sentsim reads, the header names that mean it, as :func:`column_key` writes them.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "sentence1": (
        "sentence1",
        "sentencea",
        "text1",
        "texta",
        "s1",
        "sent1",
        "premise",
        "question1",
        "#1string",
    ),
    "sentence2": (
        "sentence2",
        "sentenceb",
        "text2",
        "textb",
        "s2",
        "sent2",
        "hypothesis",
        "question2",
        "#2string",
    ),
    "score": (
        "score",
        "relatednessscore",
        "similarityscore",
        "similarity",
        "relatedness",
        "goldscore",
    ),
    "label": ("label", "goldlabel", "isduplicate", "isparaphrase", "quality"),
}


class PairFormat(StrEnum):
    """The pair-file formats sentsim reads."""

    AUTO = "auto"
    STSB = "stsb"
    MRPC = "mrpc"
    CSV = "csv"
    TSV = "tsv"
    JSONL = "jsonl"


@dataclass(frozen=True)
class PairExample:
    """One pair; ``score`` for graded data, ``label`` for classes; ``line`` is 1-based."""

    sentence1: str
    sentence2: str
    score: float | None = None
    label: str | None = None
    line: int = 0


@dataclass(frozen=True)
class PairDataset:
    """The pairs of one file, with what was skipped and the score range used to normalize."""

    path: Path
    format: PairFormat
    examples: list[PairExample]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    score_range: tuple[float, float] | None = None

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def has_scores(self) -> bool:
        """Whether every pair has a graded score."""
        return bool(self.examples) and all(e.score is not None for e in self.examples)

    @property
    def has_labels(self) -> bool:
        """Whether every pair has a class label."""
        return bool(self.examples) and all(e.label is not None for e in self.examples)

    def pairs(self) -> list[tuple[str, str]]:
        """Return ``(sentence1, sentence2)`` for every example."""
        return [(e.sentence1, e.sentence2) for e in self.examples]

    def scores(self) -> NDArray[np.float64]:
        """Return the raw scores; raise if the file has none."""
        if not self.has_scores:
            raise DataError(self._lacking("score", "graded scores are needed here"))
        return np.array([e.score for e in self.examples], dtype=np.float64)

    def graded_scores(self) -> NDArray[np.float64]:
        """Return the scores, or numeric labels read as grades (MRPC's 0/1 as graded pairs)."""
        # labels stand in only for a file without scores: not for a file whose one row lacks one
        if any(e.score is not None for e in self.examples) or not self.has_labels:
            return self.scores()
        grades = []
        for e in self.examples:
            try:
                grades.append(float(str(e.label)))
            except ValueError:
                raise DataError(
                    f"{self.path}, line {e.line}: label {e.label!r} is not a number; graded "
                    "scores (or numeric labels such as 0/1) are needed here"
                ) from None
        return np.array(grades, dtype=np.float64)

    def normalized_scores(self) -> NDArray[np.float64]:
        """Return scores mapped to 0–1 by ``(s - lo) / (hi - lo)`` over :attr:`score_range`."""
        scores = self.scores()
        lo, hi = self.score_range or (float(scores.min()), float(scores.max()))
        if hi <= lo:
            raise DataError(f"{self.path}: every score is {lo}; cannot normalize a constant range")
        return (scores - lo) / (hi - lo)

    def labels(self) -> list[str]:
        """Return the class labels; raise if the file has none."""
        if not self.has_labels:
            raise DataError(self._lacking("label", "class labels are needed here"))
        return [e.label for e in self.examples if e.label is not None]

    def _lacking(self, column: str, need: str) -> str:
        """The message for pairs without a ``column`` value: the file's, or its first such row's."""
        values = [getattr(e, column) for e in self.examples]
        if all(v is None for v in values):
            return f"{self.path}: has no '{column}' column; {need}"
        line = self.examples[values.index(None)].line
        return f"{self.path}, line {line}: has no {column} (other rows have one); {need}"


class _Rows:
    """Collects examples and bad rows for one file."""

    def __init__(self, path: Path, skip_bad_rows: bool) -> None:
        self.path = path
        self.skip = skip_bad_rows
        self.examples: list[PairExample] = []
        self.skipped: list[tuple[int, str]] = []

    def bad(self, line: int, problem: str) -> None:
        if not self.skip:
            raise DataError(f"{self.path}, line {line}: {problem} (use --skip-bad-rows to skip)")
        self.skipped.append((line, problem))

    def add(self, line: int, s1: object, s2: object, score: object, label: object) -> None:
        for name, value in (("sentence1", s1), ("sentence2", s2)):
            if not isinstance(value, str) or not value.strip():
                self.bad(line, f"{name} is missing or empty")
                return
        parsed: float | None = None
        if score is not None and score != "":
            try:
                parsed = float(score)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                self.bad(line, f"score {score!r} is not a number")
                return
            if not math.isfinite(parsed):
                self.bad(line, f"score {score!r} is not finite")
                return
        text_label = None if label is None or label == "" else _label_text(label)
        if parsed is None and text_label is None:
            self.bad(line, "has neither a score nor a label")
            return
        assert isinstance(s1, str) and isinstance(s2, str)
        self.examples.append(PairExample(s1, s2, parsed, text_label, line))


def _label_text(label: object) -> str:
    """The label as text; 0/1 written as ``1.0``, ``true``, ``True`` or ``1`` all read as ``"1"``.

    Otherwise a file exported with float or boolean labels would be two classes named ``"0.0"``
    and ``"1.0"`` (or ``"True"`` and ``"False"``) instead of binary labels. ``yes`` / ``no`` stay
    class names: nothing says which of them is 1.
    """
    if isinstance(label, bool):
        return str(int(label))
    text = str(label).strip()
    if text.lower() in ("true", "false"):
        return str(int(text.lower() == "true"))
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number in (0.0, 1.0) else text


def detect_format(path: Path) -> PairFormat:
    """Guess the format from the extension and the first line."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):  # .json: JSON lines, as corpora
        return PairFormat.JSONL
    with open_text(path, newline="") as handle:
        first = handle.readline()
    header = first.strip().lower()
    if header.startswith("quality\t"):
        return PairFormat.MRPC
    delimiter = "\t" if "\t" in first else ","
    names = next(csv.reader([first.strip("\r\n")], delimiter=delimiter), [])
    if any(find_columns(path, names).values()):  # a header file; reading it names what is missing
        return PairFormat.TSV if delimiter == "\t" else PairFormat.CSV
    if first.count("\t") >= 6:
        return PairFormat.STSB
    raise DataError(
        f"{path}, line 1: cannot tell the format; expected a header with sentence1, sentence2 and "
        "score or label (CSV/TSV), JSON lines, the STS-B TSV or the MRPC TSV"
    )


def read_pairs(
    path: str | Path,
    *,
    fmt: str | PairFormat = PairFormat.AUTO,
    score_range: tuple[float, float] | None = None,
    skip_bad_rows: bool = False,
) -> PairDataset:
    """Read a pair file; see the module docstring for formats.

    ``score_range=(lo, hi)`` fixes the range scores are normalized by (a score outside it is a bad
    row); otherwise the range found in the file is used.
    """
    file = Path(path)
    if file.is_dir():  # "not found" would send the user looking for a missing path
        raise DataError(f"pair file {file} is a folder; give the file itself")
    if not file.is_file():
        raise DataError(f"pair file not found: {file.resolve()}")
    if _blank(file):  # "line 1: cannot tell the format" would send the user to fix a header
        raise DataError(
            f"pair file {file} is empty; expected a header with sentence1, sentence2 and score or "
            "label (CSV/TSV), JSON lines, the STS-B TSV or the MRPC TSV"
        )
    try:
        kind = PairFormat(str(fmt).lower())
    except ValueError:
        valid = ", ".join(f.value for f in PairFormat)
        raise DataError(f"{file}: unknown format {fmt!r}; expected one of: {valid}") from None
    if score_range is not None and not score_range[0] < score_range[1]:  # NaN fails this too
        raise DataError(
            f"{file}: --score-range {score_range[0]} {score_range[1]} is empty; give LO < HI, "
            "e.g. 0 5"
        )
    if kind == PairFormat.AUTO:
        kind = detect_format(file)
    rows = _Rows(file, skip_bad_rows)
    readers = {
        PairFormat.STSB: _read_stsb,
        PairFormat.MRPC: _read_mrpc,
        PairFormat.CSV: _read_header_file,
        PairFormat.TSV: _read_header_file,
        PairFormat.JSONL: _read_jsonl,
    }
    for line, s1, s2, score, label in readers[kind](file, kind, rows):
        rows.add(line, s1, s2, score, label)
    found = [e.score for e in rows.examples if e.score is not None]
    if score_range is not None:
        lo, hi = score_range
        kept = []
        for e in rows.examples:
            if e.score is not None and not lo <= e.score <= hi:
                rows.bad(e.line, f"score {e.score} is outside --score-range {lo}..{hi}")
            else:
                kept.append(e)
        rows.examples = kept
    elif found:
        score_range = (min(found), max(found))
    if not rows.examples:
        raise DataError(f"{file}: no usable pairs found")
    return PairDataset(file, kind, rows.examples, rows.skipped, score_range)


def _blank(path: Path) -> bool:
    """Whether the file holds nothing but whitespace (a byte-order mark aside)."""
    with open_text(path) as handle:
        return all(not line.strip() for line in handle)


_Row = tuple[int, object, object, object, object]
_Cells = tuple[object, object, object, object]


def _nonblank(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    """The rows with any text: a blank line is no row, as in the other formats.

    It was a bad row of "0 columns": a trailing blank line refused the whole file.
    """
    return (cells for cells in reader if any(c.strip() for c in cells))


def _read_stsb(path: Path, kind: PairFormat, rows: _Rows) -> Iterator[_Row]:
    with open_text(path, newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        for cells in _nonblank(reader):
            if len(cells) < 7:
                rows.bad(
                    reader.line_num,
                    f"has {len(cells)} tab-separated columns; STS-B rows have "
                    "7 to 9: genre, file, year, id, score, sentence1, sentence2",
                )
                continue
            yield reader.line_num, cells[5], cells[6], cells[4], None


def _read_mrpc(path: Path, kind: PairFormat, rows: _Rows) -> Iterator[_Row]:
    with open_text(path, newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader, None)
        for cells in _nonblank(reader):
            if len(cells) != 5:
                rows.bad(
                    reader.line_num,
                    f"has {len(cells)} tab-separated columns; MRPC rows have "
                    "5: Quality, #1 ID, #2 ID, #1 String, #2 String",
                )
                continue
            yield reader.line_num, cells[3], cells[4], None, cells[0]


def _read_header_file(path: Path, kind: PairFormat, rows: _Rows) -> Iterator[_Row]:
    tsv = kind == PairFormat.TSV
    # A TSV row is one line: with CSV quoting, a sentence that opens with an unbalanced quote (as
    # STS-B's do) swallowed every line up to the next quote, or the file's end.
    with open_text(path, newline="") as handle:
        reader = TableReader(handle, tsv=tsv)
        names = list(reader.fieldnames or [])
        found = find_columns(path, names)
        _check_columns(path, names, found)
        for record in reader:
            if None in record:
                rows.bad(reader.line_num, f"has more cells than the {len(names)} header columns")
                continue
            s1, s2, score, label = _cells(record, found)
            given = sum(v is not None for v in record.values())  # absent cells are None
            if given < len(names) and (s1 is None or s2 is None or score is label is None):
                said = "1 cell" if given == 1 else f"{given} cells"
                rows.bad(
                    reader.line_num,
                    f"has {said}, fewer than the {len(names)} header columns ({', '.join(names)})",
                )
                continue
            yield reader.line_num, s1, s2, score, label


def _read_jsonl(path: Path, kind: PairFormat, rows: _Rows) -> Iterator[_Row]:
    keys: tuple[str, ...] = ()
    found: dict[str, str | None] = {}
    for line, record in read_objects(path, on_bad=rows.bad):
        if tuple(record) != keys:  # every row of a well-made file has the same keys: map them once
            keys = tuple(record)
            found = find_columns(path, keys, line)
        yield (line, *_cells(record, found))


def _cells(record: Mapping[str, object], found: dict[str, str | None]) -> _Cells:
    """The record's sentence1, sentence2, score and label (None where the file has no column)."""
    s1, s2, score, label = (None if name is None else record.get(name) for name in found.values())
    return s1, s2, score, label


def column_key(name: str) -> str:
    """``"Sentence_A"``, ``"sentence a"`` and ``"sentence-a"`` all become ``"sentencea"``."""
    return "".join(ch for ch in name.lower() if ch not in " _-\ufeff")


def find_columns(
    path: Path,
    names: Iterable[str],
    line: int = 1,
    columns: Mapping[str, Iterable[str]] = COLUMN_NAMES,
) -> dict[str, str | None]:
    """Map each of ``columns`` to the file's name for it (None where the file has none).

    ``columns`` maps a column to the :func:`column_key` forms of its names (default: the pair
    columns and their aliases); two names for one column are refused, naming both.
    """
    found: dict[str, str | None] = {}
    for column, aliases in columns.items():
        matches = [n for n in names if isinstance(n, str) and column_key(n) in aliases]
        if len(matches) > 1:
            raise DataError(
                f"{path}, line {line}: {', '.join(repr(m) for m in matches)} all name the "
                f"{column} column; keep one of them"
            )
        found[column] = matches[0] if matches else None
    return found


def _check_columns(path: Path, names: list[str], found: dict[str, str | None]) -> None:
    if not (found["sentence1"] and found["sentence2"] and (found["score"] or found["label"])):
        raise DataError(
            f"{path}, line 1: header has {names}; expected sentence1, sentence2 and score or label "
            "(or names such as sentence_A / sentence_B / relatedness_score, text1 / text2, "
            "question1 / question2 / is_duplicate)"
        )
