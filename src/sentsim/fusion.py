"""A judge that fuses a cross-encoder with a bi-encoder's cosine.

``fused = w · z(ce) + (1 − w) · z(cos)``, each score z-scored with the mean and standard deviation
measured on the dev set the weight ``w`` was chosen on; the result is passed through a sigmoid so
that it stays in 0–1. Stored in the cross-encoder directory's ``sentsim_config.json`` under
``fusion``; the cross-encoder files beside it still load alone with :class:`CrossEncoder`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from sentsim.base import check_pairs
from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder
from sentsim.evaluation.scorers import EncoderPairScorer
from sentsim.models import resolve_model_path


@dataclass(frozen=True)
class FusionConfig:
    """The weight and the dev statistics of each score."""

    bi_encoder: str
    weight: float
    ce_mean: float
    ce_std: float
    bi_mean: float
    bi_std: float
    symmetric: bool = True
    selected_on: str = ""


def fuse(
    ce: NDArray[np.floating], cos: NDArray[np.floating], config: FusionConfig
) -> NDArray[np.float32]:
    """``sigmoid(w · (ce − μ_ce)/σ_ce + (1 − w) · (cos − μ_cos)/σ_cos)``."""
    z_ce = (np.asarray(ce) - config.ce_mean) / config.ce_std
    z_bi = (np.asarray(cos) - config.bi_mean) / config.bi_std
    value = config.weight * z_ce + (1.0 - config.weight) * z_bi
    return (1.0 / (1.0 + np.exp(-value))).astype(np.float32)


def choose_weight(
    ce: NDArray[np.floating],
    cos: NDArray[np.floating],
    gold: NDArray[np.floating],
    *,
    bi_encoder: str,
    selected_on: str,
    grid: int = 21,
) -> tuple[FusionConfig, float]:
    """Pick ``w`` in ``{0, 0.05, …, 1}`` maximizing Spearman with ``gold`` (a dev set)."""
    from sentsim.evaluation.sts import correlations

    base = FusionConfig(
        bi_encoder,
        0.0,
        float(np.mean(ce)),
        float(np.std(ce)) or 1.0,
        float(np.mean(cos)),
        float(np.std(cos)) or 1.0,
        selected_on=selected_on,
    )
    best = (base, float("-inf"))
    for w in np.linspace(0.0, 1.0, grid):
        config = FusionConfig(**{**asdict(base), "weight": round(float(w), 4)})
        spearman = correlations(fuse(ce, cos, config), gold)[0]
        if spearman > best[1]:
            best = (config, spearman)
    return best


def read_fusion(path: Path) -> FusionConfig | None:
    """Return the fusion stored beside a cross-encoder, if any."""
    file = path / "sentsim_config.json"
    if not file.is_file():
        return None
    value = json.loads(file.read_text(encoding="utf-8")).get("fusion")
    return FusionConfig(**value) if value else None


def write_fusion(path: Path, config: FusionConfig) -> None:
    """Store ``config`` in ``path/sentsim_config.json``, keeping its other keys."""
    file = path / "sentsim_config.json"
    current = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    current["fusion"] = asdict(config)
    file.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")


class CrossEncoderScorer:
    """A cross-encoder as a pair scorer (both orders averaged when ``symmetric``)."""

    def __init__(
        self, model: CrossEncoder, *, symmetric: bool = True, batch_size: int = 32
    ) -> None:
        if model.num_labels != 1:
            raise ValueError(
                f"{model.name} has {model.num_labels} outputs; similarity needs one score"
            )
        self.model = model
        self.symmetric = symmetric
        self.batch_size = batch_size
        self.name = f"cross-encoder {model.name}"

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return the cross-encoder's 0–1 scores."""
        return self.model.predict(
            pairs, batch_size=self.batch_size, symmetric=self.symmetric, show_progress=show_progress
        )


class FusedScorer:
    """Cross-encoder and bi-encoder cosine fused by a :class:`FusionConfig`."""

    def __init__(
        self, judge: CrossEncoderScorer, bi: EncoderPairScorer, config: FusionConfig
    ) -> None:
        self.judge = judge
        self.bi = bi
        self.config = config
        self.name = f"{judge.model.name} (fused with {config.bi_encoder}, w={config.weight})"

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return fused 0–1 scores."""
        items = check_pairs(pairs)
        ce = self.judge.score_pairs(items, show_progress=show_progress)
        cos = self.bi.score_pairs(items, show_progress=show_progress)
        return fuse(ce, cos, self.config)


def load_judge(name_or_dir: str | Path, *, fused: bool = True) -> CrossEncoderScorer | FusedScorer:
    """Load a cross-encoder as a pair scorer, fused with its bi-encoder when its config says so."""
    path = resolve_model_path(name_or_dir)
    model = CrossEncoder.load(name_or_dir)
    config = read_fusion(path)
    judge = CrossEncoderScorer(model, symmetric=config.symmetric if config else True)
    if not fused or config is None:
        return judge
    return FusedScorer(judge, EncoderPairScorer(BiEncoder.load(config.bi_encoder)), config)
