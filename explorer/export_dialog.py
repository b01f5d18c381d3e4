"""File ▸ Export: the current image, a reconstruction grid or a grid of samples, as PNG or JPEG."""
from __future__ import annotations

import enum
from pathlib import Path

import torch
from PIL import Image
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QMessageBox, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from core.api import Model
from core.export import make_grid, save_image, tensor_to_pil
from core.latent import DEFAULT_SAMPLE_TEMPERATURE
from explorer.settings import export_folder, remember_export_folder
from explorer.widgets import ImageView, confirm_replace, start_worker

PAIRS_PER_ROW = 8
FILE_FILTERS = "PNG image (*.png);;JPEG image (*.jpg *.jpeg)"


class ExportKind(enum.Enum):
    CURRENT = "Current image"
    RECONSTRUCTIONS = "Reconstruction grid"
    SAMPLES = "Samples grid"


def reconstruction_grid(pairs: list[tuple[torch.Tensor, torch.Tensor]], per_row: int = PAIRS_PER_ROW) -> Image.Image:
    """Inputs above their reconstructions, `per_row` pairs per band (the paper's figure layout)."""
    columns = min(len(pairs), per_row)
    blank = torch.ones_like(pairs[0][0])
    rows = []
    for start in range(0, len(pairs), columns):
        band = pairs[start:start + columns]
        band += [(blank, blank)] * (columns - len(band))
        rows += [torch.stack([p[0] for p in band]), torch.stack([p[1] for p in band])]
    return make_grid(torch.cat(rows), columns)


def samples_grid(model: Model, rows: int, columns: int, temperature: float, seed: int) -> Image.Image:
    _, images = model.sample(rows * columns, temperature, seed)
    return make_grid(images, columns)


class ExportDialog(QDialog):
    """Choose what to export and how big; `save_to` writes it, asking before it replaces a file."""

    def __init__(self, model: Model, kind: ExportKind, current: torch.Tensor | None,
                 pairs: list[tuple[torch.Tensor, torch.Tensor]], settings: QSettings,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.model, self.current, self.pairs, self.settings = model, current, pairs, settings
        self.image: Image.Image | None = None
        self.saved_path: Path | None = None
        self._request = 0
        self._refresh_timer = QTimer(self, singleShot=True, interval=150)
        self._refresh_timer.timeout.connect(self.refresh)
        self._build_ui()
        self.kind.setCurrentText(kind.value)
        self.refresh()

    # ----- UI -----
    def _build_ui(self) -> None:
        self.kind = QComboBox(toolTip="What to export")
        self.kind.addItems([k.value for k in ExportKind])
        self.rows = QSpinBox(minimum=1, maximum=16, value=4, toolTip="Rows of random faces")
        self.columns = QSpinBox(minimum=1, maximum=16, value=6, toolTip="Columns of random faces")
        self.temperature = QDoubleSpinBox(minimum=0.0, maximum=2.0, singleStep=0.05, decimals=2,
                                          value=DEFAULT_SAMPLE_TEMPERATURE,
                                          toolTip="Spread of the latent samples: below 1 gives more typical, "
                                                  "cleaner faces; above 1 more unusual ones")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=1, toolTip="The same seed draws the same faces")
        reseed = QPushButton("New seed", toolTip="Draw different faces")
        reseed.clicked.connect(lambda: self.seed.setValue(int(torch.randint(0, 2**31 - 1, ()).item())))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(reseed)
        self.scale = QSpinBox(minimum=1, maximum=8, value=int(self.settings.value("export/scale", 4)), suffix="×",
                              toolTip="Enlarge the exported picture by this whole factor")
        self.upscaling = QComboBox(toolTip="Smooth: soft, photo-like enlargement. Crisp: square pixels")
        self.upscaling.addItems(["smooth", "crisp"])
        self.upscaling.setCurrentText(str(self.settings.value("export/upscaling", "smooth")))
        self.size_label = QLabel(toolTip="Pixel size of the file that will be written")
        self.preview = ImageView("Preparing preview…", min_side=220)

        self.form = QFormLayout()
        for label, field in (("Export", self.kind), ("Rows", self.rows), ("Columns", self.columns),
                             ("Temperature", self.temperature), ("Seed", seed_row), ("Scale", self.scale),
                             ("Upscaling", self.upscaling), ("Output size", self.size_label)):
            self.form.addRow(label, field)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setText("Save…")
        self.buttons.accepted.connect(self.choose_file_and_save)
        self.buttons.rejected.connect(self.reject)

        body = QHBoxLayout()
        body.addLayout(self.form)
        body.addWidget(self.preview, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.buttons)
        for spin in (self.rows, self.columns, self.temperature, self.seed):
            spin.valueChanged.connect(self._refresh_timer.start)
        self.kind.currentIndexChanged.connect(self.refresh)
        self.scale.valueChanged.connect(self._update_size_label)
        self.upscaling.currentIndexChanged.connect(lambda: self.preview.set_smooth(self.mode == "smooth"))
        self.preview.set_smooth(self.mode == "smooth")
        self.resize(780, 480)

    @property
    def export_kind(self) -> ExportKind:
        return ExportKind(self.kind.currentText())

    @property
    def mode(self) -> str:
        return self.upscaling.currentText()

    # ----- the picture -----
    def refresh(self) -> None:
        """Rebuild the picture (sampling runs in the background); Save waits for it."""
        kind = self.export_kind
        for field in (self.rows, self.columns, self.temperature, self.seed):
            self.form.setRowVisible(field, kind is ExportKind.SAMPLES)
        self.image = None
        self._set_ready(False)
        self._request += 1
        request = self._request
        if kind is ExportKind.CURRENT and self.current is None:
            return self._unavailable("There is no current image: pick a face in a panel first.")
        if kind is ExportKind.RECONSTRUCTIONS and not self.pairs:
            return self._unavailable("No reconstructions yet: drop pictures on the Reconstruct panel first.")
        build = {ExportKind.CURRENT: lambda: tensor_to_pil(self.current),
                 ExportKind.RECONSTRUCTIONS: lambda: reconstruction_grid(self.pairs)}.get(kind)
        args = (self.model, self.rows.value(), self.columns.value(), self.temperature.value(), self.seed.value())
        start_worker(build or (lambda: samples_grid(*args)), on_result=lambda image: self._show(request, image),
                     on_error=lambda exc: self._unavailable(f"Could not build the picture: {exc}"))

    def _show(self, request: int, image: Image.Image) -> None:
        if request != self._request:
            return
        self.image = image
        self.preview.set_image(image)
        self._update_size_label()
        self._set_ready(True)

    def _unavailable(self, message: str) -> None:
        self.preview.set_image(None)
        self.preview.set_placeholder(message)
        self.size_label.setText("—")

    def _set_ready(self, ready: bool) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(ready)

    @property
    def ready(self) -> bool:
        return self.image is not None

    def _update_size_label(self) -> None:
        if self.image is not None:
            scale = self.scale.value()
            self.size_label.setText(f"{self.image.width * scale} × {self.image.height * scale} px")

    # ----- saving -----
    def choose_file_and_save(self) -> None:
        folder = export_folder(self.settings)
        name = self.export_kind.value.lower().replace(" ", "_") + ".png"
        path, _ = QFileDialog.getSaveFileName(self, "Export picture", str(folder / name), FILE_FILTERS,
                                              options=QFileDialog.Option.DontConfirmOverwrite)
        if path and self.save_to(Path(path)):
            self.accept()

    def save_to(self, path: Path) -> bool:
        """Write the picture; an existing file is replaced only after the user says so."""
        if self.image is None:
            return False
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            path = path.with_suffix(".png")
        replace = path.exists()
        if replace and not confirm_replace(self, f"{path.name} already exists. Replace it?"):
            return False
        try:
            self.saved_path = save_image(self.image, path, scale=self.scale.value(), mode=self.mode,
                                         overwrite=replace)
        except (OSError, ValueError) as error:
            QMessageBox.warning(self, "Could not save", f"{path}: {error}")
            return False
        remember_export_folder(self.settings, path.parent)
        for key, value in (("export/scale", self.scale.value()), ("export/upscaling", self.mode)):
            self.settings.setValue(key, value)
        return True
