"""Keyframed videos (core/video.py and `vaegan path`): frame counts, easing, cancelling, one-line errors."""
from __future__ import annotations

import threading
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image

from core.cli import main
from core.video import Cancelled, VideoSettings, frame_latents, write_video
from conftest import make_tiny_model

SMALL = VideoSettings(fps=5, seconds_per_segment=1.0, size=32)


@pytest.fixture(scope="module")
def model():
    return make_tiny_model(with_reference=False)


def keyframes(count: int) -> torch.Tensor:
    return torch.randn(count, 8, generator=torch.Generator().manual_seed(count))


def gif_frames(path: Path) -> int:
    with Image.open(path) as gif:
        return gif.n_frames


def test_frame_count_is_moves_per_segment_times_segments_plus_the_last_keyframe():
    settings = VideoSettings(fps=30, seconds_per_segment=2.0)
    assert frame_latents(keyframes(3), settings).shape == (2 * 60 + 1, 8) == (settings.frame_count(3), 8)
    assert VideoSettings(fps=1, seconds_per_segment=0.2).frames_per_segment == 1  # never below one move


@pytest.mark.parametrize("method", ["slerp", "linear"])
def test_easing_changes_the_frames_between_keyframes_but_not_the_keyframes(method):
    points = keyframes(3)
    plain = frame_latents(points, VideoSettings(fps=10, method=method))
    eased = frame_latents(points, VideoSettings(fps=10, method=method, easing="smooth"))
    at_keyframes = [0, 20, 40]
    assert torch.equal(plain[at_keyframes], points) and torch.equal(eased[at_keyframes], points)
    between = [i for i in range(len(plain)) if i not in at_keyframes and i != 10 and i != 30]  # t = 0.5 is fixed
    assert (plain[between] - eased[between]).norm(dim=1).min() > 1e-4
    first_move = (eased[1] - eased[0]).norm() / (plain[1] - plain[0]).norm()
    assert first_move < 0.2  # smoothstep leaves a keyframe slowly: 3t^2 - 2t^3 at t = 1/20 is 0.145 t


def test_mp4_has_the_right_frames_size_and_rate(model, tmp_path):
    out = write_video(model, keyframes(3), tmp_path / "walk.mp4", SMALL)
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == SMALL.frame_count(3) == 11
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    reader.close()
    assert meta["size"] == (32, 32) and meta["fps"] == 5 and meta["codec"] == "h264"
    assert [p.name for p in tmp_path.iterdir()] == ["walk.mp4"]


def test_gif_has_one_frame_per_latent_and_reports_progress(model, tmp_path):
    seen: list[tuple[int, int]] = []
    out = write_video(model, keyframes(4), tmp_path / "walk.gif", SMALL, progress=lambda d, t: seen.append((d, t)))
    assert gif_frames(out) == SMALL.frame_count(4) == 16
    with Image.open(out) as gif:
        assert gif.size == (32, 32) and gif.info["duration"] == 200
    assert seen[-1] == (16, 16)


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_cancel_leaves_no_file_and_no_temporary(model, tmp_path, suffix):
    cancel = threading.Event()
    settings = VideoSettings(fps=30, seconds_per_segment=2.0, size=32)  # 121 frames: several batches

    def cancel_after_first_batch(done: int, total: int) -> None:
        cancel.set()

    with pytest.raises(Cancelled):
        write_video(model, keyframes(3), tmp_path / f"walk{suffix}", settings, progress=cancel_after_first_batch,
                    cancelled=cancel.is_set)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_kept_unless_overwrite(model, tmp_path):
    target = tmp_path / "walk.gif"
    target.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        write_video(model, keyframes(2), target, SMALL)
    assert target.read_bytes() == b"keep"
    write_video(model, keyframes(2), target, SMALL, overwrite=True)
    assert gif_frames(target) == 6


@pytest.mark.parametrize("settings, words", [
    (dict(fps=0), "fps"), (dict(fps=121), "fps"), (dict(size=8), "size"), (dict(size=2048), "size"),
    (dict(seconds_per_segment=0), "seconds"), (dict(easing="bounce"), "easing"), (dict(method="cubic"), "method")])
def test_bad_settings_are_one_line_value_errors(settings, words):
    with pytest.raises(ValueError, match=words):
        VideoSettings(**settings)


# ----------------------------------------------------------------------------------------- vaegan path


def run(*args: object) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def pictures(tmp_path: Path, astronaut: np.ndarray) -> tuple[Path, Path]:
    """A portrait (one face) and a picture of two faces, both of the public-domain astronaut."""
    face = Image.fromarray(astronaut).crop((120, 20, 330, 230))
    group = Image.new("RGB", (700, 330), (90, 110, 130))
    group.paste(face.resize((170, 170)), (40, 80))
    group.paste(face.resize((300, 300)), (330, 15))
    Image.fromarray(astronaut).save(tmp_path / "portrait.jpg", quality=95)
    group.save(tmp_path / "group.png")
    return tmp_path / "portrait.jpg", tmp_path / "group.png"


def test_path_writes_a_video_through_every_face_in_order(tiny_model_path, pictures, tmp_path, capsys):
    portrait, group = pictures
    out = tmp_path / "walk.mp4"
    assert run("path", tiny_model_path, portrait, group, portrait, "--out", out, "--fps", 4,
               "--seconds-per-segment", 0.5, "--size", 32, "--ease", "--device", "cpu") == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 3 * 2 + 1  # 4 faces (group has 2), 2 frames a move
    gif = tmp_path / "walk.gif"
    assert run("path", tiny_model_path, portrait, group, "--out", gif, "--fps", 4, "--seconds-per-segment", 0.5,
               "--size", 32, "--method", "linear", "--device", "cpu") == 0
    assert gif_frames(gif) == 2 * 2 + 1


BAD_PATHS = {  # flags, output suffix, pictures, words in the error line
    "fps 0": (["--fps", "0"], ".mp4", 2, "--fps: must be from 1 to 120"),
    "fps 500": (["--fps", "500"], ".mp4", 2, "--fps: must be from 1 to 120"),
    "size 8": (["--size", "8"], ".mp4", 2, "--size: must be from 16 to 1,024"),
    "size 4096": (["--size", "4096"], ".mp4", 2, "--size: must be from 16 to 1,024"),
    "no seconds": (["--seconds-per-segment", "0"], ".mp4", 2, "--seconds-per-segment: must be a number from 0.05"),
    "nan seconds": (["--seconds-per-segment", "nan"], ".mp4", 2, "--seconds-per-segment"),
    "unknown method": (["--method", "cubic"], ".mp4", 2, "invalid choice"),
    "odd MP4 size": (["--size", "33"], ".mp4", 2, "even size"),
    "fast GIF": (["--fps", "60"], ".gif", 2, "at most 50 frames per second"),
    "unknown type": ([], ".mov", 2, "unsupported output type .mov"),
    "one face": ([], ".mp4", 1, "at least two faces"),
}


@pytest.mark.parametrize("case", BAD_PATHS)
def test_path_bad_settings_exit_2_with_one_line_and_no_file(tiny_model_path, face_image_file, tmp_path, capsys, case):
    flags, suffix, count, words = BAD_PATHS[case]
    out = tmp_path / "videos" / f"walk{suffix}"
    assert run("path", tiny_model_path, *[face_image_file] * count, "--out", out, "--crop", "none", *flags) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("vaegan: error: ") and words in err, err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_path_keeps_an_existing_video_unless_overwrite(tiny_model_path, face_image_file, tmp_path, capsys):
    out = tmp_path / "walk.gif"
    out.write_bytes(b"keep")
    args = ("path", tiny_model_path, face_image_file, face_image_file, "--out", out, "--crop", "none", "--fps", 2,
            "--size", 16)
    assert run(*args) == 2 and "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert run(*args, "--overwrite") == 0 and gif_frames(out) == 5
