#!/usr/bin/env bash
# Low-resource AugSBERT with the judge's cosines as silver (fourteenth session; README "AugSBERT,
# low-resource"). Gold: the fixed 10% of STS-B train (574 pairs, 1,131 distinct sentences).
# 1. the judge: all-mpnet-base-v2 fine-tuned on the gold as a bi-encoder (the seventh session's
#    recipe: CoSENT, 6 epochs, lr 2e-5, seed 0, best on dev; ~13 min), a training-time teacher;
# 2. per seed, the student MiniLM learns the judge's cosines between the gold sentences
#    (`sentsim train distill --objective relations`: every pair inside each batch of 32, each
#    sentence with its nearest neighbour by the judge; 10 epochs, lr 3e-5, best on dev), then
#    CoSENT on the gold pairs (3 epochs, lr 2e-5, best on dev: the gold-only grid);
# 3. per seed, gold only by the same command from MiniLM, so both rows come from this machine;
# 4. dev and test of each (test reported, never used to choose).
#
#   bash scripts/lowres_relations.sh [RUN_DIR [SEED ...]]     # defaults: runs/lowres-rel, 1 2 3
#
# Every step resumes from its checkpoint; a finished step is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/lowres-rel}
shift || true
seeds=("$@")
[[ ${#seeds[@]} -gt 0 ]] || seeds=(1 2 3)
sts=${SENTSIM_DATA:-../shared/data}/stsbenchmark
sentsim() { .venv/bin/sentsim "$@"; }
source scripts/steps.sh
mkdir -p "$run"
[[ -f $run/gold.csv ]] || .venv/bin/python scripts/stsb_sample.py write "$run/gold.csv"
if [[ ! -f $run/sentences.txt ]]; then
    .venv/bin/python - "$run/gold.csv" "$run/sentences.txt" <<'PY'
import sys
from pathlib import Path

from sentsim.data import read_pairs

pairs = read_pairs(sys.argv[1]).pairs()
sentences = list(dict.fromkeys(s for pair in pairs for s in pair))
Path(sys.argv[2]).write_text("\n".join(sentences) + "\n", encoding="utf-8")
print(f"{len(sentences)} distinct sentences of {len(pairs)} gold pairs", file=sys.stderr)
PY
fi
if ! finished "$run/judge"; then
    sentsim train bi-encoder --train "$run/gold.csv" --dev "$sts/sts-dev.csv" \
        --base "$(bash scripts/get_mpnet.sh)" --loss cosent --epochs 6 --lr 2e-5 --seed 0 \
        --checkpoint-every 60 --no-progress --resume --out "$run/judge"
fi
for seed in "${seeds[@]}"; do
    out=$run/s$seed
    if ! finished "$out/distill"; then
        sentsim train distill --teacher "$run/judge" --sentences "$run/sentences.txt" \
            --dev "$sts/sts-dev.csv" --base minilm --objective relations --epochs 10 \
            --batch-size 32 --lr 3e-5 --seed "$seed" --no-progress --resume --out "$out/distill"
    fi
    outdated "$out/gold" "$out/distill"
    for step in "gold:$out/distill" "gold-only:minilm"; do  # model folder : its start
        dir=$out/${step%%:*} base=${step#*:}
        if ! finished "$dir"; then
            sentsim train bi-encoder --train "$run/gold.csv" --dev "$sts/sts-dev.csv" \
                --base "$base" --loss cosent --epochs 3 --lr 2e-5 --seed "$seed" \
                --no-progress --resume --out "$dir"
        fi
    done
    for model in "$out/gold-only" "$out/distill" "$out/gold"; do
        for split in dev test; do
            sentsim eval sts --model "$model" --data "$sts/sts-$split.csv" --no-progress --json |
                tail -1
        done
    done
done
