"""core/map_export.py: the selection's table and picture files, without Qt."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.map_export import face_image_paths, save_csv, save_face_images, selection_table


def test_table_has_a_column_per_latent_and_label_and_blank_unknown_labels():
    labels = torch.tensor([[1, 0], [-1, 1]], dtype=torch.int8)
    rows = selection_table(["a.jpg", "b.jpg"], np.array([[0.5, -1.0], [2.0, 3.0]]), torch.zeros(2, 3), labels,
                           ("Smiling", "Male"))
    assert rows[0] == ["source", "x", "y", "z0", "z1", "z2", "Smiling", "Male"]
    assert rows[1] == ["a.jpg", "0.5", "-1", "0", "0", "0", "1", ""] and rows[2][-2:] == ["-1", "1"]
    assert selection_table(["a"], np.zeros((1, 2)), torch.zeros(1, 2))[0] == ["source", "x", "y", "z0", "z1"]
    with pytest.raises(ValueError, match="as many"):
        selection_table(["a", "b"], np.zeros((1, 2)), torch.zeros(1, 2))


def test_csv_and_pictures_never_replace_files_unless_asked(tmp_path):
    target = save_csv([["source"], ["a"]], tmp_path / "t.csv")
    with pytest.raises(FileExistsError):
        save_csv([["source"]], target)
    assert target.read_bytes() == b"source\r\na\r\n"
    names = ["sub/x y.jpg", "Reference face 3", "???"]
    assert [p.name for p in face_image_paths(names, tmp_path)] == ["0001_x_y.png", "0002_Reference_face_3.png",
                                                                    "0003_face.png"]
    (tmp_path / "0002_Reference_face_3.png").write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="1 of the 3"):
        save_face_images(torch.zeros(3, 3, 8, 8), names, tmp_path)
    assert not (tmp_path / "0001_x_y.png").exists()


def test_cancelled_pictures_stop_before_the_next_one(tmp_path):
    seen: list[tuple[int, int]] = []
    written = save_face_images(torch.rand(5, 3, 8, 8), list("abcde"), tmp_path / "out",
                               progress=lambda done, total: seen.append((done, total)), cancel=lambda: len(seen) >= 2)
    assert [p.name for p in written] == ["0001_a.png", "0002_b.png"] and seen == [(1, 5), (2, 5)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0001_a.png", "0002_b.png"]
