"""Every flow layer through the one shared harness (layers.testing)."""

import keras
import numpy as np
import pytest

import layers
from layers.testing import check_flow_layer


def _levels(n_bits):
    def make(rng, shape, dtype):
        return rng.integers(0, 2**n_bits, size=shape).astype(dtype)

    return make


def _unit_interval(rng, shape, dtype):
    return rng.uniform(0.02, 0.98, size=shape).astype(dtype)


def _glow_step(dtype):
    return layers.FlowSequence(
        [
            layers.ActNorm(dtype=dtype),
            layers.InvertibleConv1x1(seed=3, dtype=dtype),
            layers.AffineCoupling(hidden_units=8, dtype=dtype),
        ],
        dtype=dtype,
    )


def _factor_out(dtype):
    inner = layers.FlowSequence(
        [layers.Squeeze(dtype=dtype), _glow_step(dtype), layers.Flatten(dtype=dtype)], dtype=dtype
    )
    return layers.FactorOut(inner, dtype=dtype)


CASES = {
    "actnorm_image": (lambda dtype: layers.ActNorm(dtype=dtype), (2, 4, 4, 3), {}),
    "actnorm_vector": (lambda dtype: layers.ActNorm(dtype=dtype), (3, 5), {}),
    "conv1x1_lu": (lambda dtype: layers.InvertibleConv1x1(seed=1, dtype=dtype), (2, 4, 4, 3), {}),
    "conv1x1_plain": (lambda dtype: layers.InvertibleConv1x1(lu_decomposed=False, seed=1, dtype=dtype), (2, 4, 4, 3), {}),
    "conv1x1_vector": (lambda dtype: layers.InvertibleConv1x1(seed=2, dtype=dtype), (3, 4), {}),
    "squeeze": (lambda dtype: layers.Squeeze(dtype=dtype), (2, 4, 4, 2), {}),
    "flatten": (lambda dtype: layers.Flatten(dtype=dtype), (2, 2, 2, 3), {}),
    "reverse": (lambda dtype: layers.Permute(dtype=dtype), (2, 4, 4, 3), {}),
    "permute": (lambda dtype: layers.Permute([2, 0, 1], dtype=dtype), (2, 4, 4, 3), {}),
    "coupling_conv": (lambda dtype: layers.AffineCoupling(hidden_units=8, dtype=dtype), (2, 4, 4, 4), {}),
    "coupling_conv_odd": (lambda dtype: layers.AffineCoupling(hidden_units=8, dtype=dtype), (2, 4, 4, 3), {}),
    "coupling_mlp": (lambda dtype: layers.AffineCoupling(hidden_units=16, dtype=dtype), (3, 5), {}),
    "spline_coupling_mlp": (
        lambda dtype: layers.SplineCoupling(hidden_units=8, num_bins=5, tail_bound=3.0, dtype=dtype), (3, 4), {}
    ),
    "spline_coupling_conv": (lambda dtype: layers.SplineCoupling(hidden_units=8, num_bins=5, dtype=dtype), (2, 4, 4, 4), {}),
    "coupling_volume_preserving": (
        lambda dtype: layers.AffineCoupling(hidden_units=8, volume_preserving=True, dtype=dtype), (2, 4, 4, 4), {}
    ),
    "coupling_volume_preserving_mlp": (
        lambda dtype: layers.AffineCoupling(hidden_units=8, volume_preserving=True, dtype=dtype), (3, 5), {}
    ),
    "coupling_leaky_relu": (  # the spread paper's conditioners (LeakyReLU, slope 0.2)
        lambda dtype: layers.AffineCoupling(hidden_units=8, volume_preserving=True, activation="leaky_relu",
                                            dtype=dtype), (2, 4, 4, 4), {}
    ),
    "data_noise": (lambda dtype: layers.DataNoise(0.1, seed=0, dtype=dtype), (2, 4, 4, 1), {}),
    "spline_elementwise": (lambda dtype: layers.ElementwiseSpline(num_bins=6, tail_bound=2.0, dtype=dtype), (8, 2), {}),
    "glow_step": (_glow_step, (2, 4, 4, 4), {}),
    "factor_out": (_factor_out, (2, 4, 4, 4), {}),
    "dequantize_uniform": (
        lambda dtype: layers.Dequantize(n_bits=3, seed=0, dtype=dtype), (2, 4, 4, 1),
        {"input_fn": _levels(3), "stochastic": True},
    ),
    "dequantize_center": (
        lambda dtype: layers.Dequantize(n_bits=5, noise="center", dtype=dtype), (2, 4, 4, 1),
        {"input_fn": _levels(5)},
    ),
    "logit": (lambda dtype: layers.LogitTransform(alpha=0.05, dtype=dtype), (2, 4, 4, 1), {"input_fn": _unit_interval}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_flow_contract(case, tmp_path):
    factory, shape, options = CASES[case]
    check_flow_layer(lambda dtype: factory(dtype), shape, str(tmp_path), **options)


def test_harness_catches_a_wrong_log_det(tmp_path):
    """A log-det off by a constant, consistently in both directions, is caught by the Jacobian."""

    class WrongLogDet(layers.ActNorm):
        def _log_det(self, x):
            return super()._log_det(x) + 0.1

    with pytest.raises(AssertionError, match="autodiff"):
        check_flow_layer(lambda dtype: WrongLogDet(dtype=dtype), (2, 3), str(tmp_path))


def test_harness_catches_a_wrong_inverse(tmp_path):
    class WrongInverse(layers.ActNorm):
        def _inverse(self, z, training=None):
            x, log_det = super()._inverse(z, training=training)
            return x * 1.001, log_det

    with pytest.raises(AssertionError, match="inverse"):
        check_flow_layer(lambda dtype: WrongInverse(dtype=dtype), (2, 3), str(tmp_path))


def test_every_public_flow_layer_has_a_case():
    covered = set()
    for factory, _, _ in CASES.values():
        layer = factory("float32")
        covered.add(type(layer))
        if isinstance(layer, layers.FlowSequence):
            covered.update(type(l) for l in layer.flow_layers)
    public = {
        obj for obj in vars(layers).values()
        if isinstance(obj, type) and issubclass(obj, layers.FlowLayer) and obj is not layers.FlowLayer
    }
    assert public <= covered, f"flow layers without a harness case: {sorted(c.__name__ for c in public - covered)}"


def test_coupling_factory_builds_each_kind():
    affine = layers.coupling_factory("affine", log_scale_clamp=3.0)(16, 3)
    assert type(affine) is layers.AffineCoupling and not affine.volume_preserving
    assert (affine.hidden_units, affine.num_hidden_layers, affine.log_scale_clamp) == (16, 3, 3.0)
    assert "volume_preserving" not in affine.get_config()  # configs of affine couplings are unchanged
    assert "activation" not in affine.get_config() and affine.activation == "relu"
    leaky = layers.coupling_factory("volume_preserving", activation="leaky_relu")(8)
    assert leaky.get_config()["activation"] == "leaky_relu"
    leaky.build((2, 4))
    assert all(layer.activation is keras.activations.leaky_relu for layer in leaky.conditioner[:-1])
    with pytest.raises(ValueError, match="unknown `activation` 'leaky'"):
        layers.AffineCoupling(8, activation="leaky")
    with pytest.raises(ValueError, match="must be a Keras activation name"):
        layers.AffineCoupling(8, activation=keras.activations.relu)
    preserving = layers.coupling_factory("volume_preserving")(8)
    assert type(preserving) is layers.AffineCoupling and preserving.volume_preserving
    assert preserving.num_hidden_layers == 2
    make = layers.coupling_factory("spline", num_bins=5, tail_bound=4.0)
    spline = make(8, 1)
    assert type(spline) is layers.SplineCoupling
    assert (spline.hidden_units, spline.num_hidden_layers, spline.num_bins, spline.tail_bound) == (8, 1, 5, 4.0)
    assert make(8) is not make(8)  # a new layer at each call
    with pytest.raises(ValueError, match="must be one of"):
        layers.coupling_factory("additive")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_bins'\]"):
        layers.coupling_factory("affine", num_bins=4)
