"""``sentsim index build|add|delete|info`` and ``sentsim search``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentsim.atomic import atomic_text
from sentsim.base import check_text
from sentsim.cli._common import is_json_lines, prepare_outputs, print_json, progress

if TYPE_CHECKING:
    from sentsim.bi_encoder import BiEncoder
    from sentsim.index import Document, Index
    from sentsim.search import SearchPipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``index`` and ``search``."""
    p_index = subparsers.add_parser("index", help="build and change an on-disk search index")
    verbs = p_index.add_subparsers(dest="verb", metavar="VERB", required=True)

    for verb, text in (("build", "create an index from a corpus"), ("add", "add documents")):
        p = verbs.add_parser(verb, help=text)
        p.add_argument(
            "corpus",
            type=Path,
            help="JSONL/CSV with id, title, text; BEIR corpus.jsonl; or a folder",
        )
        p.add_argument("--index", type=Path, required=True, help="index folder")
        p.add_argument(
            "--model",
            help="bi-encoder that makes the vectors (default: minilm)"
            if verb == "build"
            else "bi-encoder that makes the vectors (default: the one the index records)",
        )
        p.add_argument("--upsert", action="store_true", help="replace documents with the same id")
        if verb == "build":
            p.add_argument(
                "--resume",
                action="store_true",
                help="finish a build of this corpus that was cut off: documents already committed "
                "(same id and content) are kept, not encoded again",
            )
            # chosen when the index is made: an add cannot change it
            p.add_argument(  # choices: a wrong value was named as the Python ann='bogus'
                "--ann", choices=("auto", "flat", "hnsw"), help="auto (default), flat or hnsw"
            )
            p.add_argument(
                "--quantize",
                choices=("none", "sq8"),
                help="none (default), or sq8: the HNSW graph keeps 8 bits a dimension (a quarter "
                "of its memory); candidates are scored again from the float32 vectors, so scores "
                "stay exact; for unit vectors (every cosine model), not a dot-product model's",
            )
        else:
            p.set_defaults(ann=None, quantize=None)
        p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
        p.set_defaults(func=_build if verb == "build" else _add)

    p = verbs.add_parser("delete", help="delete documents by id")
    p.add_argument("ids", nargs="+", help="document ids to delete")
    p.add_argument("--index", type=Path, required=True, help="index folder")
    p.set_defaults(func=_delete)

    p = verbs.add_parser("info", help="counts, encoder and sizes of an index")
    p.add_argument("--index", type=Path, required=True, help="index folder")
    p.add_argument("--json", action="store_true", help="print one JSON line, not indented")
    p.set_defaults(func=_info)

    p = subparsers.add_parser("search", help="retrieve and re-rank")
    p.add_argument("query", nargs="?", help="what to search for (or --queries FILE)")
    p.add_argument(
        "--queries",
        type=Path,
        help="search every query of a file instead: one per line, or JSONL with text (or query) "
        "and optional id (or _id), such as a BEIR queries.jsonl; one JSON line per query",
    )
    p.add_argument("--out", type=Path, help="with --queries: write the JSON lines here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar for --queries")
    p.add_argument("--index", type=Path, required=True, help="index folder")
    p.add_argument(
        "--model", help="the bi-encoder the index was built with (default: the one it records)"
    )
    p.add_argument(
        "--retriever",
        help="dense, bm25 or hybrid (default: dense with --examples, else the one the encoder's "
        "sentsim_config.json names, chosen on dev, else hybrid)",
    )
    p.add_argument(
        "--hybrid",
        help="how hybrid fuses dense and BM25: rrf (reciprocal rank, the default) or minmax",
    )
    p.add_argument(
        "--hybrid-weight", type=float, help="the dense list's weight for minmax (default: 0.5)"
    )
    judge = p.add_mutually_exclusive_group()  # both given: --reranker was silently ignored
    judge.add_argument(
        "--reranker", default="ce-rerank", help="cross-encoder name or folder (default: ce-rerank)"
    )
    judge.add_argument("--no-rerank", action="store_true", help="first stage only")
    p.add_argument(
        "--rerank-weight",
        type=float,
        help="w in w·minmax(judge) + (1−w)·minmax(first stage); default: the judge's own "
        "(ce-rerank: 0.4, the weight no dev first stage of SciFact, WikiQA or the help center "
        "lost with; 0.1 with --examples, whose first stage is already near-perfect; choose it on "
        "dev data of your domain)",
    )
    p.add_argument("--top-k", type=int, default=10, help="results to show (default: 10)")
    p.add_argument(
        "--k-retrieve",
        type=int,
        default=100,
        help="first-stage candidates the judge re-ranks (default: 100; at least --top-k)",
    )
    p.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="only documents whose metadata FIELD holds VALUE (or a list with it); FIELD!=VALUE: "
        "does not (a document without FIELD matches); FIELD>VALUE, >=, <, <=: holds a value in "
        "range, compared as a number where VALUE spells one, else as text (ISO dates sort in "
        "order; quote the item in a shell: 'year>=2020'). Repeat for more fields (all must "
        "match); = on one field twice takes either value, != neither. = and != also match the "
        "number, true, false or null VALUE spells",
    )
    p.add_argument(
        "--examples",
        type=Path,
        help="index of example queries (rows id, text, answer = the id of the document that "
        "answers it), built with the same --model; fused with the dense scores",
    )
    p.add_argument(
        "--example-weight",
        type=float,
        help="w in w·dense + (1−w)·best example similarity (the bi-encoder's: cosine, or a "
        "dot-product model's dot product) (default 0.2, chosen on help-center dev)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="end with one JSON line of the results (--queries writes only JSON lines)",
    )
    p.set_defaults(func=_search)


def _encoder(args: argparse.Namespace) -> BiEncoder:
    """``--model``; without it, the encoder the index records (``minilm`` for a new index)."""
    from sentsim.search import index_encoder

    return index_encoder(args.index, args.model)


def _build(args: argparse.Namespace) -> int:
    from sentsim.errors import IndexExistsError
    from sentsim.index_store import index_exists

    if index_exists(args.index) and not args.resume:
        raise IndexExistsError(
            f"{args.index} already holds an index; if a build of this corpus there was cut off, "
            "pass --resume to finish it; else use `sentsim index add` or choose a new folder"
        )
    if index_exists(args.index):  # resuming: the index keeps what it was made with
        from sentsim.index_store import read_manifest

        made = read_manifest(args.index)["ann"]
        made = {"ann": made["kind"], "quantize": made.get("quantize", "none")}
        for option, value in made.items():
            given = getattr(args, option)
            if given is not None and given != value:
                raise ValueError(
                    f"--{option} {given}: the cut-off build in {args.index} was made with "
                    f"--{option} {value}, which a resumed build keeps; drop --{option} or start "
                    "over in a new folder"
                )
    return _add(args)


def _committed(folder: Path, docs: list[Document], corpus: Path) -> set[str]:
    """The ids of ``docs`` a cut-off build already committed to ``folder``, checked to be them.

    Refused when the index holds a document the corpus lacks, or one whose title, text or
    metadata differ: it is then not a part of this build, and resuming would mix two corpora.
    """
    from sentsim.errors import DataError
    from sentsim.index import Index

    with Index.open(folder, readonly=True) as index:
        ids = [d.id for d in docs]
        done = index.existing(ids)
        if len(index) != len(done):
            raise DataError(
                f"{folder} holds {len(index) - len(done)} document(s) that {corpus} lacks, so it "
                "is not a cut-off build of this corpus; choose a new folder or use `index add`"
            )
        by_id = {d.id: d for d in docs}
        ordered = [i for i in ids if i in done]
        for start in range(0, len(ordered), 10_000):
            for stored in index.get(ordered[start : start + 10_000]):
                row = by_id[stored.id]
                if (stored.title, stored.text, dict(stored.metadata)) != (
                    row.title,
                    row.text,
                    dict(row.metadata),
                ):
                    raise DataError(
                        f"{folder} holds document {stored.id!r} with other content than "
                        f"{corpus}; it is not a cut-off build of this corpus (update it with "
                        "`index add --upsert`, or choose a new folder)"
                    )
    return done


def _add(args: argparse.Namespace) -> int:
    import time

    from sentsim.corpus import read_corpus
    from sentsim.errors import DataError
    from sentsim.index_store import index_exists
    from sentsim.search import build_index

    if args.verb == "add" and not index_exists(args.index):
        raise DataError(
            f"{args.index} holds no index to add to; make one with "
            f"`sentsim index build CORPUS --index {args.index}`"
        )
    from sentsim.index_cache import parse_ann

    ann, quantize = parse_ann(args.ann or "auto", args.quantize or "none")  # before any reading
    docs = read_corpus(args.corpus)
    rows = len(docs)
    if args.upsert:  # a repeated id within the file: its last row wins, as in any upsert
        docs = list({d.id: d for d in docs}.values())
    else:
        seen: set[str] = set()
        for d in docs:
            if d.id in seen:
                raise DataError(
                    f"{args.corpus}: document id {d.id!r} appears twice; ids must be unique "
                    "(pass --upsert to keep the last)"
                )
            seen.add(d.id)
    repeats = (
        f"; {rows - len(docs)} repeated ids, the last row of each kept" if rows > len(docs) else ""
    )
    skipped = ""
    if args.verb == "build" and args.resume and index_exists(args.index):
        done = _committed(args.index, docs, args.corpus)
        docs = [d for d in docs if d.id not in done]
        skipped = f"; {len(done)} already committed by the cut-off build, kept"
    start = time.perf_counter()
    encoder = _encoder(args)
    show = progress(args)
    with build_index(
        docs,
        args.index,
        encoder,
        upsert=args.upsert,
        ann=ann.value,
        quantize=quantize.value,
        show_progress=show,
    ) as index:
        info = index.info()
    took = time.perf_counter() - start
    print(
        f"{args.index}: {info.documents} documents, {info.passages} passages "
        f"({rows} read{repeats}{skipped}) in {took:.1f}s"
    )
    return 0


def _delete(args: argparse.Namespace) -> int:
    from sentsim.index import Index

    with Index.open(args.index) as index:
        absent = sorted(set(args.ids) - index.existing(args.ids))
        removed = index.delete(args.ids)
    shown = f"; not in the index: {', '.join(map(repr, absent[:10]))}" if absent else ""
    print(f"deleted {removed} of {len(set(args.ids))} ids{shown}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from sentsim.index import Index

    with Index.open(args.index, readonly=True) as index:
        info = index.info()
        metadata = index.metadata_fields()
    fields = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(info).items()}
    fields["metadata_fields"] = metadata  # what `sentsim search --where FIELD=VALUE` can use
    if args.json:
        print_json(fields)
    else:
        print(json.dumps(fields, indent=2, default=str, ensure_ascii=False))
    return 0


def _search(args: argparse.Namespace) -> int:
    from sentsim.cross_encoder import CrossEncoder
    from sentsim.errors import DataError
    from sentsim.index_filter import Where, parse_where_option
    from sentsim.models import builtin_names
    from sentsim.search import ExampleQueries, SearchPipeline, open_index

    if (args.query is None) == (args.queries is None):
        raise ValueError("give one query, or --queries FILE for many, not both")
    if args.query is not None and not args.query.strip():
        raise ValueError("the query is empty; type some words to search for")
    if args.query is not None:
        check_text(args.query, "the query")  # before models load: a byte that is not UTF-8
    if args.out is not None and args.queries is None:
        raise ValueError("--out writes the results of --queries; one query prints them")
    where = parse_where_option(args.where)
    Where.parse(where)  # e.g. a number bound and a text bound: refused before the models load
    if args.example_weight is not None and args.examples is None:  # it was silently ignored
        raise ValueError(
            "--example-weight weighs the --examples scores; give --examples or drop it"
        )
    if args.no_rerank and args.rerank_weight is not None:
        raise ValueError(
            "--rerank-weight has no effect with --no-rerank; drop one of them (weight 0 keeps "
            "the first stage's order while still showing the judge's scores)"
        )
    if not args.no_rerank and args.reranker == "ce-rerank" and "ce-rerank" not in builtin_names():
        raise DataError(
            "no re-ranker named ce-rerank is shipped yet; pass --no-rerank for the first stage "
            "alone, or --reranker DIR for a cross-encoder of your own"
        )
    queries = read_queries(args.queries) if args.queries is not None else None
    prepare_outputs(
        ("--out", args.out),
        inputs=(("the --queries file", args.queries),),
        fix="write the results elsewhere",
    )
    encoder = _encoder(args)
    reranker = None if args.no_rerank else CrossEncoder.load(args.reranker)
    with contextlib.ExitStack() as stack:
        index = stack.enter_context(open_index(args.index, encoder, readonly=True))
        examples = None
        if args.examples:
            found = stack.enter_context(open_index(args.examples, encoder, readonly=True))
            examples = ExampleQueries(found)
        pipeline = SearchPipeline(
            index,
            encoder,
            reranker,
            retriever=args.retriever,  # None: dense with examples, else the encoder's stored one
            k_retrieve=args.k_retrieve,
            hybrid=args.hybrid or "rrf",
            hybrid_weight=0.5 if args.hybrid_weight is None else args.hybrid_weight,
            rerank_weight=args.rerank_weight,
            examples=examples,
            example_weight=0.2 if args.example_weight is None else args.example_weight,
        )
        _check_fusion_options(args, pipeline)
        if pipeline.judge_idle is not None:
            print(f"({pipeline.judge_idle})", file=sys.stderr)
        # as the server answers: whether the judge ran, and why not when it was asked for
        about = {
            "retriever": pipeline.retriever.value,
            "where": where or None,
            "reranked": pipeline.reranker is not None and pipeline.judge_idle is None,
            "note": pipeline.judge_idle,
        }
        if queries is not None:
            return _search_many(args, pipeline, queries, where, about)
        response = pipeline.search(args.query, top_k=args.top_k, where=where)
        if where and not response.results:
            _explain_empty_filter(index, where)
    for r in response.results:
        ce = f"  judge {r.rerank_score:.3f}" if r.rerank_score is not None else ""
        print(
            f"{r.rank:>3}. {r.score:.3f}  {r.title or r.doc_id}  [{r.doc_id}]  "
            f"first stage #{r.first_stage_rank} {r.first_stage_score:.3f}{ce}"
        )
        if r.example is not None:
            print(f"     matched example: {r.example}")
    timing = ", ".join(f"{k} {1000 * v:.0f} ms" for k, v in response.timings.items())
    print(f"({timing})")
    if args.json:
        results = [asdict(r) for r in response.results]
        print_json(
            {"query": response.query, **about, "results": results, "timings": response.timings}
        )
    return 0


def _check_fusion_options(args: argparse.Namespace, pipeline: SearchPipeline) -> None:
    """Refuse --hybrid / --hybrid-weight where they would change nothing (they were ignored)."""
    from sentsim.choices import Retriever

    options = (("--hybrid", args.hybrid), ("--hybrid-weight", args.hybrid_weight))
    given = [option for option, value in options if value is not None]
    if given and pipeline.retriever is not Retriever.HYBRID:
        raise ValueError(
            f"{' and '.join(given)} set how hybrid fuses its lists, but the retriever here is "
            f"{pipeline.retriever.value}; add --retriever hybrid or drop {given[0]}"
        )
    if args.hybrid_weight is not None and pipeline.hybrid == "rrf":
        raise ValueError(
            "--hybrid-weight weighs min–max fusion; add --hybrid minmax (rrf takes no weight)"
        )


def _explain_empty_filter(index: Index, where: dict[str, Any]) -> None:
    """Say which --where fields no document has, when a filtered search found nothing.

    A typo, or id / title / text, which are not metadata.
    """
    fields = index.metadata_fields()
    unknown = [f for f in where if f not in fields]
    if unknown:
        known = ", ".join(list(fields)[:10]) or "none"
        print(
            f"(no document has the metadata field {', '.join(map(repr, unknown))}; the index's "
            f"fields: {known}; `sentsim index info` lists them)",
            file=sys.stderr,
        )


def _search_many(
    args: argparse.Namespace,
    pipeline: SearchPipeline,
    queries: list[tuple[str, str]],
    where: dict[str, Any],
    about: dict[str, Any],
) -> int:
    """Search each (id, text) of ``queries``, 64 at a time; one JSON line each, in file order."""
    import time

    from tqdm.auto import tqdm

    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        out = sys.stdout
        if args.out is not None:
            out = stack.enter_context(atomic_text(args.out))
        show = progress(args)  # None: a bar where stderr is a terminal
        bar = stack.enter_context(
            tqdm(
                total=len(queries),
                desc="search",
                unit="query",
                disable=None if show is None else not show,
            )
        )
        for begin in range(0, len(queries), 64):
            batch = queries[begin : begin + 64]
            texts = [text for _, text in batch]
            responses = pipeline.search_many(texts, top_k=args.top_k, where=where)
            for (query_id, text), response in zip(batch, responses, strict=True):
                line = {"id": query_id, "query": text, **about}
                line |= {"results": [asdict(r) for r in response.results]}
                out.write(json.dumps(line | {"timings": response.timings}, ensure_ascii=False))
                out.write("\n")
            bar.update(len(batch))
    took = time.perf_counter() - start
    written = f" to {args.out}" if args.out is not None else ""
    print(f"searched {len(queries)} queries in {took:.1f}s{written}", file=sys.stderr)
    return 0


def read_queries(path: Path) -> list[tuple[str, str]]:
    """(id, text) of each query: a text file's lines (ids 1, 2, ... by line), or JSONL rows.

    JSONL rows hold ``text`` or ``query`` and, optionally, ``id`` or ``_id`` (a BEIR
    ``queries.jsonl``); without one the id is the line number. A blank query or a repeated id is
    an error naming its line.
    """
    from sentsim.errors import DataError
    from sentsim.jsonl import read_objects
    from sentsim.textfile import read_lines

    rows: list[tuple[int, str, object]] = []
    if is_json_lines(path, "queries", "'text' and optional 'id'"):
        expected = "an object with a string 'text' (or 'query') field"
        for n, record in read_objects(path, expected=expected):
            text = record.get("text", record.get("query"))
            if not isinstance(text, str):
                raise DataError(f"{path}, line {n}: expected {expected}")
            query_id = record.get("id", record.get("_id", str(n)))
            if isinstance(query_id, bool) or not isinstance(query_id, str | int):
                raise DataError(f"{path}, line {n}: the id must be a string or a whole number")
            rows.append((n, text, query_id))
    else:
        rows = [(n, line, str(n)) for n, line in enumerate(read_lines(path), 1) if line.strip()]
    seen: dict[str, int] = {}
    queries = []
    for n, text, raw_id in rows:
        query_id = str(raw_id).strip()
        if not text.strip():
            raise DataError(f"{path}, line {n}: the query is empty; remove the line or fill it")
        if query_id in seen:
            raise DataError(
                f"{path}, line {n}: query id {query_id!r} is also on line {seen[query_id]}; "
                "give each query its own id"
            )
        seen[query_id] = n
        queries.append((query_id, text))
    if not queries:
        raise DataError(f"{path} holds no queries; write one per line")
    return queries
