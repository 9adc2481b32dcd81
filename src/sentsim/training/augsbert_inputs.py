"""What an AugSBERT run is given: its settings, and the checks made before any training.

Every input is read and checked up front (files, scores, strategies, models, the judge), so that
bad input fails with one message that says how to fix it, not after an hour of training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sentsim.base import PairScorer
from sentsim.data import PairDataset, read_pairs
from sentsim.errors import DataError
from sentsim.training.bi import LOSSES
from sentsim.training.data import TargetKind, TrainData, load_train_data
from sentsim.training.loop import TrainSettings
from sentsim.training.sampling import Pair, Sampling, pair_key
from sentsim.training.silver import read_sentences, read_unlabelled_pairs

TRAIN_JUDGE = "train"


@dataclass(frozen=True)
class AugSbertConfig:
    """Inputs and settings of one AugSBERT run (``gold=None``: domain transfer, silver only)."""

    out: Path
    cross_encoder: str | Path  # a judge (name or directory), or "train" to train one on gold
    strategies: tuple[Sampling, ...] = (Sampling.BM25,)
    cap: int = 100_000
    gold: Path | None = None
    unlabelled: Path | None = None  # None: the gold sentences
    dev: Path | None = None
    test: Path | None = None
    base: str | Path = "minilm"
    cross_base: str | Path | None = None  # start of a trained judge; default ``base``
    knn_encoder: str | Path | None = None  # None: the gold-only bi-encoder
    top_k: int = 3
    loss: str = "cosent"
    settings: TrainSettings = field(default_factory=lambda: TrainSettings(epochs=1, lr=2e-5))
    cross_settings: TrainSettings = field(default_factory=lambda: TrainSettings(epochs=1))
    label_batch_size: int = 1024
    calibrate: bool = False  # map the judge's scores onto the gold scale, fitted on dev
    command: str = "sentsim augsbert"


@dataclass(frozen=True)
class RunInputs:
    """The data of a run, read and checked; the judge when one was given."""

    gold: TrainData | None
    dev: PairDataset | None
    test: PairDataset | None
    strategies: tuple[Sampling, ...]
    sentences: list[str]
    exclude: set[Pair]
    judge: PairScorer | None  # loaded up front when given, so that a bad one fails before training
    given: list[Pair] = field(default_factory=list)  # --unlabelled's pairs, for --sampling given


def check_inputs(config: AugSbertConfig) -> RunInputs:
    """Read and check every input, so that bad input fails with one message before any training."""
    from sentsim.models import resolve_model_path

    strategies = tuple(dict.fromkeys(Sampling.parse(s) for s in config.strategies))
    if not strategies:
        raise ValueError(
            "no sampling strategy given; choose from: random, bm25, knn, bm25+knn, given"
        )
    # epochs and batch size: TrainSettings refuses them when it is made
    counts = {"--cap": config.cap, "--top-k": config.top_k, "label batch": config.label_batch_size}
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if config.loss not in LOSSES:
        raise ValueError(f"unknown loss {config.loss!r}; expected one of: {', '.join(LOSSES)}")
    if config.calibrate and config.dev is None:
        raise ValueError(
            "--calibrate-silver fits the judge's scores to gold scores on --dev pairs: pass --dev"
        )
    train_judge = str(config.cross_encoder) == TRAIN_JUDGE
    if config.gold is None and train_judge:
        raise ValueError(
            "--cross-encoder train needs --gold pairs; for domain transfer pass a cross-encoder "
            "trained on another data set"
        )
    if config.gold is None and config.unlabelled is None:
        raise ValueError("without --gold, --unlabelled must name a file of target sentences/pairs")
    if Sampling.GIVEN in strategies and config.unlabelled is None:
        raise ValueError(
            "--sampling given labels the pairs of --unlabelled as written: pass --unlabelled FILE "
            "(JSONL or CSV with sentence1, sentence2); the gold pairs have their scores already"
        )
    if (
        config.gold is None
        and config.knn_encoder is None
        and any(s.needs_encoder for s in strategies)
    ):
        raise ValueError(
            "knn sampling searches with a bi-encoder; without --gold there is no gold-only model "
            "to search with: pass --knn-encoder MODEL or use bm25 / random"
        )
    gold = load_train_data([config.gold]) if config.gold else None
    if gold is not None and gold.kind != TargetKind.GRADED:
        raise DataError(
            f"{config.gold}: has no 'score' column ({gold.kind.value} labels); AugSBERT trains on "
            "graded similarity: give gold pairs with sentence1, sentence2, score"
        )
    dev, test = _scored(config.dev, "--dev"), _scored(config.test, "--test")
    given = []
    if config.unlabelled is not None:
        sentences = read_sentences(config.unlabelled)
        if Sampling.GIVEN in strategies:
            given = read_unlabelled_pairs(config.unlabelled)
    else:
        gold_pairs = gold.pairs if gold else []
        sentences = list(dict.fromkeys(t for p in gold_pairs for t in (p.a, p.b)))
    if len(sentences) < 2:
        source = config.unlabelled or config.gold
        raise DataError(f"{source}: {len(sentences)} distinct sentences; sampling needs at least 2")
    exclude = {pair_key(p.a, p.b) for p in (gold.pairs if gold else [])}
    for d in (dev, test):  # never label an evaluation pair
        exclude |= {pair_key(a, b) for a, b in (d.pairs() if d else [])}
    for model in (config.base, config.cross_base, config.knn_encoder):
        if model is not None:
            resolve_model_path(model)
    judge = None
    if not train_judge:
        from sentsim.fusion import load_judge

        judge = load_judge(config.cross_encoder)
    return RunInputs(gold, dev, test, strategies, sentences, exclude, judge, given)


def _scored(path: Path | None, option: str) -> PairDataset | None:
    if path is None:
        return None
    data = read_pairs(path)
    if not data.has_scores or np.ptp(data.scores()) == 0:
        raise DataError(
            f"{option} {path}: Spearman needs graded scores that differ; give at least 2 pairs "
            "with sentence1, sentence2 and different scores"
        )
    return data
