"""Networks of the VAE-GAN (Larsen et al. 2016, table for 64x64 faces) and its pixel-VAE twin.

Images inside the networks live in [-1, 1]; the public `Model` API in `core.api` uses [0, 1].
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.parametrizations import spectral_norm

SUPPORTED_IMAGE_SIZES = (64, 128)
MODEL_TYPES = ("vaegan", "vae")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture hyperparameters. `kernel_size=5` is the paper's; 4 avoids checkerboards
    (a kernel divisible by the stride) and costs 36% fewer multiply-adds."""

    image_size: int = 64
    latent_dim: int = 128
    width: float = 1.0
    kernel_size: int = 5
    model_type: str = "vaegan"
    decoder_width: float = 1.0
    """Decoder channels relative to the others': Dec alone runs in the app, Dis only in training."""
    spectral_norm: bool = False
    """Spectral normalisation of every Dis layer, in place of its batch norms (Miyato et al. 2018)."""

    def __post_init__(self) -> None:
        if self.image_size not in SUPPORTED_IMAGE_SIZES:
            raise ValueError(f"image size must be one of {SUPPORTED_IMAGE_SIZES}, got {self.image_size}")
        if not 1 <= self.latent_dim <= 4096:
            raise ValueError(f"latent size must be between 1 and 4096, got {self.latent_dim}")
        if not 0.05 <= self.width <= 8:
            raise ValueError(f"width multiplier must be between 0.05 and 8, got {self.width}")
        if not 0.25 <= self.decoder_width <= 8:
            raise ValueError(f"decoder width multiplier must be between 0.25 and 8, got {self.decoder_width}")
        if self.kernel_size not in (4, 5):
            raise ValueError(f"kernel size must be 4 or 5, got {self.kernel_size}")
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model must be one of {MODEL_TYPES}, got {self.model_type!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def channels(self, base: int) -> int:
        return max(4, int(round(base * self.width)))

    def decoder_channels(self, base: int) -> int:
        return max(4, int(round(base * self.width * self.decoder_width)))

    @property
    def extra_downsamplings(self) -> int:
        """Stride-2 stages beyond the paper's three, so every network ends at 8x8."""
        return int(math.log2(self.image_size // 64))


def batch_norms(*modules: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch-norm layer in `modules`."""
    return [layer for module in modules for layer in module.modules()
            if isinstance(layer, nn.modules.batchnorm._BatchNorm)]


def _down(cin: int, cout: int, k: int, spectral: bool = False) -> list[nn.Module]:
    """Stride-2 conv, batch norm (or, with `spectral`, spectral normalisation of the conv instead), ReLU."""
    conv = nn.Conv2d(cin, cout, k, stride=2, padding=(k - 1) // 2, bias=spectral)
    if spectral:
        return [spectral_norm(conv), nn.ReLU(inplace=True)]
    return [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _up(cin: int, cout: int, k: int) -> list[nn.Module]:
    padding = (k - 1) // 2
    output_padding = 1 if k % 2 else 0
    return [
        nn.ConvTranspose2d(cin, cout, k, stride=2, padding=padding, output_padding=output_padding, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class Encoder(nn.Module):
    """x -> (mu, logvar) of q(z|x)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        k, c = cfg.kernel_size, cfg.channels
        widths = [c(64), c(128), c(256)] + [c(256)] * cfg.extra_downsamplings
        layers: list[nn.Module] = []
        cin = 3
        for cout in widths:
            layers += _down(cin, cout, k)
            cin = cout
        self.features = nn.Sequential(*layers)
        hidden = c(2048)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(cin * 8 * 8, hidden, bias=False),
                                nn.BatchNorm1d(hidden), nn.ReLU(inplace=True))
        self.mu = nn.Linear(hidden, cfg.latent_dim)
        self.logvar = nn.Linear(hidden, cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.features(x))
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """z -> image in [-1, 1] (the paper's Dec, which is also Gen)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        k, c = cfg.kernel_size, cfg.decoder_channels
        self.start_channels = c(256)
        self.fc = nn.Sequential(nn.Linear(cfg.latent_dim, self.start_channels * 8 * 8, bias=False),
                                nn.BatchNorm1d(self.start_channels * 8 * 8), nn.ReLU(inplace=True))
        widths = [c(256)] * cfg.extra_downsamplings + [c(256), c(128), c(32)]
        layers: list[nn.Module] = []
        cin = self.start_channels
        for cout in widths:
            layers += _up(cin, cout, k)
            cin = cout
        layers += [nn.Conv2d(cin, 3, 5, padding=2), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], self.start_channels, 8, 8)
        return self.body(h)


class Discriminator(nn.Module):
    """x -> (logit of 'real', Dis_l features). Dis_l is the last conv's output before its BN.

    With `cfg.spectral_norm` every conv and linear layer is spectrally normalised and the batch norms go (they
    would rescale what the normalisation bounds); Dis_l is then the last conv's output before its ReLU."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        k, c, sn = cfg.kernel_size, cfg.channels, cfg.spectral_norm
        wrap = spectral_norm if sn else (lambda layer: layer)

        def norm(layer: nn.Module) -> nn.Module:
            return nn.Identity() if sn else layer

        self.stem = nn.Sequential(wrap(nn.Conv2d(3, c(32), 5, padding=2)), nn.ReLU(inplace=True))
        widths = [c(128), c(256)] + [c(256)] * cfg.extra_downsamplings
        layers: list[nn.Module] = []
        cin = c(32)
        for cout in widths:
            layers += _down(cin, cout, k, spectral=sn)
            cin = cout
        self.body = nn.Sequential(*layers)
        self.feature_conv = wrap(nn.Conv2d(cin, c(256), k, stride=2, padding=(k - 1) // 2, bias=sn))
        self.head = nn.Sequential(norm(nn.BatchNorm2d(c(256))), nn.ReLU(inplace=True), nn.Flatten(),
                                  wrap(nn.Linear(c(256) * 8 * 8, c(512), bias=sn)), norm(nn.BatchNorm1d(c(512))),
                                  nn.ReLU(inplace=True), wrap(nn.Linear(c(512), 1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.feature_conv(self.body(self.stem(x)))
        return self.head(features).squeeze(1), features


class VAEGAN(nn.Module):
    """Enc, Dec and (for model_type 'vaegan') Dis. A pixel VAE shares Enc and Dec and has no Dis."""

    def __init__(self, cfg: ModelConfig, with_discriminator: bool | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        if with_discriminator is None:
            with_discriminator = cfg.model_type == "vaegan"
        self.discriminator = Discriminator(cfg) if with_discriminator else None

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


@dataclass
class DecoderTuning:
    """A decoder tuned on some faces (core.fit): its parameters, on the CPU. The model's own decoder is never
    modified; decode_tuned runs it with these in their place."""

    parameters: dict[str, torch.Tensor] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.parameters)


def decode_tuned(decoder: Decoder, z: torch.Tensor, tuning: DecoderTuning | None) -> torch.Tensor:
    """decoder(z) in [-1, 1], with the tuning's parameters in place of the decoder's own when given."""
    if not tuning:
        return decoder(z)
    params = {name: p.to(z.device) for name, p in tuning.parameters.items()}
    return functional_call(decoder, params, (z,), strict=False)
