"""The main window: panels as tabs, menus, model loading, persistence of window state."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMenu, QMessageBox, QStackedWidget, QTabWidget

from core.api import Model, load_model
from core.compare import check_comparable, comparison_labels, twin_file, twin_path
from core.errors import one_line
from explorer.attribute_panel import AttributePanel
from explorer.desktop_entry import install_entry
from explorer.empty_state import EmptyState
from explorer.export_dialog import ExportDialog, ExportKind
from explorer.icon import app_icon
from explorer.interpolation_panel import InterpolationPanel
from explorer.map_panel import MapPanel
from explorer.panels import PANELS
from explorer.reconstruction_panel import ReconstructionPanel
from core.data import IMAGE_EXTENSIONS
from explorer.selection import PictureFaces, Selection, face_image, fitting_pictures
from explorer.settings import (add_recent_file, app_settings, compare_choice, folder_setting, recent_files,
                                remember_compare_choice, remember_theme_choice, theme_choice)
from explorer.shortcuts_dialog import ShortcutsDialog
from explorer.theme import SYSTEM_THEME, THEMES, Theme
from explorer.training_panel import TrainingPanel
from explorer.sessions import BookmarksDock, SessionKeeper
from explorer.undo import UndoStack
from explorer.widgets import Panel, WorkerBase, start_worker

BUNDLED_MODEL = Path(__file__).resolve().parents[1] / "checkpoints" / "faces64.safetensors"
APP_NAME = "VAE-GAN Face Explorer"
DEFAULT_SIZE = (1280, 800)


PANEL_CLASSES = {"map": MapPanel, "attributes": AttributePanel, "interpolate": InterpolationPanel,
                 "reconstruct": ReconstructionPanel, "train": TrainingPanel}

ABOUT_TEXT = f"""<h2>{APP_NAME}</h2>
<p>Explore what a VAE-GAN learned about faces, or train your own.</p>
<p>The model follows <i>Autoencoding beyond pixels using a learned similarity metric</i> by
Anders Boesen Lindbo Larsen, Søren Kaae Sønderby, Hugo Larochelle and Ole Winther (ICML 2016):
a variational autoencoder whose reconstruction error is measured in the feature space of a
GAN discriminator, which gives sharper faces than pixel-wise errors.</p>
<p><b>Data licence.</b> The bundled model was trained on CelebA (Liu, Luo, Wang and Tang, ICCV 2015),
which is available for non-commercial research purposes only; faces the model generates inherit
that restriction. See the CelebA agreement at mmlab.ie.cuhk.edu.hk/projects/CelebA.html.</p>"""


def recent_label(path: str | Path, depth: int = 1) -> str:
    """A recent model as 'name — folder' with the last `depth` folders: runs all save checkpoint.safetensors, and
    two faces64 files differ only by where they are. A run folder is just its name at depth 0."""
    path = Path(path)
    name = path.stem if path.suffix else path.name
    return f"{name} — {Path(*path.parent.parts[-depth:])}" if depth else name


def recent_labels(paths: list[str]) -> list[str]:
    """recent_label of each path, with more of the folder where two would read the same (up to the full path)."""
    depths = [1 if Path(path).suffix else 0 for path in paths]
    while True:
        labels = [recent_label(path, depth) for path, depth in zip(paths, depths)]
        clashing = [i for i, label in enumerate(labels)
                    if labels.count(label) > 1 and depths[i] < len(Path(paths[i]).parent.parts)]
        if not clashing:
            return labels
        for i in clashing:
            depths[i] += 1


STATUS_MARGIN = 40
"""Pixels kept free between a status message and the model summary beside it."""


class MainWindow(QMainWindow):
    def __init__(self, model_path: str | Path | None = None, persist: bool = True) -> None:
        super().__init__()
        self.persist = persist
        self.settings = app_settings()
        self.undo_stack = UndoStack(self)
        self.selection = Selection(self, self.undo_stack)
        self.fitting_pictures: WorkerBase | None = None
        """The fit of dropped pictures under way, if any."""
        self.loading_path: Path | None = None  # the model file being opened, if one is
        self.compare_request: Path | None = None
        """The comparison model asked for last (a load finishing after another choice is dropped)."""
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(app_icon())
        self.theme = Theme(theme_choice(self.settings), self)
        self.panels: dict[str, Panel] = {spec.key: PANEL_CLASSES[spec.key](self.selection) for spec in PANELS}
        self.tabs = QTabWidget(documentMode=True)
        for spec in PANELS:
            index = self.tabs.addTab(self.panels[spec.key], spec.title)
            self.tabs.setTabToolTip(index, spec.tooltip)
        self.empty_state = EmptyState()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_state)
        self.stack.addWidget(self.tabs)
        self.setCentralWidget(self.stack)
        self.model_info = QLabel("No model open")
        self.model_info.setToolTip("The open model: resolution, kind, latent size, training images, attributes")
        self.statusBar().addPermanentWidget(self.model_info)
        self.bookmarks = BookmarksDock(self.selection, self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.bookmarks)
        self.bookmarks.hide()
        self.sessions = SessionKeeper(self, autosave=persist)
        self._build_menus()
        self._connect_panels()
        self._restore_window_state()
        self.setAcceptDrops(True)
        self.open_model(model_path or BUNDLED_MODEL, startup=True)
        if persist:
            self.sessions.offer_restore()
        self.compare_with(compare_choice(self.settings))

    @property
    def loading(self) -> bool:
        return self.loading_path is not None

    # ----- pictures dropped on a panel that has no drop target of its own -----
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() and self.selection.model is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        pictures = [p for p in paths if p.suffix.lower() in IMAGE_EXTENSIONS]
        if pictures and self.selection.model is not None:
            event.acceptProposedAction()
            self.use_pictures(pictures, self.current_panel_key())

    def use_pictures(self, pictures: list[Path], panel: str) -> None:
        """Faces of dropped pictures, aligned and fitted in the background (progress in the status bar), go where
        the user dropped them: the face to edit (Attributes), the endpoints (Interpolate) or stars on the map.
        Opening another model or closing the window stops the fit."""
        model = self.selection.model
        self.stop_fitting_pictures()

        def deliver(result: PictureFaces) -> None:
            if self.fitting_pictures is None:
                return   # stopped meanwhile
            self.fitting_pictures = None
            if result.faces and model is self.selection.model:
                {"attributes": lambda: self.selection.select_face(result.faces[0]),
                 "interpolate": lambda: self.selection.add_endpoints(result.faces),
                 "map": lambda: self.selection.add_faces(result.faces)}.get(panel, lambda: None)()
            self.show_status("; ".join(result.problems) if result.problems else "")

        self.fitting_pictures = start_worker(
            fitting_pictures, model, pictures, on_result=deliver,
            on_progress=lambda share: self.statusBar().showMessage(f"Fitting the faces… {share:.0%}"),
            on_error=lambda error: self.show_status(f"Cannot use: {one_line(error)}"))

    def stop_fitting_pictures(self) -> None:
        if self.fitting_pictures is not None:
            self.fitting_pictures.quit()
            self.fitting_pictures = None

    # ----- construction -----
    def _connect_panels(self) -> None:
        self.selection.modelChanged.connect(self._on_model_changed)
        self.empty_state.openRequested.connect(self.choose_model)
        self.empty_state.trainRequested.connect(lambda: self.show_panel("train"))
        self.tabs.currentChanged.connect(self._sync_view_menu)
        for panel in self.panels.values():
            panel.navigate.connect(self.show_panel)
            panel.statusMessage.connect(self.show_status)
        self.panels["train"].openModelRequested.connect(self.open_model)
        self.bookmarks.navigate.connect(self.show_panel)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._add_action(file_menu, "&Open model…", self.choose_model, QKeySequence.StandardKey.Open,
                         "Open a model file (.safetensors) or a training run folder")
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.setToolTipsVisible(True)
        self._fill_recent_menu()
        export_menu = file_menu.addMenu("&Export")
        export_menu.setToolTipsVisible(True)
        self._add_action(export_menu, "Current &image…", lambda: self.export(ExportKind.CURRENT),
                         QKeySequence("Ctrl+E"), "Save the face you are looking at as PNG or JPEG")
        self._add_action(export_menu, "&Reconstruction grid…", lambda: self.export(ExportKind.RECONSTRUCTIONS),
                         None, "Save the Reconstruct panel's inputs above their reconstructions")
        self._add_action(export_menu, "&Samples grid…", lambda: self.export(ExportKind.SAMPLES),
                         None, "Save a grid of random faces, drawn from where the training faces encode")
        file_menu.addSeparator()
        self._add_action(file_menu, "Open &session…", self.sessions.open_dialog, QKeySequence("Ctrl+Shift+O"),
                         "Restore saved faces, edits, bookmarks, map selections and paths")
        self._add_action(file_menu, "Sa&ve session…", self.sessions.save_dialog, QKeySequence.StandardKey.Save,
                         "Save the faces, edits, bookmarks, map selection and paths (not the pictures) to a file")
        file_menu.addSeparator()
        self._add_action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit, "Close the app")

        edit_menu = self._build_edit_menu(bar.addMenu("&Edit"))

        view_menu = bar.addMenu("&View")
        self.view_group = QActionGroup(self)
        for number, spec in enumerate(PANELS, start=1):
            action = self._add_action(view_menu, spec.title, lambda _=False, k=spec.key: self.show_panel(k),
                                      QKeySequence(f"Ctrl+{number}"), spec.tooltip)
            action.setCheckable(True)
            action.setData(spec.key)
            self.view_group.addAction(action)
        view_menu.addSeparator()
        self._build_compare_menu(view_menu.addMenu("&Compare with"))
        self._build_theme_menu(view_menu.addMenu("&Theme"))
        view_menu.addSeparator()
        self._add_action(view_menu, "&Bookmark this face", self.bookmark_current_face, QKeySequence("Ctrl+D"),
                         "Keep the face on screen in the Bookmarks list")
        view_menu.addAction(self.bookmarks.toggleViewAction())

        help_menu = bar.addMenu("&Help")
        self._add_action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents,
                         "Every shortcut of the menus and the panels")
        self._add_action(help_menu, f"&About {APP_NAME}", self.show_about, None, "The paper and the data licence")
        if sys.platform.startswith("linux"):
            self._add_action(help_menu, "Add to applications &menu", self.add_to_applications_menu, None,
                             "Create a menu entry so you can start the app from your desktop's menu")
        for menu in (file_menu, edit_menu, view_menu, help_menu):
            menu.setToolTipsVisible(True)

    def _build_edit_menu(self, menu: QMenu) -> QMenu:
        """Undo and Redo, named after the step they take back or again (e.g. "Undo Smiling +1.00")."""
        self.undo_action = self.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for action, tip in ((self.undo_action, "Take back the last change to faces, sliders, endpoints or vectors"),
                            (self.redo_action, "Make the change taken back again")):
            action.setStatusTip(tip)
            menu.addAction(action)
        return menu

    def _build_compare_menu(self, menu) -> None:
        """The second model shown beside the open one: the bundled model's pixel-VAE twin, any file, or none."""
        menu.setToolTipsVisible(True)
        twin = twin_path(BUNDLED_MODEL)
        self.compare_twin_action = self._add_action(
            menu, "Compare with the &pixel VAE", lambda: self.compare_with(twin), None,
            f"Show {twin.name}, the same network trained with a pixel loss, beside the open model" if twin else
            f"{twin_file(BUNDLED_MODEL).name} was not found beside the bundled model")
        self.compare_twin_action.setEnabled(twin is not None)
        self.compare_file_action = self._add_action(menu, "Compare with another model &file…",
                                                    self.choose_comparison, None,
                                                    "Show another model file beside the open model")
        self.compare_off_action = self._add_action(menu, "&Off", lambda: self.compare_with(None), None,
                                                   "Show the open model alone")
        self.compare_group = QActionGroup(self)
        for action in (self.compare_twin_action, self.compare_file_action, self.compare_off_action):
            action.setCheckable(True)
            self.compare_group.addAction(action)
        self.compare_off_action.setChecked(True)

    def _build_theme_menu(self, menu) -> None:
        """Light or dark as the system says, or always one of them."""
        menu.setToolTipsVisible(True)
        group = QActionGroup(self)
        for choice, title in THEMES.items():
            action = self._add_action(menu, title, lambda _=False, c=choice: self.set_theme(c), None,
                                      "Follow the system's light or dark setting" if choice == SYSTEM_THEME else
                                      f"Always use the {choice} palette")
            action.setCheckable(True)
            action.setChecked(choice == self.theme.choice)
            group.addAction(action)

    def set_theme(self, choice: str) -> None:
        remember_theme_choice(self.settings, choice)
        self.theme.choose(choice)

    def _add_action(self, menu, text: str, slot, shortcut, tip: str) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.setToolTip(tip)
        action.setStatusTip(tip)
        return action

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        entries = recent_files(self.settings)
        for path, label in zip(entries, recent_labels(entries)):
            action = self.recent_menu.addAction(label)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_model(p))
        self.recent_menu.setEnabled(bool(entries))

    # ----- models -----
    def choose_model(self) -> None:
        start = folder_setting(self.settings, "models/folder", BUNDLED_MODEL.parent)
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start,
                                              "VAE-GAN models (*.safetensors);;All files (*)")
        if path:
            self.settings.setValue("models/folder", str(Path(path).parent))
            self.open_model(path)

    def open_model(self, path: str | Path, startup: bool = False) -> None:
        """Load in the background; on failure keep the current model (and explain why)."""
        path = Path(path)
        if startup and not path.exists():
            self.empty_state.show_no_model(f"The bundled model {path.name} was not found.")
            self.show_status(f"No model at {path}")
            return
        self.loading_path = path
        if self.selection.model is None:
            self.empty_state.show_loading(path.name)
        self.show_status(f"Opening {path}…")
        start_worker(load_model, path, on_result=lambda model: self._model_loaded(path, model),
                     on_error=lambda exc: self._model_failed(path, exc, startup))

    def _model_loaded(self, path: Path, model: Model) -> None:
        if path != self.loading_path:  # a model asked for later replaces this one
            return
        self.loading_path = None
        add_recent_file(self.settings, model.path or path)  # a run folder is remembered as its model file
        self._fill_recent_menu()
        self.selection.set_model(model)
        self.show_status(f"Opened {path}")

    # ----- the comparison model -----
    def choose_comparison(self) -> None:
        start = folder_setting(self.settings, "models/folder", BUNDLED_MODEL.parent)
        path, _ = QFileDialog.getOpenFileName(self, "Compare with a model", start,
                                              "VAE-GAN models (*.safetensors);;All files (*)")
        if path:
            self.compare_with(Path(path))
        else:  # cancelled: the menu shows the choice still in force
            self._check_compare_action(self.compare_request)

    def compare_with(self, path: Path | None) -> None:
        """Load `path` in the background as the model shown beside the open one; None turns comparing off."""
        self.compare_request = path
        remember_compare_choice(self.settings, path)
        self._check_compare_action(path)
        if path is None:
            self.selection.set_compare_model(None)
            return
        self.show_status(f"Opening {path.name} to compare with…")
        start_worker(load_model, path, on_result=lambda model: self._comparison_loaded(path, model),
                     on_error=lambda exc: self._comparison_failed(path, exc))

    def _check_compare_action(self, path: Path | None) -> None:
        twin = twin_path(BUNDLED_MODEL)
        action = (self.compare_off_action if path is None else
                  self.compare_twin_action if twin is not None and path == twin else self.compare_file_action)
        action.setChecked(True)

    def _comparison_loaded(self, path: Path, model: Model) -> None:
        if path != self.compare_request:
            return
        self.selection.set_compare_model(model)
        self._say_comparison()

    def _comparison_failed(self, path: Path, exc: Exception) -> None:
        if path == self.compare_request:
            self.compare_with(None)
            QMessageBox.warning(self, "Cannot compare with this model", one_line(exc))

    def _say_comparison(self) -> None:
        """The status line: which models are side by side, or why the comparison model cannot be shown."""
        main, other = self.selection.model, self.selection.compare_model
        if main is None or other is None:
            return
        try:
            check_comparable(main, other)
        except ValueError as exc:
            self.show_status(f"Cannot compare: {one_line(exc)}")
            return
        self.show_status("Comparing {} with {}".format(*comparison_labels(main, other)))

    def _model_failed(self, path: Path, exc: Exception, startup: bool) -> None:
        if path != self.loading_path:
            return
        self.loading_path = None
        message = one_line(exc)
        self.show_status(f"Could not open {path.name}")
        if self.selection.model is None:
            self.empty_state.show_no_model(message)
        if not startup:
            QMessageBox.warning(self, "Cannot open model", message)

    def _on_model_changed(self, model: Model | None) -> None:
        self.stop_fitting_pictures()
        if model is None:
            self.model_info.setText("No model open")
            self.stack.setCurrentWidget(self.empty_state)
            return
        self.model_info.setText(model.info_line())
        self._say_comparison()
        self.setWindowTitle(f"{Path(model.path).name if model.path else 'model'} — {APP_NAME}")
        self.stack.setCurrentWidget(self.tabs)

    # ----- panels -----
    def show_panel(self, key: str) -> None:
        self.stack.setCurrentWidget(self.tabs)
        self.tabs.setCurrentWidget(self.panels[key])

    def current_panel_key(self) -> str:
        return PANELS[self.tabs.currentIndex()].key

    def _sync_view_menu(self, index: int) -> None:
        for action in self.view_group.actions():
            action.setChecked(action.data() == PANELS[index].key)

    def show_status(self, text: str) -> None:
        """A message in the status bar for 8 s, elided in the middle to the room left of the model summary (the
        whole text in the status bar's tooltip)."""
        bar = self.statusBar()
        room = bar.width() - self.model_info.sizeHint().width() - STATUS_MARGIN
        bar.setToolTip(text)
        bar.showMessage(bar.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, max(room, 0)), 8000)

    def bookmark_current_face(self) -> None:
        face = self.panels[self.current_panel_key()].current_face()
        if face is None:
            self.show_status("No face to bookmark here: choose or edit a face first")
            return
        self.bookmarks.add(face)
        self.show_status(f"Bookmarked {face.name}")

    # ----- export -----
    def current_image(self) -> torch.Tensor | None:
        """The image of the active panel if it offers one, else the selected face (decoded)."""
        image = self.panels[self.current_panel_key()].current_image()
        face, model = self.selection.current, self.selection.model
        if image is None and face is not None and model is not None:
            image = face_image(model, face)
        return image

    def export(self, kind: ExportKind) -> None:
        if self.selection.model is None:
            QMessageBox.information(self, "Nothing to export", "Open a model first.")
            return
        dialog = ExportDialog(self.selection.model, kind, self.current_image(),
                              self.panels["reconstruct"].reconstruction_pairs(), self.settings, self)
        if dialog.exec() and dialog.saved_path:
            self.show_status(f"Saved {dialog.saved_path}")

    # ----- help -----
    def show_about(self) -> None:
        QMessageBox.about(self, f"About {APP_NAME}", ABOUT_TEXT)

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self.menuBar(), {spec.title: self.panels[spec.key] for spec in PANELS}, self).open()

    def add_to_applications_menu(self) -> None:
        try:
            target = install_entry()
        except FileExistsError as exists:
            answer = QMessageBox.question(self, "Replace menu entry?",
                                          f"{exists} already exists and differs from this app's entry. Replace it?")
            if answer != QMessageBox.StandardButton.Yes:
                return
            target = install_entry(replace=True)
        except OSError as error:
            QMessageBox.warning(self, "Could not add the menu entry", str(error))
            return
        self.show_status(f"Added {target}")

    # ----- persistence -----
    def _restore_window_state(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and self.restoreGeometry(geometry):
            self.restoreState(self.settings.value("window/state", QByteArray()))
        else:  # first start: the default size, or the whole screen where that is smaller (a 1024x640 laptop)
            available = self.screen().availableGeometry()
            self.resize(min(DEFAULT_SIZE[0], available.width()), min(DEFAULT_SIZE[1], available.height()))
        keys = [spec.key for spec in PANELS]
        last = str(self.settings.value("window/panel", "attributes"))
        self.tabs.setCurrentIndex(keys.index(last) if last in keys else 0)
        self._sync_view_menu(self.tabs.currentIndex())

    def save_window_state(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/panel", self.current_panel_key())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self.panels["train"].confirm_close():
            event.ignore()
            return
        if self.persist:
            self.save_window_state()
        self.stop_fitting_pictures()
        for panel in self.panels.values():
            panel.stop_background_work()
        self.sessions.stop_restoring()
        self.sessions.closed_cleanly()
        event.accept()
