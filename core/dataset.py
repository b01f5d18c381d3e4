"""The decoded training set as one uint8 tensor, and the batches drawn from it on the device."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class FaceDataset:
    """N x 3 x S x S uint8 images with optional labels (CelebA attributes or sub-folder names)."""

    images: torch.Tensor
    names: list[str]
    label_names: list[str] = field(default_factory=list)
    labels: torch.Tensor | None = None
    """N x len(label_names) int8 in {-1, 1} (0: unknown, only where unlabelled pictures were kept), or None
    when the folder has no labels."""
    summary: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError("images must be an N x 3 x H x W uint8 tensor")
        if len(self.names) != len(self):
            raise ValueError("one name per image is required")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def subset(self, index: torch.Tensor | list[int]) -> "FaceDataset":
        index = torch.as_tensor(index, dtype=torch.long)
        return FaceDataset(self.images[index], [self.names[i] for i in index.tolist()], list(self.label_names),
                           None if self.labels is None else self.labels[index], dict(self.summary))


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [0, 1]."""
    return images.float().div_(255.0)


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the networks' range."""
    return images.float().div_(127.5).sub_(1.0)


class BatchSampler:
    """Deterministic epochs: the order of epoch e depends only on (seed, e), so a resumed run
    draws exactly the batches the uninterrupted run would have drawn."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if n < batch_size * world:
            raise ValueError(f"{n} images are too few for a batch of {batch_size}"
                             + (f" on each of {world} processes" if world > 1 else ""))
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world

    @property
    def steps_per_epoch(self) -> int:
        return self.n // (self.batch_size * self.world)

    def indices(self, step: int) -> torch.Tensor:
        epoch, within = divmod(step, self.steps_per_epoch)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.n, generator=g)
        start = (within * self.world + self.rank) * self.batch_size
        return order[start:start + self.batch_size]


def device_batch(images: torch.Tensor, index: torch.Tensor, device: torch.device, generator: torch.Generator,
                 flip: bool = True, channels_last: bool = False) -> torch.Tensor:
    """Gather, move, convert to [-1, 1] and randomly mirror a batch, all on `device`."""
    batch = images[index.to(images.device)].to(device, non_blocking=True)
    x = to_signed(batch)
    if flip:
        mirror = torch.rand(x.shape[0], device=device, generator=generator) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
