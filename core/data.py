"""Turning a folder of face pictures into a FaceDataset: robust decoding, cropping, labels and a
decoded-image cache. Plain Python + torch + numpy + PIL + OpenCV; no Qt."""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from core.dataset import FaceDataset
from core.faces import CELEBA_FACE_BOX, FACE_MIN_FRACTION, alignment_for, box_transform, detect_faces, warp_face
from core.schema import DATA, MODEL_CONFIG

CROP_MODES = ("auto", "celeba", "center", "face", "none")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CACHE_VERSION = 2
CACHE_MAX_BYTES = 8 * 2**30
CACHE_MAX_AGE_S = 30 * 24 * 3600
"""Cached sets unused this long are removed, and the least recently used beyond CACHE_MAX_BYTES in all."""
CACHE_TEMPORARY_AGE_S = 3600
MAX_IMAGE_PIXELS = 100_000_000
"""Our own decompression-bomb limit, checked per image. PIL's global limit (Image.MAX_IMAGE_PIXELS)
is also honoured, so the effective limit is the lower of the two."""
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"
CELEBA_ATTRIBUTES_NAME = "list_attr_celeba.txt"
ATTRIBUTE_VALUES = frozenset(("1", "-1"))

CELEBA_SIZE = (178, 218)
CELEBA_SIZES = (CELEBA_SIZE, (89, 109))
"""Aligned CelebA pictures as distributed (full and half size): automatic cropping gives them the standard box."""
CELEBA_ASPECT_TOLERANCE = 0.02

CROP_METHODS = {"celeba": "CelebA face box", "center": "centre square", "none": "whole picture",
                "aligned": "face found and aligned"}
"""How a crop was made, in words (what a picture's card shows)."""
FACE_CROP_WIDTHS = 1.5
"""An aligned crop is at least this many detected face widths wide (measured: the CelebA box is about
1.6 MTCNN box widths), which bounds how small a face may be decoded."""
MINIMUM_CROP_FRACTION = {"celeba": 128 / 178, "center": 1.0, "none": 1.0,
                         "face": FACE_MIN_FRACTION * FACE_CROP_WIDTHS, "auto": FACE_MIN_FRACTION * FACE_CROP_WIDTHS}
"""The smallest share of an image's short side a crop keeps, which bounds how far a JPEG may be
draft-decoded at reduced scale without losing resolution the crop needs."""

Progress = Callable[[int, int], None]
Cancel = Callable[[], bool]


class DataError(Exception):
    """The folder cannot become a training set (missing, empty, too few usable images, bad setting)."""


class ImageLoadError(DataError):
    """One file could not be used; `reason` is the short why, the message names the file too."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class NoFaceError(ImageLoadError):
    """Face cropping found no face in the image."""


@dataclass
class FaceCrop:
    """One square model input cut from a picture, and how."""

    image: Image.Image
    """RGB, image_size x image_size."""
    to_crop: np.ndarray
    """2 x 3: picture pixels -> crop pixels (what pasting an edit back inverts)."""
    method: str
    """A key of CROP_METHODS."""


@dataclass
class PreparedImage:
    original: Image.Image
    """RGB, EXIF orientation applied."""
    cropped: Image.Image
    """RGB, image_size x image_size."""
    pixels: torch.Tensor
    """3 x S x S uint8, the cropped image as the networks see it (before scaling to [-1, 1])."""
    to_crop: np.ndarray
    """2 x 3: original pixels -> cropped pixels."""
    method: str
    """How the crop was made: a key of CROP_METHODS."""


# ---------------------------------------------------------------------------------------------
# Files and decoding


def scan_folder(folder: Path | str) -> list[Path]:
    """Image files under `folder`, recursively and sorted; hidden files and folders are skipped."""
    root = Path(folder)
    return [root / rel for rel in scan_relative(root)]


def scan_relative(root: Path) -> list[str]:
    """scan_folder as sorted relative POSIX paths: plain strings, cheap for 200k-file folders."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        prefix = os.path.relpath(directory, root).replace(os.sep, "/") + "/"
        prefix = "" if prefix == "./" else prefix
        found += [prefix + f for f in files if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found, key=lambda rel: rel.split("/"))


def open_image(path: Path | str, min_side: int | None = None) -> Image.Image:
    """Fully decode an image file to 8-bit RGB, EXIF orientation applied.

    `min_side` lets JPEGs decode at a reduced scale (PIL's draft) while the short side stays at
    least that long. Raises ImageLoadError naming the file and the reason.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageLoadError(path, "empty file")
        try:
            return decode_picture(path, path, min_side)
        except OSError as error:
            recovered = open_unterminated_jpeg(path, min_side) if "truncated" in str(error) else None
            if recovered is None:
                raise
            return recovered
    except ImageLoadError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageLoadError(path, f"decompression bomb ({error})") from error
    except UnidentifiedImageError as error:
        raise ImageLoadError(path, "not an image (unrecognised format)") from error
    except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
        raise ImageLoadError(path, f"cannot read file ({error.strerror})") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageLoadError(path, f"truncated or corrupt ({error})") from error
    except Exception as error:  # malformed files make PIL raise nearly anything (struct.error, IndexError...)
        raise ImageLoadError(path, f"cannot decode ({type(error).__name__}: {error})") from error


def decode_picture(source: Path | BinaryIO, path: Path, min_side: int | None) -> Image.Image:
    """open_image's decoding, from a file or from bytes in memory; PIL's errors pass through."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(source) as img:
            check_pixel_count(path, img.size)
            if min_side and img.format == "JPEG":
                img.draft(None, (min_side, min_side))
            img.load()
            return to_rgb(path, ImageOps.exif_transpose(img))


def open_unterminated_jpeg(path: Path, min_side: int | None) -> Image.Image | None:
    """A JPEG whose only flaw is a missing end marker (some cameras and cut-short copies), or None.

    Complete scan data decodes to the same pixels whatever bytes follow it, so the file is decoded twice
    with an end marker appended, once right after its data and once after filler; a file cut inside its
    scan data decodes differently (the filler becomes picture) and stays rejected as truncated."""
    data = path.read_bytes()
    if not data.startswith(JPEG_START) or data.rstrip(b"\0").endswith(JPEG_END):
        return None
    first, second = (decode_picture(io.BytesIO(data + filler + JPEG_END), path, min_side)
                     for filler in (b"", b"\x55" * 256))
    return first if np.array_equal(np.asarray(first), np.asarray(second)) else None


def check_pixel_count(path: Path, size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageLoadError(path, f"decompression bomb ({width}x{height} pixels is over the "
                                   f"limit of {MAX_IMAGE_PIXELS // 1_000_000} megapixels)")


def to_rgb(path: Path, img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB; transparency is composited on white, 16-bit values are scaled."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16L", "I;16B", "I"):
        return Image.fromarray(scale_to_8_bits(np.asarray(img))).convert("RGB")
    if (img.mode == "P" and "transparency" in img.info) or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as error:
        raise ImageLoadError(path, f"unsupported image mode {img.mode}") from error


def scale_to_8_bits(values: np.ndarray) -> np.ndarray:
    """16-bit (or 32-bit integer) grey values -> uint8: 65535 -> 255, 32768 -> 128."""
    values = values.astype(np.float64)
    top = 65535.0 if values.max(initial=0) <= 65535 else values.max()
    return np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Cropping


def check_crop_settings(image_size: int, crop: str) -> None:
    if crop not in CROP_MODES:
        raise DataError(f"unknown crop {crop!r}; choose one of: {', '.join(CROP_MODES)}")
    if not isinstance(image_size, int) or image_size <= 0:
        raise DataError(f"image size must be a positive whole number of pixels, got {image_size!r}")


def crop_image(img: Image.Image, image_size: int, crop: str) -> Image.Image:
    """The first (largest) face's crop of crop_faces."""
    return crop_faces(img, image_size, crop)[0].image


def crop_faces(img: Image.Image, image_size: int, crop: str) -> list[FaceCrop]:
    """Square image_size crops of an RGB picture: one per face for face crops, else one.

    auto:   aligned CelebA pictures (178 x 218 or 89 x 109) get the CelebA box and model-sized squares are
            kept whole (they are framed like the training faces already); any other picture is "face".
    face:   every face found (largest first), each warped so its landmarks sit where aligned CelebA puts
            them (core.faces); NoFaceError when there is none.
    celeba: the standard aligned-CelebA face box on 178:218 pictures of any scale (2% aspect tolerance);
            pictures of any other shape fall back to "center".
    center: the largest centred square.  none: the whole picture, squashed.
    """
    check_crop_settings(image_size, crop)
    img = img if img.mode == "RGB" else img.convert("RGB")
    width, height = img.size
    if crop == "none":
        return [box_crop(img, (0, 0, width, height), image_size, "none")]
    if crop == "auto" and is_model_framed(width, height, image_size) or crop == "celeba":
        if has_celeba_aspect(width, height):
            return [box_crop(img, celeba_box(width, height), image_size, "celeba")]
        if crop == "celeba" or width == height:
            return [box_crop(img, center_box(width, height), image_size, "center")]
    if crop == "center":
        return [box_crop(img, center_box(width, height), image_size, "center")]
    return aligned_faces(img, image_size)


def is_model_framed(width: int, height: int, image_size: int) -> bool:
    """An aligned CelebA picture as distributed, or a square at the model's size."""
    return (width, height) in CELEBA_SIZES or width == height == image_size


def box_crop(img: Image.Image, box: tuple[float, float, float, float], image_size: int, method: str) -> FaceCrop:
    resized = img.resize((image_size, image_size), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    return FaceCrop(resized, box_transform(box, image_size), method)


def aligned_faces(img: Image.Image, image_size: int) -> list[FaceCrop]:
    picture = np.asarray(img)
    found = detect_faces(picture)
    if not found:
        raise NoFaceError("image", "no face found")
    crops = []
    for face in found:
        to_crop = alignment_for(face, image_size)
        crops.append(FaceCrop(Image.fromarray(warp_face(picture, to_crop, image_size)), to_crop, "aligned"))
    return crops


def has_celeba_aspect(width: int, height: int) -> bool:
    aligned_aspect = CELEBA_SIZE[0] / CELEBA_SIZE[1]
    return abs(width / height / aligned_aspect - 1) <= CELEBA_ASPECT_TOLERANCE


def celeba_box(width: int, height: int) -> tuple[float, float, float, float]:
    left, top, right, bottom = CELEBA_FACE_BOX
    sx, sy = width / CELEBA_SIZE[0], height / CELEBA_SIZE[1]
    return left * sx, top * sy, right * sx, bottom * sy


def center_box(width: int, height: int) -> tuple[float, float, float, float]:
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


# ---------------------------------------------------------------------------------------------
# One image


def prepare_image(path_or_image: Path | str | Image.Image, image_size: int, crop: str) -> PreparedImage:
    """Decode (if given a path), crop and convert one picture the way the training set is built; for
    face crops, its largest face."""
    return prepare_faces(path_or_image, image_size, crop)[0]


def prepare_faces(path_or_image: Path | str | Image.Image, image_size: int, crop: str) -> list[PreparedImage]:
    """prepare_image for every face of the picture (one item unless the crop finds several faces)."""
    check_crop_settings(image_size, crop)
    original = picture_of(path_or_image)
    return [PreparedImage(original, face.image, to_pixels(face.image), face.to_crop, face.method)
            for face in cropped_for(original, image_size, crop, path_or_image)]


def picture_of(path_or_image: Path | str | Image.Image) -> Image.Image:
    """The picture as the app shows it: RGB, EXIF orientation applied (decoded if given a path)."""
    if isinstance(path_or_image, Image.Image):
        return to_rgb(Path("image"), ImageOps.exif_transpose(path_or_image))
    return open_image(path_or_image)


def cropped_for(img: Image.Image, image_size: int, crop: str, source: Path | str | Image.Image) -> list[FaceCrop]:
    """crop_faces, with a NoFaceError naming the file it came from."""
    try:
        return crop_faces(img, image_size, crop)
    except NoFaceError as error:
        name = source if isinstance(source, (str, Path)) else "image"
        raise NoFaceError(name, error.reason) from None


def to_pixels(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous()


def decode_for_training(path: Path, image_size: int, crop: str) -> torch.Tensor:
    """prepare_image for a file, but JPEGs decode only at the resolution the crop needs."""
    min_side = int(np.ceil(image_size / MINIMUM_CROP_FRACTION[crop]))
    return to_pixels(cropped_for(open_image(path, min_side=min_side), image_size, crop, path)[0].image)


# ---------------------------------------------------------------------------------------------
# Labels


def read_celeba_attributes(path: Path | str) -> tuple[list[str], dict[str, list[int]]]:
    """Parse CelebA's list_attr_celeba.txt: a row count, the attribute names, then one
    `file -1 1 ...` row per image. The declared count is not enforced (trimmed copies are common)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read attribute file ({error})") from error
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise DataError(f"{path}, line 1: expected the number of rows (CelebA list_attr_celeba.txt layout)")
    names = lines[1].split()
    if not names:
        raise DataError(f"{path}, line 2: expected the attribute names")
    rows: dict[str, list[int]] = {}
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        values = fields[1:]
        if len(values) != len(names) or not ATTRIBUTE_VALUES.issuperset(values):
            raise DataError(f"{path}, line {number}: expected a file name and {len(names)} values of 1 or -1")
        rows[fields[0]] = list(map(int, values))
    return names, rows


@dataclass
class LabelPlan:
    """Which images to decode and the label row of each, decided before any decoding."""

    source: str
    names: list[str]
    keep: list[int]
    """Indices of the images to decode."""
    rows: list[list[int]]
    """The label row of each kept image (empty rows when there are no labels)."""
    skipped: list[list[str]]
    """[relative path, reason] of the images left out for lack of a label."""
    note: str = ""


def find_attributes_file(root: Path, attributes_file: Path | str | None) -> Path | None:
    """The attribute file asked for (which must exist), else list_attr_celeba.txt at the folder root if any."""
    if attributes_file is not None:
        path = Path(attributes_file).expanduser().resolve()
        if not path.is_file():
            raise DataError(f"{path}: attribute file not found")
        return path
    beside = root / CELEBA_ATTRIBUTES_NAME
    return beside if beside.is_file() else None


def plan_labels(root: Path, relative: list[str], attributes_path: Path | None, explicit: bool,
                keep_unlabelled: bool = False) -> LabelPlan:
    """CelebA attributes if there is a file, else sub-folder names, else none.

    Attribute rows are matched by relative path, then by file name. With partial coverage only
    matched images are kept (the rest are listed as skipped), because attribute vectors computed
    from a partly labelled set would be biased; `keep_unlabelled` keeps the others too, with an
    all-0 (unknown) row. With no match at all the file is ignored (or, when it was asked for
    explicitly, that is an error).
    """
    if attributes_path is None:
        return folder_labels(relative)
    names, table = read_celeba_attributes(attributes_path)
    found = [table.get(rel) or table.get(rel.rsplit("/", 1)[-1]) for rel in relative]
    keep = [i for i, row in enumerate(found) if row is not None]
    if keep and keep_unlabelled:
        unknown = [0] * len(names)
        return LabelPlan("celeba", names, list(range(len(relative))), [row or unknown for row in found], [])
    if keep:
        reason = f"no row in {attributes_path.name}"
        unlabelled = [[rel, reason] for rel, row in zip(relative, found) if row is None]
        return LabelPlan("celeba", names, keep, [found[i] for i in keep], unlabelled)
    if explicit:
        raise DataError(f"{attributes_path}: no rows match the images in {root}")
    return replace(folder_labels(relative), note=f"{attributes_path.name} has no rows for these images; ignored")


def folder_labels(relative: list[str]) -> LabelPlan:
    """One-hot {-1, 1} labels from the immediate sub-folder, when every image sits in one of >= 2."""
    folders = [rel.split("/", 1)[0] if "/" in rel else None for rel in relative]
    everything = list(range(len(relative)))
    names = sorted(set(folders)) if None not in folders else []
    if len(names) < 2:
        return LabelPlan("none", [], everything, [[] for _ in everything], [])
    rows = [[1 if name == folder else -1 for name in names] for folder in folders]
    return LabelPlan("folders", names, everything, rows, [])


# ---------------------------------------------------------------------------------------------
# Folder -> dataset, with cache


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vaegan-explorer"


def load_image_folder(folder: Path | str, image_size: int = 64, crop: str = "celeba",
                      attributes_file: Path | str | None = None, cache_dir: Path | str | None = None,
                      min_images: int = 16, progress: Progress | None = None,
                      cancel: Cancel | None = None, keep_unlabelled: bool = False) -> FaceDataset:
    """Decode, crop and label every image under `folder`; unusable files are skipped and listed
    in summary["skipped"]. Results are cached (never inside `folder`) and reused while no file changes.
    `keep_unlabelled` keeps pictures an attribute file has no row for (label 0: unknown), for maps."""
    check_crop_settings(image_size, crop)
    if min_images < 1:
        raise DataError(f"minimum image count must be at least 1, got {min_images}")
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"{root}: folder not found" if not root.exists() else f"{root}: not a folder")
    relative = scan_relative(root)
    if not relative:
        raise DataError(f"{root}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)} files)")
    attributes_path = find_attributes_file(root, attributes_file)
    explicit = attributes_file is not None
    key = cache_key(root, relative, image_size, crop, attributes_path, explicit, keep_unlabelled)
    cache_path = Path(cache_dir or default_cache_dir()).expanduser() / f"{key}.safetensors"
    dataset = read_cache(cache_path)
    if dataset is None:
        plan = plan_labels(root, relative, attributes_path, explicit, keep_unlabelled)
        dataset = decode_folder(root, relative, plan, image_size, crop, progress, cancel)
        dataset.summary.update(folder=str(root), crop=crop, image_size=image_size, files_seen=len(relative))
        if explicit:
            dataset.summary["attributes_file"] = str(attributes_path)
        require_enough(dataset, root, min_images)
        write_cache(cache_path, dataset)
        dataset.summary["cache"] = "built"
    else:
        require_enough(dataset, root, min_images)
        dataset.summary["cache"] = "hit"
        if progress:
            progress(len(relative), len(relative))
    return dataset


def load_run_data(meta: dict, folder: Path | str | None = None, attributes_file: Path | str | None = None,
                  progress: Progress | None = None, cancel: Cancel | None = None) -> FaceDataset:
    """The training pictures of a saved run, read as the run recorded them (folder, image size, crop,
    attribute file); `folder` and `attributes_file` replace the recorded ones when given."""
    summary = meta.get(DATA) or {}
    folder = folder or summary.get("folder")
    if not folder:
        raise DataError("the checkpoint does not record its training folder; give the folder of its pictures")
    if not Path(folder).expanduser().is_dir():
        raise DataError(f"the run's training pictures ({folder}) are no longer there")
    image_size = int(summary.get("image_size") or (meta.get(MODEL_CONFIG) or {}).get("image_size", 64))
    return load_image_folder(folder, image_size, summary.get("crop", "celeba"),
                             attributes_file or summary.get("attributes_file"), progress=progress, cancel=cancel)


def decode_folder(root: Path, relative: list[str], plan: LabelPlan, image_size: int,
                  crop: str, progress: Progress | None, cancel: Cancel | None) -> FaceDataset:
    images = torch.empty((len(plan.keep), 3, image_size, image_size), dtype=torch.uint8)
    names: list[str] = []
    label_rows: list[list[int]] = []
    skipped = list(plan.skipped)
    every = max(1, len(plan.keep) // 200)
    for done, (index, row) in enumerate(zip(plan.keep, plan.rows), start=1):
        if cancel and cancel():
            raise DataError("cancelled")
        try:
            images[len(names)] = decode_for_training(root / relative[index], image_size, crop)
            names.append(relative[index])
            label_rows.append(row)
        except ImageLoadError as error:
            skipped.append([relative[index], error.reason])
        if progress and (done % every == 0 or done == len(plan.keep)):
            progress(done, len(plan.keep))
    labels = torch.tensor(label_rows, dtype=torch.int8) if plan.names and names else None
    summary = {"images": len(names), "label_source": plan.source if labels is not None else "none",
               "skipped": sorted(skipped)}
    if plan.note:
        summary["label_note"] = plan.note
    return FaceDataset(images[:len(names)], names, plan.names if labels is not None else [],
                       labels, summary)


def require_enough(dataset: FaceDataset, root: Path, min_images: int) -> None:
    if len(dataset) >= min_images:
        return
    skipped = dataset.summary.get("skipped", [])
    listed = ", ".join(f"{rel} ({reason})" for rel, reason in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
    message = f"{root}: only {len(dataset)} usable images (need at least {min_images})"
    raise DataError(message + (f"; {len(skipped)} files skipped: {listed}" if skipped else ""))


def cache_key(root: Path, relative: list[str], image_size: int, crop: str, attributes_path: Path | None,
              explicit_attributes: bool, keep_unlabelled: bool = False) -> str:
    """A hash of everything the decoded set depends on: file list with sizes and mtimes, settings,
    the attribute file (and whether it was asked for) and the cache format version."""
    digest = hashlib.sha256(f"{CACHE_VERSION}|{root}|{crop}|{image_size}".encode())
    if keep_unlabelled:
        digest.update(b"\nkeep unlabelled")
    if attributes_path:
        identity = f"{explicit_attributes}|{attributes_path}|{file_identity(attributes_path)}"
        digest.update(f"\nattributes|{identity}".encode())
    for rel in relative:
        digest.update(f"\n{rel}|{file_identity(os.path.join(root, rel))}".encode())
    return digest.hexdigest()[:32]


def file_identity(path: Path | str) -> str:
    """Size, modification time, change time and inode: what changes when a file is edited or replaced. The
    change time catches a replacement that keeps size and modification time (cp -p, rsync -t, tar), since
    no tool can set it, at the cost of a stat call rather than reading every file."""
    try:
        stat = os.stat(path)
    except OSError:
        return "missing"
    return f"{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|{stat.st_ino}"


def read_cache(path: Path) -> FaceDataset | None:
    """The cached dataset, or None when absent or unreadable (a bad cache is never fatal).
    The file name is the cache key, so a readable file is never stale."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as stored:
            meta = json.loads(stored.metadata()["meta"])
            tensors = {name: stored.get_tensor(name) for name in stored.keys()}
        os.utime(path)  # marks it as recently used, for prune_cache
        return FaceDataset(tensors["images"], meta["names"], meta["label_names"], tensors.get("labels"),
                           meta["summary"])
    except (OSError, SafetensorError, ValueError, KeyError, TypeError, RuntimeError):
        return None


def write_cache(path: Path, dataset: FaceDataset) -> None:
    """Atomically store the dataset (tensors + JSON metadata in one safetensors file); failures only warn."""
    tensors = {"images": dataset.images.contiguous()}
    if dataset.labels is not None:
        tensors["labels"] = dataset.labels.contiguous()
    meta = {"names": dataset.names, "label_names": dataset.label_names, "summary": dataset.summary}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        prune_cache(path.parent)
        save_file(tensors, str(temporary), metadata={"meta": json.dumps(meta)})
        os.replace(temporary, path)
    except (OSError, SafetensorError) as error:
        temporary.unlink(missing_ok=True)
        warnings.warn(f"could not write the image cache {path}: {error}", RuntimeWarning, stacklevel=2)


def prune_cache(folder: Path, max_bytes: int = CACHE_MAX_BYTES, max_age_s: float = CACHE_MAX_AGE_S) -> None:
    """Remove cached sets unused for `max_age_s`, then the least recently used while all take over `max_bytes`,
    and temporary files that a killed write left an hour or more ago."""
    now = time.time()
    for leftover in folder.glob(".*.tmp"):
        if now - _modified(leftover) > CACHE_TEMPORARY_AGE_S:
            leftover.unlink(missing_ok=True)
    entries = sorted(folder.glob("*.safetensors"), key=_modified, reverse=True)
    total = 0
    for entry in entries:
        total += entry.stat().st_size if entry.exists() else 0
        if total > max_bytes or now - _modified(entry) > max_age_s:
            entry.unlink(missing_ok=True)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
