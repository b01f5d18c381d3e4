"""A freedesktop.org menu entry so Linux users can start the app from their applications menu."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from core.checkpoint import write_text_atomically
from explorer.icon import ICON_PNG

ENTRY_NAME = "vaegan-explorer.desktop"
MAIN_SCRIPT = Path(__file__).resolve().parents[1] / "main.py"


def applications_dir() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "applications"


def entry_text(python: str | Path = sys.executable, script: Path = MAIN_SCRIPT, icon: Path = ICON_PNG) -> str:
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Name=VAE-GAN Face Explorer",
        "GenericName=Face model explorer",
        "Comment=Train a VAE-GAN on faces and explore what it learned",
        f'Exec="{python}" "{script}" %f',
        f"Icon={icon}",
        "Terminal=false",
        "Categories=Graphics;Science;Education;",
        "",
    ])


def install_entry(replace: bool = False, folder: Path | None = None) -> Path:
    """Write the entry; raises FileExistsError when a different entry is there and `replace` is False."""
    target = (folder or applications_dir()) / ENTRY_NAME
    text = entry_text()
    if target.exists() and target.read_text(encoding="utf-8", errors="replace") != text and not replace:
        raise FileExistsError(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(target, text)
    return target
