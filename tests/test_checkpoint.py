"""Checkpoint files: bit-exact round trip, atomic saves, and one-line errors for every kind of bad file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import core
import core.checkpoint as checkpoint_module
from core.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from core.schema import FORMAT_NAME, FORMAT_VERSION, KIND, KIND_INFERENCE, META_KEYS


def sample_checkpoint(seed: int = 0) -> Checkpoint:
    g = torch.Generator().manual_seed(seed)
    tensors = {
        "enc.weight": torch.randn(4, 3, 5, 5, generator=g),
        "dec.half": torch.randn(7, generator=g).half(),
        "dec.bf16": torch.randn(3, 2, generator=g).to(torch.bfloat16),
        "ref.labels": torch.randint(-1, 2, (5, 2), generator=g, dtype=torch.int8),
        "ref.bytes": torch.randint(0, 256, (11,), generator=g, dtype=torch.uint8),
        "optim.enc.0.step": torch.tensor(42.0),
    }
    meta = {"kind": "training", "model_config": {"latent_dim": 8, "width": 0.125}, "seed": seed,
            "nested": {"list": [1, 2.5, "x"], "none": None}, "unicode": "Ünïcödé ☺"}
    return Checkpoint(tensors, meta)


def assert_same(a: Checkpoint, b: Checkpoint) -> None:
    assert a.meta == b.meta
    assert set(a.tensors) == set(b.tensors)
    for key, tensor in a.tensors.items():
        assert b.tensors[key].dtype == tensor.dtype, key
        assert torch.equal(b.tensors[key], tensor), key


def assert_one_line_error(path: Path, excinfo: pytest.ExceptionInfo, *words: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message


def test_round_trip_is_bit_exact(tmp_path):
    original = sample_checkpoint()
    path = save_checkpoint(tmp_path / "run" / "model.safetensors", original)
    assert_same(original, load_checkpoint(path))
    assert_same(original, load_checkpoint(tmp_path / "run"))  # a run folder finds its checkpoint


def test_an_inference_model_writes_only_the_schemas_names(tiny_model_path):
    meta = load_checkpoint(tiny_model_path).meta
    assert set(meta) <= set(META_KEYS) and meta[KIND] == KIND_INFERENCE


def test_failed_save_keeps_the_previous_checkpoint_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "model.safetensors", sample_checkpoint(seed=0))

    def write_half_then_fail(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise RuntimeError("simulated crash in the middle of writing")

    monkeypatch.setattr(checkpoint_module, "save_file", write_half_then_fail)
    with pytest.raises(RuntimeError, match="simulated crash"):
        save_checkpoint(path, sample_checkpoint(seed=1))
    assert_same(sample_checkpoint(seed=0), load_checkpoint(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_disk_error_during_save_is_a_checkpoint_error(tmp_path, monkeypatch):
    def disk_full(tensors, filename, metadata=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module, "save_file", disk_full)
    path = tmp_path / "model.safetensors"
    with pytest.raises(CheckpointError) as excinfo:
        save_checkpoint(path, sample_checkpoint())
    assert_one_line_error(path, excinfo, "No space left")
    assert list(tmp_path.iterdir()) == []


def write_truncated(path: Path) -> None:
    full = save_checkpoint(path.with_name("full.safetensors"), sample_checkpoint()).read_bytes()
    path.write_bytes(full[: len(full) * 2 // 3])


def write_random_bytes(path: Path) -> None:
    path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(3),
                                   dtype=torch.uint8).numpy().tobytes())


def write_foreign(path: Path) -> None:
    save_file({"weight": torch.zeros(3)}, str(path), metadata={"format": "pt"})


def write_newer(path: Path) -> None:
    save_file({"weight": torch.zeros(3)}, str(path),
              metadata={"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION + 1), "meta": "{}"})


def write_empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize("write, words", [
    (write_truncated, ()),
    (write_random_bytes, ("corrupt",)),
    (write_empty, ("corrupt",)),
    (write_foreign, ("not a VAE-GAN Explorer checkpoint",)),
    (write_newer, ("newer version", f"format {FORMAT_VERSION + 1}")),
])
def test_bad_files_raise_one_line_checkpoint_errors(tmp_path, write, words):
    path = tmp_path / "bad.safetensors"
    write(path)
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(path)
    assert_one_line_error(path, excinfo, *words)
    with pytest.raises(CheckpointError) as excinfo:  # the public API says the same
        core.load_model(path, device="cpu")
    assert_one_line_error(path, excinfo)


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(tmp_path / "nothing.safetensors")
    assert_one_line_error(tmp_path / "nothing.safetensors", excinfo, "no such")
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(tmp_path)
    assert_one_line_error(tmp_path, excinfo, "no checkpoint")


def test_our_format_without_a_model_is_reported_by_load_model(tmp_path):
    path = save_checkpoint(tmp_path / "weights.safetensors", Checkpoint({"x": torch.zeros(2)}, {"kind": "training"}))
    with pytest.raises(CheckpointError) as excinfo:
        core.load_model(path, device="cpu")
    assert_one_line_error(path, excinfo, "usable model")


def test_meta_is_plain_json_in_the_header(tmp_path):
    """Other tools can read a checkpoint's description without torch: it is JSON in the safetensors header."""
    path = save_checkpoint(tmp_path / "m.safetensors", sample_checkpoint())
    header_length = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + header_length])
    assert json.loads(header["__metadata__"]["meta"]) == sample_checkpoint().meta


def test_thumbnail_atlas_keeps_each_face_in_its_place():
    from core.api import decode_thumbnail_atlas, encode_thumbnail_atlas

    count, columns = 11, 4  # a last row only partly filled
    thumbs = (torch.arange(count, dtype=torch.uint8) * 20 + 10).view(-1, 1, 1, 1).expand(count, 3, 16, 16)
    thumbs = thumbs.contiguous()
    thumbs[:, 0] = 255 - thumbs[:, 0]  # channels differ too
    decoded = decode_thumbnail_atlas(encode_thumbnail_atlas(thumbs, columns, quality=100), count, 16, columns)
    assert decoded.shape == thumbs.shape
    centres = decoded[:, :, 4:12, 4:12].float().mean((2, 3))  # JPEG subsamples colour across tile edges
    assert (centres - thumbs[:, :, 0, 0].float()).abs().max() <= 3
