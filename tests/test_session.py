"""Session files: saved and read back exactly, moved models found by checksum, bad files refused in one line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.session import (SESSION_VERSION, Session, SessionError, SessionFace, file_sha256, find_session_model,
                          load_session, save_session)


def _session(model: Path) -> Session:
    latent = torch.linspace(-2, 2, 16)
    return Session(str(model), file_sha256(model),
                   faces={"current": SessionFace("me.jpg · face 1", latent, "/photos/me.jpg")},
                   bookmarks=[SessionFace("smiling me", latent * 0.5)],
                   panels={"attributes": {"strengths": {"Smiling": 1.0}}, "map": {"selected": [3, 7]}})


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "faces.safetensors"
    path.parent.mkdir()
    path.write_bytes(b"model bytes")
    return path


def test_a_saved_session_reads_back_exactly(tmp_path: Path, model_file: Path) -> None:
    session = _session(model_file)
    loaded = load_session(save_session(session, tmp_path / "s.vaegan-session"))
    assert loaded.model_path == session.model_path and loaded.model_sha256 == session.model_sha256
    assert torch.equal(loaded.faces["current"].latent, session.faces["current"].latent)
    assert loaded.faces["current"].source == "/photos/me.jpg"
    assert loaded.bookmarks[0].name == "smiling me" and loaded.bookmarks[0].source is None
    assert loaded.panels == session.panels


def test_a_moved_model_is_found_beside_the_session_by_its_checksum(tmp_path: Path, model_file: Path) -> None:
    saved = save_session(_session(model_file), tmp_path / "s.vaegan-session")
    moved = tmp_path / model_file.name
    model_file.rename(moved)
    assert find_session_model(load_session(saved), saved) == moved
    moved.write_bytes(b"another model with the same name")
    assert find_session_model(load_session(saved), saved) is None


@pytest.mark.parametrize("content, problem", [
    ("{not json", "broken JSON"),
    ('{"format": "something else", "version": 1}', "not a VAE-GAN Face Explorer session"),
    (json.dumps({"format": "vaegan-explorer-session", "version": SESSION_VERSION + 1}), "newer version"),
    (json.dumps({"format": "vaegan-explorer-session", "version": 1}), "names no model"),
    (json.dumps({"format": "vaegan-explorer-session", "version": 1, "model": {"path": "m", "sha256": "x"},
                 "faces": {"a": {"name": "a", "latent": [1.0, "NaN"]}}}), "no valid latent"),
    (json.dumps({"format": "vaegan-explorer-session", "version": 1, "model": {"path": "m", "sha256": "x"},
                 "faces": {"a": {"name": "a", "latent": [1.0, 2.0]}, "b": {"name": "b", "latent": [1.0]}}}),
     "latent of size 1"),
    ("[" * 100_000 + "]" * 100_000, "not a session file"),
])
def test_a_bad_session_file_is_one_line_naming_it(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.vaegan-session"
    path.write_text(content)
    with pytest.raises(SessionError) as caught:
        load_session(path)
    message = str(caught.value)
    assert problem in message and str(path) in message and "\n" not in message


def test_saving_over_a_session_on_a_failing_disk_keeps_the_old_one(tmp_path: Path, model_file: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_session(_session(model_file), tmp_path / "s.vaegan-session")
    before = path.read_bytes()
    monkeypatch.setattr("os.fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError):
        save_session(Session(str(model_file), "changed"), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir() if p.is_file()] == [path.name]
