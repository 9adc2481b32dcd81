"""Unlabelled sentences for full-data AugSBERT beyond STS-B train: new content, not recombinations.

    python scripts/sts_unlabelled.py OUT.txt [--wikiqa]

Writes one sentence per line (the ``--unlabelled`` of ``sentsim augsbert``): the STS-B train
sentences, the SNLI dev + test premises and hypotheses (image captions, like STS-B's caption genre;
detokenized) and the MRPC train sentences (news, like its news genre). Any sentence that also
occurs in STS-B dev or test is dropped (compared lowercased, letters and digits only), so no
selection or reporting sentence is ever labelled or trained on. MRPC val/test stay untouched for
the paraphrase evaluations. ``--wikiqa`` adds the WikiQA **train** candidate answer sentences
(Wikipedia prose that explains things, the nearest thing here to STS-B's forum answers; its dev and
test stay untouched for re-ranking). Prints the count per source.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from sentsim.data import read_pairs
from sentsim.settings import dataset_path

_SPACE_BEFORE = re.compile(r" ([.,!?;:%)]|'s|'re|'ve|'ll|'m|'d|n't)(?=\s|$)")


def _detok(text: str) -> str:
    """Undo SNLI's space tokenization: ``a dog 's ball .`` -> ``a dog's ball.``."""
    text = " ".join(text.split())
    text = _SPACE_BEFORE.sub(r"\1", text)
    return text.replace("( ", "(")


def _key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _pair_sentences(path: Path) -> list[str]:
    return [s for pair in read_pairs(path).pairs() for s in pair]


def main(argv: list[str]) -> None:
    wikiqa = "--wikiqa" in argv
    argv = [a for a in argv if a != "--wikiqa"]
    if len(argv) != 1 or argv[0].startswith("-"):
        sys.exit(__doc__)
    held_out = {
        _key(s)
        for split in ("sts-dev.csv", "sts-test.csv")
        for s in _pair_sentences(dataset_path("stsbenchmark", split))
    }
    snli = [
        _detok(line)
        for split in ("dev", "test")
        for side in ("s1", "s2")
        for line in dataset_path("snli", f"{side}.{split}").read_text(encoding="utf-8").splitlines()
    ]
    sources = {
        "stsb-train": _pair_sentences(dataset_path("stsbenchmark", "sts-train.csv")),
        "snli-dev+test": snli,
        "mrpc-train": _pair_sentences(dataset_path("mrpc", "msr-para-train.tsv")),
    }
    if wikiqa:
        answers = dataset_path("wikiqa", "train", "b.toks").read_text(encoding="utf-8")
        sources["wikiqa-train-answers"] = [_detok(line) for line in answers.splitlines()]
    seen: set[str] = set()
    out: list[str] = []
    for name, sentences in sources.items():
        kept = dropped = 0
        for sentence in sentences:
            key = _key(sentence)
            if not key or key in seen:
                continue
            seen.add(key)
            if key in held_out:
                dropped += 1
                continue
            out.append(sentence)
            kept += 1
        print(f"{name}: {kept} new sentences kept, {dropped} dropped (in STS-B dev/test)")
    Path(argv[0]).write_text("".join(f"{s}\n" for s in out), encoding="utf-8")
    print(f"{argv[0]}: {len(out)} sentences")


if __name__ == "__main__":
    main(sys.argv[1:])
