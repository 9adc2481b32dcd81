"""``sentsim train cross-encoder`` and ``sentsim train bi-encoder``."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from sentsim.atomic import atomic_text
from sentsim.cli._common import (
    add_mixed_precision_option,
    prepare_outputs,
    print_json,
    progress,
)

#: Tokens per pair a cross-encoder trains on without --max-length (fewer if the base reads fewer).
_CROSS_MAX_LENGTH = 128


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``."""
    p_train = subparsers.add_parser("train", help="train a cross-encoder or a bi-encoder")
    kinds = p_train.add_subparsers(dest="kind", metavar="KIND", required=True)

    p = kinds.add_parser("cross-encoder", help="train a pair scorer ([CLS] a [SEP] b [SEP])")
    _common_options(p, default_lr=5e-5)
    p.add_argument("--labels", nargs="+", help="class names in output order (multi-class data)")
    p.add_argument(
        "--max-length",
        type=int,
        help=f"tokens per pair, longest text cut first (default: {_CROSS_MAX_LENGTH}, or what the "
        "base reads if fewer)",
    )
    p.add_argument(
        "--loss",
        choices=["pointwise", "listwise"],
        default="pointwise",
        help="pointwise (default): pair files (scores, 0/1 labels or classes); listwise: anchor, "
        "positive, negative rows (sentsim mine), a softmax over each anchor's positive and "
        "negatives; --batch-size then counts anchors and --dev takes such rows too",
    )
    p.set_defaults(func=_train_cross, writes_model="train cross-encoder")

    p = kinds.add_parser(
        "bi-encoder", help="fine-tune a bi-encoder on graded pairs or (anchor, positive) rows"
    )
    _common_options(p, default_lr=2e-5)
    p.add_argument(
        "--loss",
        choices=("cosent", "cosine-mse", "mnrl", "corpus-softmax"),
        default="cosent",
        help="cosent (default) or cosine-mse (graded pairs); mnrl or corpus-softmax (anchor, "
        "positive rows; corpus-softmax: every distinct positive is a class, for small fixed "
        "corpora)",
    )
    p.add_argument(
        "--corpus", type=Path, help="corpus-softmax: every document of this corpus is a negative"
    )
    _max_seq_length_option(p)
    p.set_defaults(func=_train_bi, writes_model="train bi-encoder")

    p = kinds.add_parser(
        "distill", help="train a bi-encoder to reproduce a larger bi-encoder's vectors"
    )
    _common_options(p, default_lr=5e-5, pairs=False)
    p.add_argument(
        "--teacher",
        required=True,
        action="append",
        help="bi-encoder to imitate: name or directory; repeat to imitate an ensemble (the "
        "weighted mean of the members' cosines)",
    )
    p.add_argument(
        "--teacher-weight",
        action="append",
        type=float,
        help="weight of each --teacher, in the same order (default: equal)",
    )
    p.add_argument(
        "--sentences",
        action="append",
        required=True,
        type=Path,
        help="unlabelled text (repeat): .txt one per line, or .jsonl/.csv/.tsv with 'text' or "
        "'sentence1'/'sentence2'",
    )
    p.add_argument(
        "--no-align",
        action="store_true",
        help="keep the teacher's basis (default: rotate the targets onto the student's own space)",
    )
    p.add_argument(
        "--objective",
        choices=("vectors", "relations"),
        default="vectors",
        help="imitate the teacher's vectors (MSE), or its cosines within each batch, batches "
        "built from nearest-neighbour pairs (default: vectors)",
    )
    _max_seq_length_option(p, who="the student")
    p.set_defaults(func=_train_distill, writes_model="train distill")
    register_mine(subparsers)

    p = subparsers.add_parser(
        "fuse", help="fuse a cross-encoder with bi-encoders' cosines, weights chosen on dev"
    )
    p.add_argument("--cross-encoder", required=True, type=Path, help="cross-encoder directory")
    p.add_argument(
        "--bi-encoder",
        required=True,
        action="append",
        help="bi-encoder name or directory (repeat for a fusion of several)",
    )
    p.add_argument("--dev", required=True, type=Path, help="graded pair file (never test)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_fuse, writes_model="fuse")


def register_mine(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mine``."""
    p = subparsers.add_parser("mine", help="mine hard negatives for (anchor, positive) rows")
    p.add_argument("--train", required=True, type=Path, help="JSONL/CSV with anchor, positive")
    p.add_argument("--corpus", type=Path, help="extra candidate texts (corpus JSONL/CSV/folder)")
    p.add_argument(
        "--model", default="minilm", help="bi-encoder that finds candidates (default: minilm)"
    )
    p.add_argument("--bm25", action="store_true", help="also take candidates from BM25")
    p.add_argument("--no-dense", action="store_true", help="BM25 candidates only (with --bm25)")
    p.add_argument(
        "--cross-encoder",
        metavar="CE",
        help="drop candidates this judge scores --max-judge-score (0.5) or more with their "
        "anchor (a fused judge such as ce-sts: its fusion with its bi-encoder, the score "
        "`sentsim similarity --cross-encoder CE` prints; any other: the cross-encoder on "
        "(anchor, candidate), that order)",
    )
    p.add_argument(
        "--max-judge-score",
        type=float,
        metavar="S",
        help="with --cross-encoder: keep only candidates the judge scores below S, a number from "
        "0 to 1 (default: 0.5; lower keeps only clearer negatives, higher trusts the "
        "candidates more)",
    )
    p.add_argument(
        "--negatives", type=int, default=3, help="negatives per (anchor, positive) row (default: 3)"
    )
    p.add_argument(
        "--rank-window",
        nargs=2,
        type=int,
        default=[1, 30],
        metavar=("FROM", "TO"),
        help="take negatives only from these candidate ranks (default: 1 30)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.0,
        help="keep candidates this far below the positive in the bi-encoder's similarity (a "
        "cosine; a dot product for a dot-product model, as search ranks) (default: 0)",
    )
    p.add_argument("--pairs", action="store_true", help="write labelled pairs (for cross-encoders)")
    p.add_argument("--out", required=True, type=Path, help="output JSONL (written whole)")
    p.set_defaults(func=_mine)


def _mine(args: argparse.Namespace) -> int:
    import json
    import time

    from sentsim.bi_encoder import BiEncoder
    from sentsim.training.data import read_triples
    from sentsim.training.mining import MiningSettings, mine_negatives

    if args.no_dense and args.margin:
        raise ValueError(
            "--margin compares the bi-encoder's similarities (cosines; a dot-product model's dot "
            "products), which --no-dense does not compute; drop one of them"
        )
    threshold = MiningSettings.max_judge_score  # the default, 0.5
    if args.max_judge_score is not None:
        threshold = args.max_judge_score
        if not args.cross_encoder:  # without a judge it would silently do nothing
            raise ValueError(
                "--max-judge-score is the --cross-encoder judge's threshold; give --cross-encoder "
                "CE or drop it"
            )
        if not 0 <= args.max_judge_score <= 1:  # NaN too
            raise ValueError(
                f"--max-judge-score {args.max_judge_score}: the judge scores from 0 to 1; give a "
                "number from 0 to 1 (default: 0.5)"
            )
    prepare_outputs(  # before the mining, not after it
        ("--out", args.out),
        inputs=(("the --train file", args.train), ("the --corpus file", args.corpus)),
        fix="give the mined rows a file of their own",
    )
    start = time.perf_counter()
    triples = read_triples(args.train, min_rows=1, purpose="mining")
    corpus: list[str] = []
    if args.corpus:
        from sentsim.corpus import document_text, read_corpus

        corpus = [document_text(d) for d in read_corpus(args.corpus)]
    judge = None
    if args.cross_encoder:
        from sentsim.cross_encoder import CrossEncoder
        from sentsim.fusion import judge_scorer, read_fusion

        # a fused judge scores with its fusion, as load_judge does; a plain one reads (anchor,
        # candidate) in that order (a query -> passage judge never saw the other); one of several
        # outputs (NLI) stays a CrossEncoder, which mine_negatives refuses by name
        model = CrossEncoder.load(args.cross_encoder)
        fused = model.source is not None and read_fusion(model.source) is not None
        judge = judge_scorer(model) if fused and model.num_labels == 1 else model
    settings = MiningSettings(
        negatives=args.negatives,
        rank_window=tuple(args.rank_window),
        margin=args.margin,
        use_bm25=args.bm25,
        use_dense=not args.no_dense,
        max_judge_score=threshold,
    )
    encoder = None if args.no_dense else BiEncoder.load(args.model)
    mined = mine_negatives(triples, encoder, corpus=corpus, settings=settings, judge=judge)
    # written beside --out and renamed into place: a kill mid-write left a shorter file of whole
    # JSON lines at --out that looked finished
    with atomic_text(args.out) as handle:
        if args.pairs:
            for t in triples:
                row = {"sentence1": t.anchor, "sentence2": t.positive, "label": 1}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            for t in mined:
                row = {"sentence1": t.anchor, "sentence2": t.negative, "label": 0}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            for t in mined:
                row = {"anchor": t.anchor, "positive": t.positive, "negative": t.negative}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    took = time.perf_counter() - start
    anchors = {t.anchor for t in triples}
    bare = len(anchors - {t.anchor for t in mined})
    print(
        f"mined {len(mined)} negatives for {len(anchors)} anchors ({bare} left without one: no "
        f"candidate passed the filters) into {args.out} in {took:.0f}s"
    )
    return 0


def _fuse(args: argparse.Namespace) -> int:
    from sentsim.bi_encoder import BiEncoder
    from sentsim.cross_encoder import CrossEncoder
    from sentsim.data import read_pairs
    from sentsim.errors import DataError
    from sentsim.evaluation.scorers import EncoderPairScorer
    from sentsim.evaluation.sts import correlations
    from sentsim.fusion import CrossEncoderScorer, choose_weight, model_reference, write_fusion

    if not args.cross_encoder.is_dir():
        raise DataError(
            f"--cross-encoder {args.cross_encoder}: no such folder; the fusion is stored in the "
            "cross-encoder's own folder, so give a folder (to re-fuse a shipped judge such as "
            "ce-sts, copy its folder first)"
        )
    dev = read_pairs(args.dev)
    pairs, gold = dev.pairs(), dev.scores()
    if len(set(gold.tolist())) < 2:  # before anything is scored: Spearman needs two values
        raise DataError(
            f"{args.dev}: {len(pairs)} scored pair(s), all scored the same; choosing fusion "
            "weights needs at least 2 pairs with different scores"
        )
    show = progress(args)
    judge = CrossEncoderScorer(CrossEncoder.load(args.cross_encoder))  # one output, or refused
    # every model loaded before any is run: a bi-encoder that could not load was found only
    # after the judge had scored the whole dev set
    # cosines, a dot-product model's too, as the fused judge scores them (fusion.judge_scorer)
    encoders = [
        (name, EncoderPairScorer(BiEncoder.load(name), metric="cosine")) for name in args.bi_encoder
    ]
    ce = judge.score_pairs(pairs, show_progress=show)
    first, *others = ((name, bi.score_pairs(pairs, show_progress=show)) for name, bi in encoders)
    folder = args.cross_encoder
    config, fused = choose_weight(
        ce,
        first[1],
        gold,
        bi_encoder=model_reference(first[0], folder),
        selected_on=str(args.dev),
        extra=[(model_reference(name, folder), cos) for name, cos in others],
    )
    write_fusion(args.cross_encoder, config)
    alone = ", ".join(f"{name} {correlations(cos, gold)[0]:.2f}" for name, cos in [first, *others])
    weights = ", ".join(
        [f"{first[0]} {config.bi_weight}"]
        + [f"{name} {t.weight}" for (name, _), t in zip(others, config.extra, strict=True)]
    )
    print(
        f"dev Spearman: cross-encoder {correlations(ce, gold)[0]:.2f}, {alone}; "
        f"fused {fused:.2f} at w={config.weight} (bi-encoders: {weights})"
    )
    return 0


def _common_options(p: argparse.ArgumentParser, *, default_lr: float, pairs: bool = True) -> None:
    if pairs:
        p.add_argument(
            "--train", action="append", required=True, type=Path, help="pair file (repeat)"
        )
    p.add_argument("--dev", type=Path, help="pair file to select the best epoch on")
    p.add_argument(
        "--base", default="minilm", help="model to start from: name or directory (default: minilm)"
    )
    p.add_argument("--out", required=True, type=Path, help="output model directory")
    p.add_argument("--epochs", type=int, default=4, help="passes over the data (default: 4)")
    p.add_argument("--batch-size", type=int, default=16, help="examples a step (default: 16)")
    p.add_argument(
        "--lr", type=float, default=default_lr, help=f"peak learning rate (default: {default_lr:g})"
    )
    p.add_argument(
        "--warmup", type=float, default=0.1, help="fraction of steps to warm up over (default: 0.1)"
    )
    p.add_argument(
        "--seed", type=int, default=42, help="batch order, dropout, a fresh head (default: 42)"
    )
    if pairs:
        p.add_argument("--both-orders", action="store_true", help="train on (a, b) and (b, a)")
    p.add_argument(
        "--checkpoint-every", type=int, default=200, help="steps between checkpoints (default: 200)"
    )
    add_mixed_precision_option(p)
    p.add_argument("--resume", action="store_true", help="continue the run checkpointed in --out")
    if pairs:
        p.add_argument(
            "--skip-bad-rows", action="store_true", help="skip malformed rows, saying which"
        )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument("--json", action="store_true", help="end with one JSON line (the report)")


def _max_seq_length_option(p: argparse.ArgumentParser, who: str = "the model") -> None:
    p.add_argument(
        "--max-length",
        type=int,
        help=f"tokens per text that {who} reads, the rest cut (default: the base's, 256 for "
        "minilm); saved with the model",
    )


def _settings(args: argparse.Namespace):
    from sentsim.training import TrainSettings
    from sentsim.training.loop import check_out_dir

    check_out_dir(args.out)  # before any file is read or model loaded, not after encoding
    length = getattr(args, "max_length", None)
    if length is not None and length < 1:
        raise ValueError(f"--max-length {length}: a model reads at least 1 token; give 1 or more")
    return TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_ratio=args.warmup,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        precision=args.mixed_precision,
    )


def _start(args: argparse.Namespace) -> str:
    """The base model's weights hash: a resumed run must start from the same weights."""
    from sentsim.models import resolve_model_path, weights_hash

    return f"weights {weights_hash(resolve_model_path(args.base))}"


def _dev(args: argparse.Namespace):
    from sentsim.data import read_pairs
    from sentsim.training.data import check_dev

    dev = read_pairs(args.dev) if args.dev else None
    if dev is not None:
        check_dev(dev)  # now, not after the first epoch of training
    return dev


def _fit_and_finish(args: argparse.Namespace, task, settings, title: str) -> int:
    """Train ``task`` into --out (resumed with --resume), then write its card and report."""
    from dataclasses import asdict

    from sentsim.training import fit
    from sentsim.training.card import write_card

    command = "sentsim " + " ".join(shlex.quote(a) for a in args.argv if a != "--resume")
    report = fit(
        task,
        args.out,
        settings,
        resume=args.resume,
        show_progress=not args.no_progress,
        start=_start(args),
        card=lambda report: write_card(
            args.out, title=title, command=command, facts=task.describe(), report=report
        ),
    )
    print(
        (
            f"best epoch {report.best_epoch} (dev score {report.best_score:.2f})"
            if report.best_score is not None
            else f"kept the last epoch, {report.best_epoch} (no --dev to select on)"
        )
        + f"; model in {args.out}"
    )
    if args.json:
        print_json(asdict(report))
    return 0


def _train_cross(args: argparse.Namespace) -> int:
    settings = _settings(args)  # bad numbers fail before any file or model is read
    from sentsim.training.cross import CrossEncoderTask, seed_fresh_head
    from sentsim.training.data import TargetKind, load_train_data

    if args.loss == "listwise":
        return _train_cross_listwise(args, settings)
    train = load_train_data(
        args.train,
        both_orders=args.both_orders,
        labels=args.labels,
        skip_bad_rows=args.skip_bad_rows,
    )
    if args.labels and train.kind != TargetKind.CLASSES:
        raise ValueError(
            f"--labels names classes, but the training data holds {train.kind.value} targets "
            "(scores or 0/1 labels): leave --labels out"
        )
    dev = _dev(args)
    num_labels = len(train.labels) if train.kind == TargetKind.CLASSES else 1
    labels = train.labels if train.kind == TargetKind.CLASSES else None
    seed_fresh_head(args.seed)
    model = _cross_base(args, num_labels=num_labels, labels=labels)
    task = CrossEncoderTask(model, train, dev)
    return _fit_and_finish(args, task, settings, f"Cross-encoder {args.out.name}")


def _cross_base(args: argparse.Namespace, **head):
    """``--base`` with a fresh scoring head, reading ``--max-length`` tokens a pair.

    Left out, the length is 128, or the base's own if shorter (its saved max length, else what
    its position embeddings and tokenizer read): a default must not be refused as a length the
    model cannot read.
    """
    from sentsim.cross_encoder import CrossEncoder

    model = CrossEncoder.load(args.base, max_length=args.max_length, **head)
    if args.max_length is None:
        model.max_length = min(_CROSS_MAX_LENGTH, model.max_length)
    return model


def _train_cross_listwise(args: argparse.Namespace, settings) -> int:
    from sentsim.training.cross import (
        CrossEncoderListwiseTask,
        groups_from_triples,
        seed_fresh_head,
    )
    from sentsim.training.data import read_triples

    if args.both_orders or args.labels or args.skip_bad_rows:
        raise ValueError(
            "--both-orders, --labels and --skip-bad-rows are for pointwise pair files; listwise "
            "rows (anchor, positive, negative) must all be valid"
        )
    train = [g for path in args.train for g in groups_from_triples(read_triples(path), str(path))]
    dev = (
        groups_from_triples(read_triples(args.dev, min_rows=1), str(args.dev)) if args.dev else None
    )
    seed_fresh_head(args.seed)
    model = _cross_base(args, num_labels=1)
    sources = [str(p) for p in args.train]
    task = CrossEncoderListwiseTask(model, train, dev, sources=sources)
    return _fit_and_finish(args, task, settings, f"Cross-encoder {args.out.name}")


def _train_bi(args: argparse.Namespace) -> int:
    settings = _settings(args)  # bad numbers fail before any file or model is read
    from sentsim.bi_encoder import BiEncoder
    from sentsim.training.bi import BiEncoderTask, CorpusSoftmaxTask, RetrievalTask
    from sentsim.training.data import load_train_data, read_triples

    task: BiEncoderTask | RetrievalTask
    if args.corpus and args.loss != "corpus-softmax":
        raise ValueError(
            f"--corpus is the softmax's documents: it needs --loss corpus-softmax, not {args.loss}"
        )
    if args.loss in ("mnrl", "corpus-softmax") and (args.both_orders or args.skip_bad_rows):
        raise ValueError(
            f"--both-orders and --skip-bad-rows are for pair files (cosent, cosine-mse); "
            f"{args.loss} reads anchor / positive rows, which must all be valid"
        )
    if args.loss in ("mnrl", "corpus-softmax"):
        triples = [t for path in args.train for t in read_triples(path)]
        dev = read_triples(args.dev, min_rows=1) if args.dev else None
        model = BiEncoder.load(args.base, max_seq_length=args.max_length)
        if args.loss == "mnrl":
            task = RetrievalTask(model, triples, dev)
        else:
            corpus: list[str] = []
            if args.corpus:
                from sentsim.corpus import document_text, read_corpus

                corpus = [document_text(d) for d in read_corpus(args.corpus)]
            task = CorpusSoftmaxTask(model, triples, dev, corpus=corpus)
    else:
        train = load_train_data(
            args.train, both_orders=args.both_orders, skip_bad_rows=args.skip_bad_rows
        )
        pairs_dev = _dev(args)
        if pairs_dev is not None and not pairs_dev.has_scores:
            raise ValueError(
                f"dev file {pairs_dev.path} has no scores; {args.loss} selects on them"
            )
        model = BiEncoder.load(args.base, max_seq_length=args.max_length)
        task = BiEncoderTask(model, train, pairs_dev, loss=args.loss)
    return _fit_and_finish(args, task, settings, f"Bi-encoder {args.out.name}")


def _train_distill(args: argparse.Namespace) -> int:
    settings = _settings(args)  # bad numbers fail before any file or model is read
    from sentsim.bi_encoder import BiEncoder
    from sentsim.errors import DataError
    from sentsim.training.distill import (
        MIN_SENTENCES,
        DistillTask,
        TeacherEnsemble,
        teacher_dev_scores,
        teacher_targets,
    )
    from sentsim.training.silver import read_sentences

    sentences = list(dict.fromkeys(t for path in args.sentences for t in read_sentences(path)))
    if len(sentences) < MIN_SENTENCES:
        files = ", ".join(str(p) for p in args.sentences)
        raise DataError(
            f"{files}: {len(sentences)} distinct non-blank sentences; distillation needs at least "
            f"{MIN_SENTENCES} (one per line, or JSONL/CSV with 'text' or 'sentence1')"
        )
    dev = _dev(args)
    if dev is not None and not dev.has_scores:
        raise ValueError(f"dev file {dev.path} has no scores; distillation selects on them")
    weights = args.teacher_weight or [1.0] * len(args.teacher)
    if len(weights) != len(args.teacher):
        raise ValueError(
            f"{len(weights)} --teacher-weight for {len(args.teacher)} --teacher; give one per "
            "teacher, or none for equal weights"
        )
    # the targets are unit vectors: a plain Hugging Face base learns to normalize, as it is saved
    student = BiEncoder.load(args.base, normalize=True, max_seq_length=args.max_length)
    members = [(BiEncoder.load(name), w) for name, w in zip(args.teacher, weights, strict=True)]
    teacher = members[0][0] if len(members) == 1 else TeacherEnsemble(members)
    targets = teacher_targets(
        teacher,
        sentences,
        student.dim,
        args.out,
        align_to=None if args.no_align else student,
        show_progress=progress(args),
    )
    if targets.projection is not None and targets.info.teacher_dim != student.dim:
        print(
            f"teacher {targets.info.teacher_dim}-d → {student.dim}-d by its principal directions "
            f"(keeps {targets.info.kept_variance:.1%} of the variance)"
        )
    teacher_dev = teacher_dev_scores(teacher, targets.projection, dev) if dev else None
    if teacher_dev:
        print(
            f"dev Spearman: teacher {teacher_dev['teacher']:.2f}, its targets "
            f"{teacher_dev['targets']:.2f} (the most imitation can reach)"
        )
        if isinstance(teacher, TeacherEnsemble):
            for i, (model, weight) in enumerate(teacher.members):
                own = teacher_dev[f"member {i}"]
                print(f"  member {model.name} (weight {weight:.2f}): dev Spearman {own:.2f}")
    del teacher, members
    task = DistillTask(
        student,
        sentences,
        targets,
        dev,
        sources=[str(p) for p in args.sentences],
        teacher_dev=teacher_dev,
        objective=args.objective,
    )
    return _fit_and_finish(args, task, settings, f"Bi-encoder {args.out.name} (distilled)")
