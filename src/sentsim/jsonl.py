"""Reading JSON lines: one object per line, errors naming the file and line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sentsim.base import check_json_text, check_text
from sentsim.errors import DataError
from sentsim.textfile import open_text

#: File suffixes read as JSON lines (``.json`` too, as corpora and pair files are).
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")


def read_objects(
    path: Path,
    *,
    expected: str = "a JSON object",
    on_bad: Callable[[int, str], None] | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    r"""Yield ``(line number, object)`` for each non-blank line; raise on a line that is not one.

    A leading byte-order mark is ignored. ``expected`` describes the object in the error message.
    A string that :func:`~sentsim.base.check_text` refuses (an unpaired surrogate escape, or
    ``\u0000``) makes a line bad too, named by its field. With ``on_bad``, a bad line is reported
    as ``on_bad(line number, problem)`` and skipped instead (``on_bad`` may raise itself, e.g.
    unless the user asked to skip bad rows).
    """
    first = True
    with open_text(path) as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                value, problem = None, f"not valid JSON ({exc.msg})"
            else:
                problem = (
                    text_problem(line, value) if isinstance(value, dict) else f"expected {expected}"
                )
                if not problem:
                    yield n, value
                    first = False
                    continue
            if first and _json_array(line, value):  # skipping "bad rows" would drop every row
                raise DataError(
                    f"{path}, line {n}: a JSON array, not JSON lines (one object a line); "
                    f"convert it, e.g. `jq -c '.[]' {path} > {path.stem}-lines.jsonl`"
                )
            first = False
            if on_bad is None:
                raise DataError(f"{path}, line {n}: {problem}")
            on_bad(n, problem)


def _json_array(line: str, value: object) -> bool:
    """Whether a file's first line opens a JSON array: ``[`` alone, or an array of objects."""
    if line.strip() == "[":
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def text_problem(line: str, value: object) -> str:
    r"""What is wrong with the text of a JSON line's decoded ``value``; ``""`` when nothing is.

    A JSON string can hold what text may not only through a ``\u`` escape, so a line without
    one is not walked.
    """
    if "\\u" not in line:
        return ""
    try:
        if isinstance(value, dict):
            for key, item in value.items():
                check_text(key, "a key")
                check_json_text(item, repr(key))
        else:
            check_json_text(value, "the value")
    except ValueError as exc:
        return str(exc)
    return ""
