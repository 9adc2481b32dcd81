"""The AugSBERT results table: each model's Spearman on dev (and test), silver pairs and minutes.

Rows are cached in ``results.json`` under a stamp of what they were computed on (the dev and test
pairs and scores, and the model's ``train_report.json``, else the hash of its weights, else its
name), so that a re-run that adds a strategy only evaluates the new model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sentsim.base import PairScorer
from sentsim.data import PairDataset
from sentsim.models import weights_hash


@dataclass(frozen=True)
class ResultRow:
    """One model on dev and test (Spearman ×100 of its scores; ``None`` without that file)."""

    model: str  # "base", "judge", "gold" or a sampling strategy
    path: str
    silver_pairs: int
    train_pairs: int
    dev_spearman: float | None
    test_spearman: float | None
    minutes: float  # sampling + labelling + training time of this row
    stamp: str = ""  # what the scores were computed on; a match lets a re-run reuse them


def evaluate_rows(
    rows: Sequence[ResultRow],
    scorer_for: Callable[[ResultRow], PairScorer],
    *,
    dev: PairDataset | None,
    test: PairDataset | None,
    cache: Path,
    log: Callable[[str], None] = print,
    show_progress: bool | None = None,
) -> list[ResultRow]:
    """Fill in each row's dev and test Spearman, reusing rows of ``cache`` with the same stamp."""
    from sentsim.evaluation.sts import evaluate_sts

    old = {r.get("model"): r for r in _cached_rows(cache)}
    out = []
    for row in rows:
        folder = Path(row.path)
        report = folder / "train_report.json"
        # a model trained here is known by its report (the folder may move); a folder given (a
        # judge) by its weights, as its silver is: trained again in place, it keeps its path
        if report.is_file():
            model = report.read_text(encoding="utf-8")
        else:
            model = weights_hash(folder) if folder.is_dir() else row.path  # else a name
        # the pairs, not the paths: a test file edited in place is compared by no training step
        seen = [_content(dev), _content(test), row.model, model]
        stamp = hashlib.sha256("|".join(seen).encode()).hexdigest()[:16]
        cached = old.get(row.model, {})
        if cached.get("stamp") == stamp:
            out.append(ResultRow(**{**asdict(row), **_scores(cached), "stamp": stamp}))
            continue
        scorer = scorer_for(row)
        dev_score, test_score = (
            evaluate_sts(data, scorer, show_progress=show_progress).spearman if data else None
            for data in (dev, test)
        )
        scores = (("dev", dev_score), ("test", test_score))
        said = [f"{name} {v:.2f}" for name, v in scores if v is not None]
        if said:  # a file not given has no score to print
            log(f"[{row.model}] Spearman " + ", ".join(said))
        values = {"dev_spearman": dev_score, "test_spearman": test_score, "stamp": stamp}
        out.append(ResultRow(**{**asdict(row), **values}))
    return out


def _content(data: PairDataset | None) -> str:
    """A hash of the pairs and scores of ``data`` ("None" without the file)."""
    if data is None:
        return "None"
    rows = [(e.sentence1, e.sentence2, e.score) for e in data.examples]
    return hashlib.sha256(repr(rows).encode("utf-8")).hexdigest()


def _scores(row: dict[str, Any]) -> dict[str, Any]:
    return {"dev_spearman": row.get("dev_spearman"), "test_spearman": row.get("test_spearman")}


def _cached_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8")).get("rows", [])
    except (json.JSONDecodeError, AttributeError):
        return []  # an unreadable old table is recomputed, not trusted
    return [r for r in rows if isinstance(r, dict)]


def results_json(rows: Sequence[ResultRow], steps: dict[str, Any]) -> str:
    """``results.json``: the rows and every step's seconds and counts."""
    return json.dumps({"rows": [asdict(r) for r in rows], "steps": steps}, indent=2) + "\n"


def results_table(
    rows: Sequence[ResultRow], *, dev: str | None, test: str | None, with_gold: bool
) -> str:
    """``results.md``: gold only (or the untrained base) against each sampling strategy."""
    fixed = {"base": "base (no training)", "judge": "judge (cross-encoder)", "gold": "gold only"}
    lines = [
        "# AugSBERT results",
        "",
        f"Dev (model selection): {dev or '—'}. Test (reported only, never used for selection): "
        f"{test or '—'}. Spearman ×100 of cosine (the judge: of its scores).",
        "",
        "| model | silver pairs | train pairs | Spearman dev | Spearman test | minutes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = fixed.get(r.model) or (f"gold + silver {r.model}" if with_gold else r.model)
        cells = [name, str(r.silver_pairs), str(r.train_pairs)]
        cells += ["—" if v is None else f"{v:.2f}" for v in (r.dev_spearman, r.test_spearman)]
        lines.append("| " + " | ".join([*cells, f"{r.minutes:.1f}"]) + " |")
    return "\n".join(lines) + "\n"
