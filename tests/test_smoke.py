import core


def test_tiny_model_round_trips_through_load_model(tiny_model_path):
    model = core.load_model(tiny_model_path, device="cpu")
    assert model.latent_dim == 8 and model.image_size == 64
    assert set(model.attributes) == {"Smiling", "Eyeglasses"}
    assert model.reference is not None and model.reference.thumbnails.shape == (60, 3, 64, 64)
    assert model.reference.coords.shape == (60, 2)
