"""``sentsim augsbert``: a bi-encoder trained on gold + pairs labelled by a cross-encoder."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from sentsim.cli._common import add_mixed_precision_option, print_json

FROM_GOLD = "from-gold"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``augsbert``."""
    p = subparsers.add_parser(
        "augsbert",
        help="AugSBERT: label unlabelled pairs with a cross-encoder, train the bi-encoder on them",
        description="Thakur et al. (2021). Every step is saved in --out and skipped when run "
        "again; a cut-off training run resumes. Without --gold: domain transfer (silver only).",
    )
    p.add_argument("--gold", type=Path, help="graded pairs (sentence1, sentence2, score)")
    p.add_argument(
        "--unlabelled",
        default=FROM_GOLD,
        help="sentences to pair: .txt (one per line), JSONL/CSV with text or sentence1/sentence2 "
        f"(with --sampling given, its pairs are labelled as written); '{FROM_GOLD}' (default): "
        "the gold sentences",
    )
    p.add_argument(
        "--cross-encoder",
        required=True,
        help="the judge that labels silver pairs (name or directory), or 'train' to train one "
        "on --gold",
    )
    p.add_argument(
        "--sampling",
        action="append",
        required=True,
        help="random, bm25, knn or bm25+knn (pairs made from the sentences), or given (the "
        "--unlabelled file's own pairs); repeat or comma-separate to compare",
    )
    p.add_argument("--cap", type=int, required=True, help="at most this many silver pairs each")
    p.add_argument("--top-k", type=int, default=3, help="partners per sentence (default: 3)")
    p.add_argument("--knn-encoder", help="bi-encoder that knn searches with (default: gold-only)")
    p.add_argument("--out", type=Path, required=True, help="output folder (steps are resumed)")
    p.add_argument("--dev", type=Path, help="graded pairs to select epochs and compare on")
    p.add_argument("--test", type=Path, help="graded pairs, reported only (never for selection)")
    p.add_argument("--base", default="minilm", help="bi-encoder to start from (default: minilm)")
    p.add_argument("--cross-base", help="start of a trained judge (default: --base)")
    p.add_argument("--loss", default="cosent", help="cosent (default) or cosine-mse")
    p.add_argument("--epochs", type=int, default=1, help="bi-encoder epochs (default: 1)")
    p.add_argument("--batch-size", type=int, default=16, help="examples a step (default: 16)")
    p.add_argument(
        "--lr", type=float, default=2e-5, help="bi-encoder learning rate (default: 2e-05)"
    )
    p.add_argument(
        "--cross-lr",
        type=float,
        default=5e-5,
        help="learning rate of a trained judge (default: 5e-05)",
    )
    p.add_argument("--seed", type=int, default=42, help="sampling and training seed (default: 42)")
    p.add_argument(
        "--calibrate-silver",
        action="store_true",
        help="map the judge's scores onto the gold scale before they become labels: "
        "sigmoid(a · logit(score) + b) fitted on --dev (needed for a fused judge, whose scores "
        "are not on the gold scale)",
    )
    p.add_argument(
        "--checkpoint-every", type=int, default=200, help="steps between checkpoints (default: 200)"
    )
    add_mixed_precision_option(p)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument("--json", action="store_true", help="end with one JSON line (the results)")
    p.set_defaults(func=_run, writes_model="augsbert")


def _run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from sentsim.training import TrainSettings
    from sentsim.training.augsbert import AugSbertConfig, Sampling, run_augsbert

    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        precision=args.mixed_precision,
    )
    config = AugSbertConfig(
        out=args.out,
        cross_encoder=args.cross_encoder,
        strategies=tuple(Sampling.parse_many(args.sampling)),
        cap=args.cap,
        gold=args.gold,
        unlabelled=None if args.unlabelled == FROM_GOLD else Path(args.unlabelled),
        dev=args.dev,
        test=args.test,
        base=args.base,
        cross_base=args.cross_base,
        knn_encoder=args.knn_encoder,
        top_k=args.top_k,
        loss=args.loss,
        settings=settings,
        cross_settings=TrainSettings(**{**asdict(settings), "lr": args.cross_lr}),
        calibrate=args.calibrate_silver,
        command="sentsim " + shlex.join(args.argv),
    )
    report = run_augsbert(config, show_progress=not args.no_progress)
    print((report.out / "results.md").read_text(encoding="utf-8"), end="")
    if args.json:
        print_json({"out": str(report.out), "rows": [asdict(r) for r in report.rows]})
    return 0
