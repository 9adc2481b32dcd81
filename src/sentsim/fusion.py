"""A judge that fuses a cross-encoder with one or more bi-encoders' cosines.

``fused = w · z(ce) + (1 − w) · z(cos)``, each score z-scored with the mean and standard deviation
measured on the dev set the weight ``w`` was chosen on; the result is passed through a sigmoid so
that it stays in 0–1. With further bi-encoders (``extra``), each adds ``wᵢ · z(cosᵢ)`` and the
first bi-encoder keeps ``1 − w − Σ wᵢ``. Stored in the cross-encoder directory's
``sentsim_config.json`` under ``fusion``; the cross-encoder files beside it still load alone with
:class:`CrossEncoder`.

The bi-encoders are scored by cosine whatever their ``similarity_fn_name`` (a dot-product model's
too): a fusion's statistics and weights are measured on cosines, by ``sentsim fuse`` and here.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from sentsim.atomic import write_text_atomic
from sentsim.base import check_pairs
from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder, RankedDoc, rank_inputs, ranked
from sentsim.errors import ModelLoadError
from sentsim.evaluation.scorers import EncoderPairScorer
from sentsim.models import is_builtin, read_model_json
from sentsim.similarity import Metric


@dataclass(frozen=True)
class ExtraTerm:
    """A further bi-encoder in a fusion: its weight and the dev statistics of its cosine."""

    bi_encoder: str
    weight: float
    mean: float
    std: float


@dataclass(frozen=True)
class FusionConfig:
    """The weights and the dev statistics of each score."""

    bi_encoder: str
    weight: float
    ce_mean: float
    ce_std: float
    bi_mean: float
    bi_std: float
    symmetric: bool = True
    selected_on: str = ""
    extra: tuple[ExtraTerm, ...] = ()

    @property
    def bi_weight(self) -> float:
        """The first bi-encoder's weight: what the cross-encoder and the extra terms leave."""
        return round(1.0 - self.weight - sum(term.weight for term in self.extra), 4)

    @property
    def bi_encoders(self) -> list[str]:
        """Every bi-encoder of the fusion, the first one first."""
        return [self.bi_encoder, *(term.bi_encoder for term in self.extra)]


def fuse(
    ce: NDArray[np.floating],
    cos: NDArray[np.floating],
    config: FusionConfig,
    extra: Sequence[NDArray[np.floating]] = (),
) -> NDArray[np.float32]:
    """``sigmoid(w · (ce − μ_ce)/σ_ce + w_bi · (cos − μ_cos)/σ_cos + Σ wᵢ · z(cosᵢ))``.

    ``extra`` holds the cosines of ``config.extra``'s bi-encoders, in their order.
    """
    if len(extra) != len(config.extra):
        raise ValueError(
            f"the fusion has {len(config.extra)} extra bi-encoder(s); got {len(extra)} score arrays"
        )
    z_ce = (np.asarray(ce) - config.ce_mean) / config.ce_std
    z_bi = (np.asarray(cos) - config.bi_mean) / config.bi_std
    value = config.weight * z_ce + config.bi_weight * z_bi
    for term, scores in zip(config.extra, extra, strict=True):
        value = value + term.weight * (np.asarray(scores) - term.mean) / term.std
    return (1.0 / (1.0 + np.exp(-value))).astype(np.float32)


def choose_weight(
    ce: NDArray[np.floating],
    cos: NDArray[np.floating],
    gold: NDArray[np.floating],
    *,
    bi_encoder: str,
    selected_on: str,
    grid: int = 21,
    extra: Sequence[tuple[str, NDArray[np.floating]]] = (),
) -> tuple[FusionConfig, float]:
    """Pick the weights maximizing Spearman with ``gold`` (a dev set).

    With one bi-encoder, ``w`` in ``{0, 0.05, …, 1}``; with ``extra`` bi-encoders (name, dev
    cosines), every weight vector on the same grid that sums to 1. Ties keep the first found, the
    cross-encoder's weight rising.
    """
    from sentsim.evaluation.sts import correlations

    def stats(x: NDArray[np.floating]) -> tuple[float, float]:
        return float(np.mean(x)), float(np.std(x)) or 1.0

    base = FusionConfig(bi_encoder, 0.0, *stats(ce), *stats(cos), selected_on=selected_on)
    unweighted = [ExtraTerm(name, 0.0, *stats(scores)) for name, scores in extra]
    extra_scores = [scores for _, scores in extra]
    steps = grid - 1
    best = (base, float("-inf"))
    for split in itertools.product(range(grid), repeat=1 + len(extra)):
        if sum(split) > steps:
            continue
        terms = tuple(
            replace(term, weight=round(k / steps, 4))
            for term, k in zip(unweighted, split[1:], strict=True)
        )
        config = replace(base, weight=round(split[0] / steps, 4), extra=terms)
        spearman = correlations(fuse(ce, cos, config, extra_scores), gold)[0]
        if spearman > best[1]:
            best = (config, spearman)
    return best


def model_reference(model: str, folder: Path) -> str:
    """How ``folder``'s config should name ``model``.

    A built-in name as is; a directory relative to ``folder``, so that the two can move together
    and the config works from any working folder (``./NAME`` where ``NAME`` alone would read as
    a built-in: a folder ``bi-sts`` inside the judge's was loaded as the shipped ``bi-sts``).
    """
    if is_builtin(model) or not Path(model).is_dir():
        return model
    relative = os.path.relpath(Path(model).resolve(), folder.resolve())
    return f"./{relative}" if is_builtin(relative) else relative


def stored_model_path(model: str, folder: Path) -> str | Path:
    """Where a model named in ``folder``'s config is.

    A built-in name; a path relative to ``folder`` (what :func:`model_reference` writes); else, as
    configs written before it did, a path relative to the working folder.
    """
    if is_builtin(model) or Path(model).is_absolute():
        return model
    beside = folder / model
    return beside if beside.is_dir() else model


def read_fusion(path: Path) -> FusionConfig | None:
    """Return the fusion stored beside a cross-encoder, if any (checked: what fuse writes)."""
    file = path / "sentsim_config.json"
    if not file.is_file():
        return None
    value = read_model_json(file, dict, "an object").get("fusion")
    if not value:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("extra", []), list):
        raise ModelLoadError(f"{file}: 'fusion' must be an object as sentsim fuse writes it")
    try:
        extra = tuple(ExtraTerm(**term) for term in value.pop("extra", []))
        config = FusionConfig(**value, extra=extra)
    except TypeError as exc:
        raise ModelLoadError(f"{file}: 'fusion' is not as sentsim fuse writes it ({exc})") from None
    _check_fusion(config, file)
    return config


def _check_fusion(config: FusionConfig, file: Path) -> None:
    """Raise naming ``file`` and the field of ``config`` that no fusion can hold."""
    names = {"bi_encoder": config.bi_encoder}
    numbers = {"weight": config.weight, "ce_mean": config.ce_mean, "ce_std": config.ce_std}
    numbers |= {"bi_mean": config.bi_mean, "bi_std": config.bi_std}
    for i, term in enumerate(config.extra):
        names[f"extra[{i}].bi_encoder"] = term.bi_encoder
        numbers |= {f"extra[{i}].{k}": getattr(term, k) for k in ("weight", "mean", "std")}
    for key, name in names.items():
        if not isinstance(name, str) or not name:
            raise ModelLoadError(f"{file}: fusion {key} {name!r} is not a model name")
    if not isinstance(config.symmetric, bool):  # "no" would count as true
        raise ModelLoadError(f"{file}: fusion symmetric {config.symmetric!r} must be true or false")
    if not isinstance(config.selected_on, str):
        raise ModelLoadError(f"{file}: fusion selected_on {config.selected_on!r} is not a text")
    for key, number in numbers.items():
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ModelLoadError(f"{file}: fusion {key} {number!r} is not a number")
        if key.endswith("std") and not number > 0:
            raise ModelLoadError(f"{file}: fusion {key} {number!r} must be above 0")
    weights = [config.weight, config.bi_weight, *(t.weight for t in config.extra)]
    if not all(0 <= w <= 1 for w in weights):
        raise ModelLoadError(
            f"{file}: fusion weights must each be in 0..1 and sum to at most 1 (weight "
            f"{config.weight}, extra {[t.weight for t in config.extra]}); run sentsim fuse again"
        )


def write_fusion(path: Path, config: FusionConfig) -> None:
    """Store ``config`` in ``path/sentsim_config.json``, keeping its other keys."""
    file = path / "sentsim_config.json"
    current = read_model_json(file, dict, "a JSON object of settings") if file.is_file() else {}
    current["fusion"] = asdict(config)
    write_text_atomic(file, json.dumps(current, indent=2) + "\n")


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

    def rank(self, query: str, docs: Sequence[str], *, top_k: int | None = None) -> list[RankedDoc]:
        """``docs`` best first by this scorer's score with ``query`` (ties keep input order)."""
        return rank_with(self, query, docs, top_k)


@dataclass(frozen=True)
class FusedScores:
    """A fused judge's scores, its cross-encoder's alone, and the seconds each would take alone.

    ``judge_seconds``: the cross-encoder's; ``fused_seconds``: those plus the bi-encoders' and
    the fusion's, what scoring with the fusion takes (the cross-encoder ran once, for both).
    """

    judge: NDArray[np.float32]
    fused: NDArray[np.float32]
    judge_seconds: float
    fused_seconds: float


class FusedScorer:
    """Cross-encoder and bi-encoder cosine(s) fused by a :class:`FusionConfig`."""

    def __init__(
        self,
        judge: CrossEncoderScorer,
        bi: EncoderPairScorer,
        config: FusionConfig,
        extra: Sequence[EncoderPairScorer] = (),
    ) -> None:
        self.judge = judge
        self.bi = bi
        self.extra = list(extra)
        self.config = config
        self.name = (
            f"{judge.model.name} (fused with {' + '.join(config.bi_encoders)}, w={config.weight})"
        )

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return fused 0–1 scores."""
        return self.score_parts(pairs, show_progress=show_progress).fused

    def score_parts(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> FusedScores:
        """The fused scores and the cross-encoder's own, from one pass of the cross-encoder.

        What a report of both needs (``sentsim eval sts``): scoring with the judge alone, then
        with the fusion, ran the cross-encoder twice over the same pairs.
        """
        items = check_pairs(pairs)
        start = time.perf_counter()
        ce = self.judge.score_pairs(items, show_progress=show_progress)
        judge_seconds = time.perf_counter() - start
        cos = self.bi.score_pairs(items, show_progress=show_progress)
        extra = [bi.score_pairs(items, show_progress=show_progress) for bi in self.extra]
        fused = fuse(ce, cos, self.config, extra)
        return FusedScores(ce, fused, judge_seconds, time.perf_counter() - start)

    def rank(self, query: str, docs: Sequence[str], *, top_k: int | None = None) -> list[RankedDoc]:
        """``docs`` best first by the fused score with ``query`` (ties keep input order).

        ``load_judge("ce-sts").rank(...)`` orders by the judge its card reports; the
        cross-encoder's own :meth:`~sentsim.cross_encoder.CrossEncoder.rank` by its score alone.
        """
        return rank_with(self, query, docs, top_k)


def rank_with(
    scorer: CrossEncoderScorer | FusedScorer, query: str, docs: Sequence[str], top_k: int | None
) -> list[RankedDoc]:
    """``docs`` ranked by ``scorer``'s score of ``(query, doc)`` (a judge of one output)."""
    texts = rank_inputs(query, docs, top_k)
    if not texts:
        return []
    scores = scorer.score_pairs([(query, d) for d in texts], show_progress=False)
    return ranked(texts, scores, top_k)


def load_judge(
    name_or_dir: str | Path, *, fused: bool = True, batch_size: int = 32
) -> CrossEncoderScorer | FusedScorer:
    """Load a cross-encoder as a pair scorer, fused with its bi-encoder(s) when its config says so.

    This is the judge ``sentsim eval sts --cross-encoder`` measures: ``load_judge("ce-sts")``
    scores with the fusion its card reports, where ``CrossEncoder.load("ce-sts").predict`` gives
    the cross-encoder alone. ``fused=False`` gives the cross-encoder alone as a scorer.
    ``batch_size`` is the pairs (and texts) each model reads at a time.
    """
    return judge_scorer(CrossEncoder.load(name_or_dir), fused=fused, batch_size=batch_size)


def judge_scorer(
    model: CrossEncoder, *, fused: bool = True, batch_size: int = 32
) -> CrossEncoderScorer | FusedScorer:
    """:func:`load_judge` for a cross-encoder already loaded (its folder's fusion, if any).

    The fused bi-encoders load on ``model``'s device and in its precision.
    """
    folder = model.source
    config = read_fusion(folder) if folder is not None else None
    symmetric = config.symmetric if config else True
    judge = CrossEncoderScorer(model, symmetric=symmetric, batch_size=batch_size)
    if not fused or config is None or folder is None:
        return judge
    # on the judge's device and in its precision: a judge loaded on the CPU (or in bf16) had its
    # bi-encoders on the default device and precision
    first, *others = (
        EncoderPairScorer(
            BiEncoder.load(
                _fused_encoder_path(name, folder),
                device=str(model.device),
                precision=model.precision,
            ),
            batch_size=batch_size,
            metric=Metric.COSINE,  # what the fusion's weights were chosen on (sentsim fuse)
        )
        for name in config.bi_encoders
    )
    return FusedScorer(judge, first, config, others)


def _fused_encoder_path(name: str, folder: Path) -> str | Path:
    """Where the bi-encoder that ``folder``'s fusion names is, or an error naming the config."""
    where = stored_model_path(name, folder)
    if is_builtin(where) or Path(where).is_dir():
        return where
    looked = {str((folder / name).resolve()), str(Path(name).resolve())}
    raise ModelLoadError(
        f"{folder / 'sentsim_config.json'} fuses this judge with the bi-encoder {name!r}, which "
        f"is not there (looked in {' and '.join(sorted(looked))}): put it back, run sentsim fuse "
        "again, or delete the 'fusion' entry to use the judge alone (in code: "
        "load_judge(..., fused=False))"
    )
