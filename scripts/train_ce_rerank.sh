#!/usr/bin/env bash
# Rebuild the shipped re-ranker `ce-rerank` from ../shared/data alone (one command, ~100 min on
# a 2-core CPU; every step is skipped when its output exists, so a cut-off run is resumed by
# running it again):
#
#     bash scripts/train_ce_rerank.sh [RUN_DIR]        (default runs/ce-rerank)
#
# 1. SciFact pairs of the `train` and `select` claims, and the SciFact bi-encoder that mines their
#    negatives (the README's hard-negative recipe, runs/scifact/bi-hn).
# 2. Unlabelled in-domain pairs: every abstract's title as a pseudo-claim for its own text, with
#    one negative mined by minilm + BM25 from the title-free corpus (ranks 3-30).
# 3. A cross-encoder from MiniLM on titles + train claims (4 mined negatives each), 2 epochs,
#    the best epoch by average precision on the `select` pairs.
# 4. The fusion weight w (final = w·minmax(judge) + (1 − w)·minmax(first stage)): the w of
#    0, 0.1 … 1 with the best mean nDCG@10 over BM25 and hybrid first stages on the `select`
#    claims (top 50), stored as rerank_weight; then fp16 into the package.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
S=".venv/bin/sentsim"
PY=".venv/bin/python"
R="${1:-runs/ce-rerank}"
DATA="${SENTSIM_DATA:-../shared/data}"
C="$DATA/scifact/corpus.jsonl"
SPLITS=src/sentsim/resources/splits
mkdir -p "$R" runs/scifact

for split in train select; do
  [ -f "runs/scifact/$split.jsonl" ] || $PY scripts/scifact_pairs.py "$split" "runs/scifact/$split.jsonl"
done
[ -f runs/scifact/train-neg.jsonl ] || $S mine --train runs/scifact/train.jsonl --corpus "$C" \
  --model minilm --bm25 --negatives 1 --rank-window 3 30 --out runs/scifact/train-neg.jsonl
[ -f runs/scifact/bi-hn/train_report.json ] || $S train bi-encoder --train runs/scifact/train-neg.jsonl \
  --dev runs/scifact/select.jsonl --base minilm --loss mnrl --epochs 3 --batch-size 16 --lr 2e-5 \
  --seed 1 --out runs/scifact/bi-hn --no-progress
for split in train select; do
  [ -f "$R/$split-pairs.jsonl" ] || $S mine --train "runs/scifact/$split.jsonl" --corpus "$C" \
    --model runs/scifact/bi-hn --bm25 --negatives 4 --rank-window 3 30 --pairs --out "$R/$split-pairs.jsonl"
done

[ -f "$R/titles.jsonl" ] || $PY scripts/scifact_pairs.py titles "$R/titles.jsonl" "$R/corpus-notitle.jsonl"
[ -f "$R/title-pairs.jsonl" ] || $S mine --train "$R/titles.jsonl" --corpus "$R/corpus-notitle.jsonl" \
  --model minilm --bm25 --negatives 1 --rank-window 3 30 --pairs --out "$R/title-pairs.jsonl"

[ -f "$R/ce/train_report.json" ] || $S train cross-encoder --train "$R/title-pairs.jsonl" \
  --train "$R/train-pairs.jsonl" --dev "$R/select-pairs.jsonl" --base minilm --epochs 2 \
  --batch-size 16 --lr 3e-5 --max-length 256 --seed 1 --out "$R/ce" --no-progress --resume

WEIGHTS=0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1
for ret in bm25 hybrid; do
  [ -f "$R/select-$ret.json" ] || $S eval retrieval --data "$DATA/scifact" --split train \
    --queries "$SPLITS/scifact-select.txt" --retriever "$ret" --model minilm --rerank "$R/ce" \
    --k-retrieve 50 --sweep "$WEIGHTS" --json | tail -n 1 > "$R/select-$ret.json"
done
$PY - "$R" <<'EOF'
import json, sys
from pathlib import Path

run = Path(sys.argv[1])
sweeps = [json.loads((run / f"select-{r}.json").read_text())["sweep"] for r in ("bm25", "hybrid")]
weights = [k for k in sweeps[0] if k.startswith("w=")]
mean = {k: sum(s[k]["ndcg@10"] for s in sweeps) / len(sweeps) for k in weights}
best = max(weights, key=lambda k: (mean[k], -float(k[2:])))
config_path = run / "ce" / "sentsim_config.json"
config = json.loads(config_path.read_text())
config["rerank_weight"] = float(best[2:])
config["rerank_weight_selected_on"] = (
    "SciFact select claims (src/sentsim/resources/splits/scifact-select.txt), top 50 of BM25 "
    "and hybrid (minilm): best mean nDCG@10"
)
config_path.write_text(json.dumps(config, indent=2) + "\n")
print("select nDCG@10, mean of BM25 and hybrid:", {k: round(v, 2) for k, v in mean.items()})
print(f"rerank_weight = {best[2:]}")
EOF
$PY scripts/ship_model.py "$R/ce" ce-rerank
