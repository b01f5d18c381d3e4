#!/usr/bin/env bash
# Reproduce the bundled face model and its pixel-VAE twin from ../shared/data/celeba/faces64.
# Ids 000001-008000 train, 008001-009000 are held out for benchmarks/quality.py.
# The VAE-GAN trains in two phases: gamma 0.01 for the first 3,448 steps, then gamma 0.05 (more weight
# on the feature-wise reconstruction: faithful reconstructions, fewer faces encoded off the prior).
# Training goes in stages, each MAX_STEPS:ANNEAL_STEPS[:GAMMA]: both models continue to MAX_STEPS with the
# learning rate at 3e-4, falling linearly to a tenth over the stage's last ANNEAL_STEPS steps; the VAE-GAN
# uses GAMMA (default 0.05). The shipped model is the default: 6500:2000 10000:2000 10800:800:0.01.
# Usage: bash scripts/train_bundled.sh [STAGE ...]   (resumes the runs if they exist)
set -euo pipefail
cd "$(dirname "$0")/.."
stages=("$@")
(( $# )) || stages=(6500:2000 10000:2000 10800:800:0.01)
first_phase=3448
for stage in "${stages[@]}"; do
    [[ $stage =~ ^[0-9]+:[0-9]+(:[0-9.]+)?$ ]] || { echo "a stage is MAX_STEPS:ANNEAL_STEPS[:GAMMA], got '$stage'" >&2; exit 2; }
    (( ${stage%%:*} > first_phase )) || { echo "MAX_STEPS must exceed the first phase's $first_phase steps" >&2; exit 2; }
done
src=$(realpath ../shared/data/celeba/faces64)
split() {  # split NAME FIRST LAST: a folder of links to faces64 ids FIRST..LAST plus the attribute list
    mkdir -p "data/$1"
    for i in $(seq -f "%06g" "$2" "$3"); do ln -sf "$src/$i.jpg" "data/$1/$i.jpg"; done
    cp "$(dirname "$src")/list_attr_celeba.txt" "data/$1/"
}
split celeba64_train 1 8000
split celeba64_holdout 8001 9000
common=(--width 0.25 --kernel-size 4 --latent-dim 128 --batch-size 64 --gamma 0.01 --kl-weight 0.5 --seed 1
        --crop celeba)
run_step() {  # run_step RUN: the step its checkpoint holds (0 if none)
    [[ -f $1/checkpoint.safetensors ]] || { echo 0; return; }
    .venv/bin/python -c "import sys; from core.checkpoint import load_checkpoint
print(load_checkpoint(sys.argv[1]).meta['training_state']['step'])" "$1/checkpoint.safetensors"
}
train_or_resume() {  # train_or_resume RUN MODEL MAX_STEPS [RESUME OPTIONS...]: skipped once RUN has MAX_STEPS
    local run=$1 model=$2 max=$3
    shift 3
    if (( $(run_step "$run") >= max )); then
        return
    elif [[ -f $run/checkpoint.safetensors ]]; then
        .venv/bin/vaegan resume "$run" --max-steps "$max" "$@"
    else
        .venv/bin/vaegan train data/celeba64_train --out "$run" --model "$model" --max-steps "$max" "${common[@]}" "$@"
    fi
}
train_or_resume runs/bundled vaegan "$first_phase"
for stage in "${stages[@]}"; do
    IFS=: read -r max anneal gamma <<< "$stage"
    train_or_resume runs/bundled vaegan "$max" --gamma "${gamma:-0.05}" --anneal-steps "$anneal"
    train_or_resume runs/vae_baseline vae "$max" --anneal-steps "$anneal"
done
.venv/bin/python scripts/build_bundle.py runs/bundled data/celeba64_train --out checkpoints/faces64.safetensors \
    --command "bash scripts/train_bundled.sh ${stages[*]}"
