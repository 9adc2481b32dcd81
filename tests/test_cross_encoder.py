"""The cross-encoder: scores, batch order, symmetry, truncation, ranking, save/load, ST parity."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from sentsim.cross_encoder import CrossEncoder, RankedDoc
from sentsim.errors import ModelLoadError

PAIRS = [
    ("my card was declined", "why was my payment declined"),
    ("a man plays guitar", "a woman is eating food"),
    ("the dog", "cat"),
    ("pin", "atm cash"),
    ("cat", "the dog"),
    ("how can i top up my account with cash", "top up"),
    ("where is my new card", "my card has not arrived yet, when will the delivery arrive"),
]
pytestmark = pytest.mark.usefixtures("one_torch_thread")

NLI_LABELS = ["entailment", "neutral", "contradiction"]
# Whole words of the tiny vocabulary: one word piece each, so token counts are word counts.
LONG_DOC = (  # noqa: SIM905 - a word list reads better as one string
    "the bank money account transfer payment cash atm pin balance fee exchange rate currency "
    "euro dollar pound abroad travel country refund lost stolen freeze block new order arrive "
    "delivery help please dog cat"
).split()


@pytest.fixture(scope="module")
def judge(tiny_ce_dir: Path) -> CrossEncoder:
    return CrossEncoder.load(tiny_ce_dir, device="cpu")


@pytest.fixture(scope="module")
def nli(tiny_bert_dir: Path) -> CrossEncoder:
    torch.manual_seed(0)
    return CrossEncoder.load(tiny_bert_dir, labels=NLI_LABELS, device="cpu")


# -- predict ---------------------------------------------------------------------------------------


def test_predict_one_output_is_a_0_to_1_vector(judge: CrossEncoder) -> None:
    """One output: shape ``(n,)``, float32, every score in (0, 1), and not all alike."""
    scores = judge.predict(PAIRS)
    assert scores.shape == (len(PAIRS),)
    assert scores.dtype == np.float32
    assert ((scores > 0) & (scores < 1)).all()
    assert np.ptp(scores) > 0.05  # the fixture's head spreads scores; a constant would hide bugs


def test_predict_equals_sigmoid_of_logits(judge: CrossEncoder) -> None:
    """``predict`` is ``sigmoid(logit)`` of the model run on the tokenized pairs."""
    with torch.inference_mode():
        logits = judge.logits(judge.tokenize(PAIRS))[:, 0]
    expected = torch.sigmoid(logits).numpy()
    np.testing.assert_allclose(judge.predict(PAIRS), expected, atol=1e-6)


def test_predict_several_labels_gives_softmax_rows(nli: CrossEncoder) -> None:
    """Several outputs: ``(n, L)`` probabilities, each row summing to 1, labels in order."""
    assert nli.num_labels == 3
    assert nli.labels == NLI_LABELS
    probs = nli.predict(PAIRS)
    assert probs.shape == (len(PAIRS), 3)
    assert ((probs > 0) & (probs < 1)).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_a_multi_label_model_scores_each_label_by_its_own_sigmoid(
    nli: CrossEncoder, tmp_path: Path
) -> None:
    """A config.json with ``problem_type: multi_label_classification`` (independent labels, trained
    with one binary loss per output) had its outputs softmaxed together as if one class held."""
    tagger = CrossEncoder.load(nli.save(tmp_path / "tagger"), device="cpu")
    tagger.model.config.problem_type = "multi_label_classification"
    again = CrossEncoder.load(tagger.save(tmp_path / "tagger"), device="cpu")
    assert again.multi_label and not nli.multi_label
    with torch.inference_mode():
        expected = torch.sigmoid(again.logits(again.tokenize(PAIRS))).numpy()
    np.testing.assert_allclose(again.predict(PAIRS), expected, atol=1e-6)
    with pytest.raises(ValueError, match="rank needs one relevance score"):
        again.rank("a man plays guitar", ["someone plays music"])


def test_load_with_other_num_labels_replaces_the_head(tiny_ce_dir: Path) -> None:
    """A one-output directory loaded with ``num_labels=3`` gets a fresh 3-way head."""
    model = CrossEncoder.load(tiny_ce_dir, num_labels=3, device="cpu")
    assert model.num_labels == 3
    assert model.predict(PAIRS[:2]).shape == (2, 3)


def test_load_refuses_a_head_size_it_cannot_build(tiny_ce_dir: Path) -> None:
    """``num_labels=0`` was ignored (the stored head kept), ``num_labels=-1`` built a head with no
    output, ``labels`` of another length won over ``num_labels``, a str of labels was spelt out."""
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="num_labels must be an integer ≥ 1"):
            CrossEncoder.load(tiny_ce_dir, num_labels=bad, device="cpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 labels for num_labels=3"):
        CrossEncoder.load(tiny_ce_dir, num_labels=3, labels=["yes", "no"], device="cpu")
    with pytest.raises(TypeError, match="labels must be a list of class names"):
        CrossEncoder.load(tiny_ce_dir, labels="yes", device="cpu")


def test_load_refuses_a_label_named_twice(tiny_ce_dir: Path) -> None:
    """``labels=["a", "a"]`` built a 2-output head whose label2id held one entry, saved as such."""
    with pytest.raises(ValueError, match=r"labels \['a', 'b', 'a'\] name 'a' twice"):
        CrossEncoder.load(tiny_ce_dir, labels=["a", "b", "a"], device="cpu")


def test_predict_keeps_input_order_whatever_the_batch_size(judge: CrossEncoder) -> None:
    """Pairs are batched longest first, then put back: batch size 1 and 4 give the same vector."""
    one = judge.predict(PAIRS, batch_size=1)
    four = judge.predict(PAIRS, batch_size=4)
    np.testing.assert_allclose(one, four, atol=1e-6)
    # Each pair alone gives its own row: the order is the input order, not the length order.
    alone = np.array([judge.predict([p])[0] for p in PAIRS])
    np.testing.assert_allclose(four, alone, atol=1e-6)


def test_predict_reversed_input_gives_reversed_output(judge: CrossEncoder) -> None:
    """Permuting the input permutes the output the same way."""
    scores = judge.predict(PAIRS, batch_size=3)
    np.testing.assert_allclose(judge.predict(PAIRS[::-1], batch_size=3), scores[::-1], atol=1e-6)


def test_symmetric_is_the_mean_of_both_orders(judge: CrossEncoder) -> None:
    """``symmetric=True`` gives ``(s(a, b) + s(b, a)) / 2`` and is the same for ``(b, a)``."""
    forward = judge.predict(PAIRS)
    backward = judge.predict([(b, a) for a, b in PAIRS])
    assert not np.allclose(forward, backward, atol=1e-3)  # the model itself is order-sensitive
    sym = judge.predict(PAIRS, symmetric=True)
    np.testing.assert_allclose(sym, (forward + backward) / 2, atol=1e-6)
    swapped = judge.predict([(b, a) for a, b in PAIRS], symmetric=True)
    np.testing.assert_allclose(swapped, sym, atol=1e-6)


def test_predict_restores_training_mode_even_when_cut_off(
    tiny_ce_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropout is off while predicting, and train mode is given back, also after a failure
    midway (it was left in eval mode: dropout silently off for the rest of training)."""
    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")
    judge.model.train()
    first = judge.predict(PAIRS)
    np.testing.assert_array_equal(judge.predict(PAIRS), first)
    assert judge.model.training

    def fail(pairs: list[tuple[str, str]]) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(judge, "tokenize", fail)
    with pytest.raises(KeyboardInterrupt):
        judge.predict(PAIRS)
    assert judge.model.training


def test_predict_empty_list(judge: CrossEncoder, nli: CrossEncoder) -> None:
    """No pairs: an empty vector (one output) or an empty ``(0, L)`` matrix."""
    assert judge.predict([]).shape == (0,)
    assert nli.predict([]).shape == (0, 3)


def test_predict_unicode_and_empty_strings(judge: CrossEncoder) -> None:
    """Unicode and empty texts score like any other pair (a finite 0–1 value)."""
    scores = judge.predict([("café ☕ naïve", "Ünïcödé text"), ("", ""), ("  card  ", "")])
    assert np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()
    # Texts are stripped before tokenizing.
    np.testing.assert_allclose(
        judge.predict([("  card  ", "")]), judge.predict([("card", "")]), atol=1e-6
    )


@pytest.mark.parametrize(
    ("pairs", "index"),
    [
        ([("a", "b"), ("a", 3)], 1),
        ([("a", "b"), ("a", "b"), ("a", "b", "c")], 2),
        (["ab"], 0),
        ([("a", "b"), None], 1),
    ],
)
def test_predict_rejects_a_pair_that_is_not_two_strings(
    judge: CrossEncoder, pairs: list, index: int
) -> None:
    with pytest.raises(TypeError, match=rf"pair {index} must be two strings"):
        judge.predict(pairs)


def test_predict_rejects_a_batch_size_below_1(judge: CrossEncoder) -> None:
    with pytest.raises(ValueError, match="batch_size must be ≥ 1, got 0"):
        judge.predict(PAIRS, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an integer, got float"):
        judge.predict(PAIRS, batch_size=2.5)  # type: ignore[arg-type]


# -- truncation ------------------------------------------------------------------------------------


def test_longest_first_truncation_cuts_the_long_text_only(tiny_ce_dir: Path) -> None:
    """A pair over ``max_length`` scores as its truncated form; the short query keeps its words.

    ``[CLS] q q [SEP] d … d [SEP]`` with 16 tokens leaves 16 − 3 − 2 = 11 words of the document.
    """
    short = CrossEncoder.load(tiny_ce_dir, max_length=16, device="cpu")
    query, doc = "card declined", " ".join(LONG_DOC)
    features = short.tokenize([(query, doc)])
    ids = features["input_ids"][0]
    assert len(ids) == 16
    first = ids[features["token_type_ids"][0] == 0].tolist()
    assert short.tokenizer.convert_ids_to_tokens(first) == ["[CLS]", "card", "declined", "[SEP]"]
    cut = " ".join(LONG_DOC[:11])
    long_score, cut_score, shorter = short.predict([(query, doc), (query, cut), (query, cut[:-4])])
    assert long_score == pytest.approx(cut_score, abs=1e-6)
    assert long_score != pytest.approx(shorter, abs=1e-6)  # the words kept do matter


def test_longest_first_shortens_the_longer_of_two_long_texts(tiny_ce_dir: Path) -> None:
    """Two texts over the limit: tokens go from whichever is longer, so they end up even."""
    short = CrossEncoder.load(tiny_ce_dir, max_length=16, device="cpu")
    a, b = " ".join(LONG_DOC[:20]), " ".join(LONG_DOC[5:30])
    types = short.tokenize([(a, b)])["token_type_ids"][0]
    # 13 content tokens shared out longest-first: 20 vs 25 words become 7 and 6 (or 6 and 7).
    first, second = int((types == 0).sum()) - 2, int((types == 1).sum()) - 1
    assert first + second == 13
    assert abs(first - second) <= 1


# -- rank ------------------------------------------------------------------------------------------


DOCS = [
    "why was my payment declined",
    "a woman is eating food",
    "my card was declined abroad",
    "the exchange rate for euro",
    "cat",
]


def test_rank_sorts_typed_results_best_first(judge: CrossEncoder) -> None:
    """``rank`` gives every doc as a ``RankedDoc``: scores descending, ranks 1…n, with its text."""
    query = "card declined"
    ranked = judge.rank(query, DOCS)
    assert all(isinstance(r, RankedDoc) for r in ranked)
    assert [r.rank for r in ranked] == list(range(1, len(DOCS) + 1))
    assert sorted(r.index for r in ranked) == list(range(len(DOCS)))
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    expected = judge.predict([(query, d) for d in DOCS])
    for r in ranked:
        assert r.text == DOCS[r.index]
        assert r.score == pytest.approx(float(expected[r.index]), abs=1e-6)


def test_rank_top_k_is_a_prefix(judge: CrossEncoder) -> None:
    full = judge.rank("card declined", DOCS)
    top = judge.rank("card declined", DOCS, top_k=2)
    assert [(r.index, r.rank) for r in top] == [(r.index, r.rank) for r in full[:2]]
    assert judge.rank("card declined", DOCS, top_k=0) == []
    assert len(judge.rank("card declined", DOCS, top_k=99)) == len(DOCS)
    with pytest.raises(ValueError, match="top_k must be ≥ 0"):
        judge.rank("card declined", DOCS, top_k=-1)
    # a float failed deep in numpy slicing ("slice indices must be integers")
    with pytest.raises(TypeError, match="top_k must be an integer or None, got float"):
        judge.rank("card declined", DOCS, top_k=1.5)  # type: ignore[arg-type]


def test_rank_ties_keep_input_order(judge: CrossEncoder) -> None:
    """Identical documents score the same and keep their input order."""
    ranked = judge.rank("card", ["dog", "dog", "dog"])
    assert [r.index for r in ranked] == [0, 1, 2]


def test_rank_edges(judge: CrossEncoder) -> None:
    assert judge.rank("card declined", []) == []
    single = judge.rank("card declined", ["cat"])
    assert [(r.index, r.rank, r.text) for r in single] == [(0, 1, "cat")]


def test_rank_rejects_bad_input(judge: CrossEncoder) -> None:
    with pytest.raises(TypeError, match="query is int"):
        judge.rank(3, DOCS)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="single str"):
        judge.rank("card", "a document")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="item 1 is NoneType"):
        judge.rank("card", ["a", None])  # type: ignore[list-item]


def test_invalid_text_is_refused_naming_its_pair(judge: CrossEncoder) -> None:
    """A lone surrogate raised a TypeError from inside the tokenizer; a NUL was dropped by it."""
    with pytest.raises(ValueError, match=r"pair 1 \(text_b\) holds an unpaired surrogate"):
        judge.predict([("a", "b"), ("c", "d\ud800")])
    with pytest.raises(ValueError, match=r"pair 0 \(text_a\) holds a NUL character"):
        judge.predict([("a\x00", "b")], symmetric=True)
    with pytest.raises(ValueError, match="query holds the byte 0xe9"):
        judge.rank("caf\udce9", DOCS)
    with pytest.raises(ValueError, match="item 2 holds a NUL"):
        judge.rank("card", ["a", "b", "\x00"])


def test_empty_texts_are_scored(judge: CrossEncoder) -> None:
    """An empty text is valid input (as for the bi-encoder): scored, not refused; so is an
    empty document to rank."""
    scores = judge.predict([("", "card"), ("card", "")])
    assert scores.shape == (2,) and np.isfinite(scores).all()
    assert [r.index for r in judge.rank("card", ["card", ""])] in ([0, 1], [1, 0])


@pytest.mark.parametrize("query", ["", " \t\n"])
def test_rank_refuses_an_empty_query(judge: CrossEncoder, query: str) -> None:
    """As the server's ``/rerank`` does; ``rank("", docs)`` ordered the documents by noise."""
    with pytest.raises(ValueError, match=r"query is empty \(.*\); pass the text to rank"):
        judge.rank(query, DOCS)
    with pytest.raises(ValueError, match="query is empty"):
        judge.rank(query, [])  # refused even with nothing to rank: the call is wrong


def test_rank_refuses_a_multi_label_model(nli: CrossEncoder) -> None:
    with pytest.raises(
        ValueError, match=r"3 outputs \(entailment, neutral, contradiction\).*predict"
    ):
        nli.rank("a man plays guitar", ["someone plays music"])


# -- save / load -----------------------------------------------------------------------------------


def test_save_load_round_trip_fp32(tiny_ce_dir: Path, tmp_path: Path) -> None:
    """Saved and loaded again: the same scores, ``max_length`` and card kept."""
    model = CrossEncoder.load(tiny_ce_dir, max_length=40, device="cpu")
    out = model.save(tmp_path / "ce", card="# my judge\n")
    assert model.source == out
    again = CrossEncoder.load(out, device="cpu")
    assert again.max_length == 40
    assert (out / "README.md").read_text(encoding="utf-8") == "# my judge\n"
    np.testing.assert_allclose(again.predict(PAIRS), model.predict(PAIRS), atol=1e-6)


def test_save_load_round_trip_fp16(tiny_ce_dir: Path, tmp_path: Path) -> None:
    """``fp16=True`` stores half-precision weights; loaded back in fp32 they score within 2e-3."""
    from safetensors import safe_open

    judge = CrossEncoder.load(tiny_ce_dir, device="cpu")
    out = judge.save(tmp_path / "ce16", fp16=True)
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118 - safe_open has no iter
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    again = CrossEncoder.load(out, device="cpu")
    assert next(again.model.parameters()).dtype == torch.float32
    np.testing.assert_allclose(again.predict(PAIRS), judge.predict(PAIRS), atol=2e-3)
    # Saving in fp16 leaves the model in memory in fp32.
    assert next(judge.model.parameters()).dtype == torch.float32


def test_saved_multi_label_model_keeps_its_labels(nli: CrossEncoder, tmp_path: Path) -> None:
    out = nli.save(tmp_path / "nli")
    again = CrossEncoder.load(out, device="cpu")
    assert again.labels == NLI_LABELS
    np.testing.assert_allclose(again.predict(PAIRS), nli.predict(PAIRS), atol=1e-6)


def test_corrupt_sentsim_config_is_a_load_error(tiny_ce_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_ce_dir, broken)
    (broken / "sentsim_config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"sentsim_config\.json is not valid JSON"):
        CrossEncoder.load(broken, device="cpu")


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"[0.4]", r"sentsim_config\.json must hold a JSON object of settings; found list"),
        (b'{"rerank_weight": 0.4}\xff', r"sentsim_config\.json is not UTF-8 text"),
    ],
)
def test_sentsim_config_that_is_not_an_object_is_a_load_error(
    tiny_ce_dir: Path, tmp_path: Path, content: bytes, error: str
) -> None:
    """A list was read as no settings (its weights silently dropped); bad bytes were a traceback."""
    broken = tmp_path / "broken"
    shutil.copytree(tiny_ce_dir, broken)
    (broken / "sentsim_config.json").write_bytes(content)
    with pytest.raises(ModelLoadError, match=error):
        CrossEncoder.load(broken, device="cpu")


@pytest.mark.parametrize(
    ("stored", "error"),
    [
        ({"max_length": "abc"}, r"max_length 'abc' .* \(1 to 64 tokens"),
        ({"max_length": 1000}, r"max_length 1000 .* \(1 to 64 tokens"),
        ({"max_length": 0}, r"max_length 0 "),
        ({"rerank_weight": "x"}, r"rerank_weight 'x' .* a number from 0 to 1"),
        ({"rerank_weight": 1.5}, r"rerank_weight 1\.5 "),
        ({"rerank_weight_with_examples": None, "rerank_weight": True}, r"rerank_weight True "),
        ({"rerank_weight_with_examples": [0.5]}, r"rerank_weight_with_examples \[0\.5\] "),
        (  # loaded, then failed in SearchPipeline as if the caller had passed the weight
            {"rerank_weight_by_encoder": {"h1": {"weight": 5, "dev": "x"}}},
            r"rerank_weight_by_encoder\['h1'\] weight 5 is not a weight; give a number from 0 to 1",
        ),
        (
            {"rerank_weight_by_encoder": {"h1": {"weight": None}}},
            r"'rerank_weight_by_encoder' must",
        ),
    ],
)
def test_a_wrong_value_in_sentsim_config_is_named(
    tiny_ce_dir: Path, tmp_path: Path, stored: dict[str, object], error: str
) -> None:
    """'abc' failed with int()'s 'invalid literal for int() with base 10', naming no file; a
    length beyond the position embeddings loaded, then failed inside the model on the first long
    pair ('The size of tensor a (203) must match the size of tensor b (64)')."""
    import json

    folder = tmp_path / "judge"
    shutil.copytree(tiny_ce_dir, folder)
    (folder / "sentsim_config.json").write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(ModelLoadError, match=rf"judge/sentsim_config\.json: {error}"):
        CrossEncoder.load(folder, device="cpu")


def test_saved_dir_loads_in_sentence_transformers(tiny_ce_dir: Path, judge: CrossEncoder) -> None:
    """Reference: sentence-transformers' ``CrossEncoder`` on our directory gives our scores."""
    from sentence_transformers import CrossEncoder as StCrossEncoder

    reference = StCrossEncoder(str(tiny_ce_dir), device="cpu")
    expected = reference.predict(PAIRS, convert_to_numpy=True, show_progress_bar=False)
    np.testing.assert_allclose(judge.predict(PAIRS), expected, atol=1e-5)


def test_a_sentence_transformers_max_length_is_kept(tiny_ce_dir: Path, tmp_path: Path) -> None:
    """sentence-transformers keeps a cross-encoder's max_length in its tokenizer config; sentsim
    read such a directory at the model's full 64 tokens, so long pairs scored otherwise."""
    from sentence_transformers import CrossEncoder as StCrossEncoder

    reference = StCrossEncoder(str(tiny_ce_dir), device="cpu", max_length=16)
    reference.save(str(tmp_path / "st"))
    judge = CrossEncoder.load(tmp_path / "st", device="cpu")
    assert judge.max_length == 16
    pairs = [(" ".join(LONG_DOC[:12]), " ".join(LONG_DOC[12:])), PAIRS[0]]
    expected = reference.predict(pairs, convert_to_numpy=True, show_progress_bar=False)
    np.testing.assert_allclose(judge.predict(pairs), expected, atol=1e-5)


def test_saved_max_length_holds_in_sentence_transformers(tiny_ce_dir: Path, tmp_path: Path) -> None:
    """It was written only to sentsim_config.json: sentence-transformers read the directory at the
    tokenizer's limit instead (ce-rerank: 512 tokens where sentsim reads 256)."""
    from sentence_transformers import CrossEncoder as StCrossEncoder

    judge = CrossEncoder.load(tiny_ce_dir, max_length=16, device="cpu")
    judge.save(tmp_path / "ce")
    reference = StCrossEncoder(str(tmp_path / "ce"), device="cpu")
    assert reference.max_length == 16
    pairs = [(" ".join(LONG_DOC[:12]), " ".join(LONG_DOC[12:])), PAIRS[0]]
    expected = reference.predict(pairs, convert_to_numpy=True, show_progress_bar=False)
    np.testing.assert_allclose(judge.predict(pairs), expected, atol=1e-5)
    assert CrossEncoder.load(tmp_path / "ce", max_length=32, device="cpu").max_length == 32


def test_a_bi_encoder_is_not_loaded_as_a_judge(tiny_st_dir: Path, tiny_bert_dir: Path) -> None:
    """Its scoring layer would be drawn at random: scores near 0.5 that change every load."""
    for folder in (tiny_st_dir, tiny_bert_dir):
        with pytest.raises(ModelLoadError, match=r"is not a cross-encoder: its config\.json names"):
            CrossEncoder.load(folder, device="cpu")
    started = CrossEncoder.load(tiny_bert_dir, num_labels=1, device="cpu")  # how training starts
    assert started.model.config.num_labels == 1


def _rewrite_weights(folder: Path, edit: Callable[[dict[str, torch.Tensor]], dict]) -> None:
    from safetensors.torch import load_file, save_file

    weights = edit(load_file(folder / "model.safetensors"))
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})


def test_weights_without_the_scoring_head_are_refused(tiny_ce_dir: Path, tmp_path: Path) -> None:
    """transformers drew the missing head at random and only logged it (which sentsim silences):
    the judge scored about 0.5, differently at every load."""
    headless = tmp_path / "headless"
    shutil.copytree(tiny_ce_dir, headless)
    _rewrite_weights(headless, lambda w: {k: v for k, v in w.items() if "classifier" not in k})
    with pytest.raises(ModelLoadError, match=r"headless: model\.safetensors lacks 2 .*classifier"):
        CrossEncoder.load(headless, device="cpu")
    # Starting a fresh head for training still draws it, as asked.
    assert CrossEncoder.load(headless, num_labels=2, device="cpu").num_labels == 2


def test_a_head_that_does_not_fit_config_json_is_named(tiny_ce_dir: Path, tmp_path: Path) -> None:
    """A config.json without id2label means 2 outputs to transformers; with a 1-output head the
    load failed with 'For details look at the above report!', a report sentsim silences."""
    import json

    folder = tmp_path / "no-id2label"
    shutil.copytree(tiny_ce_dir, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    del config["id2label"], config["label2id"]
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(
        ModelLoadError,
        match=r"classifier\.bias is \(1,\) in model\.safetensors but \(2,\) in the model its "
        r"config\.json describes",
    ):
        CrossEncoder.load(folder, device="cpu")


def test_a_length_the_model_cannot_read_is_refused(tiny_ce_dir: Path, tiny_st_dir: Path) -> None:
    """It was stored, then failed inside the model on the first long text."""
    from sentsim.bi_encoder import BiEncoder

    limit = CrossEncoder.load(tiny_ce_dir, device="cpu").model.config.max_position_embeddings
    with pytest.raises(ValueError, match=rf"max length {limit + 1}: .* reads 1 to {limit} tokens"):
        CrossEncoder.load(tiny_ce_dir, max_length=limit + 1, device="cpu")
    with pytest.raises(ValueError, match=r"max length -5: "):
        BiEncoder.load(tiny_st_dir, max_seq_length=-5, device="cpu")
    assert BiEncoder.load(tiny_st_dir, max_seq_length=limit, device="cpu").max_seq_length == limit


def test_a_length_too_short_for_a_pair_is_refused(tiny_ce_dir: Path) -> None:
    """Below [CLS] a [SEP] b [SEP]'s 3 special tokens the tokenizer cannot cut and cut nothing:
    train cross-encoder --max-length 1 failed inside BERT ("size of tensor a (67) must match")."""
    with pytest.raises(ValueError, match=r"max length 2: a pair takes 3 special .* at least 5"):
        CrossEncoder.load(tiny_ce_dir, max_length=2, device="cpu")
    judge = CrossEncoder.load(tiny_ce_dir, max_length=5, device="cpu")
    features = judge.tokenize([("a man plays the guitar", "a woman plays the piano")])
    assert features["input_ids"].shape == (1, 5)
