"""Shared fixtures: generated face-like images and tiny models. Never depends on ../shared."""
from __future__ import annotations

import gc
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import torch
from PIL import Image

from core.api import Model
from core.bundle import build_reference_map, save_inference_model
from core.device import resolve_device
from core.model import VAEGAN, ModelConfig

torch.set_num_threads(1)

SETTINGS_ENV = "VAEGAN_EXPLORER_SETTINGS"
"""explorer.settings.SETTINGS_ENV, not imported here: core's tests need no Qt."""
PRIVATE_FOLDERS = {"HOME": ".", "XDG_CONFIG_HOME": ".config", "XDG_CACHE_HOME": ".cache",
                   "XDG_DATA_HOME": ".local/share", "XDG_STATE_HOME": ".local/state"}
"""Where Path.home(), QSettings/QStandardPaths and core's caches look, each pointed into the private home."""
_session_env = pytest.MonkeyPatch()
_private_home: Path | None = None

TINY_CONFIG = ModelConfig(image_size=64, latent_dim=8, width=0.125, kernel_size=4)


def synthetic_face(seed: int, size: int = 64) -> np.ndarray:
    """A smooth, face-like RGB image: skin-toned ellipse, dark eyes, mouth, random background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.empty((size, size, 3), np.float32)
    img[:] = rng.uniform(0.1, 0.9, 3)
    skin = rng.uniform([0.5, 0.35, 0.25], [0.95, 0.8, 0.7])
    cx, cy = 0.5 + rng.uniform(-0.05, 0.05), 0.52
    face = ((xx - cx) / 0.3) ** 2 + ((yy - cy) / 0.4) ** 2 < 1
    img[face] = skin
    for ex in (cx - 0.12, cx + 0.12):
        img[((xx - ex) / 0.05) ** 2 + ((yy - 0.42) / 0.03) ** 2 < 1] = 0.1
    smile = rng.uniform(0.02, 0.06)
    img[(np.abs(yy - 0.7 - smile * ((xx - cx) / 0.15) ** 2) < 0.015) & (np.abs(xx - cx) < 0.15)] = [0.5, 0.1, 0.1]
    return (img * 255).astype(np.uint8)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before any test runs or any QSettings exists: a private home and XDG folders for the whole session,
    subprocesses included, so no test reads or writes the user's settings, caches, menu entries or runs."""
    global _private_home
    _private_home = Path(tempfile.mkdtemp(prefix="vaegan-tests-home-")).resolve()
    for variable, folder in PRIVATE_FOLDERS.items():
        _session_env.setenv(variable, str(_private_home / folder))
    _session_env.delenv(SETTINGS_ENV, raising=False)


def pytest_unconfigure(config: pytest.Config) -> None:
    _session_env.undo()
    if _private_home is not None:
        shutil.rmtree(_private_home, ignore_errors=True)


@pytest.fixture(scope="session")
def private_home() -> Path:
    """The session's stand-in for the user's home folder (see pytest_configure)."""
    assert _private_home is not None
    return _private_home


@pytest.fixture(autouse=True)
def garbage_collected_between_tests(request: pytest.FixtureRequest):
    """After a test that made widgets, wait for its background workers and run the collector here, on the GUI
    thread: left to chance, it would free that test's widgets during a later test, perhaps on a training thread,
    which PySide does not survive."""
    yield
    if "qtbot" in request.fixturenames:
        from PySide6.QtCore import QThreadPool

        QThreadPool.globalInstance().waitForDone(30_000)
        gc.collect()


@pytest.fixture(autouse=True)
def private_settings_and_cache(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from empty app settings (beside, not in, its tmp_path, which tests list) and its own cache
    of decoded folders."""
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path_factory.mktemp("settings") / "settings.ini"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def face_folder(tmp_path: Path) -> Path:
    """A folder of 40 generated 64x64 JPEG faces in two labelled sub-folders."""
    root = tmp_path / "faces"
    for i in range(40):
        sub = root / ("smiling" if i % 2 else "neutral")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(synthetic_face(i)).save(sub / f"face_{i:03d}.jpg", quality=95)
    return root


@pytest.fixture
def face_image_file(tmp_path: Path) -> Path:
    path = tmp_path / "one_face.png"
    Image.fromarray(synthetic_face(999)).save(path)
    return path


def make_tiny_model(with_reference: bool = True, seed: int = 0) -> Model:
    torch.manual_seed(seed)
    model = Model(VAEGAN(TINY_CONFIG, with_discriminator=False), resolve_device("cpu"),
                  meta={"training_state": {"images_seen": 1234}})
    g = torch.Generator().manual_seed(seed)
    model.attributes = {"Smiling": torch.randn(TINY_CONFIG.latent_dim, generator=g),
                        "Eyeglasses": torch.randn(TINY_CONFIG.latent_dim, generator=g)}
    if with_reference:
        images = torch.from_numpy(np.stack([synthetic_face(i) for i in range(60)])).permute(0, 3, 1, 2)
        labels = torch.where(torch.arange(60)[:, None] % 2 == 0, 1, -1).to(torch.int8).repeat(1, 2)
        model.reference = build_reference_map(model, images.contiguous(), labels, ("Smiling", "Eyeglasses"))
    return model


@pytest.fixture
def tiny_model_path(tmp_path: Path) -> Path:
    """An inference checkpoint of a small random model with two attributes and a 60-point map."""
    return save_inference_model(make_tiny_model(), tmp_path / "tiny.safetensors", half_precision=False)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real face: scikit-image's public-domain portrait of Eileen Collins (512 x 512 RGB)."""
    from skimage import data as skimage_data

    return skimage_data.astronaut()


@pytest.fixture(scope="session")
def group_photo(astronaut: np.ndarray) -> Image.Image:
    """Two faces of different sizes (the astronaut's, pasted twice) on a plain background."""
    face = Image.fromarray(astronaut).crop((120, 20, 330, 230))
    group = Image.new("RGB", (700, 330), (90, 110, 130))
    group.paste(face.resize((170, 170)), (40, 80))
    group.paste(face.resize((300, 300)), (330, 15))
    return group
