"""Static embeddings distilled from a sentence transformer: one vector per vocabulary token.

The modern answer to averaged word vectors (the idea of model2vec; this is sentsim's own code).
Distillation (:func:`distill_static`):

1. every vocabulary token ``t`` is encoded by the teacher as the one-token text ``[CLS] t [SEP]``
   with the teacher's own pooling — the vector the teacher gives that token alone;
2. the token vectors are centred and reduced by PCA to ``dim`` components;
3. each is scaled by the SIF weight ``a / (a + p(t))``, ``p`` from the token's id by Zipf's law
   (WordPiece vocabularies list frequent pieces first), so that frequent pieces count less.

Encoding (:class:`StaticEncoder`) tokenizes without special tokens and averages the token vectors,
then L2-normalizes: no transformer at inference, so thousands of texts take milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from sentsim.atomic import atomic_write, write_text_atomic
from sentsim.base import check_count, check_texts
from sentsim.baselines.glove import zipf_probability
from sentsim.errors import ModelLoadError
from sentsim.models import read_model_json, resolve_model_path

STATIC_TYPE = "sentsim-static-embedding"


def is_static_model(name_or_dir: str | Path) -> bool:
    """Whether ``name_or_dir`` names a static model (:meth:`StaticEncoder.save`'s folder)."""
    try:
        path = resolve_model_path(name_or_dir)
    except ModelLoadError:  # the transformer loader names what is missing
        return False
    if not (path / "embeddings.safetensors").is_file() or not (path / "config.json").is_file():
        return False
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == STATIC_TYPE


class StaticEncoder:
    """Mean of per-token vectors looked up after tokenization, L2-normalized."""

    def __init__(self, embeddings: NDArray[np.float32], tokenizer: object, name: str) -> None:
        self.embeddings = embeddings
        self.tokenizer = tokenizer
        self.name = name

    @classmethod
    def load(cls, name_or_dir: str | Path) -> StaticEncoder:
        """Load a directory written by :meth:`save` (config and embeddings safetensors)."""
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = resolve_model_path(name_or_dir)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ModelLoadError(f"static model config missing: expected {config_file}")
        config = read_model_json(config_file, dict, "an object")
        if config.get("model_type") != STATIC_TYPE:
            raise ModelLoadError(f"{config_file} is not a sentsim static embedding model")
        embeddings = load_file(str(path / "embeddings.safetensors"))["embeddings"]
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        return cls(embeddings.astype(np.float32), tokenizer, str(name_or_dir))

    @property
    def dim(self) -> int:
        """Width of the vectors."""
        return int(self.embeddings.shape[1])

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 1024, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """Return ``(len(texts), dim)`` unit vectors (zero for a text with no tokens)."""
        items = check_texts(texts)
        check_count(batch_size, "batch_size", least=1)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(items), batch_size):
            batch = self.tokenizer.encode_batch(  # type: ignore[attr-defined]
                items[start : start + batch_size], add_special_tokens=False
            )
            for i, enc in enumerate(batch, start=start):
                if enc.ids:
                    out[i] = self.embeddings[enc.ids].mean(0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def save(self, out: str | Path, *, config: dict[str, object]) -> Path:
        """Write fp16 ``embeddings.safetensors``, ``tokenizer.json`` and ``config.json``."""
        from safetensors.numpy import save

        root = Path(out)
        root.mkdir(parents=True, exist_ok=True)
        weights = save({"embeddings": self.embeddings.astype(np.float16)})
        atomic_write(root / "embeddings.safetensors", lambda handle: handle.write(weights))
        tokenizer = self.tokenizer.to_str(pretty=True)  # type: ignore[attr-defined]
        write_text_atomic(root / "tokenizer.json", tokenizer)
        full = {"model_type": STATIC_TYPE, "dim": self.dim, **config}
        write_text_atomic(root / "config.json", json.dumps(full, indent=2) + "\n")
        return root


def distill_static(
    teacher: str | Path = "minilm", *, dim: int = 256, sif_a: float = 1e-4, batch_size: int = 512
) -> StaticEncoder:
    """Distill a :class:`StaticEncoder` from a sentence-transformer ``teacher`` (see module doc)."""
    import torch

    from sentsim.bi_encoder import BiEncoder

    model = BiEncoder.load(teacher, normalize=False)
    if not 1 <= dim <= model.dim:
        raise ValueError(f"dim {dim}: a static model from {teacher} has 1 to {model.dim} dims")
    tokenizer = model.transformer.tokenizer
    vocab_size = len(tokenizer)
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    vectors = np.zeros((vocab_size, model.dim), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, vocab_size, batch_size):
            ids = torch.arange(start, min(start + batch_size, vocab_size))
            input_ids = torch.stack(
                [torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1
            )
            features = {
                "input_ids": input_ids.to(model.transformer.device),
                "attention_mask": torch.ones_like(input_ids).to(model.transformer.device),
                "token_type_ids": torch.zeros_like(input_ids).to(model.transformer.device),
            }
            vectors[start : start + len(ids)] = model.embed(features).float().cpu().numpy()
    centred = vectors - vectors.mean(0, keepdims=True)
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    reduced = (centred @ vt[:dim].T).astype(np.float32)
    p = zipf_probability(np.arange(vocab_size, dtype=np.int64), vocab_size)
    weighted = reduced * (sif_a / (sif_a + p))[:, None].astype(np.float32)
    fast = tokenizer.backend_tokenizer
    fast.no_padding()
    fast.no_truncation()
    return StaticEncoder(weighted, fast, name=f"static-{teacher}")
