"""Differentiable augmentation of what the discriminator sees (Zhao et al., "Differentiable Augmentation for
Data-Efficient GAN Training", NeurIPS 2020): colour, translation and cutout, with the ratios of their code.

A draw (`AugmentDraw`) holds the random parameters of one batch, so the same draw can be applied to real faces
and to their reconstructions: the feature loss then compares Dis_l(T(x)) with Dis_l(T(x~)) under one T.
Images are N x 3 x H x W in [-1, 1]; every operation is differentiable in the image.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(text: str) -> tuple[str, ...]:
    """'color,translation,cutout' -> a tuple in canonical order; '' or 'none' -> ()."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()} - {"none"}
    unknown = names - set(POLICIES)
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(sorted(unknown))}; choose from {', '.join(POLICIES)}")
    return tuple(name for name in POLICIES if name in names)


@dataclass
class AugmentDraw:
    """Per-image random parameters (each with N rows) of one application of a policy."""

    brightness: torch.Tensor
    saturation: torch.Tensor
    contrast: torch.Tensor
    shift: torch.Tensor
    """N x 2 integer translation (rows, columns) in pixels."""
    cutout: torch.Tensor
    """N x 2 integer top-left corner of the square cut out, before clamping at the border."""

    def repeat(self, times: int) -> "AugmentDraw":
        """The same draw for `times` consecutive copies of the batch (e.g. x and its reconstruction)."""
        return AugmentDraw(*(getattr(self, f.name).repeat(times, *[1] * (getattr(self, f.name).dim() - 1))
                             for f in fields(self)))

    def join(self, other: "AugmentDraw") -> "AugmentDraw":
        return AugmentDraw(*(torch.cat([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)))


def draw(n: int, size: int, generator: torch.Generator, device: torch.device) -> AugmentDraw:
    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=device)

    reach = int(size * TRANSLATION_RATIO + 0.5)
    cut = int(size * CUTOUT_RATIO + 0.5)
    return AugmentDraw(
        brightness=uniform(n, 1, 1, 1) - 0.5, saturation=uniform(n, 1, 1, 1) * 2, contrast=uniform(n, 1, 1, 1) + 0.5,
        shift=torch.randint(-reach, reach + 1, (n, 2), generator=generator, device=device),
        cutout=torch.randint(0, size + (1 - cut % 2), (n, 2), generator=generator, device=device) - cut // 2)


def apply(x: torch.Tensor, policy: tuple[str, ...], d: AugmentDraw) -> torch.Tensor:
    """T(x) for the policy's operations, in DiffAugment's order (colour, translation, cutout)."""
    if "color" in policy:
        x = x + d.brightness.to(x.dtype)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * d.saturation.to(x.dtype) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * d.contrast.to(x.dtype) + mean
    if "translation" in policy:
        x = _translate(x, d.shift)
    if "cutout" in policy:
        x = _cut_out(x, d.cutout)
    return x


def _translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift each image by whole pixels, filling with zeros (mid-grey in [-1, 1])."""
    n, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h, 1) - shift[:, 0].view(n, 1, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - shift[:, 1].view(n, 1, 1)
    padded = F.pad(x, [1, 1, 1, 1])   # pixels shifted in from outside read the zero border
    index = (rows.clamp(-1, h) + 1) * (w + 2) + (cols.clamp(-1, w) + 1)
    return padded.flatten(2).gather(2, index.flatten(1).unsqueeze(1).expand(-1, x.shape[1], -1)).view(x.shape)


def _cut_out(x: torch.Tensor, corner: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    cut = int(h * CUTOUT_RATIO + 0.5)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - corner[:, 0].view(n, 1, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w) - corner[:, 1].view(n, 1, 1)
    hole = (rows >= 0) & (rows < cut) & (cols >= 0) & (cols < cut)
    return x * (~hole).unsqueeze(1).to(x.dtype)
