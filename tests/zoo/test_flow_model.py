"""FlowModel: normalization, training with fit, sampling, encode/decode, save/load."""

import json

import keras
import numpy as np
import pytest

import layers
import zoo
from layers.testing import perturb_weights


def _grid_mass(model, half_width, n):
    axis = np.linspace(-half_width, half_width, n)
    xx, yy = np.meshgrid(axis, axis)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1).astype("float32")
    log_p = np.concatenate([np.asarray(model.log_prob(chunk)) for chunk in np.array_split(points, 20)])
    cell = (axis[1] - axis[0]) ** 2
    return float(np.exp(log_p).sum() * cell)


def _sine_data(n, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(-2.0, 2.0, n)
    return np.stack([x1, np.sin(2 * x1) + 0.1 * rng.standard_normal(n)], axis=1).astype("float32")


def test_untrained_2d_density_integrates_to_one():
    model = zoo.make_realnvp(2, num_couplings=4, hidden_units=16)
    model.initialize(_sine_data(256))
    perturb_weights(model, np.random.default_rng(0), scale=0.2)
    assert abs(_grid_mass(model, 12.0, 500) - 1.0) < 0.01


def test_trained_2d_density_integrates_to_one():
    keras.utils.set_random_seed(0)
    model = zoo.make_realnvp(2, num_couplings=4, hidden_units=32)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    data = _sine_data(2048)
    before = float(np.mean(model.bits_per_dim(data)))
    model.fit(data, batch_size=128, epochs=8, verbose=0)
    after = float(np.mean(model.bits_per_dim(data)))
    assert after < before - 0.3, (before, after)
    assert abs(_grid_mass(model, 8.0, 500) - 1.0) < 0.01


@pytest.fixture(scope="module")
def digits():
    images, labels = zoo.load_digits_images()
    return images, labels


def _small_glow(**kwargs):
    options = dict(num_levels=2, steps_per_level=2, hidden_channels=16, n_bits=5)
    options.update(kwargs)
    return zoo.make_glow((8, 8, 1), **options)


def test_fit_on_digits_lowers_nll_and_bits_per_dim_is_sane(digits):
    images, labels = digits
    keras.utils.set_random_seed(1)
    model = _small_glow()
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    # An unconditional model refuses labels rather than ignoring them (num_classes= was likely forgotten).
    with pytest.raises(ValueError, match="this model is unconditional, so `y` would be ignored"):
        model.fit(images, labels, batch_size=64, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="labels in `validation_data` would be ignored"):
        model.fit(images, batch_size=64, epochs=1, verbose=0, validation_data=(images[:64], labels[:64]))
    with pytest.raises(ValueError, match="glow.evaluate: this model is unconditional"):
        model.evaluate(images[:64], labels[:64], verbose=0)
    import tensorflow as tf

    pairs = tf.data.Dataset.from_tensor_slices((images[:64], labels[:64])).batch(32)
    with pytest.raises(ValueError, match=r"the labels in the training data's \(x, labels\) pairs would be ignored"):
        model.fit(pairs, epochs=1, verbose=0)
    history = model.fit(images, batch_size=64, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0] - 0.2, losses
    bpd = np.asarray(model.bits_per_dim(images[:512]))
    assert np.all(np.isfinite(bpd))
    # Better than coding every pixel uniformly at 5 bits, and not absurdly good.
    assert 0.5 < float(bpd.mean()) < model.n_bits, bpd.mean()
    # evaluate reports the same quantity as the training loss: bits/dim.
    evaluated = model.evaluate(images[:512], verbose=0, return_dict=True)["loss"]
    assert abs(evaluated - float(bpd.mean())) < 0.05


def test_fit_on_tf_data_initializes_actnorm_from_first_batch(digits):
    import tensorflow as tf

    images, _ = digits
    model = _small_glow()
    assert not model.is_initialized
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    dataset = tf.data.Dataset.from_tensor_slices(images[:128]).batch(64)
    model.fit(dataset, epochs=1, verbose=0)
    assert model.is_initialized
    squeeze, first = model.flow.flow_layers[:2]
    assert isinstance(first, layers.ActNorm)
    # The first act-norm sees the preprocessed first batch: unit variance per channel.
    z, _ = model.preprocessing(layers.quantize_pixels(images[:64], 5), training=False)
    squeezed, _ = squeeze(z)
    out, _ = first(squeezed)
    np.testing.assert_allclose(np.std(np.asarray(out), axis=(0, 1, 2)), 1.0, atol=0.2)


def test_actnorm_init_happens_once_and_survives_save_load(tmp_path):
    rng = np.random.default_rng(0)
    layer = layers.ActNorm()
    layer(rng.normal(3.0, 2.0, (64, 4)).astype("float32"), training=True)
    loc, log_scale = np.asarray(layer.loc), np.asarray(layer.log_scale)
    np.testing.assert_allclose(loc, -3.0, atol=0.6)
    layer(rng.normal(-5.0, 0.1, (64, 4)).astype("float32"), training=True)
    np.testing.assert_array_equal(np.asarray(layer.loc), loc)
    np.testing.assert_array_equal(np.asarray(layer.log_scale), log_scale)

    model = zoo.make_realnvp(4, num_couplings=2, hidden_units=8)
    model.initialize(rng.normal(3.0, 2.0, (64, 4)).astype("float32"))
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.is_initialized
    before = [np.asarray(w) for l in loaded.actnorm_layers() for w in (l.loc, l.log_scale)]
    loaded.compile(optimizer=keras.optimizers.SGD(0.0))
    loaded.fit(rng.normal(-5.0, 0.1, (64, 4)).astype("float32"), batch_size=32, epochs=1, verbose=0)
    after = [np.asarray(w) for l in loaded.actnorm_layers() for w in (l.loc, l.log_scale)]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_keras_save_load_restores_identical_outputs(digits, tmp_path):
    images, _ = digits
    model = _small_glow()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(images[:256], batch_size=64, epochs=1, verbose=0)
    path = str(tmp_path / "glow.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded.log_prob(images[:32])), np.asarray(model.log_prob(images[:32])))
    np.testing.assert_array_equal(
        np.asarray(loaded.sample(4, temperature=0.7, seed=3)), np.asarray(model.sample(4, temperature=0.7, seed=3))
    )
    as_json = lambda config: json.loads(json.dumps(config))  # build_config tuples come back as lists
    assert as_json(loaded.get_config()) == as_json(model.get_config())


def test_sample_is_seeded_and_temperature_zero_is_the_mode(digits):
    model = _small_glow()
    model.initialize(digits[0][:128])
    a = np.asarray(model.sample(6, temperature=0.8, seed=7))
    b = np.asarray(model.sample(6, temperature=0.8, seed=7))
    c = np.asarray(model.sample(6, temperature=0.8, seed=8))
    assert a.dtype == np.uint8 and a.shape == (6, 8, 8, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    cold = np.asarray(model.sample(3, temperature=0.0, seed=1))
    np.testing.assert_array_equal(cold, np.repeat(cold[:1], 3, axis=0))
    as_float = np.asarray(model.sample(6, temperature=0.8, seed=7, output="float"))
    np.testing.assert_allclose(as_float, a / 255.0, atol=1e-6)


def test_encode_decode_round_trip_gives_the_quantized_image(digits):
    images, _ = digits
    model = _small_glow()
    model.initialize(images[:128])
    perturb_weights(model, np.random.default_rng(2), scale=0.05)
    latent = model.encode(images[:64])
    assert tuple(latent.shape) == (64, 64)
    recon = np.asarray(model.decode(latent))
    expected = (images[:64] // 8) * 8  # 5-bit quantization of 8-bit pixels
    np.testing.assert_array_equal(recon, expected)


def test_vector_model_encode_decode_round_trip():
    model = zoo.make_realnvp(3, num_couplings=3, hidden_units=8)
    data = np.random.default_rng(0).standard_normal((32, 3)).astype("float32")
    model.initialize(data)
    perturb_weights(model, np.random.default_rng(1), scale=0.1)
    np.testing.assert_allclose(np.asarray(model.decode(model.encode(data))), data, rtol=1e-5, atol=1e-5)


def test_glow_paper_configs_build_the_stated_shapes():
    for name, config in zoo.GLOW_PAPER_CONFIGS.items():
        flow = zoo.glow_flow(**{**config, "steps_per_level": 1, "hidden_channels": 4})
        h, w, c = config["image_shape"]
        flow.build((None, h, w, c))
        assert flow.compute_output_shape((None, h, w, c))[0] == (None, h * w * c), name


def test_glow_rejects_shapes_the_levels_cannot_divide():
    with pytest.raises(ValueError, match="divisible by 8"):
        zoo.make_glow((12, 12, 1), num_levels=3)
