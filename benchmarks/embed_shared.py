"""Encode the distinct texts of the shared data sets with a bi-encoder, for the index benchmark.

    python benchmarks/embed_shared.py OUT.npy [--model minilm] [--limit N]

Texts: STS-B (all splits), SNLI dev/test, MRPC, Banking77 questions, WikiQA questions and answer
sentences, SciFact abstracts (title + text) — about 90k distinct strings, deduplicated, in a fixed
shuffled order. Writes OUT.npy (float32, unit vectors, one row per text) and OUT.txt (the texts).
``bench_index.py`` uses them as cluster centres for its synthetic million (``--centres``) and as a
real corpus to check recall on (``--vectors``).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sentsim.bi_encoder import BiEncoder
from sentsim.jsonl import read_objects
from sentsim.machine import cpu_description
from sentsim.settings import dataset_path


def _tsv(path: Path, columns: tuple[int, ...], skip_header: bool) -> Iterator[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        if skip_header:
            next(rows, None)
        for row in rows:
            yield from (row[c] for c in columns if c < len(row))


def shared_texts() -> Iterator[str]:
    """Yield every text of the shared data sets (with repeats)."""
    for split in ("train", "dev", "test"):
        yield from _tsv(dataset_path("stsbenchmark", f"sts-{split}.csv"), (5, 6), False)
    for name in ("s1.dev", "s2.dev", "s1.test", "s2.test"):
        yield from dataset_path("snli", name).read_text(encoding="utf-8").splitlines()
    for split in ("train", "val", "test"):
        yield from _tsv(dataset_path("mrpc", f"msr-para-{split}.tsv"), (3, 4), True)
    for split in ("train", "test"):
        with dataset_path("banking77", f"{split}.csv").open(encoding="utf-8", newline="") as f:
            yield from (row["text"] for row in csv.DictReader(f))
    for split in ("train", "dev", "test"):
        for name in ("a.toks", "b.toks"):
            yield from dataset_path("wikiqa", split, name).read_text(encoding="utf-8").splitlines()
    for _, doc in read_objects(dataset_path("scifact", "corpus.jsonl")):
        yield f"{doc.get('title', '')}\n{doc.get('text', '')}".strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--limit", type=int, help="encode only the first N texts (after shuffling)")
    args = parser.parse_args(argv)
    texts = sorted({t.strip() for t in shared_texts() if t.strip()})
    order = np.random.default_rng(0).permutation(len(texts))
    texts = [texts[i] for i in order][: args.limit]
    print(cpu_description())
    print(f"{len(texts):,} distinct texts; encoding with {args.model}")
    model = BiEncoder.load(args.model)
    started = time.perf_counter()
    vectors = model.encode(texts, batch_size=64, show_progress=True)
    seconds = time.perf_counter() - started
    print(f"encoded in {seconds:.0f} s ({len(texts) / seconds:.0f} texts/s)")
    np.save(args.out, vectors.astype(np.float32))
    args.out.with_suffix(".txt").write_text(
        "".join(t.replace("\n", " ") + "\n" for t in texts), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
