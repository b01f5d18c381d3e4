"""Rough edges of `vaegan` (issue 31): a count of the faces `edit` changed, refusals to overwrite that name
--overwrite, attribute names as the app shows them, --attribute's help, and a quiet end when stdout's reader
leaves (`vaegan info MODEL | head -1`)."""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from core import cli
from core.cli import CliError, resolve_attribute
from core.export import save_image
from core.photo import folder_targets

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "checkpoints" / "faces64.safetensors"


def vaegan(*args: object) -> int:
    return cli.main([str(a) for a in args])


@pytest.fixture
def two_faces(tmp_path: Path, astronaut: np.ndarray) -> Path:
    """A photo of two faces (the astronaut's, at two sizes)."""
    face = Image.fromarray(astronaut).crop((120, 20, 330, 230))
    group = Image.new("RGB", (700, 330), (90, 110, 130))
    group.paste(face.resize((170, 170)), (40, 80))
    group.paste(face.resize((300, 300)), (330, 15))
    group.save(tmp_path / "group.png")
    return tmp_path / "group.png"


def test_editing_a_photo_says_how_many_faces_were_edited(tiny_model_path, two_faces, tmp_path, capsys):
    assert vaegan("edit", tiny_model_path, two_faces, "--attribute", "Smiling=1", "--fast",
                  "--out", tmp_path / "edited.png") == 0
    assert "2 faces edited" in capsys.readouterr().err.splitlines()
    assert vaegan("edit", tiny_model_path, two_faces, "--attribute", "Smiling=1", "--fast", "--crop", "center",
                  "--out", tmp_path / "centre.png") == 0
    assert "1 face edited" in capsys.readouterr().err.splitlines()


def test_editing_over_an_existing_photo_names_the_overwrite_option(tiny_model_path, two_faces, tmp_path, capsys):
    out = tmp_path / "edited.png"
    out.write_bytes(b"mine")
    assert vaegan("edit", tiny_model_path, two_faces, "--attribute", "Smiling=1", "--fast", "--out", out) == 2
    assert "pass --overwrite to replace it" in capsys.readouterr().err and out.read_bytes() == b"mine"


def refuse_a_file(tmp_path: Path) -> None:
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"")
    save_image(torch.zeros(3, 8, 8), taken)


def refuse_a_folder(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "a.png")
    (tmp_path / "out").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "out" / "a.png")
    folder_targets(tmp_path / "photos", tmp_path / "out", overwrite=False)


@pytest.mark.parametrize("refuse", [refuse_a_file, refuse_a_folder])
def test_core_refusals_to_overwrite_name_the_cli_option(refuse: Callable[[Path], None], tmp_path, monkeypatch,
                                                        capsys):
    """core words them for its callers (overwrite=True); the CLI user is told about --overwrite."""
    monkeypatch.setattr(cli, "cmd_info", lambda args: refuse(tmp_path))
    assert vaegan("info", BUNDLED) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaegan: error: ") and "pass --overwrite" in err
    assert "overwrite=True" not in err and "allow overwriting" not in err


@pytest.mark.parametrize("typed", ["Blond Hair", "blond hair", "BLOND_HAIR", " Blond  hair "])
def test_attribute_names_are_accepted_as_the_app_shows_them(typed: str):
    assert resolve_attribute(typed, ["Black_Hair", "Blond_Hair", "Smiling"]) == "Blond_Hair"


def test_unknown_attribute_names_are_still_refused():
    with pytest.raises(CliError, match="unknown attribute 'Blond'"):
        resolve_attribute("Blond", ["Black_Hair", "Blond_Hair"])


def test_edit_with_the_bundled_model_takes_blond_hair_with_a_space(two_faces, tmp_path, capsys):
    out = tmp_path / "edited.png"
    assert vaegan("edit", BUNDLED, two_faces, "--attribute", "Blond Hair=-0.5", "--attribute", "smiling=1",
                  "--fast", "--out", out, "--device", "cpu") == 0
    assert Image.open(out).size == Image.open(two_faces).size
    assert "2 faces edited" in capsys.readouterr().err


def test_the_attribute_option_is_explained_in_help(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["edit", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--attribute NAME=STRENGTH an attribute vector" in help_text
    assert "-1000 to 1000" in help_text and "Smiling=1" in help_text and '"Blond Hair=-0.5"' in help_text


@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_a_closed_stdout_ends_quietly(reader: str):
    """`head -1` leaves after one line, `true` before reading any: no error line, the SIGPIPE exit status."""
    command = f"{shlex.quote(sys.executable)} -m core.cli info {shlex.quote(str(BUNDLED))} | {reader}"
    result = subprocess.run(["bash", "-c", command + '; exit "${PIPESTATUS[0]}"'], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert "Broken pipe" not in result.stderr and "error" not in result.stderr
    assert result.returncode in (0, cli.EXIT_BROKEN_PIPE)
    if reader == "head -1":
        assert result.stdout == f"file: {BUNDLED}\n"
