"""core.export: conversions, grids, upscaling and safe image/GIF writing."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from core.export import (make_grid, make_strip, pil_to_tensor, save_gif, save_grid, save_image, tensor_to_pil,
                         upscale)

PALETTE = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40)]


def solid_frames(n: int, size: int = 16) -> torch.Tensor:
    """n x 3 x size x size uint8 frames, each one flat colour with a brightness that rises with the index."""
    colours = torch.tensor([[(i * 15) % 256, 255 - (i * 15) % 256, 100] for i in range(n)], dtype=torch.uint8)
    return colours[:, :, None, None].expand(n, 3, size, size).contiguous()


def gif_frames(path) -> list[Image.Image]:
    with Image.open(path) as gif:
        return [frame.convert("RGB") for frame in ImageSequence.Iterator(gif)]


def gif_durations(path) -> list[int]:
    with Image.open(path) as gif:
        return [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]


def test_tensor_pil_round_trip_for_float_and_uint8():
    image = torch.rand(3, 5, 7)
    pil = tensor_to_pil(image)
    assert pil.size == (7, 5) and pil.mode == "RGB"
    assert torch.allclose(pil_to_tensor(pil), image, atol=0.5 / 255 + 1e-6)
    as_bytes = (image * 255).round().to(torch.uint8)
    assert torch.equal(pil_to_tensor(tensor_to_pil(as_bytes)), as_bytes.float() / 255)
    with pytest.raises(ValueError, match="3 x H x W"):
        tensor_to_pil(torch.rand(4, 5, 7))


def test_grid_size_and_tile_placement():
    images = torch.stack([torch.tensor(c, dtype=torch.uint8)[:, None, None].expand(3, 64, 64) for c in
                          PALETTE + [(0, 0, 0)]])
    grid = make_grid(images, columns=3, padding=2, background=(255, 255, 255))
    assert grid.size == (3 * 64 + 4 * 2, 2 * 64 + 3 * 2) == (200, 134)
    assert grid.getpixel((2 + 66 + 10, 2 + 10)) == PALETTE[1]          # row 0, column 1
    assert grid.getpixel((2 + 10, 2 + 66 + 10)) == PALETTE[3]          # row 1, column 0
    assert grid.getpixel((1, 1)) == (255, 255, 255)                     # padding
    assert grid.getpixel((2 + 2 * 66 + 10, 2 + 66 + 10)) == (255, 255, 255)  # empty last cell
    assert make_strip(images[:2], padding=0).size == (128, 64)
    assert make_grid(images[:2], columns=8, padding=0).size == (128, 64)  # columns capped at the count


def test_upscale_modes():
    checker = tensor_to_pil((torch.arange(16).reshape(4, 4) % 2 * 255).to(torch.uint8).expand(3, 4, 4))
    crisp = upscale(checker, 4, "crisp")
    assert crisp.size == (16, 16)
    assert set(np.unique(np.asarray(crisp))) == {0, 255}                  # nearest keeps hard pixels
    assert len(np.unique(np.asarray(upscale(checker, 4, "smooth")))) > 2  # Lanczos blends them
    assert upscale(checker, 2.5).size == (10, 10)
    with pytest.raises(ValueError, match="unknown upscale mode"):
        upscale(checker, 2, "fancy")


@pytest.mark.parametrize("name, image_format", [("face.png", "PNG"), ("face.JPG", "JPEG"), ("face.jpeg", "JPEG")])
def test_save_image_writes_the_format_at_the_scaled_size(tmp_path, name, image_format):
    path = save_image(tensor_to_pil(torch.rand(3, 32, 32)), tmp_path / name, scale=3, mode="crisp")
    with Image.open(path) as saved:
        assert saved.format == image_format and saved.size == (96, 96) and saved.mode == "RGB"
    assert [p.name for p in tmp_path.iterdir()] == [name]                # no temporary file left


def test_save_image_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "out.png"
    save_image(tensor_to_pil(torch.zeros(3, 8, 8)), path)
    with pytest.raises(FileExistsError, match="out.png"):
        save_image(tensor_to_pil(torch.ones(3, 8, 8)), path)
    with Image.open(path) as kept:
        assert kept.getpixel((0, 0)) == (0, 0, 0)
    save_image(tensor_to_pil(torch.ones(3, 8, 8)), path, overwrite=True)
    with Image.open(path) as replaced:
        assert replaced.getpixel((0, 0)) == (255, 255, 255)


def test_save_image_rejects_unsupported_formats_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    image = tensor_to_pil(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match=r"\.tiff.*supported: \.png, \.jpg, \.jpeg"):
        save_image(image, tmp_path / "face.tiff")

    def failing_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(image, tmp_path / "face.png")
    assert list(tmp_path.iterdir()) == []


def test_save_grid_writes_the_grid(tmp_path):
    path = save_grid(solid_frames(5, 64), tmp_path / "grid.png", columns=3, scale=0.5)
    with Image.open(path) as saved:
        assert saved.size == (100, 67)


@pytest.mark.parametrize("pingpong, expected", [(False, list(range(16))), (True, list(range(16)) + list(range(14, 0, -1)))])
def test_gif_has_one_frame_per_image_in_order(tmp_path, pingpong, expected):
    frames = solid_frames(16)
    path = save_gif(frames, tmp_path / "walk.gif", frame_ms=80, pingpong=pingpong, scale=2, mode="crisp")
    written = gif_frames(path)
    assert len(written) == len(expected) == (30 if pingpong else 16)
    assert written[0].size == (32, 32)
    assert [f.getpixel((5, 5)) for f in written] == [tensor_to_pil(frames[i]).getpixel((5, 5)) for i in expected]
    assert gif_durations(path) == [80] * len(expected)


def test_gif_keeps_identical_consecutive_frames_as_separate_frames(tmp_path):
    frames = [tensor_to_pil(f) for f in solid_frames(3)]
    sequence = [frames[0]] * 4 + [frames[1], frames[2], frames[2]]
    path = save_gif(sequence, tmp_path / "still.gif", frame_ms=120)
    written = gif_frames(path)
    assert len(written) == 7 and gif_durations(path) == [120] * 7
    assert [f.getpixel((0, 0)) for f in written] == [f.getpixel((0, 0)) for f in sequence]


def test_gif_refuses_to_overwrite_and_rejects_bad_settings(tmp_path):
    path = save_gif(solid_frames(2), tmp_path / "a.gif")
    with pytest.raises(FileExistsError, match="a.gif"):
        save_gif(solid_frames(2), path)
    with pytest.raises(ValueError, match="supported: .gif"):
        save_gif(solid_frames(2), tmp_path / "a.png")
    with pytest.raises(ValueError, match="frame_ms"):
        save_gif(solid_frames(2), tmp_path / "b.gif", frame_ms=5)
