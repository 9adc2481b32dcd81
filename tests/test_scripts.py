"""The shell recipes in scripts/: syntax, and the helpers that decide which steps run again."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.mark.parametrize("script", sorted(SCRIPTS.glob("*.sh")), ids=lambda p: p.name)
def test_recipe_parses(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)


def _steps(tmp_path: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"source {SCRIPTS / 'steps.sh'}; {command}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )


def _run(folder: Path, *, report: bool, checkpoint: bool, mtime: float | None = None) -> Path:
    folder.mkdir()
    if report:
        (folder / "train_report.json").write_text("{}")
        if mtime is not None:
            os.utime(folder / "train_report.json", (mtime, mtime))
    if checkpoint:
        (folder / "checkpoint").mkdir()
    return folder


def test_finished_needs_a_report_and_no_checkpoint(tmp_path: Path) -> None:
    _run(tmp_path / "done", report=True, checkpoint=False)
    _run(tmp_path / "cut", report=False, checkpoint=True)
    _run(tmp_path / "cut-while-saving", report=True, checkpoint=True)
    assert _steps(tmp_path, "finished done").returncode == 0
    for folder in ("cut", "cut-while-saving", "missing"):
        assert _steps(tmp_path, f"finished {folder}").returncode == 1, folder


def test_outdated_removes_a_step_trained_before_its_input(tmp_path: Path) -> None:
    _run(tmp_path / "base", report=True, checkpoint=False, mtime=2_000_000_000)
    _run(tmp_path / "old", report=True, checkpoint=False, mtime=1_000_000_000)
    result = _steps(tmp_path, "outdated old base")
    assert result.returncode == 0
    assert not (tmp_path / "old").exists()
    assert "base changed after old was trained from it" in result.stderr


def test_outdated_keeps_newer_and_unfinished_steps(tmp_path: Path) -> None:
    _run(tmp_path / "base", report=True, checkpoint=False, mtime=1_000_000_000)
    _run(tmp_path / "new", report=True, checkpoint=False, mtime=2_000_000_000)
    _run(tmp_path / "cut", report=False, checkpoint=True)
    _run(tmp_path / "unfinished-base", report=False, checkpoint=True)
    for out, base in (("new", "base"), ("cut", "base"), ("new", "unfinished-base")):
        assert _steps(tmp_path, f"outdated {out} {base}").returncode == 0
        assert (tmp_path / out).exists(), (out, base)
