"""Hostile and damaged checkpoints: every one is refused before anything large is allocated, with one line
that names the file and the problem (CLI exit code 2), never a traceback."""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Callable

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from conftest import synthetic_face
from core.api import load_model
from core.checkpoint import Checkpoint, CheckpointError, load_checkpoint, load_model_checkpoint, save_checkpoint
from core.cli import main
from core.schema import FORMAT_NAME
from core.trainer import CHECKPOINT_NAME, Trainer

TINY = ("--batch-size", "4", "--width", "0.125", "--latent-dim", "8", "--kernel-size", "4", "--device", "cpu",
        "--crop", "none", "--threads", "1")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A one-step training run on 16 generated faces (its data folder stays in place, so it can be resumed)."""
    root = tmp_path_factory.mktemp("crafted")
    faces = root / "faces"
    faces.mkdir()
    for i in range(16):
        Image.fromarray(synthetic_face(i)).save(faces / f"{i:02d}.png")
    run = root / "run"
    assert main(["train", str(faces), "--out", str(run), "--max-steps", "1", *TINY]) == 0
    return run


def craft(source: Path, target: Path, meta_text: str | None = None,
          change: Callable[[dict, dict], None] | None = None) -> Path:
    """Copy a checkpoint with its metadata JSON replaced by `meta_text`, or its meta and tensors edited."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(source))
    meta = load_checkpoint(source).meta
    if change is not None:
        change(meta, tensors)
    text = json.dumps(meta) if meta_text is None else meta_text
    save_file(tensors, str(target), metadata={"format": FORMAT_NAME, "format_version": "1", "meta": text})
    return target


def copy_run(run: Path, target: Path) -> Path:
    shutil.copytree(run, target)
    return target


def edit(change: Callable[[dict, dict], None]) -> Callable[[dict, dict], None]:
    return change


def huge_architecture(meta: dict, tensors: dict) -> None:
    meta["model_config"].update(width=8.0, image_size=128, latent_dim=4096)


def wrong_shape(meta: dict, tensors: dict) -> None:
    tensors["enc.mu.weight"] = torch.zeros(3, 5)


def nan_weight(meta: dict, tensors: dict) -> None:
    tensors["dec.fc.0.weight"][0, 0] = float("nan")


def impossible_reference(meta: dict, tensors: dict) -> None:
    meta["reference"]["count"] = 10**9


def giant_atlas(meta: dict, tensors: dict) -> None:
    """A JPEG atlas whose header claims 60000 x 60000 pixels (a decompression bomb)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = (60000).to_bytes(2, "big") * 2
    tensors["ref.thumbnails_jpeg"] = torch.frombuffer(data, dtype=torch.uint8)


INFERENCE_CASES = {
    "meta is null": ("null", None, "not a JSON object"),
    "meta is a list": ("[1, 2]", None, "not a JSON object"),
    "meta is a string": ('"hello"', None, "not a JSON object"),
    "meta nested 100,000 deep": ("[" * 100_000 + "]" * 100_000, None, "nested too deeply"),
    "model_config is a list": ('{"model_config": [64, 128]}', None, "model_config is a list"),
    "model_config missing": ('{"kind": "inference"}', None, "model_config is missing"),
    "width is a string": (None, edit(lambda m, t: m["model_config"].update(width="wide")), "model_config.width"),
    "image size is a bool": (None, edit(lambda m, t: m["model_config"].update(image_size=True)), "image_size"),
    "attributes is a string": (None, edit(lambda m, t: m.update(attributes="Smiling")), "attributes"),
    "architecture 3.3 billion weights": (None, huge_architecture, "declares"),
    "tensor of the wrong shape": (None, wrong_shape, "enc.mu.weight"),
    "NaN weight": (None, nan_weight, "NaN"),
    "reference map of a billion faces": (None, impossible_reference, "reference.count"),
    "JPEG atlas of 60000 x 60000": (None, giant_atlas, "thumbnail atlas is too large"),
    "mixture of a million components": (None, edit(lambda m, t: t.update({"sampler.mixture_weights": torch.ones(10**6)})),
                                        "sampler.mixture_weights has impossible shape"),
    "atlas that is no JPEG": (None, edit(lambda m, t: t.update({"ref.thumbnails_jpeg": torch.arange(99).byte()})),
                              "thumbnail atlas is not a readable JPEG"),
}


@pytest.mark.parametrize("case", INFERENCE_CASES)
def test_crafted_model_files_are_refused_in_one_line(case, tiny_model_path, tmp_path, capsys):
    meta_text, change, expected = INFERENCE_CASES[case]
    bad = craft(tiny_model_path, tmp_path / "bad model.safetensors", meta_text, change)
    with pytest.raises(CheckpointError) as excinfo:
        load_model(bad, device="cpu")
    message = str(excinfo.value)
    assert "\n" not in message and str(bad) in message and expected in message
    capsys.readouterr()
    assert main(["sample", str(bad), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vaegan: error: ") and str(bad) in err
    assert not (tmp_path / "s.png").exists()


def claim_a_huge_tensor(source: Path, target: Path, gib: int = 8) -> Path:
    """A copy of `source` with one more tensor of `gib` GiB declared in the header: a sparse file, so the claim
    costs no disk space, and only reading the tensor would cost memory."""
    tensors = load_file(str(source))
    dtypes = {torch.float32: "F32", torch.float16: "F16", torch.int8: "I8", torch.uint8: "U8", torch.int64: "I64"}
    header: dict = {"__metadata__": {"format": FORMAT_NAME, "format_version": "1",
                                     "meta": json.dumps(load_checkpoint(source).meta)}}
    offset = 0
    for name, tensor in tensors.items():
        size = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": dtypes[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    huge = gib * 2**30
    header["junk"] = {"dtype": "U8", "shape": [huge], "data_offsets": [offset, offset + huge]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(target, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text)
        for tensor in tensors.values():
            f.write(tensor.contiguous().numpy().tobytes())
        f.truncate(f.tell() + huge)
    return target


def test_a_header_claiming_a_huge_tensor_is_refused_before_reading_it(tiny_model_path, tmp_path):
    bad = claim_a_huge_tensor(tiny_model_path, tmp_path / "huge.safetensors")
    with pytest.raises(CheckpointError, match="more extra data than its model"):
        load_model(bad, device="cpu")


TRAINING_CASES = {
    "training_state missing": (lambda m, t: m.pop("training_state"), "training_state is missing"),
    "train_config missing": (lambda m, t: m.pop("train_config"), "train_config is missing"),
    "optimizer.dis missing": (lambda m, t: m["optimizer"].pop("dis"), "optimizer.dis is missing"),
    "step is a word": (lambda m, t: m["training_state"].update(step="many"), "training_state.step"),
    "model_config missing": (lambda m, t: m.pop("model_config"), "model_config is missing"),
    "optimizer moment of the wrong shape": (lambda m, t: t.update({"optim.enc.0.exp_avg": torch.zeros(2, 2)}),
                                            "optim.enc.0.exp_avg"),
    "train_config with a negative batch": (lambda m, t: m["train_config"].update(batch_size=-3), "batch size"),
}


@pytest.mark.parametrize("case", TRAINING_CASES)
def test_damaged_runs_cannot_be_resumed_and_say_why(case, trained_run, tmp_path, capsys):
    change, expected = TRAINING_CASES[case]
    run = copy_run(trained_run, tmp_path / "run")
    craft(trained_run / CHECKPOINT_NAME, run / CHECKPOINT_NAME, change=change)
    before = (run / CHECKPOINT_NAME).read_bytes()
    capsys.readouterr()
    assert main(["resume", str(run), "--max-steps", "2", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    error = err.strip().splitlines()[-1]  # after, at most, the line saying how many pictures were read
    assert error.startswith("vaegan: error: ") and "Traceback" not in err, err
    assert str(run / CHECKPOINT_NAME) in error and expected in error
    assert (run / CHECKPOINT_NAME).read_bytes() == before


def test_a_valid_training_checkpoint_passes_every_check(trained_run):
    loaded = load_model_checkpoint(trained_run / CHECKPOINT_NAME, training=True)
    assert loaded.config.latent_dim == 8 and loaded.path == trained_run / CHECKPOINT_NAME


def test_info_names_the_file_when_metadata_has_the_wrong_types(tiny_model_path, tmp_path, capsys):
    bad = craft(tiny_model_path, tmp_path / "m.safetensors", change=lambda m, t: m.update(data=[1, 2]))
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "data is a list" in err


def test_a_pipe_is_not_read_as_a_checkpoint(tmp_path, capsys):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    assert main(["info", str(fifo)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def test_saving_attribute_vectors_keeps_the_file_mode(tiny_model_path):
    tiny_model_path.chmod(0o644)
    model = load_model(tiny_model_path, device="cpu")
    model.attributes = {"Smiling": torch.ones(model.latent_dim)}
    model.save_attributes()
    assert stat.S_IMODE(tiny_model_path.stat().st_mode) == 0o644
    assert load_model(tiny_model_path, device="cpu").attributes.keys() == {"Smiling"}


def test_new_checkpoints_get_the_usual_file_mode(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", Checkpoint({"x": torch.zeros(1)}))
    assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044  # readable by others under the usual umask 022


def test_resume_refuses_non_finite_optimizer_state(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path / "run")

    def poison(meta: dict, tensors: dict) -> None:
        name = next(k for k in tensors if k.startswith("optim.dec.") and k.endswith("exp_avg_sq"))
        tensors[name] = torch.full_like(tensors[name], float("inf"))

    craft(trained_run / CHECKPOINT_NAME, run / CHECKPOINT_NAME, change=poison)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        Trainer.from_run(run, None)  # type: ignore[arg-type]  (refused before the data is needed)



@pytest.mark.parametrize("case", [name for name, (text, _, _) in INFERENCE_CASES.items() if text is not None])
def test_info_refuses_damaged_metadata_in_one_line(case, tiny_model_path, tmp_path, capsys):
    meta_text, _, expected = INFERENCE_CASES[case]
    bad = craft(tiny_model_path, tmp_path / "bad.safetensors", meta_text)
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and expected in err
