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


class Retriever(StrEnum):
    """First-stage retrievers (here, not in ``search``, so that a bi-encoder can name its own)."""

    DENSE = "dense"
    BM25 = "bm25"
    HYBRID = "hybrid"

    @classmethod
    def parse(cls, value: str | Retriever) -> Retriever:
        """Return the retriever named by ``value`` or raise listing the valid names."""
        return parse_choice(cls, value, "retriever")


class Precision(StrEnum):
    """The number format a model computes in when it encodes or scores.

    Training has its own setting, ``TrainSettings.precision``, with the values but ``int8``.
    ``fp32``: float32 throughout, the default. ``bf16``: matrix products in bfloat16 under
    ``torch.autocast`` (layer norms, softmax and the outputs stay float32). ``auto``: ``bf16`` on
    hardware that multiplies bfloat16 natively (a CPU with AMX or AVX512-BF16, a CUDA GPU that
    supports it), else ``fp32``; elsewhere bfloat16 is emulated and gains nothing. ``int8``
    (CPU only, inference only): the transformer's widening and square linear layers multiply in
    8-bit integers (see :func:`sentsim.backend.int8_network`); it moves scores more than ``bf16``
    does, so ``auto`` never chooses it.
    """

    FP32 = "fp32"
    BF16 = "bf16"
    AUTO = "auto"
    INT8 = "int8"
