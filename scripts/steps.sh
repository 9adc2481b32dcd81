# Sourced by the training recipes in scripts/. A training step is finished when its --out folder
# holds train_report.json and no checkpoint; a run cut off leaves its checkpoint behind, and the
# recipes always pass --resume, which continues from it (or starts afresh when there is none).

# finished DIR: DIR holds a finished training run.
finished() { [[ -f $1/train_report.json && ! -d $1/checkpoint ]]; }

# outdated OUT INPUT: OUT is finished but was trained before INPUT (the model it starts from)
# finished; OUT is then deleted, with a message, so that the recipe trains it again.
outdated() {
    if finished "$1" && [[ $2/train_report.json -nt $1/train_report.json ]]; then
        echo "$2 changed after $1 was trained from it: training $1 again" >&2
        rm -rf "$1"
    fi
}
