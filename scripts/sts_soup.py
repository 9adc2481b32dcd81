"""Greedy model soup of bi-encoders on STS-B dev (Wortsman et al. 2022, "Model soups").

    python scripts/sts_soup.py MODEL_DIR [MODEL_DIR ...] [--out DIR]
    python scripts/sts_soup.py START FINE_TUNED --interpolate [--out DIR]

Every model must share one architecture (fine-tuned from the same base). Each is scored alone on
STS-B dev (Spearman ×100 of the cosine); in order of that score, a model joins the soup (the
uniform average of the members' weights) when the soup's dev score does not drop. Prints every
step and the uniform average of all models. Dev only: nothing here reads the test split. The
greedy soup is written to ``--out`` (default ``runs/soup/greedy``), in the first model's layout.

``--interpolate`` (WiSE-FT: Wortsman et al. 2022, "Robust fine-tuning of zero-shot models") takes
two models, a start and a model fine-tuned from it, scores the weights (1 − α) · START + α ·
FINE_TUNED for α = 0, 0.1, …, 1 on dev, and writes the best to ``--out``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from sentsim.data import read_pairs
from sentsim.evaluation.scorers import model_scorer
from sentsim.evaluation.sts import correlations
from sentsim.models import resolve_model_path
from sentsim.settings import dataset_path

WEIGHTS = "model.safetensors"


def _write(
    members: list[Path],
    weights: dict[Path, dict[str, torch.Tensor]],
    out: Path,
    coefficients: list[float] | None = None,
) -> Path:
    """Write the average of ``members``' weights (uniform unless ``coefficients`` are given) into
    a copy of the first member, in float32."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(members[0], out)
    keys = weights[members[0]]
    share = coefficients or [1 / len(members)] * len(members)
    pairs = list(zip(share, members, strict=True))
    average = {k: sum(c * weights[m][k].float() for c, m in pairs) for k in keys}
    save_file({k: v.contiguous() for k, v in average.items()}, str(out / WEIGHTS))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("runs/soup/greedy"))
    parser.add_argument(
        "--interpolate", action="store_true", help="START FINE_TUNED: the best α on dev"
    )
    args = parser.parse_args()
    dev = read_pairs(dataset_path("stsbenchmark", "sts-dev.csv"))
    gold = dev.graded_scores()

    def score(model: Path) -> float:
        cosines = model_scorer(str(model)).score_pairs(dev.pairs(), show_progress=False)
        return correlations(cosines, gold)[0]

    if args.interpolate:
        interpolate([resolve_model_path(str(m)) for m in args.models], args.out, score)
        return

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


def interpolate(models: list[Path], out: Path, score: Callable[[Path], float]) -> None:
    """Score (1 − α) · start + α · fine-tuned on dev for α = 0 … 1; write the best to ``out``."""
    if len(models) != 2:
        raise SystemExit("--interpolate takes two models: START FINE_TUNED")
    weights = {m: load_file(str(m / WEIGHTS)) for m in models}
    if weights[models[0]].keys() != weights[models[1]].keys():
        raise SystemExit(f"{models[0]} and {models[1]} do not share one architecture")
    scores: dict[float, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for step in range(11):
            alpha = step / 10
            written = _write(models, weights, Path(tmp) / "try", [1 - alpha, alpha])
            scores[alpha] = score(written)
            print(f"α {alpha:.1f}: dev {scores[alpha]:.2f}", flush=True)
    best = max(scores, key=lambda a: scores[a])
    _write(models, weights, out, [1 - best, best])
    print(f"best α {best:.1f} (dev {scores[best]:.2f}) written to {out}")


if __name__ == "__main__":
    main()
