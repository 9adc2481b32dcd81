"""Pooling: token vectors of one text → one vector, with padding masked out.

Reads and writes the sentence-transformers ``1_Pooling/config.json`` format.
"""

from __future__ import annotations

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

    @classmethod
    def parse(cls, value: str | PoolingMode) -> PoolingMode:
        """Return the pooling named by ``value`` or raise listing the valid names."""
        return parse_choice(cls, value, "pooling")


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
    (sentence-transformers' ``include_prompt=False``).
    """
    first = mask.to(torch.int).argmax(dim=1)
    return tokens[torch.arange(tokens.shape[0], device=tokens.device), first]


def max_pool(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``v_d = max_t h_{t,d}`` over unmasked tokens (padding set to -1e9 first)."""
    masked = tokens.masked_fill(mask.unsqueeze(-1) == 0, -1e9)
    return masked.max(1).values


_POOL = {
    PoolingMode.MEAN: mean_pool,
    PoolingMode.CLS: cls_pool,
    PoolingMode.MAX: max_pool,
    PoolingMode.MEAN_SQRT_LEN: mean_sqrt_len_pool,
}


def pool(tokens: torch.Tensor, mask: torch.Tensor, mode: PoolingMode) -> torch.Tensor:
    """Pool ``tokens`` (batch, seq, dim) under ``mask`` (batch, seq) into (batch, dim)."""
    return _POOL[mode](tokens, mask)


_CONFIG_KEYS = {
    PoolingMode.MEAN: "pooling_mode_mean_tokens",
    PoolingMode.CLS: "pooling_mode_cls_token",
    PoolingMode.MAX: "pooling_mode_max_tokens",
    PoolingMode.MEAN_SQRT_LEN: "pooling_mode_mean_sqrt_len_tokens",
}
#: sentence-transformers 6's ``pooling_mode`` names where they differ from sentsim's.
_ST_MODE_NAMES = {"mean_sqrt_len_tokens": PoolingMode.MEAN_SQRT_LEN}


class PoolingConfig(NamedTuple):
    """What a sentence-transformers ``1_Pooling/config.json`` says sentsim must do."""

    mode: PoolingMode
    dimension: int | None
    include_prompt: bool  # whether a prompt's tokens enter the pooled vector


def read_pooling_config(path: Path) -> PoolingConfig:
    """Read a sentence-transformers pooling config: the mode, the embedding size, include_prompt."""
    if not path.is_file():
        raise ModelLoadError(f"pooling config missing: expected {path}")
    config = read_model_json(path, dict, "an object")
    include_prompt = config.get("include_prompt", True)
    if not isinstance(include_prompt, bool):
        raise ModelLoadError(
            f'{path}: "include_prompt" must be true or false, found {include_prompt!r}'
        )
    if "pooling_mode" in config:  # sentence-transformers 6: one key, "embedding_dimension"
        mode = config["pooling_mode"]
        size = config.get("embedding_dimension", config.get("word_embedding_dimension"))
        try:
            parsed = _ST_MODE_NAMES.get(mode) if isinstance(mode, str) else None
            return PoolingConfig(parsed or PoolingMode.parse(mode), size, include_prompt)
        except ValueError:
            raise ModelLoadError(
                f"{path}: sentsim supports pooling_mode mean, cls, max or mean_sqrt_len_tokens; "
                f"found {mode!r}"
            ) from None
    chosen = [mode for mode, key in _CONFIG_KEYS.items() if config.get(key)]
    if len(chosen) != 1:
        raise ModelLoadError(
            f"{path}: sentsim supports exactly one of {sorted(_CONFIG_KEYS.values())} set to true; "
            f"found {[k for k, v in config.items() if k.startswith('pooling_mode') and v]}"
        )
    return PoolingConfig(chosen[0], config.get("word_embedding_dimension"), include_prompt)


def pooling_config(mode: PoolingMode, dim: int) -> dict[str, object]:
    """Return the sentence-transformers ``1_Pooling/config.json`` content for ``mode``."""
    config: dict[str, object] = {"word_embedding_dimension": dim}
    for key in (
        "pooling_mode_cls_token",
        "pooling_mode_mean_tokens",
        "pooling_mode_max_tokens",
        "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens",
        "pooling_mode_lasttoken",
    ):
        config[key] = False
    config[_CONFIG_KEYS[mode]] = True
    config["include_prompt"] = True
    return config
