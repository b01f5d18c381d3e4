#!/usr/bin/env bash
# Reproduce the CPU-trained face model and its pixel-VAE twin from ../shared/data/celeba/faces64: the bundle until
# the GPU-trained one (scripts/train_gpu.sh, README "The recipe on a GPU") replaced it; they land in runs/cpu_bundle/.
# Ids 000001-008000 train (mirrored at random, no labels needed in training), 008001-009000 are held out for
# benchmarks/quality.py. Both models train the same schedule: 14,000 steps (112 epochs), the learning rate at
# 3e-4 and falling linearly to a tenth over the last 3,000; the VAE-GAN at gamma 0.025 throughout. The twin
# (the same network judged pixel by pixel) trains beside it on one thread. scripts/build_bundle.py then writes
# runs/cpu_bundle/faces64.safetensors (with attribute vectors, fitted Gaussian and reference map) and
# runs/cpu_bundle/faces64_vae.safetensors (its twin for "Compare with" and `vaegan compare`; no reference map).
# The retrain with a moving average and the aligned wild faces added measured worse and was not shipped (README).
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
steps=14000
common=(--width 0.25 --kernel-size 4 --latent-dim 128 --batch-size 64 --gamma 0.025 --kl-weight 0.5 --seed 3
        --crop celeba --max-steps "$steps" --anneal-steps 3000)
run_step() {  # run_step RUN: the step its checkpoint holds (0 if none)
    [[ -f $1/checkpoint.safetensors ]] || { echo 0; return; }
    .venv/bin/python -c "import sys; from core.checkpoint import load_checkpoint
print(load_checkpoint(sys.argv[1]).meta['training_state']['step'])" "$1/checkpoint.safetensors"
}
train_or_resume() {  # train_or_resume RUN MODEL [OPTIONS...]: skipped once RUN has finished
    local run=$1 model=$2
    shift 2
    if (( $(run_step "$run") >= steps )); then
        return
    elif [[ -f $run/checkpoint.safetensors ]]; then
        .venv/bin/vaegan resume "$run" --max-steps "$steps" "$@"
    else
        .venv/bin/vaegan train data/celeba64_train --out "$run" --model "$model" "${common[@]}" "$@"
    fi
}
train_or_resume runs/vae_twin vae --threads 1 &
twin=$!
train_or_resume runs/bundled vaegan
wait "$twin"
note=": aligned CelebA ids 000001-008000 of faces64; ids 008001-009000 held out"
.venv/bin/python scripts/build_bundle.py runs/bundled data/celeba64_train --out runs/cpu_bundle/faces64.safetensors \
    --command "bash scripts/train_bundled.sh" --data-note "$note"
.venv/bin/python scripts/build_bundle.py runs/vae_twin data/celeba64_train --out runs/cpu_bundle/faces64_vae.safetensors \
    --reference-count 0 --command "bash scripts/train_bundled.sh" --data-note "$note"
