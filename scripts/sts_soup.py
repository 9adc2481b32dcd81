"""Greedy model soup of bi-encoders on STS-B dev (Wortsman et al. 2022, "Model soups").

    python scripts/sts_soup.py MODEL_DIR [MODEL_DIR ...] [--out DIR]

Every model must share one architecture (fine-tuned from the same base). Each is scored alone on
STS-B dev (Spearman ×100 of the cosine); in order of that score, a model joins the soup (the
uniform average of the members' weights) when the soup's dev score does not drop. Prints every
step and the uniform average of all models. Dev only: nothing here reads the test split. The
greedy soup is written to ``--out`` (default ``runs/soup/greedy``), in the first model's layout.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from sentsim.data import read_pairs
from sentsim.evaluation.scorers import model_scorer
from sentsim.evaluation.sts import correlations
from sentsim.settings import dataset_path

WEIGHTS = "model.safetensors"


def _write(members: list[Path], weights: dict[Path, dict[str, torch.Tensor]], out: Path) -> Path:
    """Write the uniform average of ``members``' weights into a copy of the first member."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(members[0], out)
    keys = weights[members[0]]
    average = {k: sum(weights[m][k].float() for m in members) / len(members) for k in keys}
    save_file({k: v.contiguous() for k, v in average.items()}, str(out / WEIGHTS))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("runs/soup/greedy"))
    args = parser.parse_args()
    dev = read_pairs(dataset_path("stsbenchmark", "sts-dev.csv"))
    gold = dev.graded_scores()

    def score(model: Path) -> float:
        cosines = model_scorer(str(model)).score_pairs(dev.pairs(), show_progress=False)
        return correlations(cosines, gold)[0]

    alone = {m: score(m) for m in args.models}
    order = sorted(args.models, key=lambda m: -alone[m])
    for m in order:
        print(f"{alone[m]:.2f}  {m}")
    weights = {m: load_file(str(m / WEIGHTS)) for m in order}
    soup, best = [order[0]], alone[order[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for m in order[1:]:
            value = score(_write([*soup, m], weights, Path(tmp) / "try"))
            print(f"  + {m}: {value:.2f} (soup so far {best:.2f})")
            if value >= best:
                soup, best = [*soup, m], value
        uniform = score(_write(order, weights, Path(tmp) / "uniform"))
    print(f"greedy soup of {len(soup)}: dev {best:.2f}")
    print(f"uniform average of all {len(order)}: dev {uniform:.2f}")
    _write(soup, weights, args.out)
    print(f"greedy soup written to {args.out}")


if __name__ == "__main__":
    main()
