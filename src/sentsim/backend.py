"""The transformer step behind a small seam: texts → token ids → token vectors.

:class:`TorchTransformer` is the torch backend. Callers use only ``tokenize``, ``forward`` and
``save``; a faster inference backend (ONNX Runtime) can stand beside it with the same three methods.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from sentsim.choices import Precision
from sentsim.errors import ModelLoadError, SentsimError
from sentsim.settings import PRECISION_ENV

Features = dict[str, torch.Tensor]


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load-time chatter (sharding notes, progress bars), then restore."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def default_device() -> str:
    """Return ``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str | None) -> str:
    """``device``, or the default; a device torch cannot use here is one clear error.

    Without this, ``device="cuda"`` on a machine without CUDA ended in torch's
    ``AssertionError: Torch not compiled with CUDA enabled`` from inside the model's ``.to``.
    """
    if device is None:
        return default_device()
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device ({exc}); try 'cpu'") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r}, but torch sees no CUDA GPU here; use 'cpu'")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r}, but this machine has no MPS device; use 'cpu'")
    return str(device)


def default_precision() -> Precision:
    """``$SENTSIM_PRECISION`` (fp32, bf16, auto or int8), else fp32."""
    value = os.environ.get(PRECISION_ENV, "").strip().lower() or Precision.FP32.value
    try:
        return Precision(value)
    except ValueError:
        raise ModelLoadError(
            f"{PRECISION_ENV}={value!r} is not a precision; use fp32, bf16, auto or int8"
        ) from None


def native_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware."""
    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        from sentsim.machine import cpu_flags

        return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})
    return False


def requested_precision(precision: str | Precision | None) -> Precision:
    """``precision`` as a :class:`Precision` (``auto`` left as it is); ``None``: the default."""
    if precision is None:
        return default_precision()
    try:
        return Precision(str(precision).strip().lower())
    except ValueError:
        raise ValueError(f"precision {precision!r}: use fp32, bf16, auto or int8") from None


def model_device(device: str | None, precision: str | Precision | None) -> str:
    """Where a model computing in ``precision`` loads: ``device`` (see :func:`check_device`).

    None is :func:`default_device`, except for ``int8``, which runs on the CPU only: beside a GPU
    an int8 model loaded there and was then refused, and the command line names no device. A
    ``precision`` the device cannot run is refused here, before the weights are read.
    """
    if device is None and requested_precision(precision) == Precision.INT8:
        target = "cpu"
    else:
        target = check_device(device)
    resolve_precision(precision, target)
    return target


def resolve_precision(precision: str | Precision | None, device: str | torch.device) -> Precision:
    """Return ``fp32``, ``bf16`` or ``int8`` for ``device``.

    ``None`` takes :func:`default_precision`; ``auto`` takes ``bf16`` where :func:`native_bf16`.
    ``int8`` on a device other than the CPU is a ``ValueError`` (torch's dynamic quantization
    runs on the CPU only).
    """
    chosen = requested_precision(precision)
    if chosen == Precision.AUTO:
        return Precision.BF16 if native_bf16(device) else Precision.FP32
    if chosen == Precision.INT8 and torch.device(device).type != "cpu":
        raise ValueError(
            f"precision int8 runs on the CPU only, and this model is on {device}: "
            "use bf16 there, or load the model with device='cpu'"
        )
    return chosen


def autocast(precision: Precision, device: str | torch.device) -> AbstractContextManager[object]:
    """bfloat16 autocast on ``device`` for ``bf16``; nothing for ``fp32``."""
    if precision == Precision.BF16:
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return nullcontext()


@contextmanager
def inference(precision: Precision, device: str | torch.device) -> Iterator[None]:
    """The context a forward pass for inference runs in.

    ``fp32``: ``torch.inference_mode()``. ``bf16``: ``torch.no_grad()`` and bfloat16 autocast — not
    inference mode, under which autocast casts every weight again for every batch instead of once
    per call (measured: ~10% slower on MiniLM).
    """
    if precision != Precision.BF16:
        with torch.inference_mode():
            yield
        return
    with torch.no_grad(), autocast(precision, device):
        yield


# A network's int8 copy, kept while the network lives: (what its weights were, the copy).
_WeightsState = tuple[tuple[int, int], ...]
_INT8_COPIES: weakref.WeakKeyDictionary[torch.nn.Module, tuple[_WeightsState, torch.nn.Module]]
_INT8_COPIES = weakref.WeakKeyDictionary()
# Held while a copy is looked up and made: threads that ask for one at once (a thread pool sharing
# a model) each made their own, the model's size again in memory per thread, all but one dropped.
_INT8_BUILDING = threading.Lock()


def _weights_state(network: torch.nn.Module) -> _WeightsState:
    """Each parameter's memory address and version: what tells whether its int8 copy is current.

    An in-place change (an optimizer step, ``load_state_dict``) bumps the version; weights replaced
    by new tensors (``load_state_dict(assign=True)``, ``param.data = ...``) come with versions of
    their own, 0 as freshly loaded weights have, but live at another address.
    """
    return tuple((p.data_ptr(), p._version) for p in network.parameters())


def int8_network(network: torch.nn.Module) -> torch.nn.Module:
    """An inference copy of ``network`` whose linear layers multiply in int8; cached.

    torch's dynamic quantization: each weight matrix is stored in 8 bits with one scale per
    output channel, and each batch's activations are scaled to 8 bits as they come. The layers
    that narrow (more inputs than outputs: a feed-forward block's down-projection, a scoring head)
    stay float32: their inputs carry the few large activations that one 8-bit scale flattens,
    which cost the `ce-sts` cross-encoder 0.7 Spearman on STS-B dev where keeping them float32
    costs 0.15 (README, *Model speed*). ``network`` itself is not changed; its copy is made
    again when its weights change (training, ``load_state_dict``, new tensors put in their place;
    not an in-place change made through ``param.data``, which torch does not count).
    """
    with _INT8_BUILDING:
        state = _weights_state(network)
        cached = _INT8_COPIES.get(network)
        if cached is not None and cached[0] == state:
            return cached[1]
        quantized = _quantized_copy(network)
        _INT8_COPIES[network] = (state, quantized)
        return quantized


def _quantized_copy(network: torch.nn.Module) -> torch.nn.Module:
    """A new copy of ``network`` with its widening and square linear layers in dynamic int8."""
    import copy

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    spec = {
        name: per_channel_dynamic_qconfig
        for name, module in network.named_modules()
        if isinstance(module, torch.nn.Linear) and module.in_features <= module.out_features
    }
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        # in place on our copy: otherwise quantize_dynamic copies it again, a third float model
        # in memory while the copy is made
        return quantize_dynamic(copy.deepcopy(network).eval(), spec, inplace=True)


def drop_int8(network: torch.nn.Module) -> None:
    """Forget ``network``'s int8 copy, if any: a model that leaves int8 frees that memory."""
    with _INT8_BUILDING:
        _INT8_COPIES.pop(network, None)


def runnable(network: torch.nn.Module, precision: Precision) -> torch.nn.Module:
    """The network an inference pass in ``precision`` runs: ``network``, or its int8 copy."""
    return int8_network(network) if precision == Precision.INT8 else network


def readable_tokens(model: torch.nn.Module) -> int:
    """The most tokens ``model`` reads: its position embeddings, less those it never uses.

    RoBERTa, XLM-R, MPNet and their kin number positions from ``padding_idx + 1`` (2 for
    roberta-base), so of ``max_position_embeddings`` = 514 only 512 hold a token: a 514-token
    input failed inside the model ("index 514 is out of bounds for dimension 1 with size 514").
    Such a model is told apart by an ``nn.Embedding`` of positions with a ``padding_idx``.
    """
    config = getattr(model, "config", None)
    limit = int(getattr(config, "max_position_embeddings", 512))
    for module in model.modules():
        table = getattr(module, "position_embeddings", None)
        if isinstance(table, torch.nn.Embedding) and isinstance(table.padding_idx, int):
            return min(limit, table.num_embeddings - (table.padding_idx + 1))
    return limit


def check_length(length: int | None, limit: int, model: object) -> int | None:
    """``length`` if the model can read that many tokens (see :func:`readable_tokens`), else raise.

    A longer limit would pass the tokenizer and then fail deep inside the model on the first
    long text ("the size of tensor a (609) must match ... (512)").
    """
    if length is not None and not 1 <= length <= limit:
        raise ValueError(
            f"max length {length}: {model} reads 1 to {limit} tokens (its position embeddings)"
        )
    return length


_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
#: Files a tokenizer loads from: a fast tokenizer's one file, else a slow tokenizer's vocabulary
#: (WordPiece, byte-level BPE with its merges.txt, or a sentencepiece model).
_SENTENCEPIECE = ("sentencepiece.bpe.model", "spiece.model", "tokenizer.model", "spm.model")
_TOKENIZERS = ("tokenizer.json", "vocab.txt", "vocab.json", *_SENTENCEPIECE)


def _has_module(name: str) -> bool:
    """Whether ``name`` can be imported here (without importing it)."""
    return importlib.util.find_spec(name) is not None


def check_model_dir(path: Path) -> None:
    """Raise naming the file that a Hugging Face model directory lacks."""
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{path} is not a model directory: expected {path / 'config.json'} "
            "(a Hugging Face or sentence-transformers model)"
        )
    found = [f for f in _TOKENIZERS if (path / f).is_file()]
    if not found:
        raise ModelLoadError(
            f"{path} has no tokenizer: expected tokenizer.json, or the files of a slow tokenizer "
            f"({', '.join(_TOKENIZERS[1:])}); save the model's tokenizer there (save_pretrained)"
        )
    if set(found) <= set(_SENTENCEPIECE) and not _has_module("sentencepiece"):
        raise ModelLoadError(
            f"{path} keeps its tokenizer only in {found[0]}, which transformers reads with the "
            "sentencepiece package: pip install sentencepiece (or save the tokenizer as "
            "tokenizer.json where it is installed)"
        )
    has_weights = any((path / f).is_file() for f in _WEIGHTS)
    if (path / "embeddings.safetensors").is_file() and not has_weights:
        raise ModelLoadError(
            f"{path} is a static embedding model (sentsim distill-static), not a transformer: "
            f"evaluate it with `sentsim eval sts --model {path}` (eval pairs and compare sts "
            "take it too), or load it in Python with sentsim.baselines.static.StaticEncoder.load"
        )
    if not has_weights:
        raise ModelLoadError(f"{path} has no weights: expected model.safetensors")


@contextmanager
def reading_model(path: Path) -> Iterator[None]:
    """Turn a model file transformers cannot read into one :class:`ModelLoadError` naming ``path``.

    A download or copy cut short, or a file edited by hand, otherwise ends in an error from deep
    inside safetensors, torch, json or transformers (a ``SafetensorError`` about headers, a bare
    ``JSONDecodeError``, ``KeyError: 'added_tokens'``, an ``UnpicklingError`` advising
    ``weights_only=False``), which the CLI shows as a traceback.
    """
    from safetensors import SafetensorError

    try:
        yield
    except SentsimError:
        raise
    except (SafetensorError, pickle.UnpicklingError, EOFError) as exc:
        weights = next((f for f in _WEIGHTS if (path / f).is_file()), "the weights file")
        raise ModelLoadError(
            f"{path}: {weights} cannot be read as weights (cut short, or not a safetensors or "
            "PyTorch state-dict file); copy or download it again"
        ) from exc
    except json.JSONDecodeError as exc:
        broken = next((f.name for f in sorted(path.glob("*.json")) if not _is_json(f)), "?")
        raise ModelLoadError(
            f"{path}: {broken} is not valid JSON ({exc}); copy or download it again"
        ) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(
            f"{path}: transformers cannot read this model folder ({type(exc).__name__}: {cause}); "
            "a file there may be cut short (copy or download it again), edited by hand, or of a "
            "kind this transformers version does not know"
        ) from exc


def _is_json(file: Path) -> bool:
    try:
        json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def load_pretrained(
    auto: Any, path: Path, *, new: Callable[[Any, str], bool] | None = None, **kwargs: Any
) -> Any:
    """``auto.from_pretrained(path)`` in float32, refusing weights that do not fill the model.

    transformers draws every tensor the weights file lacks, or holds in another shape, at random
    and only logs it — which :func:`quiet_transformers` silences — so a judge without its head or
    an encoder whose tensors are named otherwise gave scores and vectors that changed at every
    load. ``new(model, key)`` says which tensors may be drawn (a head started for training).
    """
    model, info = auto.from_pretrained(
        path,
        local_files_only=True,
        dtype=torch.float32,
        output_loading_info=True,
        ignore_mismatched_sizes=True,  # reported below, with the shapes
        **kwargs,
    )
    weights = next((f for f in _WEIGHTS if (path / f).is_file()), "the weights file")
    drawn = new or (lambda model, key: False)
    mismatched = sorted(m for m in info["mismatched_keys"] if not drawn(model, m[0]))
    if mismatched:
        key, stored, wanted = mismatched[0]
        raise ModelLoadError(
            f"{path}: {key} is {tuple(stored)} in {weights} but {tuple(wanted)} in the model its "
            f"config.json describes ({len(mismatched)} tensor(s) differ); make config.json match "
            "the weights (a scoring head's size is its num_labels, or the size of id2label)"
        )
    missing = sorted(k for k in info["missing_keys"] if not drawn(model, k))
    if missing:
        extra = sorted(info["unexpected_keys"])
        held = f"; it holds tensors the model has no place for, e.g. {extra[0]}" if extra else ""
        raise ModelLoadError(
            f"{path}: {weights} lacks {len(missing)} of the {len(model.state_dict())} tensors of "
            f"the model its config.json describes (e.g. {', '.join(missing[:3])}), which would be "
            f"drawn at random{held}. Save the whole model with save_pretrained (or sentsim's save)"
        )
    return model


def _encoder_class(model_dir: Path) -> Any:
    """The transformers class whose token vectors a bi-encoder pools.

    ``AutoModel``, except where transformers names a text encoder of its own for the model type:
    T5 and mT5 (sentence-t5, GTR), whose folders hold the encoder alone. ``AutoModel`` built the
    whole encoder-decoder, which wants the decoder's tensors (absent) and decoder inputs.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForTextEncoding
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES,
        MODEL_MAPPING_NAMES,
    )

    kind = AutoConfig.from_pretrained(model_dir, local_files_only=True).model_type
    encoder = MODEL_FOR_TEXT_ENCODING_MAPPING_NAMES.get(kind)
    return (
        AutoModelForTextEncoding
        if encoder not in (None, MODEL_MAPPING_NAMES.get(kind))
        else AutoModel
    )


class TorchTransformer:
    """A Hugging Face encoder (``AutoModel``) with its tokenizer, run by torch."""

    def __init__(
        self,
        model_dir: Path,
        *,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        device: str | None = None,
    ) -> None:
        from transformers import AutoTokenizer

        check_model_dir(model_dir)
        self.device = check_device(device)
        with quiet_transformers(), reading_model(model_dir):
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            # The pooler is never read: pooling takes the token vectors.
            self.model = load_pretrained(
                _encoder_class(model_dir),
                model_dir,
                new=lambda model, key: key.startswith("pooler."),
            ).to(self.device)
        self.model.eval()
        limit = readable_tokens(self.model)
        #: The most tokens the model reads (its position embeddings, see readable_tokens).
        self.max_positions = limit
        tok_limit = int(getattr(self.tokenizer, "model_max_length", limit) or limit)
        self.default_max_seq_length = min(limit, tok_limit)  # what a folder without one gets
        self.max_seq_length = check_length(max_seq_length, limit, model_dir) or min(
            limit, tok_limit
        )
        self.do_lower_case = do_lower_case

    @property
    def dim(self) -> int:
        """Width of the token vectors."""
        return int(self.model.config.hidden_size)

    def tokenize(self, texts: Sequence[str]) -> Features:
        """Tokenize texts (stripped, lower-cased if configured), truncated to ``max_seq_length``."""
        prepared = [t.strip() for t in texts]
        if self.do_lower_case:
            prepared = [t.lower() for t in prepared]
        encoded = self.tokenizer(
            prepared,
            padding=True,
            truncation="longest_first",
            max_length=self.max_seq_length,
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in encoded.items()}

    def forward(self, features: Features, network: torch.nn.Module | None = None) -> torch.Tensor:
        """Return the last hidden states, ``(batch, seq, dim)``.

        ``network``: what runs instead of the model (its int8 copy, from :func:`runnable`).
        """
        return (self.model if network is None else network)(**features).last_hidden_state

    def save(self, out: Path) -> None:
        """Write weights (safetensors), config, tokenizer and sentence-bert config to ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            self.model.save_pretrained(out)
            self.tokenizer.save_pretrained(out)
        config = {"max_seq_length": self.max_seq_length, "do_lower_case": self.do_lower_case}
        (out / "sentence_bert_config.json").write_text(json.dumps(config, indent=2) + "\n")
