"""Putting a judge's 0–1 scores on the gold labels' scale before they become silver labels.

A cross-encoder trained on gold scores / 5 outputs scores roughly on that scale; a fused judge does
not: ``sigmoid(w · z(ce) + (1 − w) · z(cos))`` is centred on 0.5 with a narrower spread (the shipped
``ce-sts`` on STS-B dev: 0.07–0.83 where gold / 5 runs 0–1). CoSENT and cosine-MSE compare a silver
pair's label with a gold pair's in the same batch, so a silver paraphrase labelled 0.83 is taught
as less similar than a gold pair labelled 0.9. :func:`fit_calibration` fits
``sigmoid(a · logit(score) + b)`` to the gold scores of a dev set (soft-label cross-entropy, two
parameters, Platt scaling): monotone in the score for ``a > 0``, so it changes no order among the
judge's own labels, only where they sit against the gold ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sentsim.base import PairScorer, check_pairs
from sentsim.errors import DataError

_EDGE = 1e-6  # scores are clipped to [_EDGE, 1 − _EDGE] before the logit


def _logit(scores: ArrayLike) -> NDArray[np.float64]:
    s = np.clip(np.asarray(scores, dtype=np.float64), _EDGE, 1.0 - _EDGE)
    return np.log(s) - np.log1p(-s)


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free form of 1 / (1 + e^-z)


@dataclass(frozen=True)
class Calibration:
    """``calibrated = sigmoid(a · logit(score) + b)``, fitted on ``pairs`` pairs of ``dev``."""

    a: float
    b: float
    dev: str
    pairs: int
    judge_mean: float  # the judge's dev scores, before
    judge_sd: float
    calibrated_mean: float  # and after
    calibrated_sd: float
    gold_mean: float  # the dev gold scores, on 0–1
    gold_sd: float

    def apply(self, scores: ArrayLike) -> NDArray[np.float32]:
        """Map judge scores (0–1) onto the gold scale (0–1)."""
        return _sigmoid(self.a * _logit(scores) + self.b).astype(np.float32)

    def save(self, path: Path) -> None:
        """Write as JSON (atomically)."""
        from sentsim.atomic import write_text_atomic

        write_text_atomic(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> Calibration:
        """Read what :meth:`save` wrote; a damaged file names itself and how to redo it."""
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"{path}: not a calibration written by sentsim ({exc}); delete it to fit again"
            ) from None


def fit_calibration(
    scores: ArrayLike, gold: ArrayLike, *, dev: str = "dev", steps: int = 100
) -> Calibration:
    """Fit ``a, b`` minimising ``mean(−g log p − (1 − g) log(1 − p))``, ``p = σ(a · logit(s) + b)``.

    ``scores``: the judge's 0–1 scores of the dev pairs; ``gold``: their gold scores mapped to 0–1.
    The loss is convex in ``(a, b)``; Newton's method with step halving finds its minimum.
    """
    s = np.asarray(scores, dtype=np.float64)
    g = np.asarray(gold, dtype=np.float64)
    if s.shape != g.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and gold {g.shape} must be two equal 1-D arrays")
    if len(s) < 2 or np.ptp(s) == 0 or np.ptp(g) == 0:
        raise DataError(
            f"{dev}: calibration needs at least 2 pairs whose judge scores and gold scores each "
            f"differ ({len(s)} pairs)"
        )
    if not np.isfinite(s).all() or s.min() < 0 or s.max() > 1 or g.min() < 0 or g.max() > 1:
        raise ValueError("judge scores and gold scores must lie in 0–1")
    x = _logit(s)
    design = np.stack([x, np.ones_like(x)], axis=1)

    def loss(theta: NDArray[np.float64]) -> float:
        z = design @ theta
        return float(np.mean(np.logaddexp(0.0, z) - g * z))

    theta = np.array([1.0, 0.0])
    current = loss(theta)
    for _ in range(steps):
        p = _sigmoid(design @ theta)
        grad = design.T @ (p - g) / len(g)
        hess = (design * (p * (1 - p))[:, None]).T @ design / len(g) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and loss(theta - scale * step) > current:
            scale /= 2
        theta = theta - scale * step
        previous, current = current, loss(theta)
        if previous - current < 1e-12:
            break
    a, b = (float(v) for v in theta)
    if a <= 0:
        raise DataError(
            f"{dev}: the judge's scores fall as the gold scores rise (fitted slope {a:.3g}); "
            "calibrating would reverse its order: check that the judge fits this task"
        )
    fitted = _sigmoid(a * x + b)
    return Calibration(
        a=round(a, 6),
        b=round(b, 6),
        dev=dev,
        pairs=len(s),
        judge_mean=round(float(s.mean()), 4),
        judge_sd=round(float(s.std()), 4),
        calibrated_mean=round(float(fitted.mean()), 4),
        calibrated_sd=round(float(fitted.std()), 4),
        gold_mean=round(float(g.mean()), 4),
        gold_sd=round(float(g.std()), 4),
    )


class CalibratedScorer:
    """A pair scorer whose 0–1 scores pass through a :class:`Calibration`."""

    def __init__(self, judge: PairScorer, calibration: Calibration) -> None:
        self.judge = judge
        self.calibration = calibration
        self.name = f"{judge.name}, calibrated on {calibration.dev}"

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return the judge's scores mapped onto the gold scale."""
        items = check_pairs(pairs)
        return self.calibration.apply(self.judge.score_pairs(items, show_progress=show_progress))
