"""Closed sets of options: one parser that turns user input into a member or lists the choices."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


def parse_choice(kind: type[E], value: object, what: str) -> E:
    """Return the member of ``kind`` named by ``value`` (case-insensitive, trimmed).

    >>> from sentsim.pooling import PoolingMode
    >>> parse_choice(PoolingMode, " Mean ", "pooling")
    <PoolingMode.MEAN: 'mean'>
    """
    try:
        return kind(str(value).strip().lower())
    except ValueError:
        valid = ", ".join(m.value for m in kind)
        raise ValueError(f"unknown {what} {value!r}; expected one of: {valid}") from None
