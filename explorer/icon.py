"""The app icon: resources/icon.svg, with resources/icon.png (256 px) for desktop entries and fallbacks.

Regenerate the PNG after editing the SVG with `python -m explorer.icon`."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QImage, QPainter

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
ICON_SVG = RESOURCES / "icon.svg"
ICON_PNG = RESOURCES / "icon.png"


def app_icon() -> QIcon:
    icon = QIcon()
    for path in (ICON_SVG, ICON_PNG):
        if path.exists():
            icon.addFile(str(path))
    return icon


def render_png(size: int = 256) -> Path:
    from PySide6.QtSvg import QSvgRenderer

    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(ICON_SVG)).render(painter)
    painter.end()
    image.save(str(ICON_PNG))
    return ICON_PNG


if __name__ == "__main__":
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication([])
    print(render_png())
