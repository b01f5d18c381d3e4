"""The public model API used by the GUI, the CLI and scripts."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.checkpoint import Checkpoint, CheckpointError, load_model_checkpoint, save_checkpoint
from core.device import resolve_device
from core.latent import LatentGaussian, sample_prior
from core.model import VAEGAN, DecoderTuning, ModelConfig, decode_tuned
from core.schema import (ATTRIBUTE_VECTORS, ATTRIBUTES, DATA, DECODER, ENCODER, PROVENANCE, REF_COORDS, REF_LABELS,
                         REF_LATENTS, REF_PROJECTION_AXES, REF_PROJECTION_MEAN, REF_THUMBNAILS, REFERENCE, TRAINING_STATE,
                         in_groups)


@dataclass
class ReferenceMap:
    """Latents of about 2,000 faces, their fitted 2D projection and thumbnails rendered by the model."""

    latents: torch.Tensor          # N x D
    coords: torch.Tensor           # N x 2
    thumbnails: torch.Tensor       # N x 3 x t x t uint8
    projection_mean: torch.Tensor  # D
    projection_axes: torch.Tensor  # 2 x D (PCA components)
    labels: torch.Tensor | None = None  # N x A int8 in {-1, 1}, for colouring by attribute
    label_names: tuple[str, ...] = ()

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Place new latents on the existing map (the projection is never refitted)."""
        return (z.float().cpu() - self.projection_mean) @ self.projection_axes.T


class Model:
    """An encoder/decoder pair in inference mode. Images are float tensors in [0, 1]."""

    def __init__(self, net: VAEGAN, device: torch.device, meta: dict[str, Any] | None = None,
                 attributes: dict[str, torch.Tensor] | None = None, reference: ReferenceMap | None = None,
                 path: Path | None = None, latent_gaussian: LatentGaussian | None = None) -> None:
        self.net = net.to(device).eval()
        self.device = device
        self.meta = meta or {}
        self.attributes: dict[str, torch.Tensor] = dict(attributes or {})
        self.reference = reference
        self.path = path
        self.latent_gaussian = latent_gaussian
        """Where the training faces encode to; random faces come from it when present, else from N(0, I)."""

    @property
    def config(self) -> ModelConfig:
        return self.net.cfg

    @property
    def image_size(self) -> int:
        return self.net.cfg.image_size

    @property
    def latent_dim(self) -> int:
        return self.net.cfg.latent_dim

    @property
    def training_crop(self) -> str:
        """How its training pictures were cropped (core.data.CROP_MODES); new pictures are cropped alike."""
        return (self.meta.get(DATA) or {}).get("crop") or "celeba"

    @property
    def picture_crop(self) -> str:
        """How a new picture is cropped for this model: automatic face alignment for a model trained on
        face-framed pictures (so a photo's face is framed like its training faces), else its training crop."""
        return "auto" if self.training_crop in ("auto", "celeba", "face") else self.training_crop

    def lifetime(self, key: str) -> float:
        """A training figure ('step', 'images_seen', 'elapsed_s') over the model's whole life: its own run's
        plus, for a run started from another model (--init-from), that model's lifetime figure."""
        state = self.meta.get(TRAINING_STATE, {})
        return state.get(key, 0) + (state.get("started_from") or {}).get(key, 0)

    @property
    def images_trained_on(self) -> int:
        return int(self.lifetime("images_seen"))

    def _check_images(self, x: torch.Tensor) -> None:
        s = self.image_size
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != s or x.shape[3] != s:
            raise ValueError(f"expected images of shape N x 3 x {s} x {s}, got {tuple(x.shape)}")

    @torch.no_grad()
    def posterior(self, x: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and variances of q(z|x), each N x latent_dim (on the CPU)."""
        self._check_images(x)
        means, variances = [torch.empty(0, self.latent_dim)], [torch.empty(0, self.latent_dim)]
        for chunk in x.split(batch_size):
            mu, logvar = self.net.encoder(chunk.to(self.device, torch.float32) * 2 - 1)
            means.append(mu.float().cpu())
            variances.append(logvar.float().exp().cpu())
        return torch.cat(means), torch.cat(variances)

    def encode(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Posterior means of q(z|x): N x latent_dim (on the CPU)."""
        return self.posterior(x, batch_size)[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor, batch_size: int = 256, tuning: DecoderTuning | None = None) -> torch.Tensor:
        """Images N x 3 x H x W in [0, 1] (on the CPU); through a decoder tuned on fitted faces (core.fit)
        when `tuning` is given."""
        if z.dim() == 1:
            z = z.unsqueeze(0)
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"expected latents of size {self.latent_dim}, got {z.shape[-1]}")
        out = [((decode_tuned(self.net.decoder, chunk.to(self.device, torch.float32), tuning).float() + 1) / 2)
               .clamp_(0, 1).cpu()
               for chunk in z.split(batch_size)]
        return torch.cat(out)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def sample_latents(self, n: int, temperature: float = 1.0, seed: int | None = None) -> torch.Tensor:
        """n random latents: from the fitted latent Gaussian when the model has one, else from N(0, I);
        temperature scales the spread around the centre. The same seed gives the same latents."""
        if self.latent_gaussian is not None:
            return self.latent_gaussian.sample(n, temperature, seed)
        return sample_prior(n, self.latent_dim, temperature, seed)

    def sample(self, n: int, temperature: float = 1.0, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n random latents (see sample_latents) and their decodes."""
        z = self.sample_latents(n, temperature, seed)
        return z, self.decode(z)

    def info(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "latent_dim": self.latent_dim, "model_type": self.config.model_type,
                "images_trained_on": self.images_trained_on, "attributes": sorted(self.attributes),
                "path": str(self.path) if self.path else None, "provenance": self.meta.get(PROVENANCE)}

    def info_line(self) -> str:
        i = self.info()
        return (f"{i['image_size']}x{i['image_size']} {i['model_type'].upper()}, latent {i['latent_dim']}, "
                f"trained on {i['images_trained_on']:,} images, {len(i['attributes'])} attributes")

    def save_attributes(self, path: str | Path | None = None) -> Path:
        """Write the current attribute vectors into the checkpoint file (atomically), keeping all else."""
        target = Path(path or self.path or "")
        if not target.name:
            raise CheckpointError("model has no file to save attributes into")
        ckpt = load_model_checkpoint(target).checkpoint
        ckpt.tensors = {k: v for k, v in ckpt.tensors.items() if not in_groups(k, ("attr",))}
        names = sorted(self.attributes)
        if names:
            ckpt.tensors[ATTRIBUTE_VECTORS] = torch.stack([self.attributes[n].float().cpu() for n in names])
        ckpt.meta[ATTRIBUTES] = names
        return save_checkpoint(target, ckpt)


def _attributes_from(ckpt: Checkpoint) -> dict[str, torch.Tensor]:
    names = ckpt.meta.get(ATTRIBUTES, [])
    vectors = ckpt.tensors.get(ATTRIBUTE_VECTORS)
    if vectors is None or len(names) != vectors.shape[0]:
        return {}
    return {n: v.float() for n, v in zip(names, vectors)}


def _reference_from(ckpt: Checkpoint) -> ReferenceMap | None:
    t = ckpt.tensors
    needed = (REF_LATENTS, REF_COORDS, REF_THUMBNAILS, REF_PROJECTION_MEAN, REF_PROJECTION_AXES)
    if not all(k in t for k in needed):
        return None
    info = ckpt.meta.get(REFERENCE) or {}
    latents, coords = t[REF_LATENTS], t[REF_COORDS]
    count = int(info.get("count", latents.shape[0]))
    if not count == latents.shape[0] == coords.shape[0]:
        raise ValueError(f"the reference map's sizes disagree ({count} faces, {latents.shape[0]} latents, "
                         f"{coords.shape[0]} positions)")
    thumbs = decode_thumbnail_atlas(t[REF_THUMBNAILS], count,
                                    int(info.get("thumbnail_size", 64)), int(info.get("columns", 45)))
    return ReferenceMap(latents.float(), coords.float(), thumbs, t[REF_PROJECTION_MEAN].float(),
                        t[REF_PROJECTION_AXES].float(), t.get(REF_LABELS), tuple(info.get("label_names", ())))


def encode_thumbnail_atlas(thumbs: torch.Tensor, columns: int, quality: int = 88) -> torch.Tensor:
    """N x 3 x t x t uint8 -> one JPEG of a grid, as a uint8 tensor of its bytes (compact to ship)."""
    from PIL import Image

    n, _, t, _ = thumbs.shape
    rows = -(-n // columns)
    tiles = torch.zeros(rows * columns, 3, t, t, dtype=torch.uint8)
    tiles[:n] = thumbs
    canvas = tiles.view(rows, columns, 3, t, t).permute(2, 0, 3, 1, 4).reshape(3, rows * t, columns * t)
    buf = io.BytesIO()
    Image.fromarray(canvas.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=quality)
    return torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)


def decode_thumbnail_atlas(data: torch.Tensor, count: int, size: int, columns: int) -> torch.Tensor:
    from PIL import Image

    rows = -(-count // columns)
    try:
        image = Image.open(io.BytesIO(data.numpy().tobytes()))
    except Image.DecompressionBombError as exc:
        raise ValueError(f"thumbnail atlas is too large ({exc})") from exc
    except (OSError, SyntaxError) as exc:
        raise ValueError("thumbnail atlas is not a readable JPEG") from exc
    with image:
        if image.size != (columns * size, rows * size):
            raise ValueError(f"thumbnail atlas is {image.width}x{image.height} pixels, expected "
                             f"{columns * size}x{rows * size}")
        atlas = torch.from_numpy(np.array(image.convert("RGB")))
    tiles = atlas.view(rows, size, columns, size, 3).permute(0, 2, 4, 1, 3).reshape(rows * columns, 3, size, size)
    return tiles[:count].contiguous()


def load_model(path: str | Path, device: str = "auto") -> Model:
    """Load a training or inference checkpoint (file or run folder) as a Model.

    Raises CheckpointError with a one-line message naming the file and the problem."""
    dev = resolve_device(device)
    loaded = load_model_checkpoint(path)
    ckpt, cfg, file = loaded.checkpoint, loaded.config, loaded.path
    try:
        net = VAEGAN(cfg, with_discriminator=False)
        net.encoder.load_state_dict({k: v.float() for k, v in ckpt.group(ENCODER).items()})
        net.decoder.load_state_dict({k: v.float() for k, v in ckpt.group(DECODER).items()})
        reference = _reference_from(ckpt)
    except (KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"{file}: checkpoint does not hold a usable model ({str(exc).splitlines()[0][:160]})") from exc
    if dev.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    return Model(net, dev, ckpt.meta, _attributes_from(ckpt), reference, file,
                 LatentGaussian.from_tensors(ckpt.tensors, cfg.latent_dim))
