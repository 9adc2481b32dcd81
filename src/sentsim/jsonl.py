"""Reading JSON lines: one object per line, errors naming the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sentsim.errors import DataError


def read_objects(
    path: Path, *, expected: str = "a JSON object"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line; raise on a line that is not one.

    A leading byte-order mark is ignored. ``expected`` describes the object in the error message.
    """
    with path.open(encoding="utf-8-sig") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {n}: not valid JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise DataError(f"{path}, line {n}: expected {expected}")
            yield n, value
