"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sentsim.choices import Precision
from sentsim.data import PairDataset, read_pairs
from sentsim.errors import DataError
from sentsim.jsonl import read_objects
from sentsim.settings import dataset_path
from sentsim.textfile import read_lines

STSB_TEST = ("stsbenchmark", "sts-test.csv")


def progress(args: argparse.Namespace) -> bool | None:
    """``show_progress`` for ``--no-progress``: off when given, else None (bars for long jobs)."""
    return False if args.no_progress else None


def add_pair_file_options(parser: argparse.ArgumentParser, *, default: tuple[str, ...]) -> None:
    """Add ``--data``, ``--score-range`` and ``--skip-bad-rows``."""
    parser.add_argument(
        "--data",
        help=f"pair file (STS-B TSV, MRPC TSV, SICK, CSV/TSV/JSONL with sentence1, sentence2, "
        "score|label or their usual other names); "
        f"default: $SENTSIM_DATA/{'/'.join(default)}",
    )
    parser.add_argument(
        "--score-range",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="range scores are normalized by (default: the range found in the file)",
    )
    parser.add_argument(
        "--skip-bad-rows", action="store_true", help="skip malformed rows, counting them"
    )
    parser.set_defaults(default_data=default)


def load_pair_file(args: argparse.Namespace, path: Path | None = None) -> PairDataset:
    """Read ``--data`` (or ``path``, or the default data set); report skipped rows on stderr.

    The command's reading options (``--score-range``, ``--skip-bad-rows``) apply to every file.
    """
    path = path or (Path(args.data) if args.data else dataset_path(*args.default_data))
    dataset = read_pairs(
        path,
        score_range=tuple(args.score_range) if args.score_range else None,
        skip_bad_rows=args.skip_bad_rows,
    )
    if dataset.skipped:
        first = ", ".join(f"line {n}: {why}" for n, why in dataset.skipped[:3])
        print(f"skipped {len(dataset.skipped)} bad rows of {path} ({first})", file=sys.stderr)
    return dataset


def is_json_lines(path: Path, what: str, fields: str) -> bool:
    """Whether a file of ``what`` (one per line, or JSON lines) is JSON lines, by its name.

    A missing file, and CSV or TSV, are refused: read as lines, a header became one of the
    ``what``. A ``.json`` file is read as JSON lines, as corpora are.
    """
    if not path.is_file():
        raise DataError(f"{what} file not found: {path.resolve()}")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        raise DataError(
            f"{path}: a {suffix[1:].upper()} file is not read here; give {what} one per line "
            f"(.txt) or JSON lines with {fields} (.jsonl)"
        )
    return suffix in (".jsonl", ".ndjson", ".json")


def read_texts(path: Path) -> list[str]:
    """Read texts to encode: one per line (.txt), or the ``text`` field of JSON lines.

    A ``.json`` file is read as JSON lines, as corpora are; CSV and TSV are refused.
    """
    if not is_json_lines(path, "texts", "a 'text' field"):
        return read_lines(path)
    texts = []
    expected = "an object with a string 'text' field"
    for n, record in read_objects(path, expected=expected):
        if not isinstance(record.get("text"), str):
            raise DataError(f"{path}, line {n}: expected {expected}")
        texts.append(record["text"])
    return texts


def add_mixed_precision_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--mixed-precision`` to a training command (its value goes to ``TrainSettings``)."""
    parser.add_argument(
        "--mixed-precision",
        choices=[p.value for p in Precision if p != Precision.INT8],
        default="fp32",
        help="bf16: forward passes and losses under bfloat16 autocast, weights and optimizer in "
        "float32 (1.4-1.6x faster on a CPU with AMX); auto: bf16 where the hardware has it; "
        "default fp32",
    )


def prepare_outputs(
    *outputs: tuple[str, Path | None],
    inputs: Sequence[tuple[str, Path | None]] = (),
    fix: str = "give the output a file of its own",
) -> None:
    """Make the folders output files go in, after refusing an output that would lose data.

    Called before the work that produces them, so that a long run is not lost at its end.
    Refused: an (option, path) whose path is a folder; one that names an input, given as
    (what it is, path) — its rows would be replaced (``mine --out`` its ``--train`` file,
    ``duplicates --out`` its collection); ``fix`` says what to do instead; and two options
    naming one file, as the second written replaced the first (``eval retrieval --run x
    --per-query x`` kept only the per-query metrics).
    """
    given = [(option, path) for option, path in outputs if path is not None]
    seen: dict[Path, str] = {}
    for option, path in given:
        if path.is_dir():
            raise DataError(f"{option} {path} is a folder; give a file name for this output")
        key = path.resolve()
        for what, source in inputs:
            if source is not None and source.resolve() == key:
                raise DataError(f"{option} {path} is {what}; {fix}")
        if key in seen:
            raise DataError(
                f"{seen[key]} and {option} both name {path}; give each output a file of its own"
            )
        seen[key] = option
    for _, path in given:
        path.parent.mkdir(parents=True, exist_ok=True)


def print_json(value: object) -> None:
    """Print ``value`` as one JSON line (the last line of stdout for ``--json``)."""
    print(json.dumps(value, ensure_ascii=False))
