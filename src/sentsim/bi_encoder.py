"""The bi-encoder ("the recruiter"): each text encoded alone, pooled to one vector.

text → tokens → transformer → pooling → (dense layers) → (L2 normalize) → vector. Reads and
writes the sentence-transformers directory layout (``modules.json``, ``1_Pooling``, ``2_Dense``,
``2_Normalize``) and plain Hugging Face encoder directories.

Prompts (sentence-transformers' ``config_sentence_transformers.json``): models such as E5, BGE or
nomic-embed are trained with a text put before each query and/or passage (``"query: "``,
``"passage: "``); without it their retrieval quality drops. :meth:`BiEncoder.encode_query` and
:meth:`BiEncoder.encode_document` add the model's ``query`` and ``document`` (or ``passage``,
``corpus``) prompts, as sentence-transformers' methods of the same names do, and search uses them;
:meth:`BiEncoder.encode` adds the ``default_prompt_name``'s prompt, if the model names one.

The same file's ``similarity_fn_name`` says how the model's vectors are compared: ``cosine`` (also
when the key is missing or null, as sentence-transformers reads it) or ``dot`` (dot-product models
such as TAS-B, ``msmarco-*-dot-*``), kept as :attr:`BiEncoder.similarity_fn_name`. ``euclidean``
and ``manhattan`` are refused: sentsim's index ranks by inner product, which a distance is not.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm.auto import tqdm

from sentsim.atomic import staged_folder
from sentsim.backend import (
    Features,
    Precision,
    TorchTransformer,
    drop_int8,
    inference,
    model_device,
    resolve_precision,
    runnable,
)
from sentsim.base import check_count, check_text, check_texts, length_order
from sentsim.choices import Retriever
from sentsim.dense import Dense
from sentsim.errors import ModelLoadError
from sentsim.models import read_model_json, resolve_model_path, weights_hash
from sentsim.pooling import (
    Pooling,
    PoolingMode,
    parse_pooling,
    pool,
    pooled_width,
    pooling_config,
    pooling_name,
    read_pooling_config,
)
from sentsim.similarity import Metric

_ST_TRANSFORMER = "sentence_transformers.models.Transformer"
_ST_POOLING = "sentence_transformers.models.Pooling"
_ST_NORMALIZE = "sentence_transformers.models.Normalize"
_ST_DENSE = "sentence_transformers.models.Dense"
_ST_CONFIG = "config_sentence_transformers.json"
_ST_LENGTH_FILE = "sentence_bert_config.json"  # the Transformer module's max_seq_length
PROGRESS_MIN_TEXTS = 2000
log = logging.getLogger(__name__)
#: Prompt names a document is encoded with, first found wins (sentence-transformers' order).
DOCUMENT_PROMPTS = ("document", "passage", "corpus")
#: The similarity functions (sentence-transformers' ``similarity_fn_name``) a bi-encoder may have.
SIMILARITY_FUNCTIONS = (Metric.COSINE, Metric.DOT)


class BiEncoder:
    """Encode texts into fixed-size vectors, compared by :attr:`similarity_fn_name`.

    >>> model = BiEncoder.load("minilm")  # doctest: +SKIP
    >>> model.encode(["a card payment was declined"]).shape  # doctest: +SKIP
    (1, 384)
    """

    def __init__(
        self,
        transformer: TorchTransformer,
        pooling: str | Pooling | Sequence[str] = PoolingMode.MEAN,
        *,
        normalize: bool = True,
        name: str = "bi-encoder",
        source: Path | None = None,
        precision: str | Precision | None = None,
        prompts: Mapping[str, str] | None = None,
        default_prompt_name: str | None = None,
        include_prompt: bool = True,
        dense: Sequence[Dense] = (),
        similarity_fn_name: str | Metric = Metric.COSINE,
    ) -> None:
        self.transformer = transformer
        # one mode, or a tuple of modes whose vectors are concatenated (see sentsim.pooling)
        self.pooling = parse_pooling(pooling)
        # sentence-transformers' Dense modules, applied in order after pooling (e.g. LaBSE's tanh)
        self.dense = [layer.to(transformer.device) for layer in dense]
        _check_widths(pooled_width(self.pooling, transformer.dim), self.dense, name)
        self.normalize = normalize
        # how the model's vectors are meant to be compared: cosine or dot (see the module docstring)
        self.similarity_fn_name = _similarity_function(similarity_fn_name, "similarity_fn_name")
        # texts put before inputs by name, e.g. {"query": "query: "}; see the module docstring
        self.prompts = _checked_prompts(prompts or {}, default_prompt_name, "prompts")
        self.default_prompt_name = default_prompt_name
        # False: the prompt's tokens are read but left out of the pooling (sentence-transformers'
        # Pooling(include_prompt=False), e.g. for INSTRUCTOR-style models)
        self.include_prompt = include_prompt
        self.name = name
        self.source = source
        self._hashed: tuple[Path, str] | None = None  # (source, hash of its weights)
        # what the folder at ``source`` says (None: not loaded from one); vector_hash names the
        # settings changed since, as they make other vectors from the same weights
        self._as_saved: _Settings | None = None
        self.precision = precision  # the setter resolves it
        # The first stage search should use with this encoder when none is asked for ("dense",
        # "bm25" or "hybrid"), chosen on a retrieval dev split and stored in sentsim_config.json
        # as "retriever"; None: the caller's default.
        self.retriever: str | None = None

    @property
    def precision(self) -> Precision:
        """What :meth:`encode` computes in: ``fp32``, ``bf16`` or ``int8`` (:class:`Precision`)."""
        return self._precision

    @precision.setter
    def precision(self, value: str | Precision | None) -> None:
        self._precision = resolve_precision(value, self.transformer.device)
        if self._precision != Precision.INT8:  # its int8 copy, if one was made, is not needed
            drop_int8(self.transformer.model)

    @classmethod
    def load(
        cls,
        name_or_dir: str | Path,
        *,
        pooling: str | Pooling | Sequence[str] | None = None,
        normalize: bool | None = None,
        max_seq_length: int | None = None,
        device: str | None = None,
        precision: str | Precision | None = None,
    ) -> BiEncoder:
        """Load a built-in name, a sentence-transformers directory or a Hugging Face encoder.

        Explicit ``pooling`` / ``normalize`` / ``max_seq_length`` override what the directory says
        (``pooling`` a mode's name, or a sequence of names to concatenate their vectors).
        A plain Hugging Face directory defaults to mean pooling without normalization.
        ``precision`` (``fp32``, ``bf16``, ``auto``, ``int8``; default ``$SENTSIM_PRECISION`` or
        ``fp32``) sets what :meth:`encode` computes in. ``device``: default the GPU if there is
        one, else the CPU; always the CPU for ``int8``, which runs only there.
        """
        if normalize is not None and not isinstance(normalize, bool):
            raise TypeError(f"normalize must be True, False or None, got {normalize!r}")
        path = resolve_model_path(name_or_dir)
        layout = _read_layout(path)
        if not layout.declared and (pooling is None or normalize is None):
            _say_what_is_assumed(path, pooling is None, normalize is None)
        if not layout.declared and (path / _ST_CONFIG).is_file():
            _say_config_is_unread(path / _ST_CONFIG)
        transformer = TorchTransformer(
            layout.transformer_dir,
            max_seq_length=max_seq_length,
            do_lower_case=layout.do_lower_case,
            device=model_device(device, precision),
        )
        if max_seq_length is None and layout.max_seq_length is not None:
            if layout.max_seq_length > transformer.max_positions:
                raise ModelLoadError(
                    f"{layout.transformer_dir / _ST_LENGTH_FILE}: max_seq_length "
                    f"{layout.max_seq_length} is more than the {transformer.max_positions} tokens "
                    "the model reads (its position embeddings); correct it or delete the key"
                )
            transformer.max_seq_length = layout.max_seq_length
        encoder = cls(
            transformer,
            parse_pooling(pooling) if pooling is not None else layout.pooling,
            normalize=layout.normalize if normalize is None else normalize,
            name=str(name_or_dir),
            source=path,
            precision=precision,
            prompts=layout.prompts,
            default_prompt_name=layout.default_prompt_name,
            include_prompt=layout.include_prompt,
            dense=[Dense.load(folder) for folder in layout.dense],
            similarity_fn_name=layout.similarity_fn_name,
        )
        encoder.retriever = _stored_retriever(path)
        encoder._as_saved = _Settings(
            layout.pooling,
            layout.normalize,
            layout.max_seq_length or transformer.default_max_seq_length,
        )
        return encoder

    @property
    def dim(self) -> int:
        """Width of the output vectors: the last dense layer's, if any, else pooling's.

        Pooling's is the transformer's width once per pooling mode (``cls`` + ``mean`` doubles it).
        """
        if self.dense:
            return self.dense[-1].out_features
        return pooled_width(self.pooling, self.transformer.dim)

    @property
    def module(self) -> torch.nn.Module:
        """The weights training updates: the transformer's, with the dense layers' if any."""
        if not self.dense:  # the transformer alone: checkpoints keep its tensor names
            return self.transformer.model
        return torch.nn.ModuleList([self.transformer.model, *self.dense])

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

    def vector_hash(self) -> str:
        """The hash of what makes this encoder's vectors: its weights, and its prompts if any.

        What an index records: the same weights with another query or passage prompt make other
        vectors. Without prompts it is :meth:`weights_hash`, so indexes built before prompts were
        read keep their identity.
        """
        changed = self.changed_settings()
        if not self.prompts and not changed:
            return self.weights_hash()
        parts: list[object] = []
        if self.prompts:
            parts += [self.prompts, self.default_prompt_name, self.include_prompt]
        if changed:
            parts.append(changed)
        described = json.dumps(parts, sort_keys=True)
        digest = hashlib.sha256(f"{self.weights_hash()}\x00{described}".encode())
        return digest.hexdigest()[:16]

    def changed_settings(self) -> dict[str, object]:
        """Pooling, normalization and max length where they differ from what the folder says.

        ``BiEncoder.load(m, pooling="max")`` makes other vectors from the same weights: an index
        built with one and searched with the other ranked silently wrong.
        """
        if self._as_saved is None:
            return {}
        now = _Settings(self.pooling, self.normalize, self.max_seq_length)
        return {
            name: pooling_name(now.pooling) if name == "pooling" else getattr(now, name)
            for name in _Settings._fields
            if getattr(now, name) != getattr(self._as_saved, name)
        }

    def identity(self) -> str:
        """Return ``name@hash``: what an index records to refuse a different encoder."""
        return f"{self.name}@{self.vector_hash()}"

    @property
    def query_prompt(self) -> str:
        """The text put before each query: the ``query`` prompt, else the default prompt.

        An empty prompt counts as none: sentence-transformers 6 saves every model with empty
        ``query`` and ``document`` prompts.
        """
        return self.prompts.get("query") or self._default_prompt()

    @property
    def document_prompt(self) -> str:
        """The text put before each document: the first non-empty of :data:`DOCUMENT_PROMPTS`.

        E5's ``passage`` prompt is used although a model saved by sentence-transformers 6 also
        holds an empty ``document`` one (which that library then prefers, encoding passages bare).
        """
        for name in DOCUMENT_PROMPTS:
            if self.prompts.get(name):
                return self.prompts[name]
        return self._default_prompt()

    def _default_prompt(self) -> str:
        name = self.default_prompt_name
        return self.prompts[name] if name is not None else ""

    def prompt(self, prompt_name: str | None = None, prompt: str | None = None) -> str:
        """The prompt an :meth:`encode` call uses.

        ``prompt``, else the one named ``prompt_name``, else the default (``""`` when the model
        names none).
        """
        if prompt is not None and prompt_name is not None:
            raise ValueError("give prompt or prompt_name, not both")
        if prompt is not None:
            if not isinstance(prompt, str):
                raise TypeError(f"prompt is {type(prompt).__name__}, expected str")
            return check_text(prompt, "prompt")
        if prompt_name is None:
            return self._default_prompt()
        if prompt_name not in self.prompts:
            known = ", ".join(repr(k) for k in self.prompts) or "none"
            raise ValueError(
                f"{self.name} has no prompt named {prompt_name!r} (its prompts: {known}); "
                f"prompts are set in {_ST_CONFIG}"
            )
        return self.prompts[prompt_name]

    def tokenize(self, texts: Sequence[str], prompt: str = "") -> Features:
        """Tokenize ``prompt + text`` for each text, as :meth:`embed` reads it.

        With ``include_prompt=False`` the features also carry ``prompt_length``: the leading
        tokens (``[CLS]`` and the prompt's) that pooling leaves out.
        """
        if not prompt:
            return self.transformer.tokenize(texts)
        features = self.transformer.tokenize([prompt + t for t in texts])
        if not self.include_prompt:
            # as sentence-transformers counts it: the prompt tokenized alone, less its last token
            # where that is a special one ([SEP], </s>; a decoder's tokenizer may add none)
            ids = self.transformer.tokenize([prompt])["input_ids"][0].tolist()
            ends_special = bool(ids) and ids[-1] in self.transformer.tokenizer.all_special_ids
            features["prompt_length"] = torch.tensor(len(ids) - int(ends_special))
        return features

    def embed(self, features: Features, network: torch.nn.Module | None = None) -> torch.Tensor:
        """Run the transformer and pooling on tokenized input; differentiable (for training).

        ``network``: what runs instead of the transformer's own network (its int8 copy).
        """
        features = dict(features)
        prompt_length = features.pop("prompt_length", None)
        tokens = self.transformer.forward(features, network)
        length = 0 if prompt_length is None else int(prompt_length)
        vectors = pool(tokens, features["attention_mask"], self.pooling, prompt_length=length)
        for layer in self.dense:
            vectors = layer(vectors)
        return torch.nn.functional.normalize(vectors, dim=-1) if self.normalize else vectors

    def encode_query(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> NDArray[np.float32]:
        """:meth:`encode` with the model's query prompt (what search encodes queries with)."""
        return self.encode(
            texts, batch_size=batch_size, show_progress=show_progress, prompt=self.query_prompt
        )

    def encode_document(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> NDArray[np.float32]:
        """:meth:`encode` with the model's document prompt (what an index stores)."""
        return self.encode(
            texts, batch_size=batch_size, show_progress=show_progress, prompt=self.document_prompt
        )

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        show_progress: bool | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
    ) -> NDArray[np.float32]:
        """Return ``(len(texts), dim)`` float32 vectors, in input order.

        Texts are batched longest first (smart batching) and put back in order; an empty string
        encodes as ``[CLS] [SEP]``; a text holding a lone surrogate or a NUL is a ``ValueError``
        naming its index (:func:`~sentsim.base.check_text`). ``show_progress=None`` shows a bar
        from 2,000 texts on. ``prompt`` (a text) or ``prompt_name`` (one of :attr:`prompts`) is
        put before every text; with neither, the model's default prompt, if it names one.
        """
        items = check_texts(texts)
        check_count(batch_size, "batch_size", least=1)
        before = self.prompt(prompt_name, prompt)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        order = length_order(items)
        show = len(items) >= PROGRESS_MIN_TEXTS if show_progress is None else show_progress
        starts = range(0, len(items), batch_size)
        was_training = self.transformer.model.training
        self.transformer.model.eval()
        try:
            network = runnable(self.transformer.model, self.precision)
            with inference(self.precision, self.transformer.device):
                for start in tqdm(starts, desc="encode", unit="batch", disable=not show):
                    idx = order[start : start + batch_size]
                    features = self.tokenize([items[i] for i in idx], before)
                    out[idx] = self.embed(features, network).float().cpu().numpy()
        finally:  # also when cut off: a model in training must not stay in eval mode
            self.transformer.model.train(was_training)
        return out

    def save(self, out: str | Path, *, card: str | None = None) -> Path:
        """Write the model in sentence-transformers layout (loadable by both libraries)."""
        root = Path(out)
        with staged_folder(root) as stage:
            self.transformer.save(stage)
            modules = [
                {"idx": 0, "name": "0", "path": "", "type": _ST_TRANSFORMER},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": _ST_POOLING},
            ]
            for layer in self.dense:
                idx = len(modules)
                modules.append(
                    {"idx": idx, "name": str(idx), "path": f"{idx}_Dense", "type": _ST_DENSE}
                )
                layer.save(stage / f"{idx}_Dense")
            if self.normalize:
                idx = len(modules)
                path = f"{idx}_Normalize"
                modules.append({"idx": idx, "name": str(idx), "path": path, "type": _ST_NORMALIZE})
                (stage / path).mkdir()
            (stage / "1_Pooling").mkdir()
            pooling = pooling_config(
                self.pooling, self.transformer.dim, include_prompt=self.include_prompt
            )
            _write_json(stage / "1_Pooling" / "config.json", pooling)
            _write_json(stage / "modules.json", modules)
            _write_json(
                stage / _ST_CONFIG,
                {
                    "prompts": dict(self.prompts),
                    "default_prompt_name": self.default_prompt_name,
                    "similarity_fn_name": self.similarity_fn_name.value,
                },
            )
            if card is not None:
                (stage / "README.md").write_text(card, encoding="utf-8")
        self.source, self._hashed = root, None  # the files there are new
        self._as_saved = _Settings(self.pooling, self.normalize, self.max_seq_length)
        return root


class _Settings(NamedTuple):
    """The settings besides weights and prompts that change a bi-encoder's vectors."""

    pooling: Pooling
    normalize: bool
    max_seq_length: int


class _Layout:
    """What a model directory says about its modules."""

    def __init__(self, path: Path) -> None:
        self.declared = False  # whether a modules.json says how the vectors are made
        self.transformer_dir = path
        self.pooling: Pooling = PoolingMode.MEAN
        self.normalize = False
        self.max_seq_length: int | None = None
        self.do_lower_case = False
        self.prompts: dict[str, str] = {}
        self.default_prompt_name: str | None = None
        self.include_prompt = True
        self.dense: list[Path] = []  # the folders of the Dense modules, in order
        self.similarity_fn_name = Metric.COSINE


def _check_widths(width: int, dense: Sequence[Dense], model: str) -> None:
    """Raise unless each dense layer reads the width of the vectors before it."""
    for i, layer in enumerate(dense):
        if layer.in_features != width:
            raise ModelLoadError(
                f"{model}: dense layer {i + 1} reads {layer.in_features}-d vectors, but the "
                f"{'pooling' if i == 0 else 'layer before it'} gives {width}-d ones; "
                "its in_features must be the width before it"
            )
        width = layer.out_features


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
    modules = read_model_json(modules_file, list, "a list of modules")
    layout.declared = True
    found_transformer = seen_pooling = False
    for i, module in enumerate(modules):
        if not isinstance(module, dict):
            raise ModelLoadError(f"{modules_file}: module {i} is not an object: {module!r:.80}")
        kind = module.get("type", "")
        sub = path / module.get("path", "")
        # sentence-transformers < 6 writes ``sentence_transformers.models.Pooling``; 6.x writes
        # e.g. ``sentence_transformers.sentence_transformer.modules.pooling.Pooling``.
        cls_name = kind.rsplit(".", 1)[-1] if kind.startswith("sentence_transformers.") else ""
        if cls_name == "Transformer":
            found_transformer = True
            layout.transformer_dir = sub
            config_file = sub / _ST_LENGTH_FILE
            if config_file.is_file():
                config = read_model_json(config_file, dict, "an object")
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
            seen_pooling = True
            pooling = read_pooling_config(sub / "config.json")
            layout.pooling, layout.include_prompt = pooling.pooling, pooling.include_prompt
        elif cls_name == "Dense":
            if not seen_pooling or layout.normalize:
                raise ModelLoadError(
                    f"{modules_file}: module {i} (Dense) must come after Pooling and before "
                    "Normalize, where sentsim applies it; put the modules in that order"
                )
            layout.dense.append(sub)
        elif cls_name == "Normalize":
            layout.normalize = True
        else:
            raise ModelLoadError(
                f"{modules_file}: module type {kind!r} is not supported by sentsim; "
                "supported: Transformer, Pooling, Dense, Normalize"
            )
    if not found_transformer:  # the folder would load as mean pooling of whatever is there
        raise ModelLoadError(
            f"{modules_file} names no Transformer module ({len(modules)} module(s)); a "
            "sentence-transformers model lists its Transformer first, then Pooling (and "
            "Normalize): write those, or delete modules.json to load the folder as a plain encoder"
        )
    # sentence-transformers 6 saves a cross-encoder with a modules.json of one Transformer
    _refuse_cross_encoder(layout.transformer_dir)
    _read_model_config(path / _ST_CONFIG, layout)
    return layout


def _say_what_is_assumed(path: Path, pooling: bool, normalize: bool) -> None:
    """Log the pooling and normalization a folder without ``modules.json`` is loaded with.

    A plain Hugging Face encoder says nothing about how its token vectors become one: mean
    pooling without normalization is a guess (sentence-transformers guesses the same, and says
    so), and a model trained with CLS pooling, say, then gives poorer vectors without a word.
    """
    assumed = [
        what
        for what, unset in (("mean pooling", pooling), ("no normalization", normalize))
        if unset
    ]
    log.warning(
        "%s has no modules.json: loaded as a plain encoder with %s, as sentence-transformers "
        "would; for a model trained otherwise give BiEncoder.load pooling= and normalize=, "
        "and save it to write them down",
        path,
        " and ".join(assumed),
    )


def _say_config_is_unread(file: Path) -> None:
    """Log that ``file`` (a ``config_sentence_transformers.json``) is not read: no modules.json.

    sentence-transformers 6 builds such a folder's modules itself and reads that file only with
    a ``modules.json``: its prompts and ``similarity_fn_name`` do not count there (no prompts,
    cosine), and sentsim loads it the same way; a ``"dot"`` in it went unnoticed.
    """
    log.warning(
        "%s is not read: its folder has no modules.json, and sentence-transformers reads the "
        "prompts and similarity_fn_name only with one; loaded without prompts and compared by "
        "cosine, as sentence-transformers loads it; write a modules.json (Transformer, Pooling) "
        "for them to count",
        file,
    )


def _checked_prompts(prompts: object, default: object, where: str) -> dict[str, str]:
    """``prompts`` as a dict of name → text, or raise naming ``where`` and what is wrong."""
    if not isinstance(prompts, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()
    ):
        raise ModelLoadError(
            f'{where}: "prompts" must map names to texts, e.g. {{"query": "query: "}}; '
            f"found {prompts!r}"
        )
    if default is not None and default not in prompts:
        known = ", ".join(repr(k) for k in prompts) or "none"
        raise ModelLoadError(
            f'{where}: "default_prompt_name" is {default!r}, which is not one of its prompts '
            f"({known}); name one of them, or null"
        )
    return dict(prompts)


def _read_model_config(file: Path, layout: _Layout) -> None:
    """Read the prompts and similarity function of a sentence-transformers folder into ``layout``.

    No file: no prompts, cosine.
    """
    if not file.is_file():
        return
    config = read_model_json(file, dict, "an object")
    default = config.get("default_prompt_name")
    layout.prompts = _checked_prompts(config.get("prompts") or {}, default, str(file))
    layout.default_prompt_name = default
    where = f'{file}: "similarity_fn_name"'
    try:
        layout.similarity_fn_name = _similarity_function(config.get("similarity_fn_name"), where)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from None


def _similarity_function(value: object, where: str) -> Metric:
    """The similarity function a bi-encoder's ``similarity_fn_name`` names: cosine or dot.

    ``None`` is cosine, as sentence-transformers reads a model saved before it wrote the key.
    ``euclidean`` and ``manhattan`` (valid in sentence-transformers) are refused by name: search
    ranks by the inner product of stored vectors, which neither distance is, and a model trained
    for one ranked by the other would be quietly wrong. Anything else is refused listing the
    valid names; ``where`` says where the value came from.
    """
    if value is None:
        return Metric.COSINE
    valid = " or ".join(repr(m.value) for m in SIMILARITY_FUNCTIONS)
    if value in ("euclidean", "manhattan"):
        raise ValueError(
            f"{where} is {str(value)!r}: sentsim compares a bi-encoder's vectors by {valid} only "
            "(its index ranks by inner product, which a distance is not); use this model with "
            f"sentence-transformers, or set it to {valid} to compare its vectors so anyway"
        )
    if not isinstance(value, str) or value not in SIMILARITY_FUNCTIONS:
        raise ValueError(f"{where} is {value!r}; expected {valid} (sentence-transformers' names)")
    return Metric(value)


#: Where a bi-encoder folder keeps what sentsim chose for it (its first-stage retriever).
SENTSIM_CONFIG = "sentsim_config.json"


def _stored_retriever(path: Path) -> str | None:
    """The retriever a model folder's ``sentsim_config.json`` names, if any (checked)."""
    file = path / SENTSIM_CONFIG
    if not file.is_file():
        return None
    retriever = read_model_json(file, dict, "a JSON object of settings").get("retriever")
    if retriever is None:
        return None
    try:
        return Retriever.parse(retriever).value
    except ValueError as exc:
        raise ModelLoadError(f"{file}: {exc}") from None


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
