"""Two models side by side on the same faces: each one's reconstructions and how close and how sharp they are.
Qt-free; `vaegan compare` and the explorer's View ▸ Compare with both use it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from core.api import Model
from core.export import make_grid
from core.metrics import mean_squared_error, psnr, sharpness_ratio

TWIN_MARK = "_vae"
"""The pixel-VAE twin of a model file sits beside it with this before the suffix (faces64_vae.safetensors)."""
MODEL_TYPE_NAMES = {"vaegan": "VAE-GAN", "vae": "VAE (pixel loss)"}


@dataclass(frozen=True)
class FaceFigures:
    """One reconstruction against its original: pixel error and the sharpness ratio (1 = as sharp)."""

    mse: float
    sharpness: float

    @property
    def psnr(self) -> float:
        return psnr(self.mse)

    def text(self) -> str:
        return f"MSE {self.mse:.4f} · {self.psnr:.1f} dB · sharpness {self.sharpness:.2f}"

    def short_text(self) -> str:
        """For a caption under a 160-pixel face."""
        return f"MSE {self.mse:.4f} · sharp {self.sharpness:.2f}"


@dataclass
class Reconstructions:
    """One model's reconstructions of the compared faces (N x 3 x S x S in [0, 1]) with each face's figures."""

    label: str
    images: torch.Tensor
    figures: list[FaceFigures]

    def mean(self) -> FaceFigures:
        count = max(1, len(self.figures))
        return FaceFigures(sum(f.mse for f in self.figures) / count, sum(f.sharpness for f in self.figures) / count)


def twin_file(model_path: Path) -> Path:
    """Where the pixel-VAE twin of a model file would be (faces64.safetensors -> faces64_vae.safetensors)."""
    return model_path.with_name(f"{model_path.stem}{TWIN_MARK}{model_path.suffix}")


def twin_path(model_path: Path) -> Path | None:
    """The pixel-VAE twin beside a model file, None when there is none."""
    twin = twin_file(model_path)
    return twin if twin.is_file() else None


def model_name(model: Model) -> str:
    """What the model is, by its kind: "VAE-GAN" or "VAE (pixel loss)"."""
    return MODEL_TYPE_NAMES.get(model.config.model_type, model.config.model_type)


def comparison_labels(a: Model, b: Model) -> tuple[str, str]:
    """Names for two models side by side: their kinds, with their file names when the kinds are the same."""
    names = model_name(a), model_name(b)
    if names[0] != names[1]:
        return names
    stems = [Path(m.path).stem if m.path else "unsaved" for m in (a, b)]
    return names[0] + f" ({stems[0]})", names[1] + f" ({stems[1]})"


def check_comparable(a: Model, b: Model) -> None:
    """Raise ValueError when two models cannot take the same faces."""
    if a.image_size != b.image_size:
        raise ValueError(f"the models take faces of different sizes ({a.image_size} and {b.image_size} pixels)")


def face_figures(originals: torch.Tensor, reconstructions: torch.Tensor) -> list[FaceFigures]:
    """Per face (N x 3 x S x S in [0, 1] each): its pixel error and sharpness ratio."""
    return [FaceFigures(mean_squared_error(recon, original), sharpness_ratio(recon, original))
            for original, recon in zip(originals.split(1), reconstructions.split(1))]


def reconstruct_with(model: Model, label: str, faces: torch.Tensor) -> Reconstructions:
    images = model.reconstruct(faces)
    return Reconstructions(label, images, face_figures(faces, images))


def compare_models(a: Model, b: Model, faces: torch.Tensor) -> tuple[Reconstructions, Reconstructions]:
    """Both models' reconstructions of the same aligned faces (N x 3 x S x S in [0, 1]) and their figures."""
    check_comparable(a, b)
    labels = comparison_labels(a, b)
    return reconstruct_with(a, labels[0], faces), reconstruct_with(b, labels[1], faces)


def comparison_grid(faces: torch.Tensor, a: Reconstructions, b: Reconstructions) -> Image.Image:
    """A row per face: the original, A's reconstruction, B's reconstruction."""
    return make_grid(torch.stack([faces, a.images, b.images], dim=1).flatten(0, 1), 3)
