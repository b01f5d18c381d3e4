"""The training core: gradient routing of the VAE-GAN step, loss signs, the equilibrium rule, a 16-image
overfit for both model types, deterministic resume, pause/resume/stop, NaN rollback and seeding."""
from __future__ import annotations

import contextlib
import copy
import json
import math
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from torch import nn

import core.steps as steps_module
import core.trainer as trainer_module
from conftest import make_tiny_model, synthetic_face
from core.api import load_model
from core.augment import POLICIES
from core.bundle import save_inference_model
from core.checkpoint import load_checkpoint
from core.dataset import FaceDataset, to_signed
from core.losses import bce_fake, bce_real, feature_nll, kl_prior
from core.model import VAEGAN, ModelConfig
from core.steps import Optimizers, StepSettings, balance, vaegan_step
from core.trainer import METRICS_NAME, Trainer, TrainConfig, TrainerCallbacks, TrainingError

TIMING_KEYS = {"images_per_s", "eta_s", "elapsed_s", "time"}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks gain nothing from threads, and on a busy machine extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(model_type: str = "vaegan") -> ModelConfig:
    return ModelConfig(latent_dim=8, width=0.125, kernel_size=4, model_type=model_type)


def face_images(n: int) -> torch.Tensor:
    return torch.from_numpy(np.stack([synthetic_face(i) for i in range(n)])).permute(0, 3, 1, 2).contiguous()


def tiny_dataset(n: int = 16) -> FaceDataset:
    return FaceDataset(face_images(n), [f"face_{i}.png" for i in range(n)])


def tiny_net(seed: int = 0) -> VAEGAN:
    torch.manual_seed(seed)
    return VAEGAN(tiny_config())


def face_batch(n: int = 4) -> torch.Tensor:
    return to_signed(face_images(n))


def train_config(**changes) -> TrainConfig:
    base = dict(batch_size=4, max_steps=4, device="cpu", log_interval=1, preview_interval=10**6,
                checkpoint_interval_s=1e9, seed=3, lr=1e-3)
    return TrainConfig(**{**base, **changes})


# ----------------------------------------------------------------------------------- gradient routing


class GradRecorder:
    """Stands in for an optimiser: keeps the gradients the step assigned and changes no weight."""

    def __init__(self, module: nn.Module) -> None:
        self.params = list(module.parameters())
        self.grads: list[torch.Tensor] | None = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        self.grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in self.params]


@pytest.fixture
def both_updates_always(monkeypatch):
    """Switch off the equilibrium rule so every step computes all three updates."""
    monkeypatch.setattr(steps_module, "balance", lambda *args: (True, True))


ROUTING_CASES = {
    "the paper's step": (tiny_config(), StepSettings()),
    "with every recipe lever": (replace(tiny_config(), spectral_norm=True, decoder_width=2.0),
                                StepSettings(augment=POLICIES, r1_weight=1.0, lowpass_sigma=0.2)),
}
"""The gradient-routing tests hold for the paper's step and for one with DiffAugment, R1, SN, a wider Dec and the
low-pass likelihood."""


@pytest.fixture(params=ROUTING_CASES)
def routing_case(request) -> tuple[VAEGAN, StepSettings]:
    cfg, settings = ROUTING_CASES[request.param]
    torch.manual_seed(0)
    return VAEGAN(cfg), settings


def step_gradients(net: VAEGAN, x: torch.Tensor, settings: StepSettings = StepSettings()
                   ) -> dict[str, list[torch.Tensor]]:
    """The gradient each network receives from one vaegan_step (weights untouched)."""
    recorders = Optimizers(GradRecorder(net.encoder), GradRecorder(net.decoder), GradRecorder(net.discriminator))
    vaegan_step(net, x, recorders, settings, contextlib.nullcontext, torch.Generator().manual_seed(0))
    return {"enc": recorders.encoder.grads, "dec": recorders.decoder.grads, "dis": recorders.discriminator.grads}


def with_changed_logits(net: VAEGAN) -> VAEGAN:
    """A copy whose discriminator logits (hence every GAN loss) change while Dis_l features stay the same."""
    changed = copy.deepcopy(net)
    forward = changed.discriminator.forward

    def shifted(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, features = forward(x)
        return 3 * logits + 1, features

    changed.discriminator.forward = shifted
    return changed


def assert_same_grads(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    for ga, gb in zip(a, b, strict=True):
        torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-7)


def differ(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return any(not torch.allclose(ga, gb, rtol=1e-3, atol=1e-6) for ga, gb in zip(a, b, strict=True))


def test_gan_loss_sends_no_gradient_to_the_encoder(both_updates_always, routing_case):
    (net, settings), x = routing_case, face_batch()
    plain = step_gradients(copy.deepcopy(net), x, settings)
    shifted = step_gradients(with_changed_logits(net), x, settings)
    assert_same_grads(plain["enc"], shifted["enc"])
    assert differ(plain["dec"], shifted["dec"]), "the logit change should alter the decoder's GAN gradient"


def test_feature_loss_never_trains_the_discriminator(both_updates_always, monkeypatch, routing_case):
    (net, settings), x = routing_case, face_batch()
    plain = step_gradients(copy.deepcopy(net), x, settings)
    monkeypatch.setattr(steps_module, "feature_nll", lambda fake, real: 1000 * feature_nll(fake, real))
    amplified = step_gradients(copy.deepcopy(net), x, settings)
    assert_same_grads(plain["dis"], amplified["dis"])
    assert differ(plain["enc"], amplified["enc"]), "the amplified feature loss should alter the encoder's gradient"


def test_discriminator_sees_data_reconstructions_and_prior_samples(both_updates_always):
    net, x = tiny_net(), face_batch()
    with torch.no_grad():  # a near-deterministic posterior, so Dec's first input must be Enc(x)'s mean
        net.encoder.logvar.weight.zero_()
        net.encoder.logvar.bias.fill_(-30.0)
    seen: dict[str, list] = {"enc": [], "dec_in": [], "dec_out": [], "dis_in": []}

    def record_decoder(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        seen["dec_in"].append(args[0].detach())
        seen["dec_out"].append(out.detach())

    net.encoder.register_forward_hook(lambda m, args, out: seen["enc"].append(out[0].detach()))
    net.decoder.register_forward_hook(record_decoder)
    net.discriminator.register_forward_hook(lambda m, args, out: seen["dis_in"].append(args[0].detach()))
    step_gradients(net, x)

    n = x.shape[0]
    (dis_in,), (mu,) = seen["dis_in"], seen["enc"]
    assert dis_in.shape[0] == 3 * n
    assert torch.equal(dis_in[:n], x)
    reconstruction_input = [i for i, z in enumerate(seen["dec_in"]) if torch.allclose(z, mu, atol=1e-5)]
    assert len(reconstruction_input) == 1 and len(seen["dec_in"]) == 2, "Dec must decode Enc(x) and one z_prior"
    prior = seen["dec_in"][1 - reconstruction_input[0]]
    assert 0.4 < prior.std().item() < 2.0, "the other decoder input should be drawn from N(0, I)"
    generated = torch.cat([dis_in[n:2 * n], dis_in[2 * n:]])
    assert any(torch.equal(generated, torch.cat(order)) for order in (seen["dec_out"], seen["dec_out"][::-1]))


@pytest.mark.parametrize("dis_real, dis_fake, expected", [
    (0.6, 0.6, (True, True)),    # in balance: both learn
    (0.1, 0.6, (False, True)),   # Dis too good on real images: it pauses
    (0.6, 1.5, (True, False)),   # Dis too weak on fakes: the decoder's GAN update pauses
    (0.1, 1.5, (True, True)),    # both rules fire: never freeze everything
])
def test_equilibrium_rule(dis_real, dis_fake, expected):
    assert balance(dis_real, dis_fake, StepSettings()) == expected


def test_loss_signs():
    big = torch.full((5,), 20.0)
    assert bce_real(big).item() < 1e-6
    assert bce_fake(big).item() > 19
    assert bce_real(-big).item() > 19
    zeros = torch.zeros(3, 8)
    assert kl_prior(zeros, zeros).item() == 0.0
    assert kl_prior(torch.full((3, 8), 0.5), zeros).item() > 0
    assert kl_prior(zeros, torch.full((3, 8), -1.0)).item() > 0
    assert kl_prior(zeros, torch.full((3, 8), 1.0)).item() > 0


def real_minus_fake(dis: nn.Module, images: torch.Tensor, n: int) -> float:
    with torch.no_grad():
        probs = torch.sigmoid(dis(images)[0])
    return probs[:n].mean().item() - probs[n:].mean().item()


def test_discriminator_update_separates_real_from_fake(both_updates_always):
    net, x = tiny_net(), face_batch(8)
    seen: list[torch.Tensor] = []
    net.discriminator.register_forward_hook(lambda m, args, out: seen.append(args[0].detach()))
    optimizers = Optimizers(GradRecorder(net.encoder), GradRecorder(net.decoder),
                            torch.optim.SGD(net.discriminator.parameters(), lr=0.05))
    metrics = vaegan_step(net, x, optimizers, StepSettings(), contextlib.nullcontext, torch.Generator().manual_seed(0))
    before = metrics["d_real"] - (metrics["d_rec"] + metrics["d_prior"]) / 2
    assert real_minus_fake(net.discriminator, seen[0], len(x)) > before


# ----------------------------------------------------------------------------------- whole training runs


def reconstruction_mse(trainer: Trainer, images: torch.Tensor) -> float:
    trainer.model.eval()
    with torch.no_grad():
        x = to_signed(images).contiguous(memory_format=torch.channels_last)
        error = (trainer.model.decoder(trainer.model.encoder(x)[0]) - x).pow(2).mean().item()
    trainer.model.train()
    return error


def test_tiny_vae_overfits_16_faces(tmp_path):
    data = tiny_dataset(16)
    cfg = train_config(batch_size=8, max_steps=60, log_interval=60, seed=0, lr=3e-3, kl_weight=0.1)
    trainer = Trainer(data, tmp_path, tiny_config("vae"), cfg)
    before = reconstruction_mse(trainer, data.images)
    trainer.run()
    after = reconstruction_mse(trainer, data.images)
    assert after < 0.75 * before, f"reconstruction MSE {before:.4f} -> {after:.4f}"


def test_checkpoints_carry_the_latent_gaussian_of_the_training_faces(tmp_path):
    """Random faces of a user's own run come from where its faces encode, like the bundled model's."""
    data = tiny_dataset(16)
    trainer = Trainer(data, tmp_path, tiny_config("vae"), train_config(batch_size=8, max_steps=4, seed=0))
    model = load_model(trainer.run(), device="cpu")
    assert model.latent_gaussian is not None
    assert model.meta["random_faces"] == "Gaussian fitted to 16 training faces"
    means, variances = model.posterior(data.images.float() / 255)
    assert torch.allclose(model.latent_gaussian.mean, means.mean(0), atol=1e-3)
    covariance = model.latent_gaussian.scale_tril @ model.latent_gaussian.scale_tril.T
    assert torch.allclose(covariance.diagonal(), means.var(0) + variances.mean(0), rtol=0.02, atol=1e-3)


def test_tiny_vaegan_reconstruction_error_falls_on_16_faces(tmp_path):
    """The VAE-GAN learns reconstructions in Dis_l feature space (its L_llike), which is what must fall.
    (Pixel MSE of a width-0.125 VAE-GAN rises over its first ~100 steps while the decoder follows the
    GAN gradient, so it is no test of learning at this size.)"""
    cfg = train_config(batch_size=8, max_steps=40, log_interval=20, seed=0, lr=3e-4, gamma=1.0, kl_weight=0.1)
    Trainer(tiny_dataset(16), tmp_path, tiny_config("vaegan"), cfg).run()
    first, last = (r["feature"] for r in metrics_lines(tmp_path))
    assert last < 0.9 * first, f"feature reconstruction error {first:.1f} -> {last:.1f}"


def metrics_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / METRICS_NAME).read_text().splitlines()]


def losses_at(lines: list[dict], step: int) -> dict:
    (record,) = [r for r in lines if r["step"] == step]
    return {k: v for k, v in record.items() if k not in TIMING_KEYS}


def test_resume_continues_the_same_schedule(tmp_path):
    data = tiny_dataset(16)  # 4 steps per epoch: the 6 steps cross an epoch boundary
    straight, split = tmp_path / "straight", tmp_path / "split"
    Trainer(data, straight, tiny_config(), train_config(max_steps=6, log_interval=2)).run()
    Trainer(data, split, tiny_config(), train_config(max_steps=3, log_interval=2)).run()
    resumed = Trainer.from_run(split, data, max_steps=6)
    assert resumed.step == 3
    resumed.run()

    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert set(a.tensors) == set(b.tensors)
    for key in a.tensors:
        assert torch.equal(a.tensors[key], b.tensors[key]), key
    assert a.meta["training_state"]["step"] == b.meta["training_state"]["step"] == 6
    assert [r["step"] for r in metrics_lines(split)] == [2, 3, 4, 6]
    for step in (2, 6):
        assert losses_at(metrics_lines(split), step) == losses_at(metrics_lines(straight), step)


def parameters_of(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def test_warm_start_copies_enc_and_dec_and_the_warmup_trains_only_dis(tmp_path):
    pretrained = save_inference_model(make_tiny_model(with_reference=False, seed=5), tmp_path / "pretrained.safetensors",
                                      half_precision=False)
    source = load_model(pretrained, device="cpu").net
    cfg = train_config(max_steps=2, init_from=str(pretrained), discriminator_warmup_steps=2)
    trainer = Trainer(tiny_dataset(8), tmp_path / "warm", tiny_config(), cfg)
    assert_same_grads(parameters_of(trainer.model.encoder), parameters_of(source.encoder))
    assert_same_grads(parameters_of(trainer.model.decoder), parameters_of(source.decoder))
    dis_before = parameters_of(trainer.model.discriminator)
    trainer.run()
    assert_same_grads(parameters_of(trainer.model.encoder), parameters_of(source.encoder))
    assert_same_grads(parameters_of(trainer.model.decoder), parameters_of(source.decoder))
    assert differ(parameters_of(trainer.model.discriminator), dis_before)
    assert all(r["train_dis"] == 1.0 and r["train_gen"] == 0.0 for r in metrics_lines(tmp_path / "warm"))
    warm = load_model(tmp_path / "warm", device="cpu")
    assert warm.meta["training_state"]["started_from"]["model"] == str(pretrained)
    assert warm.images_trained_on == 1234 + 2 * 4  # the pretrained model's images, then this run's

    after_warmup = Trainer(tiny_dataset(8), tmp_path / "after", tiny_config(), replace(cfg, discriminator_warmup_steps=1))
    after_warmup.run()
    assert differ(parameters_of(after_warmup.model.encoder), parameters_of(source.encoder))
    pretrained.unlink()  # a resumed run needs only its own checkpoint, and keeps the record of where it began
    resumed = Trainer.from_run(tmp_path / "warm", tiny_dataset(8), max_steps=3)
    assert resumed.step == 2 and resumed.history["started_from"]["images_seen"] == 1234


def test_frozen_encoder_keeps_enc_and_its_statistics_while_dec_and_dis_train(tmp_path):
    pretrained = save_inference_model(make_tiny_model(with_reference=False, seed=5), tmp_path / "pretrained.safetensors",
                                      half_precision=False)
    cfg = train_config(max_steps=3, init_from=str(pretrained), freeze_encoder=True, ema_decay=0.5)
    trainer = Trainer(tiny_dataset(8), tmp_path / "frozen", tiny_config(), cfg)
    encoder_before = {k: v.clone() for k, v in trainer.model.encoder.state_dict().items()}
    decoder_before = parameters_of(trainer.model.decoder)
    trainer.run()
    encoder_after = trainer.model.encoder.state_dict()
    assert all(torch.equal(encoder_before[k], encoder_after[k]) for k in encoder_before)  # batch-norm buffers too
    assert differ(parameters_of(trainer.model.decoder), decoder_before)
    assert load_model(tmp_path / "frozen", device="cpu").meta["train_config"]["freeze_encoder"] is True
    with pytest.raises(ValueError, match="needs a model to start from"):
        train_config(freeze_encoder=True)


def test_warm_start_refuses_another_architecture(tmp_path):
    pretrained = save_inference_model(make_tiny_model(with_reference=False), tmp_path / "pretrained.safetensors")
    wider = ModelConfig(latent_dim=8, width=0.25, kernel_size=4)
    with pytest.raises(TrainingError, match="architecture"):
        Trainer(tiny_dataset(8), tmp_path / "run", wider, train_config(init_from=str(pretrained)))


def test_learning_rate_anneals_linearly_to_a_tenth_over_the_last_steps():
    cfg = train_config(lr=1e-3, anneal_steps=4)
    assert [cfg.lr_at(step, 10) for step in range(10)] == pytest.approx(
        [1e-3] * 6 + [7.75e-4, 5.5e-4, 3.25e-4, 1e-4])
    assert [train_config(lr=1e-3).lr_at(step, 10) for step in (0, 9)] == [1e-3, 1e-3]
    with pytest.raises(ValueError, match="annealing"):
        train_config(anneal_steps=-1)


def test_trainer_applies_the_annealed_learning_rate_and_logs_it(tmp_path):
    trainer = Trainer(tiny_dataset(16), tmp_path, tiny_config(), train_config(max_steps=4, lr=1e-3, anneal_steps=2))
    trainer.run()
    assert [r["lr"] for r in metrics_lines(tmp_path)] == pytest.approx([1e-3, 1e-3, 5.5e-4, 1e-4])
    for o in (trainer.optimizers.encoder, trainer.optimizers.decoder, trainer.optimizers.discriminator):
        assert o.param_groups[0]["lr"] == pytest.approx(1e-4)


class TickingClock:
    """Stands in for the trainer's `time` module: perf_counter advances one second per call."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now

    def __getattr__(self, name: str):
        return getattr(time, name)


def test_a_run_planned_in_minutes_sets_its_steps_from_its_speed_and_anneals(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "time", TickingClock())   # one step per second
    cfg = train_config(max_steps=None, max_minutes=1.0, anneal_share=0.25)
    trainer = Trainer(tiny_dataset(16), tmp_path, tiny_config(), cfg)
    assert trainer.planned_steps_text() == "those that fit in 1 minute"
    trainer.run()
    assert trainer.step == trainer.total_steps == 60 and trainer.planned_steps_text() == "60"
    resumed = Trainer.from_run(tmp_path, tiny_dataset(16))   # finished, and stays so (no steps at the full rate)
    assert resumed.step == resumed.total_steps == 60 and not resumed.awaiting_speed
    huge = Trainer(tiny_dataset(16), tmp_path / "huge", tiny_config(), train_config(max_steps=10**9))
    assert huge.planned_steps_text() == "1,000,000,000"
    lrs = [r["lr"] for r in metrics_lines(tmp_path)]
    assert lrs[:45] == pytest.approx([1e-3] * 45) and lrs[-1] == pytest.approx(1e-4)
    capped = Trainer(tiny_dataset(16), tmp_path / "capped", tiny_config(), replace(cfg, max_steps=30))
    capped.run()
    assert capped.step == 30
    with pytest.raises(ValueError, match="minutes"):
        train_config(max_minutes=0.0)


def wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_pause_resume_and_stop_take_effect_within_one_step(tmp_path):
    step_times: list[float] = []

    class Clock(TrainerCallbacks):
        def on_metrics(self, record: dict[str, float]) -> None:
            step_times.append(time.monotonic())

    trainer = Trainer(tiny_dataset(16), tmp_path, tiny_config(), train_config(max_steps=10**6), Clock())
    result: list[Path | None] = []
    thread = threading.Thread(target=lambda: result.append(trainer.run()), daemon=True)
    thread.start()
    wait_until(lambda: len(step_times) >= 3)  # metrics of step 3 are out: two step durations measured

    trainer.pause()
    at_pause = trainer.step
    settle = max(0.3, 3 * (step_times[-1] - step_times[-3]) / 2)  # three step durations
    time.sleep(settle)
    paused_at = trainer.step
    assert paused_at <= at_pause + 1
    time.sleep(settle)
    assert trainer.step == paused_at and trainer.paused

    trainer.resume()
    wait_until(lambda: trainer.step > paused_at)
    trainer.stop()
    at_stop = trainer.step
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert trainer.step <= at_stop + 1
    assert result and result[0] is not None and result[0].exists()
    assert load_checkpoint(result[0]).meta["training_state"]["step"] == trainer.step


def test_non_finite_loss_rolls_back_to_the_last_good_weights(tmp_path, monkeypatch):
    calls = 0
    before_bad_step: dict[str, torch.Tensor] = {}
    after_rollback: dict[str, torch.Tensor] = {}
    messages: list[str] = []

    def step_that_explodes_once(net, x, opt, settings, autocast, generator):
        nonlocal calls
        calls += 1
        if calls != 3:
            return vaegan_step(net, x, opt, settings, autocast, generator)
        before_bad_step.update(copy.deepcopy(net.state_dict()))
        metrics = vaegan_step(net, x, opt, settings, autocast, generator)
        with torch.no_grad():
            next(net.decoder.parameters()).fill_(float("nan"))
        return {**metrics, "gen": float("nan")}

    class Watch(TrainerCallbacks):
        def on_message(self, text: str) -> None:
            messages.append(text)
            if "non-finite" in text:
                after_rollback.update(copy.deepcopy(trainer.model.state_dict()))

    monkeypatch.setattr(trainer_module, "vaegan_step", step_that_explodes_once)
    trainer = Trainer(tiny_dataset(16), tmp_path, tiny_config(), train_config(max_steps=5), Watch())
    trainer.run()

    assert any("non-finite" in m and "gen=nan" in m and "rolled back" in m for m in messages)
    assert set(after_rollback) == set(before_bad_step)
    for key, tensor in before_bad_step.items():
        assert torch.equal(after_rollback[key], tensor), key
    assert trainer.step == 5 and calls == 5 and trainer.history["rollbacks"] == 1
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert load_checkpoint(tmp_path).meta["training_state"]["rollbacks"] == 1


def first_step_losses(run_dir: Path, seed: int) -> dict:
    records: list[dict] = []

    class Keep(TrainerCallbacks):
        def on_metrics(self, record: dict[str, float]) -> None:
            records.append(record)

    Trainer(tiny_dataset(16), run_dir, tiny_config(), train_config(max_steps=1, seed=seed), Keep()).run()
    return {k: v for k, v in records[0].items() if k not in TIMING_KEYS}


def test_same_seed_gives_the_same_first_step(tmp_path):
    first = first_step_losses(tmp_path / "a", seed=5)
    assert first_step_losses(tmp_path / "b", seed=5) == first
    other = first_step_losses(tmp_path / "c", seed=6)
    assert any(not math.isclose(other[k], first[k]) for k in ("kl", "feature", "gen"))


class WarmupClock(TickingClock):
    """Half a second per step while Dis warms up alone, a second per step after."""

    def __init__(self, warmup_steps: int) -> None:
        super().__init__()
        self.warmup_steps = warmup_steps
        self.trainer: Trainer | None = None

    def perf_counter(self) -> float:
        self.now += 0.5 if self.trainer is None or self.trainer.step <= self.warmup_steps else 1.0
        return self.now


def test_a_run_planned_in_minutes_measures_its_speed_again_after_the_discriminator_warmup(tmp_path, monkeypatch):
    clock = WarmupClock(warmup_steps=20)
    monkeypatch.setattr(trainer_module, "time", clock)
    cfg = train_config(max_steps=None, max_minutes=1.0, anneal_share=0.25, discriminator_warmup_steps=20)
    clock.trainer = trainer = Trainer(tiny_dataset(16), tmp_path, tiny_config(), cfg)
    trainer.run()
    assert trainer.step == trainer.total_steps == 70   # 20 warm-up steps in 10 s, then 50 at one a second
    assert trainer.elapsed_s <= 61
