"""Cross-encoder training: graded scores and binary labels (soft-label BCE), or classes (CE)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sentsim.cross_encoder import CrossEncoder
from sentsim.data import PairDataset
from sentsim.evaluation.pairs import average_precision
from sentsim.evaluation.sts import correlations
from sentsim.training.data import TargetKind, TrainData, TrainPair, shuffled_batches, target_kind


class CrossEncoderTask:
    """Adapts a :class:`CrossEncoder` and its data to the training loop."""

    def __init__(
        self,
        model: CrossEncoder,
        train: TrainData,
        dev: PairDataset | None = None,
        *,
        symmetric_eval: bool = True,
    ) -> None:
        self.model = model
        self.module = model.model
        self.train = train
        self.dev = dev
        self.symmetric_eval = symmetric_eval
        if dev is not None and target_kind(dev) != train.kind:
            raise ValueError(
                f"dev file {dev.path} has {target_kind(dev).value} targets but the training data "
                f"has {train.kind.value} targets"
            )

    def batches(self, epoch: int, seed: int, batch_size: int) -> list[list[TrainPair]]:
        """Shuffled batches of training pairs."""
        return shuffled_batches(self.train.pairs, epoch=epoch, seed=seed, batch_size=batch_size)

    def loss(self, batch: list[TrainPair]) -> torch.Tensor:
        """BCE on logits against 0–1 targets (one output) or cross-entropy over classes."""
        logits = self.model.logits(self.model.tokenize([(p.a, p.b) for p in batch]))
        targets = torch.tensor([p.target for p in batch], device=logits.device)
        if self.train.kind == TargetKind.CLASSES:
            return torch.nn.functional.cross_entropy(logits, targets.long())
        return torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], targets)

    def evaluate(self) -> dict[str, float]:
        """Spearman ×100 (graded), average precision ×100 (binary) or accuracy ×100 (classes)."""
        if self.dev is None:
            return {}
        pairs = self.dev.pairs()
        symmetric = self.symmetric_eval and self.train.kind == TargetKind.GRADED
        predicted = self.model.predict(pairs, batch_size=64, symmetric=symmetric)
        if self.train.kind == TargetKind.GRADED:
            spearman, pearson = correlations(predicted, self.dev.scores())
            return {"score": spearman, "spearman": spearman, "pearson": pearson}
        if self.train.kind == TargetKind.BINARY:
            gold = np.array([float(x) for x in self.dev.labels()])
            ap = 100 * average_precision(predicted, gold)
            return {"score": ap, "average_precision": ap}
        gold_idx = np.array([self.train.labels.index(x) for x in self.dev.labels()])
        accuracy = 100 * float((predicted.argmax(1) == gold_idx).mean())
        return {"score": accuracy, "accuracy": accuracy}

    def save(self, out: Path) -> None:
        """Write the cross-encoder (fp32; shipping converts to fp16)."""
        self.model.save(out)

    def describe(self) -> dict[str, Any]:
        """Facts for the model card."""
        return {
            "kind": self.train.kind.value,
            "train_pairs": len(self.train.pairs),
            "train_files": self.train.sources,
            "dev_file": str(self.dev.path) if self.dev else None,
            "labels": self.train.labels,
        }
