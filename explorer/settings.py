"""Persistent app settings in an INI file; VAEGAN_EXPLORER_SETTINGS redirects it (tests, portable installs)."""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

from explorer.theme import SYSTEM_THEME, THEMES

SETTINGS_ENV = "VAEGAN_EXPLORER_SETTINGS"
MAX_RECENT = 8


def app_settings() -> QSettings:
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "VAE-GAN Explorer", "explorer")


def recent_files(settings: QSettings) -> list[str]:
    value = settings.value("recent", [])
    items = [value] if isinstance(value, str) else list(value or [])
    return [p for p in items if p][:MAX_RECENT]


def add_recent_file(settings: QSettings, path: str | Path) -> list[str]:
    entry = str(Path(path).resolve())
    items = [entry] + [p for p in recent_files(settings) if p != entry]
    settings.setValue("recent", items[:MAX_RECENT])
    return items[:MAX_RECENT]


def folder_setting(settings: QSettings, key: str, default: Path | None = None) -> str:
    """A remembered folder, or `default` (home) when it is unset or has since disappeared."""
    folder = str(settings.value(key, "") or "")
    if folder and Path(folder).is_dir():
        return folder
    return str(default or Path.home())


EXPORT_FOLDER_SETTING = "export/folder"
"""Where every save dialog for pictures, grids, GIFs, videos, tables and maps starts (sessions keep their own)."""


def pictures_folder() -> Path:
    """The user's Pictures folder, or home when the system has none."""
    folder = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation) or Path.home())
    return folder if folder.is_dir() else Path.home()


def export_folder(settings: QSettings) -> Path:
    """The folder the last export went to, at first the Pictures folder."""
    return Path(folder_setting(settings, EXPORT_FOLDER_SETTING, pictures_folder()))


def remember_export_folder(settings: QSettings, folder: str | Path) -> None:
    settings.setValue(EXPORT_FOLDER_SETTING, str(folder))


COMPARE_SETTING = "compare/model"
"""The model file shown beside the open one (View ▸ Compare with); empty when comparing is off."""


def compare_choice(settings: QSettings) -> Path | None:
    """The remembered comparison model, when comparing is on and its file is still there."""
    path = Path(str(settings.value(COMPARE_SETTING, "") or ""))
    return path if path.name and path.is_file() else None


def remember_compare_choice(settings: QSettings, path: Path | None) -> None:
    settings.setValue(COMPARE_SETTING, str(path or ""))


THEME_SETTING = "view/theme"
"""View ▸ Theme: follow the system, or always light or dark (explorer.theme.THEMES)."""


def theme_choice(settings: QSettings) -> str:
    choice = str(settings.value(THEME_SETTING, SYSTEM_THEME))
    return choice if choice in THEMES else SYSTEM_THEME


def remember_theme_choice(settings: QSettings, choice: str) -> None:
    settings.setValue(THEME_SETTING, choice)
