#!/usr/bin/env bash
# Reproduce the bundled face model and its pixel-VAE twin from ../shared/data/celeba.
# Training pictures: aligned CelebA ids 000001-008000 of faces64 plus the 16,476 wild faces of wild_faces128,
# which --crop auto finds and aligns like CelebA (core.faces); ids 008001-009000 are held out for
# benchmarks/quality.py. The folder carries no attribute file, so training uses no labels; the attribute vectors,
# the fitted Gaussian and the reference map come from the 8,000 labelled CelebA faces (scripts/build_bundle.py).
# Both models train the same schedule: 10,000 steps, the learning rate at 3e-4 and falling linearly to a tenth
# over the last 2,500; the VAE-GAN at gamma 0.025 throughout. Both keep a moving average of Enc and Dec
# (--ema-decay 0.999), which is what ships. The twin trains beside the VAE-GAN on one thread.
# Usage: bash scripts/train_bundled.sh   (resumes the runs where they stopped)
set -euo pipefail
cd "$(dirname "$0")/.."
celeba=$(realpath ../shared/data/celeba)
link_ids() {  # link_ids FOLDER FIRST LAST [PREFIX]: links to faces64 ids FIRST..LAST
    mkdir -p "$1"
    for i in $(seq -f "%06g" "$2" "$3"); do ln -sf "$celeba/faces64/$i.jpg" "$1/${4:-}$i.jpg"; done
}
link_ids data/celeba64_train 1 8000
link_ids data/celeba64_holdout 8001 9000
cp "$celeba/list_attr_celeba.txt" data/celeba64_train/
cp "$celeba/list_attr_celeba.txt" data/celeba64_holdout/
link_ids data/faces_train 1 8000 celeba_
for f in "$celeba"/wild_faces128/*.jpg; do ln -sf "$f" "data/faces_train/wild_$(basename "$f")"; done
common=(--width 0.25 --kernel-size 4 --latent-dim 128 --batch-size 64 --gamma 0.025 --kl-weight 0.5 --seed 3
        --crop auto --ema-decay 0.999 --max-steps 10000 --anneal-steps 2500)
run_step() {  # run_step RUN: the step its checkpoint holds (0 if none)
    [[ -f $1/checkpoint.safetensors ]] || { echo 0; return; }
    .venv/bin/python -c "import sys; from core.checkpoint import load_checkpoint
print(load_checkpoint(sys.argv[1]).meta['training_state']['step'])" "$1/checkpoint.safetensors"
}
train_or_resume() {  # train_or_resume RUN MODEL [OPTIONS...]: skipped once RUN has finished
    local run=$1 model=$2
    shift 2
    if (( $(run_step "$run") >= 10000 )); then
        return
    elif [[ -f $run/checkpoint.safetensors ]]; then
        .venv/bin/vaegan resume "$run" --max-steps 10000 "$@"
    else
        .venv/bin/vaegan train data/faces_train --out "$run" --model "$model" "${common[@]}" "$@"
    fi
}
.venv/bin/python -c "from core.data import load_image_folder; load_image_folder('data/faces_train', 64, 'auto')"  # align once
train_or_resume runs/vae_twin vae --threads 1 &
twin=$!
train_or_resume runs/bundle_vaegan vaegan
wait "$twin"
.venv/bin/python scripts/build_bundle.py runs/bundle_vaegan data/celeba64_train --out checkpoints/faces64.safetensors \
    --command "bash scripts/train_bundled.sh" \
    --data-note ": aligned CelebA ids 000001-008000 of faces64 and the wild_faces128 faces found and aligned; ids 008001-009000 held out"
.venv/bin/python scripts/build_bundle.py runs/vae_twin data/celeba64_train --out checkpoints/faces64_vae.safetensors \
    --reference-count 0 --command "bash scripts/train_bundled.sh" \
    --data-note ": aligned CelebA ids 000001-008000 of faces64 and the wild_faces128 faces found and aligned; ids 008001-009000 held out"
