#!/usr/bin/env bash
# Gold-only and gold + silver bi-encoders for several seeds, each evaluated on STS-B dev and test:
# the training half of `sentsim augsbert` on a lent GPU, with silver labelled beforehand (on the
# CPU, by `sentsim augsbert`; the judge's teacher is too large to carry to the GPU machine).
#
#   bash scripts/augsbert_gpu.sh MODELS BASE DATA_DIR SILVER.jsonl OUT SEED [SEED ...]
#
# MODELS: gold, silver or gold,silver (which of the two to train per seed). BASE: the bi-encoder
# to start from; DATA_DIR holds sts-{train,dev,test}.csv. Same recipe as the CPU runs (CoSENT,
# batch 16, lr 2e-5, 4 epochs, 10% warm-up, best epoch on dev). TRAIN_LIMIT=SECONDS stops each
# training there, keeping its checkpoint (every 500 steps); run the same command again to resume.
# One JSON line per finished model lands in OUT/results.jsonl (training seconds from its report).
set -euo pipefail
source "$(dirname "$0")/steps.sh"
models=$1 base=$2 data=$3 silver=$4 out=$5
shift 5
mkdir -p "$out"
sentsim() { python3 -m sentsim "$@"; }
train() {  # NAME SEED TRAIN-FILES...
    local name=$1 seed=$2
    shift 2
    local dir="$out/$name-s$seed" args=()
    for f in "$@"; do args+=(--train "$f"); done
    if finished "$dir"; then return 0; fi
    if [[ -d $dir/checkpoint ]]; then args+=(--resume); fi
    if ! timeout "${TRAIN_LIMIT:-0}" python3 -m sentsim train bi-encoder "${args[@]}" \
        --dev "$data/sts-dev.csv" --base "$base" --loss cosent --epochs 4 --lr 2e-5 \
        --seed "$seed" --checkpoint-every 500 --no-progress --out "$dir" >>"$dir.log" 2>&1; then
        echo "$name-s$seed stopped; its checkpoint is kept: run again to resume"
        return 0
    fi
    local seconds dev test
    seconds=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['seconds'])" "$dir/train_report.json")
    dev=$(sentsim eval sts --data "$data/sts-dev.csv" --model "$dir" --json --no-progress | tail -1)
    test=$(sentsim eval sts --data "$data/sts-test.csv" --model "$dir" --json --no-progress | tail -1)
    printf '{"model": "%s", "seed": %s, "train_seconds": %s, "dev": %s, "test": %s}\n' \
        "$name" "$seed" "$seconds" "$dev" "$test" | tee -a "$out/results.jsonl"
}
for seed in "$@"; do
    if [[ ,$models, == *,gold,* ]]; then train gold "$seed" "$data/sts-train.csv"; fi
    if [[ ,$models, == *,silver,* ]]; then train silver "$seed" "$data/sts-train.csv" "$silver"; fi
done
