"""Model cards: what a trained model is, how it was made, and how well it did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sentsim.atomic import write_text_atomic
from sentsim.training.loop import TrainReport


def write_card(
    out: Path, *, title: str, command: str, facts: dict[str, Any], report: TrainReport
) -> Path:
    """Write ``out/README.md`` with the data, command, steps, time and per-epoch dev metrics."""
    keys = _metric_keys(report)
    lines = [
        f"# {title}",
        "",
        "Trained with sentsim. Reproduce with:",
        "",
        f"    {command}",
        "",
        "## Data and settings",
        "",
        "```json",
        json.dumps({**facts, "settings": report.settings}, indent=2),
        "```",
        "",
        "## Run",
        "",
        f"- machine: {report.machine}",
        f"- steps: {report.steps}; time: {report.seconds / 60:.1f} min",
        f"- best epoch (selected on dev): {report.best_epoch}"
        if keys
        else f"- kept: the last epoch, {report.best_epoch} (no dev set to select on)",
        "",
        "| " + " | ".join(["epoch", "steps", "minutes", *keys]) + " |",
        "|---" * (3 + len(keys)) + "|",
    ]
    for row in report.history:
        values = [f"{row.get(k, float('nan')):.2f}" for k in keys]
        cells = [str(row["epoch"]), str(row["steps"]), f"{row['seconds'] / 60:.1f}", *values]
        lines.append("| " + " | ".join(cells) + " |")
    path = out / "README.md"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def _metric_keys(report: TrainReport) -> list[str]:
    keys: list[str] = []
    for row in report.history:
        keys += [k for k in row if k not in ("epoch", "steps", "seconds", "score", *keys)]
    return keys
