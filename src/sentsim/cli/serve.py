"""``sentsim serve``: the library behind a local HTTP/JSON service (see :mod:`sentsim.server`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``serve``."""
    p = subparsers.add_parser(
        "serve",
        help="answer encode, similarity, score, rerank and search requests over HTTP (JSON)",
        description="Serve the models (and an index) on http://HOST:PORT: GET /health, "
        "/documents/ID; POST /encode, /similarity, /score, /rerank, /search with a JSON object, "
        "and with --writable /documents, /documents/delete (see sentsim.server).",
    )
    p.add_argument(
        "--index", type=Path, help="index folder to search (read-only without --writable)"
    )
    p.add_argument(
        "--writable",
        action="store_true",
        help="let POST /documents and /documents/delete change the index (off: they answer "
        "403); `sentsim index add` and `delete` can still write it meanwhile",
    )
    p.add_argument(
        "--max-documents",
        type=int,
        default=1000,
        help="most documents (or ids) one write request may hold (default: 1000); each is "
        "encoded under the model's lock, which searches wait for",
    )
    p.add_argument(
        "--write-timeout",
        type=float,
        default=10.0,
        help="seconds a write waits for another process writing the index (default: 10), "
        "then answers 503",
    )
    p.add_argument("--model", help="bi-encoder (default: the one the index records, else minilm)")
    judge = p.add_mutually_exclusive_group()  # both given: --reranker was silently ignored
    judge.add_argument("--reranker", default="ce-rerank", help="cross-encoder for /score, /rerank "
                       "and the second stage of /search (default: ce-rerank)")  # fmt: skip
    judge.add_argument("--no-rerank", action="store_true", help="serve without a cross-encoder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0: any free one)")
    p.add_argument(
        "--max-top-k",
        type=int,
        default=1000,
        help="most results one /search may ask for (default: 1000); the judge reads at least "
        "that many candidates, so this bounds the time one request takes",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=60.0,
        help="seconds a connection may stay silent before it is closed (default: 60); each "
        "open connection holds a thread",
    )
    p.add_argument(
        "--max-batch",
        type=int,
        default=256,
        help="most texts or pairs one model call combines from requests that wait together "
        "(/encode, /similarity, /score, /rerank, /search; a re-ranked search counts the "
        "candidates its judge reads) (default: 256; 1: each request alone)",
    )
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from sentsim.errors import SentsimError
    from sentsim.server import ServeConfig, create_app

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    if args.max_top_k < 1:
        raise ValueError(f"--max-top-k must be at least 1, got {args.max_top_k}")
    if not args.idle_timeout > 0:
        raise ValueError(f"--idle-timeout must be above 0 seconds, got {args.idle_timeout}")
    if args.max_batch < 1:
        raise ValueError(f"--max-batch must be at least 1, got {args.max_batch}")
    if args.max_documents < 1:
        raise ValueError(f"--max-documents must be at least 1, got {args.max_documents}")
    if not args.write_timeout >= 0:
        raise ValueError(f"--write-timeout must be 0 seconds or more, got {args.write_timeout}")
    if args.writable and args.index is None:
        raise ValueError("--writable needs --index DIR: the index that the documents go to")
    config = ServeConfig(
        index=args.index,
        model=args.model,
        reranker=None if args.no_rerank else args.reranker,
        host=args.host,
        port=args.port,
        max_top_k=args.max_top_k,
        idle_timeout=args.idle_timeout,
        max_batch=args.max_batch,
        writable=args.writable,
        max_documents=args.max_documents,
        write_timeout=args.write_timeout,
    )
    try:
        server = create_app(config)
    except SentsimError:  # a model or index that does not load (an OSError too) names itself
        raise
    except OSError as exc:  # binding: the port in use, an address not of this machine
        raise ValueError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    print(f"sentsim serving on {server.url} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
