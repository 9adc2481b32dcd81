#!/usr/bin/env bash
# Rebuild the shipped `bi-sts-augsbert` and the fusion of `ce-sts` in one command (about 2.6 h on a
# 2-core CPU; every step resumes from its output if the run is cut off: run it again).
#
#   bash scripts/build_ce_sts.sh [RUN_DIR]        # default RUN_DIR: runs/ce-sts-chain
#
# 1. Fetch all-mpnet-base-v2 (training-time teacher only) and fine-tune it on STS-B train (15 min).
# 2. The teacher judge: the shipped `ce-sts` cross-encoder fused with that teacher (w on dev).
# 3. 40,921 unlabelled sentences (scripts/sts_unlabelled.py: STS-B train, SNLI dev/test, MRPC
#    train, minus every STS-B dev/test sentence).
# 4. `sentsim augsbert`: gold-only MiniLM (its kNN finds partners), 40,000 BM25 + kNN pairs
#    labelled by the teacher judge, MiniLM trained on gold + silver, best epoch on STS-B dev.
# 5. Ship the student as `bi-sts-augsbert` (fp16), fuse `ce-sts`'s cross-encoder with it (w on
#    STS-B dev, stored in ce-sts/sentsim_config.json) and report dev and test by built-in names.
#
# The cross-encoder inside `ce-sts` is not retrained here: its own one-command recipe is on its card.
# Needs $SENTSIM_DATA (default ../shared/data) with stsbenchmark, snli and mrpc.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/ce-sts-chain}
data=${SENTSIM_DATA:-../shared/data}
sts=$data/stsbenchmark
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
sentsim() { .venv/bin/sentsim "$@"; }
mkdir -p "$run"
models=src/sentsim/resources/models

teacher=$(bash scripts/sts_teacher.sh "$run")

# the judge is done once its stored fusion names the teacher
if ! grep -qF "\"bi_encoder\": \"$teacher\"" "$run/judge/sentsim_config.json" 2>/dev/null; then
    rm -rf "$run/judge"
    cp -r "$models/ce-sts" "$run/judge"
    sentsim fuse --cross-encoder "$run/judge" --bi-encoder "$teacher" --dev "$sts/sts-dev.csv" \
        --no-progress
fi

[[ -f $run/sentences.txt ]] || .venv/bin/python scripts/sts_unlabelled.py "$run/sentences.txt"

# sentsim augsbert resumes on its own: finished steps are skipped, a cut training continues.
sentsim augsbert --gold "$sts/sts-train.csv" --unlabelled "$run/sentences.txt" \
    --cross-encoder "$run/judge" --sampling bm25+knn --cap 40000 --top-k 2 \
    --dev "$sts/sts-dev.csv" --test "$sts/sts-test.csv" --base minilm --loss cosent \
    --epochs 4 --lr 2e-5 --seed 1 --no-progress --out "$run/augsbert"

.venv/bin/python scripts/ship_model.py "$run/augsbert/model-bm25+knn" bi-sts-augsbert
sentsim fuse --cross-encoder "$models/ce-sts" --bi-encoder bi-sts-augsbert \
    --dev "$sts/sts-dev.csv" --no-progress
for split in dev test; do
    sentsim eval sts --cross-encoder ce-sts --data "$sts/sts-$split.csv" --no-progress
done
