"""Exponential moving average of Enc and Dec weights (Yazıcı et al., "The Unusual Effectiveness of Averaging in
GAN Training", ICLR 2019; used by ProGAN, StyleGAN and BigGAN). The average, not the raw weights, serves
inference: previews, the fitted latent Gaussian and every model file a run writes."""
from __future__ import annotations

import copy

import torch
from torch import nn

from core.model import VAEGAN
from core.schema import DECODER, ENCODER


class WeightAverage:
    """Averaged copies of a model's encoder and decoder. Batch-norm statistics are averaged like the weights."""

    def __init__(self, model: VAEGAN, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be between 0 and 1 (exclusive), got {decay}")
        self.decay = decay
        self.encoder = copy.deepcopy(model.encoder).eval().requires_grad_(False)
        self.decoder = copy.deepcopy(model.decoder).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        """The decay after `step` updates, ramped up from 0 (as in StyleGAN2-ADA's ema_rampup) so the early
        random weights wash out of short runs."""
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: VAEGAN, step: int) -> None:
        beta = self.decay_at(step)
        for averaged, current in ((self.encoder, model.encoder), (self.decoder, model.decoder)):
            for mine, theirs in zip(averaged.state_dict().values(), current.state_dict().values()):
                if mine.is_floating_point():
                    mine.lerp_(theirs.to(mine.dtype), 1 - beta)
                else:
                    mine.copy_(theirs)

    def modules(self) -> dict[str, nn.Module]:
        return {ENCODER: self.encoder, DECODER: self.decoder}
