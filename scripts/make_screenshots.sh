#!/usr/bin/env bash
# Regenerate docs/screenshots/<panel>.png with the app's offscreen screenshot mode.
# Usage: scripts/make_screenshots.sh [MODEL] [PICTURE ...]   (default: the bundled model, held-out CelebA faces)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
MODEL="${1:-checkpoints/faces64.safetensors}"
shift || true
PICTURES=("$@")
if [ ${#PICTURES[@]} -eq 0 ]; then
    mapfile -t PICTURES < <(ls data/celeba64_holdout/*.jpg 2>/dev/null | head -n 4)
fi
SETTINGS="$(mktemp -d)/settings.ini"
mkdir -p docs/screenshots
for panel in map attributes interpolate reconstruct train; do
    extra=()
    if [ "$panel" = reconstruct ] && [ ${#PICTURES[@]} -gt 0 ]; then
        extra=(--images "${PICTURES[@]}")
    fi
    VAEGAN_EXPLORER_SETTINGS="$SETTINGS" QT_QPA_PLATFORM=offscreen \
        "$PYTHON" main.py "$MODEL" --panel "$panel" --size 1280x800 "${extra[@]}" \
        --screenshot "docs/screenshots/$panel.png"
    echo "docs/screenshots/$panel.png"
done
for theme in light dark; do  # View ▸ Theme, on the map (its plot follows the palette)
    printf '[view]\ntheme=%s\n' "$theme" > "$SETTINGS"
    VAEGAN_EXPLORER_SETTINGS="$SETTINGS" QT_QPA_PLATFORM=offscreen \
        "$PYTHON" main.py "$MODEL" --panel map --size 1280x800 --screenshot "docs/screenshots/theme_$theme.png"
    echo "docs/screenshots/theme_$theme.png"
done
