#!/usr/bin/env bash
# The SciFact hard-negative ablation (results/scifact-negatives-ablation-rule.md): MiniLM
# fine-tuned with MNRL on the `train` claims with and without one mined negative each, selected on
# `select`, each measured on `report`.   bash scripts/scifact_negatives.sh OUT_DIR
# Every step is skipped when its output exists, so a cut-off run continues.
set -euo pipefail
source "$(dirname "$0")/steps.sh"
OUT=${1:?usage: scripts/scifact_negatives.sh OUT_DIR}
DATA=${SENTSIM_DATA:-../shared/data}
REPORT=src/sentsim/resources/splits/scifact-report.txt
mkdir -p "$OUT"
[ -s "$OUT/train.jsonl" ] || python scripts/scifact_pairs.py train "$OUT/train.jsonl"
[ -s "$OUT/select.jsonl" ] || python scripts/scifact_pairs.py select "$OUT/select.jsonl"
[ -s "$OUT/train-neg.jsonl" ] || sentsim mine --train "$OUT/train.jsonl" \
    --corpus "$DATA/scifact/corpus.jsonl" --model minilm --bm25 --negatives 1 --rank-window 3 30 \
    --out "$OUT/train-neg.jsonl"
for kind in mined in-batch; do
    train="$OUT/train-neg.jsonl"; [ "$kind" = in-batch ] && train="$OUT/train.jsonl"
    finished "$OUT/$kind" || sentsim train bi-encoder --train "$train" \
        --dev "$OUT/select.jsonl" --base minilm --loss mnrl --epochs 3 --batch-size 16 --lr 2e-5 \
        --seed 1 --no-progress --resume --out "$OUT/$kind"
    [ -s "$OUT/report-$kind.json" ] || sentsim eval retrieval --data "$DATA/scifact" \
        --split train --queries "$REPORT" --retriever dense --model "$OUT/$kind" \
        --per-query "$OUT/report-$kind.perq.json" --json | tail -1 > "$OUT/report-$kind.json"
done
for metric in ndcg@10 mrr@10 recall@100; do
    python scripts/bootstrap.py "$OUT/report-in-batch.perq.json" "$OUT/report-mined.perq.json" "$metric"
done
