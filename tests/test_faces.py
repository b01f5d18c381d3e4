"""core.faces and the automatic crop: faces found with landmarks, aligned like aligned CelebA, edits pasted
back into the whole photo. The real face is scikit-image's public-domain astronaut portrait."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data import NoFaceError, crop_faces
from core.faces import (CELEBA_FACE_BOX, alignment_for, canonical_landmarks, detect_faces, paste_change,
                        similarity_to, warp_face)

ASTRONAUT_FACE = (182, 62, 266, 173)
"""Where the face is in skimage's astronaut (left, top, right, bottom), by eye, a few pixels loose."""


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_finds_the_face_and_its_landmarks(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    left, top, right, bottom = ASTRONAUT_FACE
    eyes, nose, mouth = faces[0].landmarks[:2], faces[0].landmarks[2], faces[0].landmarks[3:]
    assert (left < eyes[:, 0]).all() and (eyes[:, 0] < right).all() and eyes[0, 0] < eyes[1, 0]
    assert top < eyes[:, 1].mean() < nose[1] < mouth[:, 1].mean() < bottom


@pytest.mark.parametrize("name", ["blank", "noise", "stripes"])
def test_pictures_without_faces_find_none(name):
    rng = np.random.default_rng(0)
    picture = {"blank": np.full((240, 320, 3), 200, np.uint8),
               "noise": rng.integers(0, 256, (240, 320, 3), dtype=np.uint8),
               "stripes": np.repeat((np.arange(320) // 20 % 2 * 255).astype(np.uint8)[None, :, None], 240, 0)
               .repeat(3, 2)}[name]
    assert detect_faces(picture) == []
    with pytest.raises(NoFaceError, match="no face found"):
        crop_faces(Image.fromarray(picture), 64, "auto")


def test_similarity_recovers_a_known_transform():
    points = np.array([[10.0, 20], [40, 22], [25, 35], [12, 50], [38, 51]])
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    transform = similarity_to(points, points @ rotation.T + shift)
    assert np.allclose(transform[:, :2], rotation) and np.allclose(transform[:, 2], shift)


def test_aligned_landmarks_land_on_celeba_positions(astronaut):
    face = detect_faces(astronaut)[0]
    to_crop = alignment_for(face, 64)
    mapped = np.c_[face.landmarks, np.ones(5)] @ to_crop.T
    assert np.abs(mapped - canonical_landmarks(64)).max() < 4  # 5 points, 4 degrees of freedom
    left, _, right, _ = CELEBA_FACE_BOX
    assert canonical_landmarks(128) == pytest.approx(canonical_landmarks(64) * 2)
    assert 0 < canonical_landmarks(right - left)[0, 0] < (right - left) / 2


def test_alignment_undoes_rotation_and_scale(astronaut):
    upright = crop_faces(Image.fromarray(astronaut), 64, "face")[0].image
    turned = Image.fromarray(astronaut).rotate(25, resample=Image.Resampling.BICUBIC, expand=True,
                                               fillcolor=(128, 128, 128))
    larger = turned.resize((turned.width * 3, turned.height * 3), Image.Resampling.BICUBIC)
    for picture in (turned, larger):
        crop = crop_faces(picture, 64, "auto")[0]
        assert crop.method == "aligned"
        assert mean_difference(np.asarray(crop.image), np.asarray(upright)) < 12
    plain = Image.fromarray(astronaut).resize((64, 64))
    assert mean_difference(np.asarray(plain), np.asarray(upright)) > 30  # the check can fail


def test_several_faces_give_one_crop_each_largest_first(astronaut):
    face = Image.fromarray(astronaut).crop((120, 20, 330, 230))
    group = Image.new("RGB", (700, 330), (90, 110, 130))
    group.paste(face.resize((170, 170)), (40, 80))
    group.paste(face.resize((300, 300)), (330, 15))
    crops = crop_faces(group, 64, "auto")
    assert len(crops) == 2
    assert crops[0].to_crop[0, 0] < crops[1].to_crop[0, 0]  # the larger face needs the smaller scale


def test_model_sized_squares_and_celeba_sizes_keep_their_framing(astronaut):
    square = Image.fromarray(astronaut).resize((64, 64))
    crop = crop_faces(square, 64, "auto")[0]
    assert crop.method == "center" and np.array_equal(np.asarray(crop.image), np.asarray(square))
    assert crop_faces(Image.fromarray(astronaut).resize((128, 128)), 64, "auto")[0].method == "aligned"


def test_warp_reduces_large_faces_without_aliasing():
    stripes = np.zeros((800, 800, 3), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: averaging gives grey, skipping pixels gives black or white
    to_crop = np.array([[64 / 800, 0, 0], [0, 64 / 800, 0]])
    out = warp_face(stripes, to_crop, 64)
    assert abs(out[8:-8, 8:-8].mean() - 127.5) < 6 and out[8:-8, 8:-8].std() < 8


def test_pasting_no_change_keeps_every_pixel(astronaut):
    to_crop = alignment_for(detect_faces(astronaut)[0], 64)
    assert np.array_equal(paste_change(astronaut, to_crop, np.zeros((64, 64, 3))), astronaut)


def test_pasted_change_stays_inside_the_face_and_fades_at_its_edge(astronaut):
    to_crop = alignment_for(detect_faces(astronaut)[0], 64)
    grey = np.full_like(astronaut, 100)
    out = paste_change(grey, to_crop, np.full((64, 64, 3), 40.0)).astype(int)
    centre = np.rint(np.linalg.solve(to_crop[:, :2], np.array([32, 32]) - to_crop[:, 2])).astype(int)
    assert (out[centre[1], centre[0]] == 140).all()
    changed = np.argwhere(out[..., 0] != 100)
    left, top, right, bottom = ASTRONAUT_FACE
    assert changed[:, 1].min() > left - 80 and changed[:, 1].max() < right + 80
    assert changed[:, 0].min() > top - 100 and changed[:, 0].max() < bottom + 80
    steps = np.abs(np.diff(out[..., 0], axis=1)).max()
    assert steps < 6  # a soft edge (a hard one would jump by 40): no seam
