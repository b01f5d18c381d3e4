#!/usr/bin/env bash
# The recipe on one CUDA GPU (issue 15, item 4): the bundle's recipe with a moving average of Enc and Dec at three
# widths (0.25 as the bundle, 0.5 which still fits the 25 MB bundle, 1 the paper's) and the pixel-VAE twin of
# width 0.5, trained side by side for the same minutes (benchmarks/recipe.py --minutes), scored on the held-out
# faces, and the shippable ones exported as model files (Enc and Dec in half precision, no reference map; run
# scripts/build_bundle.py on the file where it lands to add the map).
#
#   bash scripts/train_gpu.sh --pack      # here: copy the faces into gpu/ (git-ignored) to carry with the job
#   bash scripts/train_gpu.sh OUT         # on the GPU machine, with gpu/ and .cache/ (the judge) carried
#
# Model files come back cut into 15 MiB .partN pieces (the device tool returns files of at most 16 MiB):
# `cat NAME.part* > NAME`. ARMS and MINUTES choose the arms and their time; LIMIT_S (default 600) is the job's time
# limit: training stops RESERVE_S (default 150) before it (a stopped arm saves where it is), scoring in time to pack.
set -uo pipefail   # not -e: what trained must still be exported and packed when a later stage fails
shopt -s nullglob
cd "$(dirname "$0")/.."
minutes=${MINUTES:-6}
device=${DEVICE:-cuda}
python=${PYTHON:-python3}
if [[ ${1:-} == --pack ]]; then
    src=$(realpath ../shared/data/celeba)
    rm -rf gpu && mkdir -p gpu && cp "$src/list_attr_celeba.txt" gpu/
    (cd "$src" && python3 -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1], 'w'); [z.write(f) for f in sys.argv[2:]]" \
        "$OLDPWD/gpu/faces64.zip" faces64/*.jpg)   # one stored file: the device tool counts disk blocks per file
    du -sh gpu
    exit
fi
out=${1:?usage: bash scripts/train_gpu.sh OUT (or --pack)}
mkdir -p "$out"
log=$out/log.txt
exec > >(tee -a "$log") 2>&1
export PYTHONUNBUFFERED=1
stub=$(mktemp -d)   # video export's ffmpeg wheel is not on the GPU image, and nothing here writes video
touch "$stub/imageio_ffmpeg.py"
export PYTHONPATH=$PWD:$stub
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$python -c "import torch, PIL, numpy; print('torch', torch.__version__, 'pillow', PIL.__version__, 'numpy', numpy.__version__)"

[[ -d gpu/faces64 ]] || $python -m zipfile -e gpu/faces64.zip gpu/ || { echo "no faces in gpu/"; exit 1; }
mkdir -p data/gpu_train
ln -sf "$PWD"/gpu/faces64/{000001..008000}.jpg data/gpu_train/
cp gpu/list_attr_celeba.txt data/gpu_train/
seconds_until() {  # seconds_until MARGIN: what is left of LIMIT_S before MARGIN seconds remain (at least 1)
    local left=$(( ${LIMIT_S:-600} - $1 - SECONDS ))
    echo $(( left > 0 ? left : 1 ))
}
arms=${ARMS:-ema_paper_width,ema_w050,ema,vae_w050}
beside=$(( $(tr ',' '\n' <<<"$arms" | wc -l) - 1 ))
recipe=(benchmarks/recipe.py --train data/gpu_train --faces gpu/faces64 --attributes gpu/list_attr_celeba.txt
        --minutes "$minutes" --arms "$arms" --side-by-side --device "$device" --threads 3 --runs runs/gpu
        --out "$out/recipe_gpu.md")
echo "== train $arms for $minutes min each, side by side ($SECONDS s)"
timeout "$(seconds_until "${RESERVE_S:-150}")" $python "${recipe[@]}" --only train

echo "== export model files ($SECONDS s)"
note=": aligned CelebA ids 000001-008000 of faces64; ids 008001-009000 held out"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
exports=()
for arm in $(tr ',' ' ' <<<"$arms"); do
    [[ $arm == ema_paper_width ]] && continue   # 77 MB in half precision: too large to ship or to bring back
    [[ -f runs/gpu/$arm/checkpoint.safetensors ]] || continue
    $python scripts/build_bundle.py "runs/gpu/$arm" data/gpu_train --out "runs/gpu/models/$arm.safetensors" \
        --reference-count 0 --command "bash scripts/train_gpu.sh (arm $arm)" --data-note "$note" \
        --hardware "${gpu:-no} GPU, $minutes min beside $beside other arm(s)" &
    exports+=($!)
done
(( ${#exports[@]} )) && wait "${exports[@]}"   # (a plain wait would also wait for the log's tee)
for file in runs/gpu/models/*.safetensors; do   # what comes back: at most 8 files of 16 MiB
    split -b 15M -d -a 1 "$file" "$out/$(basename "$file").part"
done
ls -l "$out"

echo "== score and report ($SECONDS s)"
timeout "$(seconds_until 25)" $python "${recipe[@]}" --only score
for run in runs/gpu/*/; do
    cp "$run/metrics.jsonl" "$out/reports_$(basename "$run")_metrics.jsonl" 2>/dev/null
    cp "$run/scores.json" "$out/reports_$(basename "$run")_scores.json" 2>/dev/null
done
reports=("$out"/reports_* "$out"/recipe_gpu*)
(( ${#reports[@]} )) && tar -czf "$out/reports.tar.gz" -C "$out" --remove-files "${reports[@]##*/}"
ls -l "$out"
echo "== done ($SECONDS s)"
