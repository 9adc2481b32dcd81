"""The cross-encoder ("the judge"): both texts read together, ``[CLS] a [SEP] b [SEP]``.

A Hugging Face sequence-classification model. One output is a 0–1 score (sigmoid of the logit);
several outputs are class probabilities (softmax), e.g. NLI — or, for a model whose config.json
says ``"problem_type": "multi_label_classification"``, one 0–1 score per label (a sigmoid each, as
transformers trains such a head). Pairs longer than ``max_length``
tokens are cut longest-first: tokens are removed from whichever text is longer at that moment,
so a short query keeps all its words while a long passage is shortened.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm.auto import tqdm

from sentsim.atomic import staged_folder
from sentsim.backend import (
    Features,
    Precision,
    check_length,
    check_model_dir,
    drop_int8,
    inference,
    load_pretrained,
    model_device,
    quiet_transformers,
    readable_tokens,
    reading_model,
    resolve_precision,
    runnable,
)
from sentsim.base import check_count, check_pairs, check_text, check_texts, length_order
from sentsim.errors import ModelLoadError
from sentsim.models import read_model_json, resolve_model_path

PROGRESS_MIN_PAIRS = 2000


@dataclass(frozen=True)
class RankedDoc:
    """One document of :meth:`CrossEncoder.rank`: its input position, score and rank (from 1)."""

    index: int
    score: float
    rank: int
    text: str


class CrossEncoder:
    """Score text pairs jointly.

    >>> judge = CrossEncoder.load("ce-sts")  # doctest: +SKIP
    >>> judge.predict([("A man plays guitar.", "Someone is playing a guitar.")])  # doctest: +SKIP
    array([0.93], dtype=float32)
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_length: int = 256,
        name: str = "cross-encoder",
        source: Path | None = None,
        precision: str | Precision | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.name = name
        self.source = source
        self.precision = precision  # the setter resolves it
        # Weight of this judge against the first stage when it re-ranks (chosen on dev and
        # stored in sentsim_config.json as "rerank_weight"; 1.0 = the judge alone), and, where
        # dev chose one, its weight after a first stage that also matches example queries
        # ("rerank_weight_with_examples"): such a first stage is far stronger, so it needs less;
        # and its weight after particular bi-encoders, by the hash of their weights
        # ("rerank_weight_by_encoder"), e.g. 0 after one fine-tuned on the judge's own domain.
        self.rerank_weight = 1.0
        self.rerank_weight_with_examples: float | None = None
        self.rerank_weight_by_encoder: dict[str, float] = {}

    @classmethod
    def load(
        cls,
        name_or_dir: str | Path,
        *,
        num_labels: int | None = None,
        labels: Sequence[str] | None = None,
        max_length: int | None = None,
        device: str | None = None,
        precision: str | Precision | None = None,
    ) -> CrossEncoder:
        """Load a cross-encoder directory, or start one from an encoder backbone.

        Given ``num_labels`` (and optionally class ``labels``) different from the directory's, a
        fresh scoring head of that size replaces the old one — how training starts from ``minilm``.
        Without them, a directory that is not a sequence-classification model (a bi-encoder, a
        plain encoder) is refused: its scoring layer would be random.
        ``precision`` (``fp32``, ``bf16``, ``auto``, ``int8``; default ``$SENTSIM_PRECISION`` or
        ``fp32``) sets what :meth:`predict` computes in. ``device``: default the GPU if there is
        one, else the CPU; always the CPU for ``int8``, which runs only there. ``max_length``
        defaults to what the directory's ``sentsim_config.json`` says, else 256 tokens or the
        tokenizer's limit if that is smaller.
        """
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        if num_labels is not None and (
            isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1
        ):
            raise ValueError(f"num_labels must be an integer ≥ 1, got {num_labels!r}")
        if isinstance(labels, str):
            raise TypeError(f"labels must be a list of class names, got the str {labels!r}")
        names = list(labels or [])
        twice = [label for i, label in enumerate(names) if label in names[:i]]
        if twice:  # label2id would keep one of them, and say so in the saved config.json
            raise ValueError(
                f"labels {names!r} name {twice[0]!r} twice; each output needs its own class name"
            )
        if labels and num_labels is not None and len(labels) != num_labels:
            raise ValueError(
                f"{len(labels)} labels for num_labels={num_labels}; give one name per output"
            )
        path = resolve_model_path(name_or_dir)
        check_model_dir(path)
        with reading_model(path):
            config = AutoConfig.from_pretrained(path, local_files_only=True)
        is_classifier = any("ForSequenceClassification" in a for a in config.architectures or [])
        wanted = num_labels or (len(labels) if labels else None)
        kwargs: dict[str, object] = {}
        fresh = wanted is not None and (not is_classifier or wanted != config.num_labels)
        if fresh:
            kwargs = {"num_labels": wanted}
        elif not is_classifier:  # a scoring layer would be drawn at random: scores mean nothing
            found = ", ".join(config.architectures or []) or "no architecture"
            raise ModelLoadError(
                f"{name_or_dir} is not a cross-encoder: its config.json names {found}, not a "
                "...ForSequenceClassification model with a trained scoring layer (a bi-encoder or "
                f"plain encoder). Train one from it: sentsim train cross-encoder --base "
                f"{name_or_dir} --train PAIRS --out DIR (in code: num_labels=1 starts a fresh head)"
            )
        if labels:
            kwargs["id2label"] = dict(enumerate(labels))
            kwargs["label2id"] = {label: i for i, label in enumerate(labels)}
        target = model_device(device, precision)  # before the weights are read
        with quiet_transformers(), reading_model(path):
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = load_pretrained(
                AutoModelForSequenceClassification,
                path,
                new=_fresh_head if fresh else None,
                **kwargs,
            )
        model.to(target).eval()
        config = _read_sentsim_config(path)
        file = path / "sentsim_config.json"
        stored = config.get("max_length")
        limit = readable_tokens(model)
        if stored is not None and not (_is_number(stored, int) and 1 <= stored <= limit):
            raise ModelLoadError(
                f"{file}: max_length {stored!r} is not a length the model reads (1 to {limit} "
                "tokens, its position embeddings); correct it or delete the key"
            )
        # sentence-transformers keeps a cross-encoder's max_length as the tokenizer's limit
        tok_limit = int(getattr(tokenizer, "model_max_length", limit) or limit)
        length = check_length(max_length, limit, name_or_dir) or (
            int(stored) if stored else min(256, limit, tok_limit)
        )
        special = tokenizer.num_special_tokens_to_add(pair=True)
        if length < special + 2:  # the tokenizer cannot cut to it and silently cuts nothing
            raise ValueError(
                f"max length {length}: a pair takes {special} special tokens ([CLS] a [SEP] b "
                f"[SEP]) and at least a token of each text; give at least {special + 2}"
            )
        judge = cls(
            model, tokenizer, max_length=length, name=str(name_or_dir), source=path,
            precision=precision,
        )  # fmt: skip
        weight = _stored_weight(config, "rerank_weight", file)
        judge.rerank_weight = 1.0 if weight is None else weight
        judge.rerank_weight_with_examples = _stored_weight(
            config, "rerank_weight_with_examples", file
        )
        judge.rerank_weight_by_encoder = _stored_weights_by_encoder(config, file)
        return judge

    @property
    def precision(self) -> Precision:
        """What :meth:`predict` computes in: ``fp32``, ``bf16`` or ``int8`` (:class:`Precision`)."""
        return self._precision

    @precision.setter
    def precision(self, value: str | Precision | None) -> None:
        self._precision = resolve_precision(value, self.device)
        if self._precision != Precision.INT8:  # its int8 copy, if one was made, is not needed
            drop_int8(self.model)

    def weight_after(self, *, examples: bool, encoder_hash: str | None = None) -> float:
        """The stored weight of this judge after a first stage.

        In this order: the weight after a first stage with example queries, the weight after the
        bi-encoder whose weights hash to ``encoder_hash``, the plain weight.
        """
        if examples and self.rerank_weight_with_examples is not None:
            return self.rerank_weight_with_examples
        if encoder_hash is not None and encoder_hash in self.rerank_weight_by_encoder:
            return self.rerank_weight_by_encoder[encoder_hash]
        return self.rerank_weight

    @property
    def num_labels(self) -> int:
        """Number of outputs: 1 for a relevance or similarity score."""
        return int(self.model.config.num_labels)

    @property
    def multi_label(self) -> bool:
        """Whether the labels are independent (several may hold), not classes of which one does.

        Set by config.json's ``"problem_type": "multi_label_classification"``.
        """
        return getattr(self.model.config, "problem_type", None) == "multi_label_classification"

    @property
    def labels(self) -> list[str]:
        """Class names, in output order."""
        id2label = self.model.config.id2label
        return [str(id2label[i]) for i in range(self.num_labels)]

    @property
    def device(self) -> torch.device:
        """Where the model runs."""
        return next(self.model.parameters()).device

    def tokenize(self, pairs: Sequence[tuple[str, str]]) -> Features:
        """Tokenize pairs as ``[CLS] a [SEP] b [SEP]`` with segment ids, cut longest-first."""
        encoded = self.tokenizer(
            [a.strip() for a, _ in pairs],
            [b.strip() for _, b in pairs],
            padding=True,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {k: v.to(self.device) for k, v in encoded.items()}

    def logits(self, features: Features, network: torch.nn.Module | None = None) -> torch.Tensor:
        """Raw outputs ``(batch, num_labels)``; differentiable (for training).

        ``network``: what runs instead of :attr:`model` (its int8 copy).
        """
        return (self.model if network is None else network)(**features).logits

    def predict(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        batch_size: int = 32,
        symmetric: bool = False,
        show_progress: bool | None = None,
    ) -> NDArray[np.float32]:
        """Return scores in input order: ``(n,)`` in 0–1 for one output, ``(n, labels)`` otherwise.

        The rows of ``(n, labels)`` are class probabilities (a softmax), or for a
        :attr:`multi_label` model one sigmoid per label (each in 0–1, not summing to 1).

        ``symmetric=True`` averages the scores of ``(a, b)`` and ``(b, a)`` (for similarity, where
        order carries no meaning). Empty texts are scored; a text holding a lone surrogate or a
        NUL is a ``ValueError`` naming its pair (:func:`~sentsim.base.check_text`).
        """
        items = check_pairs(pairs)
        check_count(batch_size, "batch_size", least=1)
        if symmetric:
            forward = self.predict(items, batch_size=batch_size, show_progress=show_progress)
            swapped = [(b, a) for a, b in items]
            backward = self.predict(swapped, batch_size=batch_size, show_progress=show_progress)
            return ((forward + backward) / 2).astype(np.float32)
        out = np.zeros((len(items), self.num_labels), dtype=np.float32)
        independent = self.num_labels == 1 or self.multi_label
        order = length_order([a + b for a, b in items])
        show = len(items) >= PROGRESS_MIN_PAIRS if show_progress is None else show_progress
        was_training = self.model.training
        self.model.eval()
        try:
            network = runnable(self.model, self.precision)
            with inference(self.precision, self.device):
                starts = range(0, len(items), batch_size)
                for start in tqdm(starts, desc="cross-encode", unit="batch", disable=not show):
                    idx = order[start : start + batch_size]
                    features = self.tokenize([items[i] for i in idx])
                    logits = self.logits(features, network).float()
                    probs = torch.sigmoid(logits) if independent else logits.softmax(-1)
                    out[idx] = probs.cpu().numpy()
        finally:  # also when cut off: a model in training must not stay in eval mode
            self.model.train(was_training)
        return out[:, 0] if self.num_labels == 1 else out

    def rank(
        self,
        query: str,
        docs: Sequence[str],
        *,
        top_k: int | None = None,
        batch_size: int = 32,
        show_progress: bool | None = None,
    ) -> list[RankedDoc]:
        """Score ``docs`` against ``query``; return them best first (ties keep input order).

        An empty or whitespace-only query is a ``ValueError`` naming ``query``, as the server's
        ``/rerank`` refuses it; documents may be empty. A text holding a lone surrogate or a NUL
        is a ``ValueError`` naming it (``query``, or the document's index as ``item i``).
        """
        texts = rank_inputs(query, docs, top_k)
        if self.num_labels != 1:
            raise ValueError(
                f"{self.name} has {self.num_labels} outputs ({', '.join(self.labels)}); rank needs "
                "one relevance score — use predict() for class probabilities"
            )
        if not texts:
            return []
        pairs = [(query, d) for d in texts]
        scores = self.predict(pairs, batch_size=batch_size, show_progress=show_progress)
        return ranked(texts, scores, top_k)

    def save(self, out: str | Path, *, fp16: bool = False, card: str | None = None) -> Path:
        """Write a Hugging Face directory (safetensors) loadable by sentence-transformers too."""
        root = Path(out)
        state = {
            k: v.half() if fp16 and v.is_floating_point() else v
            for k, v in self.model.state_dict().items()
        }
        limit = self.tokenizer.model_max_length
        with staged_folder(root) as stage:
            # sentence-transformers reads a cross-encoder's max_length from the tokenizer's limit
            self.tokenizer.model_max_length = self.max_length
            try:
                with quiet_transformers():
                    self.model.save_pretrained(stage, state_dict=state)
                    self.tokenizer.save_pretrained(stage)
            finally:
                self.tokenizer.model_max_length = limit
            config = {**_read_sentsim_config(root), "max_length": self.max_length}
            (stage / "sentsim_config.json").write_text(json.dumps(config, indent=2) + "\n")
            if card is not None:
                (stage / "README.md").write_text(card, encoding="utf-8")
        self.source = root
        return root


def rank_inputs(query: object, docs: Sequence[str], top_k: int | None) -> list[str]:
    """``docs`` as a list, after checking what a ranking of them for ``query`` is given.

    The query needs words: every document ranked against nothing is an order of noise.
    """
    if not isinstance(query, str):
        raise TypeError(f"query is {type(query).__name__}, expected str")
    if not query.strip():
        raise ValueError(f"query is empty ({query!r}); pass the text to rank the documents for")
    check_text(query, "query")
    texts = check_texts(docs)
    check_count(top_k, "top_k", least=0, none=True)
    return texts


def ranked(texts: list[str], scores: NDArray[np.floating], top_k: int | None) -> list[RankedDoc]:
    """``texts`` best first by ``scores`` (ties keep input order), the first ``top_k``."""
    order = np.argsort(-np.asarray(scores), kind="stable")[: len(texts) if top_k is None else top_k]
    return [
        RankedDoc(int(i), float(scores[i]), rank, texts[i]) for rank, i in enumerate(order, start=1)
    ]


def _is_number(value: object, kind: type[int] | type[float]) -> TypeGuard[float]:
    """Whether a JSON value is an integer (``kind=int``) or any number, ``true``/``false`` not."""
    allowed = (int,) if kind is int else (int, float)
    return isinstance(value, allowed) and not isinstance(value, bool)


def _stored_weight(
    config: dict[str, object], key: str, file: Path, where: str = ""
) -> float | None:
    """A judge's weight in its ``sentsim_config.json`` (0 to 1), or ``None`` where none is."""
    weight = config.get(key)
    if weight is not None and not (_is_number(weight, float) and 0 <= weight <= 1):
        name = f"{where} {key}" if where else key
        raise ModelLoadError(
            f"{file}: {name} {weight!r} is not a weight; give a number from 0 to 1"
        )
    return None if weight is None else float(weight)


def _stored_weights_by_encoder(config: dict[str, object], file: Path) -> dict[str, float]:
    """A judge's ``rerank_weight_by_encoder`` (bi-encoder hash → weight, 0 to 1), checked."""
    by_encoder = config.get("rerank_weight_by_encoder") or {}
    shape = ModelLoadError(
        f"{file}: 'rerank_weight_by_encoder' must map bi-encoder weight hashes to "
        '{"weight": W, ...}'
    )
    if not isinstance(by_encoder, dict):
        raise shape
    weights = {}
    for key, entry in by_encoder.items():
        where = f"rerank_weight_by_encoder[{key!r}]"
        weight = _stored_weight(entry, "weight", file, where) if isinstance(entry, dict) else None
        if weight is None:
            raise shape
        weights[str(key)] = weight
    return weights


def _fresh_head(model: Any, key: str) -> bool:
    """Whether ``key`` is a tensor of a fresh scoring head: outside the encoder, or its pooler."""
    return not key.startswith(f"{model.base_model_prefix}.") or ".pooler." in key


def _read_sentsim_config(path: Path) -> dict[str, object]:
    file = path / "sentsim_config.json"
    if not file.is_file():
        return {}
    config: dict[str, object] = read_model_json(file, dict, "a JSON object of settings")
    return config
