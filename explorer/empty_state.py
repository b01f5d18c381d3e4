"""What the window shows while no model is open: a friendly message and the two ways forward."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from explorer.icon import app_icon


class EmptyState(QWidget):
    openRequested = Signal()
    trainRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        logo = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        logo.setPixmap(app_icon().pixmap(128, 128))
        self.headline = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        font = self.headline.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        self.headline.setFont(font)
        self.detail = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.detail.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.detail.setFixedWidth(560)  # a fixed width lets the wrapped text get its full height
        self.open_button = QPushButton("Open model…", toolTip="Open a model file (.safetensors) or a run folder")
        self.train_button = QPushButton("Train a model…", toolTip="Train a VAE-GAN on a folder of face pictures")
        self.open_button.clicked.connect(self.openRequested)
        self.train_button.clicked.connect(self.trainRequested)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.train_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(2)
        layout.addWidget(logo)
        layout.addWidget(self.headline)
        layout.addWidget(self.detail, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addSpacing(12)
        layout.addLayout(buttons)
        layout.addStretch(3)
        self.show_no_model()

    def show_no_model(self, reason: str = "") -> None:
        self.headline.setText("No face model is open yet")
        self.detail.setText((reason + "\n\n" if reason else "") +
                            "Open a trained model to explore the faces it learned, "
                            "or train one on your own folder of face pictures.")
        self._set_buttons_visible(True)

    def show_loading(self, name: str) -> None:
        self.headline.setText(f"Opening {name}…")
        self.detail.setText("Loading the encoder and decoder.")
        self._set_buttons_visible(False)

    def _set_buttons_visible(self, visible: bool) -> None:
        self.open_button.setVisible(visible)
        self.train_button.setVisible(visible)
