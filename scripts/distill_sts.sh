#!/usr/bin/env bash
# Distil an ensemble into MiniLM for STS (twelfth session; README "Distilling an ensemble"):
# 1. the mpnet teacher (scripts/sts_teacher.sh, 15-24 min);
# 2. 40,921 unlabelled sentences (scripts/sts_unlabelled.py; no STS-B dev/test sentence);
# 3. `sentsim train distill`: the student `bi-sts-augsbert` learns the vectors of the ensemble
#    0.7 · teacher + 0.3 · bi-sts-augsbert (weights chosen on STS-B dev), projected from 1152-d
#    onto 384 principal directions and rotated onto the student (≈ 15 min encoding + 47 min);
# 4. a short CoSENT fine-tune on STS-B train (2 epochs, lr 1e-5, 8 min); best epochs on dev;
# 5. dev and test of both students (test reported, never used to choose).
#
#   bash scripts/distill_sts.sh [SEED] [RUN_DIR]     # defaults: 1, runs/distill-sts/sSEED
#
# Variants (thirteenth session): DISTILL_EPOCHS=1 (default 3) shortens the distillation schedule;
# POOL=wikiqa adds the WikiQA train answer sentences to the unlabelled sentences (49,237 in all):
#   POOL=wikiqa DISTILL_EPOCHS=1 bash scripts/distill_sts.sh 1 runs/distill-sts-wikiqa/s1
# OBJECTIVE=relations (fourteenth session) imitates the ensemble's cosines within nearest-neighbour
# batches instead of its vectors:
#   OBJECTIVE=relations DISTILL_EPOCHS=1 bash scripts/distill_sts.sh 1 runs/distill-sts-relations/s1
# BASE=minilm starts the student from plain MiniLM instead of bi-sts-augsbert (the cached targets
# of another run are rotated onto it, not encoded again, when copied into RUN_DIR/distill):
#   BASE=minilm DISTILL_EPOCHS=2 bash scripts/distill_sts.sh 1 runs/distill-sts-minilm/s1
# Seeds of one variant share RUN_DIR's parent (its teacher, sentences and nothing else); use a new
# parent for each pool.
#
# Every training step resumes from its checkpoint when the script is run again after a cut-off,
# and the fine-tune is redone when the distillation it started from finished after it.
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-1}
run=${2:-runs/distill-sts/s$seed}
sts=${SENTSIM_DATA:-../shared/data}/stsbenchmark
sentsim() { .venv/bin/sentsim "$@"; }
mkdir -p "$run"
source scripts/steps.sh

teacher=$(bash scripts/sts_teacher.sh "$(dirname "$run")")
sentences=$(dirname "$run")/sentences.txt
pool=()
[[ ${POOL:-} == wikiqa ]] && pool=(--wikiqa)
[[ -f $sentences ]] || .venv/bin/python scripts/sts_unlabelled.py "$sentences" "${pool[@]}"

if ! finished "$run/distill"; then
    sentsim train distill --teacher "$teacher" --teacher-weight 0.7 \
        --teacher bi-sts-augsbert --teacher-weight 0.3 --sentences "$sentences" \
        --dev "$sts/sts-dev.csv" --base "${BASE:-bi-sts-augsbert}" --epochs "${DISTILL_EPOCHS:-3}" \
        --batch-size 32 --lr 3e-5 --seed "$seed" --checkpoint-every 200 --no-progress --resume \
        --objective "${OBJECTIVE:-vectors}" \
        --out "$run/distill"
fi
outdated "$run/gold" "$run/distill"
if ! finished "$run/gold"; then
    sentsim train bi-encoder --train "$sts/sts-train.csv" --dev "$sts/sts-dev.csv" \
        --base "$run/distill" --loss cosent --epochs 2 --lr 1e-5 --seed "$seed" \
        --no-progress --resume --out "$run/gold"
fi
for model in "$run/distill" "$run/gold"; do
    for split in dev test; do
        sentsim eval sts --model "$model" --data "$sts/sts-$split.csv" --no-progress --json | tail -1
    done
done
