"""STS evaluation: correlations against scipy and hand-made cases, scorers by name."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from sentsim.base import Encoder, PairScorer
from sentsim.baselines import BM25PairScorer, OverlapPairScorer, SIFGloveEncoder
from sentsim.bi_encoder import BiEncoder
from sentsim.data import read_pairs
from sentsim.errors import DataError
from sentsim.evaluation.scorers import (
    Baseline,
    EncoderPairScorer,
    baseline_scorer,
    model_scorer,
)
from sentsim.evaluation.sts import StsResult, correlations, evaluate_sts


class TableEncoder:
    """An encoder with fixed vectors per text, counting what it was asked to encode."""

    name = "table"

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    @property
    def dim(self) -> int:
        return len(next(iter(self.table.values())))

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        self.calls.append(list(texts))
        return np.array([self.table[t] for t in texts], dtype=np.float32)


@pytest.fixture
def sts_csv(tmp_path: Path) -> Path:
    rows = [
        ("a man plays the guitar", "a man is playing a guitar", 4.8),
        ("a woman eats food", "a woman is eating", 4.0),
        ("a dog on the beach", "a dog plays on the beach", 3.2),
        ("my card was declined", "the cat plays piano", 0.2),
        ("a boy plays soccer", "a girl plays piano", 1.5),
    ]
    path = tmp_path / "sts.csv"
    path.write_text("sentence1,sentence2,score\n" + "".join(f"{a},{b},{s}\n" for a, b, s in rows))
    return path


def test_correlations_against_scipy() -> None:
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 5, size=30)
    predicted = gold + rng.normal(scale=1.0, size=30)
    spearman, pearson = correlations(predicted, gold)
    assert spearman == pytest.approx(100 * spearmanr(predicted, gold)[0])
    assert pearson == pytest.approx(100 * pearsonr(predicted, gold)[0])


def test_correlations_hand_made() -> None:
    """A monotone but non-linear prediction: Spearman 100, Pearson below; reversed order: -100."""
    gold = np.array([1.0, 2.0, 3.0, 4.0])
    spearman, pearson = correlations(gold**3, gold)
    assert spearman == pytest.approx(100.0)
    assert 90 < pearson < 100
    assert correlations(-gold, gold) == pytest.approx((-100.0, -100.0))


def test_constant_prediction_correlates_zero_without_warning() -> None:
    assert correlations(np.ones(5), np.arange(5.0)) == (0.0, 0.0)


def test_correlation_refuses_predictions_and_gold_of_different_lengths() -> None:
    """It failed inside scipy: "all the input array dimensions except for the concatenation axis
    must match exactly"."""
    with pytest.raises(ValueError, match="3 predicted scores for 4 gold scores"):
        correlations(np.arange(3.0), np.arange(4.0))


@pytest.mark.parametrize("n", [0, 1])
def test_correlation_needs_two_pairs(n: int) -> None:
    with pytest.raises(DataError, match="at least 2 pairs"):
        correlations(np.ones(n), np.ones(n))


def test_encoder_pair_scorer_encodes_each_distinct_text_once() -> None:
    table = {"a": [1.0, 0.0], "b": [0.0, 1.0], "c": [1.0, 1.0]}
    encoder = TableEncoder(table)
    scorer = EncoderPairScorer(encoder)
    scores = scorer.score_pairs([("a", "b"), ("a", "c"), ("c", "c"), ("b", "a")])
    np.testing.assert_allclose(scores, [0.0, np.sqrt(0.5), 1.0, 0.0], atol=1e-6)
    assert encoder.calls == [["a", "b", "c"]]
    assert scorer.name == "table"
    assert isinstance(scorer, PairScorer)
    assert isinstance(encoder, Encoder)


def test_encoder_pair_scorer_fits_sif_on_the_scored_texts() -> None:
    sif = SIFGloveEncoder()
    EncoderPairScorer(sif).score_pairs([("a man plays", "a woman eats"), ("a dog", "a cat")])
    assert sif.component is not None


def test_encoder_pair_scorer_rejects_malformed_pairs() -> None:
    with pytest.raises(TypeError, match="pair 0 must be two strings"):
        EncoderPairScorer(TableEncoder({"a": [1.0]})).score_pairs([("a",)])  # type: ignore[list-item]


def test_evaluate_sts_result(sts_csv: Path) -> None:
    """Word overlap on a hand-made file; the result agrees with correlations() and is JSON-ready."""
    data = read_pairs(sts_csv)
    result = evaluate_sts(data, OverlapPairScorer())
    predicted = OverlapPairScorer().score_pairs(data.pairs())
    spearman, pearson = correlations(predicted, data.scores())
    assert isinstance(result, StsResult)
    assert (result.task, result.data, result.pairs, result.model) == (
        "sts",
        str(sts_csv),
        5,
        "word-overlap",
    )
    assert result.spearman == round(spearman, 2)
    assert result.pearson == round(pearson, 2)
    assert result.spearman > 50  # overlap follows these hand-made scores
    as_dict = json.loads(json.dumps(result.as_dict()))
    assert set(as_dict) == {
        "task", "data", "pairs", "model", "spearman", "pearson", "seconds", "ms_per_1000_pairs"
    }  # fmt: skip
    assert result.ms_per_1000_pairs == pytest.approx(1e6 * result.seconds / 5)


def test_evaluate_sts_needs_scores_or_numeric_labels(tmp_path: Path) -> None:
    path = tmp_path / "labels.tsv"
    path.write_text("sentence1\tsentence2\tlabel\na\tb\t1\nc\td\tneutral\n")
    with pytest.raises(DataError, match=r"labels.tsv, line 3: label 'neutral' is not a number"):
        evaluate_sts(read_pairs(path), OverlapPairScorer())
    # 0/1 labels (MRPC) are read as grades: the pair sharing words is the paraphrase
    path.write_text("sentence1\tsentence2\tlabel\na b\ta b\t1\nc d\te f\t0\nx y\tx z\t1\n")
    assert evaluate_sts(read_pairs(path), OverlapPairScorer()).spearman > 80


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("overlap", OverlapPairScorer),
        ("BM25", BM25PairScorer),
        ("glove", EncoderPairScorer),
        ("sif", EncoderPairScorer),
        ("static", EncoderPairScorer),
    ],
)
def test_baseline_scorer_by_name(name: str, kind: type) -> None:
    scorer = baseline_scorer(name)
    assert isinstance(scorer, kind)
    scores = scorer.score_pairs([("a man plays guitar", "a man plays a guitar"), ("a", "b c")])
    assert scores.shape == (2,)
    assert scores[0] > scores[1]


def test_unknown_baseline_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown baseline 'nope'; expected one of: glove, sif"):
        baseline_scorer("nope")
    assert [b.value for b in Baseline] == ["glove", "sif", "bm25", "overlap", "static", "cls"]


def test_model_scorer_is_cosine_of_the_bi_encoder(tiny_st_dir: Path) -> None:
    pairs = [("a dog", "a cat"), ("my card", "my card")]
    scores = model_scorer(str(tiny_st_dir), batch_size=1).score_pairs(pairs)
    encoder = BiEncoder.load(tiny_st_dir, device="cpu")
    a, b = encoder.encode([p[0] for p in pairs]), encoder.encode([p[1] for p in pairs])
    np.testing.assert_allclose(scores, (a * b).sum(1), atol=1e-5)
    assert scores[1] == pytest.approx(1.0, abs=1e-5)


def test_model_scorer_of_a_dot_product_model_is_its_dot_product(tiny_dot_dir: Path) -> None:
    """A dot-product model (msmarco-*-dot-*, TAS-B) was scored by cosine; it is scored as
    sentence-transformers' ``model.similarity_pairwise`` scores it, and its name says so."""
    from sentence_transformers import SentenceTransformer

    pairs = [("a dog", "a cat"), ("my card", "my card was declined abroad")]
    scorer = model_scorer(str(tiny_dot_dir), batch_size=1)
    assert scorer.name == f"{tiny_dot_dir} (dot product)"
    reference = SentenceTransformer(str(tiny_dot_dir), device="cpu")
    a, b = (reference.encode([p[i] for p in pairs]) for i in (0, 1))
    expected = reference.similarity_pairwise(a, b).numpy()
    np.testing.assert_allclose(scorer.score_pairs(pairs), expected, rtol=1e-5)
    assert expected.min() > 1.5  # dot products, not cosines


def test_evaluate_sts_of_a_dot_product_model_is_sentence_transformers(
    sts_csv: Path, tiny_dot_dir: Path
) -> None:
    """``eval sts`` of a dot-product model agrees with sentence-transformers'
    EmbeddingSimilarityEvaluator, which scores a model by its ``similarity_fn_name``."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import (
        EmbeddingSimilarityEvaluator,
    )

    data = read_pairs(sts_csv)
    pairs = data.pairs()
    reference = SentenceTransformer(str(tiny_dot_dir), device="cpu")
    evaluator = EmbeddingSimilarityEvaluator(
        [a for a, _ in pairs], [b for _, b in pairs], list(data.scores() / 5)
    )
    expected = evaluator(reference)
    assert evaluator.primary_metric == "spearman_dot"
    result = evaluate_sts(data, model_scorer(str(tiny_dot_dir)))
    assert result.spearman == pytest.approx(100 * expected["spearman_dot"], abs=0.01)  # rounded
    assert result.pearson == pytest.approx(100 * expected["pearson_dot"], abs=0.01)
    cosine = evaluate_sts(data, EncoderPairScorer(BiEncoder.load(tiny_dot_dir), metric="cosine"))
    assert cosine.pearson != pytest.approx(result.pearson, abs=0.1)  # so the test could fail


def test_evaluate_sts_names_the_file_of_unusable_gold_before_scoring(tmp_path: Path) -> None:
    """ "every gold score is 5.0" named no file, and came after every pair had been scored."""

    class Unused:
        name = "unused"

        def score_pairs(self, pairs: object, *, show_progress: bool | None = None) -> None:
            raise AssertionError("scored a file that cannot be evaluated")

    path = tmp_path / "all-fives.csv"
    path.write_text("sentence1,sentence2,score\na,b,5\nc,d,5\n")
    with pytest.raises(DataError, match=r"all-fives\.csv: every gold score is 5\.0"):
        evaluate_sts(read_pairs(path), Unused())
    path.write_text("sentence1,sentence2,score\na,b,5\n")
    with pytest.raises(DataError, match=r"all-fives\.csv: correlation needs at least 2 pairs"):
        evaluate_sts(read_pairs(path), Unused())


def test_constant_gold_scores_raise_instead_of_nan() -> None:
    with pytest.raises(
        DataError, match=re.escape("every gold score is 3.0; correlation with a constant")
    ):
        correlations(np.arange(4.0), np.full(4, 3.0))


def test_evaluate_sts_takes_models_as_they_load(
    sts_csv: Path, tiny_st_dir: Path, tiny_ce_dir: Path
) -> None:
    """A BiEncoder or CrossEncoder passed directly was an AttributeError about score_pairs; each
    now scores as its scorer does (the judge reading both orders)."""
    from sentsim.cross_encoder import CrossEncoder
    from sentsim.fusion import CrossEncoderScorer

    data = read_pairs(sts_csv)
    encoder = BiEncoder.load(tiny_st_dir, device="cpu")
    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")
    direct, wrapped = evaluate_sts(data, encoder), evaluate_sts(data, EncoderPairScorer(encoder))
    assert direct.spearman == wrapped.spearman
    direct, wrapped = evaluate_sts(data, judge), evaluate_sts(data, CrossEncoderScorer(judge))
    assert direct.spearman == wrapped.spearman
    with pytest.raises(TypeError, match="cannot score pairs with a str"):
        evaluate_sts(data, "minilm")  # type: ignore[arg-type]


class FixedScorer:
    """A pair scorer that returns the scores it was given, whatever the pairs."""

    name = "fixed"

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores

    def score_pairs(
        self, pairs: Sequence[tuple[str, str]], *, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        return np.array(self.scores, dtype=np.float32)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_evaluation_refuses_non_finite_scores_naming_the_line(tmp_path: Path, bad: float) -> None:
    """A NaN score gave Spearman nan (``NaN`` in --json, which is not JSON); AP, F1 and the dev
    threshold ranked it silently below every pair. Each now names the scorer, file and line."""
    from sentsim.duplicates import choose_threshold
    from sentsim.evaluation.pairs import evaluate_pairs

    path = tmp_path / "pairs.csv"
    path.write_text("sentence1,sentence2,score\na,b,1\nc,d,2\ne,f,3\n")
    data = read_pairs(path)
    expected = rf"fixed gave 1 of the 3 pairs of .*pairs\.csv a score .*{bad} for line 3"
    with pytest.raises(ValueError, match=expected):
        evaluate_sts(data, FixedScorer([0.1, bad, 0.3]))
    path.write_text("sentence1,sentence2,label\na,b,1\nc,d,0\ne,f,1\n")
    labelled = read_pairs(path)
    for run in (
        lambda: evaluate_pairs(labelled, FixedScorer([0.1, bad, 0.3])),
        lambda: choose_threshold(FixedScorer([0.1, bad, 0.3]), labelled),
    ):
        with pytest.raises(ValueError, match=expected):
            run()
    with pytest.raises(ValueError, match=r"fixed gave scores of shape \(2,\) for the 3 pairs"):
        evaluate_sts(data, FixedScorer([0.1, 0.2]))
