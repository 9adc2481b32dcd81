"""Semantic textual similarity: rank correlation of a scorer with graded gold scores."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.stats import pearsonr, spearmanr

from sentsim.base import PairScorer
from sentsim.data import PairDataset
from sentsim.errors import DataError

if TYPE_CHECKING:
    from sentsim.fusion import FusedScorer


@dataclass(frozen=True)
class StsResult:
    """One scorer on one pair file; correlations ×100."""

    task: str
    data: str
    pairs: int
    model: str
    spearman: float
    pearson: float
    seconds: float

    @property
    def ms_per_1000_pairs(self) -> float:
        """Wall time per 1,000 pairs, in milliseconds."""
        return 1e6 * self.seconds / max(self.pairs, 1)

    def as_dict(self) -> dict[str, object]:
        """Return the fields (and the time per 1,000 pairs) as a JSON-ready dict."""
        return {**asdict(self), "ms_per_1000_pairs": round(self.ms_per_1000_pairs, 1)}


def correlations(
    predicted: NDArray[np.floating], gold: NDArray[np.floating]
) -> tuple[float, float]:
    """Return (Spearman ρ, Pearson r) ×100; a constant prediction correlates 0."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted scores for {len(gold)} gold scores")
    if len(gold) < 2:
        raise DataError("correlation needs at least 2 pairs")
    if np.ptp(gold) == 0:  # scipy would warn and return NaN, which is not valid JSON
        raise DataError(f"every gold score is {gold[0]}; correlation with a constant is undefined")
    if np.ptp(predicted) == 0:
        return 0.0, 0.0
    return 100.0 * float(spearmanr(predicted, gold)[0]), 100.0 * float(pearsonr(predicted, gold)[0])


def evaluate_sts(
    dataset: PairDataset, scorer: PairScorer, *, show_progress: bool | None = None
) -> StsResult:
    """Score every pair of ``dataset`` and correlate with its gold scores.

    A file of numeric labels (MRPC's 0/1) is read as graded pairs: the rank correlation is then
    a point-biserial-like measure of how well the scores separate the two classes.
    """
    gold = _gold(dataset)
    from sentsim.evaluation.scorers import as_pair_scorer, score_dataset

    scorer = as_pair_scorer(scorer)
    start = time.perf_counter()
    predicted = score_dataset(scorer, dataset, show_progress=show_progress)
    return _result(dataset, scorer.name, predicted, gold, time.perf_counter() - start)


def evaluate_fused_sts(
    dataset: PairDataset, scorer: FusedScorer, *, show_progress: bool | None = None
) -> tuple[StsResult, StsResult]:
    """:func:`evaluate_sts` of a fused judge's cross-encoder alone, then of the fusion.

    The cross-encoder scores the pairs once, and both results are read from those scores. Each
    result's ``seconds`` is what scoring with it alone takes: the cross-encoder's time for the
    first; for the fusion, the same time plus its bi-encoders' and the fusion's (the time of the
    one cross-encoder pass is counted in both).
    """
    from sentsim.evaluation.scorers import checked_scores

    gold = _gold(dataset)
    parts = scorer.score_parts(dataset.pairs(), show_progress=show_progress)
    judge = scorer.judge.name
    alone = checked_scores(parts.judge, judge, dataset)
    fused = checked_scores(parts.fused, scorer.name, dataset)
    return (
        _result(dataset, judge, alone, gold, parts.judge_seconds),
        _result(dataset, scorer.name, fused, gold, parts.fused_seconds),
    )


def _gold(dataset: PairDataset) -> NDArray[np.float64]:
    """``dataset``'s graded scores, refused before any scoring if they cannot correlate."""
    gold = dataset.graded_scores()
    if len(gold) < 2 or np.ptp(gold) == 0:  # before scoring: a large file's run was wasted
        try:
            correlations(gold, gold)
        except DataError as exc:
            raise DataError(f"{dataset.path}: {exc}") from None
    return gold


def _result(
    dataset: PairDataset,
    name: str,
    predicted: NDArray[np.floating],
    gold: NDArray[np.floating],
    seconds: float,
) -> StsResult:
    spearman, pearson = correlations(predicted, gold)
    return StsResult(
        task="sts",
        data=str(dataset.path),
        pairs=len(dataset),
        model=name,
        spearman=round(spearman, 2),
        pearson=round(pearson, 2),
        seconds=round(seconds, 3),
    )
