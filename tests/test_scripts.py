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


def test_rerank_mix_stores_each_first_stages_own_weight(tmp_path: Path, tiny_st_dir: Path) -> None:
    """scripts/rerank_mix.py chooses the plain weight over the chosen sweeps, and each first
    stage's own weight from its own sweep: the best nDCG@10 gain, 0 when every weight loses."""
    import json
    import sys

    def sweep(name: str, gains: dict[str, float]) -> Path:
        table = {"first stage": {"ndcg@10": 50.0}}
        table |= {f"w={w}": {"ndcg@10": 50.0 + g} for w, g in gains.items()}
        path = tmp_path / f"{name}.json"
        path.write_text("log line\n" + json.dumps({"sweep": table}) + "\n")
        return path

    config = tmp_path / "run" / "mix" / "ce" / "sentsim_config.json"
    config.parent.mkdir(parents=True)
    config.write_text('{"max_length": 256}')
    a = sweep("a", {"0": 0.0, "0.2": 1.0, "0.4": 2.0, "1": -3.0})
    b = sweep("b", {"0": 0.0, "0.2": 3.0, "0.4": 0.5, "1": 1.0})
    examples = sweep("examples", {"0": 0.0, "0.2": 0.4, "0.4": -1.0, "1": -9.0})
    tuned = sweep("tuned", {"0": 0.0, "0.2": -0.1, "0.4": -2.0, "1": -9.0})
    script = Path(__file__).parent.parent / "scripts" / "rerank_mix.py"
    argv = [sys.executable, str(script), "weight", str(tmp_path / "run"), str(a), str(b)]
    argv += ["--with-examples", str(examples), "--after", str(tiny_st_dir), str(tuned)]
    subprocess.run(argv, check=True, capture_output=True, text=True)
    stored = json.loads(config.read_text())
    assert stored["rerank_weight"] == 0.2  # min gain: 0.2 → +1.0, 0.4 → +0.5
    assert stored["rerank_weight_with_examples"] == 0.2
    (entry,) = stored["rerank_weight_by_encoder"].values()
    assert entry["weight"] == 0.0 and "not run" in entry["selected_on"]
    assert stored["max_length"] == 256


def test_paraphrase_beir_makes_queries_of_paraphrases_only(tmp_path: Path) -> None:
    """scripts/paraphrase_beir.py: every distinct second sentence is a document; a first sentence
    is a query only where its pair is a paraphrase (graded ≥ --min-score, or label 1)."""
    import sys

    from sentsim.evaluation.retrieval import load_beir

    graded = tmp_path / "sts.csv"
    graded.write_text(
        "sentence1,sentence2,score\n"
        "a man plays guitar,someone plays a guitar,4.6\n"
        "a dog runs,a cat sleeps,0.5\n"
        "a man plays guitar,a person is playing guitar,4.0\n"
        "kids play,someone plays a guitar,1.0\n"
    )
    script = Path(__file__).parent.parent / "scripts" / "paraphrase_beir.py"
    out = tmp_path / "beir"
    subprocess.run([sys.executable, str(script), str(graded), str(out)], check=True)
    data = load_beir(out, "test")
    assert sorted(text for _, text in data.corpus.values()) == [
        "a cat sleeps", "a person is playing guitar", "someone plays a guitar",
    ]  # fmt: skip
    assert list(data.queries.values()) == ["a man plays guitar"]
    (relevant,) = data.qrels.values()
    assert sorted(data.corpus[d][1] for d in relevant) == [
        "a person is playing guitar", "someone plays a guitar",
    ]  # fmt: skip
    labelled = tmp_path / "mrpc.tsv"
    labelled.write_text("sentence1\tsentence2\tlabel\nx one\ty one\t1\nx two\ty two\t0\n")
    subprocess.run([sys.executable, str(script), str(labelled), str(tmp_path / "m")], check=True)
    assert list(load_beir(tmp_path / "m", "test").queries.values()) == ["x one"]


def test_choose_retriever_stores_the_dev_best_and_keeps_other_keys(tmp_path: Path) -> None:
    """scripts/choose_retriever.py: best nDCG@10 of dev runs without a judge; ties go to dense;
    a test-split run or a re-ranked one is refused."""
    import json
    import sys

    def run(name: str, retriever: str, ndcg: float, **extra: object) -> Path:
        row = {"split": "dev", "data": "d", "retriever": retriever, "rerank": None}
        path = tmp_path / f"{name}.json"
        path.write_text("log\n" + json.dumps({**row, "ndcg@10": ndcg, **extra}) + "\n")
        return path

    model = tmp_path / "model"
    model.mkdir()
    (model / "sentsim_config.json").write_text('{"other": 1}')
    script = [sys.executable, str(Path(__file__).parent.parent / "scripts" / "choose_retriever.py")]

    def choose(*runs: Path) -> subprocess.CompletedProcess[str]:
        argv = [*script, str(model), *map(str, runs)]
        return subprocess.run(argv, capture_output=True, text=True)

    assert choose(run("a", "dense", 70.0), run("b", "hybrid", 71.5)).returncode == 0
    stored = json.loads((model / "sentsim_config.json").read_text())
    assert stored["retriever"] == "hybrid" and stored["other"] == 1
    assert stored["retriever_selected_on"]["ndcg@10"] == {"dense": 70.0, "hybrid": 71.5}
    assert choose(run("c", "hybrid", 80.0), run("d", "dense", 80.0)).returncode == 0
    assert json.loads((model / "sentsim_config.json").read_text())["retriever"] == "dense"
    refused = choose(run("e", "dense", 90.0, split="test"))
    assert refused.returncode != 0 and "needs a dev run" in refused.stderr
