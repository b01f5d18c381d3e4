"""One optimisation step of the VAE-GAN (three separate updates) and of the pixel VAE.

Gradient routing of the VAE-GAN (paper, Algorithm 1):
- Enc gets d(L_prior + L_llike)/d theta_Enc only: the GAN gradient never reaches it.
- Dec gets gamma * dL_llike + dL_GAN(generator) w.r.t. theta_Dec.
- Dis gets dL_GAN(discriminator) only: the feature loss never trains it.
All three gradients are taken from one forward pass before any optimiser steps, so no
parameter is modified in place while a graph still needs it (the classic port bug).
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from core import augment
from core.losses import bce_fake, bce_real, feature_nll, kl_prior, lowpass_nll, pixel_nll
from core.model import VAEGAN

KL, FEATURE, PIXEL, GAN = "kl", "feature", "pixel", "gen"
"""The metrics a step reports (metrics.jsonl, the live plots, the CLI's progress bar): L_prior, the Dis_l feature
loss, the pixel loss (VAE) and the decoder's GAN loss, ..."""
DIS_REAL, DIS_FAKE = "dis_real", "dis_fake"
"""... Dis's loss on real faces and on generated ones (the mean over reconstructions and prior samples), ..."""
D_REAL, D_REC, D_PRIOR = "d_real", "d_rec", "d_prior"
"""... Dis's mean probability of 'real' for real faces, reconstructions and prior samples, ..."""
TRAIN_DIS, TRAIN_GEN, R1, LOWPASS = "train_dis", "train_gen", "r1", "lowpass"
"""... whether the equilibrium rule let Dis and the GAN term train (1 or 0), the R1 penalty and the low-pass
likelihood when they are on."""
STEP_METRICS = {"vaegan": (KL, FEATURE, GAN, DIS_REAL, DIS_FAKE, D_REAL, D_REC, D_PRIOR), "vae": (KL, PIXEL)}
"""The losses and outputs each model type's step reports (the live view makes their curves before they arrive)."""


@dataclass(frozen=True)
class StepSettings:
    gamma: float = 1e-2
    """Weight of the feature loss in the decoder's update, relative to the GAN term."""
    equilibrium: float = 0.68
    margin: float = 0.35
    kl_weight: float = 1.0
    """Weight of L_prior; below 1 keeps more detail in z when Dis_l has few features (narrow models)."""
    pixel_sigma: float = 0.1
    """Observation noise (in [-1, 1] pixel units) of the plain VAE's Gaussian likelihood."""
    autoencoder_frozen: bool = False
    """Train only Dis (Enc and Dec stay as they are): a new Dis learns the features of a pretrained pair."""
    encoder_frozen: bool = False
    """Train only Dec and Dis: Enc runs as at inference (no gradient, batch norm's stored statistics), so the
    latent space of a pretrained pair stays as it is while its decoder is fine-tuned."""
    equilibrium_rule: bool = True
    """Off: Dis and the decoder's GAN term are updated on every step."""
    augment: tuple[str, ...] = ()
    """DiffAugment operations (core.augment.POLICIES) applied to everything Dis sees."""
    r1_weight: float = 0.0
    """gamma of the R1 penalty gamma/2 E||grad_x D(x)||^2 on the real images Dis sees (Mescheder et al. 2018)."""
    lowpass_sigma: float = 0.0
    """Above 0: L_llike also holds the Gaussian likelihood, with this noise, of x~'s 4x4 block means given x's."""


@dataclass
class Optimizers:
    encoder: torch.optim.Optimizer
    decoder: torch.optim.Optimizer
    discriminator: torch.optim.Optimizer | None


def balance(dis_real: float, dis_fake: float, s: StepSettings) -> tuple[bool, bool]:
    """Equilibrium rule of the authors' code: returns (train_discriminator, train_generator)."""
    if not s.equilibrium_rule:
        return True, True
    train_dis = not (dis_real < s.equilibrium - s.margin or dis_fake < s.equilibrium - s.margin)
    train_gen = not (dis_real > s.equilibrium + s.margin or dis_fake > s.equilibrium + s.margin)
    if not (train_dis or train_gen):
        return True, True
    return train_dis, train_gen


def _assign(params: list[nn.Parameter], grads: list[torch.Tensor | None], scale: float = 1.0,
            accumulate: bool = False) -> None:
    for p, g in zip(params, grads):
        if g is None:
            continue
        g = g * scale if scale != 1.0 else g
        p.grad = p.grad + g if accumulate and p.grad is not None else g.clone()


def _params(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def vaegan_step(model: VAEGAN, x: torch.Tensor, opt: Optimizers, s: StepSettings,
                autocast: Callable[[], AbstractContextManager], generator: torch.Generator,
                across_processes: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
    """x: batch in [-1, 1]. Returns the step's losses and mean D outputs.

    Data-parallel training passes `across_processes` (the mean of a tensor over all processes): the
    balance then follows the mean Dis losses, so every process trains the same networks this step."""
    enc, dec, dis = model.encoder, model.decoder, model.discriminator
    assert dis is not None and opt.discriminator is not None
    n = x.shape[0]
    with autocast():
        mu, logvar = encode(enc, x, s.encoder_frozen)
        eps = torch.randn(mu.shape, device=x.device, generator=generator, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        z_prior = torch.randn(mu.shape, device=x.device, generator=generator, dtype=mu.dtype)
        x_rec = dec(z)
        x_prior = dec(z_prior)
        seen = discriminator_input(x, x_rec, x_prior, s, generator)
        logits, features = dis(seen)
    logit_real, logit_rec, logit_prior = logits.float().split(n)
    feat_real, feat_rec, _ = features.split(n)

    kl = kl_prior(mu.float(), logvar.float())
    feat = feature_nll(feat_rec, feat_real)
    lowpass = lowpass_nll(x_rec, x, s.lowpass_sigma) if s.lowpass_sigma > 0 else None
    llike = feat if lowpass is None else feat + lowpass
    dis_real = bce_real(logit_real)
    dis_rec, dis_prior = bce_fake(logit_rec), bce_fake(logit_prior)
    dis_fake = 0.5 * (dis_rec + dis_prior)
    gen = bce_real(logit_rec) + bce_real(logit_prior)
    if s.autoencoder_frozen:
        train_dis, train_gen = True, False
    else:
        dis_losses = torch.stack([dis_real, dis_fake]).detach()
        train_dis, train_gen = balance(*(across_processes or (lambda t: t))(dis_losses).tolist(), s)

    enc_p = [] if s.encoder_frozen else _params(enc)
    dec_p, dis_p = _params(dec), _params(dis)
    for o in (opt.encoder, opt.decoder, opt.discriminator):
        o.zero_grad(set_to_none=True)
    if not s.autoencoder_frozen:
        grads = torch.autograd.grad(s.kl_weight * kl + llike, enc_p + dec_p, retain_graph=True, allow_unused=True)
        _assign(enc_p, grads[:len(enc_p)])
        _assign(dec_p, grads[len(enc_p):], scale=s.gamma)
    if train_gen:
        _assign(dec_p, torch.autograd.grad(gen, dec_p, retain_graph=train_dis, allow_unused=True), accumulate=True)
    r1 = torch.zeros(())
    if train_dis:
        if s.r1_weight > 0:
            r1 = r1_penalty(logit_real, seen)
        dis_loss = dis_real + dis_rec + dis_prior + 0.5 * s.r1_weight * r1
        _assign(dis_p, torch.autograd.grad(dis_loss, dis_p, allow_unused=True))
    if not s.autoencoder_frozen:
        if not s.encoder_frozen:
            opt.encoder.step()
        opt.decoder.step()
    if train_dis:
        opt.discriminator.step()
    with torch.no_grad():
        probs = torch.sigmoid(logits.float()).split(n)
    return {
        KL: kl.item(), FEATURE: feat.item(), GAN: gen.item(), DIS_REAL: dis_real.item(), DIS_FAKE: dis_fake.item(),
        D_REAL: probs[0].mean().item(), D_REC: probs[1].mean().item(), D_PRIOR: probs[2].mean().item(),
        TRAIN_DIS: float(train_dis), TRAIN_GEN: float(train_gen), **({R1: r1.item()} if s.r1_weight > 0 else {}),
        **({LOWPASS: lowpass.item()} if lowpass is not None else {}),
    }


def encode(enc: nn.Module, x: torch.Tensor, frozen: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """q(z|x) as training sees it; a frozen Enc runs as inference runs it, so Dec learns the app's latents."""
    if not frozen:
        return enc(x)
    enc.eval()
    with torch.no_grad():
        return enc(x)


def discriminator_input(x: torch.Tensor, x_rec: torch.Tensor, x_prior: torch.Tensor, s: StepSettings,
                        generator: torch.Generator) -> torch.Tensor:
    """[x, x~, x_p] as Dis sees them: augmented (one draw shared by x and x~, so the feature loss compares like
    with like) when s.augment is set."""
    if not s.augment:
        return torch.cat([x, x_rec, x_prior])
    n, size = x.shape[0], x.shape[-1]
    pair = augment.draw(n, size, generator, x.device)
    draws = pair.repeat(2).join(augment.draw(n, size, generator, x.device))
    return augment.apply(torch.cat([x, x_rec, x_prior]), s.augment, draws)


def r1_penalty(logit_real: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """E||grad of D's logit w.r.t. the real images Dis saw||^2, kept differentiable in Dis's weights."""
    (grad,) = torch.autograd.grad(logit_real.sum(), seen, create_graph=True)
    return grad[:logit_real.shape[0]].float().pow(2).flatten(1).sum(1).mean()


def vae_step(model: VAEGAN, x: torch.Tensor, opt: Optimizers, s: StepSettings,
             autocast: Callable[[], AbstractContextManager], generator: torch.Generator) -> dict[str, float]:
    """Plain pixel-likelihood VAE on the same Enc/Dec, for side-by-side comparison."""
    with autocast():
        mu, logvar = model.encoder(x)
        eps = torch.randn(mu.shape, device=x.device, generator=generator, dtype=mu.dtype)
        x_rec = model.decoder(mu + eps * torch.exp(0.5 * logvar))
    kl = kl_prior(mu.float(), logvar.float())
    pix = pixel_nll(x_rec, x) / (s.pixel_sigma ** 2)
    opt.encoder.zero_grad(set_to_none=True)
    opt.decoder.zero_grad(set_to_none=True)
    (s.kl_weight * kl + pix).backward()
    opt.encoder.step()
    opt.decoder.step()
    return {KL: kl.item(), PIXEL: pix.item()}
