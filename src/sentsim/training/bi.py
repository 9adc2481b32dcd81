"""Bi-encoder training losses: CoSENT and cosine MSE for graded pairs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sentsim.bi_encoder import BiEncoder
from sentsim.data import PairDataset
from sentsim.evaluation.scorers import EncoderPairScorer
from sentsim.evaluation.sts import correlations
from sentsim.training.data import (
    TargetKind,
    TrainData,
    TrainPair,
    Triple,
    check_dev,
    distinct_positive_batches,
    shuffled_batches,
)


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


def dev_metrics(model: BiEncoder, dev: PairDataset | None) -> dict[str, float]:
    """Spearman and Pearson ×100 on graded dev pairs (``score``: Spearman), as ``eval sts``.

    Of the model's own similarity (:class:`~sentsim.evaluation.scorers.EncoderPairScorer`): the
    cosine, or a dot-product model's dot product, as it is used after training.
    """
    if dev is None:
        return {}
    scorer = EncoderPairScorer(model, batch_size=64)
    predicted = scorer.score_pairs(dev.pairs(), show_progress=False)  # the loop has a bar
    spearman, pearson = correlations(predicted, dev.scores())
    return {"score": spearman, "spearman": spearman, "pearson": pearson}


class BiEncoderTask:
    """Adapts a :class:`BiEncoder` and graded pairs to the training loop."""

    def __init__(
        self, model: BiEncoder, train: TrainData, dev: PairDataset | None, *, loss: str = "cosent"
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of: {', '.join(LOSSES)}")
        if train.kind == TargetKind.CLASSES:
            raise ValueError(f"loss {loss} needs graded scores or 0/1 labels, not classes")
        if dev is not None:
            check_dev(dev)
        self.model = model
        self.module = model.module
        self.train = train
        self.dev = dev
        self.loss_name = loss
        self.loss_fn = LOSSES[loss]

    def batches(self, epoch: int, seed: int, batch_size: int) -> list[list[TrainPair]]:
        """Shuffled batches of training pairs."""
        return shuffled_batches(self.train.pairs, epoch=epoch, seed=seed, batch_size=batch_size)

    def loss(self, batch: list[TrainPair]) -> torch.Tensor:
        """Encode both sides, cosine, then the chosen loss."""
        prompt = self.model.prompt()  # the default prompt, as encode() and dev scoring use
        va = self.model.embed(self.model.tokenize([p.a for p in batch], prompt))
        vb = self.model.embed(self.model.tokenize([p.b for p in batch], prompt))
        cos = torch.nn.functional.cosine_similarity(va, vb)
        target = torch.tensor([p.target for p in batch], device=cos.device, dtype=cos.dtype)
        return self.loss_fn(cos, target)

    def evaluate(self) -> dict[str, float]:
        """Spearman ×100 on dev (:func:`dev_metrics`)."""
        return dev_metrics(self.model, self.dev)

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


def mnrl_loss(anchors: torch.Tensor, candidates: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    """Multiple-negatives ranking: cross-entropy of ``scale · cos(a_i, c_j)`` with target ``j = i``.

    ``candidates`` stacks the batch's positives, then its hard negatives if any (Henderson et
    al., 2017); every other positive in the batch is a negative for anchor ``i``.
    """
    logits = (
        scale
        * torch.nn.functional.normalize(anchors, dim=-1)
        @ (torch.nn.functional.normalize(candidates, dim=-1).T)
    )
    target = torch.arange(len(anchors), device=anchors.device)
    return torch.nn.functional.cross_entropy(logits, target)


class RetrievalTask:
    """MNRL on (anchor, positive[, negative]) triples; dev: anchors ranked over all positives."""

    def __init__(
        self,
        model: BiEncoder,
        train: list[Triple],
        dev: list[Triple] | None = None,
        *,
        scale: float = 20.0,
    ) -> None:
        self.model = model
        self.module = model.module
        self.train = train
        self.dev = dev
        self.scale = scale
        self.corpus: list[str] = []

    def batches(self, epoch: int, seed: int, batch_size: int) -> list[list[Triple]]:
        """Batches without a shared positive."""
        return distinct_positive_batches(self.train, epoch=epoch, seed=seed, batch_size=batch_size)

    def loss(self, batch: list[Triple]) -> torch.Tensor:
        """Encode anchors and candidates, then MNRL."""
        model = self.model  # anchors read as queries, candidates as documents (their prompts)
        anchors = model.embed(model.tokenize([t.anchor for t in batch], model.query_prompt))
        texts = [t.positive for t in batch] + [t.negative for t in batch if t.negative]
        candidates = model.embed(model.tokenize(texts, model.document_prompt))
        return mnrl_loss(anchors, candidates, self.scale)

    def evaluate(self) -> dict[str, float]:
        """Accuracy@1 and MRR@10 ×100 of dev anchors against every positive and corpus text.

        Ranked as search ranks (:func:`~sentsim.search.index_vectors`): by cosine for a cosine
        model, also one that does not normalize, by dot product for a dot-product model.
        """
        if not self.dev:
            return {}
        import numpy as np

        from sentsim.search import index_vectors

        docs = sorted(
            {t.positive for t in self.train} | {t.positive for t in self.dev} | set(self.corpus)
        )
        row = {d: i for i, d in enumerate(docs)}
        doc_vecs = self.model.encode_document(docs, batch_size=32, show_progress=False)
        query_vecs = self.model.encode_query(
            [t.anchor for t in self.dev], batch_size=64, show_progress=False
        )
        scores = index_vectors(self.model, query_vecs) @ index_vectors(self.model, doc_vecs).T
        gold = np.array([row[t.positive] for t in self.dev])
        ranks = (scores > scores[np.arange(len(gold)), gold][:, None]).sum(1) + 1
        acc = 100 * float((ranks == 1).mean())
        mrr = 100 * float(np.where(ranks <= 10, 1.0 / ranks, 0.0).mean())
        return {"score": mrr, "accuracy@1": acc, "mrr@10": mrr}

    def save(self, out: Path) -> None:
        """Write the model in sentence-transformers layout."""
        self.model.save(out)

    def describe(self) -> dict[str, Any]:
        """Facts for the model card."""
        return {
            "loss": "mnrl",
            "train_triples": len(self.train),
            "hard_negatives": sum(1 for t in self.train if t.negative),
            "dev_triples": len(self.dev or []),
        }


class CorpusSoftmaxTask(RetrievalTask):
    """Queries trained against every distinct positive at once, documents re-encoded periodically.

    ``loss = −log softmax(scale · cos(q_i, D))[pos_i]`` over the matrix ``D`` of all distinct
    positives in the training file plus any ``corpus`` texts (e.g. every help-center article, the
    ones no question points to included, as negatives), computed without gradient
    and refreshed every ``refresh_every`` steps with the current weights (in the spirit of ANCE,
    Xiong et al., 2021). Only the query side gets gradients, so a step costs a forward and
    backward pass over short questions instead of long articles: for a small, fixed corpus this
    trains many times faster than :func:`mnrl_loss` and sees every negative at each step.
    """

    def __init__(
        self,
        model: BiEncoder,
        train: list[Triple],
        dev: list[Triple] | None = None,
        *,
        scale: float = 20.0,
        refresh_every: int = 50,
        corpus: Sequence[str] = (),
    ) -> None:
        super().__init__(model, train, dev, scale=scale)
        self.corpus = list(corpus)
        self.docs = sorted({t.positive for t in train} | set(self.corpus))
        self.row = {d: i for i, d in enumerate(self.docs)}
        self.refresh_every = refresh_every
        self._steps = 0
        self._doc_vectors: torch.Tensor | None = None

    def batches(self, epoch: int, seed: int, batch_size: int) -> list[list[Triple]]:
        """Shuffled batches (several questions may share an article: all docs are negatives)."""
        return shuffled_batches(self.train, epoch=epoch, seed=seed, batch_size=batch_size)

    def loss(self, batch: list[Triple]) -> torch.Tensor:
        """Cross-entropy of each query over all documents."""
        if self._doc_vectors is None or self._steps % self.refresh_every == 0:
            vectors = self.model.encode_document(self.docs, batch_size=32, show_progress=False)
            # unit rows, as the loss's cosine needs (a model without Normalize returns others)
            self._doc_vectors = torch.nn.functional.normalize(torch.from_numpy(vectors), dim=-1)
            self.module.train()
        self._steps += 1
        anchors = [t.anchor for t in batch]
        queries = self.model.embed(self.model.tokenize(anchors, self.model.query_prompt))
        docs = self._doc_vectors.to(queries.device)
        logits = self.scale * torch.nn.functional.normalize(queries, dim=-1) @ docs.T
        target = torch.tensor([self.row[t.positive] for t in batch], device=queries.device)
        return torch.nn.functional.cross_entropy(logits, target)

    def describe(self) -> dict[str, Any]:
        """Facts for the model card."""
        return {
            **super().describe(),
            "loss": "corpus-softmax",
            "documents": len(self.docs),
            "refresh_every": self.refresh_every,
        }
