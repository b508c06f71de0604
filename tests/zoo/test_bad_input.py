"""Bad input gets an error naming the tensor, what was expected and what was received."""

import keras
import numpy as np
import pytest

import layers
import zoo


@pytest.fixture(scope="module")
def glow():
    model = zoo.make_glow((8, 8, 1), num_levels=2, steps_per_level=1, hidden_channels=8, n_bits=5)
    model.initialize(zoo.load_digits_images()[0][:64])
    return model


@pytest.fixture(scope="module")
def vector_model():
    return zoo.make_realnvp(2, num_couplings=2, hidden_units=8)


def _pixels(shape=(4, 8, 8, 1)):
    return np.random.default_rng(0).integers(0, 256, size=shape).astype("uint8")


def test_wrong_rank_names_tensor_and_shapes(glow):
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, 8, 8, 1\).*received shape \(batch, 8, 8\)"):
        glow.log_prob(_pixels((4, 8, 8)))


def test_wrong_channel_count(glow):
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, 8, 8, 1\).*received shape \(batch, 8, 8, 3\)"):
        glow.log_prob(_pixels((4, 8, 8, 3)))


@pytest.mark.parametrize("make", [
    lambda x: x.astype("int32"),                              # whole numbers, but not uint8
    lambda x: x.astype("float32"),                            # whole-valued floats
    lambda x: x.astype("float32") / 255.0,                    # images already scaled to [0, 1]
    lambda x: (x > 127).astype("float32"),                    # binarized 0/1 masks
    lambda x: (x.astype("float32") / 255.0 * 16).round(),     # scikit-learn's raw 0..16 digits
], ids=["int32", "float_whole", "float_unit", "binary", "digits_0_16"])
def test_non_uint8_pixels_are_refused_with_the_conversion(glow, make):
    with pytest.raises(ValueError, match=r"has dtype \w+, but this model takes uint8 pixels.*astype\('uint8'\)"):
        glow.log_prob(make(_pixels()))


def test_non_uint8_training_data_is_refused_before_the_first_step(glow):
    import tensorflow as tf

    glow.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = [np.asarray(w) for w in glow.trainable_weights]
    floats = _pixels((64, 8, 8, 1)).astype("float32")
    with pytest.raises(ValueError, match=r"fit: the training data has dtype float32.*uint8"):
        glow.fit(floats, batch_size=64, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"fit: the training data has dtype float32.*uint8"):
        glow.fit(tf.data.Dataset.from_tensor_slices(floats).batch(64), epochs=1, verbose=0)
    for b, a in zip(before, [np.asarray(w) for w in glow.trainable_weights]):
        np.testing.assert_array_equal(a, b)  # nothing was learned


def test_nan_vectors_are_refused(vector_model):
    bad = np.zeros((3, 2), "float32")
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"`x` contains 1 NaN or infinite value"):
        vector_model.log_prob(bad)


def test_wrong_vector_width(vector_model):
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, 2\).*received shape \(batch, 3\)"):
        vector_model.log_prob(np.zeros((3, 3), "float32"))


def test_bad_vectors_inside_fit_fail_the_step_with_the_message(vector_model):
    import tensorflow as tf

    bad = np.zeros((64, 2), "float32")
    bad[5, 0] = np.nan
    vector_model.compile(optimizer=keras.optimizers.Adam(1e-3))
    vector_model.initialize(np.zeros((64, 2), "float32"))  # act-norm done: fit goes straight to the graph step
    before = [np.asarray(w) for w in vector_model.trainable_weights]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"`x` contains NaN or infinite values"):
        vector_model.fit(tf.data.Dataset.from_tensor_slices(bad).batch(64), epochs=1, verbose=0)
    for b, a in zip(before, [np.asarray(w) for w in vector_model.trainable_weights]):
        np.testing.assert_array_equal(a, b)  # nothing was learned from the bad batch


def test_in_memory_float_data_with_bad_values_is_refused_before_the_first_step(vector_model):
    # Read eagerly on every backend (inside a JAX trace values cannot be read; tests/backends/jax_smoke.py repeats it).
    bad = np.zeros((64, 2), "float32")
    bad[5, 0] = np.nan
    vector_model.compile(optimizer=keras.optimizers.Adam(1e-3))
    vector_model.initialize(np.zeros((64, 2), "float32"))
    before = [np.asarray(w) for w in vector_model.trainable_weights]
    with pytest.raises(ValueError, match=r"fit: rows 0..63 of the training data break the data contract .*1 NaN or infinite"):
        vector_model.fit(bad, batch_size=32, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"fit: rows 0..63 of the validation data break the data contract"):
        vector_model.fit(np.zeros((64, 2), "float32"), batch_size=32, epochs=1, verbose=0, validation_data=(bad,))
    with pytest.raises(ValueError, match=r"evaluate: rows 0..63 of the data break the data contract"):
        vector_model.evaluate(bad, verbose=0)
    for b, a in zip(before, [np.asarray(w) for w in vector_model.trainable_weights]):
        np.testing.assert_array_equal(a, b)  # nothing was learned
    images = zoo.get("nf_spread_fading_square")  # float images in [0, 1]
    pixels = zoo.manifolds.GENERATORS["fading_square"](64).data.astype("float32")  # forgot the / 255
    with pytest.raises(ValueError, match=r"evaluate: rows 0..63 .*must lie in \[0, 1\]"):
        images.evaluate(pixels, verbose=0)


def test_decode_checks_the_latent(glow):
    with pytest.raises(ValueError, match=r"`latent` must have shape \(batch, 64\)"):
        glow.decode(np.zeros((2, 63), "float32"))
    with pytest.raises(ValueError, match="`latent` contains"):
        glow.decode(np.full((2, 64), np.nan, "float32"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_samples=0), "`num_samples` must be an int >= 1"),
    (dict(num_samples=-3), "`num_samples` must be an int >= 1"),
    (dict(num_samples=2.7), "`num_samples` must be an int >= 1"),
    (dict(num_samples=2, temperature=-1.0), "`temperature` must be a finite number >= 0"),
    (dict(num_samples=2, temperature=float("nan")), "`temperature` must be a finite number >= 0"),
    (dict(num_samples=2, noise_scale=0.5), "no observation noise"),
    (dict(num_samples=2, output="png"), "`output` must be 'uint8' or 'float'"),
    # Eager tensors are read, whatever their rank: a one-element tensor once skipped the check (NaN gave black images).
    (dict(num_samples=2, temperature=keras.ops.convert_to_tensor([-1.0])), "`temperature` must be a finite number >= 0"),
    (dict(num_samples=2, temperature=keras.ops.convert_to_tensor([float("nan")])),
     "`temperature` must be a finite number >= 0"),
    (dict(num_samples=2, temperature=keras.ops.convert_to_tensor([[float("inf")]])),
     "`temperature` must be a finite number >= 0"),
    (dict(num_samples=2, temperature=keras.ops.convert_to_tensor([1.0, 1.0])),
     r"`temperature` must be one number for the whole batch; received a tensor of shape \(2,\)"),
])
def test_sample_refuses_bad_arguments(glow, kwargs, message):
    with pytest.raises(ValueError, match=message):
        glow.sample(**kwargs)


def test_one_element_temperature_tensors_are_read_as_their_number(glow):
    one = np.asarray(glow.sample(2, temperature=keras.ops.convert_to_tensor([0.5]), seed=3))
    np.testing.assert_array_equal(one, np.asarray(glow.sample(2, temperature=0.5, seed=3)))


def test_generate_and_encode_refuse_what_they_cannot_honour(glow):
    noise = np.zeros((2, 64), "float32")
    with pytest.raises(ValueError, match="`temperature` must be a finite number >= 0"):
        glow.generate(noise, temperature=-1.0)
    with pytest.raises(ValueError, match="no observation noise"):
        glow.generate(noise, np.zeros((2, 64), "float32"))
    with pytest.raises(ValueError, match="deterministic; stochastic=True is not available"):
        glow.encode(_pixels(), stochastic=True)
    with pytest.raises(ValueError, match="no observation noise"):
        glow.decode(noise, noise_scale=0.5)


def test_layer_level_errors_name_the_problem():
    with pytest.raises(ValueError, match="divisible by 2; received height 5"):
        layers.Squeeze()(np.zeros((1, 5, 4, 1), "float32"))
    with pytest.raises(ValueError, match="at least 2 channels"):
        layers.AffineCoupling(8)(np.zeros((1, 4, 4, 1), "float32"))
    with pytest.raises(ValueError, match=r"whole numbers in \[0, 7\].*quantize_pixels"):
        layers.Dequantize(n_bits=3)(np.full((1, 4), 8.0, "float32"))
    with pytest.raises(ValueError, match="n_bits"):
        layers.Dequantize(n_bits=9)
    with pytest.raises(ValueError, match="permutation of range"):
        layers.Permute([0, 0, 1])(np.zeros((1, 3), "float32"))
    built = layers.ActNorm()
    built(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 3"):
        built(np.zeros((2, 4), "float32"))


def test_truncated_or_corrupt_keras_files_are_named_so(vector_model, tmp_path):
    path = str(tmp_path / "model.keras")
    vector_model.save(path)
    data = open(path, "rb").read()
    assert isinstance(zoo.load(path), zoo.GenerativeModel)
    truncated = str(tmp_path / "truncated.keras")
    with open(truncated, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.keras \(\d+ bytes\) is truncated or corrupt: it is not a complete zip"):
        zoo.load(truncated)
    corrupt = str(tmp_path / "corrupt.keras")  # the archive's directory intact, a stored member's bytes flipped
    with open(corrupt, "wb") as f:
        f.write(data[:40] + bytes(b ^ 0xFF for b in data[40:60]) + data[60:])
    with pytest.raises(ValueError, match="truncated or corrupt: (its member .* fails its CRC check|reading it fails)"):
        zoo.load(corrupt)
    with pytest.raises(FileNotFoundError, match="No such .keras file"):
        zoo.load(str(tmp_path / "missing.keras"))


def test_plain_keras_load_model_needs_only_import_zoo(vector_model, tmp_path):
    """Keras finds custom classes among the registered ones only: its error names the module to import
    ('zoo.models...'), and after `import zoo` keras.saving.load_model reads the file."""
    import os
    import subprocess
    import sys

    path = str(tmp_path / "model.keras")
    vector_model.save(path)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"}
    script = "import keras, sys\n{}m = keras.saving.load_model(sys.argv[1])\nprint('loaded', type(m).__name__)\n"
    without = subprocess.run([sys.executable, "-c", script.format(""), path], env=env, capture_output=True, text=True)
    assert without.returncode != 0 and "'module': 'zoo.models" in without.stderr, without.stderr[-2000:]
    with_zoo = subprocess.run([sys.executable, "-c", script.format("import zoo\n"), path], env=env, capture_output=True,
                              text=True)
    assert with_zoo.returncode == 0 and "loaded FlowModel" in with_zoo.stdout, with_zoo.stderr[-2000:]


def test_metrics_and_priors_refuse_an_empty_set(vector_model):
    from zoo.evaluation import model_metrics

    with pytest.raises(ValueError, match="bits_per_dim: `images` holds no examples"):
        model_metrics.bits_per_dim(vector_model, np.zeros((0, 2), "float32"))
    one = model_metrics.bits_per_dim(vector_model, np.zeros((1, 2), "float32"))
    assert one["examples"] == 1 and one["standard_error"] is None  # not NaN (which is not JSON)
    autoencoder = zoo.get("ae_digits_8")
    with pytest.raises(ValueError, match="fit_priors: `images` holds no examples"):
        autoencoder.fit_priors(zoo.load_digits_images()[0][:0])


def test_seeds_must_be_ints(vector_model):
    np.testing.assert_array_equal(np.asarray(vector_model.sample(2, seed=np.int64(3))),
                                  np.asarray(vector_model.sample(2, seed=3)))  # NumPy ints are ints
    for bad in (1.5, "abc", True, np.float32(2.0)):
        with pytest.raises(ValueError, match=r"`seed` must be an int \(or None\)"):
            vector_model.sample(2, seed=bad)
