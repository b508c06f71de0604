"""Noisy injective flow layers: the injective harness and dense float64 references."""

import numpy as np
import pytest
from scipy import integrate, stats

import layers
from layers.testing import check_injective_layer, perturb_weights

INJECTIVE_CASES = {
    "nif_vector": (lambda dtype: layers.GaussianNIF(2, seed=0, dtype=dtype), (3, 6)),
    "nif_vector_d_is_D_minus_1": (lambda dtype: layers.GaussianNIF(4, seed=0, dtype=dtype), (3, 5)),
    "nif_vector_d_is_1": (lambda dtype: layers.GaussianNIF(1, seed=0, dtype=dtype), (3, 4)),
    "nif_image": (lambda dtype: layers.GaussianNIF(3, seed=0, dtype=dtype), (2, 4, 4, 1)),
    "upsample_nif": (lambda dtype: layers.UpsampleNIF(dtype=dtype), (2, 4, 4, 2)),
    "stochastic_coupling_vector": (
        lambda dtype: layers.StochasticCoupling(2, hidden_units=8, seed=0, dtype=dtype), (3, 7)),
    "stochastic_coupling_image": (
        lambda dtype: layers.StochasticCoupling(1, hidden_units=8, seed=0, dtype=dtype), (2, 4, 4, 4)),
}


@pytest.mark.parametrize("case", sorted(INJECTIVE_CASES))
def test_injective_contract(case, tmp_path):
    factory, shape = INJECTIVE_CASES[case]
    check_injective_layer(factory, shape, str(tmp_path))


def test_every_public_injective_layer_has_a_case():
    covered = {type(factory("float32")) for factory, _ in INJECTIVE_CASES.values()}
    public = {
        obj for obj in vars(layers).values()
        if isinstance(obj, type) and issubclass(obj, layers.InjectiveLayer)
        and obj not in (layers.InjectiveLayer, layers.NIFPrior)
    }
    assert public <= covered, sorted(c.__name__ for c in public - covered)


def _random_nif(data_dim, latent_dim, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    nif = layers.GaussianNIF(latent_dim, seed=seed, dtype=dtype)
    nif.build((None, data_dim))
    nif.bias.assign(rng.standard_normal(data_dim))
    nif.log_variance.assign(0.5 * rng.standard_normal(data_dim))
    a = np.asarray(nif.a_matrix, dtype="float64")
    b = np.asarray(nif.bias, dtype="float64")
    var = np.exp(np.asarray(nif.log_variance, dtype="float64"))
    return nif, a, b, var


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-6), ("float32", 1e-4)])
@pytest.mark.parametrize("data_dim,latent_dim", [(6, 1), (6, 3), (6, 5), (20, 19), (40, 8)])
def test_marginal_matches_dense_gaussian(data_dim, latent_dim, dtype, rtol):
    nif, a, b, var = _random_nif(data_dim, latent_dim, dtype)
    x = np.random.default_rng(1).standard_normal((16, data_dim)) * 2.0
    dense = stats.multivariate_normal(b, a @ a.T + np.diag(var)).logpdf(x)
    np.testing.assert_allclose(np.asarray(nif.log_prob(x.astype(dtype)), "float64"), dense, rtol=rtol)


def test_manifold_term_matches_quadrature_for_d_1_and_2():
    for latent_dim in (1, 2):
        nif, a, b, var = _random_nif(5, latent_dim, seed=latent_dim)
        x = np.random.default_rng(2).standard_normal((3, 5))
        terms = np.asarray(nif.manifold_term(x))
        for i in range(3):
            def p(*z):
                mean = a @ np.asarray(z) + b
                return np.exp(stats.multivariate_normal(mean, np.diag(var)).logpdf(x[i]) - terms[i])
            if latent_dim == 1:
                value, _ = integrate.quad(p, -60, 60, points=[float(np.asarray(nif.pseudo_inverse(x[i:i + 1]))[0, 0])], limit=200)
            else:
                centre = np.asarray(nif.pseudo_inverse(x[i:i + 1]))[0]
                value, _ = integrate.dblquad(lambda z2, z1: p(z1, z2), centre[0] - 15, centre[0] + 15,
                                             centre[1] - 15, centre[1] + 15, epsabs=1e-10)
            assert abs(value - 1.0) < 1e-5, (latent_dim, i, value)  # integral / exp(term) == 1


def test_elbo_is_a_lower_bound():
    for data_dim, latent_dim in [(6, 1), (6, 4), (30, 10)]:
        nif, *_ = _random_nif(data_dim, latent_dim, seed=data_dim)
        x = np.random.default_rng(3).standard_normal((64, data_dim)) * 3.0
        gap = np.asarray(nif.log_prob(x)) - np.asarray(nif.elbo(x))
        assert np.all(gap >= -1e-10), gap.min()
        assert np.all(gap > 0)  # strict for a non-degenerate posterior


def test_stochastic_inverse_moments_and_mode():
    nif, a, b, var = _random_nif(7, 3, seed=4)
    x = np.random.default_rng(5).standard_normal((1, 7))
    z_plus = np.asarray(nif.pseudo_inverse(x))[0]
    # The pseudo-inverse is the Sigma^-1 weighted least-squares solution (A.3).
    w = 1.0 / np.sqrt(var)
    lstsq = np.linalg.lstsq(a * w[:, None], (x[0] - b) * w, rcond=None)[0]
    np.testing.assert_allclose(z_plus, lstsq, rtol=1e-8)
    draws = np.asarray(nif.stochastic_inverse(np.repeat(x, 40000, axis=0), seed=0))
    cov = np.linalg.inv(a.T @ (a / var[:, None]))
    np.testing.assert_allclose(draws.mean(axis=0), z_plus, atol=4 * np.sqrt(np.diag(cov).max() / 40000) + 1e-9)
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.05 * np.abs(cov).max())
    encoded = np.asarray(nif.encode(x))
    np.testing.assert_allclose(encoded[0], z_plus)


def test_upsample_nif_agrees_with_dense_gaussian_nif():
    rng = np.random.default_rng(6)
    shape = (4, 6, 2)
    up = layers.UpsampleNIF(dtype="float64")
    up.build((None,) + shape)
    up.bias.assign(rng.standard_normal(shape))
    up.log_variance.assign(0.5 * rng.standard_normal(shape))
    h, w, c = shape
    latent = (h // 2, w // 2, c)
    dense_a = np.zeros((h * w * c, int(np.prod(latent))))
    for i in range(h):
        for j in range(w):
            for k in range(c):
                dense_a[np.ravel_multi_index((i, j, k), shape), np.ravel_multi_index((i // 2, j // 2, k), latent)] = 1.0
    nif = layers.GaussianNIF(dense_a.shape[1], dtype="float64")
    nif.build((None,) + shape)
    nif.a_matrix.assign(dense_a)
    nif.bias.assign(np.asarray(up.bias).ravel())
    nif.log_variance.assign(np.asarray(up.log_variance).ravel())
    x = rng.standard_normal((5,) + shape)
    for name in ("log_prob", "manifold_term", "elbo"):
        np.testing.assert_allclose(np.asarray(getattr(up, name)(x)), np.asarray(getattr(nif, name)(x)), rtol=1e-10, err_msg=name)
    np.testing.assert_allclose(np.asarray(up.pseudo_inverse(x)).reshape(5, -1), np.asarray(nif.pseudo_inverse(x)), rtol=1e-10)
    z = rng.standard_normal((5,) + latent)
    np.testing.assert_allclose(np.asarray(up.inverse(z)), np.asarray(nif.inverse(z.reshape(5, -1))), rtol=1e-12)


def test_sampling_temperature_and_noise_scale():
    nif, a, b, var = _random_nif(6, 2, seed=7)
    on_manifold = np.asarray(nif.sample(500, temperature=1.0, noise_scale=0.0, seed=1))
    residual = on_manifold - b
    # s = 0: every sample lies exactly in the column space of A (shifted by b).
    projection = a @ np.linalg.lstsq(a, residual.T, rcond=None)[0]
    np.testing.assert_allclose(projection.T, residual, atol=1e-10)
    cold = np.asarray(nif.sample(4, temperature=0.0, noise_scale=0.0, seed=2))
    np.testing.assert_allclose(cold, np.repeat(b[None], 4, axis=0), atol=1e-12)
    noisy = np.asarray(nif.sample(20000, temperature=1.0, noise_scale=2.0, seed=3))
    np.testing.assert_allclose(np.cov(noisy.T), a @ a.T + 2.0 * np.diag(var), atol=0.08 * (np.abs(a @ a.T).max() + 2 * var.max()))


def test_bad_arguments_name_the_expected_values():
    with pytest.raises(ValueError, match=r"latent_dim` must be smaller than the data dimension D = 4.*1 <= latent_dim <= 3"):
        layers.GaussianNIF(4)(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="latent_dim` must be an int >= 1; received 0"):
        layers.GaussianNIF(0)
    nif = layers.GaussianNIF(2)
    nif(np.zeros((2, 5), "float32"))
    with pytest.raises(ValueError, match=r"`z` must have shape \(batch, 2\) \(latent_dim=2\); received \(3, 3\)"):
        nif.inverse(np.zeros((3, 3), "float32"))
    with pytest.raises(ValueError, match="`noise_scale` must be >= 0; received -1"):
        nif.inverse(np.zeros((3, 2), "float32"), noise_scale=-1.0)
    with pytest.raises(ValueError, match=r"1 <= latent_dim < 2"):
        layers.StochasticCoupling(2)(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError, match="divisible by 2"):
        layers.UpsampleNIF()(np.zeros((1, 5, 4, 1), "float32"))


def test_injective_harness_catches_a_wrong_manifold_term(tmp_path):
    class WrongTerm(layers.GaussianNIF):
        def _terms(self, x, marginal=False):
            terms = super()._terms(x, marginal)
            terms["manifold"] = terms["manifold"] + 0.01
            return terms

    with pytest.raises(AssertionError, match="Laplace"):
        check_injective_layer(lambda dtype: WrongTerm(2, dtype=dtype), (3, 5), str(tmp_path))


def test_injective_harness_catches_a_wrong_mode(tmp_path):
    class WrongMean(layers.UpsampleNIF):
        def _terms(self, x, marginal=False):
            terms = super()._terms(x, marginal)
            terms["mean"] = terms["mean"] * 1.01
            return terms

    with pytest.raises(AssertionError, match="pseudo_inverse|mode"):
        check_injective_layer(lambda dtype: WrongMean(dtype=dtype), (2, 4, 4, 1), str(tmp_path))
