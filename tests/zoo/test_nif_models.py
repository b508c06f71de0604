"""NIF, deep NIF and vector NIF models: normalization, bounds, sampling, training, save/load."""

import keras
import numpy as np
import pytest

import layers
import zoo
from layers.testing import perturb_weights
from tests.zoo.test_flow_model import _grid_mass, _sine_data


def test_2d_nif_density_integrates_to_one_untrained_and_trained():
    keras.utils.set_random_seed(0)
    model = zoo.get("nif_sin_1")
    data = _sine_data(2048)
    model.initialize(data)
    perturb_weights(model, np.random.default_rng(0), scale=0.1)
    # The perturbed flow has heavy tails: integrate far enough out (|x| <= 40) to hold the mass.
    assert abs(_grid_mass(model, 40.0, 1200) - 1.0) < 0.01

    keras.utils.set_random_seed(0)
    model = zoo.get("nif_sin_1", num_couplings=4, hidden_units=32)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = float(np.mean(model.bits_per_dim(data)))
    model.fit(data, batch_size=128, epochs=8, verbose=0)
    assert float(np.mean(model.bits_per_dim(data))) < before - 0.3
    assert abs(_grid_mass(model, 8.0, 500) - 1.0) < 0.01


def test_2d_nif_on_manifold_samples_are_fixed_points_of_encode_decode():
    model = zoo.get("nif_spiral_1", num_couplings=4, hidden_units=16)
    model.initialize(_sine_data(256))
    perturb_weights(model, np.random.default_rng(1), scale=0.1)
    x = np.asarray(model.sample(64, temperature=1.0, noise_scale=0.0, seed=0))
    latent = model.encode(x)
    assert tuple(latent.shape) == (64, 1)
    np.testing.assert_allclose(np.asarray(model.decode(latent, noise_scale=0.0)), x, rtol=1e-4, atol=1e-4)
    off = np.asarray(model.sample(64, temperature=1.0, noise_scale=1.0, seed=0))
    assert not np.allclose(np.asarray(model.decode(model.encode(off))), off, atol=1e-3)


@pytest.fixture(scope="module")
def digits():
    return zoo.load_digits_images()[0]


def test_nif_digits_16_short_fit_lowers_loss_and_samples_are_images(digits):
    keras.utils.set_random_seed(2)
    model = zoo.get("nif_digits_16", steps_per_level=2, hidden_channels=32)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    losses = model.fit(digits, batch_size=64, epochs=3, verbose=0).history["loss"]
    assert losses[-1] < losses[0] - 0.2, losses
    for noise_scale in (0.0, 1.0):
        images = np.asarray(model.sample(8, temperature=0.8, noise_scale=noise_scale, seed=1, output="float"))
        assert images.shape == (8, 8, 8, 1) and np.all(np.isfinite(images))
        assert images.min() >= 0.0 and images.max() <= 1.0
    recon = np.asarray(model.decode(model.encode(digits[:16])))  # on-manifold reconstructions
    assert recon.shape == (16, 8, 8, 1) and recon.dtype == np.uint8


def test_nif_log_prob_is_the_flow_pushforward_of_the_closed_form(digits):
    model = zoo.make_nif((8, 8, 1), latent_dim=6, steps_per_level=1, hidden_channels=8, n_bits=5)
    model.initialize(digits[:64])
    z, log_det = model.forward(digits[:8])
    expected = np.asarray(model.prior.log_prob(z)) + np.asarray(log_det)
    np.testing.assert_allclose(np.asarray(model.log_prob(digits[:8])), expected, rtol=1e-6)
    # NIF and NF share the flow: with A = 0 and Sigma = I the NIF prior is the unit Gaussian.
    model.prior.a_matrix.assign(np.zeros_like(np.asarray(model.prior.a_matrix)))
    unit_prior = layers.StandardNormal()
    unit_prior.build(tuple(z.shape))
    nf_log_prob = np.asarray(unit_prior.log_prob(z)) + np.asarray(log_det)
    np.testing.assert_allclose(np.asarray(model.log_prob(digits[:8])), nf_log_prob, rtol=1e-5)


def test_deep_nif_bounds_against_the_closed_form():
    # An identity latent flow makes the deep NIF a Gaussian NIF with a unit prior:
    # the exact log-likelihood and the exact ELBO are known in closed form.
    rng = np.random.default_rng(3)
    nif = layers.GaussianNIF(3, seed=0)
    flow = zoo.realnvp_flow(3, num_couplings=2, hidden_units=8)  # zero-initialized couplings: identity
    for l in flow.flow_layers:
        if isinstance(l, layers.ActNorm):
            l.data_init = False
    x = (rng.standard_normal((8, 10)) * 2.0).astype("float32")
    reps = {1: 4000, 64: 100}
    draws = {}
    for k, n in reps.items():
        prior = layers.DeepNIFPrior(nif, flow, num_importance_samples=k)
        prior.build((None, 10))
        draws[k] = np.asarray(prior.log_prob(np.tile(x, (n, 1)), training=True)).reshape(n, len(x))
    exact = np.asarray(nif.log_prob(x))
    elbo = np.asarray(nif.elbo(x))
    # Monte-Carlo ELBO (K = 1) agrees with the exact ELBO within 5 standard errors.
    mean, se = draws[1].mean(axis=0), draws[1].std(axis=0) / np.sqrt(reps[1])
    assert np.all(np.abs(mean - elbo) < 5 * se + 1e-3), (mean - elbo, se)
    # The importance-weighted bound (K = 64) lies below the exact value and above the ELBO.
    iw = draws[64].mean(axis=0)
    assert np.all(iw <= exact + 5 * draws[64].std(axis=0) / np.sqrt(reps[64]) + 1e-3)
    assert np.all(iw > elbo)
    # Evaluation is deterministic (fixed seed).
    prior = layers.DeepNIFPrior(nif, flow, num_importance_samples=4)
    prior.build((None, 10))
    np.testing.assert_array_equal(np.asarray(prior.log_prob(x)), np.asarray(prior.log_prob(x)))


@pytest.mark.parametrize("name", ["nif_digits_16", "deep_nif_celeba_128"])
def test_keras_save_load_of_nif_models(name, digits, tmp_path):
    overrides = dict(steps_per_level=2, hidden_channels=16) if name == "nif_digits_16" else dict(
        image_shape=(8, 8, 1), num_levels=2, steps_per_level=1, hidden_channels=8, latent_dim=4,
        latent_flow_couplings=2, latent_flow_hidden_units=8, n_bits=5)
    model = zoo.get(name, **overrides)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(digits[:128], batch_size=64, epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded.log_prob(digits[:16])), np.asarray(model.log_prob(digits[:16])))
    for s in (0.0, 1.0):
        np.testing.assert_array_equal(np.asarray(loaded.sample(4, noise_scale=s, seed=5)),
                                      np.asarray(model.sample(4, noise_scale=s, seed=5)))
    np.testing.assert_allclose(np.asarray(loaded.encode(digits[:4])), np.asarray(model.encode(digits[:4])), rtol=1e-6)


def test_nif_model_bad_input(digits):
    model = zoo.get("nif_digits_16", steps_per_level=1, hidden_channels=8)
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        model.sample(2, noise_scale=-0.5)
    with pytest.raises(ValueError, match=r"`latent` must have shape \(batch, 16\)"):
        model.decode(np.zeros((2, 64), "float32"))
    with pytest.raises(ValueError, match="latent_dim` must be smaller than the data dimension D = 64"):
        zoo.make_nif((8, 8, 1), latent_dim=64, steps_per_level=1, hidden_channels=8)
