"""Copy a trained model into ``src/sentsim/resources/models/NAME`` as fp16 safetensors.

The training card (README.md), report and sentsim config travel with it; checkpoints and a
distillation run's cached teacher vectors (``distill-*``) do not.
Usage: python scripts/ship_model.py RUN_DIR NAME
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

from sentsim.models import RESOURCES

SKIP = {"checkpoint", "checkpoint.tmp", ".saving"}


def _skipped(name: str) -> bool:
    return name in SKIP or name.startswith("distill-")


def main(run: Path, name: str) -> None:
    target = RESOURCES / "models" / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(run, target, ignore=lambda _d, names: [n for n in names if _skipped(n)])
    for weights in target.rglob("*.safetensors"):
        tensors = load_file(str(weights))
        half = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        save_file(
            {k: v.contiguous() for k, v in half.items()}, str(weights), metadata={"format": "pt"}
        )
    card = target / "README.md"
    if card.exists():
        # The card is titled after the run directory ("# Cross-encoder ce"); name what ships.
        first, _, rest = card.read_text(encoding="utf-8").partition("\n")
        kind = first.lstrip("# ").split(" ")[0] if first.startswith("# ") else "Model"
        card.write_text(f"# {kind} `{name}` (run directory {run})\n{rest}", encoding="utf-8")
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    print(f"{target}: {size / 1e6:.1f} MB (fp16)")
    if size > 50e6:
        raise SystemExit(f"{target} is {size / 1e6:.1f} MB; shipped models must be ≤ 50 MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
