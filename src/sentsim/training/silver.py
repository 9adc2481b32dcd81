"""Silver data for AugSBERT: unlabelled pairs scored 0–1 by a judge (a cross-encoder).

Thakur et al. (2021), "Augmented SBERT", NAACL, §3: the bi-encoder then trains on gold + silver.
Silver files are JSON lines with ``sentence1``, ``sentence2`` and ``score`` in 0–1, readable by
:func:`sentsim.data.read_pairs` with ``score_range=(0, 1)``; labelling appends chunk by chunk so
that a run that was cut off resumes where it stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from sentsim.atomic import write_text_atomic
from sentsim.base import PairScorer, check_pairs
from sentsim.data import COLUMN_NAMES, column_key, find_columns, read_pairs
from sentsim.errors import DataError
from sentsim.jsonl import JSONL_SUFFIXES, read_objects
from sentsim.textfile import TABLE_SUFFIXES, TableReader, open_text, read_lines
from sentsim.training.data import TrainPair
from sentsim.training.sampling import Pair


def label_pairs(
    pairs: Sequence[Pair], judge: PairScorer, *, batch_size: int = 1024
) -> list[TrainPair]:
    """Score ``pairs`` with ``judge`` (0–1, e.g. a cross-encoder); return them as silver pairs.

    ``batch_size`` pairs go to the judge per call (the judge batches its own forward passes).
    """
    return [p for chunk in iter_labels(pairs, judge, batch_size=batch_size) for p in chunk]


def iter_labels(
    pairs: Sequence[Pair], judge: PairScorer, *, batch_size: int = 1024
) -> Iterator[list[TrainPair]]:
    """Yield labelled chunks of ``batch_size`` pairs, in order (to save progress as it goes)."""
    items = check_pairs(pairs)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        scores = np.asarray(judge.score_pairs(chunk, show_progress=False), dtype=np.float64)
        if scores.shape != (len(chunk),):
            raise ValueError(
                f"judge {judge.name} returned shape {scores.shape} for {len(chunk)} pairs; "
                "silver labels need one score per pair (a cross-encoder with one output)"
            )
        if not np.isfinite(scores).all() or scores.min() < 0 or scores.max() > 1:
            raise ValueError(
                f"judge {judge.name} returned scores outside 0–1 ({scores.min():.3g} to "
                f"{scores.max():.3g}); label with a 0–1 scorer such as a one-output cross-encoder"
            )
        yield [TrainPair(a, b, float(s)) for (a, b), s in zip(chunk, scores, strict=True)]


def label_to_file(
    path: Path,
    pairs: Sequence[Pair],
    judge: PairScorer,
    *,
    batch_size: int = 1024,
    log: Callable[[str], None] = print,
) -> None:
    """Label ``pairs`` into the silver file ``path``, resumably.

    Chunks are appended (and fsynced) to ``path.partial``, renamed to ``path`` when all are done;
    a run that was cut off keeps the partial file's complete lines that match ``pairs``.
    """
    partial = path.with_name(path.name + ".partial")
    done = _resume_partial(partial, pairs)
    if done:
        log(f"resuming labelling at pair {done} of {len(pairs)}")
    with partial.open("a", encoding="utf-8") as handle:
        for chunk in iter_labels(pairs[done:], judge, batch_size=batch_size):
            handle.write("".join(_silver_line(p) for p in chunk))
            handle.flush()
            os.fsync(handle.fileno())
            done += len(chunk)
            log(f"labelled {done}/{len(pairs)} pairs")
    os.replace(partial, path)


def read_silver(path: Path) -> list[TrainPair]:
    """Read a silver file (through :func:`sentsim.data.read_pairs`, scores checked in 0–1).

    A bad line means the file was cut or edited (it is written whole): the error says to label
    again, not to skip rows.
    """
    if path.stat().st_size == 0:  # no pair was sampled; read_pairs refuses an empty file
        return []
    silver = read_pairs(path, score_range=(0.0, 1.0), skip_bad_rows=True)
    if silver.skipped:
        line, problem = silver.skipped[0]
        raise DataError(
            f"{path}, line {line}: {problem}; a silver file is written whole, so this one was cut "
            "or edited: delete it and the model trained on it to label its pairs again"
        )
    return [TrainPair(e.sentence1, e.sentence2, float(e.score or 0.0)) for e in silver.examples]


def _silver_line(pair: TrainPair) -> str:
    row = {"sentence1": pair.a, "sentence2": pair.b, "score": round(pair.target, 6)}
    return json.dumps(row, ensure_ascii=False) + "\n"


def _resume_partial(partial: Path, pairs: Sequence[Pair]) -> int:
    """Keep the complete lines of ``partial`` that match ``pairs`` in order; return how many."""
    if not partial.is_file():
        return 0
    lines = partial.read_text(encoding="utf-8").split("\n")[:-1]  # the last piece is cut off
    kept = 0
    for line, pair in zip(lines, pairs, strict=False):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break
        if not isinstance(row, dict) or (row.get("sentence1"), row.get("sentence2")) != pair:
            break
        kept += 1
    write_text_atomic(partial, "".join(line + "\n" for line in lines[:kept]))
    return kept


def write_pairs(path: Path, pairs: Sequence[Pair]) -> None:
    """Write unlabelled pairs as JSON lines ``{"sentence1", "sentence2"}`` (atomically)."""
    rows = (json.dumps({"sentence1": a, "sentence2": b}, ensure_ascii=False) for a, b in pairs)
    write_text_atomic(path, "".join(r + "\n" for r in rows))


def read_pair_list(path: Path) -> list[Pair]:
    """Read the pairs :func:`write_pairs` wrote."""
    rows = [json.loads(line) for line in read_lines(path) if line]
    return [(r["sentence1"], r["sentence2"]) for r in rows]


def read_sentences(path: str | Path) -> list[str]:
    """Distinct non-empty sentences of an unlabelled file, in order of first appearance.

    ``.txt``: one per line; ``.jsonl`` (or ``.json``, as corpora): objects with ``text`` or
    ``sentence1``/``sentence2``; ``.csv``/``.tsv``: a header with ``text`` or
    ``sentence1``/``sentence2`` (scores not needed), a row with more cells than it an error.
    Column names are matched as pair files' are (``Text``, ``question1`` / ``question2``, ...).
    """
    file = _unlabelled_file(path)
    if file.suffix.lower() in JSONL_SUFFIXES + TABLE_SUFFIXES:
        texts: list[str] = []
        for n, row in _rows(file):
            columns = _text_columns(list(row))
            if not columns:
                raise DataError(
                    f"{file}, line {n}: has {sorted(map(str, row))}; expected {_EXPECTED}"
                )
            texts += [v for v in (row.get(c) for c in columns) if isinstance(v, str)]
    else:
        texts = read_lines(file)
    return list(dict.fromkeys(t for t in texts if isinstance(t, str) and t.strip()))


def read_unlabelled_pairs(path: str | Path) -> list[Pair]:
    """The pairs of an unlabelled file as written: ``sentence1`` / ``sentence2`` of each row.

    JSON lines or CSV / TSV with a header, the columns named as :func:`read_sentences` reads them
    (scores, if any, are not read). A row whose two texts are not both non-empty is an error
    naming its line: a pair file that silently lost rows would label fewer pairs than it holds.
    """
    file = _unlabelled_file(path)
    if file.suffix.lower() not in JSONL_SUFFIXES + TABLE_SUFFIXES:
        raise DataError(
            f"{file}: holds sentences, not pairs; labelling the pairs as given (--sampling given) "
            "needs a JSONL or CSV/TSV file with sentence1 and sentence2, or choose bm25, knn or "
            "random to pair its sentences"
        )
    pairs: list[Pair] = []
    columns = {name: COLUMN_NAMES[name] for name in ("sentence1", "sentence2")}
    for n, row in _rows(file):
        first, second = find_columns(file, list(row), n, columns).values()
        if first is None or second is None:
            raise DataError(
                f"{file}, line {n}: has {sorted(map(str, row))}; the pairs as given need "
                "sentence1 and sentence2 (or text1 / text2, question1 / question2, ...)"
            )
        a, b = row.get(first), row.get(second)
        if not (isinstance(a, str) and a.strip() and isinstance(b, str) and b.strip()):
            raise DataError(
                f"{file}, line {n}: {first} and {second} must both be non-empty texts, got "
                f"{a!r:.40} and {b!r:.40}"
            )
        pairs.append((a, b))
    return pairs


def _unlabelled_file(path: str | Path) -> Path:
    file = Path(path)
    if file.is_dir():  # "not found" would send the user looking for a missing path
        raise DataError(f"unlabelled file {file} is a folder; give the file itself")
    if not file.is_file():
        raise DataError(f"unlabelled file not found: {file.resolve()}")
    return file


def _rows(file: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """Each record of a JSON-lines or CSV / TSV file with its line number."""
    if file.suffix.lower() in JSONL_SUFFIXES:
        yield from read_objects(file, expected="a JSON object with 'text' or 'sentence1'")
        return
    tab = file.suffix.lower() == ".tsv"
    with open_text(file, newline="") as handle:
        # a TSV row is one line, as pair files read: with CSV quoting, a text opening with an
        # unbalanced quote (MRPC's, STS-B's) swallowed the lines up to the next quote
        reader = TableReader(handle, tsv=tab)
        names = reader.fieldnames
        if names is not None and not _text_columns(names):  # said of the header, not a row
            raise DataError(f"{file}, line 1: header has {names}; expected {_EXPECTED}")
        for record in reader:
            if None in record:  # an unquoted separator in a text: the rest was dropped
                width = len(names or [])
                raise DataError(
                    f"{file}, line {reader.line_num}: has {width + len(record[None])} cells; "
                    f"the header has {width} (quote a text that holds a "
                    f"{'tab' if tab else 'comma'})"
                )
            yield reader.line_num, dict(record)


_EXPECTED = (
    "'text' (sentences) or 'sentence1' and 'sentence2' (pairs; case, spaces, _ and - aside, and "
    "under the names pair files use: sentence_A / sentence_B, text1 / text2, question1 / "
    "question2, premise / hypothesis)"
)


def _text_columns(names: Sequence[object]) -> list[str]:
    """The names among ``names`` that hold texts: text, then sentence1's, then sentence2's.

    They are matched as pair-file headers are (:data:`sentsim.data.COLUMN_NAMES`).
    """
    keys = {n: column_key(n) for n in names if isinstance(n, str)}
    groups = (("text",), COLUMN_NAMES["sentence1"], COLUMN_NAMES["sentence2"])
    return [n for group in groups for n, key in keys.items() if key in group]
