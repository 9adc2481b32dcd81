"""Model folders as published, loaded by sentsim, against a reference run by transformers + torch.

Each test builds a folder in one of the layouts users bring (sentence-transformers bi-encoders,
Hugging Face sequence classifiers, RoBERTa-style encoders) and checks sentsim's vectors or scores
against the same model run directly, with the pooling and scoring math written out here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder
from sentsim.errors import ModelLoadError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# The last text is longer than any tiny model reads: it must be cut, not fail inside the model.
TEXTS = [
    "a man is playing the guitar",
    "dog",
    "my card was declined abroad, why?",
    "Café 東京 🙂 naïve",
    " ".join(["the bank is closed and my card was blocked"] * 12),
]


def hf_tokens(folder: Path, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token vectors ``(batch, seq, dim)`` and attention mask of ``texts``, run by transformers."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    with torch.inference_mode():
        return model(**batch).last_hidden_state, batch["attention_mask"]


def mean_of(tokens: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """``Σ_t m_t h_t / Σ_t m_t``."""
    weights = mask.unsqueeze(-1).float()
    return ((tokens * weights).sum(1) / weights.sum(1)).numpy()


def reference_pool(tokens: torch.Tensor, mask: torch.Tensor, mode: str) -> np.ndarray:
    """sentence-transformers' pooling modes, written out (right padding: [CLS] is token 0)."""
    weights = mask.unsqueeze(-1).float()
    if mode == "cls":
        return tokens[:, 0].numpy()
    if mode == "max":
        return tokens.masked_fill(weights == 0, float("-inf")).amax(1).numpy()
    if mode == "mean_sqrt_len_tokens":
        return ((tokens * weights).sum(1) / weights.sum(1).sqrt()).numpy()
    return mean_of(tokens, mask)


def st_folder(
    out: Path, encoder: Path, modules: list[tuple[str, dict[str, object] | None]]
) -> Path:
    """A sentence-transformers folder as published: ``encoder``'s files at the top, then one
    subfolder per module after the Transformer (``1_Pooling``, ``2_Dense``, ...) with its config.

    ``modules`` are ``(class name, config or None)`` after the Transformer.
    """
    shutil.copytree(encoder, out)
    listed = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}
    ]
    for idx, (kind, config) in enumerate(modules, start=1):
        sub = f"{idx}_{kind}"
        (out / sub).mkdir()
        if config is not None:
            (out / sub / "config.json").write_text(json.dumps(config))
        listed.append(
            {
                "idx": idx,
                "name": str(idx),
                "path": sub,
                "type": f"sentence_transformers.models.{kind}",
            }
        )
    (out / "modules.json").write_text(json.dumps(listed))
    return out


def legacy_pooling(mode: str, dim: int = 32) -> dict[str, object]:
    """A ``1_Pooling/config.json`` as sentence-transformers 2–5 wrote it (all-MiniLM-L6-v2's)."""
    keys = {
        "cls": "pooling_mode_cls_token",
        "mean": "pooling_mode_mean_tokens",
        "max": "pooling_mode_max_tokens",
        "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    }
    config: dict[str, object] = {"word_embedding_dimension": dim}
    config.update({key: name == mode for name, key in keys.items()})
    config.update(pooling_mode_weightedmean_tokens=False, pooling_mode_lasttoken=False)
    return config


# --- sentence-transformers pooling ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["mean", "cls", "max", "mean_sqrt_len_tokens"])
@pytest.mark.parametrize("style", ["legacy", "v6"])
def test_each_pooling_config_gives_the_reference_vectors(
    tiny_bert_dir: Path, tmp_path: Path, mode: str, style: str
) -> None:
    """[Transformer, Pooling] with each pooling, in the config of sentence-transformers 2–5 (one
    ``pooling_mode_*`` key true) and of 6 (``"pooling_mode": NAME``), matches the math to 1e-5.

    mean_sqrt_len_tokens was refused ("sentsim supports pooling_mode mean, cls or max").
    """
    config = (
        legacy_pooling(mode)
        if style == "legacy"
        else {"embedding_dimension": 32, "pooling_mode": mode, "include_prompt": True}
    )
    folder = st_folder(tmp_path / "st", tiny_bert_dir, [("Pooling", config)])
    model = BiEncoder.load(folder, device="cpu")
    assert (model.normalize, model.max_seq_length) == (False, 64)
    tokens, mask = hf_tokens(tiny_bert_dir, TEXTS, 64)
    expected = reference_pool(tokens, mask, mode)
    np.testing.assert_allclose(model.encode(TEXTS), expected, atol=1e-5)
    np.testing.assert_allclose(model.encode(TEXTS, batch_size=1), expected, atol=1e-5)


# --- RoBERTa-style positions ---------------------------------------------------------------------


def test_a_roberta_encoder_reads_two_tokens_less_than_its_position_table(
    tiny_roberta_dir: Path,
) -> None:
    """RoBERTa numbers positions from padding_idx + 1 = 2: of its 66 positions it reads 64 tokens.

    Its tokenizer sets no model_max_length, so the limit came from max_position_embeddings (66) and
    the long text failed inside the model: "index 66 is out of bounds for dimension 1 with size 66".
    """
    model = BiEncoder.load(tiny_roberta_dir, device="cpu")
    assert model.max_seq_length == 64
    tokens, mask = hf_tokens(tiny_roberta_dir, TEXTS, 64)
    assert mask.shape[1] == 64  # the long text was cut to the limit
    np.testing.assert_allclose(model.encode(TEXTS), mean_of(tokens, mask), atol=1e-5)
    with pytest.raises(ValueError, match=r"max length 65: .* reads 1 to 64 tokens"):
        BiEncoder.load(tiny_roberta_dir, max_seq_length=65, device="cpu")


def test_a_roberta_cross_encoder_cuts_pairs_to_what_it_reads(
    tiny_roberta_dir: Path, tmp_path: Path
) -> None:
    """A RoBERTa classifier whose tokenizer allows more tokens than the model reads is cut to 64."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = CrossEncoder.load(tiny_roberta_dir, num_labels=1, device="cpu").save(tmp_path / "ce")
    (folder / "sentsim_config.json").unlink()  # as a folder saved by transformers
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    tokenizer_config["model_max_length"] = 512
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    judge = CrossEncoder.load(folder, device="cpu")
    assert judge.max_length == 64
    pairs = [(TEXTS[0], TEXTS[-1]), (TEXTS[1], TEXTS[2])]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = tokenizer(
        [a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation=True,
        max_length=64, return_tensors="pt",
    )  # fmt: skip
    with torch.inference_mode():
        expected = torch.sigmoid(model(**batch).logits[:, 0]).numpy()
    np.testing.assert_allclose(judge.predict(pairs), expected, atol=1e-6)


# --- a plain Hugging Face encoder ----------------------------------------------------------------


def test_a_plain_encoder_folder_says_what_it_assumed(
    tiny_bert_dir: Path, tiny_st_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without modules.json the pooling and normalization are guessed: the guess is said, once
    per load, and naming only what the caller left unset."""
    with caplog.at_level("WARNING", logger="sentsim.bi_encoder"):
        model = BiEncoder.load(tiny_bert_dir, device="cpu")
    assert (model.pooling, model.normalize) == ("mean", False)
    [record] = caplog.records
    said = record.getMessage()
    assert (
        "has no modules.json: loaded as a plain encoder with mean pooling and no normalization"
        in said
    )
    assert str(tiny_bert_dir) in said and "pooling=" in said
    tokens, mask = hf_tokens(tiny_bert_dir, TEXTS, 64)
    np.testing.assert_allclose(model.encode(TEXTS), mean_of(tokens, mask), atol=1e-5)

    caplog.clear()
    with caplog.at_level("WARNING", logger="sentsim.bi_encoder"):
        BiEncoder.load(tiny_bert_dir, pooling="cls", device="cpu")
    [record] = caplog.records
    assert "with no normalization, as" in record.getMessage()

    caplog.clear()
    with caplog.at_level("WARNING", logger="sentsim.bi_encoder"):
        BiEncoder.load(tiny_bert_dir, pooling="cls", normalize=True, device="cpu")
        BiEncoder.load(tiny_st_dir, device="cpu")
    assert caplog.records == []


def test_a_plain_encoder_folder_ignores_its_model_config_as_sentence_transformers_does(
    tiny_bert_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A folder without modules.json but with config_sentence_transformers.json: sentence-
    transformers 6 does not read the file there (no prompts, cosine), nor does sentsim; a
    "dot" or a prompt in it went unmentioned, and the load now says the file is not read."""
    import json
    import shutil

    from sentence_transformers import SentenceTransformer

    folder = shutil.copytree(tiny_bert_dir, tmp_path / "plain")
    config = {
        "prompts": {"query": "query: "},
        "default_prompt_name": "query",
        "similarity_fn_name": "dot",
    }
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    with caplog.at_level("WARNING", logger="sentsim.bi_encoder"):
        model = BiEncoder.load(folder, pooling="mean", normalize=False, device="cpu")
    reference = SentenceTransformer(str(folder), device="cpu")
    assert (model.similarity_fn_name, reference.similarity_fn_name) == ("cosine", "cosine")
    assert not any(reference.prompts.values()) and reference.default_prompt_name is None
    assert (model.prompts, model.default_prompt_name) == ({}, None)
    np.testing.assert_allclose(model.encode(TEXTS), reference.encode(TEXTS), atol=1e-5)
    [record] = caplog.records
    said = record.getMessage()
    assert said.startswith(f"{folder / 'config_sentence_transformers.json'} is not read: ")
    assert "has no modules.json" in said and "write a modules.json" in said


# --- Dense layers after pooling (LaBSE, distiluse, sentence-t5) ----------------------------------


def dense_weights(folder: Path, out: int, *, bias: bool = True, bin_file: bool = False) -> dict:
    """Random ``linear.weight`` (and ``linear.bias``) for a 32 → ``out`` Dense folder, written as
    ``model.safetensors`` or, as older models ship them, ``pytorch_model.bin``."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(out)
    state = {"linear.weight": torch.randn(out, 32, generator=generator) * 0.3}
    if bias:
        state["linear.bias"] = torch.randn(out, generator=generator) * 0.3
    if bin_file:
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file(state, str(folder / "model.safetensors"))
    return state


def dense_config(out: int, activation: str, *, bias: bool = True) -> dict[str, object]:
    return {
        "in_features": 32,
        "out_features": out,
        "bias": bias,
        "activation_function": f"torch.nn.modules.{activation}",
    }


@pytest.mark.parametrize(
    ("pooling", "activation", "bias", "normalize", "bin_file"),
    [
        ("cls", "activation.Tanh", True, True, False),  # LaBSE
        ("mean", "activation.Tanh", True, False, True),  # distiluse-base-multilingual-cased
        ("mean", "linear.Identity", False, True, False),  # sentence-t5, gtr-t5
    ],
)
def test_a_dense_layer_after_pooling_gives_the_reference_vectors(
    tiny_bert_dir: Path,
    tmp_path: Path,
    pooling: str,
    activation: str,
    bias: bool,
    normalize: bool,
    bin_file: bool,
) -> None:
    """[Transformer, Pooling, Dense, (Normalize)] is ``f(W pool(h) + b)``, normalized: it was
    refused ("module type 'sentence_transformers.models.Dense' is not supported")."""
    modules: list[tuple[str, dict[str, object] | None]] = [
        ("Pooling", legacy_pooling(pooling)),
        ("Dense", dense_config(16, activation, bias=bias)),
    ]
    if normalize:
        modules.append(("Normalize", None))
    folder = st_folder(tmp_path / "st", tiny_bert_dir, modules)
    state = dense_weights(folder / "2_Dense", 16, bias=bias, bin_file=bin_file)
    model = BiEncoder.load(folder, device="cpu")
    assert (model.dim, model.normalize) == (16, normalize)

    tokens, mask = hf_tokens(tiny_bert_dir, TEXTS, 64)
    projected = torch.from_numpy(reference_pool(tokens, mask, pooling)) @ state["linear.weight"].T
    projected = projected + state.get("linear.bias", 0)
    if activation.endswith("Tanh"):
        projected = torch.tanh(projected)
    if normalize:
        projected = projected / projected.norm(dim=-1, keepdim=True)
    np.testing.assert_allclose(model.encode(TEXTS), projected.numpy(), atol=1e-5)


def test_a_saved_dense_model_loads_alike_in_sentsim_and_sentence_transformers(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """BiEncoder.save writes the Dense folder (it was lost with no word): the folder reloads with
    the same vectors, and sentence-transformers reads it as the same model."""
    from sentence_transformers import SentenceTransformer

    modules: list[tuple[str, dict[str, object] | None]] = [
        ("Pooling", legacy_pooling("cls")),
        ("Dense", dense_config(16, "activation.Tanh")),
        ("Normalize", None),
    ]
    folder = st_folder(tmp_path / "st", tiny_bert_dir, modules)
    dense_weights(folder / "2_Dense", 16)
    model = BiEncoder.load(folder, device="cpu")
    saved = model.save(tmp_path / "saved")
    listed = json.loads((saved / "modules.json").read_text())
    assert [m["path"] for m in listed] == ["", "1_Pooling", "2_Dense", "3_Normalize"]
    again = BiEncoder.load(saved, device="cpu")
    np.testing.assert_array_equal(again.encode(TEXTS), model.encode(TEXTS))
    reference = SentenceTransformer(str(saved), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(model.encode(TEXTS), reference, atol=1e-5)


def dense_folder(tmp_path: Path, tiny_bert_dir: Path, config: dict[str, object]) -> Path:
    modules: list[tuple[str, dict[str, object] | None]] = [
        ("Pooling", legacy_pooling("mean")),
        ("Dense", config),
    ]
    folder = st_folder(tmp_path / "st", tiny_bert_dir, modules)
    dense_weights(folder / "2_Dense", 16)
    return folder


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"out_features": "16"}, r"in_features and out_features must be whole numbers ≥ 1"),
        (
            {"activation_function": "mylib.Swish"},
            r"activation_function 'mylib.Swish' is not supported by sentsim; supported: "
            r"torch\.nn\.modules\.activation\.Tanh",
        ),
        ({"use_residual": True}, r"use_residual True is not supported by sentsim"),
        ({"module_input_name": "token_embeddings"}, r"module_input_name 'token_embeddings' is"),
        ({"out_features": 8}, r"the weights hold .* but config\.json describes"),
        ({"in_features": 16}, r"the weights hold .* but config\.json describes"),
    ],
)
def test_a_dense_config_sentsim_cannot_follow_is_refused_naming_the_file(
    tiny_bert_dir: Path, tmp_path: Path, change: dict[str, object], message: str
) -> None:
    folder = dense_folder(
        tmp_path, tiny_bert_dir, {**dense_config(16, "activation.Tanh"), **change}
    )
    with pytest.raises(ModelLoadError, match=message) as info:
        BiEncoder.load(folder, device="cpu")
    assert str(folder / "2_Dense") in str(info.value)


def test_dense_weights_missing_or_unreadable_are_refused(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    folder = dense_folder(tmp_path, tiny_bert_dir, dense_config(16, "activation.Tanh"))
    weights = folder / "2_Dense" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(ModelLoadError, match="cannot be read as weights") as info:
        BiEncoder.load(folder, device="cpu")
    assert str(weights) in str(info.value)
    weights.unlink()
    with pytest.raises(ModelLoadError, match=r"has no weights: expected .*model\.safetensors"):
        BiEncoder.load(folder, device="cpu")
    torch.save([torch.zeros(2)], folder / "2_Dense" / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="is not a state dict of tensors"):
        BiEncoder.load(folder, device="cpu")
    (folder / "2_Dense" / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="dense layer config missing"):
        BiEncoder.load(folder, device="cpu")


def test_a_dense_layer_that_does_not_fit_the_vectors_before_it_is_refused(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """A Dense before Pooling, or one reading another width, would fail inside torch."""
    folder = dense_folder(tmp_path, tiny_bert_dir, dense_config(16, "activation.Tanh"))
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps([modules[0], modules[2], modules[1]]))
    with pytest.raises(ModelLoadError, match=r"module 1 \(Dense\) must come after Pooling"):
        BiEncoder.load(folder, device="cpu")
    (folder / "modules.json").write_text(json.dumps([*modules, modules[2]]))  # 32 → 16, 32 → 16
    with pytest.raises(ModelLoadError, match="st: dense layer 2 reads 32-d vectors, but the layer"):
        BiEncoder.load(folder, device="cpu")


# --- sentence-t5: a T5 encoder -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_t5_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A T5 encoder saved as sentence-t5 ships its Transformer: ``T5EncoderModel`` weights only
    (no decoder), a unigram tokenizer that ends each text with ``</s>``; 2 layers, width 32."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import T5Config, T5EncoderModel, T5TokenizerFast

    out = tmp_path_factory.mktemp("tiny-t5")
    unigram = Tokenizer(models.Unigram())
    unigram.pre_tokenizer = pre_tokenizers.Metaspace()
    unigram.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=200, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    unigram.train_from_iterator([*TEXTS, "a woman plays the piano on the road"] * 5, trainer)
    unigram.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = T5TokenizerFast(
        tokenizer_object=unigram,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_ids=0,
    )
    config = T5Config(
        vocab_size=unigram.get_vocab_size(), d_model=32, d_kv=16, d_ff=37, num_layers=2,
        num_heads=2, decoder_start_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    T5EncoderModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_a_sentence_t5_folder_runs_its_t5_encoder(
    tiny_t5_encoder_dir: Path, tmp_path: Path
) -> None:
    """[T5 encoder, mean, Dense(identity, no bias), Normalize]: AutoModel built the whole T5 and
    refused the folder for lacking the decoder's tensors, which sentence-t5 does not ship."""
    from transformers import AutoTokenizer, T5EncoderModel

    modules: list[tuple[str, dict[str, object] | None]] = [
        ("Pooling", legacy_pooling("mean")),
        ("Dense", dense_config(16, "linear.Identity", bias=False)),
        ("Normalize", None),
    ]
    folder = st_folder(tmp_path / "st", tiny_t5_encoder_dir, modules)
    state = dense_weights(folder / "2_Dense", 16, bias=False)
    model = BiEncoder.load(folder, device="cpu")

    tokenizer = AutoTokenizer.from_pretrained(tiny_t5_encoder_dir)
    encoder = T5EncoderModel.from_pretrained(tiny_t5_encoder_dir).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.inference_mode():
        tokens = encoder(**batch).last_hidden_state
    projected = (
        torch.from_numpy(mean_of(tokens, batch["attention_mask"])) @ state["linear.weight"].T
    )
    expected = torch.nn.functional.normalize(projected, dim=-1).numpy()
    np.testing.assert_allclose(model.encode(TEXTS), expected, atol=1e-5)


# --- sentence_bert_config.json: max_seq_length and do_lower_case ---------------------------------


def test_sentence_bert_config_cuts_and_lowercases_as_the_reference(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """A cased tokenizer with ``{"max_seq_length": 12, "do_lower_case": true}``: texts are
    lower-cased before a tokenizer that would not (its vocabulary is lower-case: "PLAYS" is
    [UNK] otherwise) and cut to 12 tokens."""
    from transformers import BertTokenizerFast

    folder = st_folder(tmp_path / "st", tiny_bert_dir, [("Pooling", legacy_pooling("mean"))])
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    BertTokenizerFast(vocab=str(folder / "vocab.txt"), do_lower_case=False).save_pretrained(folder)
    config = {"max_seq_length": 12, "do_lower_case": True}
    (folder / "sentence_bert_config.json").write_text(json.dumps(config))
    model = BiEncoder.load(folder, device="cpu")
    assert model.max_seq_length == 12

    texts = [*TEXTS, "A Woman PLAYS the Piano"]
    tokens, mask = hf_tokens(folder, [t.lower() for t in texts], 12)
    assert mask.shape[1] == 12
    np.testing.assert_allclose(model.encode(texts), mean_of(tokens, mask), atol=1e-5)
    cased, cased_mask = hf_tokens(folder, texts[-1:], 12)
    assert not np.allclose(model.encode(texts[-1:]), mean_of(cased, cased_mask), atol=1e-3)


# --- cross-encoders: Hugging Face sequence classifiers -------------------------------------------

PAIRS = [
    ("a man is playing the guitar", "a man plays guitar"),
    ("dog", "Café 東京 🙂 naïve"),
    (TEXTS[-1], "my card was declined abroad, why?"),  # longer than the model reads: cut
]
NLI_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}
_ST_CONFIG = "config_sentence_transformers.json"


def classifier_dir(out: Path, kind: str, num_labels: int, vocab: Path) -> Path:
    """A sequence classifier saved by transformers (``save_pretrained``), 2 layers, width 32, its
    head and encoder drawn with std 0.3 so that scores spread; the tokenizer (WordPiece over
    ``vocab``) sets no model_max_length, as many older checkpoints' do not."""
    from transformers import (
        BertTokenizerFast,
        DistilBertConfig,
        DistilBertForSequenceClassification,
        ElectraConfig,
        ElectraForSequenceClassification,
    )

    out.mkdir()
    shutil.copy(vocab, out / "vocab.txt")
    words = len((out / "vocab.txt").read_text(encoding="utf-8").splitlines())
    labels: dict[str, object] = {"num_labels": num_labels}
    if num_labels == 3:
        labels.update(id2label=NLI_LABELS, label2id={v: k for k, v in NLI_LABELS.items()})
    size = {"vocab_size": words, "max_position_embeddings": 64, **labels}
    torch.manual_seed(num_labels)
    if kind == "electra":
        model = ElectraForSequenceClassification(
            ElectraConfig(
                hidden_size=32, embedding_size=16, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=37, **size,
            )
        )  # fmt: skip
    else:
        model = DistilBertForSequenceClassification(
            DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=37, **size)
        )
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.3)
    model.save_pretrained(out)
    BertTokenizerFast(vocab=str(out / "vocab.txt"), do_lower_case=True).save_pretrained(out)
    config = json.loads((out / "tokenizer_config.json").read_text())
    config.pop("model_max_length", None)
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    return out


def reference_scores(folder: Path, pairs: list[tuple[str, str]], max_length: int) -> np.ndarray:
    """transformers' logits, then a sigmoid (one output) or a softmax (classes)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = tokenizer(
        [a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation="longest_first",
        max_length=max_length, return_tensors="pt",
    )  # fmt: skip
    with torch.inference_mode():
        logits = model(**batch).logits
    return (torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else logits.softmax(-1)).numpy()


@pytest.mark.parametrize("num_labels", [1, 3])
@pytest.mark.parametrize("kind", ["electra", "distilbert"])
def test_a_classifier_folder_scores_as_the_reference(
    tiny_bert_dir: Path, tmp_path: Path, kind: str, num_labels: int
) -> None:
    """ELECTRA (token type ids) and DistilBERT (none), one score or NLI classes: sentsim's
    scores are transformers' sigmoid / softmax, pairs cut to the model's 64 positions."""
    folder = classifier_dir(tmp_path / kind, kind, num_labels, tiny_bert_dir / "vocab.txt")
    judge = CrossEncoder.load(folder, device="cpu")
    assert judge.max_length == 64
    expected = reference_scores(folder, PAIRS, 64)
    np.testing.assert_allclose(judge.predict(PAIRS), expected, atol=1e-6)
    np.testing.assert_allclose(judge.predict(PAIRS, batch_size=1), expected, atol=1e-6)
    if num_labels == 3:
        assert judge.labels == list(NLI_LABELS.values())
    else:
        assert len(set(np.round(expected, 3))) == len(PAIRS)  # the pairs are told apart


@pytest.mark.parametrize("style", ["v6", "v4", "v2"])
def test_a_folder_saved_by_sentence_transformers_cross_encoder_scores_as_it_does(
    tiny_bert_dir: Path, tmp_path: Path, style: str
) -> None:
    """Saved by sentence-transformers' CrossEncoder: 6 writes modules.json (one Transformer),
    sentence_bert_config.json and the activation in config_sentence_transformers.json; 4–5 put
    ``"sentence_transformers": {"activation_fn": ...}`` in config.json, 2–3
    ``sbert_ce_default_activation_function``. sentsim reads the classifier and gives
    sentence-transformers' sigmoid scores."""
    from sentence_transformers import CrossEncoder as StCrossEncoder

    base = classifier_dir(tmp_path / "base", "electra", 1, tiny_bert_dir / "vocab.txt")
    StCrossEncoder(str(base), device="cpu").save(str(tmp_path / "st"))
    folder = tmp_path / "st"
    if style != "v6":
        for name in ("modules.json", "sentence_bert_config.json", _ST_CONFIG):
            (folder / name).unlink()
        config = json.loads((folder / "config.json").read_text())
        sigmoid = "torch.nn.modules.activation.Sigmoid"
        if style == "v4":
            config["sentence_transformers"] = {"activation_fn": sigmoid, "version": "4.1.0"}
        else:
            config["sbert_ce_default_activation_function"] = sigmoid
        (folder / "config.json").write_text(json.dumps(config))
    reference = StCrossEncoder(str(folder), device="cpu")
    judge = CrossEncoder.load(folder, device="cpu")
    assert judge.max_length == reference.max_seq_length == 64
    expected = reference.predict(PAIRS, convert_to_numpy=True)
    np.testing.assert_allclose(judge.predict(PAIRS), expected, atol=1e-6)


def test_a_cross_encoder_asking_for_raw_logits_is_scored_by_their_sigmoid(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """ms-marco-MiniLM and kin name the identity as their activation: sentence-transformers then
    returns raw logits, sentsim (whose scores are 0–1 everywhere) their sigmoid: the same order."""
    from sentence_transformers import CrossEncoder as StCrossEncoder

    base = classifier_dir(tmp_path / "base", "distilbert", 1, tiny_bert_dir / "vocab.txt")
    identity = torch.nn.Identity()
    StCrossEncoder(str(base), device="cpu", activation_fn=identity).save(str(tmp_path / "st"))
    reference = StCrossEncoder(str(tmp_path / "st"), device="cpu")
    assert isinstance(reference.activation_fn, torch.nn.Identity)
    logits = reference.predict(PAIRS, convert_to_tensor=True)
    judge = CrossEncoder.load(tmp_path / "st", device="cpu")
    np.testing.assert_allclose(judge.predict(PAIRS), torch.sigmoid(logits).numpy(), atol=1e-6)


# --- the command line on these folders -----------------------------------------------------------

STS_ROWS = [
    ("a man is playing the guitar", "a man plays guitar", 4.8),
    ("dog", "a cat", 1.0),
    ("my card was declined abroad", "my payment was declined", 3.9),
    ("the bank is closed", "where is the beach", 0.2),
    ("how do i top up my card", "top up with cash", 3.1),
]


def sts_file(tmp_path: Path) -> Path:
    path = tmp_path / "sts.csv"
    rows = ["sentence1,sentence2,score", *(f"{a},{b},{s}" for a, b, s in STS_ROWS)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def pearson(predicted: np.ndarray) -> float:
    return float(np.corrcoef(predicted, [s for _, _, s in STS_ROWS])[0, 1] * 100)


def test_the_commands_encode_and_compare_with_a_dense_folder(
    tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sentsim encode``, ``similarity`` and ``eval sts --model`` on a distiluse-style folder
    (mean, Dense tanh, here normalized) give the reference vectors, cosine and correlation."""
    from sentsim.cli import main

    modules: list[tuple[str, dict[str, object] | None]] = [
        ("Pooling", legacy_pooling("mean")),
        ("Dense", dense_config(16, "activation.Tanh")),
        ("Normalize", None),
    ]
    folder = st_folder(tmp_path / "distiluse", tiny_bert_dir, modules)
    state = dense_weights(folder / "2_Dense", 16)

    def reference(texts: list[str]) -> np.ndarray:
        pooled = torch.from_numpy(mean_of(*hf_tokens(tiny_bert_dir, texts, 64)))
        projected = torch.tanh(pooled @ state["linear.weight"].T + state["linear.bias"])
        return torch.nn.functional.normalize(projected, dim=-1).numpy()

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "vectors.npy"
    assert main(["encode", str(texts), "--model", str(folder), "--out", str(out)]) == 0
    np.testing.assert_allclose(np.load(out), reference(TEXTS), atol=1e-5)

    capsys.readouterr()
    assert main(["similarity", "a dog", "the cat is on the road", "--model", str(folder)]) == 0
    a, b = reference(["a dog", "the cat is on the road"])
    assert capsys.readouterr().out.strip() == f"{float(a @ b):.4f}"

    argv = ["eval", "sts", "--data", str(sts_file(tmp_path)), "--model", str(folder), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    left, right = reference([a for a, _, _ in STS_ROWS]), reference([b for _, b, _ in STS_ROWS])
    cosines = (left * right).sum(1)
    assert np.ptp(cosines) > 0.05  # else float noise decides the correlation
    assert result["pearson"] == pytest.approx(pearson(cosines), abs=0.01)


def test_the_commands_score_with_a_roberta_classifier(
    tiny_roberta_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``similarity`` and ``eval sts --cross-encoder`` on a RoBERTa classifier (padding id 1, no
    token types, 64 of 66 positions): the mean of both orders' reference scores."""
    from sentsim.cli import main

    torch.manual_seed(3)
    judge = CrossEncoder.load(tiny_roberta_dir, num_labels=1, device="cpu")
    with torch.no_grad():
        for param in judge.model.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.3)
    folder = judge.save(tmp_path / "ce")

    def reference(pairs: list[tuple[str, str]]) -> np.ndarray:
        swapped = [(b, a) for a, b in pairs]
        return (reference_scores(folder, pairs, 64) + reference_scores(folder, swapped, 64)) / 2

    pair = ("a dog", TEXTS[-1])
    assert main(["similarity", *pair, "--cross-encoder", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == f"{float(reference([pair])[0]):.4f}"

    argv = ["eval", "sts", "--data", str(sts_file(tmp_path)), "--cross-encoder", str(folder)]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = reference([(a, b) for a, b, _ in STS_ROWS])
    assert np.ptp(expected) > 0.05  # else float noise decides the correlation
    assert result["pearson"] == pytest.approx(pearson(expected), abs=0.01)
