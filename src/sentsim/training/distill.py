"""Embedding distillation: a small bi-encoder learns to reproduce a larger one's vectors.

Reimers & Gurevych (2020), "Making Monolingual Sentence Embeddings Multilingual using Knowledge
Distillation": the student is trained to map each sentence onto the teacher's vector (mean squared
error). Where AugSBERT passes on the teacher's judgement one pair at a time, this passes on the
whole geometry of its vector space from single sentences, so unlabelled text is all it needs.

A teacher wider than the student (all-mpnet-base-v2: 768, MiniLM: 384) is first projected onto the
top principal directions of its own vectors of the training sentences (as sentence-transformers'
distillation example does); the projected vectors are re-normalized, and the run reports how much
of the teacher's variance the projection keeps and how the projected teacher scores on dev, so a
loss from the projection is seen, not guessed.

The teacher's space is then rotated onto the student's own (orthogonal Procrustes: the rotation
that brings the targets closest to the student's vectors of the same sentences). A rotation
changes no cosine, so the teacher's judgement is untouched, but the student no longer has to turn
its whole space to an arbitrary basis before it can learn anything; this matters most for a
student that already encodes well, such as MiniLM.

Objective ``relations`` (fourteenth session) imitates the teacher's cosines instead of its vectors:
the loss is the mean squared difference between the student's and the targets' cosine matrices
within a batch, and each batch holds anchors together with each anchor's nearest neighbour among
the targets, so that close pairs (what a similarity benchmark ranks) are in every batch, not only
the unrelated ones a random batch is made of. Only relations are asked for, so relations the
student already has right are not disturbed on the way to matching absolute positions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from sentsim.bi_encoder import BiEncoder
from sentsim.data import PairDataset
from sentsim.errors import DataError
from sentsim.training.bi import dev_metrics
from sentsim.training.data import check_dev, shuffled_batches

TARGETS = "distill-targets.npy"
TARGETS_INFO = "distill-targets.json"
MIN_SENTENCES = 16
OBJECTIVES = ("vectors", "relations")


@dataclass(frozen=True)
class TargetInfo:
    """Where the targets came from (stored beside them, checked before they are reused)."""

    teacher: str  # name@hash of the teacher's weights
    sentences: int
    sentences_sha1: str
    teacher_dim: int
    dim: int
    kept_variance: float  # share of the teacher vectors' variance the projection keeps (1: none)
    aligned_to: str | None = None  # name@hash of the student the targets were rotated onto
    start_agreement: float | None = None  # mean cos(student, target) before training


@dataclass(frozen=True)
class Targets:
    """Unit-length target vectors, one per training sentence, and their provenance."""

    vectors: NDArray[np.float32]
    info: TargetInfo
    projection: NDArray[np.float32] | None  # (teacher_dim, dim), or None when the widths match


class TeacherEnsemble:
    """Several bi-encoders taught as one, the weighted mean of their cosines.

    Each member's unit vector is scaled by √weight and the parts are concatenated, so the cosine
    of two concatenations is the weighted mean of the members' cosines (weights sum to 1).
    Distilling it passes an ensemble's judgement into one small model; a wide ensemble is then
    projected like any wide teacher.
    """

    def __init__(self, members: Sequence[tuple[BiEncoder, float]]) -> None:
        if not members:
            raise ValueError("a teacher ensemble needs at least one member")
        weights = [w for _, w in members]
        if any(not np.isfinite(w) or w <= 0 for w in weights):
            raise ValueError(f"teacher weights must be positive numbers, got {weights}")
        total = float(sum(weights))
        self.members = [(model, w / total) for model, w in members]
        self.name = " + ".join(f"{w:.2f}·{m.name}" for m, w in self.members)
        self.dim = sum(m.dim for m, _ in self.members)

    def identity(self) -> str:
        """The members' identities and weights (what the target cache is checked against)."""
        return " + ".join(f"{w:.4f}*{m.identity()}" for m, w in self.members)

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool | None = None
    ) -> NDArray[np.float32]:
        """``(len(texts), dim)``: each member's unit vectors scaled by √weight, side by side."""
        parts = []
        for model, weight in self.members:
            vectors = model.encode(texts, batch_size=batch_size, show_progress=show_progress)
            parts.append(project(vectors, None) * np.float32(np.sqrt(weight)))
        return np.concatenate(parts, axis=1)

    def split(self, vectors: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        """Each member's own unit vectors, taken back out of :meth:`encode`'s concatenation."""
        ends = np.cumsum([m.dim for m, _ in self.members])[:-1]
        return [project(part, None) for part in np.split(vectors, ends, axis=1)]


Teacher = BiEncoder | TeacherEnsemble


def principal_projection(
    vectors: NDArray[np.floating], dim: int
) -> tuple[NDArray[np.float32], float]:
    """Top-``dim`` principal directions of ``vectors`` (columns) and the variance share kept."""
    centered = np.asarray(vectors, dtype=np.float64)
    centered = centered - centered.mean(axis=0)
    values, directions = np.linalg.eigh(centered.T @ centered / len(centered))
    order = np.argsort(values)[::-1][:dim]
    kept = float(values[order].sum() / values.sum()) if values.sum() > 0 else 1.0
    return directions[:, order].astype(np.float32), kept


def project(
    vectors: NDArray[np.floating], projection: NDArray[np.float32] | None
) -> NDArray[np.float32]:
    """Apply the projection (if any) and re-normalize each row to unit length."""
    out = np.asarray(vectors, dtype=np.float32)
    if projection is not None:
        out = out @ projection
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.maximum(norms, 1e-12)).astype(np.float32)


def procrustes_rotation(
    source: NDArray[np.floating], target: NDArray[np.floating]
) -> NDArray[np.float32]:
    """The orthogonal ``R`` minimizing ``‖source · R − target‖`` (Schönemann 1966)."""
    u, _, vt = np.linalg.svd(np.asarray(source, np.float64).T @ np.asarray(target, np.float64))
    return (u @ vt).astype(np.float32)


def nearest_neighbours(vectors: NDArray[np.float32], *, chunk: int = 4096) -> NDArray[np.int64]:
    """For each unit-length row, the index of the most similar *other* row (cosine)."""
    if len(vectors) < 2:
        raise ValueError("nearest neighbours need at least two vectors")
    out = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        rows = np.arange(start, min(start + chunk, len(vectors)))
        sims = vectors[rows] @ vectors.T
        sims[rows - start, rows] = -np.inf
        out[rows] = sims.argmax(axis=1)
    return out


def _weights_only(identity: str | None) -> list[tuple[str, str]] | None:
    """An identity without the models' names: ``[(weight, hash), ...]``.

    The weight is ``""`` for a single model. The cache follows the weights, so a teacher folder
    that was moved or linked is still recognized.
    """
    if identity is None:
        return None
    parts = []
    for part in identity.split(" + "):
        weight, star, rest = part.partition("*")
        named = rest if star and re.fullmatch(r"[0-9.]+", weight) else part
        parts.append((weight if named is rest else "", named.rpartition("@")[2]))
    return parts


def _sentences_sha1(sentences: list[str]) -> str:
    digest = hashlib.sha1()
    for s in sentences:
        digest.update(s.encode("utf-8") + b"\n")
    return digest.hexdigest()


def teacher_targets(
    teacher: Teacher,
    sentences: list[str],
    dim: int,
    cache_dir: Path,
    *,
    align_to: BiEncoder | None = None,
    batch_size: int = 64,
    show_progress: bool | None = None,
    log: Any = print,
) -> Targets:
    """Encode ``sentences`` with the teacher (or reuse the vectors cached in ``cache_dir``).

    ``align_to``: the student, whose vectors of the same sentences the targets are rotated onto.
    The cache is reused only when it was made by the same teacher weights from the same sentences
    for the same width, wherever those weights now lie; targets aligned to another student are
    rotated onto this one without encoding again. The cache is written atomically, so a run cut
    off while encoding starts over.
    """
    if len(sentences) < MIN_SENTENCES:
        raise DataError(
            f"{len(sentences)} distinct sentences; distillation needs at least {MIN_SENTENCES}"
        )
    if teacher.dim < dim:
        raise ValueError(
            f"the teacher's vectors ({teacher.dim}-d) are narrower than the student's ({dim}-d); "
            "choose a wider teacher or a narrower student"
        )
    wanted = {
        "teacher": teacher.identity(),
        "sentences": len(sentences),
        "sentences_sha1": _sentences_sha1(sentences),
        "teacher_dim": teacher.dim,
        "dim": dim,
        "aligned_to": align_to.identity() if align_to is not None else None,
    }
    info_path, vectors_path, projection_path = _cache_files(cache_dir)
    vectors: NDArray[np.float32] | None = None
    if info_path.is_file() and vectors_path.is_file():
        stored = json.loads(info_path.read_text(encoding="utf-8"))

        def matches(key: str) -> bool:
            if key in ("teacher", "aligned_to"):
                now = wanted[key]
                return _weights_only(stored.get(key)) == _weights_only(str(now) if now else None)
            return bool(stored.get(key) == wanted[key])

        if all(matches(k) for k in wanted if k != "aligned_to"):
            cached = np.load(vectors_path)
            projection = np.load(projection_path) if projection_path.is_file() else None
            if matches("aligned_to"):
                log(f"reusing the teacher's vectors in {vectors_path}")
                return Targets(cached, TargetInfo(**stored), projection)
            if align_to is not None:
                # A rotation of the cached targets is as good as the teacher encoded again: the
                # best rotation onto the new student is found from them directly.
                log(
                    f"reusing the teacher's vectors in {vectors_path}, rotated onto {align_to.name}"
                )
                vectors, kept = cached, float(stored.get("kept_variance", 1.0))
    if vectors is None:
        log(f"encoding {len(sentences):,} sentences with the teacher {teacher.name}")
        raw = teacher.encode(sentences, batch_size=batch_size, show_progress=show_progress)
        projection, kept = (None, 1.0) if teacher.dim == dim else principal_projection(raw, dim)
        vectors = project(raw, projection)
    agreement = None
    if align_to is not None:
        log(f"encoding them with the student {align_to.name} to align the two spaces")
        own = align_to.encode(sentences, batch_size=batch_size, show_progress=show_progress)
        rotation = procrustes_rotation(vectors, own)
        projection = rotation if projection is None else projection @ rotation
        # a rotation of unit rows: the same as raw · projection
        vectors = project(vectors, rotation)
        agreement = round(float(np.mean(np.sum(vectors * own, axis=1))), 4)
        log(f"mean cosine between the student and its rotated targets before training: {agreement}")
    info = TargetInfo(
        **wanted,  # type: ignore[arg-type]
        kept_variance=round(kept, 4),
        start_agreement=agreement,
    )
    _write_targets(cache_dir, vectors, projection, info)
    return Targets(vectors, info, projection)


def _cache_files(cache_dir: Path) -> tuple[Path, Path, Path]:
    """The target cache's info file, its vectors and its projection."""
    return cache_dir / TARGETS_INFO, cache_dir / TARGETS, cache_dir / "distill-projection.npy"


def _write_targets(
    cache_dir: Path,
    vectors: NDArray[np.float32],
    projection: NDArray[np.float32] | None,
    info: TargetInfo,
) -> None:
    """Store the targets atomically; the info file is written last and marks them complete."""
    info_path, vectors_path, projection_path = _cache_files(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    info_path.unlink(missing_ok=True)  # first: no old info may describe the new arrays
    for path, array in ((vectors_path, vectors), (projection_path, projection)):
        if array is None:
            path.unlink(missing_ok=True)
            continue
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, array)
        os.replace(tmp, path)
    tmp_info = info_path.with_suffix(".tmp")
    tmp_info.write_text(json.dumps(asdict(info), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp_info, info_path)  # last: the info file marks the cache complete


def teacher_dev_scores(
    teacher: Teacher, projection: NDArray[np.float32] | None, dev: PairDataset
) -> dict[str, float]:
    """Spearman ×100 on dev of the teacher as it is and of the targets it gives (projected).

    The second is the most the student can reach by imitation; the gap between the two is what
    the projection to the student's width costs. For an ensemble, ``member I`` is each member's
    own score, from the same encoding.
    """
    from sentsim.evaluation.sts import correlations

    pairs = dev.pairs()
    left = teacher.encode([a for a, _ in pairs], show_progress=False)
    right = teacher.encode([b for _, b in pairs], show_progress=False)
    gold = dev.scores()
    # cosine, as the targets (unit vectors) keep it: a teacher without a Normalize step returns
    # longer vectors
    own = correlations(np.sum(project(left, None) * project(right, None), axis=1), gold)[0]
    pl, pr = project(left, projection), project(right, projection)
    scores = {
        "teacher": round(own, 2),
        "targets": round(correlations(np.sum(pl * pr, axis=1), gold)[0], 2),
    }
    if isinstance(teacher, TeacherEnsemble):
        parts = zip(teacher.split(left), teacher.split(right), strict=True)
        for i, (a, b) in enumerate(parts):
            scores[f"member {i}"] = round(correlations(np.sum(a * b, axis=1), gold)[0], 2)
    return scores


class DistillTask:
    """Adapts a student :class:`BiEncoder` and the teacher's target vectors to the training loop."""

    def __init__(
        self,
        model: BiEncoder,
        sentences: list[str],
        targets: Targets,
        dev: PairDataset | None,
        *,
        sources: list[str] | None = None,
        teacher_dev: dict[str, float] | None = None,
        objective: str = "vectors",
    ) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; expected one of {OBJECTIVES}")
        if targets.vectors.shape != (len(sentences), model.dim):
            raise ValueError(
                f"targets of shape {targets.vectors.shape} do not fit {len(sentences)} sentences "
                f"and a {model.dim}-d student"
            )
        if not model.normalize:
            raise ValueError("the student must normalize its vectors (the targets are unit length)")
        if dev is not None:
            check_dev(dev)
        self.model = model
        self.module = model.module
        self.sentences = sentences
        self.targets = targets
        self.dev = dev
        self.sources = sources or []
        self.teacher_dev = teacher_dev or {}
        self.objective = objective
        self.neighbours = nearest_neighbours(targets.vectors) if objective == "relations" else None

    def batches(self, epoch: int, seed: int, batch_size: int) -> list[list[int]]:
        """Shuffled batches of sentence indices.

        ``relations``: every sentence is an anchor once an epoch, ``batch_size // 2`` anchors to
        a batch, each followed by its nearest neighbour (once, if two anchors share it).
        """
        if self.neighbours is None:
            return shuffled_batches(
                range(len(self.sentences)), epoch=epoch, seed=seed, batch_size=batch_size
            )
        anchors = shuffled_batches(
            range(len(self.sentences)), epoch=epoch, seed=seed, batch_size=max(1, batch_size // 2)
        )
        neighbours = self.neighbours
        return [
            list(dict.fromkeys(i for a in group for i in (a, int(neighbours[a]))))
            for group in anchors
        ]

    def loss(self, batch: list[int]) -> torch.Tensor:
        """The batch's loss under the task's objective.

        ``vectors``: squared distance between the student's and the teacher's unit vectors
        (= 2 − 2 cos). ``relations``: mean squared difference of the two cosine matrices over
        the batch's distinct pairs.
        """
        student = self.model.embed(
            self.model.tokenize([self.sentences[i] for i in batch], self.model.prompt())
        )
        target = torch.from_numpy(self.targets.vectors[batch]).to(student.device, student.dtype)
        if self.objective == "vectors":
            return (student - target).pow(2).sum(dim=1).mean()
        if len(batch) < 2:
            return (student * 0).sum()  # a lone sentence has no relation to learn
        upper = torch.triu_indices(len(batch), len(batch), offset=1, device=student.device)
        own = (student @ student.T)[upper[0], upper[1]]
        wanted = (target @ target.T)[upper[0], upper[1]]
        return (own - wanted).pow(2).mean()

    def evaluate(self) -> dict[str, float]:
        """Spearman ×100 of the student on dev (:func:`~sentsim.training.bi.dev_metrics`)."""
        return dev_metrics(self.model, self.dev)

    def save(self, out: Path) -> None:
        """Write the student in sentence-transformers layout."""
        self.model.save(out)

    def describe(self) -> dict[str, Any]:
        """Facts for the model card."""
        return {
            "kind": (
                "distillation (MSE to the teacher's vectors)"
                if self.objective == "vectors"
                else "distillation (MSE to the teacher's in-batch cosines, nearest-neighbour "
                "batches)"
            ),
            "objective": self.objective,
            "sentences": len(self.sentences),
            "sentence_files": self.sources,
            "dev_file": str(self.dev.path) if self.dev else None,
            "teacher": self.targets.info.teacher,
            "teacher_dim": self.targets.info.teacher_dim,
            "projection_kept_variance": self.targets.info.kept_variance,
            "aligned_to": self.targets.info.aligned_to,
            "start_agreement": self.targets.info.start_agreement,
            "teacher_dev_spearman": self.teacher_dev.get("teacher"),
            "targets_dev_spearman": self.teacher_dev.get("targets"),
        }
