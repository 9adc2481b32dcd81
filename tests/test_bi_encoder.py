"""BiEncoder on a tiny BERT: shapes, order, truncation, layouts, sentence-transformers parity."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sentsim.bi_encoder import BiEncoder
from sentsim.errors import ModelLoadError
from sentsim.models import weights_hash
from sentsim.pooling import PoolingMode

DIM = 32
# Every word here is one token of the tiny vocabulary, so n words are n tokens.
ONE_TOKEN_WORDS = ["dog", "cat", "man", "woman", "girl", "boy", "guitar", "piano", "beach"]

TEXTS = [
    "a man is playing the guitar",
    "",
    "dog",
    " ".join(ONE_TOKEN_WORDS * 3),
    "my card was declined abroad, why?",
    "Café 東京 🙂 naïve",
    "a woman plays the piano on the beach",
]


def words(n: int) -> str:
    """A text of exactly ``n`` tokens."""
    return " ".join(ONE_TOKEN_WORDS[i % len(ONE_TOKEN_WORDS)] for i in range(n))


@pytest.fixture(scope="module")
def plain(tiny_bert_dir: Path) -> BiEncoder:
    """The plain Hugging Face directory: mean pooling, no normalization."""
    return BiEncoder.load(tiny_bert_dir, device="cpu")


@pytest.fixture(scope="module")
def normalized(tiny_st_dir: Path) -> BiEncoder:
    return BiEncoder.load(tiny_st_dir, device="cpu")


@pytest.fixture(scope="module")
def hf_reference(tiny_bert_dir: Path):  # type: ignore[no-untyped-def]
    """The tiny BERT run directly by transformers: (tokenizer, model)."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModel.from_pretrained(tiny_bert_dir).eval()
    return tokenizer, model


def st_model(path: Path):  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


# --- shapes and edges ---------------------------------------------------------------------------


def test_shape_and_dtype(plain: BiEncoder) -> None:
    out = plain.encode(TEXTS)
    assert out.shape == (len(TEXTS), DIM)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert plain.dim == DIM


def test_empty_list_gives_zero_rows(plain: BiEncoder) -> None:
    out = plain.encode([])
    assert out.shape == (0, DIM)
    assert out.dtype == np.float32


def test_one_item(plain: BiEncoder) -> None:
    assert plain.encode(["dog"]).shape == (1, DIM)


def test_empty_string_embeds_as_cls_sep(plain: BiEncoder, hf_reference) -> None:  # type: ignore[no-untyped-def]
    """An empty (or blank) text is the mean of the [CLS] and [SEP] token vectors."""
    tokenizer, model = hf_reference
    with torch.inference_mode():
        enc = tokenizer([""], return_tensors="pt")
        expected = model(**enc).last_hidden_state.mean(1).numpy()
    assert enc["input_ids"].shape == (1, 2)
    np.testing.assert_allclose(plain.encode([""]), expected, atol=1e-6)
    np.testing.assert_allclose(plain.encode(["   "]), expected, atol=1e-6)


def test_non_string_item_raises_naming_its_index(plain: BiEncoder) -> None:
    with pytest.raises(TypeError, match="item 2 is int, expected str"):
        plain.encode(["a", "b", 3, "d"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="item 0 is NoneType"):
        plain.encode([None])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc\ud800", r"item 1 holds an unpaired surrogate \(U\+D800\) at character 4"),
        ("caf\udce9", "item 1 holds the byte 0xe9, which is not UTF-8"),  # sys.argv's b"caf\xe9"
        ("a\x00b", r"item 1 holds a NUL character \(U\+0000\) at character 2"),
    ],
)
def test_invalid_text_is_refused_naming_its_index(
    plain: BiEncoder, text: str, message: str
) -> None:
    """A lone surrogate raised a TypeError from inside the tokenizer; a NUL was dropped by it."""
    with pytest.raises(ValueError, match=message):
        plain.encode(["ok", text])
    with pytest.raises(ValueError, match=message):
        plain.encode_query(["ok", text])
    with pytest.raises(ValueError, match="prompt holds"):
        plain.encode(["ok"], prompt=text)


def test_single_string_raises(plain: BiEncoder) -> None:
    with pytest.raises(TypeError, match="got a single str; wrap it in a list"):
        plain.encode("a dog")


def test_batch_size_below_one_raises(plain: BiEncoder) -> None:
    with pytest.raises(ValueError, match="batch_size must be ≥ 1, got 0"):
        plain.encode(["dog"], batch_size=0)


@pytest.mark.parametrize("size", [None, 1.5, "8"])
def test_batch_size_that_is_not_an_integer_raises_naming_it(plain: BiEncoder, size: object) -> None:
    """None failed with "'<' not supported between instances of 'NoneType' and 'int'", 1.5 deep
    inside range()."""
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        plain.encode(["dog", "cat"], batch_size=size)  # type: ignore[arg-type]


# --- smart batching and order -------------------------------------------------------------------


def test_batch_size_does_not_change_vectors(normalized: BiEncoder) -> None:
    """Texts of 0 to ~40 tokens: batch sizes 1, 3 and all give the same rows to 1e-6."""
    one = normalized.encode(TEXTS, batch_size=1)
    three = normalized.encode(TEXTS, batch_size=3)
    every = normalized.encode(TEXTS, batch_size=len(TEXTS))
    np.testing.assert_allclose(three, one, atol=1e-6)
    np.testing.assert_allclose(every, one, atol=1e-6)


def test_rows_come_back_in_input_order(plain: BiEncoder) -> None:
    """Row i is text i encoded alone, although batching sorts texts longest first."""
    batched = plain.encode(TEXTS, batch_size=2)
    alone = np.vstack([plain.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(batched, alone, atol=1e-6)
    # The texts differ, so a permutation of rows would be caught.
    assert len({tuple(np.round(r, 4)) for r in batched}) == len(TEXTS)


def test_duplicate_texts_get_identical_rows(plain: BiEncoder) -> None:
    out = plain.encode(["dog", "a cat", "dog"], batch_size=1)
    np.testing.assert_array_equal(out[0], out[2])


def test_progress_bar_does_not_change_result(plain: BiEncoder) -> None:
    np.testing.assert_array_equal(
        plain.encode(TEXTS, show_progress=True), plain.encode(TEXTS, show_progress=False)
    )


def test_encode_uses_eval_mode_and_restores_training_mode(tiny_bert_dir: Path) -> None:
    """Dropout is off while encoding (twice gives the same), and train mode is given back."""
    model = BiEncoder.load(tiny_bert_dir, device="cpu")
    model.transformer.model.train()
    first = model.encode(TEXTS)
    np.testing.assert_array_equal(model.encode(TEXTS), first)
    assert model.transformer.model.training


def test_encode_cut_off_still_restores_training_mode(
    tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encode that fails or is interrupted midway (Ctrl-C in a notebook, out of memory) left a
    model that was training in eval mode: its dropout silently off for the rest of training."""
    model = BiEncoder.load(tiny_bert_dir, device="cpu")
    model.transformer.model.train()

    def fail(texts: list[str]) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(model.transformer, "tokenize", fail)
    with pytest.raises(KeyboardInterrupt):
        model.encode(TEXTS)
    assert model.transformer.model.training


# --- truncation ---------------------------------------------------------------------------------


def test_default_max_seq_length_is_the_position_limit(plain: BiEncoder) -> None:
    assert plain.max_seq_length == 64


def test_text_longer_than_limit_equals_its_truncation(plain: BiEncoder) -> None:
    """64 positions = [CLS] + 62 words + [SEP]: 300 words encode like their first 62."""
    long_text, cut = words(300), words(62)
    out = plain.encode([long_text, cut, words(61)])
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    assert not np.allclose(out[1], out[2], atol=1e-4)  # the 62nd word still counts


def test_very_long_text_does_not_fail(plain: BiEncoder) -> None:
    out = plain.encode(["word " * 20_000, "dog"])
    assert out.shape == (2, DIM)
    assert np.isfinite(out).all()


def test_max_seq_length_override(tiny_bert_dir: Path) -> None:
    short = BiEncoder.load(tiny_bert_dir, max_seq_length=8, device="cpu")
    assert short.max_seq_length == 8
    out = short.encode([words(20), words(6), words(5)])
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    assert not np.allclose(out[1], out[2], atol=1e-4)


def test_max_seq_length_0_is_refused_not_ignored(tiny_st_dir: Path) -> None:
    """``max_seq_length=0`` was read as "not given": the model's full 64 tokens, silently."""
    with pytest.raises(ValueError, match=r"max length 0: .* reads 1 to 64 tokens"):
        BiEncoder.load(tiny_st_dir, max_seq_length=0, device="cpu")


# --- pooling and normalization ------------------------------------------------------------------


def test_plain_hf_dir_defaults_to_mean_without_normalization(
    plain: BiEncoder, hf_reference
) -> None:  # type: ignore[no-untyped-def]
    """Against transformers directly: masked mean of last_hidden_state, not unit length."""
    tokenizer, model = hf_reference
    with torch.inference_mode():
        enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    assert plain.pooling == PoolingMode.MEAN
    assert plain.normalize is False
    out = plain.encode(TEXTS)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert not np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-3)


def test_pooling_override_cls(tiny_bert_dir: Path, hf_reference) -> None:  # type: ignore[no-untyped-def]
    tokenizer, model = hf_reference
    with torch.inference_mode():
        enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
        expected = model(**enc).last_hidden_state[:, 0].numpy()
    cls = BiEncoder.load(tiny_bert_dir, pooling="CLS", device="cpu")
    assert cls.pooling == PoolingMode.CLS
    np.testing.assert_allclose(cls.encode(TEXTS), expected, atol=1e-5)


def test_pooling_override_wins_over_the_directory(tiny_st_dir: Path) -> None:
    model = BiEncoder.load(tiny_st_dir, pooling="max", normalize=False, device="cpu")
    assert (model.pooling, model.normalize) == (PoolingMode.MAX, False)


def test_bad_pooling_override_lists_valid_names(tiny_bert_dir: Path) -> None:
    with pytest.raises(ValueError, match="expected one of: mean, cls, max"):
        BiEncoder.load(tiny_bert_dir, pooling="sum", device="cpu")


def test_normalize_on_gives_unit_vectors_in_the_same_direction(
    plain: BiEncoder, tiny_bert_dir: Path
) -> None:
    unit = BiEncoder.load(tiny_bert_dir, normalize=True, device="cpu").encode(TEXTS)
    raw = plain.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)


def test_normalize_off_overrides_the_directory(tiny_st_dir: Path, plain: BiEncoder) -> None:
    model = BiEncoder.load(tiny_st_dir, normalize=False, device="cpu")
    np.testing.assert_allclose(model.encode(TEXTS), plain.encode(TEXTS), atol=1e-6)


@pytest.mark.parametrize("flag", ["no", "false", 0])
def test_normalize_that_is_not_a_bool_is_refused(tiny_st_dir: Path, flag: object) -> None:
    """normalize="no" is a true string: the vectors were normalized and saved so, as not asked."""
    with pytest.raises(TypeError, match=rf"normalize must be True, False or None, got {flag!r}"):
        BiEncoder.load(tiny_st_dir, normalize=flag, device="cpu")  # type: ignore[arg-type]


# --- save / load and sentence-transformers ------------------------------------------------------


def test_save_load_round_trip(normalized: BiEncoder, tmp_path: Path) -> None:
    out = normalized.save(tmp_path / "copy", card="# tiny\n")
    loaded = BiEncoder.load(out, device="cpu")
    assert (loaded.pooling, loaded.normalize, loaded.max_seq_length) == (
        normalized.pooling,
        normalized.normalize,
        normalized.max_seq_length,
    )
    np.testing.assert_array_equal(loaded.encode(TEXTS), normalized.encode(TEXTS))
    assert (out / "README.md").read_text() == "# tiny\n"


@pytest.mark.parametrize("mode", ["cls", "max"])
def test_save_load_keeps_pooling_and_no_normalize(
    tiny_bert_dir: Path, tmp_path: Path, mode: str
) -> None:
    model = BiEncoder.load(tiny_bert_dir, pooling=mode, max_seq_length=16, device="cpu")
    loaded = BiEncoder.load(model.save(tmp_path / mode), device="cpu")
    assert (loaded.pooling, loaded.normalize, loaded.max_seq_length) == (mode, False, 16)
    assert not (tmp_path / mode / "2_Normalize").exists()
    np.testing.assert_array_equal(loaded.encode(TEXTS), model.encode(TEXTS))


def test_saved_dir_loads_in_sentence_transformers(normalized: BiEncoder, tiny_st_dir: Path) -> None:
    """Our layout read by sentence-transformers gives our embeddings (to 1e-5)."""
    reference = st_model(tiny_st_dir).encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(normalized.encode(TEXTS), reference, atol=1e-5)


def test_saved_max_pool_and_truncation_load_in_sentence_transformers(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    model = BiEncoder.load(tiny_bert_dir, pooling="max", max_seq_length=10, device="cpu")
    out = model.save(tmp_path / "max10")
    texts = [*TEXTS, words(50)]
    reference = st_model(out).encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(model.encode(texts), reference, atol=1e-5)


@pytest.mark.parametrize(("mode", "normalize"), [("max", True), ("cls", True), ("mean", False)])
def test_sentence_transformers_dir_loads_in_sentsim(
    tiny_bert_dir: Path, tmp_path: Path, mode: str, normalize: bool
) -> None:
    """A model built and saved by sentence-transformers gives its embeddings through sentsim."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(tiny_bert_dir), max_seq_length=24)
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), mode)]
    if normalize:
        modules.append(Normalize())
    reference_model = SentenceTransformer(modules=modules, device="cpu")
    reference_model.save(str(tmp_path / "st"))
    texts = [*TEXTS, words(50)]
    reference = reference_model.encode(texts, convert_to_numpy=True)

    ours = BiEncoder.load(tmp_path / "st", device="cpu")
    assert (ours.pooling, ours.normalize, ours.max_seq_length) == (mode, normalize, 24)
    np.testing.assert_allclose(ours.encode(texts), reference, atol=1e-5)


def test_old_style_module_types_load(tiny_st_dir: Path) -> None:
    """``sentence_transformers.models.*`` (what MiniLM and BiEncoder.save write) is understood."""
    modules = json.loads((tiny_st_dir / "modules.json").read_text())
    assert [m["type"] for m in modules] == [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ]
    model = BiEncoder.load(tiny_st_dir, device="cpu")
    assert (model.pooling, model.normalize) == (PoolingMode.MEAN, True)


# --- load errors --------------------------------------------------------------------------------


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_directory_raises_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="neither a built-in name") as info:
        BiEncoder.load(missing)
    assert str(missing) in str(info.value)
    assert "minilm" in str(info.value)  # the valid names are listed


def test_file_instead_of_directory_raises(tmp_path: Path) -> None:
    file = tmp_path / "model.bin"
    file.write_bytes(b"")
    with pytest.raises(ModelLoadError, match=f"model path {re.escape(str(file))} is a file"):
        BiEncoder.load(file)


def test_missing_config_json_raises_naming_the_file(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model(tiny_bert_dir, tmp_path / "m")
    (model_dir / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="is not a model directory: expected") as info:
        BiEncoder.load(model_dir)
    assert str(model_dir / "config.json") in str(info.value)


def test_missing_weights_raises(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model(tiny_bert_dir, tmp_path / "m")
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(
        ModelLoadError, match=re.escape("has no weights: expected model.safetensors")
    ) as info:
        BiEncoder.load(model_dir)
    assert str(model_dir) in str(info.value)


def test_missing_tokenizer_raises(tiny_bert_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model(tiny_bert_dir, tmp_path / "m")
    for name in ("tokenizer.json", "vocab.txt"):
        (model_dir / name).unlink(missing_ok=True)
    with pytest.raises(
        ModelLoadError, match=re.escape("has no tokenizer: expected tokenizer.json")
    ) as info:
        BiEncoder.load(model_dir)
    assert "vocab.json" in str(info.value) and "spiece.model" in str(info.value)


def test_unsupported_module_type_raises_naming_it(tiny_st_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model(tiny_st_dir, tmp_path / "m")
    modules = json.loads((model_dir / "modules.json").read_text())
    kind = "sentence_transformers.models.LayerNorm"
    modules.append({"idx": 3, "name": "3", "path": "3_LayerNorm", "type": kind})
    (model_dir / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelLoadError, match=re.escape(f"'{kind}' is not supported")) as info:
        BiEncoder.load(model_dir)
    message = str(info.value)
    assert str(model_dir / "modules.json") in message
    assert "supported: Transformer, Pooling, Dense, Normalize" in message


def test_module_type_from_another_library_is_unsupported(tiny_st_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model(tiny_st_dir, tmp_path / "m")
    modules = json.loads((model_dir / "modules.json").read_text())
    modules[1]["type"] = "mylib.Pooling"
    (model_dir / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelLoadError, match=re.escape("'mylib.Pooling' is not supported")):
        BiEncoder.load(model_dir)


def test_invalid_modules_json_raises(tiny_st_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model(tiny_st_dir, tmp_path / "m")
    (model_dir / "modules.json").write_text("[{")
    with pytest.raises(ModelLoadError, match=re.escape("modules.json is not valid JSON")):
        BiEncoder.load(model_dir)


@pytest.mark.parametrize(
    ("file", "content", "error"),
    [
        ("sentence_bert_config.json", "{", r"sentence_bert_config\.json is not valid JSON"),
        ("sentence_bert_config.json", "[16]", r"sentence_bert_config\.json must hold an object"),
        (
            "sentence_bert_config.json",
            '{"max_seq_length": "abc"}',
            r"sentence_bert_config\.json: max_seq_length 'abc' is not a token count",
        ),
        (
            "sentence_bert_config.json",
            '{"max_seq_length": 16.5}',
            r"sentence_bert_config\.json: max_seq_length 16\.5 ",
        ),
        (  # said "max length 1000: DIR reads 1 to 64 tokens", as if the caller had passed it
            "sentence_bert_config.json",
            '{"max_seq_length": 1000}',
            r"m/sentence_bert_config\.json: max_seq_length 1000 is more than the 64 tokens",
        ),
        ("modules.json", '{"0": {}}', r"modules\.json must hold a list of modules"),
        ("modules.json", '["Transformer"]', r"modules\.json: module 0 is not an object"),
        # an empty list loaded as mean pooling without normalization
        ("modules.json", "[]", r"modules\.json names no Transformer module \(0 module\(s\)\)"),
        ("1_Pooling/config.json", "[true]", r"1_Pooling/config\.json must hold an object"),
    ],
)
def test_a_layout_file_of_the_wrong_shape_is_named(
    tiny_st_dir: Path, tmp_path: Path, file: str, content: str, error: str
) -> None:
    """They failed with json's, Python's or a comparison's own message ("'list' object has no
    attribute 'get'", "'<=' not supported between instances of 'int' and 'str'"), naming no file."""
    model_dir = copy_model(tiny_st_dir, tmp_path / "m")
    (model_dir / file).write_text(content, encoding="utf-8")
    with pytest.raises(ModelLoadError, match=error):
        BiEncoder.load(model_dir, device="cpu")


def test_missing_pooling_config_raises_naming_it(tiny_st_dir: Path, tmp_path: Path) -> None:
    model_dir = copy_model(tiny_st_dir, tmp_path / "m")
    (model_dir / "1_Pooling" / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="pooling config missing") as info:
        BiEncoder.load(model_dir)
    assert str(model_dir / "1_Pooling" / "config.json") in str(info.value)


# --- identity -----------------------------------------------------------------------------------


def test_identity_is_name_at_weights_hash(normalized: BiEncoder, tiny_st_dir: Path) -> None:
    identity = normalized.identity()
    assert re.fullmatch(re.escape(str(tiny_st_dir)) + r"@[0-9a-f]{16}", identity)
    assert identity == f"{tiny_st_dir}@{weights_hash(tiny_st_dir)}"


def test_identity_follows_the_weights(normalized: BiEncoder, tmp_path: Path) -> None:
    """A byte-identical copy has the same hash; changed weights a different one."""
    same = normalized.save(tmp_path / "same")
    assert weights_hash(same) == weights_hash(normalized.source)  # type: ignore[arg-type]

    changed = BiEncoder.load(same, device="cpu")
    with torch.no_grad():
        changed.transformer.model.embeddings.word_embeddings.weight[5] += 1.0
    changed.save(tmp_path / "changed")
    assert weights_hash(tmp_path / "changed") != weights_hash(same)


def test_identity_of_an_unsaved_encoder_raises(plain: BiEncoder) -> None:
    unsaved = BiEncoder(plain.transformer)
    with pytest.raises(ModelLoadError, match="not loaded from disk; save it first"):
        unsaved.identity()


def test_saving_sets_the_source(plain: BiEncoder, tmp_path: Path) -> None:
    unsaved = BiEncoder(plain.transformer, name="fresh")
    unsaved.save(tmp_path / "fresh")
    assert unsaved.identity().startswith("fresh@")


def test_weights_hash_without_weights_raises(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no weights in") as info:
        weights_hash(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_a_cross_encoder_is_not_loaded_as_a_bi_encoder(tiny_ce_dir: Path) -> None:
    """It loaded as a mean-pooled encoder of its backbone, so an index built with
    ``--model ce-rerank`` by mistake got poor vectors without a word."""
    with pytest.raises(ModelLoadError, match=r"a cross-encoder \(BertForSequenceClassification\)"):
        BiEncoder.load(tiny_ce_dir)


def test_a_sentence_transformers_cross_encoder_is_not_loaded_as_a_bi_encoder(
    tiny_ce_dir: Path, tmp_path: Path
) -> None:
    """sentence-transformers 6 saves a cross-encoder with a modules.json (one Transformer
    module); the cross-encoder check ran only without one, so such a folder loaded as a
    mean-pooled encoder of the judge's backbone."""
    from sentence_transformers import CrossEncoder as StCrossEncoder

    StCrossEncoder(str(tiny_ce_dir), device="cpu").save(str(tmp_path / "st-ce"))
    assert (tmp_path / "st-ce" / "modules.json").is_file()
    with pytest.raises(ModelLoadError, match=r"a cross-encoder \(BertForSequenceClassification\)"):
        BiEncoder.load(tmp_path / "st-ce", device="cpu")


def test_weights_the_model_cannot_find_are_refused(tiny_st_dir: Path, tmp_path: Path) -> None:
    """Tensors under other names (here a prefix) left every layer drawn at random, silently: the
    vectors changed at every load."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "prefixed"
    shutil.copytree(tiny_st_dir, folder)
    weights = load_file(folder / "model.safetensors")
    save_file({f"encoder.{k}": v for k, v in weights.items()}, folder / "model.safetensors")
    with pytest.raises(
        ModelLoadError, match=r"prefixed: model\.safetensors lacks .* place for, e\.g\. encoder\."
    ):
        BiEncoder.load(folder, device="cpu")


def test_weights_without_a_pooler_load(tiny_st_dir: Path, tmp_path: Path) -> None:
    """The pooler layer is never read (pooling uses the token vectors), so weights without it
    (e.g. a masked-language model's) load and encode as before."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "no-pooler"
    shutil.copytree(tiny_st_dir, folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if "pooler" not in k}, folder / "model.safetensors")
    texts = ["a dog plays", "my card was declined"]
    np.testing.assert_allclose(
        BiEncoder.load(folder, device="cpu").encode(texts),
        BiEncoder.load(tiny_st_dir, device="cpu").encode(texts),
        atol=1e-6,
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_an_unavailable_device_is_one_clear_error(tiny_st_dir: Path, tiny_ce_dir: Path) -> None:
    """device='cuda' without a GPU ended in torch's AssertionError from inside ``.to``."""
    from sentsim.cross_encoder import CrossEncoder

    with pytest.raises(ValueError, match="torch sees no CUDA GPU here; use 'cpu'"):
        BiEncoder.load(tiny_st_dir, device="cuda")
    with pytest.raises(ValueError, match="torch sees no CUDA GPU here"):
        CrossEncoder.load(tiny_ce_dir, device="cuda:0")
    with pytest.raises(ValueError, match="is not a torch device"):
        BiEncoder.load(tiny_st_dir, device="gpu")


# -- prompts (config_sentence_transformers.json) --------------------------------------------------

# as sentence-transformers 6 saves E5's prompts: with its own empty "document" placeholder
PROMPTS = {"query": "query: ", "document": "", "passage": "passage: "}


def _with_prompts(
    source: Path,
    out: Path,
    prompts: object = PROMPTS,
    default: object = None,
    include_prompt: bool = True,
) -> Path:
    """A copy of a sentence-transformers folder whose config names prompts."""
    shutil.copytree(source, out)
    config = {"prompts": prompts, "default_prompt_name": default, "similarity_fn_name": "cosine"}
    (out / "config_sentence_transformers.json").write_text(json.dumps(config))
    pooling = json.loads((out / "1_Pooling" / "config.json").read_text())
    (out / "1_Pooling" / "config.json").write_text(
        json.dumps({**pooling, "include_prompt": include_prompt})
    )
    return out


PROMPT_TEXTS = ["card declined abroad", "how do i top up", ""]


def test_query_and_document_prompts_are_put_before_the_texts(
    tiny_st_dir: Path, tmp_path: Path
) -> None:
    """E5-style models were read without their prompts: every vector was made from the bare
    text, which such a model was never trained on."""
    model = BiEncoder.load(_with_prompts(tiny_st_dir, tmp_path / "m"))
    bare = BiEncoder.load(tiny_st_dir)
    assert (model.query_prompt, model.document_prompt) == ("query: ", "passage: ")
    np.testing.assert_allclose(
        model.encode_query(PROMPT_TEXTS),
        bare.encode([f"query: {t}" for t in PROMPT_TEXTS]),
        atol=1e-6,
    )
    documents = bare.encode([f"passage: {t}" for t in PROMPT_TEXTS])
    np.testing.assert_allclose(model.encode_document(PROMPT_TEXTS), documents, atol=1e-6)
    np.testing.assert_allclose(
        model.encode(PROMPT_TEXTS, prompt_name="passage"), documents, atol=1e-6
    )
    np.testing.assert_allclose(model.encode(PROMPT_TEXTS, prompt="passage: "), documents, atol=1e-6)
    np.testing.assert_allclose(
        model.encode(PROMPT_TEXTS), bare.encode(PROMPT_TEXTS), atol=1e-6
    )  # no default
    assert not np.allclose(model.encode_query(PROMPT_TEXTS), model.encode_document(PROMPT_TEXTS))
    with pytest.raises(
        ValueError, match=r"no prompt named 'doc' \(its prompts: 'query', 'document', 'passage'\)"
    ):
        model.encode(PROMPT_TEXTS, prompt_name="doc")
    with pytest.raises(ValueError, match="give prompt or prompt_name, not both"):
        model.encode(PROMPT_TEXTS, prompt_name="query", prompt="x")


@pytest.mark.parametrize("include_prompt", [True, False])
@pytest.mark.parametrize(("default", "pooling"), [(None, "mean"), ("query", "mean"), (None, "cls")])
def test_prompts_give_sentence_transformers_vectors(
    tiny_st_dir: Path, tmp_path: Path, include_prompt: bool, default: str | None, pooling: str
) -> None:
    """The same folder in both libraries: encode_query, encode_document and encode (which takes
    the default prompt) agree, also when pooling leaves the prompt's tokens out (cls pooling then
    takes the text's first token: it took [CLS])."""
    from sentence_transformers import SentenceTransformer

    # "document", not "passage": sentence-transformers 6 always holds an empty "document"
    # prompt, which it prefers to a "passage" one (sentsim takes the first non-empty one)
    prompts = {"query": "query: ", "document": "passage: "}
    source = BiEncoder.load(tiny_st_dir, pooling=pooling).save(tmp_path / "source")
    folder = _with_prompts(
        source, tmp_path / "m", prompts, default=default, include_prompt=include_prompt
    )
    ours = BiEncoder.load(folder)
    theirs = SentenceTransformer(str(folder), device="cpu")
    texts = PROMPT_TEXTS[:2]
    for mine, peer in [
        (ours.encode_query(texts), theirs.encode_query(texts)),
        (ours.encode_document(texts), theirs.encode_document(texts)),
        (ours.encode(texts), theirs.encode(texts)),
    ]:
        np.testing.assert_allclose(mine, peer, atol=1e-5)
    if not include_prompt:  # the prompt's tokens really are left out of the mean
        assert not np.allclose(
            ours.encode_query(texts),
            BiEncoder.load(tiny_st_dir).encode([f"query: {t}" for t in texts]),
        )


def test_prompts_survive_save_and_change_the_vector_hash(tiny_st_dir: Path, tmp_path: Path) -> None:
    """An index records the vector hash: other prompts on the same weights make other vectors."""
    bare = BiEncoder.load(tiny_st_dir)
    assert bare.vector_hash() == bare.weights_hash()  # indexes built before prompts keep theirs
    model = BiEncoder.load(_with_prompts(tiny_st_dir, tmp_path / "m", include_prompt=False))
    saved = BiEncoder.load(model.save(tmp_path / "saved"))
    assert (saved.prompts, saved.default_prompt_name, saved.include_prompt) == (
        PROMPTS,
        None,
        False,
    )
    assert saved.vector_hash() == model.vector_hash() != bare.vector_hash()
    other = BiEncoder.load(_with_prompts(tiny_st_dir, tmp_path / "o", {"query": "q: "}))
    assert other.weights_hash() == model.weights_hash()
    assert other.vector_hash() != model.vector_hash()


@pytest.mark.parametrize(
    ("prompts", "default", "message"),
    [
        (["query: "], None, '"prompts" must map names to texts'),
        ({"query": 3}, None, '"prompts" must map names to texts'),
        (PROMPTS, "search", "\"default_prompt_name\" is 'search', which is not one of its prompts"),
    ],
)
def test_a_bad_prompt_config_is_named(
    tiny_st_dir: Path, tmp_path: Path, prompts: object, default: object, message: str
) -> None:
    folder = _with_prompts(tiny_st_dir, tmp_path / "m", prompts, default)
    with pytest.raises(ModelLoadError, match=r"config_sentence_transformers\.json") as info:
        BiEncoder.load(folder)
    assert message in str(info.value)


def test_a_roberta_folder_with_only_vocab_json_and_merges_loads(tiny_roberta_dir: Path) -> None:
    """roberta-base's layout (vocab.json + merges.txt, no tokenizer.json) was refused as having
    no tokenizer, although transformers and sentence-transformers load it."""
    assert not (tiny_roberta_dir / "tokenizer.json").exists()
    texts = ["a card payment was declined", "", "Café 東京 🙂"]
    ours = BiEncoder.load(tiny_roberta_dir, device="cpu").encode(texts)
    theirs = st_model(tiny_roberta_dir).encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_a_sentencepiece_tokenizer_without_its_package_is_named(
    tiny_roberta_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sentsim.backend

    model_dir = tmp_path / "m"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_roberta_dir / name, model_dir / name)
    (model_dir / "sentencepiece.bpe.model").write_bytes(b"\x0a\x03abc")
    monkeypatch.setattr(sentsim.backend, "_has_module", lambda name: False)
    with pytest.raises(ModelLoadError, match="pip install sentencepiece") as info:
        BiEncoder.load(model_dir)
    assert "sentencepiece.bpe.model" in str(info.value)


def test_settings_changed_at_load_enter_the_vector_hash(tiny_st_dir: Path, tmp_path: Path) -> None:
    """An index records the vector hash; BiEncoder.load(m, pooling="max") gave the same hash as
    the folder's mean pooling, so an index built with one was searched with the other silently."""
    saved = BiEncoder.load(tiny_st_dir)
    assert saved.changed_settings() == {} and saved.vector_hash() == saved.weights_hash()
    assert BiEncoder.load(tiny_st_dir, pooling="mean", normalize=True).changed_settings() == {}
    hashes = {saved.vector_hash()}
    for kwargs in ({"pooling": "max"}, {"normalize": False}, {"max_seq_length": 16}):
        other = BiEncoder.load(tiny_st_dir, **kwargs)  # type: ignore[arg-type]
        assert other.changed_settings() == {k: v for k, v in kwargs.items()}
        hashes.add(other.vector_hash())
    assert len(hashes) == 4
    # saved, the folder says what the encoder does: its hash is its weights' again
    resaved = BiEncoder.load(BiEncoder.load(tiny_st_dir, pooling="max").save(tmp_path / "max"))
    assert resaved.changed_settings() == {} and resaved.vector_hash() == resaved.weights_hash()


# -- similarity function (config_sentence_transformers.json) --------------------------------------


def _with_similarity(source: Path, out: Path, config: dict[str, object]) -> Path:
    """A copy of a sentence-transformers folder whose config is ``config``."""
    shutil.copytree(source, out)
    (out / "config_sentence_transformers.json").write_text(json.dumps(config))
    return out


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"similarity_fn_name": "dot"}, "dot"),  # TAS-B, msmarco-*-dot-*
        ({"similarity_fn_name": "cosine"}, "cosine"),
        ({"similarity_fn_name": None}, "cosine"),  # as sentence-transformers reads them
        ({"prompts": {}}, "cosine"),  # saved before sentence-transformers wrote the key
    ],
)
def test_the_similarity_function_is_read_as_sentence_transformers_reads_it(
    tiny_st_dir: Path, tmp_path: Path, config: dict[str, object], expected: str
) -> None:
    """A dot-product model was read as a cosine one: its similarity_fn_name was ignored."""
    folder = _with_similarity(tiny_st_dir, tmp_path / "m", config)
    model = BiEncoder.load(folder)
    assert model.similarity_fn_name == expected == st_model(folder).similarity_fn_name


def test_the_similarity_function_survives_save_in_both_libraries(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """save wrote "cosine" whatever the model: a dot-product model came back as a cosine one."""
    transformer = BiEncoder.load(tiny_bert_dir).transformer
    tas_b = BiEncoder(transformer, PoolingMode.CLS, normalize=False, similarity_fn_name="dot")
    saved = BiEncoder.load(tas_b.save(tmp_path / "tas-b"))
    assert saved.similarity_fn_name == "dot" == st_model(saved.source).similarity_fn_name
    assert BiEncoder.load(saved.save(tmp_path / "again")).similarity_fn_name == "dot"
    cosine = BiEncoder(transformer, name="fresh")  # the default
    assert BiEncoder.load(cosine.save(tmp_path / "cosine")).similarity_fn_name == "cosine"


@pytest.mark.parametrize("name", ["euclidean", "manhattan"])
def test_a_distance_similarity_function_is_refused_by_name(
    tiny_st_dir: Path, tmp_path: Path, name: str
) -> None:
    """sentsim's index ranks by inner product: a model trained for a distance is refused, not
    searched by a function it was not trained for."""
    folder = _with_similarity(tiny_st_dir, tmp_path / "m", {"similarity_fn_name": name})
    message = rf"config_sentence_transformers\.json: \"similarity_fn_name\" is '{name}': sentsim"
    with pytest.raises(ModelLoadError, match=message) as info:
        BiEncoder.load(folder)
    assert "by 'cosine' or 'dot' only" in str(info.value)
    with pytest.raises(ValueError, match=f"similarity_fn_name is '{name}': sentsim compares"):
        BiEncoder(BiEncoder.load(tiny_st_dir).transformer, similarity_fn_name=name)


@pytest.mark.parametrize("value", ["maxsim", "Dot", 1, ["cosine"]])
def test_an_unknown_similarity_function_is_refused_listing_the_valid_ones(
    tiny_st_dir: Path, tmp_path: Path, value: object
) -> None:
    folder = _with_similarity(tiny_st_dir, tmp_path / "m", {"similarity_fn_name": value})
    with pytest.raises(ModelLoadError, match=r"expected 'cosine' or 'dot' \(sentence-transformers"):
        BiEncoder.load(folder)
