#!/usr/bin/env bash
# Reproduce the bundled face model and its pixel-VAE twin from ../shared/data/celeba/faces64.
# Ids 000001-008000 train, 008001-009000 are held out for benchmarks/quality.py.
# Both models train the same schedule: 14,000 steps (112 epochs), the learning rate at 3e-4 and falling linearly
# to a tenth over the last 3,000; the VAE-GAN at gamma 0.025 throughout. Both keep a moving average of Enc and Dec
# (--ema-decay 0.999), which is what the bundle ships: the one lever of benchmarks/recipe.py that bought quality
# at no cost per step (docs/recipe.md). Then scripts/build_bundle.py writes checkpoints/faces64.safetensors.
# (The shipped bundle predates the average: it came from this recipe without --ema-decay, in runs/bundled.)
# Usage: bash scripts/train_bundled.sh   (resumes the runs where they stopped)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(realpath ../shared/data/celeba/faces64)
split() {  # split NAME FIRST LAST: a folder of links to faces64 ids FIRST..LAST plus the attribute list
    mkdir -p "data/$1"
    for i in $(seq -f "%06g" "$2" "$3"); do ln -sf "$src/$i.jpg" "data/$1/$i.jpg"; done
    cp "$(dirname "$src")/list_attr_celeba.txt" "data/$1/"
}
split celeba64_train 1 8000
split celeba64_holdout 8001 9000
common=(--width 0.25 --kernel-size 4 --latent-dim 128 --batch-size 64 --gamma 0.025 --kl-weight 0.5 --seed 3
        --crop celeba --ema-decay 0.999)
run_step() {  # run_step RUN: the step its checkpoint holds (0 if none)
    [[ -f $1/checkpoint.safetensors ]] || { echo 0; return; }
    .venv/bin/python -c "import sys; from core.checkpoint import load_checkpoint
print(load_checkpoint(sys.argv[1]).meta['training_state']['step'])" "$1/checkpoint.safetensors"
}
train_or_resume() {  # train_or_resume RUN MODEL MAX_STEPS [OPTIONS...]: skipped once RUN has MAX_STEPS
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
train_or_resume runs/bundled_ema vaegan 14000 --anneal-steps 3000
train_or_resume runs/vae_baseline_ema vae 14000 --anneal-steps 3000
.venv/bin/python scripts/build_bundle.py runs/bundled_ema data/celeba64_train --out checkpoints/faces64.safetensors \
    --command "bash scripts/train_bundled.sh"
