"""First-stage benchmark of ``sentsim.index``: build time, memory, query latency and recall.

    python benchmarks/bench_index.py [N] [--dim 384] [--ann auto|flat|hnsw] [--queries 1000]
        [--quantize none|sq8|none,sq8] [--centres REAL.npy | --vectors REAL.npy]

N (default 1,000,000) one-passage documents with synthetic vectors are added in batches (one
commit each), the index is closed and reopened (loading the saved cache), and single top-100
queries are timed one by one (``Index.search_dense``: faiss candidates, exact rescoring, SQLite
lookup of the owners). Recall@10 is measured against exact numpy inner-product search.

Synthetic vectors imitate sentence embeddings rather than uniform noise, which is the easy case
for exact search and the hard case for HNSW, and unlike any real corpus:

* anisotropy: every vector shares a common direction (real embeddings have mean pairwise
  cosine ~0.1-0.3, not 0);
* low intrinsic dimension: cluster centres and within-cluster spread live mostly in a random
  64-dimensional subspace, plus small isotropic noise;
* topics of very different sizes: N/1000 clusters whose sizes follow a Zipf law (exponent 1.1);
* queries come from the same distribution but are not in the index (fresh points of the
  clusters), so the nearest neighbour is not the query itself.

Vectors are L2-normalised; the script prints the resulting mean pairwise cosine as a check.

``--centres REAL.npy`` (real MiniLM embeddings from ``benchmarks/embed_shared.py``) replaces the
random centres with real ones: each synthetic vector is a random real embedding plus noise drawn
from the real embeddings' own covariance (the difference of two random real embeddings, / sqrt 2),
scaled so that the median distance of a synthetic vector to its centre equals the median distance
of a real embedding to its nearest real neighbour. ``--vectors REAL.npy`` skips the synthesis: the
real embeddings themselves are the corpus (N is their number less the queries) and held-out real
embeddings are the queries, to check recall on real data.

``--filters`` also times metadata-filtered searches (``where=``): every document carries the
booleans ``p0.1``, ``p1``, ``p5``, ``p10`` and ``p50``, true for that percentage of documents,
and each filter is searched by the automatic choice and by each of its two paths forced (exact
over the filter's rows; faiss with the filter as an ID selector), with recall@10 against exact
search over the documents the filter keeps.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from sentsim import index_cache
from sentsim.index import Document, EncoderIdentity, Index


def cpu_report() -> str:
    """Return the CPU model, core count, SIMD flags and faiss's compile options."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [
        f
        for f in (
            "sse4_2",
            "avx",
            "avx2",
            "fma",
            "avx512f",
            "avx512bw",
            "avx512_vnni",
            "amx_tile",
            "neon",
            "asimd",
            "sve",
        )
        if f in flags
    ]
    options = faiss.get_compile_options() if hasattr(faiss, "get_compile_options") else "?"
    return (
        f"cpu: {model}; cores: {os.cpu_count()} (faiss threads {faiss.omp_get_max_threads()}); "
        f"simd: {' '.join(simd) or 'none found'}; faiss {faiss.__version__} [{options.strip()}]"
    )


def status_mib(*fields: str) -> list[float]:
    """Return the named memory fields of /proc/self/status (VmRSS, RssAnon...) in MiB (0: none)."""
    found = dict.fromkeys(fields, 0.0)
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in found:
                found[name] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return [found[field] for field in fields]


def rss_mib() -> tuple[float, float]:
    """Return (current, peak) resident memory of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return status_mib("VmRSS")[0], peak


def rss_parts_mib() -> tuple[float, float]:
    """Return (anonymous, file-backed) resident memory of this process in MiB (Linux)."""
    anonymous, file_backed = status_mib("RssAnon", "RssFile")
    return anonymous, file_backed


class Synthetic:
    """Clustered, anisotropic, low-rank unit vectors (see the module docstring)."""

    def __init__(self, n: int, dim: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.dim, rank = dim, min(64, dim)
        self.basis = np.linalg.qr(self.rng.normal(size=(dim, rank)))[0].T  # (rank, dim)
        self.common = self.rng.normal(size=dim)
        self.common *= 0.6 / np.linalg.norm(self.common)
        clusters = max(1, n // 1000)
        self.centres = self.rng.normal(size=(clusters, rank)) @ self.basis
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)
        sizes = 1.0 / np.arange(1, clusters + 1) ** 1.1
        self.weights = sizes / sizes.sum()

    def sample(self, count: int) -> np.ndarray:
        """Return ``count`` unit vectors."""
        which = self.rng.choice(len(self.centres), size=count, p=self.weights)
        spread = self.rng.normal(size=(count, self.basis.shape[0])) @ self.basis * 0.09
        noise = self.rng.normal(size=(count, self.dim)) * (0.15 / np.sqrt(self.dim))
        vectors = self.common + self.centres[which] + spread + noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors.astype(np.float32)


class RealCentres:
    """Real embeddings as centres plus real-covariance noise (see the module docstring)."""

    def __init__(self, real: np.ndarray, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.real = np.ascontiguousarray(real, dtype=np.float32)
        probe = self.real[self.rng.choice(len(real), size=min(2000, len(real)), replace=False)]
        nearest = np.sort(probe @ self.real.T, axis=1)[:, -2]  # the largest is the point itself
        self.nn_distance = float(np.median(np.sqrt(np.maximum(0.0, 2 - 2 * nearest))))
        raw = self._noise(4000)
        self.scale = self.nn_distance / float(np.median(np.linalg.norm(raw, axis=1)))

    def _noise(self, count: int) -> np.ndarray:
        a, b = (self.rng.integers(len(self.real), size=count) for _ in range(2))
        return (self.real[a] - self.real[b]) / np.sqrt(2)

    def sample(self, count: int) -> np.ndarray:
        """Return ``count`` unit vectors."""
        centres = self.real[self.rng.integers(len(self.real), size=count)]
        vectors = centres + self.scale * self._noise(count)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors.astype(np.float32)


def exact_top(queries: np.ndarray, corpus: np.ndarray, k: int) -> np.ndarray:
    """Return the row numbers of the exact top ``k`` by inner product, per query."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(corpus), 100_000):
        scores = queries @ corpus[start : start + 100_000].T
        both_scores = np.concatenate([best_scores, scores], axis=1)
        rows = np.arange(start, start + scores.shape[1])
        both_rows = np.concatenate([best_rows, np.broadcast_to(rows, scores.shape)], axis=1)
        top = np.argsort(-both_scores, axis=1)[:, :k]
        best_scores = np.take_along_axis(both_scores, top, axis=1)
        best_rows = np.take_along_axis(both_rows, top, axis=1)
    return best_rows


def make_vectors(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """Return (corpus, queries) as chosen by ``--vectors`` / ``--centres`` / neither."""
    wanted = max(args.queries, args.recall_queries)
    if args.vectors is not None:
        real = np.load(args.vectors).astype(np.float32)
        order = np.random.default_rng(0).permutation(len(real))
        print(f"real vectors from {args.vectors}: {len(real) - wanted:,} indexed, {wanted} queries")
        return real[order[wanted:]], real[order[:wanted]]
    data: Synthetic | RealCentres
    if args.centres is not None:
        data = RealCentres(np.load(args.centres))
        print(
            f"synthetic around {len(data.real):,} real centres from {args.centres}: median "
            f"nearest-neighbour distance {data.nn_distance:.3f}, noise scale {data.scale:.3f}"
        )
    else:
        data = Synthetic(args.n, args.dim)
    dim = data.real.shape[1] if isinstance(data, RealCentres) else args.dim
    corpus = np.empty((args.n, dim), dtype=np.float32)
    for start in range(0, args.n, 100_000):
        corpus[start : start + 100_000] = data.sample(min(100_000, args.n - start))
    queries = data.sample(wanted)
    pairs = data.rng.integers(args.n, size=(2, 2000))
    cosine = float(np.mean(np.sum(corpus[pairs[0]] * corpus[pairs[1]], axis=1)))
    print(f"synthetic vectors: mean pairwise cosine {cosine:.3f}")
    if isinstance(data, RealCentres):
        pairs = data.rng.integers(len(data.real), size=(2, 2000))
        real = float(np.mean(np.sum(data.real[pairs[0]] * data.real[pairs[1]], axis=1)))
        probe = queries[:500] @ corpus.T if args.n <= 200_000 else None
        print(f"real vectors: mean pairwise cosine {real:.3f}")
        if probe is not None:
            nn = np.sqrt(np.maximum(0.0, 2 - 2 * probe.max(axis=1)))
            print(f"synthetic queries: median distance to the nearest vector {np.median(nn):.3f}")
    return corpus, queries


# field: true for one document in this many
PERCENTS = {"p0.1": 1000, "p1": 100, "p5": 20, "p10": 10, "p50": 2}


def filter_fields(i: int) -> dict[str, bool]:
    """Document ``i``'s filter fields: ``p10`` is true for one document in ten, and so on."""
    return {field: i % every == 0 for field, every in PERCENTS.items()}


def time_filters(
    index: Index, corpus: np.ndarray, queries: np.ndarray, args: argparse.Namespace
) -> None:
    """Time top-100 searches under each filter, by each path, and their recall@10."""
    automatic = index_cache.EXACT_FILTERED_ROWS, index_cache.EXACT_FILTERED_SHARE
    paths = {"auto": automatic, "exact": (10**12, 1.0), "selector": (0, 0.0)}
    count = min(args.queries, 300)
    for field, every in PERCENTS.items():
        where = {field: True}
        rows = np.arange(0, len(corpus), every)
        probe = queries[: args.recall_queries]
        exact = rows[exact_top(probe, corpus[rows], 10)]
        for name, (most_rows, share) in paths.items():
            index_cache.EXACT_FILTERED_ROWS, index_cache.EXACT_FILTERED_SHARE = most_rows, share
            index._subsets.clear()  # the path is chosen when the filter is first read
            tick = time.perf_counter()
            index.search_dense(queries[:1], 100, where=where)
            first_ms = (time.perf_counter() - tick) * 1000
            times = []
            for query in queries[:count]:
                tick = time.perf_counter()
                index.search_dense(query[None, :], 100, where=where)
                times.append(time.perf_counter() - tick)
            hits = index.search_dense(probe, 10, where=where)
            found = sum(
                len({int(h.doc_id[3:]) for h in row} & set(truth.tolist()))
                for row, truth in zip(hits, exact, strict=True)
            )
            p50, p99 = np.percentile(np.asarray(times) * 1000, [50, 99])
            print(
                f"filter {field}=true ({len(rows):,} documents) {name:>8}: first search "
                f"{first_ms:.0f} ms (reads the filter), then p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
                f"recall@10 {found / exact.size:.4f}"
            )
        index_cache.EXACT_FILTERED_ROWS, index_cache.EXACT_FILTERED_SHARE = automatic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, nargs="?", default=1_000_000, help="documents")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--ann", default="auto", choices=["auto", "flat", "hnsw"])
    parser.add_argument(
        "--quantize",
        default="none",
        help="none, sq8, or several separated by commas (none,sq8): each is built and measured "
        "in a process of its own, one after the other, on the same vectors",
    )
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--batch", type=int, default=10_000, help="documents per commit")
    parser.add_argument("--queries", type=int, default=1000, help="timed single queries")
    parser.add_argument("--recall-queries", type=int, default=200)
    parser.add_argument("--dir", type=Path, help="index folder (default: a temporary one)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--centres", type=Path, help="real embeddings (.npy) as cluster centres")
    source.add_argument("--vectors", type=Path, help="real embeddings (.npy) as the corpus")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="faiss OpenMP threads while timing single queries (1: no spin-waiting on a busy box)",
    )
    parser.add_argument("--filters", action="store_true", help="also time filtered searches")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.quantize.split(",") if v.strip()]
    for variant in variants:
        index_cache.Quantize.parse(variant)

    print(cpu_report())
    root = Path(tempfile.mkdtemp(prefix="bench-index-")) if args.dir is None else args.dir
    corpus, queries = make_vectors(args)
    args.n, args.dim = corpus.shape
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, n={args.n:,}, dim={args.dim}")
    if len(variants) == 1:
        run(args, corpus, queries, root / "index", variants[0])
    else:  # a fresh process each (forked: the vectors are shared), so memory is not carried over
        for variant in variants:
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                try:
                    run(args, corpus, queries, root / f"index-{variant}", variant)
                finally:
                    sys.stdout.flush()
                    os._exit(0)
            os.waitpid(pid, 0)
    if args.dir is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def run(
    args: argparse.Namespace, corpus: np.ndarray, queries: np.ndarray, path: Path, quantize: str
) -> None:
    """Build, reopen and measure one index of ``corpus`` (see the module docstring)."""
    print(f"--- quantize={quantize}")
    rss_before, _ = rss_mib()
    encoder = EncoderIdentity("synthetic", "bench", args.dim)
    started = time.perf_counter()
    index = Index.create(
        path,
        encoder,
        ann=args.ann,
        quantize=quantize,
        hnsw_m=args.hnsw_m,
        ef_construction=args.ef_construction,
        ef_search=args.ef_search,
    )
    for start in range(0, args.n, args.batch):
        stop = min(args.n, start + args.batch)
        docs = [
            Document(
                f"doc{i}", f"synthetic document {i}", "", filter_fields(i) if args.filters else {}
            )
            for i in range(start, stop)
        ]
        index.add(docs, None, corpus[start:stop])
    index.close()  # saves the cache
    build_s = time.perf_counter() - started
    rss_built, peak_built = rss_mib()

    del index  # the writer's cache, so that the reopened index's memory is measured alone
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # glibc: give freed heap back to the OS
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    anon_before, file_before = rss_parts_mib()
    started = time.perf_counter()
    index = Index.open(path, encoder, readonly=True)
    open_s = time.perf_counter() - started
    info = index.info()
    rss_open, _ = rss_mib()
    anon_open, file_open = rss_parts_mib()
    print(
        f"build: {build_s:.1f} s ({args.n / build_s:,.0f} docs/s, {args.batch:,} per commit); "
        f"ann={info.ann.value}, quantize={info.quantize.value}; reopen {open_s:.2f} s"
    )
    mib = 2**20
    print(
        f"disk: sqlite {info.database_bytes / mib:,.0f} MiB, "
        f"cache {info.cache_bytes / mib:,.0f} MiB"
    )
    print(
        f"rss: before build {rss_before:,.0f} MiB (imports, and the corpus array of "
        f"{corpus.nbytes / mib:,.0f} MiB), after build +{rss_built - rss_before:,.0f}, "
        f"peak {peak_built:,.0f}, after reopen +{rss_open - rss_before:,.0f} "
        f"(anonymous +{anon_open - anon_before:,.0f}, file-backed +{file_open - file_before:,.0f})"
    )

    faiss.omp_set_num_threads(args.threads)
    for query in queries[:10]:  # warm-up
        index.search_dense(query[None, :], 100)
    times = []
    for query in queries[: args.queries]:
        tick = time.perf_counter()
        index.search_dense(query[None, :], 100)
        times.append(time.perf_counter() - tick)
    ms = np.asarray(times) * 1000
    p50, p99 = np.percentile(ms, [50, 99])
    print(
        f"top-100 single-query latency ({args.threads} thread(s), {len(ms)} queries): "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {ms.mean():.2f} ms"
    )
    anon_end, file_end = rss_parts_mib()
    print(
        f"rss after the timed queries: anonymous +{anon_end - anon_before:,.0f} MiB, "
        f"file-backed +{file_end - file_before:,.0f} MiB (pages of the memory-mapped vectors)"
    )

    probe = queries[: args.recall_queries]
    exact = exact_top(probe, corpus, 10)
    hits = index.search_dense(probe, 10)
    found = sum(
        len({int(h.doc_id[3:]) for h in row} & set(truth.tolist()))
        for row, truth in zip(hits, exact, strict=True)
    )
    print(f"recall@10 vs exact over {len(probe)} queries: {found / exact.size:.4f}")
    if args.filters:
        time_filters(index, corpus, queries, args)
    index.close()


if __name__ == "__main__":
    sys.exit(main())
