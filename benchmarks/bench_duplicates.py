"""Duplicate detection on MRPC: mined pairs against the paraphrase labels, and speed against a peer.

    python benchmarks/bench_duplicates.py [--judge ce-sts] [--neighbours 10] [--json F]
    python benchmarks/bench_duplicates.py --synthetic 50000     # candidate search: exact vs HNSW

A collection is every distinct sentence of an MRPC split (val: 996 of 500 pairs; test: 3,393 of
1,725 pairs); its duplicates are the split's pairs labelled paraphrase (346; 1,147). Every mined
pair that is not such a pair counts as a false positive: the split's pairs labelled
non-paraphrase (near misses by construction; counted apart as ``near_misses``) and any true
paraphrase across two MRPC pairs (rare: each pair is its own news story, but not never), so
precision is a lower bound. ``candidate recall``: the labelled duplicates that are
among the candidates at all, the ceiling of any judge.

Thresholds come from dev only, two ways: the best-F1 threshold on MRPC val's labelled pairs (what
``sentsim duplicates --dev`` does), and the best-F1 threshold of a mining run on the val
collection (the task itself, on dev). Test is mined once per system and reported.

``--synthetic N``: only the candidate search, exact (flat) against HNSW, on N clustered unit vectors
(384-d: 2,000 random centres, each vector a centre plus noise), its time and the share of the
exact candidate pairs HNSW finds.

Speed: the bi-encoder stage (encode + candidates) against sentence-transformers'
``util.paraphrase_mining`` on the same model and texts, in the same process, median of three
rounds; the peer's top pairs are compared with ours (same cosines, same order).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from sentsim.base import PairScorer
from sentsim.bi_encoder import BiEncoder
from sentsim.data import read_pairs
from sentsim.duplicates import candidate_pairs, choose_threshold
from sentsim.evaluation.scorers import EncoderPairScorer
from sentsim.fusion import load_judge
from sentsim.machine import cpu_description
from sentsim.settings import dataset_path

PEER = "sentence-transformers paraphrase_mining"


def _collection(split: str) -> tuple[list[str], set[tuple[int, int]], set[tuple[int, int]], Path]:
    """Texts, the paraphrase pairs, the pairs labelled non-paraphrase (by position), the file."""
    path = dataset_path("mrpc", f"msr-para-{split}.tsv")
    data = read_pairs(path)
    texts = list(dict.fromkeys(t for pair in data.pairs() for t in pair))
    where = {t: i for i, t in enumerate(texts)}
    labelled: dict[str, set[tuple[int, int]]] = {"0": set(), "1": set()}
    for (a, b), label in zip(data.pairs(), data.labels(), strict=True):
        if a != b:
            labelled[label].add((min(where[a], where[b]), max(where[a], where[b])))
    return texts, labelled["1"], labelled["0"], path


def _mine(
    texts: list[str],
    vectors: np.ndarray,
    judge: PairScorer | None,
    *,
    neighbours: int,
    min_cosine: float,
) -> tuple[list[tuple[int, int]], np.ndarray, float]:
    """Candidate pairs and their deciding scores (judge, else cosine); seconds of judging."""
    first, second, cosine = candidate_pairs(vectors, neighbours=neighbours, min_cosine=min_cosine)
    pairs = list(zip(first.tolist(), second.tolist(), strict=True))
    if judge is None:
        return pairs, cosine.astype(np.float64), 0.0
    tick = time.perf_counter()
    scores = judge.score_pairs([(texts[a], texts[b]) for a, b in pairs], show_progress=False)
    return pairs, np.asarray(scores, dtype=np.float64), time.perf_counter() - tick


def _prf(pairs: list, scores: np.ndarray, gold: set, t: float, near: set) -> dict:
    found = {p for p, s in zip(pairs, scores, strict=True) if s >= t}
    tp = len(found & gold)
    precision = tp / len(found) if found else 0.0
    recall = tp / len(gold)
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {
        "threshold": round(float(t), 4),
        "mined": len(found),
        "near_misses": len(found & near),  # mined pairs that MRPC labels non-paraphrase
        "precision": round(100 * precision, 2),
        "recall": round(100 * recall, 2),
        "f1": round(100 * f1, 2),
    }


def _best_mining_threshold(pairs: list, scores: np.ndarray, gold: set) -> float:
    labels = np.array([p in gold for p in pairs], dtype=np.float64)
    # F1 over the candidates, with the gold pairs that are not candidates counted as missed
    best, chosen = -1.0, float(scores.max()) if len(scores) else 1.0
    for t in np.unique(scores):
        pred = scores >= t
        tp = float((pred & (labels > 0)).sum())
        f1 = 2 * tp / (pred.sum() + len(gold)) if tp else 0.0
        if f1 > best:
            best, chosen = f1, float(t)
    return chosen


def _speed(model_name: str, texts: list[str], neighbours: int, repeats: int) -> dict:
    from sentence_transformers import SentenceTransformer, util

    from sentsim.models import resolve_model_path

    peer_model = SentenceTransformer(str(resolve_model_path(model_name)), device="cpu")
    ours = BiEncoder.load(model_name, device="cpu")

    def peer() -> list:
        return util.paraphrase_mining(peer_model, texts, top_k=neighbours, max_pairs=10**7)

    def sentsim() -> tuple:
        vectors = ours.encode(texts, show_progress=False)
        return candidate_pairs(vectors, neighbours=neighbours, min_cosine=-1.0)

    runs: dict[str, list[float]] = {PEER: [], "sentsim": []}
    peer(), sentsim()  # warm-up
    for _ in range(repeats):
        for name, run in ((PEER, peer), ("sentsim", sentsim)):
            tick = time.perf_counter()
            run()
            runs[name].append(time.perf_counter() - tick)
    theirs = {(int(a), int(b)): float(s) for s, a, b in peer()}
    first, second, cos = sentsim()
    mine = {(int(a), int(b)): float(c) for a, b, c in zip(first, second, cos, strict=True)}
    top = sorted(theirs, key=lambda p: -theirs[p])[:1000]
    agree = sum(p in mine and abs(mine[p] - theirs[p]) < 1e-4 for p in top)
    seconds = {k: round(statistics.median(v), 3) for k, v in runs.items()}
    return {
        "texts": len(texts),
        "seconds": seconds,
        "speed_vs_peer": round(seconds[PEER] / seconds["sentsim"], 2),
        "same_top_1000": agree,  # of the peer's 1,000 best pairs, found with the same cosine
    }


def _synthetic(n: int, neighbours: int) -> dict:
    from sentsim.index_cache import AnnKind, AnnSettings

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2000, 384))
    vectors = centres[rng.integers(0, 2000, n)] + 0.8 * rng.normal(size=(n, 384))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    seconds, found = {}, {}
    for kind in (AnnKind.FLAT, AnnKind.HNSW):
        tick = time.perf_counter()
        i, j, _ = candidate_pairs(
            vectors, neighbours=neighbours, min_cosine=0.5, ann=AnnSettings(kind=kind)
        )
        seconds[kind.value] = round(time.perf_counter() - tick, 1)
        found[kind.value] = set(zip(i.tolist(), j.tolist(), strict=True))
    exact = found["flat"]
    share = len(exact & found["hnsw"]) / max(len(exact), 1)
    print(f"{n} vectors: exact {seconds['flat']} s, HNSW {seconds['hnsw']} s (build included); "
          f"{len(exact)} exact candidate pairs, HNSW finds {100 * share:.2f}%")  # fmt: skip
    return {"vectors": n, "seconds": seconds, "exact_pairs": len(exact), "hnsw_share": share}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--judge", action="append", help="cross-encoder(s) to judge candidates")
    parser.add_argument("--neighbours", type=int, default=10)
    parser.add_argument("--min-cosine", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--synthetic", type=int, help="only time exact vs HNSW on N vectors")
    args = parser.parse_args()
    print(f"CPU: {cpu_description()}")
    if args.synthetic:
        result = _synthetic(args.synthetic, args.neighbours)
        if args.json:
            args.json.write_text(json.dumps({"cpu": cpu_description(), **result}, indent=2) + "\n")
        return 0
    encoder = BiEncoder.load(args.model)
    dev_texts, dev_gold, dev_near, dev_path = _collection("val")
    test_texts, test_gold, test_near, _ = _collection("test")
    dev_pairs = read_pairs(dev_path)
    dev_vectors = encoder.encode(dev_texts, show_progress=False)
    test_vectors = encoder.encode(test_texts, show_progress=False)
    print(f"val: {len(dev_texts)} texts, {len(dev_gold)} duplicates; "
          f"test: {len(test_texts)} texts, {len(test_gold)} duplicates")  # fmt: skip
    rows = []
    for judge_name in [None, *(args.judge or [])]:
        judge = load_judge(judge_name) if judge_name else None
        system = args.model + (f" + {judge_name}" if judge_name else " (cosine)")
        scorer: PairScorer = judge or EncoderPairScorer(encoder)
        from_pairs = choose_threshold(scorer, dev_pairs).threshold
        options = {"neighbours": args.neighbours, "min_cosine": args.min_cosine}
        d_pairs, d_scores, _ = _mine(dev_texts, dev_vectors, judge, **options)
        from_mining = _best_mining_threshold(d_pairs, d_scores, dev_gold)
        t_pairs, t_scores, judge_s = _mine(test_texts, test_vectors, judge, **options)
        ceiling = len(set(t_pairs) & test_gold) / len(test_gold)
        for source, t in (("val pairs (--dev)", from_pairs), ("val mining run", from_mining)):
            row = {
                "system": system,
                "threshold_from": source,
                "candidates": len(t_pairs),
                "candidate_recall": round(100 * ceiling, 2),
                "judge_seconds": round(judge_s, 1),
                **_prf(t_pairs, t_scores, test_gold, t, test_near),
                "val": _prf(d_pairs, d_scores, dev_gold, t, dev_near),
            }
            rows.append(row)
            print(f"{system:<28} threshold from {source:<18} t {row['threshold']:.4f}: "
                  f"P {row['precision']:.2f} R {row['recall']:.2f} F1 {row['f1']:.2f} "
                  f"({row['mined']} mined, {row['near_misses']} labelled non-paraphrase; "
                  f"candidates {len(t_pairs)}, candidate recall {row['candidate_recall']:.2f}; "
                  f"judge {judge_s:.1f}s)")  # fmt: skip
    speed = _speed(args.model, test_texts, args.neighbours, args.repeats)
    print(f"speed on {speed['texts']} texts (encode + candidates, median of {args.repeats}): "
          f"{speed['seconds']}; sentsim {speed['speed_vs_peer']}x the peer; the peer's top 1,000 "
          f"pairs found with the same cosine: {speed['same_top_1000']}")  # fmt: skip
    if args.json:
        args.json.write_text(
            json.dumps({"cpu": cpu_description(), "rows": rows, "speed": speed}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
