"""Store in a bi-encoder's folder the first stage that search should use with it by default.

    python scripts/choose_retriever.py MODEL_DIR DEV_RUN.json [DEV_RUN.json ...]

Each ``DEV_RUN.json`` is the output of ``sentsim eval helpcenter|retrieval --split dev ... --json``
for one ``--retriever`` with this model, without a re-ranker (its last line is read). The retriever
with the highest nDCG@10 (ties: the cheaper of dense, hybrid, bm25... in that order) is written to
``MODEL_DIR/sentsim_config.json`` as ``"retriever"`` with the figures it was chosen on; other keys
of that file are kept. ``sentsim search`` then uses it when no ``--retriever`` is given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ORDER = ("dense", "bm25", "hybrid")  # on a tie, the first: dense is what the encoder was made for


def choose(runs: list[dict[str, object]]) -> str:
    """The retriever with the best nDCG@10 of ``runs`` (each a ``--json`` result)."""
    scored = {str(r["retriever"]): float(str(r["ndcg@10"])) for r in runs}
    return max(scored, key=lambda name: (scored[name], -ORDER.index(name)))


def main() -> None:
    """Read the runs, choose, write."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args()
    runs = [json.loads(p.read_text(encoding="utf-8").strip().splitlines()[-1]) for p in args.runs]
    for path, run in zip(args.runs, runs, strict=True):
        if run.get("split") != "dev" or run.get("rerank"):
            raise SystemExit(f"{path}: needs a dev run without a re-ranker (split dev, no rerank)")
        if run.get("retriever") not in ORDER:
            raise SystemExit(f"{path}: retriever {run.get('retriever')!r} is not one of {ORDER}")
    best = choose(runs)
    file = args.model / "sentsim_config.json"
    config = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    config["retriever"] = best
    config["retriever_selected_on"] = {
        "data": sorted({str(r["data"]) for r in runs}),
        "ndcg@10": {str(r["retriever"]): r["ndcg@10"] for r in runs},
        "accuracy@1": {str(r["retriever"]): r.get("accuracy@1") for r in runs},
    }
    file.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    print(f"{file}: retriever {best} ({json.dumps(config['retriever_selected_on']['ndcg@10'])})")


if __name__ == "__main__":
    main()
