"""keras.mixed_precision "mixed_bfloat16": the networks compute in bfloat16, every density term stays float32."""

import keras
import numpy as np
import pytest

import zoo
from layers.base import FlowLayer
from layers.priors import Prior
from zoo.presets import shipped


@pytest.fixture
def mixed():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _test_images(dataset, n=200):
    return zoo.datasets.load(dataset, "test")[0][:n]


@pytest.mark.parametrize("name,dataset", [("nf_digits", "digits"), ("nif_fmnist_small_64", "fashion_mnist"),
                                          ("dnf_fmnist_small_16", "fashion_mnist")])
def test_trained_bits_per_dim_under_mixed_bfloat16_within_0002_of_float32(name, dataset, request):
    if name not in shipped.names():
        pytest.fail(f"{name} is not shipped")
    x = _test_images(dataset)
    reference = float(np.mean(np.asarray(zoo.get(name, weights="default").bits_per_dim(x))))
    request.getfixturevalue("mixed")
    model = zoo.get(name, weights="default")
    networks = [layer for layer in model._flatten_layers() if isinstance(layer, (keras.layers.Conv2D,
                                                                                 keras.layers.Dense))]
    assert networks and {layer.compute_dtype for layer in networks} == {"bfloat16"}  # the heavy part
    densities = [layer for layer in model._flatten_layers() if isinstance(layer, (FlowLayer, Prior))]
    assert densities and {layer.compute_dtype for layer in densities} == {"float32"} and model.compute_dtype == "float32"
    assert all(v.dtype == "float32" for v in model.weights if v.dtype.startswith(("float", "bfloat")))
    value = np.asarray(model.bits_per_dim(x))
    assert value.dtype == np.float32
    assert abs(float(np.mean(value)) - reference) < 0.002, (float(np.mean(value)), reference)


def test_a_short_training_run_under_the_policy_reaches_the_float32_validation_bits_per_dim(tmp_path, mixed):
    images = zoo.load_digits_images()[0]
    args = dict(model="nf_digits", dataset=(images[:1280], images[1280:]), epochs=3, batch_size=32,
                model_overrides=dict(num_levels=2, steps_per_level=2, hidden_channels=32), checkpoint_every=0,
                sample_every=0, tensorboard=False, verbose=0)
    mixed_run = zoo.train(out=str(tmp_path / "mixed"), **args)
    assert mixed_run.model.layers and any(layer.compute_dtype == "bfloat16" for layer in mixed_run.model._flatten_layers())
    keras.mixed_precision.set_global_policy("float32")
    float_run = zoo.train(out=str(tmp_path / "float"), **args)
    a, b = mixed_run.history[-1]["val_bits_per_dim"], float_run.history[-1]["val_bits_per_dim"]
    assert abs(a - b) < 0.02, (a, b)
    assert float_run.history[-1]["val_bits_per_dim"] < float_run.history[0]["val_bits_per_dim"]


def test_vector_models_and_other_policies_are_refused(tmp_path, mixed):
    for name in ("nf_spiral", "nf_spread_fading_square"):  # vectors, and float images
        refused = "Only pixel models .* take 'mixed_bfloat16'.*set_global_policy\\('float32'\\)"
        with pytest.raises(ValueError, match=refused):
            zoo.get(name)
    keras.mixed_precision.set_global_policy("mixed_float16")
    with pytest.raises(ValueError, match="loss scaling.*mixed_bfloat16"):
        zoo.train(model="nf_digits", epochs=1, out=str(tmp_path / "f16"), tensorboard=False, verbose=0)
