"""Pad, Proj, SplitPrior and the Gram determinant (layers/manifold.py)."""

import math

import keras
import numpy as np
import pytest

import layers as flow_layers
from layers.manifold import Pad, Proj, SplitPrior, gram_log_det


def test_pad_proj_round_trips():
    rng = np.random.default_rng(0)
    u = rng.standard_normal((4, 2)).astype("float32")
    z = rng.standard_normal((4, 5)).astype("float32")
    pad, proj = Pad(5), Proj(2)
    padded = np.asarray(pad(u))
    np.testing.assert_array_equal(padded[:, :2], u)
    np.testing.assert_array_equal(padded[:, 2:], 0.0)
    np.testing.assert_array_equal(np.asarray(proj(pad(u))), u)  # Proj o Pad = identity
    np.testing.assert_array_equal(np.asarray(pad(proj(z))), np.concatenate([z[:, :2], np.zeros((4, 3))], 1))
    assert pad.compute_output_shape((None, 2)) == (None, 5) and proj.compute_output_shape((None, 5)) == (None, 2)


def test_pad_proj_config_and_keras_file(tmp_path):
    inputs = keras.Input((2,))
    model = keras.Model(inputs, Proj(1, name="proj")(Pad(4, name="pad")(inputs)))
    path = str(tmp_path / "pad_proj.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("pad").get_config()["data_dim"] == 4
    assert loaded.get_layer("proj").get_config()["latent_dim"] == 1
    x = np.array([[1.5, -2.0]], "float32")
    np.testing.assert_array_equal(np.asarray(loaded(x)), x[:, :1])


def test_pad_proj_bad_input():
    with pytest.raises(ValueError, match="must be >= 1"):
        Proj(0)
    with pytest.raises(ValueError, match="must exceed latent_dim"):
        Proj(3)(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="flat vectors"):
        Proj(1)(np.zeros((2, 3, 3), "float32"))
    with pytest.raises(ValueError, match="smaller than data_dim"):
        Pad(3)(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="flat vectors"):
        Pad(4)(np.zeros((2,), "float32"))


def test_gram_log_det_against_dense_determinant():
    rng = np.random.default_rng(1)
    for d, big_d in ((1, 2), (2, 5), (3, 3)):
        jac = rng.standard_normal((6, big_d, d))
        reference = 0.5 * np.log(np.linalg.det(np.einsum("bji,bjk->bik", jac, jac)))
        np.testing.assert_allclose(np.asarray(gram_log_det(jac)), reference, rtol=1e-10, atol=1e-12)
        if d == big_d:  # square: 0.5 log det(J^T J) = log |det J|
            np.testing.assert_allclose(np.asarray(gram_log_det(jac)), np.linalg.slogdet(jac)[1], atol=1e-10)


def test_gram_log_det_bad_input():
    with pytest.raises(ValueError, match=r"\(batch, D, d\)"):
        gram_log_det(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="d <= D"):
        gram_log_det(np.zeros((2, 2, 3)))


def _prior(v_std=0.3):
    inner = flow_layers.FlowSequence([flow_layers.ActNorm(data_init=False)], name="inner")
    prior = SplitPrior(1, inner, v_std=v_std)
    prior.build((None, 3))
    inner.flow_layers[0].loc.assign([0.4])
    inner.flow_layers[0].log_scale.assign([-0.7])
    return prior


def test_split_prior_log_prob_against_hand_computation():
    prior = _prior()
    z = np.array([[0.5, 0.1, -0.2], [-1.0, 0.3, 0.05]], "float32")
    u_prime = (z[:, 0] + 0.4) * math.exp(-0.7)
    expected = (-0.5 * u_prime**2 - 0.5 * math.log(2 * math.pi) - 0.7
                - 0.5 * np.sum(z[:, 1:] ** 2, 1) / 0.09 - math.log(2 * math.pi * 0.09))
    np.testing.assert_allclose(np.asarray(prior.log_prob(z)), expected, rtol=1e-5)
    assert prior.latent_shape == (1,) and prior.noise_shapes == ((1,), None)


def test_split_prior_protocol_round_trips():
    prior = _prior()
    latent = np.array([[0.3], [-1.2]], "float32")
    z = np.asarray(prior.decode(latent))
    np.testing.assert_array_equal(z[:, 1:], 0.0)  # on the manifold: v = 0
    np.testing.assert_allclose(np.asarray(prior.encode(z)), latent, rtol=1e-5, atol=1e-6)
    eps = np.array([[1.0], [2.0]], "float32")
    np.testing.assert_allclose(np.asarray(prior.generate(eps, temperature=0.5)), np.asarray(prior.decode(0.5 * eps)))
    np.testing.assert_array_equal(np.asarray(prior.sample(3, seed=4)), np.asarray(prior.sample(3, seed=4)))
    config = prior.get_config()
    clone = SplitPrior.from_config(config)
    clone.build((None, 3))
    for a, b in zip(prior.weights, clone.weights):
        b.assign(a)
    np.testing.assert_allclose(np.asarray(clone.log_prob(z)), np.asarray(prior.log_prob(z)))
    assert clone.v_std == 0.3 and clone.latent_dim == 1


def test_split_prior_bad_input():
    with pytest.raises(ValueError, match="v_std"):
        SplitPrior(1, v_std=0.0)
    with pytest.raises(TypeError, match="FlowLayer"):
        SplitPrior(1, inner_flow=keras.layers.Dense(2))
    prior = SplitPrior(1)
    prior.build((None, 3))
    with pytest.raises(ValueError, match=r"`z` must have shape \(batch, 3\)"):
        prior.log_prob(np.zeros((2, 4), "float32"))


# ------------------------------------------------------------ rational-quadratic splines (layers/spline.py)
from layers.spline import ElementwiseSpline, SplineCoupling, rational_quadratic_spline  # noqa: E402
from layers.testing import check_flow_layer  # noqa: E402


def _wide_inputs(rng, shape, dtype):
    return (2.5 * rng.standard_normal(shape)).astype(dtype)  # inside and outside the tail bound


@pytest.mark.parametrize("shape", [(8, 3), (2, 4, 4, 4)])
def test_spline_coupling_flow_contract(tmp_path, shape):
    check_flow_layer(lambda **kw: SplineCoupling(hidden_units=8, num_bins=5, tail_bound=3.0, **kw), shape,
                     str(tmp_path), input_fn=_wide_inputs, roundtrip_rtol=1e-4,
                     jacobian_shape=(3, 3) if len(shape) == 2 else (1, 2, 2, 4))


def test_elementwise_spline_flow_contract(tmp_path):
    check_flow_layer(lambda **kw: ElementwiseSpline(num_bins=6, tail_bound=2.0, **kw), (16, 1), str(tmp_path),
                     input_fn=_wide_inputs, roundtrip_rtol=1e-4)


def test_spline_against_its_definition():
    # Two bins on [-1, 1] with a knot at (0, 0.5): check the value at a point by the formula of Durkan et al. (eq. 4).
    widths = np.log(np.array([[0.5, 0.5]]))  # softmax -> equal widths (up to the minimum bin width)
    heights = np.log(np.array([[0.75, 0.25]]))
    derivative = np.array([[np.log(np.expm1(2.0 - 1e-3))]])  # inner knot derivative = 2
    x = np.array([0.5])
    y, log_d = rational_quadratic_spline(x, widths, heights, derivative, 1.0)
    w = 1e-3 + (1 - 2e-3) * 0.5
    h = 1e-3 + (1 - 2e-3) * 0.25
    x_k, y_k = -1 + 2 * w, -1 + 2 * (1e-3 + (1 - 2e-3) * 0.75)
    width, height = 1 - x_k, 1 - y_k
    s, d0, d1 = height / width, 2.0, 1.0
    t = (0.5 - x_k) / width
    expected = y_k + height * (s * t**2 + d0 * t * (1 - t)) / (s + (d0 + d1 - 2 * s) * t * (1 - t))
    expected_log_d = np.log(s**2 * (d1 * t**2 + 2 * s * t * (1 - t) + d0 * (1 - t) ** 2)) - 2 * np.log(
        s + (d0 + d1 - 2 * s) * t * (1 - t))
    del h
    np.testing.assert_allclose(np.asarray(y), [expected], rtol=1e-10)
    np.testing.assert_allclose(np.asarray(log_d), [expected_log_d], rtol=1e-10)
    outside = rational_quadratic_spline(np.array([1.5]), widths, heights, derivative, 1.0)
    np.testing.assert_array_equal(np.asarray(outside[0]), [1.5])
    np.testing.assert_array_equal(np.asarray(outside[1]), [0.0])


def test_spline_bad_arguments():
    with pytest.raises(ValueError, match="num_bins >= 2"):
        SplineCoupling(num_bins=1)
    with pytest.raises(ValueError, match="tail_bound > 0"):
        ElementwiseSpline(tail_bound=0.0)
    with pytest.raises(ValueError, match="at least 2 features"):
        SplineCoupling()(np.zeros((2, 1), "float32"))
