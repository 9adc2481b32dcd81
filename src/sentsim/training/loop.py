"""The training loop shared by cross-encoders and bi-encoders.

AdamW, linear warm-up then linear decay, gradient clipping; evaluation on dev after each epoch,
the best epoch's model kept in the output directory. The run checkpoints every
``checkpoint_every`` steps to ``OUT/checkpoint`` (safetensors + JSON, no pickle) so that
``resume=True`` continues a run that was cut off, from the same batch order.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from sentsim.atomic import write_text_atomic
from sentsim.backend import autocast, resolve_precision
from sentsim.choices import Precision
from sentsim.errors import SentsimError
from sentsim.machine import cpu_description

PRECISIONS = tuple(p.value for p in Precision if p != Precision.INT8)  # int8 cannot train


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of a run (all recorded in the checkpoint and the model card)."""

    epochs: int = 4
    batch_size: int = 16
    lr: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    seed: int = 42
    checkpoint_every: int = 200
    #: ``fp32``, or ``bf16`` / ``auto`` for mixed precision: each forward pass and loss under
    #: bfloat16 autocast, the weights, gradients and optimizer state in float32.
    precision: str = "fp32"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "checkpoint_every", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, got {value!r}")
        rules = (
            ("epochs", "--epochs", self.epochs >= 1, "at least 1"),
            ("batch_size", "--batch-size", self.batch_size >= 1, "at least 1"),
            ("lr", "--lr", self.lr > 0, "above 0"),
            ("warmup_ratio", "--warmup", 0 <= self.warmup_ratio < 1, "in [0, 1)"),
            ("weight_decay", "", self.weight_decay >= 0, "at least 0"),
            ("max_grad_norm", "", self.max_grad_norm > 0, "above 0"),
            ("checkpoint_every", "--checkpoint-every", self.checkpoint_every >= 1, "at least 1"),
            ("precision", "--mixed-precision", self.precision in PRECISIONS, "fp32, bf16 or auto"),
        )
        for name, flag, ok, rule in rules:
            if not ok:
                named = f"{name} ({flag})" if flag else name
                raise ValueError(f"{named} must be {rule}, got {getattr(self, name)}")


class Task(Protocol):
    """What the loop needs from a kind of model and its data."""

    module: torch.nn.Module

    def batches(self, epoch: int, seed: int, batch_size: int) -> Sequence[Any]:
        """All batches of one epoch, in a deterministic order given ``seed`` and ``epoch``."""
        ...

    def loss(self, batch: Any) -> torch.Tensor:
        """The training loss of one batch."""
        ...

    def evaluate(self) -> dict[str, float]:
        """Dev metrics; ``score`` (higher is better) selects the best epoch; ``{}`` without dev."""
        ...

    def save(self, out: Path) -> None:
        """Write the model, loadable by its class's ``load``."""
        ...


@dataclass
class TrainReport:
    """What happened: per-epoch metrics, the best epoch, steps and time."""

    settings: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_score: float | None = None  # the best epoch's dev score; None without a dev set
    steps: int = 0
    seconds: float = 0.0
    finished: bool = False
    machine: str = field(default_factory=cpu_description)  # the CPU model, cores and SIMD
    precision: str = "fp32"  # what the forward passes ran in (settings.precision resolved)


def _schedule(total: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


def _optimizer(module: torch.nn.Module, settings: TrainSettings) -> torch.optim.AdamW:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in module.named_parameters():
        if param.requires_grad:
            plain = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
            (no_decay if plain else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": settings.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=settings.lr)


def check_out_dir(out: Path) -> None:
    """Refuse an ``out`` that training would damage: a file, or a folder of other things.

    Training writes config.json, README.md (the card) and the weights into ``out``; a folder that
    holds files but no sentsim run (no train_report.json, no checkpoint) is someone's project.
    """
    if out.exists() and not out.is_dir():
        raise SentsimError(f"--out {out} is a file; give a folder for the model")
    if out.is_dir() and any(out.iterdir()):
        ours = any(  # a run, its checkpoint (or one a kill left half-written or half-renamed),
            (out / name).exists()  # a model a kill left half-saved, distill's teacher targets
            for name in (
                "train_report.json",
                "checkpoint",
                "checkpoint.tmp",
                "checkpoint.old",
                ".saving",
                "distill-targets.json",
            )
        )
        if not ours:
            held = ", ".join(sorted(p.name for p in out.iterdir())[:4])
            raise SentsimError(
                f"--out {out} already holds other files ({held}, ...) and no sentsim run; "
                "training would overwrite them: choose a new or empty folder"
            )


def fit(
    task: Task,
    out: Path,
    settings: TrainSettings,
    *,
    resume: bool = False,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
    start: str | None = None,
    card: Callable[[TrainReport], object] | None = None,
) -> TrainReport:
    """Train ``task`` into ``out``; return the report (also saved as ``train_report.json``).

    ``start``: the identity of the model training began from (e.g. its weights' hash); a resumed
    run must name the same one, since its card will say it started there. ``card``: writes the
    model card from the finished report, before ``train_report.json`` marks the run finished and
    the checkpoint goes, so that a run killed between the two resumes into writing its card.
    A model that computes in int8 is refused: int8 is for inference.
    """
    check_out_dir(out)
    _check_float(task)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint"
    _recover_checkpoint(ckpt)
    torch.manual_seed(settings.seed)
    steps_per_epoch = len(task.batches(0, settings.seed, settings.batch_size))
    if steps_per_epoch == 0:
        raise SentsimError("no training batches: the training data is empty")
    total = steps_per_epoch * settings.epochs
    optimizer = _optimizer(task.module, settings)
    warmup = int(settings.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(total, warmup))
    device = _device(task.module)
    precision = resolve_precision(settings.precision, device)
    report = TrainReport(settings=asdict(settings), precision=precision.value)
    signature = _task_signature(task)  # once: it hashes the training data
    if start is not None:
        signature["start"] = start
    start_epoch, skip = 0, 0
    if resume and (ckpt / "state.json").is_file():
        report, start_epoch, skip = _load_checkpoint(
            ckpt, task, optimizer, scheduler, settings, signature
        )
        log(f"resuming at epoch {start_epoch + 1}, step {skip} of {steps_per_epoch}")
    elif resume and (out / "train_report.json").is_file():  # a retrain would replace its model
        raise SentsimError(
            f"{out} holds a finished run (train_report.json, no checkpoint): nothing to resume; "
            "drop --resume to train it again from the start, or choose another --out"
        )
    elif resume:
        log(f"no checkpoint in {ckpt}; starting from the beginning")
    elif ckpt.exists():
        raise SentsimError(
            f"{out} holds an unfinished run ({ckpt}); pass --resume to continue it or choose "
            "another --out"
        )
    clock = time.perf_counter() - report.seconds
    task.module.train()
    for epoch in range(start_epoch, settings.epochs):
        batches = task.batches(epoch, settings.seed, settings.batch_size)
        bar = tqdm(
            total=len(batches),
            initial=skip,
            desc=f"epoch {epoch + 1}/{settings.epochs}",
            disable=not show_progress,
            unit="step",
        )
        for step in range(skip, len(batches)):
            with autocast(precision, device):
                loss = task.loss(batches[step])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(task.module.parameters(), settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            report.steps += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
            if (step + 1) % settings.checkpoint_every == 0 and step + 1 < len(batches):
                report.seconds = time.perf_counter() - clock
                _save_checkpoint(ckpt, task, optimizer, report, epoch, step + 1, signature)
        bar.close()
        skip = 0
        metrics = task.evaluate()  # {} without a dev set: then the last epoch is kept
        task.module.train()
        report.seconds = time.perf_counter() - clock
        entry = {"epoch": epoch + 1, "steps": report.steps, "seconds": round(report.seconds, 1)}
        report.history.append({**entry, **{k: round(v, 4) for k, v in metrics.items()}})
        said = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) or "no dev set; kept"
        log(f"epoch {epoch + 1}: {said}")
        best = report.best_score
        if not metrics or best is None or metrics["score"] > best:
            report.best_epoch = epoch + 1
            report.best_score = metrics["score"] if metrics else None
            _replace_dir(out, task.save)
            log(f"  best so far; saved to {out}")
        _save_checkpoint(ckpt, task, optimizer, report, epoch + 1, 0, signature)
    report.finished = True
    report.seconds = time.perf_counter() - clock
    if card is not None:
        card(report)
    write_text_atomic(out / "train_report.json", json.dumps(asdict(report), indent=2) + "\n")
    _remove_dir(ckpt)
    return report


def _check_float(task: Task) -> None:
    """Refuse a task whose model computes in int8 (``precision="int8"``, or ``$SENTSIM_PRECISION``).

    Its dev evaluation ran the int8 copy, so the best epoch was chosen, and reported as fp32, on
    scores of weights other than the float32 ones saved.
    """
    model = getattr(task, "model", None)
    if getattr(model, "precision", None) == Precision.INT8:
        raise ValueError(
            f"{getattr(model, 'name', 'the model')} computes in int8, which is for inference: "
            "training chooses its best epoch on dev scores of the float32 weights it saves. Load "
            "it with precision='fp32' (SENTSIM_PRECISION=int8 gives int8 to a model loaded "
            "without one) or set model.precision = 'fp32' before training"
        )


# Files of a saved model's layout (Hugging Face, sentence-transformers, sentsim) besides numbered
# module folders such as 1_Pooling: where a save does not write one, it is the last model's.
_MODEL_FILES = frozenset(
    {
        "config.json",
        "model.safetensors",
        "pytorch_model.bin",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "vocab.txt",
        "modules.json",
        "config_sentence_transformers.json",
        "sentence_bert_config.json",
        "sentsim_config.json",
    }
)


def _replace_dir(out: Path, save: Callable[[Path], None]) -> None:
    """Save the model into a fresh folder, then move its files over the old model's.

    The old model's layout files that the new save does not write are removed: a cross-encoder
    trained into a bi-encoder's earlier run kept its modules.json and loaded as a bi-encoder.
    """
    tmp = out / ".saving"
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    saved = {item.name for item in tmp.iterdir()}
    for item in tmp.iterdir():
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    tmp.rmdir()
    for item in out.iterdir():
        module_dir = item.is_dir() and item.name.split("_")[0].isdigit()
        if item.name not in saved and (item.name in _MODEL_FILES or module_dir):
            shutil.rmtree(item) if item.is_dir() else item.unlink()


# What a checkpoint must share with the run that resumes it besides TrainSettings: the kind of
# task, its loss or objective and the size of its data (another size means other batches); the
# data and dev hashes, the max length and the start are added by _task_signature and fit.
_SIGNATURE_KEYS = ("kind", "loss", "objective", "train_pairs", "sentences")


def _task_signature(task: Task) -> dict[str, Any]:
    describe = getattr(task, "describe", None)
    facts = describe() if callable(describe) else {}
    signature = {k: facts[k] for k in _SIGNATURE_KEYS if k in facts}
    # the data itself (another file of the same size is another run) and the tokens a text keeps
    data = getattr(task, "train", None) or getattr(task, "sentences", None)
    data = getattr(data, "pairs", data)  # TrainData: its pairs, not the files they came from
    if data is not None:
        signature["data_sha256"] = hashlib.sha256(repr(data).encode("utf-8")).hexdigest()[:16]
    # the dev set the best epoch so far was selected on: another would compare unlike scores
    dev = getattr(task, "dev", None)
    dev = getattr(dev, "examples", dev)  # PairDataset: its pairs and scores, not its path
    signature["dev_sha256"] = hashlib.sha256(repr(dev).encode("utf-8")).hexdigest()[:16]
    model = getattr(task, "model", None)
    length = getattr(model, "max_length", None) or getattr(model, "max_seq_length", None)
    if isinstance(length, int):
        signature["max_length"] = length
    return signature


def _save_checkpoint(
    ckpt: Path,
    task: Task,
    optimizer: torch.optim.Optimizer,
    report: TrainReport,
    epoch: int,
    step: int,
    signature: dict[str, Any] | None = None,
) -> None:
    from safetensors.torch import save_file

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model_state = {k: v.detach().contiguous() for k, v in task.module.state_dict().items()}
    save_file(model_state, str(tmp / "model.safetensors"))
    tensors: dict[str, torch.Tensor] = {"rng": torch.get_rng_state()}
    device = _device(task.module)
    if device.type == "cuda":  # dropout on a GPU draws from that device's own generator
        tensors["cuda_rng"] = torch.cuda.get_rng_state(device)
    steps: dict[str, float] = {}
    ids = _param_ids(optimizer)
    for i, state in optimizer.state.items():
        pid = ids[i]
        tensors[f"{pid}.exp_avg"] = state["exp_avg"].contiguous()
        tensors[f"{pid}.exp_avg_sq"] = state["exp_avg_sq"].contiguous()
        steps[str(pid)] = float(state["step"])
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    state_json = {
        "epoch": epoch,
        "step": step,
        "adam_steps": steps,
        "report": asdict(report),
        "task": signature or _task_signature(task),
    }
    (tmp / "state.json").write_text(json.dumps(state_json) + "\n")
    # Renamed aside, not deleted, before the new one takes its name: a kill during a deletion
    # left a checkpoint with its state.json and without its weights, which --resume then read.
    old = ckpt.with_name(ckpt.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt.exists():
        os.replace(ckpt, old)
    os.replace(tmp, ckpt)
    shutil.rmtree(old, ignore_errors=True)


def _remove_dir(folder: Path) -> None:
    """Delete ``folder`` so that a kill part way never leaves it half-deleted under its name."""
    if folder.exists():
        gone = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(gone, ignore_errors=True)
        os.replace(folder, gone)
        shutil.rmtree(gone, ignore_errors=True)


def has_checkpoint(out: Path) -> bool:
    """Whether ``out`` holds an unfinished run's checkpoint (one a kill left mid-swap counts)."""
    _recover_checkpoint(out / "checkpoint")
    return (out / "checkpoint" / "state.json").is_file()


def _recover_checkpoint(ckpt: Path) -> None:
    """Tidy what a kill inside :func:`_save_checkpoint` left: the last whole checkpoint wins.

    Killed between its two renames, the previous checkpoint is still whole under ``.old``; a
    ``.tmp`` folder may be half-written and is never read.
    """
    old = ckpt.with_name(ckpt.name + ".old")
    if old.exists() and not ckpt.exists():
        os.replace(old, ckpt)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(ckpt.with_name(ckpt.name + ".tmp"), ignore_errors=True)


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _param_ids(optimizer: torch.optim.Optimizer) -> dict[torch.Tensor, int]:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return {p: i for i, p in enumerate(params)}


def _load_checkpoint(
    ckpt: Path,
    task: Task,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    settings: TrainSettings,
    signature: dict[str, Any] | None = None,
) -> tuple[TrainReport, int, int]:
    from safetensors.torch import load_file

    state = json.loads((ckpt / "state.json").read_text())
    saved = {"precision": "fp32", **state["report"]["settings"]}  # checkpoints from before it
    if saved != asdict(settings):
        changed = {k: (saved.get(k), v) for k, v in asdict(settings).items() if saved.get(k) != v}
        raise SentsimError(f"--resume with different settings than the checkpoint: {changed}")
    saved_task, task_now = state.get("task"), signature or _task_signature(task)
    # what the checkpoint recorded (older ones hold fewer keys: those are still compared)
    changed = {
        k: (saved_task.get(k), task_now.get(k))
        for k in sorted(saved_task or {})
        if saved_task.get(k) != task_now.get(k)
    }
    if changed:
        raise SentsimError(
            f"--resume with a different task than the checkpoint in {ckpt}: {changed} "
            "(checkpoint, now); run it as it was started, or choose a new --out"
        )
    task.module.load_state_dict(load_file(str(ckpt / "model.safetensors")))
    tensors = load_file(str(ckpt / "optimizer.safetensors"))
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for pid_text, step in state["adam_steps"].items():
        param = params[int(pid_text)]
        optimizer.state[param] = {
            "step": torch.tensor(step),
            # safetensors loads to the CPU; Adam's moments live beside their parameter
            "exp_avg": tensors[f"{pid_text}.exp_avg"].to(param.device),
            "exp_avg_sq": tensors[f"{pid_text}.exp_avg_sq"].to(param.device),
        }
    torch.set_rng_state(tensors["rng"])
    device = _device(task.module)
    if device.type == "cuda" and "cuda_rng" in tensors:
        torch.cuda.set_rng_state(tensors["cuda_rng"], device)
    report = TrainReport(**{**state["report"], "settings": asdict(settings)})
    # Replaying the schedule without optimizer steps is intended here; torch would warn that
    # scheduler.step() came before optimizer.step() (an error where warnings are errors).
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Detected call of `lr_scheduler.step\(\)`", category=UserWarning
        )
        for _ in range(report.steps):
            scheduler.step()
    return report, int(state["epoch"]), int(state["step"])
