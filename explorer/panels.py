"""The explorer's panels by key, with their tab titles and tooltips. Plain data without Qt, so that the
command line can list them (and answer --help) without loading the GUI or needing a display."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    tooltip: str


PANELS = (
    PanelSpec("map", "Latent map", "Thousands of faces placed by their latent vectors: hover, click, explore"),
    PanelSpec("attributes", "Attributes", "Change a face along learned directions: smile, glasses, age…"),
    PanelSpec("interpolate", "Interpolate", "Morph smoothly between faces through the latent space"),
    PanelSpec("reconstruct", "Reconstruct", "Drop your own face pictures and see how the model encodes them"),
    PanelSpec("train", "Train", "Train a VAE-GAN on a folder of face pictures and watch it learn"),
)
