"""Training examples from pair files, and the shuffled batches of an epoch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import numpy as np

from sentsim.data import PairDataset, find_columns, read_pairs
from sentsim.errors import DataError
from sentsim.jsonl import text_problem
from sentsim.textfile import open_text

T = TypeVar("T")
MIN_TRAIN_ROWS = 8


class TargetKind(StrEnum):
    """What a training file's targets are."""

    GRADED = "graded"  # a score, normalized to 0–1
    BINARY = "binary"  # label 0 / 1
    CLASSES = "classes"  # several named classes (e.g. NLI)


@dataclass(frozen=True)
class TrainPair:
    """A pair and its target: a 0–1 value, or a class index."""

    a: str
    b: str
    target: float


@dataclass(frozen=True)
class TrainData:
    """Pairs from one or more files that share a kind of target."""

    kind: TargetKind
    pairs: list[TrainPair]
    labels: list[str]
    sources: list[str]


def target_kind(dataset: PairDataset) -> TargetKind:
    """Graded when the file has scores; binary for labels 0/1; classes otherwise.

    A file whose rows have scores except some, which have only labels, is refused naming the
    first such row (it was trained on the labels alone, without a word).
    """
    if dataset.has_scores:
        return TargetKind.GRADED
    unscored = [e for e in dataset.examples if e.score is None]
    if len(unscored) < len(dataset.examples):
        raise DataError(
            f"{dataset.path}, line {unscored[0].line}: no score, where other rows have one; give "
            "every row a score, or drop the score column to train on the labels"
        )
    if set(dataset.labels()) <= {"0", "1"}:
        return TargetKind.BINARY
    return TargetKind.CLASSES


def check_dev(dev: PairDataset) -> None:
    """Refuse a dev file no epoch can be selected on: one pair, or one score or 0/1 label for all.

    Dev is first scored after an epoch of training; Spearman of a constant is undefined and
    average precision over one class is the same for every model.
    """
    kind = target_kind(dev)
    if kind == TargetKind.CLASSES:
        return  # accuracy ranks models on any file
    values = dev.scores().tolist() if kind == TargetKind.GRADED else dev.labels()
    if len(set(values)) < 2:
        what = "score" if kind == TargetKind.GRADED else "label"
        raise DataError(
            f"dev file {dev.path}: {len(values)} pair(s), every {what} {values[0]}; selecting the "
            f"best epoch needs at least 2 pairs with different {what}s"
        )


def load_train_data(
    paths: Sequence[str | Path],
    *,
    both_orders: bool = False,
    labels: Sequence[str] | None = None,
    skip_bad_rows: bool = False,
) -> TrainData:
    """Read training files into one :class:`TrainData`; all files must share one kind of target."""
    pairs: list[TrainPair] = []
    kinds: set[TargetKind] = set()
    datasets = [read_pairs(p, skip_bad_rows=skip_bad_rows) for p in paths]
    for d in datasets:
        if len(d) < MIN_TRAIN_ROWS:
            raise DataError(
                f"{d.path}: {len(d)} usable rows; training needs at least {MIN_TRAIN_ROWS}"
            )
        kinds.add(target_kind(d))
    if len(kinds) > 1:
        found = ", ".join(f"{d.path.name}: {target_kind(d).value}" for d in datasets)
        raise DataError(f"training files mix kinds of target ({found}); train them in stages")
    kind = kinds.pop()
    names = list(labels) if labels else []
    twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
    if twice is not None:  # one of the two outputs would never be trained
        raise DataError(f"--labels names {twice!r} twice; give each class once, in output order")
    if kind == TargetKind.CLASSES and not names:
        names = sorted({label for d in datasets for label in d.labels()})
    for d in datasets:
        if kind == TargetKind.GRADED:
            values = d.normalized_scores().tolist()
        elif kind == TargetKind.BINARY:
            values = [float(x) for x in d.labels()]
        else:
            unknown = sorted(set(d.labels()) - set(names))
            if unknown:
                raise DataError(f"{d.path}: labels {unknown} are not among the model's {names}")
            values = [float(names.index(x)) for x in d.labels()]
        for e, y in zip(d.examples, values, strict=True):
            pairs.append(TrainPair(e.sentence1, e.sentence2, y))
            if both_orders:
                pairs.append(TrainPair(e.sentence2, e.sentence1, y))
    return TrainData(kind, pairs, names, [str(d.path) for d in datasets])


def shuffled_batches(
    items: Sequence[T], *, epoch: int, seed: int, batch_size: int
) -> list[list[T]]:
    """Split a fresh permutation of ``items`` (fixed by ``seed`` and ``epoch``) into batches."""
    order = np.random.default_rng([seed, epoch]).permutation(len(items))
    return [[items[i] for i in order[s : s + batch_size]] for s in range(0, len(order), batch_size)]


@dataclass(frozen=True)
class Triple:
    """An (anchor, positive[, negative]) example for in-batch-negative training."""

    anchor: str
    positive: str
    negative: str | None = None


def read_triples(
    path: str | Path, *, min_rows: int = MIN_TRAIN_ROWS, purpose: str | None = None
) -> list[Triple]:
    """Read JSON lines or CSV/TSV with ``anchor``, ``positive`` and optional ``negative``.

    Column names are matched as pair files' are, without regard to case, spaces, ``_`` or ``-``.

    ``.json`` is read as JSON lines (as corpora are); a CSV/TSV row with more cells than its header
    (an unquoted comma in a text) is an error naming its line. Fewer than ``min_rows`` rows is an
    error saying that ``purpose`` needs them (by default training, or a dev file when fewer rows
    than training's minimum are asked for); a missing column or text, that ``purpose`` (by
    default the loss) needs it.
    """
    import csv
    import json

    file = Path(path)
    if file.is_dir():  # "not found" would send the user looking for a missing path
        raise DataError(f"training file {file} is a folder; give the file itself")
    if not file.is_file():
        raise DataError(f"training file not found: {file.resolve()}")
    rows: list[tuple[int, dict[str, object]]] = []
    if file.suffix.lower() in (".jsonl", ".ndjson", ".json"):  # .json: JSON lines, as corpora
        with open_text(file) as handle:
            for n, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{file}, line {n}: not valid JSON ({exc.msg})") from None
                    if problem := text_problem(line, row):
                        raise DataError(f"{file}, line {n}: {problem}")
                    rows.append((n, row))
    else:
        delimiter, separator = ("\t", "tab") if file.suffix.lower() == ".tsv" else (",", "comma")
        with open_text(file, newline="") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            header = _triple_columns(file, reader.fieldnames or [], 1)
            if not (header["anchor"] and header["positive"]):
                raise DataError(
                    f"{file}, line 1: header has {reader.fieldnames}; {purpose or 'the loss'} "
                    "needs anchor, positive and optionally negative columns"
                )
            width = len(reader.fieldnames or [])
            for r in reader:
                if None in r:  # an unquoted separator in a text: the next column got the rest
                    raise DataError(
                        f"{file}, line {reader.line_num}: has {width + len(r[None])} cells; the "
                        f"header has {width} (quote a text that holds a {separator})"
                    )
                rows.append((reader.line_num, dict(r)))
    triples = []
    keys: tuple[str, ...] | None = None
    found: dict[str, str | None] = {}
    for n, row in rows:
        if not isinstance(row, dict):
            raise DataError(
                f"{file}, line {n}: expected a JSON object with 'anchor' and 'positive' (and "
                f"optionally 'negative'), got a {type(row).__name__}"
            )
        if tuple(row) != keys:  # every row of a well-made file has the same keys: map them once
            keys = tuple(row)
            found = _triple_columns(file, keys, n)
        anchor, positive, negative = (None if k is None else row.get(k) for k in found.values())
        if (
            not isinstance(anchor, str)
            or not isinstance(positive, str)
            or not anchor
            or not positive
        ):
            raise DataError(
                f"{file}, line {n}: needs non-empty 'anchor' and 'positive' text for "
                f"{purpose or 'this loss'}"
            )
        triples.append(
            Triple(anchor, positive, negative if isinstance(negative, str) and negative else None)
        )
    if len(triples) < min_rows:
        use = purpose or ("training" if min_rows == MIN_TRAIN_ROWS else "a dev file")
        raise DataError(f"{file}: {len(triples)} rows; {use} needs at least {min_rows}")
    return triples


def _triple_columns(file: Path, names: Sequence[str], line: int) -> dict[str, str | None]:
    """Map anchor, positive and negative to the file's names for them (None where it has none).

    Names are matched as pair-file headers are, by :func:`sentsim.data.column_key`.
    """
    return find_columns(file, names, line, _TRIPLE_COLUMNS)


#: Each column of an (anchor, positive[, negative]) file, under its one name.
_TRIPLE_COLUMNS = {column: (column,) for column in ("anchor", "positive", "negative")}


def distinct_positive_batches(
    items: Sequence[Triple], *, epoch: int, seed: int, batch_size: int
) -> list[list[Triple]]:
    """Shuffled batches in which no two examples share a positive (or a negative is no positive).

    With in-batch negatives, every other example's positive is a negative for an anchor; if two
    questions share one article, that article would be taught as both right and wrong. Examples
    that would clash wait for a later batch.
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(items))
    pending = [items[i] for i in order]
    batches: list[list[Triple]] = []
    while pending:
        batch: list[Triple] = []
        texts: set[str] = set()
        rest: list[Triple] = []
        for t in pending:
            own = {t.positive} | ({t.negative} if t.negative else set())
            if len(batch) < batch_size and not own & texts:
                batch.append(t)
                texts |= own
            else:
                rest.append(t)
        batches.append(batch)
        pending = rest
    return batches
