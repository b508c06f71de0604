"""layers.jacobian: JVPs (exact and eq. 8), Hutchinson's estimator, the bounds and penalties of InjFlow."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from layers import jacobian as J
from layers.numerics import gram_log_det


def _decoder(latent_dim=3, data_dim=6, seed=0):
    """A small float64 injective-looking MLP decoder R^d -> R^D."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((latent_dim,), dtype="float64"),
        keras.layers.Dense(16, activation="tanh", dtype="float64"),
        keras.layers.Dense(data_dim, dtype="float64"),
    ])
    return model


def _dense_jacobian(fn, z):
    z = tf.convert_to_tensor(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        out = fn(z)
    return tape.batch_jacobian(out, z).numpy()  # (batch, D, d)


def test_forward_jvp_equals_the_dense_jacobian_times_v():
    decoder = _decoder()
    rng = np.random.default_rng(0)
    z, v = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    out, jv = J.jvp(decoder, tf.constant(z), tf.constant(v), method="forward")
    jac = _dense_jacobian(decoder, z)
    np.testing.assert_allclose(jv.numpy(), np.einsum("bij,bj->bi", jac, v), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.numpy(), decoder(z).numpy(), rtol=1e-12)
    assert J.resolve_method("auto") == "forward"  # the TensorFlow backend has forward mode


def test_finite_differences_agree_with_forward_mode_to_first_order_in_epsilon():
    decoder = _decoder()
    rng = np.random.default_rng(1)
    z, v = tf.constant(rng.standard_normal((4, 3))), tf.constant(rng.standard_normal((4, 3)))
    _, exact = J.jvp(decoder, z, v, method="forward")
    errors = []
    for eps in (1e-2, 1e-3, 1e-4):
        _, approx = J.jvp(decoder, z, v, method="finite_difference", epsilon=eps)
        errors.append(np.max(np.abs(approx.numpy() - exact.numpy())))
    scale = np.max(np.abs(exact.numpy()))
    assert errors[0] < 0.05 * scale  # eq. 8 with the paper's epsilon = 0.01
    # O(epsilon): ten times smaller steps give about ten times smaller errors.
    assert 5 < errors[0] / errors[1] < 20 and 5 < errors[1] / errors[2] < 20, errors
    # The squared norm of eq. 8 against ||Jv||^2.
    _, approx = J.finite_difference_jvp(decoder, z, v)
    np.testing.assert_allclose(J.squared_norm(approx).numpy(), J.squared_norm(exact).numpy(), rtol=0.1)


def test_hutchinson_estimate_converges_to_the_exact_frobenius_norm():
    decoder = _decoder(seed=2)
    z = np.random.default_rng(2).standard_normal((3, 3))
    jac = _dense_jacobian(decoder, z)
    exact = np.sum(jac**2, axis=(1, 2))
    gram = np.einsum("bij,bik->bjk", jac, jac)
    draws = 20000
    _, estimate = J.hutchinson_frobenius(decoder, tf.constant(z), num_samples=draws, seed=3)
    # Var ||Jv||^2 = 2 ||J^T J||_F^2 for v ~ N(0, I): four standard errors.
    tolerance = 4 * np.sqrt(2 * np.sum(gram**2, axis=(1, 2)) / draws)
    assert np.all(np.abs(estimate.numpy() - exact) < tolerance), (estimate.numpy(), exact, tolerance)
    assert np.all(np.abs(estimate.numpy() - exact) / exact < 0.05)
    _, one_draw = J.hutchinson_frobenius(decoder, tf.constant(z), seed=4)  # the paper's one draw: unbiased, noisy
    assert one_draw.shape == (3,) and np.all(one_draw.numpy() >= 0)
    # The exact helpers from d JVPs.
    np.testing.assert_allclose(J.frobenius_norm_squared(decoder, tf.constant(z)).numpy(), exact, rtol=1e-10)
    np.testing.assert_allclose(J.batch_jacobian(decoder, tf.constant(z)).numpy(), jac, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(2.0 * gram_log_det(tf.constant(jac)).numpy(), np.linalg.slogdet(gram)[1], rtol=1e-10)


def test_lower_bounds_4_and_5_are_below_the_exact_log_det_term():
    decoder = _decoder(latent_dim=3, data_dim=7, seed=5)
    z = np.random.default_rng(5).standard_normal((6, 3))
    jac = _dense_jacobian(decoder, z)
    singular = np.linalg.svd(jac, compute_uv=False)
    assert np.all(singular > 1e-6)  # injective at these points
    exact = -0.5 * np.sum(np.log(singular**2), axis=1)  # -1/2 ln det(J^T J)
    frobenius = np.sum(singular**2, axis=1)
    bound5 = J.frobenius_log_det_bound(tf.constant(frobenius), 3).numpy()
    assert np.all(bound5 <= exact + 1e-12) and np.all(bound5 < exact)  # strict: singular values differ
    for lam in (0.1, 1.0, 10.0):
        bound4 = J.lambda_log_det_bound(tf.constant(frobenius), 3, lam).numpy()
        assert np.all(bound4 <= bound5 + 1e-12)  # (5) is (4) at its best lambda = ||J||_F^2 / d
    best = [J.lambda_log_det_bound(tf.constant(f), 3, float(f / 3)).numpy() for f in frobenius]
    np.testing.assert_allclose(best, bound5, rtol=1e-12)
    np.testing.assert_allclose(bound5, -1.5 * np.log(frobenius / 3), rtol=1e-12)
    # Tight when all singular values are equal: J = c Q with orthonormal columns.
    q, _ = np.linalg.qr(np.random.default_rng(6).standard_normal((7, 3)))
    c = 1.7
    tight = J.frobenius_log_det_bound(tf.constant([np.sum((c * q) ** 2)]), 3).numpy()
    np.testing.assert_allclose(tight, [-0.5 * np.linalg.slogdet((c * q).T @ (c * q))[1]], rtol=1e-12)


def _linear_map(singular_values, data_dim=6, seed=0):
    rng = np.random.default_rng(seed)
    d = len(singular_values)
    u, _ = np.linalg.qr(rng.standard_normal((data_dim, d)))
    vt, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return u @ np.diag(singular_values) @ vt.T, vt


def test_injectivity_penalty_is_zero_when_all_singular_values_exceed_eta():
    eta = 0.1
    matrix, _ = _linear_map([0.11, 0.5, 3.0])
    fn = lambda z: tf.matmul(z, tf.constant(matrix.T))  # noqa: E731
    v = tf.constant(np.random.default_rng(1).standard_normal((2000, 3)))
    _, jv = J.jvp(fn, tf.zeros_like(v), v)
    penalty = J.injectivity_penalty(J.squared_norm(jv), J.squared_norm(v), eta).numpy()
    assert np.all(penalty == 0.0)
    # A singular value below eta is penalized along its direction: (s - eta)^2.
    matrix, right = _linear_map([0.02, 0.5, 3.0])
    fn = lambda z: tf.matmul(z, tf.constant(matrix.T))  # noqa: E731
    v = tf.constant(2.5 * right[:, :1].T)  # the right singular vector of s = 0.02 (any length)
    _, jv = J.jvp(fn, tf.zeros_like(v), v)
    penalty = J.injectivity_penalty(J.squared_norm(jv), J.squared_norm(v), eta).numpy()
    np.testing.assert_allclose(penalty, [(0.02 - eta) ** 2], rtol=1e-10)


def test_frobenius_terms_against_numpy():
    rng = np.random.default_rng(3)
    jv_sq, v_sq = rng.uniform(0, 2, 50), rng.uniform(0.5, 20, 50)
    eta, lam, d = 0.3, 2.0, 8
    clipped = np.maximum(jv_sq, eta**2 * v_sq)
    assert np.any(clipped != jv_sq)  # the clip is exercised
    np.testing.assert_allclose(J.frobenius_penalty(tf.constant(jv_sq), tf.constant(v_sq), eta, lam).numpy(),
                               clipped / (2 * lam), rtol=1e-12)
    np.testing.assert_allclose(J.log_frobenius_penalty(tf.constant(jv_sq), tf.constant(v_sq), eta, d).numpy(),
                               d / 2 * np.log(clipped), rtol=1e-12)
    ratio = np.sqrt(jv_sq / v_sq)
    np.testing.assert_allclose(J.injectivity_penalty(tf.constant(jv_sq), tf.constant(v_sq), eta).numpy(),
                               np.minimum(ratio - eta, 0) ** 2, rtol=1e-12, atol=1e-15)


def test_layer_jvp_updates_batch_norm_state_and_matches_the_plain_jvp():
    keras.utils.set_random_seed(0)
    layer = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8), keras.layers.BatchNormalization(),
                              keras.layers.ELU(), keras.layers.Dense(5)])
    z, v = keras.random.normal((16, 3), seed=1), keras.random.normal((16, 3), seed=2)
    before = layer.layers[1].moving_mean.numpy().copy()
    out, jv = J.layer_jvp(layer, z, v, training=True)
    assert not np.allclose(layer.layers[1].moving_mean.numpy(), before)  # moving statistics were updated
    _, reference = J.jvp(lambda q: layer(q, training=True), z, v)
    np.testing.assert_allclose(jv.numpy(), reference.numpy(), rtol=1e-5, atol=1e-6)
    assert out.shape == (16, 5)


def test_bad_input_is_refused_with_clear_errors():
    decoder = _decoder()
    z = tf.zeros((2, 3), tf.float64)
    with pytest.raises(ValueError, match="`method` must be one of"):
        J.jvp(decoder, z, z, method="reverse")
    with pytest.raises(ValueError, match="`tangents` must have the shape of `primals`"):
        J.jvp(decoder, z, tf.zeros((2, 4), tf.float64))
    with pytest.raises(ValueError, match="`epsilon` must be > 0"):
        J.finite_difference_jvp(decoder, z, z, epsilon=0.0)
    with pytest.raises(ValueError, match="`num_samples` must be an int >= 1"):
        J.hutchinson_frobenius(decoder, z, num_samples=0)
    with pytest.raises(ValueError, match="`lam` must be > 0"):
        J.frobenius_penalty(tf.ones(2), tf.ones(2), 0.1, lam=0.0)
