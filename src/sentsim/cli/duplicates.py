"""``sentsim duplicates``: the pairs and groups of texts in a collection that say the same thing."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from sentsim.cli._common import prepare_outputs, print_json, progress
from sentsim.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``duplicates``."""
    p = subparsers.add_parser(
        "duplicates",
        help="find duplicate texts in a collection (bi-encoder candidates, optionally judged)",
        description="Every text is encoded once; each text's --neighbours nearest others are "
        "candidates; a candidate is a duplicate when its similarity by the bi-encoder (its own "
        "function, as search compares: the cosine, or a dot-product model's dot product) or, "
        "with --cross-encoder, the judge's score is at least the threshold, given or chosen for "
        "the best F1 on labelled --dev pairs. Duplicates are grouped into connected components.",
    )
    p.add_argument(
        "input",
        type=Path,
        help="texts: .txt (one per line; id = line number), JSONL or CSV with id and text, or a "
        "folder of .txt / .md files; the text is compared, not the title",
    )
    p.add_argument("--model", default="minilm", help="bi-encoder (default: minilm)")
    p.add_argument("--cross-encoder", help="judge that decides among the candidates (name or dir)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument(
        "--threshold",
        type=float,
        help="duplicate when the deciding score ≥ this (a dot product for a dot-product model "
        "without --cross-encoder: prefer --dev there)",
    )
    how.add_argument(
        "--dev", type=Path, help="pairs labelled 0/1: the threshold with the best F1 on them"
    )
    p.add_argument("--neighbours", type=int, default=10, help="candidates per text (default: 10)")
    p.add_argument(
        "--min-cosine",
        type=float,
        default=0.5,
        help="candidates below this cosine are not judged, a cosine for every model, a "
        "dot-product one's too (default: 0.5)",
    )
    p.add_argument(
        "--ann",
        default="auto",
        choices=("auto", "flat", "hnsw"),
        help="candidate search: flat (exact), hnsw (approximate, for large collections) or auto "
        "(flat below 100,000 texts; default)",
    )
    p.add_argument("--out", type=Path, help="write the pairs here (JSON lines, best first)")
    p.add_argument("--groups", type=Path, help="write the groups here (JSON lines, largest first)")
    p.add_argument("--show", type=int, default=5, help="pairs to print (default: 5)")
    p.add_argument("--batch-size", type=int, default=32, help="texts a batch (default: 32)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.add_argument("--json", action="store_true", help="end with one JSON line (the summary)")
    p.set_defaults(func=_duplicates)


def _duplicates(args: argparse.Namespace) -> int:
    from sentsim.bi_encoder import BiEncoder
    from sentsim.data import read_pairs
    from sentsim.duplicates import DEFAULT_ANN, choose_threshold, find_duplicates
    from sentsim.evaluation.scorers import EncoderPairScorer
    from sentsim.fusion import load_judge
    from sentsim.index_cache import AnnKind
    from sentsim.similarity import Metric

    if args.neighbours < 1:
        raise ValueError(f"--neighbours must be at least 1, got {args.neighbours}")
    if args.show < 0:
        raise ValueError(f"--show must be 0 or more, got {args.show}")
    ann = replace(DEFAULT_ANN, kind=AnnKind.parse(args.ann))
    prepare_outputs(
        ("--out", args.out),
        ("--groups", args.groups),
        inputs=(("the input collection", args.input), ("the --dev file", args.dev)),
    )
    ids, texts = read_collection(args.input)
    encoder = BiEncoder.load(args.model)
    judge = None
    if args.cross_encoder:
        judge = load_judge(args.cross_encoder, batch_size=args.batch_size)
    chosen_from = "--threshold"
    threshold = args.threshold
    if args.dev is not None:
        dev = read_pairs(args.dev)
        chosen = choose_threshold(
            judge or EncoderPairScorer(encoder, batch_size=args.batch_size), dev
        )
        threshold, chosen_from = chosen.threshold, f"dev:{args.dev}"
        c = chosen
        print(f"threshold {threshold:.4f}: best F1 on {args.dev} ({len(dev)} pairs): F1 "
              f"{c.f1:.2f}, precision {c.precision:.2f}, recall {c.recall:.2f}")  # fmt: skip
    report = find_duplicates(
        texts,
        encoder,
        threshold=threshold,
        ids=ids,
        judge=judge,
        neighbours=args.neighbours,
        min_cosine=args.min_cosine,
        ann=ann,
        batch_size=args.batch_size,
        show_progress=progress(args),
    )
    if args.out:
        rows = (
            {
                "id1": p.first_id,
                "id2": p.second_id,
                "score": round(p.score, 6),
                "cosine": round(p.cosine, 6),
            }
            for p in report.pairs
        )
        _write_lines(args.out, rows)
    if args.groups:
        _write_lines(args.groups, ({"size": len(g), "ids": g} for g in report.groups))
    by_cosine = not report.judged and report.similarity is Metric.COSINE
    decided = "judge" if report.judged else report.similarity.value
    said = f"{'dot product' if decided == 'dot' else decided} ≥ {threshold:.4f}"
    if by_cosine and threshold < args.min_cosine:  # no pair under it is a candidate
        given = "--threshold" if chosen_from == "--threshold" else "the dev threshold"
        said = f"cosine ≥ {args.min_cosine:.4f}: --min-cosine; {given} {threshold:.4f} is below it"
        threshold, chosen_from = args.min_cosine, "--min-cosine"
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in report.seconds.items())
    in_groups = sum(len(g) for g in report.groups)
    print(f"{report.texts} texts, {report.candidates} candidate pairs, {len(report.pairs)} "
          f"duplicates ({said}) in {len(report.groups)} groups holding "
          f"{in_groups} texts; {timings}")  # fmt: skip
    for p in report.pairs[: args.show]:
        print(f"  {p.score:.3f}  {p.first_id}: {_clip(texts[p.first])}")
        print(f"         {p.second_id}: {_clip(texts[p.second])}")
    for path in (args.out, args.groups):
        if path:
            print(f"wrote {path}")
    if args.json:
        print_json(
            {
                "texts": report.texts,
                "candidates": report.candidates,
                "duplicates": len(report.pairs),
                "groups": len(report.groups),
                "texts_in_groups": in_groups,
                "threshold": threshold,
                "threshold_from": chosen_from,
                "decided_by": decided,
                "seconds": report.seconds,
            }
        )
    return 0


def read_collection(path: Path) -> tuple[list[str], list[str]]:
    """Ids and texts: a .txt file (line numbers as ids, blank lines skipped) or a corpus."""
    from sentsim.corpus import read_corpus
    from sentsim.jsonl import JSONL_SUFFIXES
    from sentsim.textfile import TABLE_SUFFIXES, read_lines

    if path.is_file() and path.suffix.lower() == ".txt":
        rows = [(str(n), line) for n, line in enumerate(read_lines(path), 1)]
        kept = [(i, t) for i, t in rows if t.strip()]
        if not kept:
            raise DataError(f"{path}: no text (every line is empty)")
        return [i for i, _ in kept], [t for _, t in kept]
    if path.is_file() and path.suffix.lower() not in JSONL_SUFFIXES + TABLE_SUFFIXES:
        raise DataError(
            f"{path}: unknown collection format {path.suffix!r}; expected a .txt file (a text a "
            "line), .jsonl, .csv, .tsv or a folder of .txt / .md files"
        )  # read_corpus's message left out the .txt file that duplicates reads too
    docs = read_corpus(path)
    seen: dict[str, int] = {}
    for n, doc in enumerate(docs, 1):
        if doc.id in seen:
            raise DataError(
                f"{path}: id {doc.id!r} is used by entries {seen[doc.id]} and {n}; ids must be "
                "unique so that a pair names its texts"
            )
        seen[doc.id] = n
    # the text alone: a title (for a folder, the file name) would make identical bodies differ;
    # a document with only a title has it as its text (corpus.title_and_text)
    return [d.id for d in docs], [d.text for d in docs]


def _write_lines(path: Path, rows: Iterable[dict[str, object]]) -> None:
    from sentsim.atomic import write_text_atomic

    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _clip(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
