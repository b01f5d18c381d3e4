"""Sessions and bookmarks: File > Save session / Open session, the Bookmarks dock (Ctrl+D) and the autosave that
offers to restore the work after a crash. The file format is core.session's; the panels say what they keep
(Panel.session_state) and take it back (Panel.restore_session_state)."""
from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PySide6.QtCore import QLockFile, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QGridLayout, QListWidget, QListWidgetItem, QMessageBox,
                               QVBoxLayout, QWidget)

from core.api import Model
from core.data import ImageLoadError
from core.errors import one_line
from core.fit import as_share, on_every_core
from core.photo import PhotoFit, refitting_photo
from core.session import (SESSION_SUFFIX, Session, SessionError, SessionFace, file_sha256, find_session_model,
                          load_session, save_session)
from explorer.selection import FaceItem, Selection, face_image
from explorer.settings import folder_setting
from explorer.widgets import WorkerBase, ask_save_path, push_button, start_worker, to_qimage

if TYPE_CHECKING:
    from explorer.main_window import MainWindow

AUTOSAVE_NAME = f"autosave{SESSION_SUFFIX}"
AUTOSAVE_INTERVAL_MS = 30_000
SESSION_FILTER = f"Explorer sessions (*{SESSION_SUFFIX})"
CURRENT_FACE = "current"
WINDOW_STATE = "window"


def session_face(face: FaceItem) -> SessionFace:
    return SessionFace(face.name, face.latent.detach().float().flatten().cpu(), face.source or None,
                       face.photo_path or None, face.face_index, face.pivot)


def face_item(face: SessionFace, photos: dict[str, PhotoFit]) -> FaceItem:
    """The face as the panels use it; a face of a photo fitted again (`photos`) gets the photo, its crop and the
    tuned decoder back."""
    item = FaceItem(face.name, face.latent, source=face.source or "")
    refit = photos.get(face.photo or "")
    if refit is None or face.face_index >= len(refit.faces):
        return item
    found = refit.faces[face.face_index]
    return replace(item, image=found.pixels.float() / 255 if face.pivot else None, photo=found.original,
                   to_crop=found.to_crop, tuning=refit.fit.tuning or None, face_index=face.face_index,
                   photo_path=face.photo, pivot=face.pivot)


def session_pivots(session: Session) -> dict[str, dict[int, torch.Tensor]]:
    """{photo: {face number: fitted latent}} of every photo a face of the session was cut from (empty when only
    edits of its faces were kept)."""
    photos: dict[str, dict[int, torch.Tensor]] = {}
    for face in [*session.faces.values(), *session.bookmarks]:
        if face.photo is not None:
            pivots = photos.setdefault(face.photo, {})
            if face.pivot:
                pivots[face.face_index] = face.latent
    return photos


def refitting_photos(model: Model, photos: dict[str, dict[int, torch.Tensor]]) -> Generator[float, None, RefitPhotos]:
    """Each photo that is still there fitted again (a generator worker: yields the share done)."""
    result = RefitPhotos({}, [])
    for done, (photo, pivots) in enumerate(photos.items()):
        yield done / len(photos)
        try:
            steps = on_every_core(refitting_photo(model, photo, pivots))
            result.fits[photo] = yield from as_share(steps, done / len(photos), 1 / len(photos))
        except ImageLoadError as error:
            result.missing.append(f"{Path(photo).name}: {error.reason}")
    return result


@dataclass
class RefitPhotos:
    fits: dict[str, PhotoFit]
    missing: list[str]
    """A line for each photo that could not be read again."""


class BookmarksDock(QDockWidget):
    """Named faces kept aside (Ctrl+D adds the face on screen): edit one, or send them to Interpolate as
    endpoints or keyframes. Double-click a name to rename it."""

    navigate = Signal(str)

    def __init__(self, selection: Selection, parent: QWidget | None = None) -> None:
        super().__init__("Bookmarks", parent)
        self.setObjectName("bookmarks")
        self.selection = selection
        self.list = QListWidget(selectionMode=QListWidget.SelectionMode.ExtendedSelection,
                                textElideMode=Qt.TextElideMode.ElideMiddle,
                                horizontalScrollBarPolicy=Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemDoubleClicked.connect(self.list.editItem)
        self.list.itemSelectionChanged.connect(self._refresh_buttons)
        self.edit_button = push_button("Edit", "Edit the chosen face in the Attributes panel", self.edit_chosen)
        self.interpolate_button = push_button("Interpolate", "Add the chosen faces to the Interpolate panel's "
                                              "endpoints, in list order", self.interpolate_chosen)
        self.remove_button = push_button("Remove", "Forget the chosen bookmarks", self.remove_chosen)
        buttons = QGridLayout()   # two rows: the dock stays narrow enough for a 1024-pixel screen
        buttons.addWidget(self.edit_button, 0, 0)
        buttons.addWidget(self.remove_button, 0, 1)
        buttons.addWidget(self.interpolate_button, 1, 0, 1, 2)
        body = QWidget()
        column = QVBoxLayout(body)
        column.addWidget(self.list)
        column.addLayout(buttons)
        self.setWidget(body)
        self._refresh_buttons()

    def add(self, face: FaceItem) -> None:
        model = self.selection.model
        if model is None or face.latent.numel() != model.latent_dim:
            return
        image = face.image if face.image is not None else face_image(model, face)
        item = QListWidgetItem(QIcon(QPixmap.fromImage(to_qimage(image))), face.name)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
        item.setData(Qt.ItemDataRole.UserRole, face)
        item.setToolTip(face.source or face.name)
        self.list.addItem(item)
        self.show()

    def faces(self) -> list[FaceItem]:
        """The bookmarks in list order, with the names the user gave them."""
        return [self._face(self.list.item(row)) for row in range(self.list.count())]

    def set_faces(self, faces: list[FaceItem]) -> None:
        self.list.clear()
        for face in faces:
            self.add(face)

    def chosen(self) -> list[FaceItem]:
        return [self._face(item) for item in sorted(self.list.selectedItems(), key=self.list.row)]

    @staticmethod
    def _face(item: QListWidgetItem) -> FaceItem:
        face: FaceItem = item.data(Qt.ItemDataRole.UserRole)
        return replace(face, name=item.text())

    def edit_chosen(self) -> None:
        chosen = self.chosen()
        if chosen:
            self.selection.select_face(chosen[0])
            self.navigate.emit("attributes")

    def interpolate_chosen(self) -> None:
        chosen = self.chosen()
        if chosen:
            self.selection.add_endpoints(chosen)
            self.navigate.emit("interpolate")

    def remove_chosen(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))

    def _refresh_buttons(self) -> None:
        count = len(self.list.selectedItems())
        self.edit_button.setEnabled(count == 1)
        self.interpolate_button.setEnabled(count >= 1)
        self.remove_button.setEnabled(count >= 1)


class SessionKeeper(QObject):
    """Saves and opens session files for a window, autosaves while a model is open, and offers the autosave
    back at the next start when the app did not close cleanly.

    The autosave belongs to the instance holding its lock file (a dead process's lock is stale and taken over): a
    second instance started meanwhile neither offers the first one's autosave nor writes over it."""

    def __init__(self, window: MainWindow, autosave: bool) -> None:
        super().__init__(window)
        self.window = window
        self.pending: tuple[Session, Path] | None = None
        """A session and its model file, waiting for that model to finish loading."""
        self.autosave_path = Path(window.settings.fileName()).parent / AUTOSAVE_NAME
        self.lock = QLockFile(str(self.autosave_path.with_suffix(".lock")))
        self.lock.setStaleLockTime(0)  # a lock is stale only when its process is gone, however long it ran
        self.guarding = autosave and self._take_lock()
        """Whether this instance keeps the autosave (False without autosave or while another instance does)."""
        self._known_checksum: tuple[tuple[str, int, int] | None, str] = (None, "")
        self._autosave_timer = QTimer(self, interval=AUTOSAVE_INTERVAL_MS)
        self._autosave_timer.timeout.connect(self.autosave)
        self._restoring: WorkerBase | None = None
        """Fitting a session's photos again before it is restored."""
        if self.guarding:
            self._autosave_timer.start()
        window.selection.modelChanged.connect(self._model_changed)

    # ----- what a session holds -----
    def current_session(self) -> Session:
        model = self.window.selection.model
        assert model is not None and model.path is not None
        session = Session(str(Path(model.path).resolve()), self._checksum(Path(model.path)))
        current = self.window.selection.current
        if current is not None:
            session.faces[CURRENT_FACE] = session_face(current)
        session.bookmarks = [session_face(face) for face in self.window.bookmarks.faces()]
        for key, panel in self.window.panels.items():
            state, faces = panel.session_state()
            session.panels[key] = state
            session.faces.update({f"{key}/{index}": session_face(face) for index, face in enumerate(faces)})
        session.panels[WINDOW_STATE] = {"panel": self.window.current_panel_key()}
        return session

    def _checksum(self, path: Path) -> str:
        """The model file's SHA-256, read again only when the file changed (the autosave asks every 30 s)."""
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if self._known_checksum[0] != key:
            self._known_checksum = key, file_sha256(path)
        return self._known_checksum[1]

    def apply(self, session: Session) -> None:
        """Fit the faces of the session's photos again (in the background), then give every panel its saved
        state; the open model must be the session's."""
        self.stop_restoring()
        photos = session_pivots(session)
        if not photos:
            self._apply(session, RefitPhotos({}, []))
            return
        model = self.window.selection.model
        self.window.statusBar().showMessage("Restoring the session: fitting its photos' faces…")
        self._restoring = start_worker(
            refitting_photos, model, photos,
            on_progress=lambda share: self.window.statusBar().showMessage(
                f"Restoring the session: fitting its photos' faces… {share:.0%}"),
            on_result=lambda refit: self._apply(session, refit) if self._restoring is not None else None,
            on_error=lambda exc: self.window.show_status(f"Could not restore the session: {one_line(exc)}"))

    def stop_restoring(self) -> None:
        if self._restoring is not None:
            self._restoring.quit()
            self._restoring = None

    def _apply(self, session: Session, refit: RefitPhotos) -> None:
        self._restoring = None
        window = self.window
        if CURRENT_FACE in session.faces:
            window.selection.select_face(face_item(session.faces[CURRENT_FACE], refit.fits))
        window.bookmarks.set_faces([face_item(face, refit.fits) for face in session.bookmarks])
        for key, panel in window.panels.items():
            faces = [face_item(face, refit.fits) for name, face in session.faces.items() if name.startswith(f"{key}/")]
            panel.restore_session_state(_dict(session.panels.get(key)), faces)
        panel_key = _dict(session.panels.get(WINDOW_STATE)).get("panel")
        if panel_key in window.panels:
            window.show_panel(panel_key)
        window.undo_stack.clear()   # the restored state is where undo starts
        missing = f"; photos no longer readable: {', '.join(refit.missing)}" if refit.missing else ""
        window.show_status(f"Session restored{missing}")

    # ----- files -----
    def save_dialog(self) -> None:
        if self._no_model():
            return
        start = Path(folder_setting(self.window.settings, "sessions/folder")) / f"explorer{SESSION_SUFFIX}"
        path = ask_save_path(self.window, "Save session", start, {SESSION_SUFFIX: SESSION_FILTER})
        if path is not None:
            self.window.settings.setValue("sessions/folder", str(path.parent))
            self.save(path)

    def save(self, path: Path) -> bool:
        try:
            save_session(self.current_session(), path)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self.window, "Could not save the session", one_line(exc))
            return False
        self.window.show_status(f"Saved session {path}")
        return True

    def open_dialog(self) -> None:
        start = folder_setting(self.window.settings, "sessions/folder")
        path, _ = QFileDialog.getOpenFileName(self.window, "Open session", start, f"{SESSION_FILTER};;All files (*)")
        if path:
            self.window.settings.setValue("sessions/folder", str(Path(path).parent))
            self.open(Path(path))

    def open(self, path: Path) -> bool:
        """Read the session, find its model (asking where it went when it moved), then restore everything."""
        try:
            session = load_session(path)
        except SessionError as exc:
            QMessageBox.warning(self.window, "Cannot open the session", str(exc))
            return False
        model_path = find_session_model(session, path) or self._ask_for_model(session)
        if model_path is None:
            return False
        if _is_file(self.window.selection.model, model_path):
            self.apply(session)
        else:
            self.pending = session, model_path
            if self.window.loading_path is None or self.window.loading_path.resolve() != model_path.resolve():
                self.window.open_model(model_path)
        return True

    def _ask_for_model(self, session: Session) -> Path | None:
        name = Path(session.model_path).name
        QMessageBox.information(self.window, "Where is the model?",
                                f"The session's model {name} is not where it was saved from. Choose the file.")
        chosen, _ = QFileDialog.getOpenFileName(self.window, f"Where is {name}?", str(Path.home()),
                                                "VAE-GAN models (*.safetensors);;All files (*)")
        if not chosen:
            return None
        if file_sha256(chosen) != session.model_sha256:
            answer = QMessageBox.question(self.window, "A different model",
                                          f"{Path(chosen).name} is not the file the session was saved with: faces "
                                          "will look different. Use it anyway?")
            if answer != QMessageBox.StandardButton.Yes:
                return None
        return Path(chosen)

    def _model_changed(self, model: Model | None) -> None:
        if self.pending is not None and _is_file(model, self.pending[1]):
            session, self.pending = self.pending[0], None
            # after the panels have set themselves up for the model, outside that setting-up (which undo ignores)
            QTimer.singleShot(0, self, lambda: self.apply(session))
            return
        bookmarks = self.window.bookmarks.faces()
        if bookmarks and (model is None or bookmarks[0].latent.numel() != model.latent_dim):
            self.window.bookmarks.set_faces([])
            self.window.show_status("Bookmarks cleared: they do not fit the model now open")

    def _no_model(self) -> bool:
        model = self.window.selection.model
        if model is None or model.path is None:
            QMessageBox.information(self.window, "Nothing to save", "Open a model first.")
            return True
        return False

    # ----- crash guard -----
    def _take_lock(self) -> bool:
        self.autosave_path.parent.mkdir(parents=True, exist_ok=True)
        return self.lock.tryLock(0)

    def autosave(self) -> None:
        model = self.window.selection.model
        if not self.guarding or model is None or model.path is None or self.pending is not None:
            return
        try:
            save_session(self.current_session(), self.autosave_path)
        except (OSError, ValueError) as exc:
            self.window.show_status(f"Autosave failed: {one_line(exc)}")

    def closed_cleanly(self) -> None:
        self._autosave_timer.stop()
        if self.guarding:
            self.autosave_path.unlink(missing_ok=True)
            self.lock.unlock()
            self.guarding = False

    def offer_restore(self) -> None:
        """After a crash (an autosave is left), ask whether to restore it; either way it is not asked again."""
        if not self.guarding or not self.autosave_path.is_file():
            return
        answer = QMessageBox.question(self.window, "Restore your work?",
                                      "The explorer did not close properly last time. Restore the faces, edits "
                                      "and bookmarks it had?")
        if answer == QMessageBox.StandardButton.Yes:
            self.open(self.autosave_path)
        else:
            self.autosave_path.unlink(missing_ok=True)


def _is_file(model: Model | None, path: Path) -> bool:
    return model is not None and model.path is not None and Path(model.path).resolve() == path.resolve()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
