"""The spread prior, the volume-preserving coupling and the data-noise layer (layers/spread.py)."""

import os

import keras
import numpy as np
import pytest
from scipy import stats

import layers
from layers.spread import DataNoise, SpreadPrior, significant_eigenvalue_count
from layers.testing import check_flow_layer


def _prior(shape, spread_std=0.1, seed=0, dtype="float64", rank=None):
    """A built prior with random packed entries (``rank``: zero all but the first ``rank`` columns of A)."""
    prior = SpreadPrior(spread_std, seed=seed, dtype=dtype)
    prior.build((None,) + tuple(shape))
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(prior.a_packed.shape)
    if rank is not None:
        rows, cols = np.tril_indices(prior.num_dims)
        values[cols >= rank] = 0.0
    prior.a_packed.assign(values)
    return prior


def _dense_a(prior):
    return np.asarray(keras.ops.convert_to_numpy(prior.a_matrix()), dtype=np.float64)


def test_packed_lower_triangle_with_identity_init():
    prior = SpreadPrior(0.01)
    prior.build((None, 4, 2))
    assert prior.count_params() == 8 * 9 // 2
    np.testing.assert_array_equal(_dense_a(prior), np.eye(8))
    a = _dense_a(_prior((5,)))
    np.testing.assert_array_equal(np.triu(a, 1), 0.0)
    assert np.all(a[np.tril_indices(5)] != 0)  # every packed entry lands below or on the diagonal


@pytest.mark.parametrize("shape", [(3,), (2, 2, 1)])
def test_log_prob_matches_dense_float64_gaussian(shape):
    prior = _prior(shape, spread_std=0.1)
    a = _dense_a(prior)
    z = np.random.default_rng(1).standard_normal((6,) + shape)
    dense = stats.multivariate_normal(np.zeros(a.shape[0]), a @ a.T + 0.01 * np.eye(a.shape[0]))
    expected = dense.logpdf(z.reshape(6, -1))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(prior.log_prob(z, training=False)), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(prior(z)), expected, rtol=1e-10, atol=1e-10)


def test_log_prob_of_a_rank_deficient_prior_is_finite_and_exact():
    prior = _prior((4,), spread_std=0.05, rank=1)
    a = _dense_a(prior)
    assert np.linalg.matrix_rank(a) == 1
    z = np.random.default_rng(2).standard_normal((3, 4))
    expected = stats.multivariate_normal(np.zeros(4), a @ a.T + 0.0025 * np.eye(4)).logpdf(z)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(prior.log_prob(z)), expected, rtol=1e-9)


def test_training_spreads_the_latent_with_fresh_noise():
    """E[log N(z + s eps; 0, C)] = log N(z; 0, C) - s^2 tr(C^-1) / 2 (closed form, Monte Carlo check)."""
    sigma = 0.3
    prior = _prior((3,), spread_std=sigma, seed=4)
    a = _dense_a(prior)
    cov = a @ a.T + sigma**2 * np.eye(3)
    z = np.tile(np.array([[0.3, -0.2, 0.5]]), (20000, 1))
    first = keras.ops.convert_to_numpy(prior.log_prob(z, training=True))
    second = keras.ops.convert_to_numpy(prior.log_prob(z, training=True))
    assert not np.allclose(first, second), "training must draw fresh spread noise at each call"
    evaluation = keras.ops.convert_to_numpy(prior.log_prob(z[:2], training=False))
    np.testing.assert_array_equal(evaluation, keras.ops.convert_to_numpy(prior.log_prob(z[:2], training=False)))
    expected = stats.multivariate_normal(np.zeros(3), cov).logpdf(z[0]) - 0.5 * sigma**2 * np.trace(np.linalg.inv(cov))
    standard_error = first.std() / np.sqrt(first.size)
    assert abs(first.mean() - expected) < 5 * standard_error


def test_covariance_stays_positive_semi_definite():
    for seed, rank in [(0, None), (1, 2), (2, 0)]:
        prior = _prior((6,), spread_std=0.01, seed=seed, rank=rank)
        cov = keras.ops.convert_to_numpy(prior.covariance(spread=False))
        eigenvalues = np.linalg.eigvalsh(cov)
        assert eigenvalues.min() > -1e-10 * max(1.0, eigenvalues.max())
        spread = keras.ops.convert_to_numpy(prior.covariance(spread=True))
        assert np.linalg.eigvalsh(spread).min() >= 1e-4 * (1 - 1e-8)
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(prior.log_prob(np.ones((2, 6))))))


def test_spectrum_eigenvectors_and_projection():
    prior = _prior((5,), seed=3)
    a = _dense_a(prior)
    values, vectors = np.linalg.eigh(a @ a.T)
    np.testing.assert_allclose(prior.spectrum(), values[::-1], rtol=1e-9)
    basis = prior.eigenvectors(2)
    assert basis.shape == (5, 2)
    for k in range(2):  # same eigenvector up to the documented sign rule
        np.testing.assert_allclose(np.abs(basis[:, k] @ vectors[:, -1 - k]), 1.0, rtol=1e-8)
        assert basis[np.argmax(np.abs(basis[:, k])), k] > 0
    z = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(prior.project(z, 2)), z @ basis, rtol=1e-10)
    low_rank = _prior((5,), seed=3, rank=2, spread_std=0.01)
    assert low_rank.intrinsic_dimension() == 2
    assert keras.ops.convert_to_numpy(low_rank.project(z)).shape == (4, 2)


def test_significant_eigenvalue_rule():
    assert significant_eigenvalue_count([1.0, 1e-7], floor=1e-4) == 1
    assert significant_eigenvalue_count([1e-9, 5.0, 0.3], floor=1e-4) == 2  # any order
    assert significant_eigenvalue_count([1.0, 0.9, 0.8], floor=1e-4) == 3  # no gap: full dimension
    assert significant_eigenvalue_count([2.0, 1.0, 1e-6, 1e-12], floor=1e-4) == 2  # gaps below the floor ignored
    assert significant_eigenvalue_count([1.0, 0.5, 0.02, 0.001], floor=1e-4, min_ratio=10.0) == 2
    assert significant_eigenvalue_count([3.0], floor=1e-4) == 1
    with pytest.raises(ValueError, match="floor"):
        significant_eigenvalue_count([1.0, 0.1], floor=0.0)
    with pytest.raises(ValueError, match="finite"):
        significant_eigenvalue_count([1.0, np.nan], floor=1e-4)
    with pytest.raises(ValueError, match="min_ratio"):
        significant_eigenvalue_count([1.0, 0.1], floor=1e-4, min_ratio=1.0)


def test_generate_sample_encode_decode():
    prior = _prior((2, 2), spread_std=0.1, seed=5)
    a = _dense_a(prior)
    rng = np.random.default_rng(0)
    eps, eps_s = rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 2, 2))
    got = keras.ops.convert_to_numpy(prior.generate(eps, eps_s, temperature=0.5, noise_scale=4.0))
    expected = (0.5 * eps.reshape(3, 4) @ a.T).reshape(3, 2, 2) + 2.0 * 0.1 * eps_s
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    on_prior = keras.ops.convert_to_numpy(prior.generate(eps, None, temperature=1.0))
    np.testing.assert_allclose(on_prior, (eps.reshape(3, 4) @ a.T).reshape(3, 2, 2), rtol=1e-10)
    assert prior.noise_shapes == ((2, 2), (2, 2))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(prior.sample(4, seed=3)), keras.ops.convert_to_numpy(prior.sample(4, seed=3)))
    degenerate = _prior((3,), rank=1, seed=6, spread_std=0.01)
    samples = keras.ops.convert_to_numpy(degenerate.sample(50, noise_scale=0.0, seed=1))
    assert np.linalg.matrix_rank(samples, tol=1e-8) == 1  # the learned degenerate prior
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(prior.encode(eps)), eps)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(prior.decode(eps)), eps)
    spread = keras.ops.convert_to_numpy(prior.encode(eps, stochastic=True, seed=2))
    assert 0 < np.abs(spread - eps).max() < 1.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(prior.decode(eps, noise_scale=1.0, noise=eps_s)), eps + 0.1 * eps_s)


def test_prior_config_and_keras_round_trip(tmp_path):
    prior = _prior((3,), spread_std=0.2, seed=7, dtype="float32")
    clone = SpreadPrior.from_config(prior.get_config())
    clone.build((None, 3))
    clone.set_weights(prior.get_weights())
    z = np.random.default_rng(0).standard_normal((4, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone.log_prob(z)), keras.ops.convert_to_numpy(prior.log_prob(z)))
    inputs = keras.Input((3,))
    model = keras.Model(inputs, prior(inputs))
    path = os.path.join(tmp_path, "prior.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(z)), keras.ops.convert_to_numpy(prior.log_prob(z)), rtol=1e-6)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="spread_std"):
        SpreadPrior(0.0)
    with pytest.raises(ValueError, match="spread_std"):
        SpreadPrior(float("nan"))
    prior = _prior((3,))
    with pytest.raises(ValueError, match=r"`z` must have shape \(batch, 3\)"):
        prior.log_prob(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="num_dims"):
        prior.eigenvectors(4)
    with pytest.raises(ValueError, match="noise_scale"):
        prior.decode(np.zeros((1, 3)), noise_scale=-1.0)
    with pytest.raises(ValueError, match="known example shape"):
        SpreadPrior().build((None, None))
    with pytest.raises(ValueError, match="stddev"):
        DataNoise(-0.1)


# ---------------------------------------------------------------- flow layers
VP_CASES = {
    "mlp": ((3, 5), lambda dtype: layers.AffineCoupling(16, volume_preserving=True, dtype=dtype)),
    "mlp_one_transformed": ((3, 2), lambda dtype: layers.AffineCoupling(8, volume_preserving=True, dtype=dtype)),
    "conv": ((2, 4, 4, 4), lambda dtype: layers.AffineCoupling(8, volume_preserving=True, dtype=dtype)),
    "conv_odd": ((2, 4, 4, 3), lambda dtype: layers.AffineCoupling(8, volume_preserving=True, dtype=dtype)),
}


@pytest.mark.parametrize("case", sorted(VP_CASES))
def test_volume_preserving_coupling(case, tmp_path):
    shape, factory = VP_CASES[case]
    layer = check_flow_layer(factory, shape, str(tmp_path))  # includes the float64 autodiff log-det (= 0)
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    z, log_det = layer(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(log_det), 0.0)  # exactly
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.inverse_and_log_det(z)[1]), 0.0)
    assert not np.allclose(keras.ops.convert_to_numpy(z), x)  # perturbed weights: not the identity
    assert layer.get_config()["volume_preserving"] is True


def test_default_coupling_is_unchanged():
    layer = layers.AffineCoupling(8)
    layer.build((None, 4))
    assert "volume_preserving" not in layer.get_config()  # existing configs stay byte-identical
    for weight in layer.trainable_weights:
        weight.assign(np.random.default_rng(0).standard_normal(weight.shape) * 0.3)
    _, log_det = layer(np.random.default_rng(1).standard_normal((3, 4)).astype("float32"))
    assert np.all(keras.ops.convert_to_numpy(log_det) != 0)


def test_data_noise_layer(tmp_path):
    check_flow_layer(lambda dtype: DataNoise(0.1, seed=0, dtype=dtype), (2, 4, 4, 1), str(tmp_path))
    layer = DataNoise(0.05, seed=1)
    x = np.zeros((4000, 3), dtype="float32")
    noisy, log_det = layer(x, training=True)
    assert abs(float(np.std(keras.ops.convert_to_numpy(noisy))) - 0.05) < 0.003
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(log_det), 0.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)[0]), x)
    layer.stddev.assign(0.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=True)[0]), x)
