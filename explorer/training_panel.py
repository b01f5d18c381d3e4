"""Train: pick a folder of faces, check the crops, set up a run and watch the VAE-GAN learn."""
from __future__ import annotations

import threading
import time
from dataclasses import asdict
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QMessageBox, QProgressBar,
                               QPushButton, QScrollArea, QSpinBox, QSplitter, QToolButton, QVBoxLayout, QWidget)
from superqt.utils import qthrottled

from core.api import Model
from core.checkpoint import validated_meta
from core.data import CROP_MODES, load_image_folder, load_run_data
from core.dataset import FaceDataset
from core.device import available_devices
from core.errors import one_line
from core.model import ModelConfig
from core.options import Option, options_of
from core.pipeline import carries_vectors, inheritable_vector_count, model_label, vector_ancestor
from core.schema import MODEL_CONFIG, TRAIN_CONFIG
from core.trainer import CHECKPOINT_NAME, TrainConfig, Trainer
from explorer.selection import Selection
from explorer.settings import app_settings, folder_setting
from explorer.training_live import LiveView, format_duration
from explorer.training_session import TrainingThread
from explorer.widgets import ERROR_STYLE, Panel, start_worker, wheel_scrolls_form

RUNS_ROOT = Path.home() / "vaegan-runs"
"""Where runs go by default: no space in the path, so it can be pasted into a shell as it is."""
ADVANCED_FIELDS = ("latent_size", "width", "kernel", "model_type", "preview_every", "checkpoint_every")
"""Settings shown only after "More settings": the architecture, the preview and checkpoint rates (and every
generated option control)."""
SHOWN_OPTIONS = ("batch_size", "epochs", "max_steps", "device", "preview_interval", "log_interval",
                 "checkpoint_interval_s", "init_from", "discriminator_warmup_steps")
"""TrainConfig fields this panel sets with its own controls, or derives (the log rate from the preview rate, the
warm-up from Start from); every other field gets a control generated from its type under "More settings"."""
DISCRIMINATOR_WARMUP_STEPS = 200
"""Steps that train only the fresh Dis when a run starts from the open model (it learns its features first),
at most a fifth of the run."""
ARCHITECTURE_FIELDS = ("image_size", "latent_size", "width", "kernel")
CROP_CHOICES = {"auto": ("Automatic", "faces are found and aligned like aligned CelebA (eyes level, at fixed "
                                      "places); aligned CelebA pictures and model-sized squares keep their framing; "
                                      "pictures without a face are skipped"),
                "celeba": ("CelebA face box", "aligned CelebA pictures (178×218) get the standard face box; "
                                              "other shapes the centre square"),
                "center": ("Centre square", "the largest centred square"),
                "face": ("Align faces", "the largest face of every picture, found and aligned; pictures without "
                                        "one are skipped"),
                "none": ("Whole picture", "the whole picture, squashed to a square")}


def default_run_folder(data_folder: Path, root: Path = RUNS_ROOT) -> Path:
    """<root>/<folder name>-<date>, with -2, -3… appended while that run already exists."""
    return free_folder(root / f"{data_folder.name}-{time.strftime('%Y-%m-%d')}")


def free_folder(base: Path) -> Path:
    """`base`, or the first of base-2, base-3… that does not exist yet."""
    candidate, number = base, 2
    while candidate.exists():
        candidate, number = base.with_name(f"{base.name}-{number}"), number + 1
    return candidate


OPTION_LABELS = {"lr": "Learning rate", "beta1": "Adam β₁", "kl_weight": "KL weight", "num_threads": "CPU threads",
                 "ema_decay": "EMA decay", "r1_weight": "R1 weight",
                 "lowpass_sigma": "Low-pass σ"}
"""Labels that are not the field's name in words (acronyms); any other option is labelled by its name."""


def option_label(name: str) -> str:
    return OPTION_LABELS.get(name, name.replace("_", " ").capitalize())


def option_control(option: Option) -> QWidget:
    """A control for a TrainConfig field, chosen by its type and set to its default; its docstring is the tooltip.
    An optional number shows 0 as "default" (None: the trainer decides)."""
    tip = option.help[:1].upper() + option.help[1:]
    if option.kind is bool:
        return QCheckBox(checked=option.default, toolTip=tip)
    if option.kind is int:
        return QSpinBox(minimum=0, maximum=10**6, value=option.default or 0, toolTip=tip,
                        specialValueText="default" if option.optional else "")
    if option.kind is float:
        return QDoubleSpinBox(minimum=0.0, maximum=1e3, decimals=6, value=option.default or 0.0, toolTip=tip,
                              stepType=QAbstractSpinBox.StepType.AdaptiveDecimalStepType,
                              specialValueText="default" if option.optional else "")
    return QLineEdit(option.default or "", toolTip=tip)


def control_value(option: Option, control: QWidget) -> object:
    if isinstance(control, QCheckBox):
        return control.isChecked()
    if isinstance(control, QLineEdit):
        return control.text() or (None if option.optional else "")
    return None if option.optional and control.value() == 0 else control.value()


def prepare_resume(run_dir: Path, progress, cancel) -> tuple[dict, FaceDataset]:
    """The run's saved metadata and its training data, reloaded from the folder it was trained on."""
    _, meta, _ = validated_meta(run_dir / CHECKPOINT_NAME, training=True)
    dataset = load_run_data(meta, progress=progress, cancel=cancel)
    return meta, dataset


class TrainingPanel(Panel):
    openModelRequested = Signal(str)
    _scanProgress = Signal(int, int)  # (done, total) from the scanning worker's thread

    def __init__(self, selection: Selection, parent: QWidget | None = None) -> None:
        super().__init__(selection, parent)
        self.settings = app_settings()
        self.dataset: FaceDataset | None = None
        self.thread: TrainingThread | None = None
        self.result_path: Path | None = None
        self._scan_cancel = threading.Event()
        self._scan_request: object = None
        """The scan under way, as a plain token (see ReconstructionItem.request): only its result is used."""
        self._show_scan_progress_throttled = qthrottled(self._show_scan_progress, timeout=100, parent=self)
        self._scanProgress.connect(self._show_scan_progress_throttled)
        self.setAcceptDrops(True)
        self.live = LiveView()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_controls())
        splitter.addWidget(self.live)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([370, 1000])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        self._update_controls()

    # ----- UI -----
    def _build_controls(self) -> QWidget:
        column = QVBoxLayout()
        column.addWidget(self._data_group())
        column.addWidget(self._settings_group())
        column.addWidget(self._run_group())
        column.addStretch(1)
        inner = QWidget()
        inner.setLayout(column)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)   # the column fits its width
        scroll.setWidget(inner)
        scroll.setMinimumWidth(370)
        wheel_scrolls_form(scroll)
        return scroll

    def _data_group(self) -> QGroupBox:
        box = QGroupBox("Face pictures")
        self.folder_edit = QLineEdit(placeholderText="Choose or drop a folder of face pictures", readOnly=True)
        choose = QPushButton("Choose…", toolTip="Pick a folder; its sub-folders are included")
        choose.clicked.connect(self.choose_folder)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(choose)
        self.scan_status = QLabel("Drop a folder here or click Choose…", wordWrap=True)
        self.scan_progress = QProgressBar(visible=False, textVisible=True)
        self.skipped_list = QListWidget(visible=False, toolTip="Files that will not be used, and why")
        self.skipped_list.setMaximumHeight(80)
        layout = QVBoxLayout(box)
        layout.addLayout(row)
        layout.addWidget(self.scan_status)
        layout.addWidget(self.scan_progress)
        layout.addWidget(self.skipped_list)
        return box

    def _settings_group(self) -> QGroupBox:
        box = QGroupBox("Model and training")
        self.start_from = self._combo([("A new model", None)],
                                      "A new model learns from scratch. The open model lends its Enc and Dec; a new "
                                      "Dis trains alone for the first steps, then all three train on your pictures. "
                                      "On 200 new faces the bundled model was at 86% likeness after 50 steps; a new "
                                      "model had not reached 83% after 900 (README, \"Your own faces on a CPU\")")
        self.image_size = self._combo([("64 × 64", 64), ("128 × 128", 128)],
                                      "Resolution of the faces; 128 takes about four times longer to train")
        self.crop = self._combo([(CROP_CHOICES.get(m, (m,))[0], m) for m in CROP_MODES],
                                "How each picture is cropped to a square:\n" +
                                "\n".join(f"{CROP_CHOICES[m][0]}: {CROP_CHOICES[m][1]}" for m in CROP_MODES
                                          if m in CROP_CHOICES))
        self.epochs = QSpinBox(minimum=1, maximum=10_000, value=20, toolTip="Passes over all pictures")
        self.batch_size = QSpinBox(minimum=2, maximum=1024, value=64, toolTip="Pictures per training step (paper: 64)")
        self.latent_size = QSpinBox(minimum=2, maximum=1024, value=128,
                                    toolTip="Length of the latent vector z (paper: 128)")
        self.width = QDoubleSpinBox(minimum=0.125, maximum=4.0, singleStep=0.125, value=0.5, decimals=3,
                                    toolTip="Channel multiplier of all networks: 1 is the paper's size; "
                                            "0.25–0.5 trains several times faster on a CPU")
        self.kernel = self._combo([("4 (faster, no checkerboard)", 4), ("5 (paper)", 5)],
                                  "Convolution kernel size")
        self.model_type = self._combo([("VAE-GAN", "vaegan"), ("VAE (pixel loss)", "vae")],
                                      "VAE-GAN: the paper's learned similarity; VAE: the blurry pixel-loss baseline")
        self.device = self._combo([(f"{name} — {desc}", name) for name, desc in available_devices()],
                                  "Where to train; a GPU is many times faster than the CPU")
        self.preview_every = QSpinBox(minimum=1, maximum=10_000, value=100,
                                      toolTip="Refresh the samples and reconstructions every this many steps")
        self.checkpoint_every = QSpinBox(minimum=1, maximum=120, value=round(TrainConfig.checkpoint_interval_s / 60),
                                         suffix=" min", toolTip="Save a checkpoint this often, so a crash loses at "
                                                                "most this much training (Stop always saves one)")
        self.more_button = QToolButton(text="More settings", checkable=True, autoRaise=True,
                                       toolButtonStyle=Qt.ToolButtonStyle.ToolButtonTextBesideIcon,
                                       arrowType=Qt.ArrowType.RightArrow,
                                       toolTip="Latent size, width, kernel, model type, preview and checkpoint "
                                               "rates, and every other training option")
        self.more_button.toggled.connect(self._show_advanced)
        self.settings_form = form = QFormLayout(box)
        form.setVerticalSpacing(4)
        for label, field in (("Start from", self.start_from), ("Image size", self.image_size), ("Crop", self.crop),
                             ("Epochs", self.epochs), ("Batch size", self.batch_size), ("Device", self.device)):
            form.addRow(label, field)
        form.addRow(self.more_button)
        for label, field in (("Latent size", self.latent_size), ("Width", self.width), ("Kernel", self.kernel),
                             ("Model", self.model_type), ("Preview every", self.preview_every),
                             ("Checkpoint every", self.checkpoint_every)):
            form.addRow(label, field)
        self.option_controls = {option.name: (option, option_control(option)) for option in options_of(TrainConfig)
                                if option.name not in SHOWN_OPTIONS}
        for name, (_, control) in self.option_controls.items():
            form.addRow(option_label(name), control)
        self._show_advanced(False)
        self.image_size.currentIndexChanged.connect(self.scan)
        self.crop.currentIndexChanged.connect(self.scan)
        self.start_from.currentIndexChanged.connect(self._start_from_changed)
        self.start_from.activated.connect(self._start_from_chosen)
        self.new_model_chosen = False
        self.set_model(self.selection.model)
        self._start_from_changed()
        return box

    def _show_advanced(self, shown: bool) -> None:
        advanced = [getattr(self, name) for name in ADVANCED_FIELDS]
        for field in advanced + [control for _, control in self.option_controls.values()]:
            self.settings_form.setRowVisible(field, shown)
        self.more_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def set_model(self, model: Model | None) -> None:
        """Keep the 'Start from' choice in step with the model open in the explorer. The open model is the
        default unless the user picked "A new model": on a CPU it is by far the faster way to faces that look
        like the people (README, "Your own faces on a CPU")."""
        path = getattr(model, "path", None)
        if self.start_from.count() > 1:
            self.start_from.removeItem(1)
        if path is not None:
            self.start_from.addItem(f"The open model ({Path(path).stem})", str(path))
            self.start_from.setItemData(1, str(path), Qt.ItemDataRole.ToolTipRole)
            if not self.new_model_chosen:
                self.start_from.setCurrentIndex(1)

    def _start_from_chosen(self, index: int) -> None:
        self.new_model_chosen = index == 0

    def _start_from_changed(self) -> None:
        """Starting from the open model fixes the architecture to its own; only then can its encoder be frozen."""
        model = self.selection.model if self.start_from.currentData() else None
        if model is not None:
            cfg = model.config
            self.image_size.setCurrentIndex(self.image_size.findData(cfg.image_size))
            self.latent_size.setValue(cfg.latent_dim)
            self.width.setValue(cfg.width)
            self.kernel.setCurrentIndex(self.kernel.findData(cfg.kernel_size))
        for name in ARCHITECTURE_FIELDS:
            getattr(self, name).setEnabled(model is None)
        freeze_encoder = self.option_controls["freeze_encoder"][1]
        freeze_encoder.setEnabled(model is not None)
        if model is None:
            freeze_encoder.setChecked(False)
        if self.dataset is not None and not self.is_training():
            self._set_scan_status(self._data_summary())

    def _run_group(self) -> QGroupBox:
        box = QGroupBox("Run")
        self.run_folder = QLineEdit(toolTip="Checkpoints, metrics and the finished model are written here")
        change = QPushButton("Change…", toolTip="Pick where this run is saved")
        change.clicked.connect(self.choose_run_folder)
        row = QHBoxLayout()
        row.addWidget(QLabel("Save to"))
        row.addWidget(self.run_folder, 1)
        row.addWidget(change)
        self.start_button = QPushButton("Start", toolTip="Start training with these settings")
        self.pause_button = QPushButton("Pause", toolTip="Pause or resume training (nothing is lost)")
        self.stop_button = QPushButton("Stop", toolTip="End training after this step and save a checkpoint")
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.pause_button, self.stop_button):
            buttons.addWidget(button)
        self.resume_button = QPushButton("Resume a run…",
                                         toolTip="Continue a run folder from its checkpoint with its own data")
        self.resume_button.clicked.connect(self.choose_run_to_resume)
        self.open_button = QPushButton("Open in explorer", toolTip="Explore the model this run produced")
        self.open_button.clicked.connect(self.open_result)
        more = QHBoxLayout()
        more.addWidget(self.resume_button)
        more.addWidget(self.open_button)
        layout = QVBoxLayout(box)
        layout.addLayout(row)
        layout.addLayout(buttons)
        layout.addLayout(more)
        return box

    @staticmethod
    def _combo(items: list[tuple[str, object]], tip: str) -> QComboBox:
        combo = QComboBox(toolTip=tip, minimumContentsLength=12,   # shrinks (text elided) in a narrow column
                          sizeAdjustPolicy=QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        for text, data in items:
            combo.addItem(text, data)
        return combo

    def _update_controls(self) -> None:
        running = self.is_training()
        for widget in (self.start_button, self.resume_button):
            widget.setEnabled(not running and (widget is self.resume_button or self.dataset is not None))
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Resume" if running and self.thread.paused else "Pause")
        self.open_button.setEnabled(not running and self.result_path is not None)

    def is_training(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    # ----- data -----
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if any(Path(u.toLocalFile()).is_dir() for u in event.mimeData().urls() if u.isLocalFile()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        folders = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        folders = [f for f in folders if f.is_dir()]
        if folders:
            self.set_folder(folders[0])
            event.acceptProposedAction()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of face pictures",
                                                  folder_setting(self.settings, "training/folder"))
        if folder:
            self.set_folder(Path(folder))

    def set_folder(self, folder: Path) -> None:
        self.settings.setValue("training/folder", str(folder.parent))
        self.folder_edit.setText(str(folder))
        self.run_folder.setText(str(default_run_folder(folder)))
        self.scan()

    def scan(self) -> None:
        """Decode and crop the folder in the background (cached), so Start can begin at once."""
        folder = self.folder_edit.text()
        if not folder:
            return
        self._scan_cancel.set()
        self._scan_cancel = threading.Event()
        self.dataset = None
        self._show_scan_progress(0, 0)
        self._set_scan_status("Scanning…")
        self.scan_progress.setVisible(True)
        self._update_controls()
        request = self._scan_request = object()
        start_worker(load_image_folder, folder, self.image_size.currentData(), self.crop.currentData(),
                     progress=self._scanProgress.emit, cancel=self._scan_cancel.is_set,
                     on_result=lambda data: self._scanned(request, data),
                     on_error=lambda exc: self._scan_failed(request, exc))

    def _show_scan_progress(self, done: int, total: int) -> None:
        self.scan_progress.setRange(0, max(total, 1))
        self.scan_progress.setValue(done)

    def _latest_scan(self, request: object) -> bool:
        """Whether `request` is the newest scan: an older one's result, already queued, is dropped."""
        if request is not self._scan_request:
            return False
        self.scan_progress.setVisible(False)
        return True

    def _scanned(self, request: object, data: FaceDataset) -> None:
        if not self._latest_scan(request):
            return
        self.dataset = data
        skipped = data.summary.get("skipped", [])
        self._set_scan_status(self._data_summary())
        self.skipped_list.clear()
        self.skipped_list.addItems([f"{path}: {reason}" for path, reason in skipped])
        self.skipped_list.setVisible(bool(skipped))
        self.live.show_crops(data.images)
        self._update_controls()

    def _data_summary(self) -> str:
        """The scanned folder in a line, with what the finished model's attribute sliders will be when it has no
        labels (core.pipeline.finish_run: those of the model it starts from, recomputed, or none)."""
        data = self.dataset
        skipped = data.summary.get("skipped", [])
        labels = {"celeba": "CelebA attributes", "folders": "sub-folder names"}.get(data.summary.get("label_source"))
        return (f"{len(data):,} usable pictures" + (f", {len(skipped):,} skipped" if skipped else "")
                + (f"; labels from {labels} ({len(data.label_names)})" if labels else f"; {self._unlabelled_result()}"))

    def _unlabelled_result(self) -> str:
        """What a model trained on this unlabelled folder will have for attribute sliders, said before training."""
        model = self.selection.model if self.start_from.currentData() else None
        if model is None:
            return "no labels, so the result will have no attribute vectors"
        start = vector_ancestor(model, include_self=True)
        if start is None:
            return f"no labels here or in {model_label(model)}, so the result will have no attribute vectors"
        how = "carried into its latent space" if carries_vectors(start) else "recomputed on its labelled reference faces"
        return (f"no labels, so the result keeps the {inheritable_vector_count(start)} attribute vectors of "
                f"{model_label(start)}, {how}")

    def _scan_failed(self, request: object, exc: Exception) -> None:
        if not self._latest_scan(request):
            return
        self._set_scan_status(str(exc), error=True)
        self.live.show_crops(None)

    def _set_scan_status(self, text: str, error: bool = False) -> None:
        self.scan_status.setText(text)
        self.scan_status.setStyleSheet(ERROR_STYLE if error else "")

    # ----- runs -----
    def choose_run_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the run in", str(RUNS_ROOT if RUNS_ROOT.exists()
                                                                                 else Path.home()))
        if folder:
            self.run_folder.setText(folder)

    def model_config(self) -> ModelConfig:
        return ModelConfig(image_size=self.image_size.currentData(), latent_dim=self.latent_size.value(),
                           width=self.width.value(), kernel_size=self.kernel.currentData(),
                           model_type=self.model_type.currentData())

    def train_config(self) -> TrainConfig:
        preview = self.preview_every.value()
        init_from = self.start_from.currentData()
        generated = {name: control_value(option, control) for name, (option, control) in self.option_controls.items()}
        return TrainConfig(**generated, batch_size=self.batch_size.value(), epochs=self.epochs.value(),
                           device=self.device.currentData(), preview_interval=preview,
                           log_interval=max(1, min(20, preview)), init_from=init_from,
                           discriminator_warmup_steps=self._warmup_steps() if init_from else 0,
                           checkpoint_interval_s=60.0 * self.checkpoint_every.value())

    def _warmup_steps(self) -> int:
        steps_per_epoch = max(1, len(self.dataset or ()) // self.batch_size.value())
        return min(DISCRIMINATOR_WARMUP_STEPS, self.epochs.value() * steps_per_epoch // 5)

    def start(self) -> None:
        if self.dataset is None or self.is_training():
            return
        run_dir = Path(self.run_folder.text() or default_run_folder(Path(self.folder_edit.text())))
        if (run_dir / CHECKPOINT_NAME).exists():
            self._offer_resume(run_dir)
            return
        try:
            model_cfg, train_cfg = self.model_config(), self.train_config()
        except ValueError as error:
            QMessageBox.warning(self, "Cannot start training", str(error))
            return
        data = self.dataset
        self._launch(lambda callbacks: Trainer(data, run_dir, model_cfg, train_cfg, callbacks), data,
                     model_cfg.model_type, asdict(train_cfg))

    def _offer_resume(self, run_dir: Path) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, "A run is already there",
                          f"{run_dir} already holds a training run. It will not be overwritten.", parent=self)
        resume = box.addButton("Resume that run", QMessageBox.ButtonRole.AcceptRole)
        fresh = box.addButton("Start in a new folder", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is resume:
            self.resume_run(run_dir)
        elif box.clickedButton() is fresh:
            self.run_folder.setText(str(free_folder(run_dir)))
            self.start()

    def choose_run_to_resume(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Run folder to resume",
                                                  str(RUNS_ROOT if RUNS_ROOT.exists() else Path.home()))
        if folder:
            self.resume_run(Path(folder))

    def resume_run(self, run_dir: Path) -> None:
        """Reload the run's data in the background, then continue it with this panel's device."""
        self._set_scan_status(f"Reloading the pictures of {run_dir.name}…")
        self.resume_button.setEnabled(False)
        self._scan_cancel.set()
        self._scan_cancel = threading.Event()
        start_worker(prepare_resume, run_dir, self._scanProgress.emit, self._scan_cancel.is_set,
                     on_result=lambda result: self._resume_ready(run_dir, *result),
                     on_error=lambda exc: self._resume_failed(run_dir, exc))

    def _resume_ready(self, run_dir: Path, meta: dict, data: FaceDataset) -> None:
        self.dataset = data
        self.folder_edit.setText(data.summary.get("folder", ""))
        self.run_folder.setText(str(run_dir))
        self.live.show_crops(data.images)
        self._set_scan_status(f"{len(data):,} usable pictures (reloaded for {run_dir.name})")
        overrides: dict = {"device": self.device.currentData(),
                           "checkpoint_interval_s": 60.0 * self.checkpoint_every.value()}
        if self.epochs.value() > (meta.get(TRAIN_CONFIG, {}).get("epochs") or 0):
            overrides.update(epochs=self.epochs.value(), max_steps=None)
        self._launch(lambda callbacks: Trainer.from_run(run_dir, data, callbacks, **overrides), data,
                     ModelConfig.from_dict(meta[MODEL_CONFIG]).model_type, meta.get(TRAIN_CONFIG, {}))

    def _resume_failed(self, run_dir: Path, exc: Exception) -> None:
        self._set_scan_status(f"Cannot resume {run_dir.name}: {one_line(exc)}", error=True)
        self._update_controls()

    def _launch(self, make_trainer, data: FaceDataset, model_type: str, train: dict) -> None:
        """Run the trainer `make_trainer` builds; `train` is its TrainConfig as a dict (as a run saves it)."""
        init_from = train.get("init_from")
        self.live.reset(model_type, int(train.get("batch_size", 0)), start_from=init_from and Path(init_from).stem,
                        max_minutes=train.get("max_minutes"))
        self.result_path = None
        thread = TrainingThread(make_trainer, data)
        thread.metrics.connect(self.live.add_metrics)
        thread.message.connect(self.live.add_message)
        thread.preview.connect(self.live.show_preview)
        thread.checkpointSaved.connect(self._checkpoint_saved)
        thread.completed.connect(self._completed)
        thread.failed.connect(self._failed)
        thread.finished.connect(self._update_controls)
        self.thread = thread
        thread.start()
        self._update_controls()
        self.statusMessage.emit("Training started")

    def toggle_pause(self) -> None:
        if not self.is_training():
            return
        if self.thread.paused:
            self.thread.resume()
            self.live.add_message("resumed")
        else:
            self.thread.pause()
            self.live.add_message("paused")
        self._update_controls()

    def stop(self) -> None:
        if self.is_training():
            self.thread.stop()
            self.live.add_message("stopping after this step; saving a checkpoint…")
            self.live.show_final_state("Stopping: saving a checkpoint, then preparing the model for the explorer…")

    def _checkpoint_saved(self, path: str) -> None:
        """Said by the run folder's name: a whole path ran into the model summary of a 1024-pixel status bar."""
        self.statusMessage.emit(f"Checkpoint saved in {Path(path).parent.name}")

    def _completed(self, path: str) -> None:
        self.result_path = Path(path) if path else None
        self.live.show_final_state(self._final_state() + (" · ready to open in the explorer" if path else ""))
        self.statusMessage.emit("Training ended" + ("; the model is ready: Open in explorer" if path else ""))

    def _final_state(self) -> str:
        """Where the run ended, e.g. 'Stopped at step 1,240 of 6,000 · trained 12m 05s · saved in …'."""
        trainer = self.thread.trainer if self.thread else None
        if trainer is None:
            return "Not started"
        ended = "Finished" if trainer.step >= trainer.total_steps else "Stopped"
        return (f"{ended} at step {trainer.step:,} of {trainer.total_steps:,} · trained "
                f"{format_duration(trainer.elapsed_s)} · saved in {trainer.run_dir}")

    def _failed(self, message: str) -> None:
        self.live.show_final_state(f"{self._final_state()} · error: {message}")
        self.live.add_message(f"error: {message}")
        QMessageBox.warning(self, "Training stopped", message)

    def open_result(self) -> None:
        if self.result_path:
            self.openModelRequested.emit(str(self.result_path))

    def confirm_close(self) -> bool:
        """Called when the window closes: ask, then stop cleanly with a checkpoint."""
        if not self.is_training():
            return True
        answer = QMessageBox.question(self, "Training is running",
                                      "Stop training and save a checkpoint before quitting?\n"
                                      "You can resume the run later.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.stop_and_wait()
        return True

    def stop_and_wait(self) -> None:
        """End a run now with a checkpoint at its current step (the app is closing or was told to quit)."""
        if self.is_training():
            self.thread.stop(finalize=False)
            self.thread.wait()
