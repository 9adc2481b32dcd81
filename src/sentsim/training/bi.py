"""Bi-encoder training losses: CoSENT and cosine MSE for graded pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sentsim.bi_encoder import BiEncoder
from sentsim.data import PairDataset
from sentsim.evaluation.scorers import EncoderPairScorer
from sentsim.evaluation.sts import correlations
from sentsim.training.data import TargetKind, TrainData, TrainPair, shuffled_batches


def cosent_loss(cos: torch.Tensor, target: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """CoSENT: ``log(1 + Σ_{y_i > y_j} exp(λ (cos_j − cos_i)))`` with ``λ = scale``.

    Su (2022), "CoSENT"; the ranking of pair cosines is trained to follow the ranking of targets.
    """
    diff = scale * (cos[None, :] - cos[:, None])  # diff[i, j] = λ (cos_j − cos_i)
    mask = target[:, None] > target[None, :]
    diff = diff.masked_fill(~mask, float("-inf"))
    zero = torch.zeros(1, device=cos.device, dtype=cos.dtype)
    return torch.logsumexp(torch.cat([zero, diff.flatten()]), dim=0)


def cosine_mse_loss(cos: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean((cos_i − y_i)²)`` with targets in 0–1."""
    return torch.nn.functional.mse_loss(cos, target)


LOSSES = {"cosent": cosent_loss, "cosine-mse": cosine_mse_loss}


class BiEncoderTask:
    """Adapts a :class:`BiEncoder` and graded pairs to the training loop."""

    def __init__(
        self, model: BiEncoder, train: TrainData, dev: PairDataset | None, *, loss: str = "cosent"
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of: {', '.join(LOSSES)}")
        if train.kind == TargetKind.CLASSES:
            raise ValueError(f"loss {loss} needs graded scores or 0/1 labels, not classes")
        self.model = model
        self.module = model.transformer.model
        self.train = train
        self.dev = dev
        self.loss_name = loss
        self.loss_fn = LOSSES[loss]

    def batches(self, epoch: int, seed: int, batch_size: int) -> list[list[TrainPair]]:
        """Shuffled batches of training pairs."""
        return shuffled_batches(self.train.pairs, epoch=epoch, seed=seed, batch_size=batch_size)

    def loss(self, batch: list[TrainPair]) -> torch.Tensor:
        """Encode both sides, cosine, then the chosen loss."""
        tok = self.model.transformer.tokenize
        va = self.model.embed(tok([p.a for p in batch]))
        vb = self.model.embed(tok([p.b for p in batch]))
        cos = torch.nn.functional.cosine_similarity(va, vb)
        target = torch.tensor([p.target for p in batch], device=cos.device, dtype=cos.dtype)
        return self.loss_fn(cos, target)

    def evaluate(self) -> dict[str, float]:
        """Spearman ×100 of cosine on dev."""
        if self.dev is None:
            return {}
        scorer = EncoderPairScorer(self.model, batch_size=64)
        spearman, pearson = correlations(scorer.score_pairs(self.dev.pairs()), self.dev.scores())
        return {"score": spearman, "spearman": spearman, "pearson": pearson}

    def save(self, out: Path) -> None:
        """Write the model in sentence-transformers layout."""
        self.model.save(out)

    def describe(self) -> dict[str, Any]:
        """Facts for the model card."""
        return {
            "kind": self.train.kind.value,
            "loss": self.loss_name,
            "train_pairs": len(self.train.pairs),
            "train_files": self.train.sources,
            "dev_file": str(self.dev.path) if self.dev else None,
        }
