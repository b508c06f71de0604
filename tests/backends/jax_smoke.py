"""Runs under KERAS_BACKEND=jax (started by test_jax_backend.py in a subprocess)."""

import os

assert os.environ.get("KERAS_BACKEND") == "jax"

import keras  # noqa: E402
import numpy as np  # noqa: E402

import layers  # noqa: E402
import zoo  # noqa: E402

assert keras.backend.backend() == "jax", keras.backend.backend()
rng = np.random.default_rng(0)

# Every core layer: forward, inverse, log-dets summing to zero.
cases = [
    (layers.ActNorm(), rng.standard_normal((2, 4, 4, 4))),
    (layers.InvertibleConv1x1(seed=0), rng.standard_normal((2, 4, 4, 4))),
    (layers.InvertibleConv1x1(lu_decomposed=False, seed=0), rng.standard_normal((2, 4, 4, 4))),
    (layers.Squeeze(), rng.standard_normal((2, 4, 4, 4))),
    (layers.AffineCoupling(8), rng.standard_normal((2, 4, 4, 4))),
    (layers.AffineCoupling(8), rng.standard_normal((2, 5))),
    (layers.Permute(), rng.standard_normal((2, 5))),
    (layers.Flatten(), rng.standard_normal((2, 4, 4, 4))),
    (layers.LogitTransform(), rng.uniform(0.1, 0.9, (2, 4, 4, 1))),
    (layers.Dequantize(n_bits=3), rng.integers(0, 8, (2, 4, 4, 1))),
]
for layer, x in cases:
    x = x.astype("float32")
    z, log_det = layer(x, training=True)
    x_back, inverse_log_det = layer.inverse_and_log_det(z)
    np.testing.assert_allclose(np.asarray(x_back), x, rtol=1e-5, atol=1e-5, err_msg=type(layer).__name__)
    np.testing.assert_allclose(np.asarray(log_det + inverse_log_det), 0.0, atol=1e-4, err_msg=type(layer).__name__)

# Noisy injective layers: pseudo-inverse round trip on the manifold, finite manifold terms.
for layer, x in [
    (layers.GaussianNIF(3, seed=0), rng.standard_normal((4, 8))),
    (layers.UpsampleNIF(), rng.standard_normal((2, 4, 4, 2))),
    (layers.StochasticCoupling(2, hidden_units=8, seed=0), rng.standard_normal((4, 7))),
    (layers.StochasticCoupling(1, hidden_units=8, seed=0), rng.standard_normal((2, 4, 4, 4))),
]:
    x = x.astype("float32")
    z, term = layer(x, training=False)
    assert np.all(np.isfinite(np.asarray(term))), type(layer).__name__
    z_again = layer(layer.inverse(z, noise_scale=0.0), training=False)[0]
    np.testing.assert_allclose(np.asarray(z_again), np.asarray(z), rtol=1e-4, atol=1e-4, err_msg=type(layer).__name__)
    drawn = layer(x, training=True)[0]
    assert np.all(np.isfinite(np.asarray(drawn)))

# The prior protocol: sample = generate(draw_noise(seed)); the per-example Jacobian of a known linear map.
mixture = layers.GaussianMixturePrior(2, num_components=3)
mixture.build()
for prior, shape in [(layers.StandardNormal(), (3,)), (layers.SplitPrior(1, v_std=0.3), (3,)),
                     (layers.SpreadPrior(0.1, seed=0), (3,)), (layers.GaussianNIF(2, seed=0), (5,)), (mixture, (2,))]:
    if not prior.built:
        prior.build((None,) + shape)
    noise = layers.draw_noise(prior.noise_shapes, 4, 3, prior.compute_dtype)
    np.testing.assert_array_equal(np.asarray(prior.sample(4, 0.8, 0.5, seed=3)), np.asarray(prior.generate(*noise, 0.8, 0.5)))
    assert np.all(np.isfinite(np.asarray(prior.log_prob(prior.sample(4, seed=1))))), type(prior).__name__
linear = rng.standard_normal((3, 5)).astype("float32")
jacobian = np.asarray(layers.batch_jacobian(lambda q: q @ linear, rng.standard_normal((2, 3)).astype("float32")))
np.testing.assert_allclose(jacobian, np.broadcast_to(linear.T, (2, 5, 3)), rtol=1e-6)

# A GLOW FlowModel: act-norm init, one gradient step with fit, sampling.
images = zoo.load_digits_images()[0][:64]
model = zoo.make_glow((8, 8, 1), num_levels=2, steps_per_level=1, hidden_channels=8, n_bits=5)
model.compile(optimizer=keras.optimizers.Adam(1e-3))
before = [np.asarray(w) for w in model.trainable_weights]
history = model.fit(images, batch_size=64, epochs=1, verbose=0)
assert model.is_initialized
assert np.isfinite(history.history["loss"][0])
changed = sum(not np.array_equal(b, np.asarray(w)) for b, w in zip(before, model.trainable_weights))
assert changed > 0, "the gradient step changed no weight"
samples = np.asarray(model.sample(4, temperature=0.7, seed=0))
assert samples.shape == (4, 8, 8, 1) and samples.dtype == np.uint8
np.testing.assert_array_equal(np.asarray(model.decode(model.encode(images[:8]))), (images[:8] // 8) * 8)
# A NIF model and a deep NIF model: one fit step each, sampling on and off the manifold.
for model in (
    zoo.make_nif((8, 8, 1), latent_dim=6, steps_per_level=1, hidden_channels=8, n_bits=5),
    zoo.make_deep_nif((8, 8, 1), latent_dim=4, steps_per_level=1, hidden_channels=8, n_bits=5,
                      latent_flow_couplings=2, latent_flow_hidden_units=8, num_importance_samples=2),
):
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    loss = model.fit(images, batch_size=64, epochs=1, verbose=0).history["loss"][0]
    assert np.isfinite(loss), model.name
    for noise_scale in (0.0, 1.0):
        assert np.asarray(model.sample(2, noise_scale=noise_scale, seed=0)).shape == (2, 8, 8, 1)
# Class-conditional NIF: labels in fit, sample and classify; bad labels refused before any step.
labels = (np.arange(64) % 3).astype("int32")
model = zoo.make_nif((8, 8, 1), latent_dim=6, steps_per_level=1, hidden_channels=8, n_bits=5, num_classes=3)
model.compile(optimizer=keras.optimizers.Adam(1e-3))
assert np.isfinite(model.fit(images, labels, batch_size=32, epochs=1, verbose=0).history["loss"][0])
np.testing.assert_allclose(np.exp(model.class_log_prior), np.bincount(labels) / 64, rtol=1e-6)
assert np.asarray(model.sample(3, noise_scale=0.0, seed=0, labels=np.array([0, 1, 2]))).shape == (3, 8, 8, 1)
assert np.asarray(model.classify(images[:5])).shape == (5,)
for bad in (labels + 1, labels.astype("float32")):
    try:
        model.fit(images, bad, batch_size=32, epochs=1, verbose=0)
    except ValueError as error:
        assert "labels" in str(error), error
    else:
        raise AssertionError("bad labels were not refused under JAX")
print("jax smoke test passed")

# In-memory float data with bad values is read before the first step (a JAX trace cannot read values).
vectors = zoo.make_realnvp(2, num_couplings=2, hidden_units=8)
vectors.compile(optimizer=keras.optimizers.Adam(1e-3))
vectors.initialize(np.zeros((64, 2), "float32"))
bad = np.zeros((64, 2), "float32")
bad[5, 0] = np.nan
before = [np.asarray(w) for w in vectors.trainable_weights]
for call in (lambda: vectors.fit(bad, batch_size=32, epochs=1, verbose=0), lambda: vectors.evaluate(bad, verbose=0)):
    try:
        call()
    except ValueError as error:
        assert "break the data contract" in str(error) and "NaN or infinite" in str(error), error
    else:
        raise AssertionError("NaN data was not refused under JAX")
for b, a in zip(before, [np.asarray(w) for w in vectors.trainable_weights]):
    np.testing.assert_array_equal(a, b)
print("bad values refused under JAX")

# Nested lists are arrays; an empty batch is refused as on TensorFlow (it used to return [] here only).
points = np.array([[0.1, -0.2], [0.3, 0.4]], "float32")
np.testing.assert_allclose(np.asarray(vectors.log_prob(points.tolist())), np.asarray(vectors.log_prob(points)),
                           rtol=1e-6)
for call in (lambda: vectors.log_prob(points[:0]), lambda: vectors.fit(points[:0], epochs=1, verbose=0)):
    try:
        call()
    except ValueError as error:
        assert "holds no examples" in str(error), error
    else:
        raise AssertionError("an empty batch was not refused under JAX")
print("lists and empty batches handled under JAX")
