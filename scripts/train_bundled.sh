#!/usr/bin/env bash
# Reproduce the bundled face model and its pixel-VAE twin from ../shared/data/celeba/faces64.
# Ids 000001-008000 train, 008001-009000 are held out for benchmarks/quality.py.
# Usage: bash scripts/train_bundled.sh [MAX_STEPS [ANNEAL_STEPS]]   (resumes the runs if they exist)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-8500}
anneal=${2:-2000}
src=$(realpath ../shared/data/celeba/faces64)
split() {  # split NAME FIRST LAST: a folder of links to faces64 ids FIRST..LAST plus the attribute list
    mkdir -p "data/$1"
    for i in $(seq -f "%06g" "$2" "$3"); do ln -sf "$src/$i.jpg" "data/$1/$i.jpg"; done
    cp "$src/list_attr_celeba.txt" "data/$1/"
}
split celeba64_train 1 8000
split celeba64_holdout 8001 9000
common=(--width 0.25 --kernel-size 4 --latent-dim 128 --batch-size 64 --max-steps "$steps" --anneal-steps "$anneal"
        --gamma 0.01 --kl-weight 0.5 --seed 1 --crop celeba)
for model in vaegan vae; do
    run=runs/$([[ $model == vaegan ]] && echo bundled || echo vae_baseline)
    if [[ -f $run/checkpoint.safetensors ]]; then
        .venv/bin/vaegan resume "$run" --max-steps "$steps" --anneal-steps "$anneal"
    else
        .venv/bin/vaegan train data/celeba64_train --out "$run" --model "$model" "${common[@]}"
    fi
done
.venv/bin/python scripts/build_bundle.py runs/bundled data/celeba64_train --out checkpoints/faces64.safetensors \
    --command "bash scripts/train_bundled.sh $steps $anneal"
