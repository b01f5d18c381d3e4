"""Fitting the faces at hand: latent optimisation, then pivotal tuning of the decoder.

The encoder gives a look-alike: its posterior mean decodes to a soft face of a similar person. Fitting moves
the work to the face at hand (Zhu et al. 2020, "In-Domain GAN Inversion"; Roich et al. 2021, "Pivotal Tuning
for Latent-based Editing of Real Images"):

1. the latent starts at the encoder's mean and is optimised against the crop (pixels, a feature loss and a loss
   on the Laplacian, the detail blur loses first), pulled gently towards where the training faces lie;
2. the decoder is tuned briefly around that latent, the pivot, until it draws the crop itself, while a locality
   regulariser keeps what it draws for latents away from the pivot as it was, and an edit regulariser keeps
   what attribute vectors (one, or two combined) change at the pivot as it was (so edits still move the fitted
   face as far, and what the fit drew, glasses say, stays through a strong edit).

The feature loss uses the model's own encoder: its first three convolution stages (before their ReLU cuts the
negative half) describe edges and textures at 1/2, 1/4 and 1/8 of the crop's size. Inference files ship no
discriminator (its Dis_l feature is what the paper trains with), so the encoder is the model's only feature
extractor that every file has. Several faces are fitted together (one batch, one tuned decoder for all their
pivots, so a photo's faces or a path's endpoints share it). Plain torch; never imports Qt.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from core.api import Model
from core.metrics import LAPLACIAN_3X3
from core.model import VAEGAN, DecoderTuning


class FitCancelled(Exception):
    """Raised by fit_faces when its cancel check says stop."""


@dataclass(frozen=True)
class FitSettings:
    """Steps, learning rates and loss weights of a fit (chosen by benchmarks/likeness.py; see docs/likeness.md)."""

    latent_steps: int = 50
    latent_lr: float = 0.03
    decoder_steps: int = 60
    decoder_lr: float = 3e-4
    feature_weight: float = 0.5
    """Weight of the encoder-feature loss beside the pixel loss (both mean squared errors)."""
    detail_weight: float = 2.0
    """Weight of a loss on the 3x3 Laplacian of each colour channel: the fine detail blur loses first."""
    prior_weight: float = 5e-4
    """Pull of the latent towards the training faces' region (squared whitened distance per dimension)."""
    locality_weight: float = 1.0
    """Weight of the locality regulariser: the decoder's output away from the pivot stays as it was."""
    locality_samples: int = 2
    """Latents drawn away from the pivots per decoder step for the locality regulariser."""
    edit_weight: float = 5.0
    """Weight of the edit regulariser: the change an attribute vector makes at the pivot stays as it was."""
    edit_samples: int = 4
    """Attribute vectors (with random strengths) checked per decoder step for the edit regulariser."""
    edit_strength: float = 3.0
    """Edits are drawn with strengths up to this (the app's sliders reach 3)."""
    patience: int = 10
    """A stage stops early when its loss has not fallen by `min_progress` over this many steps."""
    min_progress: float = 0.01

    @property
    def total_steps(self) -> int:
        return self.latent_steps + self.decoder_steps


FAST = FitSettings(latent_steps=0, decoder_steps=0)
"""No fit: the encoder's mean and the model's own decoder (the CLI's --fast)."""


@dataclass
class FaceFit:
    """What fitting a batch of faces gave: their latents (N x D, on the CPU) and the decoder tuned on them."""

    latents: Tensor
    tuning: DecoderTuning
    encoder_latents: Tensor
    """The encoder's posterior means the fit started from."""


Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


def encoder_features(net: VAEGAN, x: Tensor) -> list[Tensor]:
    """The encoder's convolution outputs before each ReLU, for x in [-1, 1]: the fit's feature loss."""
    features, h = [], x
    for layer in net.encoder.features:
        if isinstance(layer, nn.ReLU):
            features.append(h)
            h = F.relu(h)
        else:
            h = layer(h)
    return features


def feature_loss(net: VAEGAN, x: Tensor, target_features: list[Tensor]) -> Tensor:
    """Mean squared difference of the encoder's features, each stage normalised by the target's energy."""
    losses = [per_face_mse(a, b) / (b.pow(2).flatten(1).mean(1) + 1e-6)
              for a, b in zip(encoder_features(net, x), target_features)]
    return torch.stack(losses).mean(0)


def per_face_mse(a: Tensor, b: Tensor) -> Tensor:
    return F.mse_loss(a, b, reduction="none").flatten(1).mean(1)


def image_loss(net: VAEGAN, x: Tensor, target: Tensor, target_features: list[Tensor], settings: FitSettings) -> Tensor:
    """Per face: pixel MSE, plus the weighted feature and detail losses, against the crop (all in [-1, 1])."""
    loss = per_face_mse(x, target) + settings.feature_weight * feature_loss(net, x, target_features)
    if settings.detail_weight:
        loss = loss + settings.detail_weight * per_face_mse(laplacian(x), laplacian(target))
    return loss


def laplacian(x: Tensor) -> Tensor:
    """The 3x3 Laplacian of each channel (valid pixels only)."""
    kernel = torch.tensor(LAPLACIAN_3X3, dtype=x.dtype, device=x.device).view(1, 1, 3, 3)
    return F.conv2d(x, kernel.expand(x.shape[1], 1, 3, 3), groups=x.shape[1])


class EarlyStop:
    """Says stop once the loss has not fallen by a relative `min_progress` over `patience` steps."""

    def __init__(self, patience: int, min_progress: float) -> None:
        self.patience, self.min_progress = patience, min_progress
        self.best, self.since_best = float("inf"), 0

    def __call__(self, loss: float) -> bool:
        if loss < self.best * (1 - self.min_progress):
            self.best, self.since_best = loss, 0
        else:
            self.since_best += 1
        return self.since_best >= self.patience


def whitening(gaussian_mean: Tensor | None, scale_tril: Tensor | None) -> Callable[[Tensor], Tensor]:
    """z -> its whitened offset from the training faces' Gaussian (identity around 0 when there is none)."""
    if gaussian_mean is None or scale_tril is None:
        return lambda z: z
    inverse = torch.linalg.inv(scale_tril.double()).float()
    return lambda z: (z - gaussian_mean.to(z.device)) @ inverse.to(z.device).T


def descend(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    """One optimisation step on `loss`."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


Stage = Generator[None, None, Any]
"""One stage of a fit: yields after each optimisation step, returns what it made."""


def optimise_latents(net: VAEGAN, start: Tensor, target: Tensor, target_features: list[Tensor],
                     settings: FitSettings, whiten: Callable[[Tensor], Tensor]) -> Stage:
    """Stage 1: the latents that the unchanged decoder draws closest to the crops."""
    z = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=settings.latent_lr)
    stop = EarlyStop(settings.patience, settings.min_progress)
    for _ in range(settings.latent_steps):
        loss = image_loss(net, net.decoder(z), target, target_features, settings).sum()
        loss = loss + settings.prior_weight * whiten(z).pow(2).sum()
        descend(optimizer, loss)
        yield
        if stop(loss.item()):
            break
    return z.detach()


def away_from_pivots(pivots: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """Latents between the pivots and random directions of the same length (PTI's locality samples)."""
    index = torch.randint(len(pivots), (count,), generator=generator)
    random = torch.randn(count, pivots.shape[1], generator=generator).to(pivots.device)
    random = random * pivots[index].norm(dim=1, keepdim=True) / random.norm(dim=1, keepdim=True)
    share = torch.rand(count, 1, generator=generator).to(pivots.device) * 0.6 + 0.2
    return pivots[index] + share * (random - pivots[index])


def edited_pivots(pivots: Tensor, vectors: Tensor, count: int, strength: float,
                  generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(pivot index, edited pivot) pairs: random pivots moved along one random attribute vector, or (half the
    time) two combined, each with a random strength up to `strength` either way."""
    index = torch.randint(len(pivots), (count,), generator=generator)
    which = torch.randint(len(vectors), (count, 2), generator=generator)
    strengths = (torch.rand(count, 2, generator=generator) * 2 - 1) * strength
    strengths[:, 1] *= torch.rand(count, generator=generator) < 0.5
    return index, pivots[index] + (strengths.to(pivots.device)[..., None] * vectors[which]).sum(1)


def tune_decoder(net: VAEGAN, pivots: Tensor, target: Tensor, target_features: list[Tensor], settings: FitSettings,
                 vectors: Tensor | None) -> Stage:
    """Stage 2: decoder parameters that draw the crops at the pivots, locally (see the module docstring)."""
    decoder = net.decoder
    params = {name: p.detach().clone().requires_grad_(True) for name, p in decoder.named_parameters()}
    optimizer = torch.optim.Adam(params.values(), lr=settings.decoder_lr)
    generator = torch.Generator().manual_seed(0)
    stop = EarlyStop(settings.patience, settings.min_progress)
    n, edits = len(pivots), vectors is not None and settings.edit_samples > 0
    with torch.no_grad():
        pivot_images = decoder(pivots)
    for _ in range(settings.decoder_steps):
        away = away_from_pivots(pivots, settings.locality_samples, generator)
        index, edited = (edited_pivots(pivots, vectors, settings.edit_samples, settings.edit_strength, generator)
                         if edits else (None, pivots[:0]))
        z = torch.cat([pivots, away, edited])
        with torch.no_grad():
            before = decoder(z[n:])
        after = functional_call(decoder, params, (z,), strict=False)
        fit_loss = image_loss(net, after[:n], target, target_features, settings).sum()
        loss = fit_loss + settings.locality_weight * F.mse_loss(after[n:n + len(away)], before[:len(away)])
        if edits:
            change_now = after[n + len(away):] - after[:n][index]
            change_before = before[len(away):] - pivot_images[index]
            loss = loss + settings.edit_weight * F.mse_loss(change_now, change_before)
        descend(optimizer, loss)
        yield
        if stop(fit_loss.item()):
            break
    return DecoderTuning({name: p.detach().cpu() for name, p in params.items()})


def counted(stage: Stage, done: int, total: int) -> Generator[tuple[int, int], None, Any]:
    """A stage's steps as (steps done, steps planned), counting on from `done`; returns what the stage made."""
    while True:
        try:
            next(stage)
        except StopIteration as end:
            return end.value
        done += 1
        yield done, total


def frozen_copy(net: VAEGAN) -> VAEGAN:
    """The encoder and decoder in eval mode with gradients off, copied so that the model in use (a GUI thread
    decoding beside a fitting worker) is never touched."""
    copy = VAEGAN(net.cfg, with_discriminator=False)
    copy.encoder.load_state_dict(net.encoder.state_dict())
    copy.decoder.load_state_dict(net.decoder.state_dict())
    device = next(net.decoder.parameters()).device
    copy = copy.to(device).eval().requires_grad_(False)
    return copy.to(memory_format=torch.channels_last) if device.type == "cpu" else copy


def fitting(model: Model, crops: Tensor, settings: FitSettings = FitSettings(),
            pivots: Tensor | None = None) -> Generator[tuple[int, int], None, FaceFit]:
    """Fit faces (N x 3 x S x S in [0, 1]) together: their latents and one decoder tuned on all of them.

    A generator for workers that show progress and may stop it: yields (steps done, steps planned) after each
    step and returns the FaceFit. The latents are kept near the model's training faces (its latent Gaussian), and
    the tuning keeps the edits of its attribute vectors. Given `pivots` (N x D, faces fitted before), the latents
    stay those and only the decoder is tuned on them. Early stopping can end a stage before its planned steps."""
    model._check_images(crops)
    if not settings.total_steps:
        latents = model.encode(crops)
        return FaceFit(latents, DecoderTuning(), latents)
    net = frozen_copy(model.net)
    target = crops.to(model.device, torch.float32) * 2 - 1
    with torch.no_grad():
        start, _ = net.encoder(target)
        target_features = encoder_features(net, target)
    latent_steps = 0 if pivots is not None else settings.latent_steps
    total = latent_steps + settings.decoder_steps
    if pivots is not None:
        latents = pivots.to(model.device, torch.float32)
    else:
        gaussian = model.latent_gaussian
        whiten = whitening(gaussian.mean if gaussian else None, gaussian.scale_tril if gaussian else None)
        stage = optimise_latents(net, start, target, target_features, settings, whiten)
        latents = yield from counted(stage, 0, total)
    vectors = torch.stack([v.float() for v in model.attributes.values()]).to(model.device) if model.attributes else None
    tuning = DecoderTuning()
    if settings.decoder_steps:
        stage = tune_decoder(net, latents, target, target_features, settings, vectors)
        tuning = yield from counted(stage, latent_steps, total)
    return FaceFit(latents.cpu(), tuning, start.cpu())


def as_share(steps: Generator[tuple[int, int], None, FaceFit], first: float,
             share: float) -> Generator[float, None, FaceFit]:
    """A fit's progress as part of a larger job: `first` + `share` x (steps done / planned); returns the fit."""
    while True:
        try:
            done, total = next(steps)
        except StopIteration as end:
            return end.value
        yield first + share * done / total


def on_every_core(steps: Generator[Any, None, FaceFit]) -> Generator[Any, None, FaceFit]:
    """A fit's steps run with torch on every core (a 2-core CPU fits a face in about half the time on both; the
    app otherwise leaves a core to its interface), then the thread count as it was."""
    previous = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        return (yield from steps)
    finally:
        torch.set_num_threads(previous)


def fit_faces(model: Model, crops: Tensor, settings: FitSettings = FitSettings(), progress: Progress | None = None,
              cancel: Cancel | None = None) -> FaceFit:
    """`fitting` run to its end: progress(done, planned) after each step; raises FitCancelled as soon as
    `cancel()` turns true."""
    steps = fitting(model, crops, settings)
    while True:
        try:
            done, total = next(steps)
        except StopIteration as end:
            return end.value
        if cancel is not None and cancel():
            raise FitCancelled("fit cancelled")
        if progress is not None:
            progress(done, total)
