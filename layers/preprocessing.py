"""Dequantization and the logit transform, with exact log-det accounting.

Bits per dimension. Pixels are quantized to ``n_bits``: levels
``k in {0, ..., 2^n - 1}``. ``Dequantize`` maps ``k`` to
``y = (k + u) / 2^n`` in ``[0, 1)^D`` with ``u ~ U[0, 1)^D``; its log-det is
``-D * n * ln 2``. With ``p`` the model density of ``y`` on the unit cube,
``log p(k + u) = log p(y) - D n ln 2`` is the log-density in level units,
whose expectation over ``u`` is a lower bound on ``log P(k)``. Hence

    bits/dim = -(log p(y) - D n ln 2) / (D ln 2) = -log p(y) / (D ln 2) + n,

the formula of DESIGN.md section 4, obtained here by summing the log-dets of
the chain ``Dequantize -> LogitTransform -> flow`` with the prior.
"""

import contextlib
import math

import keras
from keras import ops

from layers.base import FlowLayer, event_size, sum_except_batch
from layers.checks import check_integer_range
from layers.seeds import batch_noise


def _check_n_bits(n_bits):
    if not (isinstance(n_bits, int) and 1 <= n_bits <= 8):
        raise ValueError(f"`n_bits` must be an int in [1, 8]; received {n_bits!r}.")
    return n_bits


def quantize_pixels(pixels, n_bits, name="pixels", owner="quantize_pixels"):
    """Maps 8-bit pixels to ``n_bits`` levels: ``k = floor(pixels / 2^(8 - n))``.

    Args:
        pixels: tensor of whole numbers in [0, 255] (uint8 or any numeric dtype).
        n_bits: int in [1, 8].
        name: the tensor's name for error messages.
        owner: the caller's name for error messages.

    Returns:
        A float32 tensor of levels in ``{0, ..., 2^n_bits - 1}``.

    Raises:
        ValueError: for values outside [0, 255], fractional or non-finite values.
    """
    _check_n_bits(n_bits)
    pixels = check_integer_range(pixels, 0, 255, name, owner, hint="pass images as uint8 pixels in [0, 255].")
    x = ops.cast(pixels, "float32")
    return ops.floor(x / float(2 ** (8 - n_bits)))


def pixels_from_levels(levels, n_bits):
    """Maps ``n_bits`` levels back to 8-bit pixels (``k * 2^(8 - n)``), as uint8."""
    _check_n_bits(n_bits)
    return ops.cast(ops.cast(levels, "float32") * float(2 ** (8 - n_bits)), "uint8")


@keras.saving.register_keras_serializable(package="flow_zoo")
class Dequantize(FlowLayer):
    """Uniform dequantization of ``n_bits`` levels into the unit cube.

    ``y = (k + u) / 2^n`` with ``u ~ U[0, 1)`` per entry (``noise="uniform"``)
    or ``u = 1/2`` (``noise="center"``). With uniform noise, training draws
    fresh noise at every step; evaluation (``training=False``) draws it from
    the fixed seed ``eval_seed``, so ``log_prob`` is a deterministic function
    of its input (reproducible after save / load and in exports) and still a
    one-sample estimate of the usual dequantization bound. The inverse maps
    ``y`` to its level ``k = floor(y * 2^n)`` clipped to ``[0, 2^n - 1]``
    (only generated values can fall outside; inputs are validated, never
    clipped). ``log_det = -D * n_bits * ln 2`` per example.

    Args:
        n_bits: int in [1, 8], the quantization depth of the levels.
        noise: ``"uniform"`` or ``"center"``.
        seed: int or None, seed of the training-time noise.
        eval_seed: int, seed of the evaluation-time noise.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: tensor of levels, whole numbers in ``[0, 2^n_bits - 1]``
            (use ``quantize_pixels`` to get them from uint8 pixels).
        training: Python bool; fresh noise when True, fixed-seed noise otherwise.

    Example:

    >>> levels = layers.quantize_pixels(images_uint8, n_bits=5)
    >>> y, log_det = layers.Dequantize(n_bits=5)(levels)

    Reference:
        Theis et al., "A note on the evaluation of generative models", ICLR
        2016; Dinh et al., "Density estimation using Real NVP", ICLR 2017.
    """

    def __init__(self, n_bits=8, noise="uniform", seed=None, eval_seed=0, **kwargs):
        super().__init__(**kwargs)
        self.n_bits = _check_n_bits(n_bits)
        if noise not in ("uniform", "center"):
            raise ValueError(f"Dequantize: `noise` must be 'uniform' or 'center'; received {noise!r}.")
        self.noise = noise
        self.seed = seed
        self.eval_seed = int(eval_seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def num_levels(self):
        return 2**self.n_bits

    def _log_det(self, x, sign):
        value = sign * event_size(x.shape) * self.n_bits * math.log(2.0)
        return ops.ones((ops.shape(x)[0],), dtype=self.compute_dtype) * value

    def call(self, inputs, training=None):
        inputs = check_integer_range(
            inputs, 0, self.num_levels - 1, "levels", self.name,
            hint=f"quantize uint8 pixels with layers.quantize_pixels(pixels, n_bits={self.n_bits}).",
        )
        k = ops.cast(inputs, self.compute_dtype)
        if self.noise == "uniform" and not getattr(self, "_force_center", False):
            seed = self.seed_generator if training else self.eval_seed
            u = batch_noise(ops.shape(k), self.compute_dtype, seed, distribution="uniform")
        else:
            u = 0.5
        return (k + u) / self.num_levels, self._log_det(inputs, -1.0)

    def _inverse(self, z, training=None):
        k = ops.clip(ops.floor(z * self.num_levels), 0.0, self.num_levels - 1.0)
        return k, self._log_det(z, 1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"n_bits": self.n_bits, "noise": self.noise, "seed": self.seed, "eval_seed": self.eval_seed})
        return config


@keras.saving.register_keras_serializable(package="flow_zoo")
class LogitTransform(FlowLayer):
    """``z = logit(alpha + (1 - 2 alpha) y)`` for ``y`` in the unit cube.

    Maps bounded pixels to the real line so that a Gaussian prior fits.
    ``log_det = sum(log(1 - 2 alpha) - log p - log(1 - p))`` with
    ``p = alpha + (1 - 2 alpha) y``.

    Args:
        alpha: float in [0, 0.5), keeps the logit away from 0 and 1.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: tensor with values in ``[0, 1]``.
        training: unused.

    Example:

    >>> z, log_det = layers.LogitTransform(alpha=0.05)(y)

    Reference:
        Dinh et al., "Density estimation using Real NVP", ICLR 2017, section 4.1.
    """

    def __init__(self, alpha=0.05, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= alpha < 0.5:
            raise ValueError(f"LogitTransform: `alpha` must be in [0, 0.5); received {alpha}.")
        self.alpha = float(alpha)

    def _per_entry_log_det(self, p):
        return math.log1p(-2.0 * self.alpha) - ops.log(p) - ops.log1p(-p)

    def call(self, inputs, training=None):
        p = self.alpha + (1.0 - 2.0 * self.alpha) * inputs
        z = ops.log(p) - ops.log1p(-p)
        return z, sum_except_batch(self._per_entry_log_det(p))

    def _inverse(self, z, training=None):
        p = ops.sigmoid(z)
        y = (p - self.alpha) / (1.0 - 2.0 * self.alpha)
        return y, -sum_except_batch(self._per_entry_log_det(p))

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config


@contextlib.contextmanager
def centered_dequantization(model):
    """Within the block, every ``Dequantize`` of ``model`` uses the bin centre (``u = 1/2``).

    For deterministic representations (``FlowModel.encode``): the centre of a
    pixel's bin is as far as possible from the bin edges, so
    ``decode(encode(x))`` recovers the quantized pixels exactly, where a
    uniform draw near an edge could be pushed across it by float32 round-off.
    """
    layers_ = [l for l in model._flatten_layers(include_self=True, recursive=True) if isinstance(l, Dequantize)]
    previous = [getattr(l, "_force_center", False) for l in layers_]
    try:
        for layer in layers_:
            layer._force_center = True
        yield model
    finally:
        for layer, value in zip(layers_, previous):
            layer._force_center = value
