"""Loss terms of Larsen et al. (2016), each per image and averaged over the batch."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_prior(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """L_prior = KL(q(z|x) || N(0, I)), summed over latent dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()


def feature_nll(features_fake: torch.Tensor, features_real: torch.Tensor) -> torch.Tensor:
    """L_llike^Dis_l: -log N(Dis_l(x) | Dis_l(x~), I) up to a constant, summed over features."""
    diff = (features_fake.float() - features_real.detach().float()).flatten(1)
    return 0.5 * diff.pow(2).sum(dim=1).mean()


def pixel_nll(x_fake: torch.Tensor, x_real: torch.Tensor) -> torch.Tensor:
    """Gaussian pixel likelihood of the plain VAE (unit variance), summed over pixels."""
    return 0.5 * (x_fake.float() - x_real.float()).flatten(1).pow(2).sum(dim=1).mean()


def lowpass_nll(x_fake: torch.Tensor, x_real: torch.Tensor, sigma: float, block: int = 4) -> torch.Tensor:
    """Gaussian likelihood (noise sigma) of the images' block x block means: it holds colours and layout, and is
    blind to any detail that averages out within a block, which Dis_l is left to judge."""
    return pixel_nll(F.avg_pool2d(x_fake.float(), block), F.avg_pool2d(x_real.float(), block)) / sigma ** 2


def bce_real(logits: torch.Tensor) -> torch.Tensor:
    """-log D(x): the discriminator's loss on images it should call real."""
    return F.binary_cross_entropy_with_logits(logits.float(), torch.ones_like(logits, dtype=torch.float32))


def bce_fake(logits: torch.Tensor) -> torch.Tensor:
    """-log(1 - D(x)): the discriminator's loss on images it should call fake."""
    return F.binary_cross_entropy_with_logits(logits.float(), torch.zeros_like(logits, dtype=torch.float32))
