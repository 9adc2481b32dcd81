"""What batching concurrent requests buys `sentsim serve`, against the same server without it.

    python benchmarks/bench_serve.py [--clients 1,8,32] [--requests 256] [--repeats 3] [--json F]
                                     [--paths /encode,/score,/search]

Two servers are started as separate processes (``sentsim serve --no-rerank`` or with the judge,
on 127.0.0.1, port 0), identical but for ``--max-batch``: 256 (the default: requests that wait
while the model is busy share its next call) and 1 (every request alone, the peer). ``clients``
threads of this process then send ``--requests`` requests in all, each carrying **one** item, the
shape of live traffic (a search box sends one query):

- ``/encode``: one Banking77 test question (``minilm``);
- ``/score``: one STS-B test pair (the judge ``ce-rerank``, one order);
- ``/search``: one Banking77 test question against the help-center articles (an index of the 154
  articles built with ``minilm`` in a temporary folder), dense first stage, top 5, no judge (a
  re-ranked search already sends its 100 candidates to the judge as one batch).

Each (workload, clients) cell is run ``--repeats`` times, the two servers in turn, so a busy
moment of the machine falls on both alike; the median throughput (requests a second) and the
median of the runs' latency percentiles are kept. Every answer is checked against the other
server's for the same item (largest difference printed), so the speed is not bought with wrong
numbers. The CPU is printed: compare ratios within one run, not across machines.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from sentsim.data import read_pairs
from sentsim.machine import cpu_description
from sentsim.settings import dataset_path


@contextmanager
def server(max_batch: int, index: Path) -> Iterator[str]:
    """A ``sentsim serve`` process (``index``, ``minilm``, ``ce-rerank``); its URL meanwhile."""
    argv = [sys.executable, "-m", "sentsim", "serve", "--port", "0", "--reranker", "ce-rerank"]
    argv += ["--index", str(index), "--model", "minilm"]
    argv += ["--max-batch", str(max_batch)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"(http://\S+)", line)
        if not found:
            raise RuntimeError(f"sentsim serve did not start: {line!r}")
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=120) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def load(url: str, bodies: list[dict[str, Any]], clients: int) -> tuple[float, list[float], list]:
    """Send ``bodies`` from ``clients`` threads; seconds in all, each request's latency, answers."""
    answers: list[Any] = [None] * len(bodies)
    latencies: list[float] = [0.0] * len(bodies)
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            tick = time.perf_counter()
            answers[i] = post(url, bodies[i])
            latencies[i] = time.perf_counter() - tick

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, latencies, answers


def values(answer: dict[str, Any]) -> tuple[np.ndarray, list[str] | None]:
    if "results" in answer:  # a search: the same documents in the same order, then the scores
        ids = [hit["doc_id"] for hit in answer["results"]]
        return np.asarray([hit["score"] for hit in answer["results"]], dtype=np.float64), ids
    return np.asarray(answer.get("vectors", answer.get("scores")), dtype=np.float64), None


def largest_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The largest difference between two answers' numbers (inf where searches found others)."""
    (x, ids_a), (y, ids_b) = values(a), values(b)
    return float("inf") if ids_a != ids_b else float(np.max(np.abs(x - y), initial=0.0))


def help_center_index(folder: Path) -> Path:
    """The 154 help-center articles indexed with minilm in ``folder``."""
    articles = Path(__file__).parents[1] / "src/sentsim/resources/helpcenter/articles.jsonl"
    index = folder / "helpcenter"
    argv = [sys.executable, "-m", "sentsim", "index", "build", str(articles), "--index", str(index)]
    subprocess.run([*argv, "--model", "minilm", "--no-progress"], check=True)
    return index


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,8,32", help="concurrent clients, comma-separated")
    parser.add_argument("--requests", type=int, default=256, help="requests a run")
    parser.add_argument("--repeats", type=int, default=3, help="runs a cell, servers in turn")
    parser.add_argument("--json", type=Path, help="write the table here as JSON")
    parser.add_argument(
        "--paths", default="/encode,/score,/search", help="endpoints to load, comma-separated"
    )
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    paths = args.paths.split(",")

    with dataset_path("banking77", "test.csv").open(encoding="utf-8", newline="") as rows_in:
        questions = [row[0] for row in list(csv.reader(rows_in))[1:]]
    pairs = read_pairs(dataset_path("stsbenchmark", "sts-test.csv")).pairs()
    workloads: dict[str, list[dict[str, Any]]] = {
        "/encode": [{"texts": [q]} for q in questions[: args.requests]],
        "/score": [{"pairs": [list(p)]} for p in pairs[: args.requests]],
        "/search": [{"query": q, "top_k": 5, "rerank": False} for q in questions[: args.requests]],
    }
    unknown = sorted(set(paths) - set(workloads))
    if unknown:
        parser.error(f"--paths: no workload {', '.join(unknown)}; known: {', '.join(workloads)}")
    print(f"CPU: {cpu_description()}; {os.cpu_count()} cores, shared by both servers and clients")
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        server(256, help_center_index(Path(tmp))) as batched,
        server(1, Path(tmp) / "helpcenter") as alone,
    ):
        for path in paths:
            bodies = workloads[path]
            for n in clients:
                seconds: dict[str, list[float]] = {"batched": [], "alone": []}
                p50: dict[str, list[float]] = {"batched": [], "alone": []}
                p95: dict[str, list[float]] = {"batched": [], "alone": []}
                got: dict[str, list] = {}
                post(batched + path, bodies[0])  # warm-up
                post(alone + path, bodies[0])
                for _ in range(args.repeats):
                    for name, url in (("batched", batched), ("alone", alone)):
                        took, latencies, got[name] = load(url + path, bodies, n)
                        seconds[name].append(took)
                        p50[name].append(float(np.percentile(latencies, 50)))
                        p95[name].append(float(np.percentile(latencies, 95)))
                gap = max(
                    largest_difference(a, b)
                    for a, b in zip(got["batched"], got["alone"], strict=True)
                )
                row: dict[str, Any] = {
                    "path": path,
                    "clients": n,
                    "requests": len(bodies),
                    "max_abs_diff": gap,
                }
                for name in ("batched", "alone"):
                    row[f"{name}_rps"] = len(bodies) / statistics.median(seconds[name])
                    row[f"{name}_p50_ms"] = 1000 * statistics.median(p50[name])
                    row[f"{name}_p95_ms"] = 1000 * statistics.median(p95[name])
                row["speedup"] = row["batched_rps"] / row["alone_rps"]
                rows.append(row)
                print(
                    f"{path:10} clients {n:3}: batched {row['batched_rps']:7.1f} req/s "
                    f"(p50 {row['batched_p50_ms']:6.1f} ms, p95 {row['batched_p95_ms']:6.1f}) | "
                    f"alone {row['alone_rps']:7.1f} req/s (p50 {row['alone_p50_ms']:6.1f} ms, "
                    f"p95 {row['alone_p95_ms']:6.1f}) | {row['speedup']:.2f}x | "
                    f"largest difference {gap:.1e}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(
            json.dumps({"cpu": cpu_description(), "rows": rows}, indent=2) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
