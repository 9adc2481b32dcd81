"""Shared fixtures: a tiny BERT (and RoBERTa, decoder) built offline in seconds, and the data-root
switch."""

from __future__ import annotations

import string
from pathlib import Path

import pytest

from sentsim.settings import data_root

WORDS = (  # noqa: SIM905 - a word list reads better as one string
    "a an the is are was be to of and in on for with my your card cards bank money account "
    "transfer transfers payment payments pay paid cash atm pin top up topup balance fee fees "
    "exchange rate currency euro dollar pound abroad travel country declined decline refund "
    "lost stolen freeze block blocked new order arrive arrived arrival delivery when where why "
    "how what can i you we it not no yes working work works isn't doesn't don't help please "
    "dog cat man woman girl boy play plays playing guitar piano hair soccer beach eat eating "
    "food car road house a b c d e f g h i j k l m n o p q r s t u v w x y z"
).split()


def _vocab() -> list[str]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = [f"##{c}" for c in string.ascii_lowercase + string.digits]
    punct = list(".,!?'-:;()\"") + list(string.digits)
    return special + list(dict.fromkeys(WORDS + punct + pieces))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain Hugging Face BERT directory: 2 layers, width 32, a ~190-token vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = tmp_path_factory.mktemp("tiny-bert")
    (out / "vocab.txt").write_text("\n".join(_vocab()) + "\n", encoding="utf-8")
    # transformers 5 takes ``vocab=``; ``vocab_file=`` is ignored and leaves only 5 special tokens.
    tokenizer = BertTokenizerFast(vocab=str(out / "vocab.txt"), do_lower_case=True)
    assert len(tokenizer) == len(_vocab()), "tiny tokenizer lost its vocabulary"
    config = BertConfig(
        vocab_size=len(_vocab()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = BertModel(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain RoBERTa directory whose tokenizer is only ``vocab.json`` + ``merges.txt``.

    The layout of roberta-base and many checkpoints saved before fast tokenizers: byte-level BPE
    (300 tokens, trained here on a few sentences), 2 layers, width 32.
    """
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel

    out = tmp_path_factory.mktemp("tiny-roberta")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        [" ".join(WORDS)] * 5,
        vocab_size=300,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    bpe.save_model(str(out))
    config = RobertaConfig(
        vocab_size=300,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=66,  # RoBERTa's positions start after the padding index
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    RobertaModel(config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_decoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain decoder directory as gte-Qwen2-style embedders ship: a causal Qwen2 (2 layers,
    width 32) whose byte-level BPE tokenizer (300 tokens) pads on the left and ends each text
    with ``<|endoftext|>``, the token their last-token pooling reads."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2Model

    out = tmp_path_factory.mktemp("tiny-decoder")
    end = "<|endoftext|>"
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=[end], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator([" ".join(WORDS)] * 5, trainer)
    end_id = bpe.token_to_id(end)
    bpe.post_processor = processors.TemplateProcessing(
        single=f"$A {end}", special_tokens=[(end, end_id)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=end, pad_token=end, padding_side="left"
    )
    tokenizer.save_pretrained(out)
    config = Qwen2Config(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=48,
        max_position_embeddings=64,
        bos_token_id=end_id,
        eos_token_id=end_id,
        pad_token_id=end_id,
    )
    torch.manual_seed(0)
    Qwen2Model(config).save_pretrained(out)
    return out


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the data setting at an empty folder."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("SENTSIM_DATA", str(empty))
    return empty


def have_data(*parts: str) -> bool:
    """Return whether a file under the shared data root exists."""
    return data_root().joinpath(*parts).exists()


@pytest.fixture(scope="session")
def tiny_st_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT saved by ``BiEncoder.save``: sentence-transformers layout, mean + normalize."""
    from sentsim.bi_encoder import BiEncoder

    out = tmp_path_factory.mktemp("tiny-st") / "model"
    BiEncoder.load(tiny_bert_dir, normalize=True, device="cpu").save(out)
    return out


def _published_without_normalize(source: Path, out: Path, config: dict[str, object]) -> Path:
    """``source``'s encoder as a published sentence-transformers folder of Transformer and mean
    Pooling, no Normalize, with ``config`` as its ``config_sentence_transformers.json``."""
    import json
    import shutil

    shutil.copytree(source, out)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (out / "modules.json").write_text(json.dumps(modules))
    (out / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}
    (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (out / "config_sentence_transformers.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="session")
def tiny_paraphrase_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cosine model without a Normalize module, as paraphrase-* and older nli-* models are
    published: mean pooling, and a config saved before ``similarity_fn_name`` was written."""
    config = {"__version__": {"sentence_transformers": "2.0.0"}}
    out = tmp_path_factory.mktemp("tiny-paraphrase") / "model"
    return _published_without_normalize(tiny_bert_dir, out, config)


@pytest.fixture(scope="session")
def tiny_dot_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dot-product model as msmarco-distilbert-dot-v5 is published: mean pooling, no Normalize,
    ``"similarity_fn_name": "dot"``."""
    config = {"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "dot"}
    out = tmp_path_factory.mktemp("tiny-dot") / "model"
    return _published_without_normalize(tiny_bert_dir, out, config)


@pytest.fixture(scope="session")
def tiny_ce_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT with one scoring output, saved by ``CrossEncoder.save``.

    Every weight matrix is re-drawn with std 0.3 so that scores spread over 0–1 (with BERT's
    0.02-std initialization every pair scores 0.47 ± 0.002, too flat for tests to tell apart).
    """
    import torch

    from sentsim.cross_encoder import CrossEncoder

    out = tmp_path_factory.mktemp("tiny-ce") / "model"
    torch.manual_seed(1)
    judge = CrossEncoder.load(tiny_bert_dir, num_labels=1, device="cpu")
    with torch.no_grad():
        for param in judge.model.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.3)
    judge.save(out)
    return out


@pytest.fixture(autouse=True)
def fp32_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests compute in float32 whatever $SENTSIM_PRECISION the developer's shell exports."""
    monkeypatch.delenv("SENTSIM_PRECISION", raising=False)


@pytest.fixture(scope="module")
def one_torch_thread(request: pytest.FixtureRequest) -> None:
    """Run torch on one thread for a module, then restore the previous count.

    Tiny models gain nothing from intra-op threads, and on a busy 2-core machine two threads
    contend: a tiny forward pass takes ~90 ms instead of ~1.5 ms.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    request.addfinalizer(lambda: torch.set_num_threads(before))
