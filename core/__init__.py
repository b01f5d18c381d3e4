"""VAE-GAN core: model, training, data, checkpoints and latent operations. Never imports Qt.

Public API::

    import core
    model = core.load_model("checkpoints/faces64.safetensors", device="auto")
    z = model.encode(x)            # x: N x 3 x H x W float in [0, 1] -> N x latent_dim posterior means
    images = model.decode(z)       # -> N x 3 x H x W in [0, 1]
    model.image_size, model.latent_dim
    model.attributes               # {name: latent vector}
"""
from core.api import Model, ReferenceMap, load_model
from core.checkpoint import CheckpointError

__all__ = ["Model", "ReferenceMap", "load_model", "CheckpointError"]
