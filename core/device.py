"""Device choice and the precision/threading levers that make each device fast."""
from __future__ import annotations

import contextlib
import functools
import os
from typing import Callable

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class DeviceError(ValueError):
    """The requested device is not available on this machine."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; a named device must exist."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if base == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' requested but no CUDA GPU is available (use --device cpu or auto)")
    if base == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("device 'mps' requested but Apple's Metal backend is not available")
    return torch.device(name)


def available_devices() -> list[tuple[str, str]]:
    """(device string, human description) for every device this machine can train on."""
    found = [(f"cuda:{i}", torch.cuda.get_device_name(i)) for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append(("mps", "Apple GPU (Metal)"))
    found.append(("cpu", f"CPU ({os.cpu_count()} cores)"))
    return found


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU executes bfloat16 natively (AVX512-BF16 or AMX); emulated bf16 is slower."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_for(device: torch.device, enabled: bool = True) -> Callable[[], contextlib.AbstractContextManager]:
    """Mixed precision: bf16 on CUDA (Ampere or newer) and on CPUs with native bf16; off elsewhere."""
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    if enabled and device.type == "cpu" and cpu_has_fast_bf16():
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


def uses_channels_last(device: torch.device) -> bool:
    return device.type in ("cpu", "cuda")


def default_cpu_threads() -> int:
    """Leave one core for the GUI thread and the OS on small machines."""
    cores = os.cpu_count() or 1
    return max(1, cores - 1) if cores <= 4 else cores - 2
