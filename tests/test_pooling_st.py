"""Every pooling mode, and modes concatenated, against sentence-transformers' own vectors.

Folders in sentence-transformers layout over a tiny BERT (padded on the right: ``[CLS] … [SEP]``)
and a tiny Qwen2 decoder (padded on the left: ``… <|endoftext|>``). sentsim's vectors must equal
``SentenceTransformer(folder).encode`` to 1e-5 on texts of different lengths: as published, with a
prompt left out of pooling (``include_prompt: false``), and once sentsim has saved the folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sentsim.bi_encoder import BiEncoder
from sentsim.dense import Activation, Dense
from sentsim.errors import ModelLoadError
from sentsim.pooling import PoolingMode, read_pooling_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Lengths from 1 token to past the 64 the tiny models read (cut, not failed), and the empty text.
TEXTS = [
    "a man is playing the guitar",
    "dog",
    "my card was declined abroad, why?",
    "Café 東京 🙂 naïve",
    " ".join(["the bank is closed and my card was blocked"] * 12),
    "",
]
# No trailing space: sentsim strips each text (prompt included) before tokenizing, while
# sentence-transformers counts a byte-level BPE prompt's trailing space as a token of its own.
PROMPTS = {"query": "Instruct: find the answer\nQuery:"}

SINGLE = ["mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
# (how the config says it, what it says): each single mode as sentence-transformers 2–5 wrote it,
# cls+mean+max in those flags (concatenated in its fixed order), and sentence-transformers 6's
# key with a mode and with a list in another order.
CONFIGS: list[tuple[str, str | list[str]]] = [
    *[("flags", mode) for mode in SINGLE],
    ("flags", ["cls", "mean", "max"]),
    ("key", "weightedmean"),
    ("key", ["lasttoken", "weightedmean", "mean"]),
]
FLAGS = {
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "mean": "pooling_mode_mean_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


def pooling_json(style: str, modes: str | list[str], include_prompt: bool = True) -> dict:
    """A ``1_Pooling/config.json`` written by hand, in either library version's form."""
    if style == "key":
        return {"embedding_dimension": 32, "pooling_mode": modes, "include_prompt": include_prompt}
    named = [modes] if isinstance(modes, str) else modes
    flags = {key: name in named for name, key in FLAGS.items()}
    return {"word_embedding_dimension": 32, **flags, "include_prompt": include_prompt}


def st_folder(
    out: Path,
    encoder: Path,
    pooling: dict,
    *,
    prompts: dict[str, str] | None = None,
    dense: Dense | None = None,
) -> Path:
    """``encoder``'s files with ``modules.json`` [Transformer, Pooling, (Dense)], as published."""
    shutil.copytree(encoder, out)
    kinds = ["Transformer", "Pooling"] + (["Dense"] if dense is not None else [])
    paths = ["", "1_Pooling", "2_Dense"]
    modules = [
        {"idx": i, "name": str(i), "path": paths[i], "type": f"sentence_transformers.models.{k}"}
        for i, k in enumerate(kinds)
    ]
    (out / "modules.json").write_text(json.dumps(modules))
    (out / "1_Pooling").mkdir()
    (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    if dense is not None:
        dense.save(out / "2_Dense")
    config = {"max_seq_length": 64, "do_lower_case": False}
    (out / "sentence_bert_config.json").write_text(json.dumps(config))
    settings = {"prompts": prompts or {}, "default_prompt_name": None}
    (out / "config_sentence_transformers.json").write_text(json.dumps(settings))
    return out


def reference(folder: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu")


@pytest.fixture(params=["bert", "decoder"])
def encoder_dir(request: pytest.FixtureRequest) -> Path:
    """The tiny BERT (right padding) or the tiny decoder (left padding)."""
    name = "tiny_bert_dir" if request.param == "bert" else "tiny_decoder_dir"
    return Path(request.getfixturevalue(name))


def test_the_decoder_pads_on_the_left_and_ends_each_text_with_its_end_token(
    tiny_decoder_dir: Path,
) -> None:
    """What the decoder cases rest on: the padding sits before a short text, whose last token is
    <|endoftext|>; sentsim tokenizes as the tokenizer's config says."""
    model = BiEncoder.load(tiny_decoder_dir, device="cpu")
    features = model.tokenize(["a man is playing the guitar", "dog"])
    mask, ids = features["attention_mask"], features["input_ids"]
    assert mask[1, 0] == 0 and mask[1, -1] == 1 and bool(mask[0].all())
    end = model.transformer.tokenizer.eos_token_id
    assert ids[:, -1].tolist() == [end, end]


@pytest.mark.parametrize(("style", "modes"), CONFIGS)
def test_each_pooling_gives_sentence_transformers_vectors(
    encoder_dir: Path, tmp_path: Path, style: str, modes: str | list[str]
) -> None:
    """Each mode, and modes concatenated, on right- and left-padded batches: weightedmean,
    lasttoken and several modes at once were refused ("sentsim supports exactly one of ...")."""
    folder = st_folder(tmp_path / "st", encoder_dir, pooling_json(style, modes))
    theirs = reference(folder)
    ours = BiEncoder.load(folder, device="cpu")
    count = 1 if isinstance(modes, str) else len(modes)
    assert ours.dim == theirs.get_embedding_dimension() == 32 * count
    expected = theirs.encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(ours.encode(TEXTS), expected, atol=1e-5)
    # each text alone, unpadded: padding on either side changes nothing
    np.testing.assert_allclose(ours.encode(TEXTS, batch_size=1), expected, atol=1e-5)


@pytest.fixture(params=["bert", "decoder", "decoder-without-end-token"])
def prompted_encoder_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The tiny BERT, the tiny decoder, or the decoder with a tokenizer that adds no end token
    (its ``<|endoftext|>`` template removed), as a prompt's length depends on it."""
    if request.param == "bert":
        return Path(request.getfixturevalue("tiny_bert_dir"))
    decoder = Path(request.getfixturevalue("tiny_decoder_dir"))
    if request.param == "decoder":
        return decoder
    bare = Path(shutil.copytree(decoder, tmp_path / "bare"))
    tokenizer = json.loads((bare / "tokenizer.json").read_text())
    tokenizer["post_processor"] = None
    (bare / "tokenizer.json").write_text(json.dumps(tokenizer))
    return bare


@pytest.mark.parametrize(
    "modes", ["weightedmean", "lasttoken", "cls", ["cls", "mean", "max"], ["lasttoken", "mean"]]
)
def test_a_prompt_left_out_of_pooling_as_sentence_transformers_leaves_it(
    prompted_encoder_dir: Path, tmp_path: Path, modes: str | list[str]
) -> None:
    """``include_prompt: false``: the prompt's tokens (counted after left padding) are left out of
    every mode; weightedmean keeps the text's weights from ``prompt + text``, and the prompt's
    length drops its last token only where that is a special one. Without an end token the
    decoder's prompt was counted one token short (its last token read as an end token), and left
    padding masked padding in place of the prompt."""
    style = "key" if isinstance(modes, list) and modes[0] == "lasttoken" else "flags"
    pooling = pooling_json(style, modes, include_prompt=False)
    folder = st_folder(tmp_path / "st", prompted_encoder_dir, pooling, prompts=PROMPTS)
    theirs, ours = reference(folder), BiEncoder.load(folder, device="cpu")
    texts = TEXTS[:-1]  # with the prompt alone nothing would be left to pool
    expected = theirs.encode_query(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours.encode_query(texts), expected, atol=1e-5)
    np.testing.assert_allclose(ours.encode_query(texts, batch_size=1), expected, atol=1e-5)
    prompted = [PROMPTS["query"] + t for t in texts]
    if modes != "lasttoken":  # the last token is the text's: leaving the prompt out changes none
        assert not np.allclose(ours.encode_query(texts), ours.encode(prompted), atol=1e-4)


@pytest.mark.parametrize(
    ("style", "modes", "include_prompt"),
    [
        ("flags", ["cls", "mean", "max"], False),
        ("flags", "lasttoken", True),
        ("key", ["lasttoken", "weightedmean", "mean"], False),
        ("key", "weightedmean", True),
    ],
)
def test_a_loaded_pooling_saves_to_the_config_it_was_read_from(
    encoder_dir: Path, tmp_path: Path, style: str, modes: str | list[str], include_prompt: bool
) -> None:
    """The saved config reads back as the same modes in the same order, token width and
    include_prompt (it was always one mode, include_prompt kept), and both libraries load the
    saved folder to the vectors of the original."""
    pooling = pooling_json(style, modes, include_prompt)
    folder = st_folder(tmp_path / "st", encoder_dir, pooling, prompts=PROMPTS)
    model = BiEncoder.load(folder, device="cpu")
    saved = model.save(tmp_path / "saved")
    assert read_pooling_config(saved / "1_Pooling" / "config.json") == read_pooling_config(
        folder / "1_Pooling" / "config.json"
    )
    written = json.loads((saved / "1_Pooling" / "config.json").read_text())
    assert ("pooling_mode" in written) == (style == "key" and isinstance(modes, list))
    again = BiEncoder.load(saved, device="cpu")
    assert again.changed_settings() == {} and again.pooling == model.pooling
    vectors = model.encode_query(TEXTS[:-1])
    np.testing.assert_array_equal(again.encode_query(TEXTS[:-1]), vectors)
    theirs = reference(saved).encode_query(TEXTS[:-1], convert_to_numpy=True)
    np.testing.assert_allclose(vectors, theirs, atol=1e-5)


def test_a_dense_layer_reads_the_concatenated_vector(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """A Dense after cls+mean+max reads 96-d vectors: it was checked against the transformer's
    32 ("dense layer 1 reads 96-d vectors, but the transformer gives 32-d ones")."""
    torch.manual_seed(3)
    dense = Dense(96, 16, activation=Activation.TANH)
    pooling = pooling_json("flags", ["cls", "mean", "max"])
    folder = st_folder(tmp_path / "st", tiny_bert_dir, pooling, dense=dense)
    ours = BiEncoder.load(folder, device="cpu")
    assert ours.dim == 16
    expected = reference(folder).encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(ours.encode(TEXTS), expected, atol=1e-5)
    mean = pooling_json("flags", "mean")
    narrow = st_folder(tmp_path / "narrow", tiny_bert_dir, mean, dense=dense)
    with pytest.raises(ModelLoadError, match="reads 96-d vectors, but the pooling gives 32-d"):
        BiEncoder.load(narrow, device="cpu")


def test_concatenated_pooling_asked_for_at_load_is_a_changed_setting(tiny_st_dir: Path) -> None:
    """``BiEncoder.load(m, pooling=[...])`` concatenates in the order given; its vectors are
    wider and other than the folder's, so its vector hash differs (an index refuses it)."""
    model = BiEncoder.load(tiny_st_dir, pooling=["max", "cls"], normalize=False, device="cpu")
    assert model.pooling == (PoolingMode.MAX, PoolingMode.CLS)
    assert model.dim == 64
    assert model.changed_settings() == {"pooling": ["max", "cls"], "normalize": False}
    plain = BiEncoder.load(tiny_st_dir, normalize=False, device="cpu")
    vectors = model.encode(TEXTS)
    maxed = BiEncoder.load(tiny_st_dir, pooling="max", normalize=False, device="cpu")
    cls = BiEncoder.load(tiny_st_dir, pooling="cls", normalize=False, device="cpu")
    np.testing.assert_allclose(vectors, np.hstack([maxed.encode(TEXTS), cls.encode(TEXTS)]))
    assert model.vector_hash() not in {plain.vector_hash(), maxed.vector_hash()}


def test_an_index_holds_the_concatenated_vectors(tiny_st_dir: Path, tmp_path: Path) -> None:
    """The index takes its width from the encoder: 96-d vectors are stored and searched."""
    from sentsim.index import Document
    from sentsim.search import SearchPipeline, build_index

    model = BiEncoder.load(tiny_st_dir, pooling=["cls", "mean", "max"], device="cpu")
    docs = [Document(str(i), text) for i, text in enumerate(TEXTS[:4])]
    index = build_index(docs, tmp_path / "idx", model)
    try:
        assert index.encoder.dim == 96
        found = SearchPipeline(index, model, retriever="dense").search(TEXTS[2], top_k=1)
        assert [r.doc_id for r in found.results] == ["2"]
    finally:
        index.close()


@pytest.mark.parametrize(
    ("pooling", "message"),
    [
        (
            {"embedding_dimension": 32, "pooling_mode": ["cls", "sum"]},
            r"sentsim supports pooling_mode cls, max, mean, mean_sqrt_len_tokens, weightedmean, "
            r"lasttoken, or a list of them .*; found \['cls', 'sum'\]",
        ),
        (
            {"word_embedding_dimension": 32, "pooling_mode_sum_tokens": True},
            r"sentsim supports \['pooling_mode_cls_token', .*found \['pooling_mode_sum_tokens'\]",
        ),
    ],
)
def test_an_unknown_pooling_is_refused_at_load_naming_the_file(
    tiny_bert_dir: Path, tmp_path: Path, pooling: dict, message: str
) -> None:
    folder = st_folder(tmp_path / "st", tiny_bert_dir, pooling)
    with pytest.raises(ModelLoadError, match=message) as info:
        BiEncoder.load(folder, device="cpu")
    assert str(folder / "1_Pooling" / "config.json") in str(info.value)
