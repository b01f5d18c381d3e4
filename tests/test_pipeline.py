"""core.pipeline: one way to finish a run and one way to encode a folder, for the CLI, the app and scripts."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from conftest import TINY_CONFIG, make_tiny_model, synthetic_face
from core.api import load_model
from core.data import CELEBA_ATTRIBUTES_NAME
from core.dataset import FaceDataset, to_signed
from core.bundle import save_inference_model
from core.model import batch_norms
from core.pipeline import complete_model, encode_folder, finish_run, measure_batch_norm
from core.trainer import Trainer, TrainConfig
from test_data import write_attributes


def test_encode_folder_reads_sub_folders_keeps_unlabelled_pictures_and_caches(tmp_path):
    folder = tmp_path / "photos"
    for i in range(6):
        path = folder / ("" if i < 3 else "deeper/still") / f"face_{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(synthetic_face(i)).save(path)
    write_attributes(folder / CELEBA_ATTRIBUTES_NAME, ["Smiling"], {"face_0.png": [1], "face_4.png": [-1]})
    model = make_tiny_model(with_reference=False)
    calls = []
    data, latents = encode_folder(model, folder, crop="none", progress=lambda done, total: calls.append(total))
    assert data.names == ["deeper/still/face_3.png", "deeper/still/face_4.png", "deeper/still/face_5.png",
                          "face_0.png", "face_1.png", "face_2.png"]
    assert data.label_names == ["Smiling"] and data.labels.flatten().tolist() == [0, -1, 0, 1, 0, 0]
    assert latents.shape == (6, 8)
    torch.testing.assert_close(latents, model.encode(data.images.float() / 255))
    assert calls and data.summary["cache"] == "built"
    again, _ = encode_folder(model, folder, crop="none")
    assert again.summary["cache"] == "hit" and again.names == data.names


def test_finish_run_makes_the_run_checkpoint_explorer_ready_and_resumable(tmp_path):
    images = torch.from_numpy(np.stack([synthetic_face(i) for i in range(24)])).permute(0, 3, 1, 2)
    labels = torch.where(torch.arange(24)[:, None] % 3 == 0, 1, -1).to(torch.int8)
    data = FaceDataset(images.contiguous(), [f"{i}.png" for i in range(24)], ["Glasses"], labels)
    run = tmp_path / "run"
    checkpoint = Trainer(data, run, TINY_CONFIG, TrainConfig(batch_size=4, max_steps=2, device="cpu")).run()
    messages: list[str] = []
    assert finish_run(checkpoint, data, say=messages.append) == checkpoint
    model = load_model(run, device="cpu")
    assert list(model.attributes) == ["Glasses"] and model.latent_gaussian is not None
    assert len(model.reference.latents) == 24 and model.reference.thumbnails.shape == (24, 3, 64, 64)
    assert model.reference.labels.flatten().tolist() == labels.flatten().tolist()
    assert "24 faces on the map" in messages[-1]
    counts = [b.item() for n, b in model.net.named_buffers() if n.endswith("num_batches_tracked")]
    assert counts and set(counts) == {6}   # the measured statistics (24 faces in batches of 4) were stored
    resumed = Trainer.from_run(run, data, max_steps=3)
    assert resumed.step == 2 and resumed.run() == checkpoint
    assert load_model(run, device="cpu").reference is None  # a newer checkpoint drops the map of older weights


def test_a_model_only_compared_with_can_be_saved_without_a_reference_map(tmp_path):
    images = torch.from_numpy(np.stack([synthetic_face(i) for i in range(8)])).permute(0, 3, 1, 2)
    labels = torch.where(torch.arange(8)[:, None] % 2 == 0, 1, -1).to(torch.int8)
    data = FaceDataset(images.contiguous(), [f"{i}.png" for i in range(8)], ["Glasses"], labels)
    model = make_tiny_model(with_reference=False)
    complete_model(model, data, reference_faces=0)
    path = save_inference_model(model, tmp_path / "twin.safetensors")
    saved = load_model(path, device="cpu")
    assert saved.reference is None and list(saved.attributes) == ["Glasses"] and saved.latent_gaussian is not None
    complete_model(model, data, reference_faces=4)
    assert len(model.reference.latents) == 4


def test_measured_batch_norm_makes_inference_decode_as_training_does():
    images = torch.from_numpy(np.stack([synthetic_face(i) for i in range(64)])).permute(0, 3, 1, 2).contiguous()
    model = make_tiny_model(with_reference=False)
    for norm in batch_norms(model.net):   # statistics that no longer fit the weights
        norm.running_mean.fill_(3.0)
        norm.running_var.fill_(0.05)

    @torch.no_grad()
    def reconstructions(training_mode: bool) -> torch.Tensor:
        model.net.train(training_mode)
        mu, _ = model.net.encoder(to_signed(images))
        out = model.net.decoder(mu)
        model.net.eval()
        return out

    stale = (reconstructions(False) - reconstructions(True)).abs().mean()
    measure_batch_norm(model, images)
    measured = (reconstructions(False) - reconstructions(True)).abs().mean()
    assert measured < stale / 5 and measured < 0.05
    assert all(norm.momentum == 0.1 for norm in batch_norms(model.net)) and not model.net.training
