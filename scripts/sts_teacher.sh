#!/usr/bin/env bash
# The training-time STS teacher: all-mpnet-base-v2 fine-tuned on STS-B train (CoSENT, 1 epoch,
# lr 2e-5, seed 42; dev 89.92 / test 86.97, 15-24 min on a 2-core CPU). Never shipped (220 MB).
#
#   bash scripts/sts_teacher.sh RUN_DIR       # trains RUN_DIR/teacher, resumes a cut run; prints it
#
# Needs $SENTSIM_DATA (default ../shared/data) with stsbenchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1
sts=${SENTSIM_DATA:-../shared/data}/stsbenchmark
base=$(bash scripts/get_mpnet.sh)
source scripts/steps.sh
if ! finished "$run/teacher"; then
    .venv/bin/sentsim train bi-encoder --train "$sts/sts-train.csv" --dev "$sts/sts-dev.csv" \
        --base "$base" --loss cosent --epochs 1 --lr 2e-5 --seed 42 \
        --checkpoint-every 60 --no-progress --resume --out "$run/teacher" >&2
fi
echo "$run/teacher"
