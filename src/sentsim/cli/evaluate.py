"""``sentsim eval sts`` and ``sentsim compare sts``."""

from __future__ import annotations

import argparse
import platform

from sentsim.cli._common import STSB_TEST, add_pair_file_options, load_pair_file, print_json


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``eval`` and ``compare``."""
    p_eval = subparsers.add_parser("eval", help="evaluate a model on a task")
    tasks = p_eval.add_subparsers(dest="task", metavar="TASK", required=True)
    p = tasks.add_parser("sts", help="Spearman / Pearson of similarity vs graded gold scores")
    add_pair_file_options(p, default=STSB_TEST)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--model", help="bi-encoder: built-in name or directory (default: minilm)")
    who.add_argument(
        "--baseline", help="glove, sif, bm25, overlap, static or cls (see sentsim compare sts)"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--json", action="store_true", help="end with one JSON line of results")
    p.set_defaults(func=_eval_sts)

    p_cmp = subparsers.add_parser("compare", help="every baseline and model side by side")
    tasks = p_cmp.add_subparsers(dest="task", metavar="TASK", required=True)
    p = tasks.add_parser("sts", help="the comparison table on one STS pair file")
    add_pair_file_options(p, default=STSB_TEST)
    p.add_argument(
        "--model", action="append", default=[], help="extra bi-encoder to include (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="end with one JSON line of all rows")
    p.set_defaults(func=_compare_sts)


def _eval_sts(args: argparse.Namespace) -> int:
    from sentsim.evaluation.scorers import baseline_scorer, model_scorer
    from sentsim.evaluation.sts import evaluate_sts

    dataset = load_pair_file(args)
    if args.baseline:
        scorer = baseline_scorer(args.baseline, batch_size=args.batch_size)
    else:
        scorer = model_scorer(args.model or "minilm", batch_size=args.batch_size)
    result = evaluate_sts(dataset, scorer)
    print(
        f"{result.model} on {result.data} ({result.pairs} pairs): "
        f"Spearman {result.spearman:.2f}  Pearson {result.pearson:.2f}  ({result.seconds:.1f}s)"
    )
    if args.json:
        print_json(result.as_dict())
    return 0


# Published STS-B test Spearman ×100 from Reimers & Gurevych (2019), "Sentence-BERT", Table 1.
PUBLISHED = [
    ("Avg. GloVe embeddings (840B, 300-d)", 58.02),
    ("Avg. BERT embeddings (untuned BERT-base)", 46.35),
    ("BERT CLS-vector (untuned BERT-base)", 16.50),
]

COMPARE_ROWS = [
    ("word overlap (Jaccard)", "baseline", "overlap"),
    ("BM25 (bm25s, symmetric)", "baseline", "bm25"),
    ("avg. GloVe 6B-50d", "baseline", "glove"),
    ("SIF-weighted GloVe 6B-50d", "baseline", "sif"),
    ("static embedding distilled from MiniLM", "baseline", "static"),
    ("MiniLM, CLS pooling of a model trained for mean pooling", "baseline", "cls"),
    ("MiniLM bi-encoder (minilm), mean pooling", "model", "minilm"),
]


def _compare_sts(args: argparse.Namespace) -> int:
    from sentsim.evaluation.scorers import baseline_scorer, model_scorer
    from sentsim.evaluation.sts import evaluate_sts

    dataset = load_pair_file(args)
    rows = COMPARE_ROWS + [(f"bi-encoder {m}", "model", m) for m in args.model]
    print(f"{dataset.path} — {len(dataset)} pairs — {platform.processor() or platform.machine()}")
    header = f"{'method':58} {'Spearman':>9} {'Pearson':>8} {'ms/1k pairs':>12}"
    print(header)
    print("-" * len(header))
    results = []
    for label, kind, key in rows:
        scorer = baseline_scorer(key) if kind == "baseline" else model_scorer(key)
        result = evaluate_sts(dataset, scorer, show_progress=False)
        results.append({"method": label, **result.as_dict()})
        print(
            f"{label:58} {result.spearman:9.2f} {result.pearson:8.2f} "
            f"{result.ms_per_1000_pairs:12.0f}"
        )
    print("published anchors, STS-B test (Reimers & Gurevych 2019, Table 1):")
    for label, value in PUBLISHED:
        print(f"  {label:56} {value:9.2f}")
    if args.json:
        print_json({"task": "compare-sts", "data": str(dataset.path), "rows": results})
    return 0
