"""Embedding distillation: the projection by hand, the teacher's cached vectors, a student that
moves onto its teacher, and the command line — all on tiny BERTs built in seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sentsim.bi_encoder import BiEncoder
from sentsim.cli import main
from sentsim.errors import DataError
from sentsim.training import TrainSettings, fit
from sentsim.training.data import shuffled_batches
from sentsim.training.distill import (
    TARGETS_INFO,
    DistillTask,
    Targets,
    TeacherEnsemble,
    nearest_neighbours,
    principal_projection,
    procrustes_rotation,
    project,
    teacher_dev_scores,
    teacher_targets,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SUBJECTS = ["my card", "the payment", "a transfer", "the atm", "my pin", "the refund"]
STATES = ["was declined", "has not arrived", "is blocked", "works abroad", "was lost"]
SENTENCES = [f"{s} {v}" for s in SUBJECTS for v in STATES]  # 30 distinct sentences


def _redrawn(tiny_bert_dir: Path, out: Path, seed: int, *, width: int | None = None) -> Path:
    """A tiny sentence-transformers model with its own random weights (optionally wider)."""
    from transformers import BertConfig, BertModel

    plain = out / "hf"
    shutil.copytree(tiny_bert_dir, plain)
    torch.manual_seed(seed)
    if width is not None:
        config = BertConfig.from_pretrained(plain)
        config.hidden_size, config.intermediate_size = width, width + 5
        BertModel(config).save_pretrained(plain)
    model = BiEncoder.load(plain, normalize=True, device="cpu")
    with torch.no_grad():
        for param in model.transformer.model.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.2)
    model.save(out / "model")
    return out / "model"


def _gram_gap(student: BiEncoder, targets: Targets) -> float:
    """How far the student's pairwise cosines of SENTENCES are from its targets'."""
    mine = student.encode(SENTENCES)
    return float(np.abs(mine @ mine.T - targets.vectors @ targets.vectors.T).mean())


def _dev_file(tmp_path: Path) -> Path:
    """25 graded pairs of SENTENCES (scores 0–5) as a CSV dev file."""
    dev = tmp_path / "dev.csv"
    rows = [(a, SENTENCES[i + 5], i % 6) for i, a in enumerate(SENTENCES[:25])]
    dev.write_text("sentence1,sentence2,score\n" + "".join(f"{a},{b},{s}\n" for a, b, s in rows))
    return dev


@pytest.fixture(scope="module")
def teacher_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _redrawn(tiny_bert_dir, tmp_path_factory.mktemp("teacher"), seed=7)


@pytest.fixture(scope="module")
def wide_teacher_dir(tiny_bert_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _redrawn(tiny_bert_dir, tmp_path_factory.mktemp("wide-teacher"), seed=8, width=48)


def test_principal_projection_keeps_a_plane_whole() -> None:
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(5, 2)))[0]  # an orthonormal plane in 5-d
    points = rng.normal(size=(200, 2)) @ basis.T + 3.0  # off-centre, on the plane
    directions, kept = principal_projection(points, 2)
    assert directions.shape == (5, 2)
    np.testing.assert_allclose(directions.T @ directions, np.eye(2), atol=1e-5)
    assert kept == pytest.approx(1.0, abs=1e-9)
    centered = points - points.mean(axis=0)
    np.testing.assert_allclose(centered @ directions @ directions.T, centered, atol=1e-4)
    # one direction of an elongated cloud keeps its long axis' share of the variance
    cloud = rng.normal(size=(5000, 2)) * np.array([3.0, 1.0])
    _, share = principal_projection(cloud, 1)
    assert share == pytest.approx(9.0 / 10.0, abs=0.02)


def test_project_renormalizes_and_passes_through_without_projection() -> None:
    vectors = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]])
    np.testing.assert_allclose(project(vectors, None), [[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    first_two = np.eye(3, 2, dtype=np.float32)
    np.testing.assert_allclose(project(vectors, first_two), [[0.6, 0.8], [0.0, 0.0]], atol=1e-6)


def test_cached_targets_are_rotated_onto_another_student_without_encoding_again(
    tiny_st_dir: Path,
    tiny_bert_dir: Path,
    wide_teacher_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    teacher = BiEncoder.load(wide_teacher_dir, device="cpu")
    first = BiEncoder.load(tiny_st_dir, device="cpu")
    second = BiEncoder.load(_redrawn(tiny_bert_dir, tmp_path / "b", seed=11), device="cpu")
    quiet = {"show_progress": False, "log": lambda _: None}
    fresh = teacher_targets(teacher, SENTENCES, 32, tmp_path / "fresh", align_to=second, **quiet)
    cache = tmp_path / "cache"
    teacher_targets(teacher, SENTENCES, 32, cache, align_to=first, **quiet)
    raw = teacher.encode(SENTENCES)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the teacher should not encode again")

    monkeypatch.setattr(teacher, "encode", refuse)
    moved = teacher_targets(teacher, SENTENCES, 32, cache, align_to=second, **quiet)
    assert moved.info.aligned_to == second.identity()
    np.testing.assert_allclose(moved.vectors, fresh.vectors, atol=1e-4)
    assert moved.projection is not None  # still maps the teacher's raw vectors onto the targets
    np.testing.assert_allclose(project(raw, moved.projection), moved.vectors, atol=1e-4)
    assert moved.info.start_agreement == pytest.approx(fresh.info.start_agreement, abs=1e-3)
    again = teacher_targets(teacher, SENTENCES, 32, cache, align_to=second, **quiet)
    np.testing.assert_array_equal(again.vectors, moved.vectors)  # now cached for this student


def test_procrustes_recovers_a_rotation() -> None:
    rng = np.random.default_rng(1)
    rotation = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    source = rng.normal(size=(50, 6))
    found = procrustes_rotation(source, source @ rotation + rng.normal(scale=1e-3, size=(50, 6)))
    np.testing.assert_allclose(found, rotation, atol=1e-3)
    np.testing.assert_allclose(found @ found.T, np.eye(6), atol=1e-5)


def test_aligned_targets_keep_the_teachers_cosines_and_start_near_the_student(
    tiny_st_dir: Path, wide_teacher_dir: Path, tmp_path: Path
) -> None:
    teacher = BiEncoder.load(wide_teacher_dir, device="cpu")
    student = BiEncoder.load(tiny_st_dir, device="cpu")
    quiet = {"show_progress": False, "log": lambda _: None}
    plain = teacher_targets(teacher, SENTENCES, 32, tmp_path / "plain", **quiet)
    aligned = teacher_targets(teacher, SENTENCES, 32, tmp_path / "al", align_to=student, **quiet)
    gram = plain.vectors @ plain.vectors.T
    np.testing.assert_allclose(aligned.vectors @ aligned.vectors.T, gram, atol=1e-4)
    own = student.encode(SENTENCES)
    before = float(np.mean(np.sum(plain.vectors * own, axis=1)))
    assert aligned.info.start_agreement is not None
    assert aligned.info.start_agreement > before + 0.2, (before, aligned.info.start_agreement)
    assert aligned.info.aligned_to == student.identity()
    assert plain.info.aligned_to is None


def test_teacher_targets_are_cached_for_the_same_teacher_and_sentences(
    wide_teacher_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    teacher = BiEncoder.load(wide_teacher_dir, device="cpu")
    first = teacher_targets(
        teacher, SENTENCES, 32, tmp_path, show_progress=False, log=lambda _: None
    )
    assert first.vectors.shape == (len(SENTENCES), 32)
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    assert first.projection is not None and first.projection.shape == (48, 32)
    assert 0.5 < first.info.kept_variance <= 1.0
    stored = json.loads((tmp_path / TARGETS_INFO).read_text())
    assert stored["teacher"] == teacher.identity() and stored["sentences"] == len(SENTENCES)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached vectors should have been reused")

    monkeypatch.setattr(teacher, "encode", refuse)
    again = teacher_targets(teacher, SENTENCES, 32, tmp_path, log=lambda _: None)
    np.testing.assert_array_equal(again.vectors, first.vectors)
    assert again.projection is not None
    np.testing.assert_array_equal(again.projection, first.projection)
    moved = tmp_path / "elsewhere" / "teacher"  # the same weights in another folder: reused
    shutil.copytree(wide_teacher_dir, moved)
    copy = BiEncoder.load(moved, device="cpu")
    assert copy.identity() != teacher.identity()
    monkeypatch.setattr(copy, "encode", refuse)
    np.testing.assert_array_equal(
        teacher_targets(copy, SENTENCES, 32, tmp_path, log=lambda _: None).vectors, first.vectors
    )
    with pytest.raises(AssertionError, match="reused"):  # other sentences: encoded afresh
        teacher_targets(teacher, SENTENCES[::-1], 32, tmp_path, log=lambda _: None)


def test_teacher_targets_refuse_a_narrow_teacher_or_too_few_sentences(
    teacher_dir: Path, tmp_path: Path
) -> None:
    teacher = BiEncoder.load(teacher_dir, device="cpu")
    with pytest.raises(ValueError, match="narrower than the student"):
        teacher_targets(teacher, SENTENCES, 64, tmp_path)
    with pytest.raises(DataError, match="at least 16"):
        teacher_targets(teacher, SENTENCES[:3], 32, tmp_path)
    same = teacher_targets(teacher, SENTENCES, 32, tmp_path, show_progress=False, log=print)
    assert same.projection is None and same.info.kept_variance == 1.0
    np.testing.assert_allclose(same.vectors, teacher.encode(SENTENCES), atol=1e-5)


def test_distillation_moves_the_student_onto_its_teacher(
    tiny_st_dir: Path, wide_teacher_dir: Path, tmp_path: Path
) -> None:
    teacher = BiEncoder.load(wide_teacher_dir, device="cpu")
    targets = teacher_targets(teacher, SENTENCES, 32, tmp_path / "t", log=lambda _: None)
    student = BiEncoder.load(tiny_st_dir, device="cpu")

    def agreement() -> float:  # mean cosine between the student's vectors and its targets
        return float(np.mean(np.sum(student.encode(SENTENCES) * targets.vectors, axis=1)))

    before, gap_before = agreement(), _gram_gap(student, targets)
    task = DistillTask(student, SENTENCES, targets, None)
    settings = TrainSettings(epochs=30, batch_size=8, lr=3e-3, warmup_ratio=0.0, seed=1)
    report = fit(task, tmp_path / "student", settings, show_progress=False, log=lambda _: None)
    assert report.finished and report.steps == 30 * 4
    assert agreement() > before + 0.3, (before, agreement())
    assert _gram_gap(student, targets) < gap_before / 2, (gap_before, _gram_gap(student, targets))
    saved = BiEncoder.load(tmp_path / "student", device="cpu")
    np.testing.assert_allclose(saved.encode(SENTENCES), student.encode(SENTENCES), atol=1e-5)


def test_nearest_neighbours_by_hand() -> None:
    vectors = project(np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0.05]], np.float32), None)
    assert nearest_neighbours(vectors).tolist() == [1, 0, 1, 2]
    assert nearest_neighbours(vectors, chunk=1).tolist() == [1, 0, 1, 2]  # chunks change nothing
    with pytest.raises(ValueError, match="at least two"):
        nearest_neighbours(vectors[:1])


def test_relational_batches_pair_each_anchor_with_its_neighbour(
    tiny_st_dir: Path, teacher_dir: Path, tmp_path: Path
) -> None:
    teacher = BiEncoder.load(teacher_dir, device="cpu")
    targets = teacher_targets(teacher, SENTENCES, 32, tmp_path, log=lambda _: None)
    student = BiEncoder.load(tiny_st_dir, device="cpu")
    task = DistillTask(student, SENTENCES, targets, None, objective="relations")
    nearest = nearest_neighbours(targets.vectors)
    batches = task.batches(epoch=0, seed=1, batch_size=8)
    anchors = shuffled_batches(range(30), epoch=0, seed=1, batch_size=4)
    assert sorted(a for group in anchors for a in group) == list(range(30))  # each once
    assert len(batches) == len(anchors) == 8
    for batch, group in zip(batches, anchors, strict=True):
        assert len(batch) == len(set(batch)) <= 8
        assert set(batch) == set(group) | {int(nearest[a]) for a in group}
    assert batches == task.batches(epoch=0, seed=1, batch_size=8)  # resumable: same batches
    assert batches != task.batches(epoch=1, seed=1, batch_size=8)
    with pytest.raises(ValueError, match="unknown objective"):
        DistillTask(student, SENTENCES, targets, None, objective="matrices")


def test_relational_distillation_imitates_cosines_not_positions(
    tiny_st_dir: Path, wide_teacher_dir: Path, tmp_path: Path
) -> None:
    teacher = BiEncoder.load(wide_teacher_dir, device="cpu")
    targets = teacher_targets(teacher, SENTENCES, 32, tmp_path / "t", log=lambda _: None)
    student = BiEncoder.load(tiny_st_dir, device="cpu")

    # by hand: the loss of one batch is the mean squared gap over its distinct pairs
    batch = [0, 7, 12]
    mine = student.encode([SENTENCES[i] for i in batch])
    wanted = targets.vectors[batch] @ targets.vectors[batch].T
    gaps = [(mine[i] @ mine[j] - wanted[i, j]) ** 2 for i, j in ((0, 1), (0, 2), (1, 2))]
    task = DistillTask(student, SENTENCES, targets, None, objective="relations")
    with torch.no_grad():
        assert float(task.loss(batch)) == pytest.approx(float(np.mean(gaps)), rel=1e-4)
        assert float(task.loss([3])) == 0.0

    gap_before = _gram_gap(student, targets)
    settings = TrainSettings(epochs=30, batch_size=8, lr=3e-3, warmup_ratio=0.0, seed=1)
    fit(task, tmp_path / "student", settings, show_progress=False, log=lambda _: None)
    assert _gram_gap(student, targets) < gap_before / 2, (gap_before, _gram_gap(student, targets))
    assert task.describe()["objective"] == "relations"
    from sentsim.training.loop import _task_signature  # what --resume checks besides settings

    signature = _task_signature(task)
    assert {k: signature[k] for k in ("kind", "objective", "sentences")} == {
        "kind": task.describe()["kind"],
        "objective": "relations",
        "sentences": len(SENTENCES),
    }
    assert len(signature["data_sha256"]) == 16  # the sentences themselves, not just their count


def test_teacher_dev_scores_without_projection_are_the_teachers_own(
    teacher_dir: Path, tmp_path: Path
) -> None:
    from sentsim.data import read_pairs

    dev = _dev_file(tmp_path)
    teacher = BiEncoder.load(teacher_dir, device="cpu")
    scores = teacher_dev_scores(teacher, None, read_pairs(dev))
    assert scores["teacher"] == scores["targets"]
    squash = np.eye(32, 2, dtype=np.float32)  # two dimensions of 32: a different ranking
    assert teacher_dev_scores(teacher, squash, read_pairs(dev))["targets"] != scores["teacher"]


def test_teacher_dev_score_is_its_cosine_when_it_does_not_normalize(
    tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """A teacher without a Normalize step (a plain encoder) is scored by cosine, as eval sts does.

    Its dot products rank pairs differently, and the targets (unit vectors) then seemed to beat
    the teacher they were made from.
    """
    from sentsim.data import read_pairs
    from sentsim.evaluation.sts import correlations
    from sentsim.similarity import cosine_pairwise

    dev = read_pairs(_dev_file(tmp_path))
    teacher = BiEncoder.load(tiny_bert_dir, device="cpu")
    assert not teacher.normalize
    scores = teacher_dev_scores(teacher, None, dev)
    left, right = zip(*dev.pairs(), strict=True)
    cosine = cosine_pairwise(teacher.encode(list(left)), teacher.encode(list(right)))
    assert scores["teacher"] == round(correlations(cosine, dev.scores())[0], 2)
    assert scores["teacher"] == scores["targets"]


def test_distill_task_refuses_targets_of_another_shape(
    tiny_st_dir: Path, teacher_dir: Path, tmp_path: Path
) -> None:
    teacher = BiEncoder.load(teacher_dir, device="cpu")
    targets = teacher_targets(teacher, SENTENCES, 32, tmp_path, log=lambda _: None)
    student = BiEncoder.load(tiny_st_dir, device="cpu")
    with pytest.raises(ValueError, match="do not fit 20 sentences"):
        DistillTask(student, SENTENCES[:20], targets, None)


def test_cli_train_distill(
    tiny_st_dir: Path, wide_teacher_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sentences = tmp_path / "unlabelled.txt"
    sentences.write_text("\n".join([*SENTENCES, "", "my card was declined"]) + "\n")
    dev = _dev_file(tmp_path)
    out = tmp_path / "student"
    args = ["train", "distill", "--teacher", str(wide_teacher_dir), "--sentences", str(sentences)]
    args += ["--dev", str(dev), "--base", str(tiny_st_dir), "--out", str(out), "--epochs", "2"]
    assert main([*args, "--batch-size", "8", "--no-progress", "--json"]) == 0
    printed = capsys.readouterr().out
    assert "48-d → 32-d" in printed
    assert (
        "dev Spearman: teacher" in printed and "start_agreement" in (out / "README.md").read_text()
    )
    report = json.loads(printed.strip().splitlines()[-1])
    assert report["finished"] and len(report["history"]) == 2 and report["steps"] == 2 * 4
    assert "spearman" in report["history"][0]
    card = (out / "README.md").read_text()
    assert "distilled" in card and "projection_kept_variance" in card
    assert BiEncoder.load(out).encode(["my pin"]).shape == (1, 32)

    unscored = tmp_path / "unscored.csv"
    unscored.write_text("sentence1,sentence2\nmy card,the atm\n")
    bad = [
        *args[:6],
        "--dev",
        str(unscored),
        "--base",
        str(tiny_st_dir),
        "--out",
        str(tmp_path / "x"),
    ]
    assert main([*bad, "--no-progress"]) == 1
    error = capsys.readouterr().err
    assert "unscored.csv, line 1" in error and "score" in error


def test_cli_train_distill_from_a_plain_hugging_face_base(
    tiny_bert_dir: Path, teacher_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain BERT folder as --base (no Normalize module) failed after encoding every sentence
    with both models, with 'the student must normalize its vectors' (no option could change that)
    and a start agreement above 1. The student now learns to normalize and is saved so."""
    sentences = tmp_path / "unlabelled.txt"
    sentences.write_text("\n".join(SENTENCES) + "\n")
    out = tmp_path / "student"
    args = ["train", "distill", "--teacher", str(teacher_dir), "--sentences", str(sentences)]
    args += ["--base", str(tiny_bert_dir), "--out", str(out), "--epochs", "1"]
    assert main([*args, "--batch-size", "8", "--no-progress"]) == 0
    agreement = json.loads((out / TARGETS_INFO).read_text())["start_agreement"]
    assert -1.0 <= agreement <= 1.0
    student = BiEncoder.load(out)
    assert student.normalize
    norms = np.linalg.norm(student.encode(SENTENCES[:3]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_teacher_ensemble_cosine_is_the_weighted_mean_of_its_members(
    teacher_dir: Path, wide_teacher_dir: Path, tmp_path: Path
) -> None:
    narrow = BiEncoder.load(teacher_dir, device="cpu")
    wide = BiEncoder.load(wide_teacher_dir, device="cpu")
    ensemble = TeacherEnsemble([(narrow, 1.0), (wide, 3.0)])  # weights 0.25 / 0.75
    assert ensemble.dim == 32 + 48 and [w for _, w in ensemble.members] == [0.25, 0.75]
    vectors = ensemble.encode(SENTENCES)
    assert vectors.shape == (len(SENTENCES), 80)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    a, b = narrow.encode(SENTENCES), wide.encode(SENTENCES)
    np.testing.assert_allclose(vectors @ vectors.T, 0.25 * (a @ a.T) + 0.75 * (b @ b.T), atol=1e-5)
    # the cache is keyed by the members and their weights
    quiet = {"show_progress": False, "log": lambda _: None}
    first = teacher_targets(ensemble, SENTENCES, 32, tmp_path, **quiet)
    assert first.info.teacher_dim == 80 and first.projection is not None
    other = TeacherEnsemble([(narrow, 1.0), (wide, 1.0)])
    assert other.identity() != ensemble.identity()
    again = teacher_targets(other, SENTENCES, 32, tmp_path, **quiet)
    assert again.info.teacher == other.identity()
    assert not np.allclose(again.vectors @ again.vectors.T, first.vectors @ first.vectors.T)
    # the members' dev scores come out of the ensemble's own encoding, equal to theirs alone
    from sentsim.data import read_pairs

    dev = read_pairs(_dev_file(tmp_path))
    scores = teacher_dev_scores(ensemble, None, dev)
    assert scores["member 0"] == teacher_dev_scores(narrow, None, dev)["teacher"]
    assert scores["member 1"] == teacher_dev_scores(wide, None, dev)["teacher"]
    for weights in ([], [(narrow, 0.0)], [(narrow, float("nan"))]):
        with pytest.raises(ValueError, match="teacher"):
            TeacherEnsemble(weights)


def test_cli_train_distill_from_an_ensemble(
    tiny_st_dir: Path,
    teacher_dir: Path,
    wide_teacher_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sentences = tmp_path / "unlabelled.txt"
    sentences.write_text("\n".join(SENTENCES) + "\n")
    out = tmp_path / "student"
    args = ["train", "distill", "--sentences", str(sentences), "--base", str(tiny_st_dir)]
    args += ["--teacher", str(teacher_dir), "--teacher", str(wide_teacher_dir)]
    args += ["--out", str(out), "--epochs", "1", "--batch-size", "8", "--no-progress"]
    assert main([*args, "--teacher-weight", "0.5"]) == 1
    assert "1 --teacher-weight for 2 --teacher" in capsys.readouterr().err
    assert not out.exists()
    few = tmp_path / "few.txt"
    few.write_text("one sentence\n\n  \none sentence\nanother\n")
    assert main([*args[:2], "--sentences", str(few), *args[4:]]) == 1
    assert f"{few}: 2 distinct non-blank sentences; distillation needs" in capsys.readouterr().err
    assert main([*args, "--teacher-weight", "0.5", "--teacher-weight", "1.5"]) == 0
    printed = capsys.readouterr().out
    assert "80-d → 32-d" in printed and "dev Spearman" not in printed  # no --dev given
    dev = _dev_file(tmp_path)
    args[args.index(str(out))] = str(tmp_path / "with-dev")
    assert main([*args, "--dev", str(dev)]) == 0
    printed = capsys.readouterr().out
    assert "dev Spearman: teacher" in printed
    assert printed.count("(weight 0.50): dev Spearman") == 2
    stored = json.loads((out / TARGETS_INFO).read_text())
    assert stored["teacher"].startswith("0.2500*") and " + 0.7500*" in stored["teacher"]
