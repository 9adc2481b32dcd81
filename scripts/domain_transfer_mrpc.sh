#!/usr/bin/env bash
# AugSBERT domain transfer to MRPC: the target's own pairs labelled by ce-sts (--sampling given)
# against BM25 pairs of the same sentences; rule in results/augsbert-domain-mrpc-rule.md.
#   bash scripts/domain_transfer_mrpc.sh [RUN_DIR]     (default runs/dt-mrpc; each step resumes)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/dt-mrpc}
DATA=${SENTSIM_DATA:-../shared/data}
SENTSIM=${SENTSIM:-.venv/bin/sentsim}
PY=${PY:-.venv/bin/python}
mkdir -p "$RUN"
# MRPC val / test with the 0/1 labels as a score column: augsbert selects epochs by Spearman
for split in val test; do
    [[ -f $RUN/mrpc-$split.csv ]] || "$PY" - "$DATA/mrpc/msr-para-$split.tsv" "$RUN/mrpc-$split.csv" <<'PYEOF'
import csv, sys
from sentsim.data import read_pairs
data = read_pairs(sys.argv[1])
with open(sys.argv[2], "w", newline="", encoding="utf-8") as out:
    writer = csv.writer(out)
    writer.writerow(["sentence1", "sentence2", "score"])
    for (a, b), score in zip(data.pairs(), data.graded_scores(), strict=True):
        writer.writerow([a, b, score])
PYEOF
done
for S in 1 2 3; do
    "$SENTSIM" augsbert --unlabelled "$DATA/mrpc/msr-para-train.tsv" --cross-encoder ce-sts \
        --sampling given,bm25 --cap 3576 --top-k 1 --dev "$RUN/mrpc-val.csv" \
        --test "$RUN/mrpc-test.csv" --base minilm --loss cosent --epochs 2 --lr 2e-5 --seed "$S" \
        --out "$RUN/s$S"
done
for M in minilm bi-sts "$RUN"/s{1,2,3}/model-{given,bm25}; do
    name=$(echo "$M" | tr / _)
    [[ -f $RUN/pairs-$name.json ]] || "$SENTSIM" eval pairs --data "$DATA/mrpc/msr-para-test.tsv" \
        --dev "$DATA/mrpc/msr-para-val.tsv" --model "$M" --json | tail -1 > "$RUN/pairs-$name.json"
    [[ -f $RUN/sts-$name.json ]] || "$SENTSIM" eval sts \
        --data "$DATA/stsbenchmark/sts-test.csv" --model "$M" --json | tail -1 > "$RUN/sts-$name.json"
done
# how many BM25 pairs are MRPC's own pairs (either order, whitespace aside), per seed
"$PY" - "$RUN" <<'PYEOF'
import json, sys
from sentsim.training.sampling import pair_key
def keys(f): return [pair_key(r["sentence1"], r["sentence2"]) for r in map(json.loads, open(f))]
for s in (1, 2, 3):
    given = set(keys(f"{sys.argv[1]}/s{s}/silver-given-pairs.jsonl"))
    bm25 = keys(f"{sys.argv[1]}/s{s}/silver-bm25-pairs.jsonl")
    print(f"seed {s}: {sum(k in given for k in bm25)} of {len(bm25)} BM25 pairs are MRPC pairs")
PYEOF
echo "done: $RUN"
