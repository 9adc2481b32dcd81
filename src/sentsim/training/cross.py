"""Cross-encoder training: pointwise (BCE on scores or 0/1 labels, CE on classes) or listwise.

Listwise: a softmax over a query's positive and its mined negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sentsim.cross_encoder import CrossEncoder
from sentsim.data import PairDataset
from sentsim.errors import DataError
from sentsim.evaluation.pairs import average_precision
from sentsim.evaluation.sts import correlations
from sentsim.training.data import (
    TargetKind,
    TrainData,
    TrainPair,
    Triple,
    check_dev,
    shuffled_batches,
    target_kind,
)


def seed_fresh_head(seed: int) -> None:
    """Seed torch before loading the model to train: a base without a scoring head gets a fresh one.

    ``fit`` seeds again before training, but the head is drawn earlier: without this, the same
    seed trained another model each run and a card's "Reproduce with" command did not reproduce it.
    """
    torch.manual_seed(seed)


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
        _check_outputs(model, train)
        if dev is not None and target_kind(dev) != train.kind:
            raise ValueError(
                f"dev file {dev.path} has {target_kind(dev).value} targets but the training data "
                f"has {train.kind.value} targets"
            )
        if dev is not None:
            check_dev(dev)
        if dev is not None and train.kind == TargetKind.CLASSES:  # else it fails after an epoch
            unknown = next((e for e in dev.examples if e.label not in train.labels), None)
            if unknown is not None:
                raise DataError(
                    f"{dev.path}, line {unknown.line}: label {unknown.label!r} is not among the "
                    f"model's {train.labels}; give the dev file only the training data's classes, "
                    "or name every class with --labels"
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


def _check_outputs(model: CrossEncoder, train: TrainData) -> None:
    """Refuse a model whose outputs do not match the targets, one for one and in order."""
    if train.kind != TargetKind.CLASSES:
        if model.num_labels != 1:
            raise ValueError(
                f"{train.kind.value} targets train one output; {model.name} has "
                f"{model.num_labels} ({', '.join(model.labels)}): load it with num_labels=1"
            )
        return
    if model.labels != train.labels:
        outputs = "output" if model.num_labels == 1 else "outputs"
        raise ValueError(
            f"the training data has {len(train.labels)} classes {train.labels} in this order; "
            f"{model.name} has {model.num_labels} {outputs} {model.labels}: load it with "
            "labels=train.labels (or read the data with load_train_data(labels=model.labels))"
        )


@dataclass(frozen=True)
class Group:
    """A query, its relevant text and texts mined as look-alikes that are not relevant."""

    query: str
    positive: str
    negatives: tuple[str, ...]


def groups_from_triples(triples: Sequence[Triple], source: str) -> list[Group]:
    """One group per (anchor, positive), its negatives in file order.

    ``sentsim mine`` writes one row per negative. An anchor without any negative is an error that
    says how many there are.
    """
    negatives: dict[tuple[str, str], list[str]] = {}
    for t in triples:
        found = negatives.setdefault((t.anchor, t.positive), [])
        if t.negative is not None and t.negative != t.positive and t.negative not in found:
            found.append(t.negative)
    bare = [key for key, negs in negatives.items() if not negs]
    if bare:
        raise DataError(
            f"{source}: {len(bare)} of {len(negatives)} (anchor, positive) rows have no "
            "'negative'; the listwise loss ranks a positive against negatives (sentsim mine)"
        )
    return [Group(a, p, tuple(negs)) for (a, p), negs in negatives.items()]


class CrossEncoderListwiseTask:
    """Listwise training: a softmax over each query's positive and its mined negatives.

    ``loss = −log softmax(s(q, p), s(q, n₁), …, s(q, n_k))[p]`` averaged over the queries of a batch
    (localized contrastive estimation, Gao, Dai & Callan 2021, "Rethink Training of BERT Rerankers
    in Multi-Stage Retrieval Pipeline"): the judge learns to order look-alikes, where pointwise BCE
    only learns to separate pairs. A batch holds ``batch_size`` queries with all their texts. Dev:
    MRR ×100 of the positive within its group (the score) and accuracy@1.
    """

    def __init__(
        self,
        model: CrossEncoder,
        train: list[Group],
        dev: list[Group] | None,
        *,
        sources: list[str],
    ) -> None:
        if model.num_labels != 1:
            raise ValueError(
                f"the listwise loss needs a one-output judge; {model.name} has {model.num_labels}"
            )
        self.model = model
        self.module = model.model
        self.train = train
        self.dev = dev
        self.sources = sources

    def batches(self, epoch: int, seed: int, batch_size: int) -> list[list[Group]]:
        """Shuffled batches of ``batch_size`` groups."""
        return shuffled_batches(self.train, epoch=epoch, seed=seed, batch_size=batch_size)

    def loss(self, batch: list[Group]) -> torch.Tensor:
        """Cross-entropy of each group's positive (index 0) over the group's logits."""
        pairs = [(g.query, text) for g in batch for text in (g.positive, *g.negatives)]
        logits = self.model.logits(self.model.tokenize(pairs))[:, 0].float()
        losses, start = [], 0
        for g in batch:
            end = start + 1 + len(g.negatives)
            losses.append(-torch.log_softmax(logits[start:end], dim=0)[0])
            start = end
        return torch.stack(losses).mean()

    def evaluate(self) -> dict[str, float]:
        """MRR and accuracy@1 ×100 of each dev positive among its group's texts."""
        if not self.dev:
            return {}
        pairs = [(g.query, text) for g in self.dev for text in (g.positive, *g.negatives)]
        scores = self.model.predict(pairs, batch_size=64)
        ranks, start = [], 0
        for g in self.dev:
            group = scores[start : start + 1 + len(g.negatives)]
            ranks.append(1 + int((group[1:] > group[0]).sum()))  # ties go to the positive
            start += len(group)
        mrr = 100 * float(np.mean([1 / r for r in ranks]))
        accuracy = 100 * float(np.mean([r == 1 for r in ranks]))
        return {"score": mrr, "mrr": mrr, "accuracy@1": accuracy}

    def save(self, out: Path) -> None:
        """Write the cross-encoder (fp32; shipping converts to fp16)."""
        self.model.save(out)

    def describe(self) -> dict[str, Any]:
        """Facts for the model card."""
        return {
            "kind": "listwise",
            "train_pairs": sum(1 + len(g.negatives) for g in self.train),
            "train_groups": len(self.train),
            "train_files": self.sources,
            "dev_groups": len(self.dev) if self.dev else 0,
        }
