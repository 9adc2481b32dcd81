"""AugSBERT: a cross-encoder labels unlabelled pairs (silver); a bi-encoder learns gold + silver.

Thakur, Reimers, Daxenberger and Gurevych (2021), "Augmented SBERT: Data Augmentation Method for
Improving Bi-Encoders for Pairwise Sentence Scoring Tasks", NAACL. :func:`run_augsbert` runs the
recipe in an output folder; each step is skipped when its output is already complete, and a
training run that was cut off resumes from its checkpoint:

1. the judge: a given cross-encoder (or fused judge), or one trained on gold → ``cross-encoder/``
   with ``calibrate``: its scores mapped onto the gold scale, fitted on dev → ``calibration.json``
   (:mod:`sentsim.training.calibration`)
2. gold only: the bi-encoder on gold → ``model-gold/`` (the baseline, and the ``knn`` encoder)
3. per strategy: sampled pairs → ``silver-<s>-pairs.jsonl``; labelled → ``silver-<s>.jsonl``;
   the bi-encoder on gold (scores normalized to 0–1) + silver → ``model-<s>/``
4. every model on dev (and on test: reported, never used for selection) → ``results.json`` and
   ``results.md``; step times and counts → ``steps.json``

Domain transfer (no gold): the judge was trained elsewhere, silver comes from target sentences,
and each bi-encoder trains on silver alone. Which pairs to label: :mod:`sentsim.training.sampling`;
labelling and silver files: :mod:`sentsim.training.silver`; the table:
:mod:`sentsim.training.augsbert_results`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sentsim.atomic import write_text_atomic
from sentsim.base import PairScorer
from sentsim.errors import DataError, SentsimError
from sentsim.training.augsbert_inputs import AugSbertConfig, RunInputs, check_inputs
from sentsim.training.augsbert_results import (
    ResultRow,
    evaluate_rows,
    results_json,
    results_table,
)
from sentsim.training.calibration import CalibratedScorer, Calibration, fit_calibration
from sentsim.training.data import MIN_TRAIN_ROWS, TargetKind, TrainData, TrainPair, load_train_data
from sentsim.training.sampling import Sampling, given_pairs, sample_pairs
from sentsim.training.silver import (
    label_pairs,
    label_to_file,
    read_pair_list,
    read_silver,
    write_pairs,
)

__all__ = [
    "AugSbertConfig",
    "AugSbertReport",
    "ResultRow",
    "Sampling",
    "label_pairs",
    "run_augsbert",
    "sample_pairs",
]


@dataclass(frozen=True)
class AugSbertReport:
    """The rows of ``results.md`` and the recorded steps."""

    out: Path
    rows: list[ResultRow]
    steps: dict[str, dict[str, Any]]


def run_augsbert(
    config: AugSbertConfig, *, log: Callable[[str], None] = print, show_progress: bool = False
) -> AugSbertReport:
    """Run the recipe of the module docstring in ``config.out``; return the results table."""
    from sentsim.evaluation.scorers import model_scorer
    from sentsim.fusion import load_judge
    from sentsim.models import resolve_model_path, weights_hash

    inputs = check_inputs(config)
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    steps = _Steps(out / "steps.json")
    judge = inputs.judge
    if judge is None:  # train one on gold
        _train(config, "cross-encoder", inputs, [], steps, log, show_progress)
        judge = load_judge(out / "cross-encoder")
    # the judge's identity: "train" (or a folder's name) says nothing of a judge trained again
    judge_dir = out / "cross-encoder" if inputs.judge is None else config.cross_encoder
    judge_weights = weights_hash(resolve_model_path(judge_dir))
    if config.calibrate:
        judge = _calibrated(config, inputs, (judge, judge_weights), steps, log)
    if inputs.gold is not None:
        _train(config, "gold", inputs, [], steps, log, show_progress)
    for strategy in inputs.strategies:
        silver = _silver(config, strategy, inputs, (judge, judge_weights), steps, log)
        _train(config, str(strategy), inputs, silver, steps, log, show_progress)
    rows = evaluate_rows(
        _rows(config, inputs, steps),
        lambda row: judge if row.model == "judge" else model_scorer(row.path),
        dev=inputs.dev,
        test=inputs.test,
        cache=out / "results.json",
        log=log,
        show_progress=show_progress,
    )
    write_text_atomic(out / "results.json", results_json(rows, steps.data))
    dev, test = (str(p) if p else None for p in (config.dev, config.test))
    write_text_atomic(
        out / "results.md", results_table(rows, dev=dev, test=test, with_gold=bool(inputs.gold))
    )
    log(f"results in {out / 'results.md'}")
    return AugSbertReport(out, rows, steps.data)


class _Steps:
    """``steps.json``: each finished step's seconds, counts and parameters."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = (
            json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        )

    def record(self, name: str, **facts: Any) -> None:
        self.data[name] = facts
        write_text_atomic(self.path, json.dumps(self.data, indent=2) + "\n")


def _digest(value: object) -> str:
    """A short hash of ``value``'s repr (pairs, dev examples): its identity in steps.json."""
    return hashlib.sha256(repr(value).encode("utf-8")).hexdigest()[:16]


def _model_dir(out: Path, name: str) -> Path:
    return out / "cross-encoder" if name == "cross-encoder" else out / f"model-{name}"


def _done(model_dir: Path) -> bool:
    """A finished run: ``fit`` writes its report last and then removes the checkpoint."""
    return (model_dir / "train_report.json").is_file() and not (model_dir / "checkpoint").exists()


def _train(
    config: AugSbertConfig,
    name: str,
    inputs: RunInputs,
    silver: list[TrainPair],
    steps: _Steps,
    log: Callable[[str], None],
    show_progress: bool,
) -> None:
    """Train (or resume, or skip) one model: the judge, the gold-only or a gold + silver model."""
    from sentsim.training.card import write_card
    from sentsim.training.loop import fit, has_checkpoint

    out = _model_dir(config.out, name)
    judge = name == "cross-encoder"
    params = {
        "base": str((config.cross_base or config.base) if judge else config.base),
        "loss": None if judge else config.loss,
        **asdict(config.cross_settings if judge else config.settings),
        # what it learnt from and was selected on: another file, or the same one edited, is
        # another model (the silver is compared by its own steps)
        "gold": _digest(inputs.gold.pairs if inputs.gold else None),
        "dev": _digest(inputs.dev.examples if inputs.dev else None),
    }
    recorded = steps.data.get(f"train-{name}", {}).get("params", params)
    # a run recorded before a key was added is compared on the keys it has
    changed = {k: (recorded[k], v) for k, v in params.items() if k in recorded and recorded[k] != v}
    if _done(out) and changed:
        labelled = "the silver-*.jsonl files it labelled, " if judge else ""
        way_out = f"{labelled}and the models trained after it, or choose another --out"
        files = [k for k in ("gold", "dev") if k in changed]  # their hashes would say nothing
        if files:
            raise SentsimError(
                f"{out} was trained on other {' and '.join(files)} data: the "
                f"{' and '.join('--' + k for k in files)} pairs changed since this step ran "
                f"(another file, or the same one edited); delete {out.name}/, {way_out}"
            )
        raise SentsimError(
            f"{out} was trained with other settings {changed} (then, now); delete it, {way_out}"
        )
    if _done(out):
        log(f"[{name}] done already ({out}); skipped")
        return
    task: Any
    if judge:
        from sentsim.cross_encoder import CrossEncoder
        from sentsim.training.cross import CrossEncoderTask, seed_fresh_head

        assert config.gold is not None
        pairs = load_train_data([config.gold], both_orders=True)  # order carries no meaning
        seed_fresh_head(config.cross_settings.seed)
        model = CrossEncoder.load(config.cross_base or config.base, num_labels=1)
        task, settings = CrossEncoderTask(model, pairs, inputs.dev), config.cross_settings
    else:
        from sentsim.bi_encoder import BiEncoder
        from sentsim.training.bi import BiEncoderTask

        gold = inputs.gold or TrainData(TargetKind.GRADED, [], [], [])
        sources = gold.sources + ([str(config.out / f"silver-{name}.jsonl")] if silver else [])
        data = TrainData(TargetKind.GRADED, gold.pairs + silver, [], sources)
        task = BiEncoderTask(BiEncoder.load(config.base), data, inputs.dev, loss=config.loss)
        settings = config.settings
    resume = has_checkpoint(out)
    log(f"[{name}] {'resuming' if resume else 'training'} on {len(task.train.pairs)} pairs → {out}")
    facts = {**task.describe(), "silver_pairs": len(silver)}
    report = fit(
        task, out, settings, resume=resume, show_progress=show_progress, log=log,
        card=lambda report: write_card(
            out, title=f"AugSBERT {name}", command=config.command, facts=facts, report=report
        ),
    )  # fmt: skip
    seconds, trained_on = round(report.seconds, 1), len(task.train.pairs)
    steps.record(f"train-{name}", seconds=seconds, pairs=trained_on, params=params)
    log(f"[{name}] {report.steps} steps in {report.seconds / 60:.1f} min")


def _calibrated(
    config: AugSbertConfig,
    inputs: RunInputs,
    judged_by: tuple[PairScorer, str],
    steps: _Steps,
    log: Callable[[str], None],
) -> CalibratedScorer:
    """The judge with its scores mapped onto the gold scale (fitted on dev, or read back).

    ``judged_by``: the judge and the hash of its weights, recorded with the fit.
    """
    assert inputs.dev is not None and config.dev is not None  # check_inputs requires --dev
    judge, weights = judged_by
    path = config.out / "calibration.json"
    dev = _digest(inputs.dev.examples)
    if path.is_file():
        calibration = Calibration.read(path)
        way_out = "delete it and the silver-*.jsonl files labelled with it, or choose another --out"
        if calibration.dev != str(config.dev):
            raise SentsimError(
                f"{path} was fitted on {calibration.dev}, this run's --dev is {config.dev}: "
                f"{way_out}"
            )
        # a fit recorded before these were kept is trusted, as it was then
        recorded = steps.data.get("calibrate", {})
        if recorded.get("judge_weights", weights) != weights:
            raise SentsimError(
                f"{path} was fitted to another judge's scores (weights "
                f"{recorded['judge_weights']}, this run's {weights}: trained again or changed "
                f"since): {way_out}"
            )
        if recorded.get("dev", dev) != dev:
            raise SentsimError(
                f"{path} was fitted on other dev pairs: the --dev pairs changed since it was "
                f"fitted (the same file edited); {way_out}"
            )
        log(f"[calibrate] found {path}; reused")
        return CalibratedScorer(judge, calibration)
    start = time.perf_counter()
    scores = judge.score_pairs(inputs.dev.pairs(), show_progress=False)
    calibration = fit_calibration(scores, inputs.dev.normalized_scores(), dev=str(config.dev))
    calibration.save(path)
    seconds = round(time.perf_counter() - start, 1)
    steps.record(
        "calibrate",
        seconds=seconds,
        a=calibration.a,
        b=calibration.b,
        judge_weights=weights,
        dev=dev,
    )
    c = calibration
    log(f"[calibrate] judge on {c.pairs} dev pairs: mean {c.judge_mean:.3f}, sd {c.judge_sd:.3f}"
        f" → sigmoid({c.a:.3f} · logit {c.b:+.3f}): mean {c.calibrated_mean:.3f}, sd "
        f"{c.calibrated_sd:.3f} (gold: {c.gold_mean:.3f}, {c.gold_sd:.3f}) → {path}")  # fmt: skip
    return CalibratedScorer(judge, calibration)


def _silver(
    config: AugSbertConfig,
    strategy: Sampling,
    inputs: RunInputs,
    judged_by: tuple[PairScorer, str],
    steps: _Steps,
    log: Callable[[str], None],
) -> list[TrainPair]:
    """Sample (→ ``silver-<s>-pairs.jsonl``) and label (→ ``silver-<s>.jsonl``), or reuse them.

    ``judged_by``: the judge and the hash of its weights, recorded with the labels.
    """
    from sentsim.bi_encoder import BiEncoder
    from sentsim.models import resolve_model_path, weights_hash

    judge, weights = judged_by
    knn = strategy.needs_encoder
    pairs_file, silver_file = (config.out / f"silver-{strategy}{x}.jsonl" for x in ("-pairs", ""))
    encoder = str(config.knn_encoder or "model-gold")  # relative: the folder may move
    where = config.knn_encoder or _model_dir(config.out, "gold")
    ranked_by = weights_hash(resolve_model_path(where)) if knn else None
    ranker = BiEncoder.load(where) if knn else None
    params = {
        "source": str(config.unlabelled or config.gold),
        "sentences": len(inputs.sentences),
        "cap": config.cap,
        "top_k": config.top_k,
        "seed": config.settings.seed,
        "encoder": encoder if knn else None,
        # what it was sampled from and kept clear of: the same files edited are other inputs
        "texts": _digest(inputs.given if strategy == Sampling.GIVEN else inputs.sentences),
        "exclude": _digest(sorted(inputs.exclude)),
        # a model-gold/ trained again (other settings) ranks other partners
        "encoder_weights": ranked_by,
        # what it ranks partners by: the cosine, or a dot-product model's dot product
        "similarity": ranker.similarity_fn_name.value if ranker is not None else None,
    }
    recorded = steps.data.get(f"sample-{strategy}", {}).get("params", params)
    if knn and "similarity" not in recorded:  # sampled before sentsim read it: by cosine
        recorded = {**recorded, "similarity": "cosine"}
    # a step recorded before a key was added is compared on the keys it has
    changed = {k: (recorded[k], v) for k, v in params.items() if k in recorded and recorded[k] != v}
    way_out = f"delete it, silver-{strategy}.jsonl and model-{strategy}/, or choose another --out"
    edited = {
        "texts": f"the sentences of {params['source']}",
        "exclude": "the --gold, --dev and --test pairs it leaves out",
        "encoder_weights": f"the weights of {encoder} (the encoder that ranks knn partners)",
    }
    named = [what for key, what in edited.items() if key in changed]
    if pairs_file.is_file() and named:  # their hashes would say nothing
        raise SentsimError(
            f"{pairs_file} was sampled from other data: {' and '.join(named)} changed since this "
            f"step ran (another file, the same one edited, or a model trained again); {way_out}"
        )
    if pairs_file.is_file() and changed:
        raise SentsimError(
            f"{pairs_file} was sampled with other settings {changed} (then, now); {way_out}"
        )
    if pairs_file.is_file():
        log(f"[{strategy}] sampled pairs found ({pairs_file}); skipped")
        pairs = read_pair_list(pairs_file)
    else:
        start = time.perf_counter()
        if strategy == Sampling.GIVEN:
            pairs = given_pairs(
                inputs.given, cap=config.cap, exclude=inputs.exclude, seed=config.settings.seed
            )
            found = f"{len(pairs)} of the {len(inputs.given)} pairs given"
        else:
            pairs = sample_pairs(
                inputs.sentences,
                strategy,
                cap=config.cap,
                top_k=config.top_k,
                exclude=inputs.exclude,
                encoder=ranker,
                seed=config.settings.seed,
            )
            found = f"{len(pairs)} pairs among {len(inputs.sentences)} sentences"
        if inputs.gold is None and len(pairs) < MIN_TRAIN_ROWS:
            more = "pairs" if strategy == Sampling.GIVEN else "sentences or raise --top-k"
            raise DataError(
                f"{strategy} sampling found {found}; training on silver alone needs at least "
                f"{MIN_TRAIN_ROWS}: add {more}"
            )
        write_pairs(pairs_file, pairs)
        seconds = round(time.perf_counter() - start, 1)
        steps.record(f"sample-{strategy}", seconds=seconds, pairs=len(pairs), params=params)
        log(f"[{strategy}] sampled {found} in {seconds}s → {pairs_file}")
    calibrated = isinstance(judge, CalibratedScorer)
    labelled = steps.data.get(f"label-{strategy}", {}).get("calibrated", calibrated)
    labelled_by = steps.data.get(f"label-{strategy}", {}).get("judge", str(config.cross_encoder))
    if silver_file.is_file() and labelled_by != str(config.cross_encoder):
        raise SentsimError(
            f"{silver_file} was labelled by --cross-encoder {labelled_by}, this run's is "
            f"{config.cross_encoder}: delete it and model-{strategy}/, or choose another --out"
        )
    # a label step recorded before the hash was kept is trusted, as it was then
    labelled_with = steps.data.get(f"label-{strategy}", {}).get("judge_weights", weights)
    if silver_file.is_file() and labelled_with != weights:
        raise SentsimError(
            f"{silver_file} was labelled by another judge (weights {labelled_with}, this run's "
            f"{weights}: trained again or changed since): delete it and model-{strategy}/ to "
            "label its pairs again, or choose another --out"
        )
    if silver_file.is_file() and labelled != calibrated:
        said = {True: "calibrated", False: "raw"}
        raise SentsimError(
            f"{silver_file} holds the judge's {said[labelled]} scores and this run asks for "
            f"{said[calibrated]} ones: delete it and model-{strategy}/, or choose another --out"
        )
    if silver_file.is_file():
        log(f"[{strategy}] silver labels found ({silver_file}); skipped")
        silver = read_silver(silver_file)
        labelled_pairs = steps.data.get(f"label-{strategy}", {}).get("pairs", len(silver))
        if len(silver) != labelled_pairs:  # cut at a line end: every line it has reads well
            raise DataError(
                f"{silver_file}: {len(silver)} pairs, where {labelled_pairs} were labelled into "
                f"it; it was cut or edited: delete it and model-{strategy}/ to label them again"
            )
        return silver
    start = time.perf_counter()
    batch = config.label_batch_size
    label_to_file(
        silver_file, pairs, judge, batch_size=batch, log=lambda x: log(f"[{strategy}] {x}")
    )
    seconds = round(time.perf_counter() - start, 1)
    steps.record(
        f"label-{strategy}",
        seconds=seconds,
        pairs=len(pairs),
        calibrated=calibrated,
        judge=str(config.cross_encoder),
        judge_weights=weights,
    )
    log(f"[{strategy}] labelled {len(pairs)} pairs with {judge.name} in {seconds}s → {silver_file}")
    return read_silver(silver_file)


def _rows(config: AugSbertConfig, inputs: RunInputs, steps: _Steps) -> list[ResultRow]:
    """The models to compare, with their counts and minutes (scores are filled in later)."""
    gold = len(inputs.gold.pairs) if inputs.gold else 0
    judge_at = config.cross_encoder if inputs.judge else _model_dir(config.out, "cross-encoder")
    rows = [
        ("base", str(config.base), 0, 0),
        ("judge", str(judge_at), 0, 0 if inputs.judge else 2 * gold),
    ]
    for name in (["gold"] if inputs.gold else []) + [str(s) for s in inputs.strategies]:
        silver = steps.data.get(f"label-{name}", {}).get("pairs", 0)
        rows.append((name, str(_model_dir(config.out, name)), silver, gold + silver))
    out = []
    for name, path, silver, pairs in rows:
        step = "cross-encoder" if name == "judge" else name
        seconds = sum(steps.data.get(f"{k}-{step}", {}).get("seconds", 0.0) for k in _KINDS)
        out.append(ResultRow(name, path, silver, pairs, None, None, round(seconds / 60, 2)))
    return out


_KINDS = ("sample", "label", "train")
