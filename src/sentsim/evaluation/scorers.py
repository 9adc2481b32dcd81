"""Name → pair scorer: every model and baseline behind one ``score_pairs`` call."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sentsim.base import Encoder, PairScorer, check_pairs
from sentsim.choices import parse_choice
from sentsim.similarity import Metric, encoder_metric, similarity

if TYPE_CHECKING:
    from sentsim.data import PairDataset


class Baseline(StrEnum):
    """The baselines ``--baseline`` accepts."""

    GLOVE = "glove"
    SIF = "sif"
    BM25 = "bm25"
    OVERLAP = "overlap"
    STATIC = "static"
    CLS = "cls"

    @classmethod
    def parse(cls, value: str | Baseline) -> Baseline:
        """Return the baseline named by ``value`` or raise listing the valid names."""
        return parse_choice(cls, value, "baseline")


class EncoderPairScorer:
    """The similarity of an encoder's vectors; each distinct text is encoded once.

    ``metric`` defaults to the encoder's own (:func:`~sentsim.similarity.encoder_metric`): a
    bi-encoder's ``similarity_fn_name``, the cosine for most and the dot product for a
    dot-product model (TAS-B, ``msmarco-*-dot-*``), as sentence-transformers 6's
    ``EmbeddingSimilarityEvaluator`` and ``BinaryClassificationEvaluator`` score a model by
    default; the cosine for an encoder that names none (GloVe, a static model). So ``eval sts``,
    ``eval pairs`` and a threshold chosen on pairs (``--dev``) measure a model as search and
    ``sentsim similarity`` compare with it. A scorer that is not the cosine says so in its
    ``name`` (``"... (dot product)"``).
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        batch_size: int = 32,
        label: str | None = None,
        metric: str | Metric | None = None,
    ) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self.metric = encoder_metric(encoder) if metric is None else Metric.parse(metric)
        described = METRIC_WORDS.get(self.metric)
        self.name = label or (f"{encoder.name} ({described})" if described else encoder.name)

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return ``similarity(encode(a), encode(b))`` under :attr:`metric` for every pair."""
        items = check_pairs(pairs)
        texts = sorted({t for pair in items for t in pair})
        fit = getattr(self.encoder, "fit", None)
        if callable(fit):  # SIF estimates its common component from the texts it scores
            fit(texts)
        vectors = self.encoder.encode(
            texts, batch_size=self.batch_size, show_progress=show_progress
        )
        row = {t: i for i, t in enumerate(texts)}
        a = vectors[[row[x] for x, _ in items]]
        b = vectors[[row[y] for _, y in items]]
        return similarity(a, b, self.metric, pairwise=True)


#: How a scorer's name says that its scores are not cosines.
METRIC_WORDS = {Metric.DOT: "dot product", Metric.EUCLIDEAN: "negated euclidean distance"}


def as_pair_scorer(model: object) -> PairScorer:
    """Return ``model`` as a pair scorer.

    A scorer stays as it is, a cross-encoder reads both orders (their mean, as similarity wants),
    an encoder scores by the similarity of its vectors (:class:`EncoderPairScorer`). So
    ``evaluate_sts(data, CrossEncoder.load("ce-sts"))`` works as ``find_duplicates`` does; it was
    an ``AttributeError`` about ``score_pairs``.
    """
    if hasattr(model, "score_pairs"):
        return model  # type: ignore[return-value]
    if isinstance(model, str | bytes):  # str has an ``encode`` of its own
        raise TypeError(
            f"cannot score pairs with a str ({model!r}); load the model first, e.g. "
            "BiEncoder.load(name) or CrossEncoder.load(name)"
        )
    from sentsim.cross_encoder import CrossEncoder

    if isinstance(model, CrossEncoder):
        from sentsim.fusion import CrossEncoderScorer

        return CrossEncoderScorer(model, symmetric=True)
    if callable(getattr(model, "encode", None)):
        return EncoderPairScorer(model)  # type: ignore[arg-type]
    raise TypeError(
        f"cannot score pairs with a {type(model).__name__}; pass a BiEncoder, a CrossEncoder or "
        "an object with score_pairs(pairs)"
    )


def score_dataset(
    scorer: PairScorer, dataset: PairDataset, *, show_progress: bool | None = None
) -> NDArray[np.float64]:
    """``scorer``'s score for every pair of ``dataset``: one finite number each, or an error.

    A NaN or infinite score has no rank: it was reported as a Spearman of ``nan`` (``NaN`` in
    ``--json``, which is not JSON), or ranked silently below every pair by AP and F1.
    """
    scores = scorer.score_pairs(dataset.pairs(), show_progress=show_progress)
    return checked_scores(scores, scorer.name, dataset)


def checked_scores(scores: ArrayLike, name: str, dataset: PairDataset) -> NDArray[np.float64]:
    """``scores`` (of ``name``, for ``dataset``'s pairs) as float64: one finite number a pair."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(dataset),):
        raise ValueError(
            f"{name} gave scores of shape {scores.shape} for the {len(dataset)} pairs of "
            f"{dataset.path}; expected one score per pair"
        )
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        first = dataset.examples[bad[0]]
        raise ValueError(
            f"{name} gave {len(bad)} of the {len(dataset)} pairs of {dataset.path} a score "
            f"that is not a finite number (the first: {scores[bad[0]]} for line {first.line}); "
            "a model that outputs NaN or infinity cannot be evaluated"
        )
    return scores


STATIC_MODEL = "static-minilm"


def baseline_scorer(baseline: str | Baseline, *, batch_size: int = 32) -> PairScorer:
    """Build the pair scorer of a baseline."""
    from sentsim.baselines import (
        BM25PairScorer,
        GloveEncoder,
        OverlapPairScorer,
        SIFGloveEncoder,
        StaticEncoder,
    )
    from sentsim.bi_encoder import BiEncoder

    kind = Baseline.parse(str(baseline))
    if kind == Baseline.GLOVE:
        return EncoderPairScorer(GloveEncoder())
    if kind == Baseline.SIF:
        return EncoderPairScorer(SIFGloveEncoder())
    if kind == Baseline.BM25:
        return BM25PairScorer()
    if kind == Baseline.OVERLAP:
        return OverlapPairScorer()
    if kind == Baseline.STATIC:
        return EncoderPairScorer(StaticEncoder.load(STATIC_MODEL), batch_size=1024)
    cls_model = BiEncoder.load("minilm", pooling="cls")
    return EncoderPairScorer(
        cls_model,
        batch_size=batch_size,
        label="minilm-cls (CLS pooling of a model trained for mean pooling)",
    )


def model_scorer(name_or_dir: str, *, batch_size: int = 32) -> PairScorer:
    """Build the pair scorer of a bi-encoder or a static model (a name, or a directory).

    It scores by the model's own similarity function (see :class:`EncoderPairScorer`).
    """
    from sentsim.baselines.static import StaticEncoder, is_static_model
    from sentsim.bi_encoder import BiEncoder

    if is_static_model(name_or_dir):  # distill-static's folder: no transformer to load
        return EncoderPairScorer(StaticEncoder.load(name_or_dir), batch_size=1024)
    return EncoderPairScorer(BiEncoder.load(name_or_dir), batch_size=batch_size)
