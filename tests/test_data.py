"""core.data: decoding odd files, crops, labels and the decoded-image cache. All images are generated."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import core.data as data
from core.data import (CELEBA_ATTRIBUTES_NAME, DataError, ImageLoadError, NoFaceError, crop_image,
                       default_cache_dir, load_image_folder, load_run_data, open_image, prepare_image,
                       read_celeba_attributes, scan_folder)
from tests.conftest import synthetic_face

RED, GREY, GREEN, BLUE = (255, 0, 0), (128, 128, 128), (0, 255, 0), (0, 0, 255)


def write_faces(folder: Path, count: int, start: int = 0, size: int = 64) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{start + i:06d}.jpg" for i in range(count)]
    for seed, path in enumerate(paths, start=start):
        Image.fromarray(synthetic_face(seed, size)).save(path, quality=90)
    return paths


def load(folder: Path, tmp_path: Path, **kwargs) -> "data.FaceDataset":
    kwargs.setdefault("cache_dir", tmp_path / "cache")
    kwargs.setdefault("min_images", 4)
    return load_image_folder(folder, **kwargs)


def bomb_png(path: Path, width: int = 50_000, height: int = 50_000) -> None:
    """A PNG whose header claims a huge image (with a few bytes of pixel data)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(int)


# --- scanning and decoding ---------------------------------------------------------------------

def test_scan_folder_is_recursive_sorted_case_insensitive_and_skips_hidden(tmp_path):
    for name in ["b.JPG", "a.png", "sub/c.jpeg", "sub/deep/d.WebP", "e.bmp", "notes.txt", "f.gif",
                 ".hidden.jpg", ".git/g.jpg", "sub/.cache/h.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in scan_folder(tmp_path)]
    assert found == ["a.png", "b.JPG", "e.bmp", "sub/c.jpeg", "sub/deep/d.WebP"]


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = RED
    stored[:, 20:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the stored left edge becomes the top
    path = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    img = open_image(path)
    assert img.size == (20, 40)
    top, bottom = pixels(img)[5, 10], pixels(img)[35, 10]
    assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize("make, expected", [
    (lambda: Image.new("L", (8, 8), 200), (200, 200, 200)),
    (lambda: Image.new("LA", (8, 8), (10, 0)), (255, 255, 255)),
    (lambda: Image.new("RGBA", (8, 8), (255, 0, 0, 0)), (255, 255, 255)),
    (lambda: Image.new("RGBA", (8, 8), (255, 0, 0, 255)), RED),
    (lambda: Image.new("1", (8, 8), 1), (255, 255, 255)),
], ids=["grey", "grey-alpha-transparent", "rgba-transparent", "rgba-opaque", "bilevel"])
def test_modes_convert_to_rgb(tmp_path, make, expected):
    path = tmp_path / "image.png"
    make().save(path)
    img = open_image(path)
    assert img.mode == "RGB"
    assert tuple(pixels(img)[4, 4]) == expected


def test_cmyk_jpeg_converts_to_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)
    red = pixels(open_image(path))[8, 8]
    assert red[0] > 230 and red[1] < 30 and red[2] < 30


def test_palette_transparency_composites_on_white(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (0, 0, 4, 8))
    path = tmp_path / "palette.png"
    img.save(path, transparency=0)
    out = pixels(open_image(path))
    assert tuple(out[4, 1]) == RED and tuple(out[4, 6]) == (255, 255, 255)


def test_16_bit_grey_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[0, 32768, 65535, 1000]], dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")
    grey = pixels(open_image(path))[0, :, 0]
    assert grey.tolist() == [0, 128, 255, 4]


@pytest.mark.parametrize("write, reason", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("this is not a picture\n"), "not an image"),
    (lambda p: p.write_bytes(_jpeg_bytes()[:600]), "truncated"),
    (bomb_png, "decompression bomb"),
], ids=["zero-byte", "text", "truncated", "bomb"])
def test_bad_files_raise_image_load_error_naming_file_and_reason(tmp_path, write, reason):
    path = tmp_path / "bad.jpg"
    write(path)
    with pytest.raises(ImageLoadError) as caught:
        open_image(path)
    assert reason in caught.value.reason
    assert str(path) in str(caught.value)


def test_own_pixel_limit_applies_whatever_the_global_setting(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 5_000)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        open_image(path)


def _jpeg_bytes() -> bytes:
    import io
    buffer = io.BytesIO()
    Image.fromarray(synthetic_face(1, 128)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


# --- cropping ----------------------------------------------------------------------------------

@pytest.mark.parametrize("size, crop", [((178, 218), "celeba"), ((89, 109), "celeba"), ((356, 436), "celeba"),
                                        ((178, 218), "auto"), ((89, 109), "auto")])
def test_celeba_crop_takes_the_aligned_face_box(size, crop):
    width, height = size
    canvas = np.full((height, width, 3), GREY, np.uint8)
    sx, sy = width / 178, height / 218
    canvas[round(45 * sy):round(173 * sy), round(25 * sx):round(153 * sx)] = RED
    out = pixels(crop_image(Image.fromarray(canvas), 64, crop))
    assert out.shape == (64, 64, 3)
    assert np.abs(out[1:-1, 1:-1] - RED).max() < 20


def test_celeba_crop_at_128_is_exactly_the_box():
    noise = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    out = np.asarray(crop_image(Image.fromarray(noise), 128, "celeba"))
    assert np.array_equal(out, noise[45:173, 25:153])


def test_celeba_crop_falls_back_to_center_on_other_shapes():
    img = Image.fromarray(synthetic_face(3, 64))
    assert np.array_equal(pixels(crop_image(img, 32, "celeba")), pixels(crop_image(img, 32, "center")))


def test_center_and_none_crops():
    canvas = np.full((60, 100, 3), GREEN, np.uint8)
    canvas[:, 20:80] = RED
    img = Image.fromarray(canvas)
    center = pixels(crop_image(img, 30, "center"))
    assert np.abs(center[:, 1:-1] - RED).max() < 20
    squashed = pixels(crop_image(img, 30, "none"))
    assert squashed.shape == (30, 30, 3)
    assert np.abs(squashed[:, 0] - GREEN).max() < 20 and np.abs(squashed[:, 15] - RED).max() < 20


@pytest.mark.parametrize("crop", ["face", "auto"])
def test_no_face_raises(crop):
    with pytest.raises(NoFaceError, match="no face"):
        crop_image(Image.new("RGB", (200, 200), GREY), 64, crop)


def test_bad_crop_settings_name_the_valid_modes():
    img = Image.new("RGB", (10, 10))
    with pytest.raises(DataError, match="auto, celeba, center, face, none"):
        crop_image(img, 8, "zoom")
    with pytest.raises(DataError, match="positive"):
        crop_image(img, 0, "center")


def test_prepare_image_from_path_and_from_image(face_image_file):
    from_path = prepare_image(face_image_file, 32, "center")
    from_image = prepare_image(Image.open(face_image_file), 32, "center")
    assert from_path.original.size == (64, 64) and from_path.cropped.size == (32, 32)
    assert from_path.pixels.dtype == torch.uint8 and from_path.pixels.shape == (3, 32, 32)
    assert torch.equal(from_path.pixels, from_image.pixels)


# --- folders -----------------------------------------------------------------------------------

def test_bad_files_are_skipped_and_listed(tmp_path):
    folder = tmp_path / "faces"
    write_faces(folder, 6)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("hello")
    (folder / "cut.jpg").write_bytes(_jpeg_bytes()[:600])
    bomb_png(folder / "bomb.png")
    dataset = load(folder, tmp_path)
    assert len(dataset) == 6 and dataset.summary["images"] == 6 and dataset.summary["files_seen"] == 10
    reasons = dict(dataset.summary["skipped"])
    assert set(reasons) == {"empty.jpg", "text.jpg", "cut.jpg", "bomb.png"}
    assert "empty" in reasons["empty.jpg"] and "not an image" in reasons["text.jpg"]
    assert "truncated" in reasons["cut.jpg"] and "decompression bomb" in reasons["bomb.png"]


def test_empty_missing_and_too_small_folders_raise_readable_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures")
    with pytest.raises(DataError, match="empty: no images found"):
        load(tmp_path / "empty", tmp_path)
    with pytest.raises(DataError, match="folder not found"):
        load(tmp_path / "nowhere", tmp_path)
    few = tmp_path / "few"
    write_faces(few, 3)
    (few / "zero.jpg").write_bytes(b"")
    (few / "text.png").write_text("hi")
    with pytest.raises(DataError) as caught:
        load(few, tmp_path, min_images=16)
    message = str(caught.value)
    assert str(few) in message and "only 3 usable images (need at least 16)" in message
    assert "2 files skipped" in message and "zero.jpg (empty file)" in message and "text.png" in message


def write_attributes(path: Path, names: list[str], rows: dict[str, list[int]], declared: int | None = None) -> None:
    lines = [str(len(rows) if declared is None else declared), " ".join(names)]
    lines += [f"{name} " + " ".join(f"{v:2d}" for v in values) for name, values in rows.items()]
    path.write_text("\n".join(lines) + "\n")


def test_celeba_attributes_become_aligned_labels(tmp_path):
    folder = tmp_path / "celeba"
    paths = write_faces(folder, 8, start=1)
    names = [f"Attribute_{i}" for i in range(40)]
    rng = np.random.default_rng(0)
    rows = {p.name: rng.choice([-1, 1], 40).tolist() for p in paths[:7]}
    write_attributes(folder / CELEBA_ATTRIBUTES_NAME, names, rows)
    dataset = load(folder, tmp_path)
    assert dataset.summary["label_source"] == "celeba" and dataset.label_names == names
    assert dataset.labels.dtype == torch.int8 and dataset.labels.shape == (7, 40)
    for name, label_row in zip(dataset.names, dataset.labels.tolist()):
        assert label_row == rows[name]
    assert dataset.summary["skipped"] == [[paths[7].name, f"no row in {CELEBA_ATTRIBUTES_NAME}"]]


def test_attributes_file_given_by_path(tmp_path):
    folder = tmp_path / "images"
    paths = write_faces(folder, 5)
    table = tmp_path / "attributes.txt"
    write_attributes(table, ["Smiling", "Male"], {p.name: [1, -1] for p in paths}, declared=202599)
    dataset = load(folder, tmp_path, attributes_file=table)
    assert dataset.label_names == ["Smiling", "Male"] and dataset.labels.tolist() == [[1, -1]] * 5


def test_a_run_is_reread_with_its_recorded_attribute_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "images"
    paths = write_faces(folder, 16)
    table = tmp_path / "elsewhere" / "attributes.txt"
    table.parent.mkdir()
    write_attributes(table, ["Smiling", "Male"], {p.name: [1, -1] for p in paths})
    first = load_image_folder(folder, crop="none", attributes_file=table)
    meta = {"data": first.summary, "model_config": {"image_size": 64}}
    assert first.summary["attributes_file"] == str(table.resolve())

    again = load_run_data(meta)
    assert again.label_names == ["Smiling", "Male"] and len(again) == 16
    moved = folder.rename(tmp_path / "moved")
    with pytest.raises(DataError, match="no longer there"):
        load_run_data(meta)
    assert load_run_data(meta, folder=moved).label_names == ["Smiling", "Male"]
    with pytest.raises(DataError, match="does not record"):
        load_run_data({"model_config": {"image_size": 64}})


def test_attribute_file_matching_no_image(face_folder, tmp_path):
    write_attributes(face_folder / CELEBA_ATTRIBUTES_NAME, ["Smiling"], {"999999.jpg": [1]})
    dataset = load(face_folder, tmp_path)
    assert dataset.summary["label_source"] == "folders" and "ignored" in dataset.summary["label_note"]
    with pytest.raises(DataError, match="no rows match"):
        load(face_folder, tmp_path, attributes_file=face_folder / CELEBA_ATTRIBUTES_NAME)


def test_malformed_attribute_file_names_file_and_line(tmp_path):
    path = tmp_path / CELEBA_ATTRIBUTES_NAME
    path.write_text("2\nSmiling Male\n000001.jpg 1 -1\n000002.jpg 1 0\n")
    with pytest.raises(DataError, match=r"list_attr_celeba.txt, line 4"):
        read_celeba_attributes(path)
    path.write_text("Smiling Male\n000001.jpg 1 -1\n")
    with pytest.raises(DataError, match="line 1"):
        read_celeba_attributes(path)


def test_sub_folder_names_become_one_hot_labels(face_folder, tmp_path):
    dataset = load(face_folder, tmp_path)
    assert dataset.summary["label_source"] == "folders"
    assert dataset.label_names == ["neutral", "smiling"] and dataset.labels.shape == (40, 2)
    for name, (neutral, smiling) in zip(dataset.names, dataset.labels.tolist()):
        assert (neutral, smiling) == ((1, -1) if name.startswith("neutral/") else (-1, 1))


def test_images_at_the_root_mean_no_folder_labels(face_folder, tmp_path):
    write_faces(face_folder, 2, start=100)
    dataset = load(face_folder, tmp_path)
    assert dataset.summary["label_source"] == "none" and dataset.labels is None and dataset.label_names == []


def test_progress_and_cancel(face_folder, tmp_path):
    calls = []
    load(face_folder, tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (40, 40) and all(done <= total for done, total in calls)
    with pytest.raises(DataError, match="cancelled"):
        load(face_folder, tmp_path / "other", cancel=lambda: True)


# --- cache -------------------------------------------------------------------------------------

def test_cache_hit_then_rebuild_on_change(face_folder, tmp_path):
    cache = tmp_path / "cache"
    before = sorted(face_folder.rglob("*"))
    first = load(face_folder, tmp_path, cache_dir=cache)
    second = load(face_folder, tmp_path, cache_dir=cache)
    assert (first.summary["cache"], second.summary["cache"]) == ("built", "hit")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.names == second.names and first.label_names == second.label_names
    assert sorted(face_folder.rglob("*")) == before  # nothing written beside the user's images
    assert list(cache.glob("*.safetensors"))

    touched = face_folder / first.names[-1]
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    assert load(face_folder, tmp_path, cache_dir=cache).summary["cache"] == "built"

    changed = face_folder / first.names[0]
    Image.fromarray(synthetic_face(500)).save(changed)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    rebuilt = load(face_folder, tmp_path, cache_dir=cache)
    assert rebuilt.summary["cache"] == "built" and not torch.equal(rebuilt.images[0], first.images[0])

    write_faces(face_folder / "smiling", 1, start=900)
    grown = load(face_folder, tmp_path, cache_dir=cache)
    assert grown.summary["cache"] == "built" and len(grown) == 41


def test_settings_change_the_cache_key(face_folder, tmp_path):
    load(face_folder, tmp_path, image_size=32, crop="center")
    other = load(face_folder, tmp_path, image_size=32, crop="none")
    assert other.summary["cache"] == "built"


def test_corrupt_cache_is_rebuilt(face_folder, tmp_path):
    cache = tmp_path / "cache"
    first = load(face_folder, tmp_path, cache_dir=cache)
    for stored in cache.glob("*.safetensors"):
        stored.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    again = load(face_folder, tmp_path, cache_dir=cache)
    assert again.summary["cache"] == "built" and torch.equal(again.images, first.images)
    assert load(face_folder, tmp_path, cache_dir=cache).summary["cache"] == "hit"


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "vaegan-explorer"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "vaegan-explorer"
