"""The shared closed forms (layers/numerics.py) and the per-example Jacobian against dense float64 references."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import linalg, stats

import layers
from layers import numerics
from layers.jacobian import batch_jacobian


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _lower(rng, *shape):
    """Well-conditioned lower-triangular factors with a positive diagonal, float64."""
    d = shape[-1]
    chol = np.tril(rng.standard_normal(shape)) * 0.3
    idx = np.arange(d)
    chol[..., idx, idx] = np.exp(rng.uniform(-0.5, 0.5, shape[:-1]))
    return chol


def test_log_2pi():
    assert numerics.LOG_2PI == math.log(2.0 * math.pi)
    assert layers.LOG_2PI is numerics.LOG_2PI


@pytest.mark.parametrize("shape", [(5,), (4, 3), (2, 3, 4, 2)])
def test_standard_normal_log_prob_against_scipy(shape):
    z = np.random.default_rng(0).standard_normal(shape) * 1.7
    reference = stats.norm.logpdf(z).reshape(shape[0], -1).sum(axis=1)
    np.testing.assert_allclose(_np(numerics.standard_normal_log_prob(tf.constant(z))), reference, rtol=1e-12)


def test_standard_normal_log_prob_over_given_axes_and_unknown_shapes():
    z = np.random.default_rng(1).standard_normal((3, 4, 5))
    np.testing.assert_allclose(_np(numerics.standard_normal_log_prob(tf.constant(z), axis=1)),
                               stats.norm.logpdf(z).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(_np(numerics.standard_normal_log_prob(tf.constant(z), axis=(0, 2))),
                               stats.norm.logpdf(z).sum(axis=(0, 2)), rtol=1e-12)

    @tf.function(input_signature=[tf.TensorSpec((None, None, 5), tf.float64)])
    def dynamic(x):  # event size known only at run time
        return numerics.standard_normal_log_prob(x)

    np.testing.assert_allclose(_np(dynamic(tf.constant(z))), stats.norm.logpdf(z).sum(axis=(1, 2)), rtol=1e-12)


def test_diagonal_normal_log_prob_against_scipy():
    rng = np.random.default_rng(2)
    residual = rng.standard_normal((6, 4))
    log_variance = rng.uniform(-2.0, 1.0, 4)
    reference = stats.multivariate_normal(np.zeros(4), np.diag(np.exp(log_variance))).logpdf(residual)
    got = numerics.diagonal_normal_log_prob(tf.constant(residual), tf.constant(log_variance))
    np.testing.assert_allclose(_np(got), reference, rtol=1e-12)


@pytest.mark.parametrize("shape", [(3, 3), (5, 4, 4), (2, 3, 2, 2)])
def test_cholesky_log_det_against_slogdet(shape):
    chol = _lower(np.random.default_rng(3), *shape)
    reference = np.linalg.slogdet(chol @ np.swapaxes(chol, -1, -2))[1]
    np.testing.assert_allclose(_np(numerics.cholesky_log_det(tf.constant(chol))), reference, rtol=1e-12, atol=1e-12)


def test_triangular_solves_against_scipy():
    rng = np.random.default_rng(4)
    chol = _lower(rng, 4, 4)
    rhs = rng.standard_normal((6, 4))
    np.testing.assert_allclose(_np(numerics.solve_lower(tf.constant(chol), tf.constant(rhs))),
                               linalg.solve_triangular(chol, rhs.T, lower=True).T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(numerics.solve_lower_transpose(tf.constant(chol), tf.constant(rhs))),
                               linalg.solve_triangular(chol.T, rhs.T, lower=False).T, rtol=1e-10, atol=1e-12)
    # One factor per row (the per-pixel NIF and the DNF's batched systems).
    chols = _lower(rng, 6, 3, 3)
    rhs = rng.standard_normal((6, 3))
    lower = np.stack([linalg.solve_triangular(c, b, lower=True) for c, b in zip(chols, rhs)])
    upper = np.stack([linalg.solve_triangular(c.T, b, lower=False) for c, b in zip(chols, rhs)])
    np.testing.assert_allclose(_np(numerics.solve_lower(tf.constant(chols), tf.constant(rhs))), lower, rtol=1e-10)
    np.testing.assert_allclose(_np(numerics.solve_lower_transpose(tf.constant(chols), tf.constant(rhs))), upper,
                               rtol=1e-10)


def test_gram_log_det_against_slogdet_and_in_float64():
    rng = np.random.default_rng(5)
    jac = rng.standard_normal((5, 7, 3))
    reference = 0.5 * np.linalg.slogdet(np.einsum("bji,bjk->bik", jac, jac))[1]
    np.testing.assert_allclose(_np(numerics.gram_log_det(tf.constant(jac))), reference, rtol=1e-12)
    # Ill-conditioned float32 Jacobian (singular values 1 and 1e-3): J^T J is factored in float64, the result is float32.
    q, _ = np.linalg.qr(rng.standard_normal((7, 2)))
    ill = np.stack([q @ np.diag([1.0, 1e-3]) @ np.linalg.qr(rng.standard_normal((2, 2)))[0] for _ in range(4)])
    ill32 = ill.astype("float32")
    got = numerics.gram_log_det(tf.constant(ill32))
    assert got.dtype == tf.float32
    exact = 0.5 * np.linalg.slogdet(np.einsum("bji,bjk->bik", ill32.astype(np.float64), ill32.astype(np.float64)))[1]
    np.testing.assert_allclose(_np(got), exact, rtol=1e-6)


def test_batch_jacobian_of_a_known_linear_map():
    rng = np.random.default_rng(6)
    weights = rng.standard_normal((3, 8))
    x = tf.constant(rng.standard_normal((4, 3)))
    jac = _np(batch_jacobian(lambda q: tf.reshape(q @ weights, (-1, 2, 2, 2)), x, method="forward"))
    assert jac.shape == (4, 8, 3)
    np.testing.assert_allclose(jac, np.broadcast_to(weights.T, (4, 8, 3)), rtol=1e-12)
    assert layers.batch_jacobian is batch_jacobian


def test_batch_jacobian_against_central_differences_and_in_a_graph():
    rng = np.random.default_rng(7)
    w1, w2 = rng.standard_normal((2, 5)), rng.standard_normal((5, 6))

    def fn(q):
        return tf.tanh(q @ w1) @ w2 + q[:, :1] ** 2

    x = rng.standard_normal((3, 2))
    step = 1e-6
    reference = np.stack([
        (_np(fn(tf.constant(x + step * e))) - _np(fn(tf.constant(x - step * e)))) / (2 * step) for e in np.eye(2)
    ], axis=-1)
    np.testing.assert_allclose(_np(batch_jacobian(fn, tf.constant(x))), reference, rtol=1e-7, atol=1e-9)
    graph = tf.function(lambda q: batch_jacobian(fn, q), input_signature=[tf.TensorSpec((None, 2), tf.float64)])
    np.testing.assert_allclose(_np(graph(tf.constant(x))), reference, rtol=1e-7, atol=1e-9)
    approx = _np(batch_jacobian(fn, tf.constant(x), method="finite_difference", epsilon=1e-4))
    np.testing.assert_allclose(approx, reference, atol=1e-3)
