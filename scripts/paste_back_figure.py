"""Before and after for the whole-photo paste-back of a strong combined edit on a large face (docs/paste_back.png).

Columns, each the face's region of the photo at full size: the photo; the encoder's edit pasted as the change
decode(edited) - decode(unedited), as before fitting; the fitted face's edit pasted the same way; the fitted face's
edit blended (core.photo.blended_changes: ripples left out, the model's own fine texture halved), as the app and
`vaegan edit` paste it now. Prints, for each, how much of the photo's own fine detail survives (the correlation of
its fine detail before and after).

    python scripts/paste_back_figure.py [PHOTO] [--edit Smiling=2 --edit Eyeglasses=1.5 ...] [--out docs/paste_back.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.api import Model, load_model  # noqa: E402
from core.data import PreparedImage, prepare_faces  # noqa: E402
from core.faces import crop_footprint, paste_change  # noqa: E402
from core.fit import FAST, FitSettings, fit_faces  # noqa: E402
from core.latent import apply_edits  # noqa: E402
from core.photo import face_crops, paste_edits  # noqa: E402

DEFAULT_EDITS = ("Smiling=2", "Eyeglasses=2", "Blond_Hair=1.5")
LABEL_HEIGHT = 18


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", nargs="?", type=Path, help="default: scikit-image's astronaut (a 200 px face)")
    parser.add_argument("--model", type=Path, default=ROOT / "checkpoints" / "faces64.safetensors")
    parser.add_argument("--edit", action="append", help=f"NAME=STRENGTH (default {' '.join(DEFAULT_EDITS)})")
    parser.add_argument("--scale", type=float, default=2.0,
                        help="enlarge the photo first (default 2: the astronaut's face becomes about 280 px across)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "paste_back.png")
    return parser.parse_args()


def photo_of(path: Path | None) -> Image.Image:
    if path is not None:
        return Image.open(path).convert("RGB")
    from skimage import data

    return Image.fromarray(data.astronaut())


def decoded_edit(model: Model, face: PreparedImage, edits: dict[str, float],
                 settings: FitSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """(decode of the face, decode of its edit), fitted with `settings` (FAST: the encoder alone)."""
    fit = fit_faces(model, face_crops([face]), settings)
    both = torch.cat([fit.latents, apply_edits(fit.latents, edits, model.attributes)])
    decoded = model.decode(both, tuning=fit.tuning)
    return decoded[:1], decoded[1:]


def pasted_whole(photo: Image.Image, face: PreparedImage, original: torch.Tensor, edited: torch.Tensor) -> Image.Image:
    """The change pasted with nothing left out, as the app did before."""
    change = ((edited - original)[0] * 255).permute(1, 2, 0).numpy()
    return Image.fromarray(paste_change(np.asarray(photo), face.to_crop, change))


def fine_detail(region: np.ndarray) -> np.ndarray:
    """The photo-resolution detail of a region: its grey image minus a 2-pixel Gaussian blur of it."""
    from scipy.ndimage import gaussian_filter

    grey = region.astype(float).mean(axis=2)
    return grey - gaussian_filter(grey, 2.0)


def detail_kept(photo: np.ndarray, result: np.ndarray) -> float:
    """Correlation of the result's fine detail with the photo's: 1 when the edit left the photo's own texture as
    it was, lower when the pasted change smears texture of its own over it."""
    return float(np.corrcoef(fine_detail(photo).ravel(), fine_detail(result).ravel())[0, 1])


def labelled(images: list[Image.Image], labels: list[str]) -> Image.Image:
    width, height = images[0].size
    canvas = Image.new("RGB", (width * len(images), height + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(canvas)
    for column, (image, label) in enumerate(zip(images, labels)):
        canvas.paste(image, (column * width, LABEL_HEIGHT))
        draw.text((column * width + 4, 3), label, fill="black")
    return canvas


def main() -> None:
    args = parse_arguments()
    model = load_model(args.model, device="cpu")
    photo = photo_of(args.photo)
    photo = photo.resize((round(photo.width * args.scale), round(photo.height * args.scale)), Image.Resampling.LANCZOS)
    face = prepare_faces(photo, model.image_size, model.picture_crop)[0]
    edits = dict((name, float(value)) for name, value in (text.split("=") for text in args.edit or DEFAULT_EDITS))
    encoder = pasted_whole(photo, face, *decoded_edit(model, face, edits, FAST))
    fitted_pair = decoded_edit(model, face, edits, FitSettings())
    fitted = pasted_whole(photo, face, *fitted_pair)
    blended = paste_edits(photo, [face.to_crop], *fitted_pair)
    left, top, right, bottom = crop_footprint(face.to_crop, model.image_size, (photo.height, photo.width))
    box = (left, top, right, bottom)
    columns = [photo.crop(box), encoder.crop(box), fitted.crop(box), blended.crop(box)]
    labels = ["photo", "encoder, change pasted whole", "fitted, change pasted whole", "fitted, blended (as pasted now)"]
    arrays = [np.asarray(image) for image in columns]
    print(f"face region {right - left}x{bottom - top} px; edit {edits}")
    for label, array in zip(labels[1:], arrays[1:]):
        print(f"{label}: the photo's fine detail kept (correlation) {detail_kept(arrays[0], array):.3f}; "
              f"pixels changed {(np.abs(array.astype(int) - arrays[0].astype(int)).max(axis=2) > 0).mean():.0%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    labelled(columns, labels).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
