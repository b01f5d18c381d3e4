"""Session files: what a user found in the explorer, saved as small versioned JSON.

A session names its model by path and SHA-256 (so a moved model can be found again, and a different file with
the same name is not mistaken for it), holds faces as latents with their sources (paths, never pixels), the
bookmarks, and each panel's own state as plain JSON. Reading validates everything before anything is used: a
corrupt, foreign or newer file is one line naming the file."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from core.checkpoint import write_text_atomically

SESSION_FORMAT = "vaegan-explorer-session"
SESSION_VERSION = 1
SESSION_SUFFIX = ".vaegan-session"
MAX_SESSION_BYTES = 64 * 1024 * 1024
"""Far above any real session (a face is about 3 KB); a larger file is refused before it is read."""


MAX_FACE_INDEX = 10_000
"""Faces of one photo a session may refer to (far above any real photo)."""


class SessionError(ValueError):
    """A session file that cannot be read: the message is one line naming the file."""


@dataclass
class SessionFace:
    """A face by its latent: `source` says where it came from (a path, "attributes"...), if anywhere.

    A face of a photo also names the photo and which of its faces it is (so its edit can be pasted back), and
    whether its latent is the face as fitted (`pivot`) rather than an edit of it: the fitted decoder is not
    stored (megabytes), it is tuned again on the pivots when the session is opened."""

    name: str
    latent: torch.Tensor
    source: str | None = None
    photo: str | None = None
    face_index: int = 0
    pivot: bool = False

    def to_json(self) -> dict[str, Any]:
        data = {"name": self.name, "latent": [float(v) for v in self.latent.flatten()], "source": self.source}
        if self.photo is not None:
            data |= {"photo": self.photo, "face": self.face_index, "pivot": self.pivot}
        return data


@dataclass
class Session:
    model_path: str
    model_sha256: str
    faces: dict[str, SessionFace] = field(default_factory=dict)
    """Faces the panels refer to by key (e.g. "current", "endpoint 2")."""
    bookmarks: list[SessionFace] = field(default_factory=list)
    panels: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each panel's own settings and state, as plain JSON values."""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def session_json(session: Session) -> dict[str, Any]:
    return {"format": SESSION_FORMAT, "version": SESSION_VERSION,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": {"path": session.model_path, "sha256": session.model_sha256},
            "faces": {key: face.to_json() for key, face in session.faces.items()},
            "bookmarks": [face.to_json() for face in session.bookmarks],
            "panels": session.panels}


def save_session(session: Session, path: str | Path) -> Path:
    """Write atomically (a crash or a full disk leaves the previous file whole)."""
    return write_text_atomically(Path(path).expanduser(), json.dumps(session_json(session), indent=1, allow_nan=False))


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_SESSION_BYTES:
            raise SessionError(f"{path}: too large for a session file ({path.stat().st_size:,} bytes)")
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SessionError(f"{path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SessionError(f"{path}: not a session file (not text)") from exc
    except json.JSONDecodeError as exc:
        raise SessionError(f"{path}: not a session file (broken JSON at line {exc.lineno})") from exc
    except RecursionError as exc:
        raise SessionError(f"{path}: not a session file (nested too deeply)") from exc


def _expect(condition: bool, path: Path, problem: str) -> None:
    if not condition:
        raise SessionError(f"{path}: {problem}")


def _face(data: Any, path: Path, where: str, latent_dim: int | None) -> SessionFace:
    _expect(isinstance(data, dict) and isinstance(data.get("name"), str), path, f"{where} has no name")
    latent = data.get("latent")
    _expect(isinstance(latent, list) and len(latent) > 0
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in latent),
            path, f"{where} has no valid latent (a list of finite numbers)")
    _expect(latent_dim is None or len(latent) == latent_dim, path,
            f"{where} has a latent of size {len(latent)}, the others {latent_dim}")
    source, photo, index, pivot = data.get("source"), data.get("photo"), data.get("face", 0), data.get("pivot", False)
    _expect(source is None or isinstance(source, str), path, f"{where} has a source that is not a path")
    _expect(photo is None or isinstance(photo, str), path, f"{where} has a photo that is not a path")
    _expect(isinstance(index, int) and not isinstance(index, bool) and 0 <= index < MAX_FACE_INDEX, path,
            f"{where} has a face number that is not a whole number from 0 to {MAX_FACE_INDEX - 1}")
    _expect(isinstance(pivot, bool), path, f"{where} says neither true nor false of being fitted")
    return SessionFace(data["name"], torch.tensor(latent, dtype=torch.float32), source, photo, index, pivot)


def load_session(path: str | Path) -> Session:
    """Read and validate a session file; SessionError (one line naming the file) if it cannot be used."""
    path = Path(path).expanduser()
    data = _read_json(path)
    _expect(isinstance(data, dict) and data.get("format") == SESSION_FORMAT, path,
            "not a VAE-GAN Face Explorer session")
    version = data.get("version")
    _expect(isinstance(version, int) and not isinstance(version, bool), path, "the session has no format version")
    _expect(version <= SESSION_VERSION, path,
            f"saved by a newer version of the app (session format {version}; this one reads up to {SESSION_VERSION})")
    model = data.get("model")
    _expect(isinstance(model, dict) and isinstance(model.get("path"), str) and isinstance(model.get("sha256"), str),
            path, "the session names no model")
    faces, bookmarks, panels = data.get("faces", {}), data.get("bookmarks", []), data.get("panels", {})
    _expect(isinstance(faces, dict) and isinstance(bookmarks, list) and isinstance(panels, dict)
            and all(isinstance(v, dict) for v in panels.values()), path, "the session's parts have the wrong types")
    latent_dim: int | None = None
    session = Session(model["path"], model["sha256"], panels=panels)
    for key, face in faces.items():
        session.faces[key] = _face(face, path, f"face {key!r}", latent_dim)
        latent_dim = session.faces[key].latent.numel()
    for index, face in enumerate(bookmarks):
        session.bookmarks.append(_face(face, path, f"bookmark {index + 1}", latent_dim))
        latent_dim = session.bookmarks[-1].latent.numel()
    return session


def find_session_model(session: Session, session_path: str | Path) -> Path | None:
    """The session's model file: where it was saved from, else a file of the same name beside the session,
    as long as its checksum matches; None when neither is there (the app then asks the user)."""
    recorded = Path(session.model_path)
    for candidate in (recorded, Path(session_path).expanduser().parent / recorded.name):
        if candidate.is_file() and file_sha256(candidate) == session.model_sha256:
            return candidate
    return None
