#!/usr/bin/env bash
# Rebuild the shipped re-ranker `ce-rerank` from ../shared/data alone (one command, ~3 h on a
# 2-core CPU; every step is skipped when its output exists, so a cut-off run is resumed by
# running it again):
#
#     bash scripts/train_ce_rerank.sh [RUN_DIR]        (default runs/ce-rerank)
#
# 1. SciFact pairs of the `train` and `select` claims, and the SciFact bi-encoder that mines their
#    negatives (the README's hard-negative recipe, runs/scifact/bi-hn).
# 2. Unlabelled in-domain pairs: every abstract's title as a pseudo-claim for its own text, with
#    one negative mined by minilm + BM25 from the title-free corpus (ranks 3-30).
# 3. Stage 1: a cross-encoder from MiniLM on titles + train claims (4 mined negatives each),
#    2 epochs, the best epoch by average precision on the `select` pairs (52.8 min).
# 4. Stage 2: 1 epoch more on three domains (SciFact, WikiQA, the help center; 45.3 min).
# 5. The fusion weight from dev sweeps of five first stages, then fp16 into the package.
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

# 4. Second stage, three domains, so that one stored weight serves more than SciFact: from the
#    first stage's judge, 1 epoch on 4,000 of the title pairs (rehearsal), the train claims'
#    pairs, WikiQA train (every candidate sentence of every question) and 3,000 help-center
#    training questions with their article and one look-alike mined by minilm (ranks 3-20).
[ -f runs/hc-data/train.jsonl ] || $S helpcenter-data --out runs/hc-data
[ -f runs/wikiqa/train-pairs.jsonl ] || $PY scripts/wikiqa_beir.py runs/wikiqa
M="$R/mix"
[ -f "$M/hc-train.jsonl" ] || $PY scripts/rerank_mix.py sample "$R"
for split in train dev; do
  [ -f "$M/hc-$split-pairs.jsonl" ] || $S mine --train "$M/hc-$split.jsonl" \
    --corpus src/sentsim/resources/helpcenter/articles.jsonl --model minilm --negatives 1 \
    --rank-window 3 20 --pairs --out "$M/hc-$split-pairs.jsonl"
done
[ -f "$M/dev-mix.jsonl" ] || $PY scripts/rerank_mix.py dev "$R"
[ -f "$M/ce/train_report.json" ] || $S train cross-encoder --train "$M/title-pairs-4k.jsonl" \
  --train "$R/train-pairs.jsonl" --train runs/wikiqa/train-pairs.jsonl \
  --train "$M/hc-train-pairs.jsonl" --dev "$M/dev-mix.jsonl" --base "$R/ce" --epochs 1 \
  --batch-size 16 --lr 2e-5 --max-length 256 --seed 1 --out "$M/ce" --no-progress --resume

# 5. The fusion weight (final = w·minmax(judge) + (1 − w)·minmax(first stage)), on dev data only:
#    SciFact select claims (BM25, hybrid), WikiQA dev (BM25, dense), 300 help-center dev
#    questions (dense minilm; dense bi-helpcenter + example questions). Candidates are scored
#    once per first stage; every weight is read from the same scores. First stages with example
#    questions, and dense bi-helpcenter alone, get their own weights from their own sweeps
#    (rerank_weight_with_examples; rerank_weight_by_encoder, 0 there: the judge is not run).
#    A sweep's file is written by the shell before the sweep starts, so one cut off leaves it
#    empty: an empty file is run again (-s), where -f skipped it.
WEIGHTS=0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1
for ret in bm25 hybrid; do
  [ -s "$M/scifact-select-$ret.json" ] || $S eval retrieval --data "$DATA/scifact" --split train \
    --queries "$SPLITS/scifact-select.txt" --retriever "$ret" --model minilm --rerank "$M/ce" \
    --k-retrieve 50 --sweep "$WEIGHTS" --json | tail -n 1 > "$M/scifact-select-$ret.json"
done
for ret in bm25 dense; do
  [ -s "$M/wikiqa-dev-$ret.json" ] || $S eval retrieval --data runs/wikiqa --split dev \
    --retriever "$ret" --model minilm --rerank "$M/ce" --k-retrieve 50 --sweep "$WEIGHTS" \
    --json | tail -n 1 > "$M/wikiqa-dev-$ret.json"
done
[ -s "$M/helpcenter-dev-dense.json" ] || $S eval helpcenter --split dev --sample 300 \
  --retriever dense --model minilm --rerank "$M/ce" --k-retrieve 20 --sweep "$WEIGHTS" \
  --json | tail -n 1 > "$M/helpcenter-dev-dense.json"
[ -s "$M/helpcenter-dev-examples.json" ] || $S eval helpcenter --split dev --sample 300 \
  --model bi-helpcenter --examples --example-weight 0.2 --rerank "$M/ce" --k-retrieve 20 \
  --sweep "$WEIGHTS" --json | tail -n 1 > "$M/helpcenter-dev-examples.json"
[ -s "$M/helpcenter-dev-dense-bi-helpcenter.json" ] || $S eval helpcenter --split dev \
  --sample 300 --retriever dense --model bi-helpcenter --rerank "$M/ce" --k-retrieve 20 \
  --sweep "$WEIGHTS" --json | tail -n 1 > "$M/helpcenter-dev-dense-bi-helpcenter.json"
$PY scripts/rerank_mix.py weight "$R" "$M"/scifact-select-*.json "$M"/wikiqa-dev-*.json \
  "$M/helpcenter-dev-dense.json" --also "$M/helpcenter-dev-examples.json" \
  --with-examples "$M/helpcenter-dev-examples.json" \
  --after bi-helpcenter "$M/helpcenter-dev-dense-bi-helpcenter.json"
$PY scripts/ship_model.py "$M/ce" ce-rerank
