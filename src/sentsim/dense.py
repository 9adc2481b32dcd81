"""A dense layer after pooling, ``v' = f(W v + b)``: sentence-transformers' ``Dense`` module.

LaBSE (``tanh``), distiluse-base-multilingual (``tanh``, 768 → 512) and sentence-t5 (identity, no
bias) put one between pooling and normalization. Reads and writes its folder, e.g. ``2_Dense``:
``config.json`` (``in_features``, ``out_features``, ``bias``, ``activation_function``) and the
weights ``linear.weight`` / ``linear.bias`` in ``model.safetensors`` (or, as older models ship them,
``pytorch_model.bin``, read as tensors only).
"""

from __future__ import annotations

import json
import pickle
from enum import StrEnum
from pathlib import Path

import torch

from sentsim.errors import ModelLoadError
from sentsim.models import read_model_json


class Activation(StrEnum):
    """The function a :class:`Dense` layer applies after its linear map."""

    TANH = "torch.nn.modules.activation.Tanh"
    IDENTITY = "torch.nn.modules.linear.Identity"
    RELU = "torch.nn.modules.activation.ReLU"
    SIGMOID = "torch.nn.modules.activation.Sigmoid"
    GELU = "torch.nn.modules.activation.GELU"


_APPLY = {
    Activation.TANH: torch.tanh,
    Activation.IDENTITY: lambda x: x,
    Activation.RELU: torch.relu,
    Activation.SIGMOID: torch.sigmoid,
    Activation.GELU: torch.nn.functional.gelu,
}
# Keys of sentence-transformers 6 that sentsim follows only at their defaults.
_DEFAULTS = {
    "use_residual": False,
    "module_input_name": "sentence_embedding",
    "module_output_name": "sentence_embedding",
}
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


class Dense(torch.nn.Module):
    """``f(W v + b)`` on pooled vectors: ``(batch, in_features)`` → ``(batch, out_features)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        activation: Activation = Activation.TANH,
    ) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(in_features, out_features, bias=bias)
        self.activation = Activation(activation)

    @property
    def in_features(self) -> int:
        """Width of the vectors the layer reads."""
        return int(self.linear.in_features)

    @property
    def out_features(self) -> int:
        """Width of the vectors the layer writes."""
        return int(self.linear.out_features)

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        """Apply the layer to ``(batch, in_features)`` vectors."""
        return _APPLY[self.activation](self.linear(vectors))

    @classmethod
    def load(cls, folder: Path) -> Dense:
        """Read a sentence-transformers ``Dense`` folder, raising naming the file that is wrong."""
        file = folder / "config.json"
        if not file.is_file():
            raise ModelLoadError(f"dense layer config missing: expected {file}")
        config = read_model_json(file, dict, "an object")
        sizes = [config.get(key) for key in ("in_features", "out_features")]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sizes):
            raise ModelLoadError(
                f"{file}: in_features and out_features must be whole numbers ≥ 1; found {sizes}"
            )
        name = config.get("activation_function", Activation.TANH.value)
        try:
            activation = Activation(name)
        except ValueError:
            known = ", ".join(a.value for a in Activation)
            raise ModelLoadError(
                f"{file}: activation_function {name!r} is not supported by sentsim; "
                f"supported: {known}"
            ) from None
        for key, default in _DEFAULTS.items():
            if config.get(key) not in (None, default):
                raise ModelLoadError(
                    f"{file}: {key} {config[key]!r} is not supported by sentsim (only "
                    f"{default!r}: a linear map of the pooled vector)"
                )
        layer = cls(*sizes, bias=bool(config.get("bias", True)), activation=activation)
        state = _read_weights(folder)
        expected = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()}
        if found != expected:
            raise ModelLoadError(
                f"{folder}: the weights hold {found}, but config.json describes {expected}; "
                "make config.json match the weights (or copy the folder again)"
            )
        layer.load_state_dict(state)
        return layer

    def save(self, folder: Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created)."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.linear.bias is not None,
            "activation_function": self.activation.value,
        }
        (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / "model.safetensors"))


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors of a dense layer's folder: safetensors, else a PyTorch state dict (no code)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = next((folder / f for f in _WEIGHTS if (folder / f).is_file()), None)
    if file is None:
        raise ModelLoadError(f"{folder} has no weights: expected {folder / _WEIGHTS[0]}")
    try:
        if file.suffix == ".safetensors":
            return load_file(str(file))
        state = torch.load(file, map_location="cpu", weights_only=True)  # tensors, never code
    except (SafetensorError, pickle.UnpicklingError, EOFError, RuntimeError, OSError) as exc:
        raise ModelLoadError(
            f"{file} cannot be read as weights ({type(exc).__name__}); copy or download it again"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{file} is not a state dict of tensors")
    return state
