"""Recipe levers: EMA weights for inference, DiffAugment with one draw for x and its reconstruction, spectral
normalisation and the R1 penalty in Dis only, a wider decoder, the low-pass likelihood, and their record in
checkpoints and the CLI.
(Gradient routing with the levers on is tested beside the paper's in test_training.py.)"""
from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
import torch
from torch import nn

from core import augment
from core.api import load_model
from core.bundle import save_inference_model
from core.checkpoint import load_checkpoint
from core.cli import main
from core.ema import WeightAverage
from core.model import VAEGAN, batch_norms
from core.losses import lowpass_nll
from core.steps import LOWPASS, R1, STEP_METRICS, Optimizers, StepSettings, balance, discriminator_input, vaegan_step
from core.schema import ENCODER, RAW_WEIGHTS
from core.trainer import CHECKPOINT_NAME, Trainer
from test_training import GradRecorder, face_batch, one_thread, tiny_config, tiny_dataset, train_config  # noqa: F401


def weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].float(), b[k].float()) for k in a)


# ----------------------------------------------------------------------------------------------- EMA


def test_weight_average_moves_each_weight_a_step_towards_the_model():
    net = VAEGAN(tiny_config())
    average = WeightAverage(net, decay=0.9)
    before = weights(average.decoder)
    with torch.no_grad():
        for p in net.decoder.parameters():
            p.add_(1.0)
    average.update(net, step=1000)   # past the ramp: the decay itself
    after, target = weights(average.decoder), weights(net.decoder)
    key = "fc.0.weight"
    torch.testing.assert_close(after[key], 0.9 * before[key] + 0.1 * target[key])
    assert average.decay_at(0) == pytest.approx(0.1) and average.decay_at(10**6) == 0.9
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(net, decay=1.0)


def test_ema_weights_differ_from_raw_and_are_what_inference_loads(tmp_path):
    trainer = Trainer(tiny_dataset(16), tmp_path, tiny_config(), train_config(max_steps=5, ema_decay=0.5))
    path = trainer.run()
    averaged, raw = weights(trainer.ema.encoder), weights(trainer.model.encoder)
    assert not same_weights(averaged, raw)
    assert trainer.inference_networks() == (trainer.ema.encoder, trainer.ema.decoder)

    ckpt = load_checkpoint(path)
    assert same_weights(ckpt.group(ENCODER), averaged) and same_weights(ckpt.group(f"{RAW_WEIGHTS}.{ENCODER}"), raw)
    assert ckpt.meta["train_config"]["ema_decay"] == 0.5
    model = load_model(tmp_path, device="cpu")       # the app, the CLI and scripts/build_bundle.py load this way
    assert same_weights(weights(model.net.encoder), averaged)
    assert same_weights(weights(model.net.decoder), weights(trainer.ema.decoder))
    bundle = load_model(save_inference_model(model, tmp_path / "bundle.safetensors", half_precision=False))
    assert same_weights(weights(bundle.net.decoder), weights(trainer.ema.decoder))


def test_resume_restores_raw_weights_and_their_average(tmp_path):
    data = tiny_dataset(16)
    straight, split = tmp_path / "straight", tmp_path / "split"
    Trainer(data, straight, tiny_config(), train_config(max_steps=6, ema_decay=0.7)).run()
    Trainer(data, split, tiny_config(), train_config(max_steps=3, ema_decay=0.7)).run()
    Trainer.from_run(split, data, max_steps=6).run()
    a, b = load_checkpoint(straight / CHECKPOINT_NAME), load_checkpoint(split / CHECKPOINT_NAME)
    for key in a.tensors:
        assert torch.equal(a.tensors[key], b.tensors[key]), key


def test_resume_can_start_an_average_from_the_raw_weights(tmp_path):
    data = tiny_dataset(16)
    Trainer(data, tmp_path, tiny_config(), train_config(max_steps=2)).run()
    resumed = Trainer.from_run(tmp_path, data, max_steps=3, ema_decay=0.9)
    assert same_weights(weights(resumed.ema.encoder), weights(resumed.model.encoder))


# ---------------------------------------------------------------------------------------- DiffAugment


def test_policy_names_are_checked_and_put_in_order():
    assert augment.parse_policy("cutout, color") == ("color", "cutout")
    assert augment.parse_policy("none") == augment.parse_policy("") == ()
    with pytest.raises(ValueError, match="unknown augmentation blur"):
        augment.parse_policy("color,blur")
    assert train_config(augment="translation,color").augment == "color,translation"


def single_draw(**changes) -> augment.AugmentDraw:
    plain = augment.AugmentDraw(brightness=torch.zeros(1, 1, 1, 1), saturation=torch.ones(1, 1, 1, 1),
                                contrast=torch.ones(1, 1, 1, 1), shift=torch.zeros(1, 2, dtype=torch.long),
                                cutout=torch.zeros(1, 2, dtype=torch.long))
    return replace(plain, **changes)


def test_translation_shifts_whole_pixels_and_fills_with_zeros():
    x = torch.rand(1, 3, 8, 8) + 0.5
    moved = augment.apply(x, ("translation",), single_draw(shift=torch.tensor([[2, -1]])))
    torch.testing.assert_close(moved[..., 2:, :7], x[..., :6, 1:])
    assert (moved[..., :2, :] == 0).all() and (moved[..., :, 7] == 0).all()


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(1, 3, 8, 8)
    cut = augment.apply(x, ("cutout",), single_draw(cutout=torch.tensor([[2, 3]])))
    assert (cut[..., 2:6, 3:7] == 0).all() and cut.sum() == 3 * (64 - 16)


def test_colour_changes_brightness_saturation_and_contrast():
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    brighter = augment.apply(x, ("color",), single_draw(brightness=torch.full((1, 1, 1, 1), 0.25)))
    torch.testing.assert_close(brighter, x + 0.25)
    grey = augment.apply(x, ("color",), single_draw(saturation=torch.zeros(1, 1, 1, 1)))
    torch.testing.assert_close(grey, x.mean(1, keepdim=True).expand_as(x))


def test_one_draw_serves_x_and_its_reconstruction_and_another_the_prior_samples():
    x = face_batch(4)
    seen = discriminator_input(x, x.clone(), x.clone(), StepSettings(augment=augment.POLICIES),
                               torch.Generator().manual_seed(0))
    real, reconstructed, prior = seen.split(4)
    assert torch.equal(real, reconstructed)
    assert not torch.allclose(real, x) and not torch.allclose(prior, real)
    assert torch.equal(discriminator_input(x, x, x, StepSettings(), torch.Generator()), torch.cat([x, x, x]))


def test_augmentation_is_what_the_discriminator_sees_and_passes_gradients_to_the_decoder():
    net, x = VAEGAN(tiny_config()), face_batch(4)
    inputs: list[torch.Tensor] = []
    net.discriminator.register_forward_hook(lambda m, args, out: inputs.append(args[0].detach()))
    recorders = Optimizers(GradRecorder(net.encoder), GradRecorder(net.decoder), GradRecorder(net.discriminator))
    vaegan_step(net, x, recorders, StepSettings(augment=augment.POLICIES, equilibrium_rule=False),
                contextlib.nullcontext, torch.Generator().manual_seed(0))
    assert not torch.allclose(inputs[0][:4], x)
    assert all(g.abs().sum() > 0 for g in recorders.decoder.grads[:2])


# ------------------------------------------------------------------------------------------ SN and R1


def test_spectral_norm_replaces_the_discriminators_batch_norms():
    plain, normalised = VAEGAN(tiny_config()), VAEGAN(replace(tiny_config(), spectral_norm=True))
    layers = [m for m in normalised.discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 6 and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not batch_norms(normalised.discriminator)
    assert weights(normalised.encoder).keys() == weights(plain.encoder).keys()
    with torch.no_grad():
        logits, features = normalised.discriminator(face_batch(4))
    assert logits.shape == (4,) and features.shape[0] == 4


def gradients_with(settings: StepSettings) -> tuple[dict[str, list[torch.Tensor]], dict[str, float]]:
    torch.manual_seed(0)
    net = VAEGAN(tiny_config())
    recorders = Optimizers(GradRecorder(net.encoder), GradRecorder(net.decoder), GradRecorder(net.discriminator))
    metrics = vaegan_step(net, face_batch(4), recorders, replace(settings, equilibrium_rule=False),
                          contextlib.nullcontext, torch.Generator().manual_seed(0))
    return {"enc": recorders.encoder.grads, "dec": recorders.decoder.grads,
            "dis": recorders.discriminator.grads}, metrics


def test_r1_penalty_is_nonzero_and_trains_only_the_discriminator():
    plain, _ = gradients_with(StepSettings())
    penalised, metrics = gradients_with(StepSettings(r1_weight=10.0))
    assert metrics[R1] > 0 and set(STEP_METRICS["vaegan"]) < set(metrics)   # the names the live view plots
    for net in ("enc", "dec"):
        for a, b in zip(plain[net], penalised[net], strict=True):
            torch.testing.assert_close(a, b)
    assert any(not torch.allclose(a, b) for a, b in zip(plain["dis"], penalised["dis"]))


def test_lowpass_likelihood_sees_colour_shifts_and_not_detail_within_a_block():
    x = face_batch(2)
    pixels = torch.arange(x.shape[-1])
    checkerboard = 0.2 * (pixels.view(1, -1) + pixels.view(-1, 1)).remainder(2).mul(2).sub(1)
    assert lowpass_nll(x + checkerboard, x, sigma=0.2) == pytest.approx(0, abs=1e-6)
    assert lowpass_nll(x + 0.1, x, sigma=0.2) == pytest.approx(0.5 * 3 * (x.shape[-1] // 4) ** 2 * 0.1 ** 2 / 0.2 ** 2)


def test_lowpass_likelihood_trains_the_encoder_and_decoder_only():
    plain, _ = gradients_with(StepSettings())
    anchored, metrics = gradients_with(StepSettings(lowpass_sigma=0.2))
    assert metrics[LOWPASS] > 0 and LOWPASS not in gradients_with(StepSettings())[1]
    for net in ("enc", "dec"):
        assert any(not torch.allclose(a, b) for a, b in zip(plain[net], anchored[net], strict=True))
    for a, b in zip(plain["dis"], anchored["dis"], strict=True):
        torch.testing.assert_close(a, b)


def test_equilibrium_rule_can_be_switched_off():
    assert balance(0.01, 5.0, StepSettings(equilibrium_rule=False)) == (True, True)
    assert balance(0.01, 0.6, StepSettings()) == (False, True)


# ------------------------------------------------------------------------------------------ wider Dec


def test_wider_decoder_widens_only_the_decoder():
    base, wide = tiny_config(), replace(tiny_config(), decoder_width=2.0)
    plain, wider = VAEGAN(base), VAEGAN(wide)
    convs = [m for m in wider.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    plain_convs = [m for m in plain.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [2 * m.out_channels for m in plain_convs]
    assert weights(wider.encoder).keys() == weights(plain.encoder).keys()
    assert all(a.shape == b.shape for a, b in zip(weights(wider.encoder).values(), weights(plain.encoder).values()))
    assert all(a.shape == b.shape for a, b in zip(weights(wider.discriminator).values(),
                                                  weights(plain.discriminator).values()))
    with torch.no_grad():
        assert wider.eval().decoder(torch.randn(2, base.latent_dim)).shape == (2, 3, 64, 64)


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_records_the_levers_and_resume_changes_them(face_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = tmp_path / "run"
    tiny = ["--batch-size", "4", "--width", "0.125", "--latent-dim", "8", "--kernel-size", "4", "--device", "cpu",
            "--crop", "none", "--threads", "1"]
    assert main(["train", str(face_folder), "--out", str(run), "--max-steps", "2", *tiny, "--ema-decay", "0.99",
                 "--augment", "cutout,translation", "--r1", "0.5", "--spectral-norm", "--decoder-width", "1.5",
                 "--equilibrium", "off", "--lowpass-sigma", "0.3"]) == 0
    meta = load_checkpoint(run / CHECKPOINT_NAME).meta
    assert meta["model_config"]["spectral_norm"] is True and meta["model_config"]["decoder_width"] == 1.5
    assert {k: meta["train_config"][k] for k in ("ema_decay", "augment", "r1_weight", "equilibrium_rule", "lowpass_sigma")} == {
        "ema_decay": 0.99, "augment": "translation,cutout", "r1_weight": 0.5, "equilibrium_rule": False,
        "lowpass_sigma": 0.3}
    assert load_model(run).config.decoder_width == 1.5

    assert main(["resume", str(run), "--max-steps", "3", "--augment", "none", "--r1", "0", "--threads", "1"]) == 0
    resumed = load_checkpoint(run / CHECKPOINT_NAME).meta["train_config"]
    assert resumed["augment"] == "" and resumed["r1_weight"] == 0 and resumed["ema_decay"] == 0.99
    assert resumed["equilibrium_rule"] is False


@pytest.mark.parametrize("option, expected", [(("--augment", "blur"), "unknown augmentation"),
                                              (("--ema-decay", "1.5"), "EMA decay"),
                                              (("--r1", "-1"), "R1 weight"),
                                              (("--lowpass-sigma", "-1"), "low-pass sigma"),
                                              (("--decoder-width", "20"), "decoder width")])
def test_bad_lever_settings_exit_2_with_one_line(option, expected, face_folder, tmp_path, capsys):
    assert main(["train", str(face_folder), "--out", str(tmp_path / "run"), *option]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err
