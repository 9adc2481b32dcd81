"""Semantic textual similarity: rank correlation of a scorer with graded gold scores."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import pearsonr, spearmanr

from sentsim.base import PairScorer
from sentsim.data import PairDataset
from sentsim.errors import DataError


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
    gold = dataset.graded_scores()
    if len(gold) < 2 or np.ptp(gold) == 0:  # before scoring: a large file's run was wasted
        try:
            correlations(gold, gold)
        except DataError as exc:
            raise DataError(f"{dataset.path}: {exc}") from None
    from sentsim.evaluation.scorers import as_pair_scorer, score_dataset

    scorer = as_pair_scorer(scorer)
    start = time.perf_counter()
    predicted = score_dataset(scorer, dataset, show_progress=show_progress)
    seconds = time.perf_counter() - start
    spearman, pearson = correlations(predicted, gold)
    return StsResult(
        task="sts",
        data=str(dataset.path),
        pairs=len(dataset),
        model=scorer.name,
        spearman=round(spearman, 2),
        pearson=round(pearson, 2),
        seconds=round(seconds, 3),
    )
