"""Rational-quadratic spline flows (Durkan et al. 2019): a coupling layer and an element-wise layer.

The monotone rational-quadratic spline maps ``[-B, B]`` onto itself with
``K`` bins whose widths, heights and inner-knot derivatives are free
parameters; outside ``[-B, B]`` it is the identity (linear tails, derivative 1
at the boundary knots), so every real input is valid.
"""

import math

import keras
from keras import ops

from layers.base import FlowLayer, split_channels, sum_except_batch
from layers.coupling import apply_sequence, build_sequence, conditioner_layers

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3
# Unnormalized derivative whose softplus + MIN_DERIVATIVE is exactly 1 (boundary knots; zero-initialized identity).
_UNIT_DERIVATIVE = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def _knots(unnormalized, tail_bound, minimum):
    """Bin sizes (softmax, at least ``minimum``) -> knot positions ``(..., K + 1)`` from -B to B and bin sizes."""
    num_bins = unnormalized.shape[-1]
    sizes = minimum + (1.0 - minimum * num_bins) * ops.softmax(unnormalized, axis=-1)
    cum = ops.cumsum(sizes, axis=-1)
    cum = ops.concatenate([ops.zeros_like(cum[..., :1]), cum[..., :-1], ops.ones_like(cum[..., :1])], axis=-1)
    knots = 2.0 * tail_bound * cum - tail_bound
    return knots, knots[..., 1:] - knots[..., :-1]


def _select(values, index, num):
    """``values[..., index]`` for an integer ``index`` of the leading shape (one-hot gather, any backend)."""
    return ops.sum(values * ops.one_hot(index, num, dtype=values.dtype), axis=-1)


def rational_quadratic_spline(inputs, unnormalized_widths, unnormalized_heights, unnormalized_derivatives,
                              tail_bound, inverse=False):
    """Element-wise monotone rational-quadratic spline with identity tails.

    Args:
        inputs: tensor ``(...)``.
        unnormalized_widths, unnormalized_heights: ``(..., K)``.
        unnormalized_derivatives: ``(..., K - 1)`` (inner knots; the
            boundary derivatives are 1).
        tail_bound: float ``B``; the spline acts on ``[-B, B]``.
        inverse: False for ``y = s(x)``, True for ``x = s^-1(y)``.

    Returns:
        ``(outputs, log |d outputs / d inputs|)``, both shaped like ``inputs``.

    Reference:
        Durkan, Bekasov, Murray, Papamakarios, "Neural Spline Flows",
        NeurIPS 2019, section 3 and appendix A.
    """
    num_bins = unnormalized_widths.shape[-1]
    inside = ops.logical_and(inputs >= -tail_bound, inputs <= tail_bound)
    x = ops.clip(inputs, -tail_bound, tail_bound)
    cum_w, widths = _knots(unnormalized_widths, tail_bound, MIN_BIN_WIDTH)
    cum_h, heights = _knots(unnormalized_heights, tail_bound, MIN_BIN_HEIGHT)
    pad = ops.zeros_like(unnormalized_derivatives[..., :1]) + _UNIT_DERIVATIVE
    derivatives = MIN_DERIVATIVE + ops.softplus(ops.concatenate([pad, unnormalized_derivatives, pad], axis=-1))

    knots = cum_h if inverse else cum_w
    # Bin index: number of inner knots <= x (the last knot is excluded so x = B falls in bin K - 1).
    index = ops.sum(ops.cast(x[..., None] >= knots[..., 1:-1], "int32"), axis=-1)
    x_k, w_k = _select(cum_w[..., :-1], index, num_bins), _select(widths, index, num_bins)
    y_k, h_k = _select(cum_h[..., :-1], index, num_bins), _select(heights, index, num_bins)
    d_k, d_k1 = _select(derivatives[..., :-1], index, num_bins), _select(derivatives[..., 1:], index, num_bins)
    delta = h_k / w_k
    slope_sum = d_k + d_k1 - 2.0 * delta

    if inverse:
        shifted = x - y_k
        a = h_k * (delta - d_k) + shifted * slope_sum
        b = h_k * d_k - shifted * slope_sum
        c = -delta * shifted
        discriminant = ops.maximum(ops.square(b) - 4.0 * a * c, 0.0)
        theta = (2.0 * c) / (-b - ops.sqrt(discriminant))
        outputs = theta * w_k + x_k
    else:
        theta = (x - x_k) / w_k
        outputs = y_k + h_k * (delta * ops.square(theta) + d_k * theta * (1.0 - theta)) / (
            delta + slope_sum * theta * (1.0 - theta))
    one_minus = 1.0 - theta
    denominator = delta + slope_sum * theta * one_minus
    log_derivative = (2.0 * ops.log(delta)
                      + ops.log(d_k1 * ops.square(theta) + 2.0 * delta * theta * one_minus + d_k * ops.square(one_minus))
                      - 2.0 * ops.log(denominator))
    if inverse:
        log_derivative = -log_derivative
    outputs = ops.where(inside, outputs, inputs)
    log_derivative = ops.where(inside, log_derivative, ops.zeros_like(log_derivative))
    return outputs, log_derivative


def _split_parameters(params, num_bins):
    return tuple(ops.split(params, [num_bins, 2 * num_bins], axis=-1))


@keras.saving.register_keras_serializable(package="flow_zoo")
class SplineCoupling(FlowLayer):
    """Rational-quadratic spline coupling: one half of the channels sets the splines of the other.

    The last axis splits into ``x_a = x[..., :C // 2]`` (passed through)
    and ``x_b``; a conditioner network (``layers.coupling``'s: MLP for
    vectors, GLOW's convolutions for images; last layer zero-initialized, so
    a new layer is the identity) maps ``x_a`` to ``3K - 1`` spline parameters
    per element of ``x_b``.

    Args:
        hidden_units: int, width of the conditioner's hidden layers.
        num_hidden_layers: int, hidden layers of the MLP conditioner.
        num_bins: int ``K >= 2``.
        tail_bound: float ``B > 0``; identity outside ``[-B, B]``.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ``(batch, features)`` or ``(batch, height, width, channels)``.
        training: unused.

    Example:

    >>> layer = layers.SplineCoupling(hidden_units=32, num_bins=5, tail_bound=3.0)
    >>> z, log_det = layer(keras.random.normal((4, 2)))

    Reference:
        Durkan et al., "Neural Spline Flows", NeurIPS 2019.
    """

    def __init__(self, hidden_units=64, num_hidden_layers=2, num_bins=8, tail_bound=3.0, **kwargs):
        super().__init__(**kwargs)
        if int(num_bins) < 2 or not float(tail_bound) > 0:
            raise ValueError(f"SplineCoupling: needs num_bins >= 2 and tail_bound > 0; received {num_bins}, {tail_bound}.")
        self.hidden_units = int(hidden_units)
        self.num_hidden_layers = int(num_hidden_layers)
        self.num_bins = int(num_bins)
        self.tail_bound = float(tail_bound)

    def build(self, input_shape):
        rank, channels = len(input_shape), input_shape[-1]
        if rank not in (2, 4) or channels is None or channels < 2:
            raise ValueError(
                "SplineCoupling expects vectors (batch, features) or images (batch, height, width, channels) with at "
                f"least 2 features / channels; received shape {tuple(input_shape)}."
            )
        self.split = int(channels) // 2
        self.num_transformed = int(channels) - self.split
        per_element = 3 * self.num_bins - 1
        self.conditioner = conditioner_layers(rank, self.hidden_units, self.num_hidden_layers,
                                              self.num_transformed * per_element)
        build_sequence(self.conditioner, tuple(input_shape[:-1]) + (self.split,))
        self.input_spec = keras.layers.InputSpec(ndim=rank, axes={-1: int(channels)})

    def _spline(self, x_a, x_b, inverse):
        params = apply_sequence(self.conditioner, x_a)
        params = ops.reshape(params, (-1,) + tuple(params.shape[1:-1]) + (self.num_transformed, 3 * self.num_bins - 1))
        widths, heights, derivatives = _split_parameters(params, self.num_bins)
        y_b, log_derivative = rational_quadratic_spline(x_b, widths, heights, derivatives, self.tail_bound, inverse)
        return y_b, sum_except_batch(log_derivative)

    def call(self, inputs, training=None):
        x_a, x_b = split_channels(inputs, self.split)
        z_b, log_det = self._spline(x_a, x_b, inverse=False)
        return ops.concatenate([x_a, z_b], axis=-1), log_det

    def _inverse(self, z, training=None):
        z_a, z_b = split_channels(z, self.split)
        x_b, log_det = self._spline(z_a, z_b, inverse=True)
        return ops.concatenate([z_a, x_b], axis=-1), log_det

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_units": self.hidden_units, "num_hidden_layers": self.num_hidden_layers,
                       "num_bins": self.num_bins, "tail_bound": self.tail_bound})
        return config


@keras.saving.register_keras_serializable(package="flow_zoo")
class ElementwiseSpline(FlowLayer):
    """A rational-quadratic spline per feature with learned (unconditional) parameters.

    The flow for one-dimensional inputs, where no coupling split exists (e.g.
    the inner flow of a manifold flow with ``d = 1``). Zero-initialized, so a
    new layer is the identity.

    Args:
        num_bins: int ``K >= 2``.
        tail_bound: float ``B > 0``; identity outside ``[-B, B]``.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ``(batch, features)``.
        training: unused.

    Reference:
        Durkan et al., "Neural Spline Flows", NeurIPS 2019.
    """

    def __init__(self, num_bins=8, tail_bound=3.0, **kwargs):
        super().__init__(**kwargs)
        if int(num_bins) < 2 or not float(tail_bound) > 0:
            raise ValueError(f"ElementwiseSpline: needs num_bins >= 2 and tail_bound > 0; received {num_bins}, "
                             f"{tail_bound}.")
        self.num_bins = int(num_bins)
        self.tail_bound = float(tail_bound)

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"ElementwiseSpline expects vectors (batch, features); received shape {tuple(input_shape)}.")
        self.params = self.add_weight(shape=(int(input_shape[-1]), 3 * self.num_bins - 1), initializer="zeros",
                                      name="spline_parameters")

    def _spline(self, x, inverse):
        params = ops.zeros_like(x)[..., None] + ops.cast(self.params, x.dtype)
        widths, heights, derivatives = _split_parameters(params, self.num_bins)
        y, log_derivative = rational_quadratic_spline(x, widths, heights, derivatives, self.tail_bound, inverse)
        return y, sum_except_batch(log_derivative)

    def call(self, inputs, training=None):
        return self._spline(inputs, inverse=False)

    def _inverse(self, z, training=None):
        return self._spline(z, inverse=True)

    def get_config(self):
        config = super().get_config()
        config.update({"num_bins": self.num_bins, "tail_bound": self.tail_bound})
        return config
