"""The bi-encoder ("the recruiter"): each text encoded alone, pooled to one vector.

text → tokens → transformer → pooling → (L2 normalize) → vector. Reads and writes the
sentence-transformers directory layout (``modules.json``, ``1_Pooling``, ``2_Normalize``) and
plain Hugging Face encoder directories.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm.auto import tqdm

from sentsim.backend import (
    Features,
    Precision,
    TorchTransformer,
    inference,
    resolve_precision,
)
from sentsim.base import check_count, check_texts, length_order
from sentsim.choices import Retriever
from sentsim.errors import ModelLoadError
from sentsim.models import resolve_model_path, weights_hash
from sentsim.pooling import PoolingMode, pool, pooling_config, read_pooling_config

_ST_TRANSFORMER = "sentence_transformers.models.Transformer"
_ST_POOLING = "sentence_transformers.models.Pooling"
_ST_NORMALIZE = "sentence_transformers.models.Normalize"
PROGRESS_MIN_TEXTS = 2000


class BiEncoder:
    """Encode texts into fixed-size vectors; compare them by cosine.

    >>> model = BiEncoder.load("minilm")  # doctest: +SKIP
    >>> model.encode(["a card payment was declined"]).shape  # doctest: +SKIP
    (1, 384)
    """

    def __init__(
        self,
        transformer: TorchTransformer,
        pooling: PoolingMode = PoolingMode.MEAN,
        *,
        normalize: bool = True,
        name: str = "bi-encoder",
        source: Path | None = None,
        precision: str | Precision | None = None,
    ) -> None:
        self.transformer = transformer
        self.pooling = PoolingMode.parse(pooling)
        self.normalize = normalize
        self.name = name
        self.source = source
        self._hashed: tuple[Path, str] | None = None  # (source, hash of its weights)
        self.precision = precision  # the setter resolves it
        # The first stage search should use with this encoder when none is asked for ("dense",
        # "bm25" or "hybrid"), chosen on a retrieval dev split and stored in sentsim_config.json
        # as "retriever"; None: the caller's default.
        self.retriever: str | None = None

    @property
    def precision(self) -> Precision:
        """What :meth:`encode` computes in, ``fp32`` or ``bf16`` (see :class:`Precision`)."""
        return self._precision

    @precision.setter
    def precision(self, value: str | Precision | None) -> None:
        self._precision = resolve_precision(value, self.transformer.device)

    @classmethod
    def load(
        cls,
        name_or_dir: str | Path,
        *,
        pooling: str | PoolingMode | None = None,
        normalize: bool | None = None,
        max_seq_length: int | None = None,
        device: str | None = None,
        precision: str | Precision | None = None,
    ) -> BiEncoder:
        """Load a built-in name, a sentence-transformers directory or a Hugging Face encoder.

        Explicit ``pooling`` / ``normalize`` / ``max_seq_length`` override what the directory says.
        A plain Hugging Face directory defaults to mean pooling without normalization.
        ``precision`` (``fp32``, ``bf16``, ``auto``; default ``$SENTSIM_PRECISION`` or ``fp32``)
        sets what :meth:`encode` computes in.
        """
        if normalize is not None and not isinstance(normalize, bool):
            raise TypeError(f"normalize must be True, False or None, got {normalize!r}")
        path = resolve_model_path(name_or_dir)
        layout = _read_layout(path)
        transformer = TorchTransformer(
            layout.transformer_dir,
            max_seq_length=layout.max_seq_length if max_seq_length is None else max_seq_length,
            do_lower_case=layout.do_lower_case,
            device=device,
        )
        encoder = cls(
            transformer,
            PoolingMode.parse(pooling) if pooling is not None else layout.pooling,
            normalize=layout.normalize if normalize is None else normalize,
            name=str(name_or_dir),
            source=path,
            precision=precision,
        )
        encoder.retriever = _stored_retriever(path)
        return encoder

    @property
    def dim(self) -> int:
        """Width of the output vectors."""
        return self.transformer.dim

    @property
    def max_seq_length(self) -> int:
        """Texts are truncated to this many tokens (special tokens included)."""
        return self.transformer.max_seq_length

    def weights_hash(self) -> str:
        """Return the hash of the weight files at ``source``, read once per folder and save."""
        if self.source is None:
            raise ModelLoadError("this encoder was not loaded from disk; save it first")
        if self._hashed is None or self._hashed[0] != self.source:
            self._hashed = (self.source, weights_hash(self.source))
        return self._hashed[1]

    def identity(self) -> str:
        """Return ``name@hash-of-weights``: what an index records to refuse a different encoder."""
        return f"{self.name}@{self.weights_hash()}"

    def embed(self, features: Features) -> torch.Tensor:
        """Run the transformer and pooling on tokenized input; differentiable (for training)."""
        tokens = self.transformer.forward(features)
        vectors = pool(tokens, features["attention_mask"], self.pooling)
        return torch.nn.functional.normalize(vectors, dim=-1) if self.normalize else vectors

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return ``(len(texts), dim)`` float32 vectors, in input order.

        Texts are batched longest first (smart batching) and put back in order; an empty string
        encodes as ``[CLS] [SEP]``. ``show_progress=None`` shows a bar from 2,000 texts on.
        """
        items = check_texts(texts)
        check_count(batch_size, "batch_size", least=1)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        order = length_order(items)
        show = len(items) >= PROGRESS_MIN_TEXTS if show_progress is None else show_progress
        starts = range(0, len(items), batch_size)
        was_training = self.transformer.model.training
        self.transformer.model.eval()
        try:
            with inference(self.precision, self.transformer.device):
                for start in tqdm(starts, desc="encode", unit="batch", disable=not show):
                    idx = order[start : start + batch_size]
                    features = self.transformer.tokenize([items[i] for i in idx])
                    out[idx] = self.embed(features).float().cpu().numpy()
        finally:  # also when cut off: a model in training must not stay in eval mode
            self.transformer.model.train(was_training)
        return out

    def save(self, out: str | Path, *, card: str | None = None) -> Path:
        """Write the model in sentence-transformers layout (loadable by both libraries)."""
        root = Path(out)
        self.transformer.save(root)
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": _ST_TRANSFORMER},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": _ST_POOLING},
        ]
        if self.normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": _ST_NORMALIZE})
            (root / "2_Normalize").mkdir(exist_ok=True)
        (root / "1_Pooling").mkdir(exist_ok=True)
        _write_json(root / "1_Pooling" / "config.json", pooling_config(self.pooling, self.dim))
        _write_json(root / "modules.json", modules)
        _write_json(
            root / "config_sentence_transformers.json",
            {"prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"},
        )
        if card is not None:
            (root / "README.md").write_text(card, encoding="utf-8")
        self.source, self._hashed = root, None  # the files there are new
        return root


class _Layout:
    """What a model directory says about its modules."""

    def __init__(self, path: Path) -> None:
        self.transformer_dir = path
        self.pooling = PoolingMode.MEAN
        self.normalize = False
        self.max_seq_length: int | None = None
        self.do_lower_case = False


def _refuse_cross_encoder(path: Path) -> None:
    """Refuse a cross-encoder (a sequence classifier) given where a bi-encoder belongs.

    It would load as a mean-pooled encoder of its backbone and quietly make poor vectors, e.g. an
    index built with ``--model ce-rerank`` by mistake.
    """
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return  # check_model_dir names a missing or broken config when the model loads
    architectures = config.get("architectures") if isinstance(config, dict) else None
    heads = [a for a in architectures or [] if str(a).endswith("ForSequenceClassification")]
    if heads:
        raise ModelLoadError(
            f"{path} is a cross-encoder ({heads[0]}), which scores pairs rather than encoding "
            "texts; load it with CrossEncoder.load (--cross-encoder, --reranker) and give a "
            "bi-encoder here"
        )


def _read_layout(path: Path) -> _Layout:
    layout = _Layout(path)
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        _refuse_cross_encoder(path)
        return layout  # plain Hugging Face encoder: mean pooling, no normalization
    modules = _read_json(modules_file, list, "a list of modules")
    for i, module in enumerate(modules):
        if not isinstance(module, dict):
            raise ModelLoadError(f"{modules_file}: module {i} is not an object: {module!r:.80}")
        kind = module.get("type", "")
        sub = path / module.get("path", "")
        # sentence-transformers < 6 writes ``sentence_transformers.models.Pooling``; 6.x writes
        # e.g. ``sentence_transformers.sentence_transformer.modules.pooling.Pooling``.
        cls_name = kind.rsplit(".", 1)[-1] if kind.startswith("sentence_transformers.") else ""
        if cls_name == "Transformer":
            layout.transformer_dir = sub
            config_file = sub / "sentence_bert_config.json"
            if config_file.is_file():
                config = _read_json(config_file, dict, "an object")
                length = config.get("max_seq_length")
                if length is not None and (
                    isinstance(length, bool) or not isinstance(length, int) or length < 1
                ):
                    raise ModelLoadError(
                        f"{config_file}: max_seq_length {length!r} is not a token count; give a "
                        "whole number ≥ 1 (texts are cut to that many tokens) or delete the key"
                    )
                layout.max_seq_length = length
                layout.do_lower_case = bool(config.get("do_lower_case", False))
        elif cls_name == "Pooling":
            layout.pooling, _ = read_pooling_config(sub / "config.json")
        elif cls_name == "Normalize":
            layout.normalize = True
        else:
            raise ModelLoadError(
                f"{modules_file}: module type {kind!r} is not supported by sentsim; "
                "supported: Transformer, Pooling, Normalize"
            )
    # sentence-transformers 6 saves a cross-encoder with a modules.json of one Transformer
    _refuse_cross_encoder(layout.transformer_dir)
    return layout


#: Where a bi-encoder folder keeps what sentsim chose for it (its first-stage retriever).
SENTSIM_CONFIG = "sentsim_config.json"


def _stored_retriever(path: Path) -> str | None:
    """The retriever a model folder's ``sentsim_config.json`` names, if any (checked)."""
    file = path / SENTSIM_CONFIG
    if not file.is_file():
        return None
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{file} is not valid JSON: {exc}") from None
    retriever = config.get("retriever") if isinstance(config, dict) else None
    if retriever is None:
        return None
    try:
        return Retriever.parse(retriever).value
    except ValueError as exc:
        raise ModelLoadError(f"{file}: {exc}") from None


def _read_json(file: Path, kind: type[list[Any]] | type[dict[str, Any]], what: str) -> Any:
    """The JSON value in ``file``, raising naming it when it is not valid JSON of type ``kind``."""
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        raise ModelLoadError(f"{file} must hold {what}; found {type(value).__name__}")
    return value


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
