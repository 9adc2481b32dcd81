"""Pooling: token vectors of one text → one vector, with padding masked out.

The modes are sentence-transformers' ``Pooling`` modes. Several may be named together: their
vectors are concatenated in the order named (``cls`` + ``mean`` + ``max`` of 384-d token vectors
is one 1152-d vector). Every mode finds a text's tokens through the attention mask, so batches
padded on the right (BERT) and on the left (decoder embedders) pool alike.

Reads and writes the sentence-transformers ``1_Pooling/config.json`` format: the
``pooling_mode_*`` flags of versions 2–5 and the single ``pooling_mode`` key of version 6.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple

import torch

from sentsim.choices import parse_choice
from sentsim.errors import ModelLoadError
from sentsim.models import read_model_json


class PoolingMode(StrEnum):
    """How token vectors become one text vector."""

    MEAN = "mean"
    CLS = "cls"
    MAX = "max"
    MEAN_SQRT_LEN = "mean_sqrt_len"
    WEIGHTED_MEAN = "weightedmean"
    LAST_TOKEN = "lasttoken"

    @classmethod
    def parse(cls, value: str | PoolingMode) -> PoolingMode:
        """Return the pooling named by ``value`` or raise listing the valid names."""
        return parse_choice(cls, value, "pooling")


#: One mode, or two or more whose vectors are concatenated in this order.
Pooling = PoolingMode | tuple[PoolingMode, ...]


def parse_pooling(value: str | PoolingMode | Sequence[str | PoolingMode]) -> Pooling:
    """One mode for a name; for a sequence of names, the modes concatenated in that order.

    >>> parse_pooling("CLS")
    <PoolingMode.CLS: 'cls'>
    >>> parse_pooling(["cls", "mean"])
    (<PoolingMode.CLS: 'cls'>, <PoolingMode.MEAN: 'mean'>)

    A sequence of one name is that mode, as sentence-transformers reads it.
    """
    if isinstance(value, str):
        return PoolingMode.parse(value)
    modes = tuple(PoolingMode.parse(name) for name in value)
    if not modes:
        raise ValueError("pooling: no mode given; name one, e.g. 'mean', or several to concatenate")
    return modes[0] if len(modes) == 1 else modes


def pooling_modes(pooling: Pooling) -> tuple[PoolingMode, ...]:
    """The modes of ``pooling`` in concatenation order (one for a single mode)."""
    return (pooling,) if isinstance(pooling, PoolingMode) else pooling


def pooling_name(pooling: Pooling) -> str | list[str]:
    """``pooling`` as JSON: a mode's name, or the list of names of concatenated modes."""
    return pooling.value if isinstance(pooling, PoolingMode) else [m.value for m in pooling]


def pooled_width(pooling: Pooling, dim: int) -> int:
    """The width of pooled vectors: the token width ``dim`` once per mode."""
    return dim * len(pooling_modes(pooling))


def _accumulation_dtype(tokens: torch.Tensor) -> torch.dtype:
    """float32 for half-precision tokens: bfloat16 counts whole numbers exactly only to 256."""
    return torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype


def first_kept(mask: torch.Tensor) -> torch.Tensor:
    """``(batch,)`` index of the first position each row of ``mask`` keeps (0 where none).

    With left padding, the number of padding positions before the text.
    """
    return mask.to(torch.int).argmax(dim=1)


def exclude_prompt(mask: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """A copy of ``mask`` with each text's first ``prompt_length`` tokens set to 0.

    Counted from the text's first token, after any left padding: sentence-transformers'
    ``include_prompt=False``, where ``prompt_length`` covers ``[CLS]`` (or BOS) and the prompt.
    """
    positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
    return mask.masked_fill(positions < (first_kept(mask) + prompt_length).unsqueeze(1), 0)


def mean_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``v = Σ_t m_t h_t / max(Σ_t m_t, 1e-9)`` over the tokens ``t`` whose mask ``m_t`` is 1."""
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def mean_sqrt_len_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``v = Σ_t m_t h_t / √max(Σ_t m_t, 1e-9)``: the sum over kept tokens, over √(their count).

    sentence-transformers' ``mean_sqrt_len_tokens``: a longer text gets a longer vector.
    """
    weights = mask.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-9).sqrt()


def cls_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``v = h_f``, ``f`` the first token the mask keeps.

    That is ``[CLS]``, or the text's first token where a prompt's tokens are masked out
    (sentence-transformers' ``include_prompt=False``), or the first after left padding.
    """
    return tokens[torch.arange(tokens.shape[0], device=tokens.device), first_kept(mask)]


def max_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``v_d = max_t h_{t,d}`` over unmasked tokens (padding set to -1e9 first)."""
    masked = tokens.masked_fill(mask.unsqueeze(-1) == 0, -1e9)
    return masked.max(1).values


def weighted_mean_pool(
    tokens: torch.Tensor, mask: torch.Tensor, start: torch.Tensor | None = None
) -> torch.Tensor:
    """``v = Σ_t m_t w_t h_t / max(Σ_t m_t w_t, 1e-9)``, ``w_t = t − s + 1``.

    SGPT's position-weighted mean (Muennighoff 2022, arXiv:2202.08904), sentence-transformers'
    ``weightedmean``: later tokens weigh more, as a causal model's have read more of the text.
    ``s`` is the position of the text's first token, ``start`` (batch,), so that its tokens weigh
    1, 2, 3, ... on either padding side; by default the first position ``mask`` keeps. :func:`pool`
    passes where the text began before a prompt was masked out: the text's tokens keep the
    weights they have in ``prompt + text``, as in sentence-transformers.
    """
    dtype = _accumulation_dtype(tokens)
    first = first_kept(mask) if start is None else start
    positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=dtype)
    weights = (positions.unsqueeze(0) - first.unsqueeze(1).to(dtype)) * mask.to(dtype)
    summed = (tokens * weights.unsqueeze(-1)).sum(1)
    return (summed / weights.sum(1, keepdim=True).clamp(min=1e-9)).to(tokens.dtype)


def last_token_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``v = h_l``, ``l`` the last token the mask keeps; a zero vector where it keeps none.

    sentence-transformers' ``lasttoken``, for decoder embedders (SGPT, e5-mistral, gte-Qwen2)
    whose last token is the only one to have read the whole text: with left padding the batch's
    last position, with right padding the text's own last token (its end token where the
    tokenizer adds one).
    """
    positions = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    last = (mask.to(torch.long) * positions).argmax(dim=1)  # the kept position numbered highest
    rows = torch.arange(tokens.shape[0], device=tokens.device)
    return tokens[rows, last] * mask[rows, last].unsqueeze(-1).to(tokens.dtype)


_POOL: dict[PoolingMode, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    PoolingMode.MEAN: mean_pool,
    PoolingMode.CLS: cls_pool,
    PoolingMode.MAX: max_pool,
    PoolingMode.MEAN_SQRT_LEN: mean_sqrt_len_pool,
    PoolingMode.LAST_TOKEN: last_token_pool,
}


def pool(
    tokens: torch.Tensor, mask: torch.Tensor, pooling: Pooling, *, prompt_length: int = 0
) -> torch.Tensor:
    """Pool ``tokens`` (batch, seq, dim) under ``mask`` (batch, seq) into (batch, modes × dim).

    Each mode's vector in turn, concatenated. ``prompt_length`` > 0 leaves each text's first
    that many tokens out of every mode (:func:`exclude_prompt`); ``weightedmean`` still numbers
    positions from the text's first token.
    """
    kept = exclude_prompt(mask, prompt_length) if prompt_length else mask
    vectors = [
        weighted_mean_pool(tokens, kept, first_kept(mask))
        if mode == PoolingMode.WEIGHTED_MEAN
        else _POOL[mode](tokens, kept)
        for mode in pooling_modes(pooling)
    ]
    return vectors[0] if len(vectors) == 1 else torch.cat(vectors, dim=-1)


#: sentence-transformers' ``pooling_mode_*`` flags, in the order it concatenates their modes.
_CONFIG_KEYS = {
    PoolingMode.CLS: "pooling_mode_cls_token",
    PoolingMode.MAX: "pooling_mode_max_tokens",
    PoolingMode.MEAN: "pooling_mode_mean_tokens",
    PoolingMode.MEAN_SQRT_LEN: "pooling_mode_mean_sqrt_len_tokens",
    PoolingMode.WEIGHTED_MEAN: "pooling_mode_weightedmean_tokens",
    PoolingMode.LAST_TOKEN: "pooling_mode_lasttoken",
}
#: sentence-transformers 6's ``pooling_mode`` names where they differ from sentsim's.
_ST_NAMES = {PoolingMode.MEAN_SQRT_LEN: "mean_sqrt_len_tokens"}
_FROM_ST_NAMES = {name: mode for mode, name in _ST_NAMES.items()}


def _st_name(mode: PoolingMode) -> str:
    return _ST_NAMES.get(mode, mode.value)


class PoolingConfig(NamedTuple):
    """What a sentence-transformers ``1_Pooling/config.json`` says sentsim must do."""

    pooling: Pooling
    dimension: int | None  # the width of the token vectors read (not of the pooled vector)
    include_prompt: bool  # whether a prompt's tokens enter the pooled vector


def read_pooling_config(path: Path) -> PoolingConfig:
    """Read a sentence-transformers pooling config: the mode(s), the token width, include_prompt."""
    if not path.is_file():
        raise ModelLoadError(f"pooling config missing: expected {path}")
    config = read_model_json(path, dict, "an object")
    include_prompt = config.get("include_prompt", True)
    if not isinstance(include_prompt, bool):
        raise ModelLoadError(
            f'{path}: "include_prompt" must be true or false, found {include_prompt!r}'
        )
    if "pooling_mode" in config:  # sentence-transformers 6: one key, "embedding_dimension"
        size = config.get("embedding_dimension", config.get("word_embedding_dimension"))
        return PoolingConfig(_read_mode_key(path, config["pooling_mode"]), size, include_prompt)
    return PoolingConfig(
        _read_mode_flags(path, config), config.get("word_embedding_dimension"), include_prompt
    )


def _read_mode_key(path: Path, value: object) -> Pooling:
    """sentence-transformers 6's ``"pooling_mode"``: a name, or a list concatenated in order."""
    names = [value] if isinstance(value, str) else value
    try:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError
        return parse_pooling([_FROM_ST_NAMES.get(n) or PoolingMode.parse(n) for n in names])
    except ValueError:
        known = ", ".join(_st_name(m) for m in _CONFIG_KEYS)
        raise ModelLoadError(
            f"{path}: sentsim supports pooling_mode {known}, or a list of them (their vectors "
            f"concatenated in that order); found {value!r}"
        ) from None


def _read_mode_flags(path: Path, config: dict[str, object]) -> Pooling:
    """sentence-transformers 2–5's ``pooling_mode_*`` flags, concatenated in its fixed order."""
    known = set(_CONFIG_KEYS.values())
    found = [k for k, v in config.items() if k.startswith("pooling_mode") and v]
    modes = [mode for mode, key in _CONFIG_KEYS.items() if config.get(key)]
    if not modes or set(found) - known:
        raise ModelLoadError(
            f"{path}: sentsim supports {list(_CONFIG_KEYS.values())} set to true (one, or several "
            f"to concatenate in that order); found {found}"
        )
    return parse_pooling(modes)


def pooling_config(pooling: Pooling, dim: int, *, include_prompt: bool = True) -> dict[str, object]:
    """Return the sentence-transformers ``1_Pooling/config.json`` content for ``pooling``.

    ``dim`` is the token vectors' width. The ``pooling_mode_*`` flags that every version reads
    when they can say it: modes in sentence-transformers' order, each once. Otherwise (``mean``
    before ``cls``, a mode twice) the ``pooling_mode`` list that version 6 reads.
    """
    modes = pooling_modes(pooling)
    config: dict[str, object]
    if modes == tuple(m for m in _CONFIG_KEYS if m in modes):
        config = {"word_embedding_dimension": dim}
        config.update({key: mode in modes for mode, key in _CONFIG_KEYS.items()})
    else:
        config = {"embedding_dimension": dim, "pooling_mode": [_st_name(m) for m in modes]}
    config["include_prompt"] = include_prompt
    return config
