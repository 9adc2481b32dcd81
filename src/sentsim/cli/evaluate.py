"""``sentsim eval sts`` and ``sentsim compare sts``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sentsim.atomic import write_text_atomic
from sentsim.base import PairScorer
from sentsim.cli._common import (
    STSB_TEST,
    add_pair_file_options,
    load_pair_file,
    prepare_outputs,
    print_json,
    progress,
)
from sentsim.textfile import read_text

if TYPE_CHECKING:
    from sentsim.bi_encoder import BiEncoder
    from sentsim.evaluation.retrieval import BeirData
    from sentsim.evaluation.retrieval_eval import RetrievalOutcome
    from sentsim.evaluation.sts import StsResult  # scipy: 0.6 s that --help need not pay
    from sentsim.index import Index


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval`` and ``compare``."""
    p_eval = subparsers.add_parser("eval", help="evaluate a model on a task")
    tasks = p_eval.add_subparsers(dest="task", metavar="TASK", required=True)
    p = tasks.add_parser("sts", help="Spearman / Pearson of similarity vs graded gold scores")
    add_pair_file_options(p, default=STSB_TEST)
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        "--model",
        help="bi-encoder: built-in name or directory, scored by its own similarity function "
        "(cosine; the dot product for a dot-product model, whose row then says so, as "
        "sentence-transformers evaluates it) (default: minilm)",
    )
    who.add_argument(
        "--baseline", help="glove, sif, bm25, overlap, static or cls (see sentsim compare sts)"
    )
    who.add_argument(
        "--cross-encoder",
        help="cross-encoder name or directory; a fused judge (ce-sts) reports the cross-encoder "
        "alone and the fusion, both from one pass of the cross-encoder (each row's time is what "
        "scoring with it takes: the fusion's includes the cross-encoder's)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="texts a batch (default: 32)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of results")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(func=_eval_sts)

    p = tasks.add_parser("pairs", help="average precision, accuracy and F1 on 0/1-labelled pairs")
    add_pair_file_options(p, default=("mrpc", "msr-para-test.tsv"))
    who = p.add_mutually_exclusive_group()
    who.add_argument(
        "--model",
        help="bi-encoder, scored by its own similarity function (cosine; the dot product for a "
        "dot-product model, so its threshold is a dot product): name or directory (default: "
        "minilm)",
    )
    who.add_argument("--cross-encoder", help="cross-encoder name or directory")
    p.add_argument("--dev", help="labelled pair file the threshold is chosen on (max F1)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of results")
    p.set_defaults(func=_eval_pairs)

    for name, text in (
        ("retrieval", "nDCG@10, MRR@10, Recall@100, MAP@100, Accuracy@1 on a BEIR folder"),
        ("helpcenter", "the bank help center, queried with Banking77 questions"),
    ):
        p = tasks.add_parser(name, help=text)
        if name == "retrieval":
            p.add_argument("--data", required=True, type=Path, help="BEIR folder")
            p.add_argument("--split", default="test", help="qrels/SPLIT.tsv (default: test)")
            p.add_argument("--queries", type=Path, help="file of query ids to keep (one per line)")
        else:
            p.add_argument(
                "--split",
                default="test",
                choices=("test", "train", "dev"),
                help="test (default), train, or dev (the held-out tenth of train that selects "
                "models)",
            )
            p.add_argument("--sample", type=int, help="a fixed random sample of N questions")
            p.add_argument(
                "--questions",
                type=Path,
                help="your own labelled questions instead of Banking77's (CSV or JSONL: text and "
                "intent, or text and article id); --split then only names them",
            )
        p.add_argument("--retriever", default="dense", help="dense (default), bm25 or hybrid")
        p.add_argument(
            "--model", default="minilm", help="bi-encoder for the dense side (default: minilm)"
        )
        p.add_argument("--rerank", help="cross-encoder that re-ranks the first stage")
        p.add_argument(
            "--k-retrieve",
            type=int,
            default=100,
            help="first-stage candidates (default: 100); below a metric's cutoff (R@100 and "
            "MAP@100 under 100) that metric is measured at it, marked * and in the JSON's "
            "capped_metrics",
        )
        p.add_argument(
            "--rerank-weight",
            type=float,
            help="final = w·minmax(judge) + (1−w)·minmax(first stage); 1 = judge alone "
            "(default: the judge's own weight from its sentsim_config.json, with --examples "
            "its weight for such a first stage where it stores one, else 1)",
        )
        p.add_argument(
            "--sweep", help="comma list of rerank weights to report too (scored once; for dev)"
        )
        if name == "retrieval":
            p.add_argument(
                "--examples",
                type=Path,
                help="example queries: corpus file or index (rows id, text, answer = doc id)",
            )
        else:
            p.add_argument(
                "--examples",
                action="store_true",
                help="use Banking77 train questions (less the dev tenth) as example queries",
            )
        p.add_argument(
            "--example-weight",
            type=float,
            default=0.2,
            help="w in w·dense + (1−w)·best example similarity (the bi-encoder's: cosine, or a "
            "dot-product model's dot product) (default: 0.2, chosen on help-center dev)",
        )
        p.add_argument("--hybrid", default="rrf", help="rrf (default) or minmax")
        p.add_argument(
            "--hybrid-weight", type=float, default=0.5, help="dense weight (minmax; default: 0.5)"
        )
        p.add_argument("--run", type=Path, help="write a TREC run file")
        p.add_argument("--per-query", type=Path, help="write per-query metrics (JSON)")
        p.add_argument("--json", action="store_true", help="end with one JSON line of results")
        p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
        p.set_defaults(func=_eval_retrieval)

    p_cmp = subparsers.add_parser("compare", help="every baseline and model side by side")
    tasks = p_cmp.add_subparsers(dest="task", metavar="TASK", required=True)
    p = tasks.add_parser("sts", help="the comparison table on one STS pair file")
    add_pair_file_options(p, default=STSB_TEST)
    p.add_argument(
        "--model", action="append", default=[], help="extra bi-encoder to include (repeatable)"
    )
    p.add_argument(
        "--cross-encoder",
        action="append",
        default=[],
        help="cross-encoder to include (repeatable; default: the shipped ce-sts when present)",
    )
    p.add_argument("--json", action="store_true", help="end with one JSON line of all rows")
    p.set_defaults(func=_compare_sts)


def _eval_sts(args: argparse.Namespace) -> int:
    from sentsim.evaluation.scorers import baseline_scorer, model_scorer
    from sentsim.evaluation.sts import evaluate_fused_sts, evaluate_sts

    dataset = load_pair_file(args)
    show = progress(args)
    extra: dict[str, object] = {}
    result = None
    if args.baseline:
        scorer = baseline_scorer(args.baseline, batch_size=args.batch_size)
    elif args.cross_encoder:
        from sentsim.fusion import FusedScorer, load_judge

        scorer = load_judge(args.cross_encoder, batch_size=args.batch_size)
        if isinstance(scorer, FusedScorer):  # both rows from one pass of the cross-encoder
            alone, result = evaluate_fused_sts(dataset, scorer, show_progress=show)
            _print_sts(alone)
            extra["cross_encoder_alone"] = alone.as_dict()
    else:
        scorer = model_scorer(args.model or "minilm", batch_size=args.batch_size)
    if result is None:
        result = evaluate_sts(dataset, scorer, show_progress=show)
    _print_sts(result)
    if args.json:
        from sentsim.baselines.static import StaticEncoder

        # the static baselines run no transformer (cls is MiniLM's [CLS] vector: it does)
        static = args.baseline and str(args.baseline).strip().lower() != "cls"
        static = static or isinstance(getattr(scorer, "encoder", None), StaticEncoder)
        precision = None if static else _precision()
        print_json({**result.as_dict(), **extra, "compute_precision": precision})
    return 0


def _eval_retrieval(args: argparse.Namespace) -> int:
    import json
    import tempfile

    from sentsim.bi_encoder import BiEncoder
    from sentsim.cross_encoder import CrossEncoder
    from sentsim.evaluation.retrieval import METRICS, load_beir, metric_cutoff, write_trec_run
    from sentsim.evaluation.retrieval_eval import evaluate_retrieval

    # before the run: these were found wrong only after every query had been searched and judged
    weights = _sweep_weights(args.sweep) if args.sweep else []
    if not args.rerank:
        for option, value in (("--sweep", args.sweep), ("--rerank-weight", args.rerank_weight)):
            if value is not None:
                raise ValueError(f"{option} needs --rerank: it weighs the re-ranker's scores")
    with tempfile.TemporaryDirectory() as tmp:
        if args.task == "helpcenter":
            from sentsim.helpcenter import read_questions, write_beir

            own = read_questions(args.questions) if args.questions else None
            folder = write_beir(Path(tmp), args.split, sample=args.sample, questions=own)
            source = args.questions.name if args.questions else f"banking77-{args.split}"
            label = f"helpcenter/{source}"
            subset = None
        else:
            folder, label = args.data, str(args.data)
            subset = read_text(args.queries).split() if args.queries else None
        data = load_beir(folder, args.split, queries_subset=subset)
    if args.task == "helpcenter" and args.sample:
        # a sample as large as the questions is all of them: the label said "-sample500" of 100
        if len(data.queries) < args.sample:
            print(
                f"note: --sample {args.sample} is more than the {len(data.queries)} questions; "
                "all of them are used",
                file=sys.stderr,
            )
        else:
            label += f"-sample{args.sample}"
    if data.empty:
        print(
            f"note: {len(data.empty)} corpus rows with neither title nor text left out "
            f"(ids {', '.join(data.empty[:5])}{', ...' if len(data.empty) > 5 else ''})",
            file=sys.stderr,
        )
    judged = {d for docs in data.qrels.values() for d, grade in docs.items() if grade > 0}
    absent = sorted(judged - set(data.corpus) - set(data.empty))
    if absent:
        print(
            f"note: the qrels judge {len(absent)} document(s) relevant that the corpus lacks "
            f"(ids {', '.join(absent[:5])}{', ...' if len(absent) > 5 else ''}); no retriever "
            "can find them, so they count as missed",
            file=sys.stderr,
        )
    prepare_outputs(("--run", args.run), ("--per-query", args.per_query))
    encoder = BiEncoder.load(args.model)
    reranker = CrossEncoder.load(args.rerank) if args.rerank else None
    examples = _examples_index(args, encoder)
    try:
        outcome = evaluate_retrieval(
            data,
            encoder,
            retriever=args.retriever,
            reranker=reranker,
            k_retrieve=args.k_retrieve,
            hybrid=args.hybrid,
            hybrid_weight=args.hybrid_weight,
            rerank_weight=args.rerank_weight,
            examples=examples,
            example_weight=args.example_weight,
            show_progress=progress(args),
        )
    finally:
        if examples is not None:
            examples.close()
    sweep = _sweep(weights, outcome, data) if weights else {}
    if args.run:
        write_trec_run(outcome.run, args.run)
    if args.per_query:
        write_text_atomic(args.per_query, json.dumps(outcome.per_query) + "\n")
    m = outcome.metrics
    stages = args.retriever + (
        f" + examples w={args.example_weight:g}" if examples is not None else ""
    )
    stages += f" + {args.rerank}" if args.rerank else ""
    print(
        f"{label} [{stages}] {int(m['queries'])} queries: "
        f"{_metrics_text(m, METRICS, outcome.capped)}  latency {outcome.latency}"
    )
    if outcome.capped:  # Recall@100 of 20 candidates is Recall@20: it read as the deeper one
        *first, last = [_SHORT[c] for c in outcome.capped]
        names = f"{', '.join(first)} and {last}" if first else last
        deepest = max(metric_cutoff(c) for c in outcome.capped)
        print(
            f"* {names} counted only the {args.k_retrieve} candidates retrieved (--k-retrieve "
            f"{args.k_retrieve}), so they are measured at {args.k_retrieve}, not at their own "
            f"cutoff; give --k-retrieve {deepest} or more to measure them in full"
        )
    if args.json:
        print_json(
            {
                "task": "retrieval",
                "data": label,
                "split": args.split,
                "retriever": args.retriever,
                "model": args.model,
                "rerank": args.rerank,
                "k_retrieve": args.k_retrieve,
                "example_weight": args.example_weight if examples is not None else None,
                "hybrid": args.hybrid if args.retriever == "hybrid" else None,
                "hybrid_weight": (
                    args.hybrid_weight
                    if args.retriever == "hybrid" and args.hybrid == "minmax"
                    else None
                ),
                **{k: v for k, v in m.items() if k != "queries"},
                # metrics whose cutoff is deeper than k_retrieve: measured at k_retrieve instead
                "capped_metrics": list(outcome.capped),
                "queries": int(m["queries"]),
                "latency": outcome.latency,
                "compute_precision": _precision(),
                "rerank_weight": outcome.rerank_weight if args.rerank else None,
                **({"sweep": sweep} if sweep else {}),
            }
        )
    return 0


def _examples_index(args: argparse.Namespace, encoder: BiEncoder) -> Index | None:
    """The index of example queries ``--examples`` names (built and cached from a file)."""
    from sentsim.corpus import read_corpus
    from sentsim.evaluation.retrieval_eval import documents_index
    from sentsim.index_store import index_exists
    from sentsim.search import open_index

    if not args.examples:
        return None
    if args.task == "helpcenter":
        from sentsim.helpcenter import example_index

        return example_index(encoder, show_progress=progress(args))
    if index_exists(args.examples):
        return open_index(args.examples, encoder, readonly=True)
    return documents_index(read_corpus(args.examples), encoder, show_progress=progress(args))


def _sweep_weights(text: str) -> list[float]:
    """The weights of ``--sweep``'s comma list; each must be a number in 0..1."""
    values = []
    for item in text.split(","):
        try:
            values.append(float(item))
        except ValueError:
            raise ValueError(
                f"--sweep {text}: {item.strip()!r} is not a number; give weights such as 0,0.5,1"
            ) from None
    if bad := [w for w in values if not 0.0 <= w <= 1.0]:  # NaN fails this too
        raise ValueError(f"--sweep weights must be in 0..1, got {', '.join(map(str, bad))}")
    return values


def _sweep(values: list[float], outcome: RetrievalOutcome, data: BeirData) -> dict[str, object]:
    """Metrics of the re-ranked run at each weight, from scores computed once."""
    from sentsim.evaluation.retrieval import evaluate_run
    from sentsim.evaluation.retrieval_eval import fused_run

    if outcome.judge_run is None:
        raise ValueError("--sweep needs --rerank: it varies the weight of the re-ranker")
    runs = {"first stage": outcome.first_run}
    for w in values:
        runs[f"w={w:g}"] = fused_run(outcome.first_run, outcome.judge_run, w)
    out: dict[str, object] = {}
    for label, run in runs.items():
        m = evaluate_run(run, data.qrels)
        out[label] = m
        shown = ("ndcg@10", "mrr@10", "accuracy@1")
        print(f"  {label:12} {_metrics_text(m, shown, outcome.capped)}")
    return out


_SHORT = {
    "ndcg@10": "nDCG@10",
    "mrr@10": "MRR@10",
    "recall@100": "R@100",
    "map@100": "MAP@100",
    "accuracy@1": "Acc@1",
}


def _metrics_text(m: dict[str, float], names: Sequence[str], capped: Sequence[str]) -> str:
    """``nDCG@10 41.20  R@100* 80.00``: each metric, ``*`` on one measured short of its cutoff."""
    return "  ".join(f"{_SHORT[n]}{'*' if n in capped else ''} {m[n]:.2f}" for n in names)


def _print_sts(result: StsResult) -> None:
    print(
        f"{result.model} on {result.data} ({result.pairs} pairs): "
        f"Spearman {result.spearman:.2f}  Pearson {result.pearson:.2f}  ({result.seconds:.1f}s)"
    )


def _eval_pairs(args: argparse.Namespace) -> int:
    from sentsim.evaluation.pairs import evaluate_pairs
    from sentsim.evaluation.scorers import model_scorer

    dataset = load_pair_file(args)
    dev = load_pair_file(args, args.dev) if args.dev else None  # read as --data is
    if args.cross_encoder:
        from sentsim.fusion import load_judge

        scorer: PairScorer = load_judge(args.cross_encoder)
    else:
        scorer = model_scorer(args.model or "minilm")
    result = evaluate_pairs(dataset, scorer, dev=dev)
    print(
        f"{result['model']} on {result['data']} ({result['pairs']} pairs): "
        f"AP {result['average_precision']:.2f}  accuracy {result['accuracy']:.2f}  "
        f"F1 {result['f1']:.2f} at threshold {result['threshold']:.4f} ({result['threshold_from']})"
    )
    if args.json:
        print_json({**result, "compute_precision": _precision()})
    return 0


# Published STS-B test Spearman ×100 from Reimers & Gurevych (2019), "Sentence-BERT", Table 1.
PUBLISHED = [
    ("Avg. GloVe embeddings (840B, 300-d)", 58.02),
    ("Avg. BERT embeddings (untuned BERT-base)", 46.35),
    ("BERT CLS-vector (untuned BERT-base)", 16.50),
]

SHIPPED_JUDGES = ["ce-sts"]
SHIPPED_BI_ENCODERS = ["bi-sts", "bi-sts-augsbert"]

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
    from sentsim.evaluation.sts import evaluate_fused_sts, evaluate_sts
    from sentsim.fusion import FusedScorer, load_judge
    from sentsim.machine import cpu_description
    from sentsim.models import builtin_names

    dataset = load_pair_file(args)
    extra = args.model or [n for n in SHIPPED_BI_ENCODERS if n in builtin_names()]
    judge_names = args.cross_encoder or [n for n in SHIPPED_JUDGES if n in builtin_names()]
    # loaded before the table, not at their rows after every baseline has run: a name that is
    # no such model, or a model of the other kind, or a fused judge whose bi-encoder is gone
    # the table's own MiniLM row too: it read a dict of --model's models only (KeyError 'minilm')
    models = {m: model_scorer(m) for _, kind, m in COMPARE_ROWS if kind == "model"}
    models |= {m: model_scorer(m) for m in extra if m not in models}
    judges = {name: load_judge(name) for name in judge_names}
    # a model's scorer is named as its model, with "(dot product)" for a dot-product model
    rows = COMPARE_ROWS + [(f"bi-encoder {models[m].name}", "model", m) for m in extra]
    for name in judge_names:
        rows += [(f"cross-encoder {name} alone", "judge-alone", name)]
        rows += [(f"cross-encoder {name}", "judge", name)]
    print(f"{dataset.path} — {len(dataset)} pairs — {cpu_description()}")
    header = f"{'method':58} {'Spearman':>9} {'Pearson':>8} {'ms/1k pairs':>12}"
    print(header)
    print("-" * len(header))
    results = []
    judged: dict[str, tuple[StsResult, StsResult]] = {}  # a judge's two rows, from one pass
    for label, kind, key in rows:
        if kind in ("judge-alone", "judge"):
            if key not in judged:
                judge = judges[key]
                if isinstance(judge, FusedScorer):
                    judged[key] = evaluate_fused_sts(dataset, judge, show_progress=False)
                else:  # no fusion: the cross-encoder alone is the judge, one result for both
                    judged[key] = (evaluate_sts(dataset, judge, show_progress=False),) * 2
            result = judged[key][1 if kind == "judge" else 0]
        else:
            scorer = baseline_scorer(key) if kind == "baseline" else models[key]
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
        print_json(
            {
                "task": "compare-sts",
                "data": str(dataset.path),
                "compute_precision": _precision(),
                "rows": results,
            }
        )
    return 0


def _precision() -> str:
    """The precision this command's models ran in (``--precision`` / $SENTSIM_PRECISION)."""
    from sentsim.backend import model_device, resolve_precision

    return resolve_precision(None, model_device(None, None)).value
