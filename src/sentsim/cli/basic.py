"""``sentsim encode``, ``sentsim similarity``, ``sentsim distill-static`` and ``sentsim demo``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sentsim.atomic import atomic_write
from sentsim.base import check_text
from sentsim.cli._common import prepare_outputs, progress, read_texts
from sentsim.errors import DataError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the basic commands."""
    p = subparsers.add_parser("encode", help="encode texts into an .npy matrix")
    p.add_argument("file", type=Path, help="texts: one per line (.txt) or JSON lines with 'text'")
    p.add_argument("--out", type=Path, required=True, help="output .npy file (n, dim) float32")
    p.add_argument(
        "--model", default="minilm", help="built-in name or model directory (default: minilm)"
    )
    p.add_argument("--batch-size", type=int, default=32, help="texts a batch (default: 32)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--as",
        dest="role",
        choices=("text", "query", "document"),
        default="text",
        help="query / document: put the model's query or document prompt before each text, as "
        "search does (models such as E5 name them); text (default): its default prompt, if any",
    )
    p.set_defaults(func=_encode)

    p = subparsers.add_parser(
        "similarity",
        help="similarity of two texts",
        description="Print the similarity of two texts by a bi-encoder: by default the model's "
        "own function (its similarity_fn_name, as sentence-transformers' model.similarity and "
        "search compare): the cosine, or for a dot-product model (TAS-B, msmarco-*-dot-*) the "
        "dot product, printed with the words '(dot product, ...)' after it, as `eval sts` "
        "scores it.",
    )
    p.add_argument("text_a", help="first text")
    p.add_argument("text_b", help="second text")
    p.add_argument(
        "--model", default="minilm", help="built-in name or model directory (default: minilm)"
    )
    p.add_argument(
        "--metric",
        help="cosine, dot or euclidean (printed negated, so that higher is more similar); "
        "default: the model's similarity function (cosine unless its config says dot)",
    )
    p.add_argument(
        "--cross-encoder",
        help="score the pair with this judge instead (0-1; a fused judge such as ce-sts as "
        "`eval sts` measures it, both orders averaged where its config says so)",
    )
    p.set_defaults(func=_similarity)

    p = subparsers.add_parser(
        "distill-static", help="distill a static token-embedding model from a bi-encoder"
    )
    p.add_argument("--teacher", default="minilm", help="bi-encoder to distill (default: minilm)")
    p.add_argument("--dim", type=int, default=256, help="vector width (default: 256)")
    p.add_argument("--out", type=Path, required=True, help="folder for the static model")
    p.set_defaults(func=_distill, writes_model="distill-static")

    p = subparsers.add_parser(
        "helpcenter-data",
        help="write Banking77 train questions paired with help-center articles (train/dev JSONL) "
        "and the train questions as example queries (examples.jsonl)",
    )
    p.add_argument("--out", type=Path, required=True, help="folder for the JSONL files")
    p.add_argument(
        "--dev-fraction",
        type=float,
        default=0.1,
        help="share of train questions held out for selection (default: 0.1)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out draw (default: 0)")
    p.set_defaults(func=_helpcenter_data)

    p = subparsers.add_parser("demo", help="the main job, end to end")
    p.set_defaults(func=_demo)


def _encode(args: argparse.Namespace) -> int:
    from sentsim.bi_encoder import BiEncoder

    prepare_outputs(  # before the encoding, not after it
        ("--out", args.out),
        inputs=(("the file of texts", args.file),),
        fix="give the vectors a file of their own (vectors.npy)",
    )
    texts = read_texts(args.file)
    model = BiEncoder.load(args.model)
    start = time.perf_counter()
    encode = {"query": model.encode_query, "document": model.encode_document}.get(
        args.role, model.encode
    )
    vectors = encode(texts, batch_size=args.batch_size, show_progress=progress(args))
    # to a handle: exactly at --out (np.save(path) would add ".npy")
    atomic_write(args.out, lambda handle: np.save(handle, vectors))
    took = time.perf_counter() - start
    print(f"wrote {args.out}: {vectors.shape[0]} × {vectors.shape[1]} float32 in {took:.1f}s")
    return 0


def _holds_only_a_static_model(folder: Path) -> bool:
    """Whether ``folder`` is empty or what distill-static wrote (and may write again)."""
    names = {p.name for p in folder.iterdir()}
    return names <= {"embeddings.safetensors", "tokenizer.json", "config.json"} and (
        not names or "embeddings.safetensors" in names
    )


def _similarity(args: argparse.Namespace) -> int:
    from sentsim.bi_encoder import BiEncoder
    from sentsim.similarity import Metric, similarity

    for which, text in (("first", args.text_a), ("second", args.text_b)):
        if not text.strip():
            raise ValueError(f"the {which} text is empty; give two texts to compare")
        check_text(text, f"the {which} text")  # before a model loads: a byte not UTF-8
    if args.cross_encoder is not None:
        from sentsim.fusion import load_judge

        if args.metric is not None or args.model != "minilm":
            raise ValueError("--cross-encoder scores the pair itself: drop --model and --metric")
        value = load_judge(args.cross_encoder).score_pairs([(args.text_a, args.text_b)])[0]
        print(f"{value:.4f}")
        return 0
    asked = Metric.parse(args.metric) if args.metric is not None else None
    model = BiEncoder.load(args.model)
    metric = asked or model.similarity_fn_name  # as sentence-transformers' model.similarity
    vectors = model.encode([args.text_a, args.text_b])
    value = similarity(vectors[:1], vectors[1:], metric)[0, 0]
    shown = f"{value:.4f}".replace("-0.0000", "0.0000")  # a negated zero distance is 0
    if asked is None and metric is Metric.DOT:  # no cosine, nor bounded by 1: say what it is
        shown += " (dot product, the model's similarity function; --metric cosine for the cosine)"
    print(shown)
    return 0


def _distill(args: argparse.Namespace) -> int:
    from sentsim.baselines.static import distill_static

    if args.dim < 1:
        raise ValueError(f"--dim must be at least 1, got {args.dim}")
    out = args.out
    if out.exists() and not (out.is_dir() and _holds_only_a_static_model(out)):
        what = "a file" if not out.is_dir() else "a folder of other files (a model, a project?)"
        raise DataError(f"--out {out} is {what}; give a new or empty folder, or a static model's")
    start = time.perf_counter()
    encoder = distill_static(args.teacher, dim=args.dim)
    took = time.perf_counter() - start
    encoder.save(
        args.out,
        config={
            "teacher": args.teacher,
            "pca_dim": args.dim,
            "command": f"sentsim distill-static --teacher {args.teacher} --dim {args.dim} "
            f"--out {args.out}",
        },
    )
    print(f"wrote {args.out} ({encoder.embeddings.shape[0]} tokens × {encoder.dim}) in {took:.0f}s")
    return 0


def _helpcenter_data(args: argparse.Namespace) -> int:
    from sentsim.helpcenter import write_examples, write_training_triples

    if args.out.exists() and not args.out.is_dir():
        raise DataError(
            f"--out {args.out} is a file; give a folder (train.jsonl, dev.jsonl and "
            "examples.jsonl are written in it)"
        )
    train, dev = write_training_triples(args.out, dev_fraction=args.dev_fraction, seed=args.seed)
    examples = write_examples(args.out / "examples.jsonl", args.dev_fraction, args.seed)
    for path in (train, dev, examples):
        print(f"wrote {path}: {sum(1 for _ in path.open())} rows")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from sentsim.demo import run_demo

    return run_demo()
