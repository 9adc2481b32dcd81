"""Model speed against sentence-transformers in the same process, and what bfloat16 and int8 cost.

    python benchmarks/bench_inference.py [--sentences 2000] [--pairs 600] [--repeats 3] [--json F]

Peers, each timed ``--repeats`` times in turn (round-robin, so that a busy moment of the machine
falls on every contender alike), the median kept:

- bi-encoder ``minilm``: ``SentenceTransformer.encode`` (float32; the peer), the same with its
  weights cast to bfloat16 (``model.to(torch.bfloat16)``, the peer's way to bfloat16), sentsim
  ``BiEncoder.encode`` in float32 and in bfloat16 (``precision="bf16"``: matrix products under
  ``torch.autocast``, layer norms and softmax in float32), on the first ``--sentences`` distinct
  sentences of STS-B test, batch 32;
- cross-encoder ``ce-sts`` (its network alone, one order): sentence-transformers' ``CrossEncoder``
  on the same directory (float32, and its weights cast to bfloat16), sentsim
  ``CrossEncoder.predict`` in float32 and bfloat16, on the first ``--pairs`` pairs of STS-B test,
  batch 32;
- int8 (both models): sentsim ``precision="int8"`` (square and widening linear layers in int8,
  narrowing ones in float32; ``sentsim.backend.int8_network``) against the peer with every linear
  layer quantized by ``torch.ao.quantization.quantize_dynamic(model, {Linear}, dtype=qint8)``, the
  recipe of torch's documentation (sentence-transformers' own int8 runs through ONNX Runtime or
  OpenVINO, not installed here).

Quality under each precision on all 1,379 STS-B test pairs: Spearman of ``minilm``'s cosine and of
the cross-encoder's score, and how far bfloat16 and int8 move them from float32 (smallest cosine
between a text's two vectors; largest score change), for sentsim and the peer.
The CPU, its SIMD flags and torch's thread count are printed: bfloat16 is fast only where the CPU
multiplies it natively (AMX, AVX512-BF16); elsewhere it is emulated and slower than float32, which
is why ``precision="auto"`` checks those flags.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.ao.quantization
from scipy.stats import spearmanr

from sentsim.backend import native_bf16
from sentsim.bi_encoder import BiEncoder
from sentsim.cross_encoder import CrossEncoder
from sentsim.data import read_pairs
from sentsim.machine import cpu_description
from sentsim.models import resolve_model_path
from sentsim.settings import dataset_path

QUIET = {"show_progress_bar": False}


def _all_linear_int8(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with every linear layer in dynamic int8, as torch's documentation does it."""
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


def _median_seconds(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Each contender's median wall time over ``repeats`` round-robin runs (after one warm-up)."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():
        run()  # warm-up: first-call allocations and oneDNN kernel selection
    for _ in range(repeats):
        for name, run in contenders.items():
            tick = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - tick)
    return {name: statistics.median(t) for name, t in times.items()}


def _report(
    title: str, seconds: dict[str, float], items: int, unit: str
) -> list[dict[str, object]]:
    peer = seconds["sentence-transformers"]
    print(f"\n{title} ({items} {unit}, batch 32, median of the repeats)")
    rows = []
    for name, s in seconds.items():
        rows.append({"contender": name, "seconds": round(s, 3), "per_second": round(items / s, 1)})
        print(f"  {name:<24} {s:7.2f} s  {items / s:8.1f} {unit}/s  {peer / s:5.2f}× the peer")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    args = parser.parse_args()

    from sentence_transformers import CrossEncoder as PeerCrossEncoder
    from sentence_transformers import SentenceTransformer

    data = read_pairs(dataset_path("stsbenchmark", "sts-test.csv"))
    pairs = data.pairs()
    sentences = list(dict.fromkeys(s for pair in pairs for s in pair))[: args.sentences]
    machine = {
        "cpu": cpu_description(),
        "torch_threads": torch.get_num_threads(),
        "native_bf16": native_bf16("cpu"),
        "torch": torch.__version__,
    }
    print(f"CPU: {machine['cpu']}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not machine["native_bf16"]:
        print("note: this CPU has no AMX / AVX512-BF16; bfloat16 is emulated here")

    minilm = resolve_model_path("minilm")
    peer_bi = SentenceTransformer(str(minilm), device="cpu")
    peer_bi_half = SentenceTransformer(str(minilm), device="cpu").to(torch.bfloat16)
    full_bi = BiEncoder.load("minilm", precision="fp32", device="cpu")
    half_bi = BiEncoder.load("minilm", precision="bf16", device="cpu")
    int8_bi = BiEncoder.load("minilm", precision="int8", device="cpu")
    peer_bi_int8 = SentenceTransformer(str(minilm), device="cpu")
    peer_bi_int8[0].model = _all_linear_int8(peer_bi_int8[0].model)
    bi_encoders: dict[str, Callable[[list[str]], np.ndarray]] = {
        "sentence-transformers": lambda t: peer_bi.encode(t, batch_size=32, **QUIET),
        "sentence-transformers bf16": lambda t: peer_bi_half.encode(t, batch_size=32, **QUIET),
        "sentsim fp32": lambda t: full_bi.encode(t, batch_size=32, show_progress=False),
        "sentsim bf16": lambda t: half_bi.encode(t, batch_size=32, show_progress=False),
        "sentence-transformers int8": lambda t: peer_bi_int8.encode(t, batch_size=32, **QUIET),
        "sentsim int8": lambda t: int8_bi.encode(t, batch_size=32, show_progress=False),
    }
    encode = _median_seconds(
        {name: partial(run, sentences) for name, run in bi_encoders.items()}, args.repeats
    )
    encode_rows = _report("bi-encoder minilm: encode", encode, len(sentences), "sentences")

    ce_dir = resolve_model_path("ce-sts")
    peer_ce = PeerCrossEncoder(str(ce_dir), device="cpu", max_length=128)
    peer_ce_half = PeerCrossEncoder(str(ce_dir), device="cpu", max_length=128)
    peer_ce_half.model.to(torch.bfloat16)
    full_ce = CrossEncoder.load("ce-sts", precision="fp32", device="cpu")
    half_ce = CrossEncoder.load("ce-sts", precision="bf16", device="cpu")
    int8_ce = CrossEncoder.load("ce-sts", precision="int8", device="cpu")
    peer_ce_int8 = PeerCrossEncoder(str(ce_dir), device="cpu", max_length=128)
    peer_ce_int8[0].model = _all_linear_int8(peer_ce_int8[0].model)
    judges: dict[str, Callable[[list[tuple[str, str]]], np.ndarray]] = {
        "sentence-transformers": lambda p: peer_ce.predict(p, batch_size=32, **QUIET),
        "sentence-transformers bf16": lambda p: peer_ce_half.predict(p, batch_size=32, **QUIET),
        "sentsim fp32": lambda p: full_ce.predict(p, batch_size=32, show_progress=False),
        "sentsim bf16": lambda p: half_ce.predict(p, batch_size=32, show_progress=False),
        "sentence-transformers int8": lambda p: peer_ce_int8.predict(p, batch_size=32, **QUIET),
        "sentsim int8": lambda p: int8_ce.predict(p, batch_size=32, show_progress=False),
    }
    some = pairs[: args.pairs]
    predict = _median_seconds(
        {name: partial(run, some) for name, run in judges.items()}, args.repeats
    )
    predict_rows = _report("cross-encoder ce-sts: predict", predict, len(some), "pairs")

    gold = data.scores()
    left, right = [a for a, _ in pairs], [b for _, b in pairs]
    quality: dict[str, float] = {}
    vectors, scores = {}, {}
    for name, encode_texts in bi_encoders.items():
        a, b = np.asarray(encode_texts(left)), np.asarray(encode_texts(right))
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        vectors[name] = a
        cosine = np.sum(a * b, 1)
        quality[f"minilm {name}"] = round(100 * spearmanr(cosine, gold).statistic, 2)
    for name, judge in judges.items():
        scores[name] = np.asarray(judge(pairs), dtype=np.float64).reshape(-1)
        quality[f"ce-sts one order {name}"] = round(
            100 * spearmanr(scores[name], gold).statistic, 2
        )
    for who in ("sentence-transformers", "sentsim"):
        full = who if who != "sentsim" else "sentsim fp32"
        for kind in ("bf16", "int8"):
            cos = np.sum(vectors[full] * vectors[f"{who} {kind}"], 1)
            quality[f"{who}: smallest cosine fp32-{kind}"] = round(float(np.min(cos)), 6)
            quality[f"{who}: mean cosine fp32-{kind}"] = round(float(np.mean(cos)), 6)
            change = np.abs(scores[full] - scores[f"{who} {kind}"])
            quality[f"{who}: largest judge score change fp32-{kind}"] = round(
                float(np.max(change)), 4
            )
    print(f"\nquality on STS-B test ({len(pairs)} pairs; Spearman × 100):")
    for name, value in quality.items():
        print(f"  {name:<56} {value}")
    if args.json:
        record = {"machine": machine, "encode": encode_rows, "predict": predict_rows, **quality}
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
