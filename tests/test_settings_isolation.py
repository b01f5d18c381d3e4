"""Tests never touch the user's own settings, caches or runs (issue 31): conftest gives the whole session a
private home and XDG folders before any QSettings exists, and every test its own settings file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from core.data import default_cache_dir
from explorer import training_panel
from explorer.settings import SETTINGS_ENV, app_settings


def test_home_and_xdg_folders_are_the_private_home(private_home: Path):
    assert Path.home() == private_home
    for variable in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        assert Path(os.environ[variable]).is_relative_to(private_home)
    assert training_panel.RUNS_ROOT.is_relative_to(private_home)


def test_each_test_has_its_own_settings_file_and_cache(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory):
    settings_file = Path(app_settings().fileName())
    assert settings_file.is_relative_to(tmp_path_factory.getbasetemp()) and not settings_file.exists()
    assert default_cache_dir().is_relative_to(tmp_path)


def test_the_default_settings_file_lies_in_the_private_home(private_home: Path, monkeypatch: pytest.MonkeyPatch):
    """Without the redirect, app_settings() is the user-scope INI file that the app itself uses."""
    monkeypatch.delenv(SETTINGS_ENV)
    settings = app_settings()
    assert settings.format() == QSettings.Format.IniFormat
    assert Path(settings.fileName()).is_relative_to(private_home / ".config")


def test_subprocesses_inherit_the_private_home(private_home: Path):
    home = subprocess.run([sys.executable, "-c", "import pathlib; print(pathlib.Path.home())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert Path(home) == private_home
