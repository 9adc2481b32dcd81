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
