"""VAE-GAN core: model, training, data, checkpoints and latent operations. Never imports Qt.

Public API::

    import core
    model = core.load_model("checkpoints/faces64.safetensors", device="auto")
    z = model.encode(x)            # x: N x 3 x H x W float in [0, 1] -> N x latent_dim posterior means
    images = model.decode(z)       # -> N x 3 x H x W in [0, 1]
    model.image_size, model.latent_dim
    model.attributes               # {name: latent vector}
    fit = core.fit_faces(model, x)  # each face fitted: fit.latents, decoded with model.decode(z, tuning=fit.tuning)
"""
from importlib import import_module
from typing import Any

__all__ = ["Model", "ReferenceMap", "load_model", "CheckpointError", "fit_faces", "FitSettings"]
_HOMES = {"Model": "core.api", "ReferenceMap": "core.api", "load_model": "core.api", "CheckpointError": "core.checkpoint",
          "fit_faces": "core.fit", "FitSettings": "core.fit"}


def __getattr__(name: str) -> Any:
    """The public names load on first use, so that `vaegan` can install its Ctrl+C handler before torch loads."""
    if name not in _HOMES:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
