"""The multi-domain stage of ``ce-rerank`` (see scripts/train_ce_rerank.sh): data and weight.

    python scripts/rerank_mix.py sample RUN_DIR
    python scripts/rerank_mix.py dev RUN_DIR
    python scripts/rerank_mix.py weight RUN_DIR SWEEP.json [SWEEP.json ...] [--also SWEEP.json ...]
        [--with-examples SWEEP.json] [--after ENCODER SWEEP.json]

``sample`` draws fixed random samples (seed 0) for the second training stage: 3,000 help-center
training questions (``runs/hc-data/train.jsonl``, Banking77 train less its held-out dev tenth)
and 300 of the dev tenth, written as ``RUN_DIR/mix/hc-train.jsonl`` and ``hc-dev.jsonl`` for
negative mining, and 4,000 of the SciFact title pairs (``RUN_DIR/title-pairs.jsonl``) so that the
judge keeps rehearsing its first domain.

``dev`` joins the selection pairs of the three domains into ``RUN_DIR/mix/dev-mix.jsonl``: SciFact
``select`` claims, the mined help-center dev pairs and WikiQA dev (every candidate of every
question) — none of them used for training.

``weight`` reads ``sentsim eval ... --sweep ... --json`` outputs of the new judge on the dev data
of each domain and first stage, prints the nDCG@10 gain per weight, and stores the fusion weight
in ``RUN_DIR/mix/ce/sentsim_config.json``: the weight whose *smallest* gain over those first
stages is largest (ties: the smaller weight), because a re-ranker must not make any first stage
worse. Sweeps named after ``--also`` are printed beside them but do not choose: a first stage that
already uses labelled example queries (the help center's) is nearly saturated and gets its own
weight from its own dev data: ``--with-examples`` stores the weight with the largest nDCG@10 gain
on that sweep as ``rerank_weight_with_examples``, and ``--after ENCODER`` stores the same for a
first stage of that bi-encoder under ``rerank_weight_by_encoder`` (keyed by the hash of its
weights; 0 when no weight gains, which the pipeline reads as "do not run the judge there").
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from sentsim.settings import dataset_path

HC_TRAIN, HC_DEV, TITLES = 3000, 300, 4000


def _sample(src: Path, out: Path, n: int) -> None:
    rows = src.read_text(encoding="utf-8").splitlines(keepends=True)
    random.Random(0).shuffle(rows)
    out.write_text("".join(rows[:n]), encoding="utf-8")
    print(f"{out}: {min(n, len(rows))} of {len(rows)} rows of {src}")


def sample(run: Path) -> None:
    """Write the fixed samples of the second stage under ``run/mix``."""
    (run / "mix").mkdir(parents=True, exist_ok=True)
    _sample(Path("runs/hc-data/train.jsonl"), run / "mix" / "hc-train.jsonl", HC_TRAIN)
    _sample(Path("runs/hc-data/dev.jsonl"), run / "mix" / "hc-dev.jsonl", HC_DEV)
    _sample(run / "title-pairs.jsonl", run / "mix" / "title-pairs-4k.jsonl", TITLES)


def dev(run: Path) -> None:
    """Join the three domains' selection pairs."""
    root = dataset_path("wikiqa", "dev")
    cols = [(root / n).read_text(encoding="utf-8").splitlines() for n in ("a.toks", "b.toks")]
    labels = (root / "sim.txt").read_text(encoding="utf-8").split()
    wikiqa = [
        json.dumps({"sentence1": q, "sentence2": s, "label": int(float(y))}) + "\n"
        for q, s, y in zip(*cols, labels, strict=True)
    ]
    parts = [
        (run / "select-pairs.jsonl").read_text(encoding="utf-8"),
        (run / "mix" / "hc-dev-pairs.jsonl").read_text(encoding="utf-8"),
        "".join(wikiqa),
    ]
    out = run / "mix" / "dev-mix.jsonl"
    out.write_text("".join(parts), encoding="utf-8")
    print(f"{out}: {sum(p.count(chr(10)) for p in parts)} pairs")


def _gains(sweep: Path) -> dict[str, float]:
    """nDCG@10 gain over the first stage per weight ("w=0.4": +3.1), from a ``--sweep --json``
    output (its last line)."""
    table = json.loads(sweep.read_text(encoding="utf-8").splitlines()[-1])["sweep"]
    base = table["first stage"]["ndcg@10"]
    return {w: row["ndcg@10"] - base for w, row in table.items() if w.startswith("w=")}


def _best(gains: dict[str, dict[str, float]]) -> str:
    """The weight whose smallest gain over these sweeps is largest (ties: the smaller weight)."""
    weights = list(next(iter(gains.values())))
    return max(weights, key=lambda w: (min(g[w] for g in gains.values()), -float(w[2:])))


def weight(config: dict[str, object], sweeps: list[Path], also: list[Path]) -> None:
    """Choose the fusion weight from the dev sweeps and set it in ``config``."""
    gains = {p.stem: _gains(p) for p in [*sweeps, *also]}
    choosing = [p.stem for p in sweeps]
    print("dev nDCG@10 gain over the first stage, per weight (* = not used to choose):")
    names = [n if n in choosing else n + "*" for n in gains]
    print("w     " + "  ".join(f"{n:>24}" for n in names) + "    min")
    for w in gains[choosing[0]]:
        low = min(gains[n][w] for n in choosing)
        row = "  ".join(f"{g[w]:>+24.2f}" for g in gains.values())
        print(f"{w[2:]:<5} " + row + f"  {low:+.2f}")
    best = _best({n: gains[n] for n in choosing})
    config["rerank_weight"] = float(best[2:])
    config["rerank_weight_selected_on"] = (
        "dev data of three domains (" + ", ".join(choosing) + "): the weight whose smallest "
        "nDCG@10 gain over these first stages is largest"
    )
    print(f"rerank_weight = {best[2:]}")


def _own_weight(sweep: Path) -> tuple[float, str]:
    """The weight with the largest nDCG@10 gain over the sweep's own first stage (ties: smaller),
    and a line saying where it was chosen."""
    gains = _gains(sweep)
    listed = ", ".join(f"{w[2:]} {g:+.2f}" for w, g in gains.items())
    best = _best({sweep.stem: gains})
    return float(best[2:]), f"{sweep.stem}: nDCG@10 gain over its first stage by weight: {listed}"


def own_weights(
    config: dict[str, object], with_examples: Path | None, after: tuple[str, Path] | None
) -> None:
    """Set the weights chosen on the dev data of one first stage each (see the module doc)."""
    if with_examples is not None:
        value, how = _own_weight(with_examples)
        config["rerank_weight_with_examples"] = value
        config["rerank_weight_with_examples_selected_on"] = how
        print(f"rerank_weight_with_examples = {value} ({how})")
    if after is not None:
        from sentsim.bi_encoder import BiEncoder
        from sentsim.search import encoder_identity

        identity = encoder_identity(BiEncoder.load(after[0], device="cpu"))
        value, how = _own_weight(after[1])
        by_encoder = config.setdefault("rerank_weight_by_encoder", {})
        assert isinstance(by_encoder, dict)
        by_encoder[identity.weights_hash] = {
            "encoder": identity.name,
            "weight": value,
            "selected_on": how + ("; 0: the judge is not run after it" if value == 0 else ""),
        }
        print(f"rerank weight after {identity.name} ({identity.weights_hash}) = {value} ({how})")


def main(argv: list[str]) -> None:
    """Dispatch on ``argv[0]``."""
    if len(argv) >= 2 and argv[0] == "sample":
        sample(Path(argv[1]))
    elif len(argv) >= 2 and argv[0] == "dev":
        dev(Path(argv[1]))
    elif len(argv) >= 3 and argv[0] == "weight":
        files = argv[2:]
        with_examples = after = None
        if "--after" in files:
            at = files.index("--after")
            after = (files[at + 1], Path(files[at + 2]))
            files = files[:at] + files[at + 3 :]
        if "--with-examples" in files:
            at = files.index("--with-examples")
            with_examples = Path(files[at + 1])
            files = files[:at] + files[at + 2 :]
        cut = files.index("--also") if "--also" in files else len(files)
        config_path = Path(argv[1]) / "mix" / "ce" / "sentsim_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        weight(config, [Path(p) for p in files[:cut]], [Path(p) for p in files[cut + 1 :]])
        own_weights(config, with_examples, after)
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
