"""Training throughput (images/s): our VAE-GAN step with the trainer's levers vs a plain PyTorch port.

ours      core.steps.vaegan_step as the Trainer runs it: channels_last weights and batches, bf16 autocast
          where the device executes bf16 natively (core.device.autocast_for).
          Both run with torch's default thread count, so the ratio compares the steps, not thread settings.
baseline  the same networks, batch and losses written the usual way: contiguous NCHW fp32, three
          separate backward passes, the discriminator on detached fakes in a second forward pass.

Both run every update on every step (our equilibrium rule is switched off so it cannot skip work).
Rounds alternate ours / baseline after a warm-up, so background load affects both alike.

    python benchmarks/train_throughput.py --width 0.25 --rounds 2      # quick check
    python benchmarks/train_throughput.py                              # the paper's networks, batch 64
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import math
import statistics
import time
from typing import Callable

import torch

from core.device import autocast_for, cpu_has_fast_bf16, resolve_device, uses_channels_last
from core.losses import bce_fake, bce_real, feature_nll, kl_prior
from core.model import VAEGAN, ModelConfig
from core.steps import Optimizers, StepSettings, vaegan_step

ALWAYS_UPDATE_ALL = StepSettings(margin=math.inf)
"""An infinite margin means the equilibrium rule never skips an update, like the baseline."""

Step = Callable[[torch.Tensor], None]


def adam(net: VAEGAN, lr: float = 3e-4) -> Optimizers:
    def make(module: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(module.parameters(), lr=lr, betas=(0.5, 0.999))

    return Optimizers(make(net.encoder), make(net.decoder), make(net.discriminator))


def our_step(net: VAEGAN, device: torch.device) -> Step:
    """A step function configured the way core.trainer.Trainer trains."""
    channels_last = uses_channels_last(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt, autocast, generator = adam(net), autocast_for(device), torch.Generator(device=device).manual_seed(0)

    def step(x: torch.Tensor) -> None:
        x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        vaegan_step(net, x, opt, ALWAYS_UPDATE_ALL, autocast, generator)

    return step


def baseline_step(net: VAEGAN, device: torch.device, gamma: float = StepSettings.gamma) -> Step:
    """The step function of a straightforward fp32 port of the same algorithm."""
    opt = adam(net)
    enc, dec, dis = net.encoder, net.decoder, net.discriminator
    assert dis is not None

    def step(x: torch.Tensor) -> None:
        n = x.shape[0]
        mu, logvar = enc(x)
        x_rec = dec(mu + torch.randn_like(mu) * torch.exp(0.5 * logvar))
        x_prior = dec(torch.randn_like(mu))
        logits, features = dis(torch.cat([x, x_rec, x_prior]))
        feature = feature_nll(features[n:2 * n], features[:n])
        gan = bce_real(logits[n:2 * n]) + bce_real(logits[2 * n:])

        opt.encoder.zero_grad()
        (kl_prior(mu, logvar) + feature).backward(retain_graph=True, inputs=list(enc.parameters()))
        opt.decoder.zero_grad()
        (gamma * feature + gan).backward(inputs=list(dec.parameters()))

        d_logits, _ = dis(torch.cat([x, x_rec.detach(), x_prior.detach()]))
        opt.discriminator.zero_grad()
        (bce_real(d_logits[:n]) + bce_fake(d_logits[n:2 * n]) + bce_fake(d_logits[2 * n:])).backward()
        for o in (opt.encoder, opt.decoder, opt.discriminator):
            o.step()

    return step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def images_per_second(step: Step, x: torch.Tensor, steps: int) -> float:
    synchronize(x.device)
    start = time.perf_counter()
    for _ in range(steps):
        step(x)
    synchronize(x.device)
    return steps * x.shape[0] / (time.perf_counter() - start)


def precision_note(device: torch.device) -> str:
    if device.type == "cpu" and not cpu_has_fast_bf16():
        return ("this CPU has no native bf16 (AVX512-BF16/AMX), so ours runs in fp32 too: the difference "
                "here is channels_last and the structure of the step only")
    autocast_on = autocast_for(device) is not contextlib.nullcontext
    return "ours uses bf16 autocast" if autocast_on else "ours runs in fp32 on this device"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0 = the paper's)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each")
    parser.add_argument("--steps", type=int, default=3, help="training steps per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each first")
    parser.add_argument("--kernel-size", type=int, default=5, choices=(4, 5))
    parser.add_argument("--image-size", type=int, default=64, choices=(64, 128))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    device = resolve_device(args.device)
    cfg = ModelConfig(image_size=args.image_size, width=args.width, kernel_size=args.kernel_size)
    torch.manual_seed(0)
    net = VAEGAN(cfg).to(device)
    x = torch.rand(args.batch_size, 3, cfg.image_size, cfg.image_size, device=device) * 2 - 1
    contenders = {"ours": our_step(copy.deepcopy(net), device), "baseline": baseline_step(copy.deepcopy(net), device)}

    print(f"device {device}, width {cfg.width}, kernel {cfg.kernel_size}, batch {args.batch_size}, "
          f"{args.rounds} rounds x {args.steps} steps each")
    print(f"threads: {torch.get_num_threads()} each (torch default); {precision_note(device)}")
    for step in contenders.values():
        images_per_second(step, x, args.warmup)
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for round_number in range(1, args.rounds + 1):
        for name, step in contenders.items():
            rates[name].append(images_per_second(step, x, args.steps))
        print(f"round {round_number}: " + ", ".join(f"{name} {r[-1]:.1f} img/s" for name, r in rates.items()))
    median = {name: statistics.median(r) for name, r in rates.items()}
    for name, value in median.items():
        print(f"{name:>8}: median {value:8.1f} images/s  ({args.batch_size / value * 1000:.0f} ms per step)")
    print(f"ratio ours / baseline: {median['ours'] / median['baseline']:.2f}x")


if __name__ == "__main__":
    main()
