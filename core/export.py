"""Images out of the app: tensor <-> PIL conversion, grids, upscaling and safe PNG/JPEG/GIF writing.

Plain torch + PIL; never imports Qt. Image tensors are 3 x H x W (or N x 3 x H x W), float in [0, 1] or uint8.
Every save refuses to replace an existing file unless overwrite=True, and writes atomically: to a temporary
file in the target folder, then os.replace, so a failed save leaves nothing behind and never a half file.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageChops
from torch import Tensor

from core.checkpoint import atomic_file

IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
RESAMPLING = {"smooth": Image.Resampling.LANCZOS, "crisp": Image.Resampling.NEAREST}
MIN_FRAME_MS = 20           # browsers play faster GIF frames at 100 ms
_GIF_SPARE_INDEX = 255      # palette entry kept free so repeated GIF frames can differ in bytes only

Images = Tensor | Sequence[Image.Image | Tensor]


def tensor_to_pil(img: Tensor) -> Image.Image:
    """3 x H x W float in [0, 1] (clamped) or uint8 -> RGB PIL image."""
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"expected an image tensor of shape 3 x H x W, got {tuple(img.shape)}")
    img = img.detach().cpu()
    if img.dtype != torch.uint8:
        img = (img.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return Image.fromarray(img.permute(1, 2, 0).contiguous().numpy(), "RGB")


def pil_to_tensor(img: Image.Image) -> Tensor:
    """PIL image (any mode) -> 3 x H x W float in [0, 1]."""
    array = np.asarray(img.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _to_pil_list(images: Images) -> list[Image.Image]:
    """N x 3 x H x W tensor, or a sequence of PIL images / 3 x H x W tensors -> RGB PIL images of one size."""
    if isinstance(images, Tensor) and images.dim() != 4:
        raise ValueError(f"expected images of shape N x 3 x H x W, got {tuple(images.shape)}")
    pictures = [img.convert("RGB") if isinstance(img, Image.Image) else tensor_to_pil(img) for img in images]
    if not pictures:
        raise ValueError("no images given")
    sizes = {p.size for p in pictures}
    if len(sizes) > 1:
        raise ValueError(f"all images must have the same size, got {sorted(sizes)}")
    return pictures


def make_grid(images: Images, columns: int, padding: int = 2,
              background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Images in rows of `columns` (capped at the image count), with `padding` pixels around every tile.

    Size: width = c * w + (c + 1) * padding, height = r * h + (r + 1) * padding, r = ceil(N / c)."""
    if columns < 1 or padding < 0:
        raise ValueError(f"need columns >= 1 and padding >= 0, got columns={columns}, padding={padding}")
    tiles = _to_pil_list(images)
    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    width, height = tiles[0].size
    grid = Image.new("RGB", (columns * width + (columns + 1) * padding, rows * height + (rows + 1) * padding),
                     tuple(background))
    for i, tile in enumerate(tiles):
        row, column = divmod(i, columns)
        grid.paste(tile, (padding + column * (width + padding), padding + row * (height + padding)))
    return grid


def make_strip(images: Images, padding: int = 2, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """All images in one row."""
    return make_grid(images, len(images), padding, background)


def upscale(img: Image.Image, scale: float, mode: str = "smooth") -> Image.Image:
    """Resize by `scale`: mode "smooth" (Lanczos) for photos, "crisp" (nearest) to keep pixels visible."""
    if mode not in RESAMPLING:
        raise ValueError(f"unknown upscale mode {mode!r}; use one of: {', '.join(RESAMPLING)}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if scale == 1:
        return img.copy()
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, RESAMPLING[mode])


def _target(path: str | os.PathLike[str], formats: dict[str, str], overwrite: bool) -> tuple[Path, str]:
    """(path, PIL format name), checking the suffix and refusing to replace a file unless allowed."""
    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix not in formats:
        raise ValueError(f"cannot save {target.name}: unsupported format {suffix or '(no suffix)'}; "
                         f"supported: {', '.join(formats)}")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True to replace it")
    return target, formats[suffix]


def _write_atomically(target: Path, write: Callable[[BinaryIO], None]) -> Path:
    """write() into a hidden temporary file beside target, then move it into place in one step (see
    core.checkpoint.atomic_file)."""
    with atomic_file(target) as temporary, open(temporary, "wb") as file:
        write(file)
    return target


def save_image(img: Image.Image | Tensor, path: str | os.PathLike[str], scale: float = 1, mode: str = "smooth",
               overwrite: bool = False, quality: int = 95) -> Path:
    """Save as PNG or JPEG (chosen by suffix), upscaled by `scale`; returns the path written.

    JPEG is written as RGB at `quality` (1-100). Raises FileExistsError rather than replace a file."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be between 1 and 100, got {quality}")
    target, image_format = _target(path, IMAGE_FORMATS, overwrite)
    picture = upscale(img if isinstance(img, Image.Image) else tensor_to_pil(img), scale, mode)
    if image_format == "JPEG":
        return _write_atomically(target, lambda f: picture.convert("RGB").save(f, "JPEG", quality=quality))
    return _write_atomically(target, lambda f: picture.save(f, "PNG"))


def save_grid(images: Images, path: str | os.PathLike[str], columns: int, padding: int = 2, scale: float = 1,
              mode: str = "smooth", overwrite: bool = False) -> Path:
    """make_grid + save_image."""
    return save_image(make_grid(images, columns, padding), path, scale, mode, overwrite)


def _repeat_of(frame: Image.Image) -> Image.Image:
    """The same picture as a palette frame but with different bytes, so Pillow cannot merge the two.

    The spare palette entry gets the colour of pixel (0, 0) (the frame never uses that entry, so it looks
    the same) and the copy's pixel (0, 0) points at the spare: identical colours, different indices."""
    index = frame.getpixel((0, 0))
    palette = (frame.getpalette() or []) + [0] * 768
    spare = 3 * _GIF_SPARE_INDEX
    palette[spare:spare + 3] = palette[3 * index:3 * index + 3]
    frame.putpalette(palette[:768])
    repeat = frame.copy()
    repeat.putpixel((0, 0), _GIF_SPARE_INDEX)
    return repeat


def _gif_frames(frames: list[Image.Image], palette: Image.Quantize) -> list[Image.Image]:
    """Palette frames that Pillow writes one for one.

    Pillow folds a frame that looks identical to the previous one into it (one longer frame), which would change
    the frame count; frames that differ only slightly can look identical once reduced to 255 colours. Within a
    run of identical-looking frames the frames alternate between the run's first frame and its _repeat_of, which
    differ in bytes only."""
    palette_frames: list[Image.Image] = []
    run_start, previous_look = 0, None
    for i, frame in enumerate(frames):
        quantized = frame.quantize(colors=_GIF_SPARE_INDEX, method=palette, dither=Image.Dither.NONE)
        look = quantized.convert("RGB")
        if previous_look is not None and ImageChops.difference(look, previous_look).getbbox() is None:
            first = palette_frames[run_start]
            palette_frames.append(_repeat_of(first) if (i - run_start) % 2 else first.copy())
        else:
            run_start = i
            palette_frames.append(quantized)
        previous_look = look
    return palette_frames


def save_gif(frames: Images, path: str | os.PathLike[str], frame_ms: int = 80, pingpong: bool = False,
             loop: int = 0, scale: float = 1, mode: str = "smooth", overwrite: bool = False,
             palette: Image.Quantize = Image.Quantize.MEDIANCUT) -> Path:
    """Animated GIF with exactly one frame per image (pingpong: 0..n-1 then n-2..1, 2n - 2 frames).

    frame_ms is stored in GIF's 10 ms units; loop=0 repeats forever, loop=k plays k extra times. palette: how
    each frame's 255 colours are chosen; FASTOCTREE is about 100x faster than median cut on a 256 px face and
    about 0.6 grey levels further from the true colours (for long videos)."""
    if frame_ms < MIN_FRAME_MS:
        raise ValueError(f"frame_ms must be at least {MIN_FRAME_MS} (browsers slow faster GIFs down), got {frame_ms}")
    if loop < 0:
        raise ValueError(f"loop must be >= 0 (0 = forever), got {loop}")
    target, _ = _target(path, {".gif": "GIF"}, overwrite)
    pictures = [upscale(p, scale, mode) for p in _to_pil_list(frames)]
    if pingpong:
        pictures += pictures[-2:0:-1]
    first, *rest = _gif_frames(pictures, palette)
    return _write_atomically(target, lambda f: first.save(
        f, "GIF", save_all=True, append_images=rest, duration=frame_ms, loop=loop, optimize=False, disposal=1))
