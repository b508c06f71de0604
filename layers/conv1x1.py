"""Invertible 1x1 convolution (an invertible linear map over channels)."""

import contextlib

import keras
import numpy as np
import scipy.linalg
from keras import ops

from layers.base import FlowLayer, event_size


def _random_orthogonal(channels, seed):
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((channels, channels)))
    return q * np.sign(np.diag(r))[None, :]


@keras.saving.register_keras_serializable(package="flow_zoo")
class InvertibleConv1x1(FlowLayer):
    """Invertible 1x1 convolution: ``z[..., :] = W @ x[..., :]`` per position.

    Works on images ``(batch, height, width, channels)`` and on vectors
    ``(batch, features)`` (then it is an invertible dense layer).
    ``log_det = (number of positions) * log |det W|``.

    With ``lu_decomposed=True`` the matrix is ``W = P L (U + diag(sign *
    exp(log_s)))`` with a fixed permutation ``P``, unit lower-triangular ``L``
    and strictly upper-triangular ``U``, so ``log |det W| = sum(log_s)`` costs
    O(C) instead of O(C^3). Both versions start from a random rotation.

    Args:
        lu_decomposed: Python bool; use the LU parameterization.
        seed: int or None; seed of the initial random rotation.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: tensor of shape ``(batch, ..., channels)``.
        training: unused.

    Example:

    >>> layer = layers.InvertibleConv1x1(lu_decomposed=True, seed=0)
    >>> z, log_det = layer(images)

    Reference:
        Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1
        Convolutions", NeurIPS 2018, section 3.2.
    """

    def __init__(self, lu_decomposed=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.lu_decomposed = bool(lu_decomposed)
        self.seed = seed

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("InvertibleConv1x1 needs a known channel (last) dimension.")
        self.channels = int(channels)
        w_init = _random_orthogonal(self.channels, self.seed)
        if not self.lu_decomposed:
            self.kernel = self.add_weight(shape=(self.channels, self.channels), initializer="zeros", name="kernel")
            self.kernel.assign(w_init)
        else:
            p, l, u = scipy.linalg.lu(w_init)
            s = np.diag(u)
            self.permutation = self.add_weight(
                shape=(self.channels, self.channels), initializer="zeros", trainable=False, name="permutation"
            )
            self.lower = self.add_weight(shape=(self.channels, self.channels), initializer="zeros", name="lower")
            self.upper = self.add_weight(shape=(self.channels, self.channels), initializer="zeros", name="upper")
            self.log_s = self.add_weight(shape=(self.channels,), initializer="zeros", name="log_s")
            self.sign_s = self.add_weight(
                shape=(self.channels,), initializer="ones", trainable=False, name="sign_s"
            )
            self.permutation.assign(p)
            self.lower.assign(np.tril(l, -1))
            self.upper.assign(np.triu(u, 1))
            self.log_s.assign(np.log(np.abs(s)))
            self.sign_s.assign(np.sign(s))
            self._lower_mask = np.tril(np.ones((self.channels, self.channels)), -1)
            self._eye = np.eye(self.channels)
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: self.channels})

    def weight_matrix(self):
        """The current ``C x C`` matrix ``W`` (assembled from LU factors if used)."""
        if not self.lu_decomposed:
            return self.kernel
        mask = ops.cast(self._lower_mask, self.lower.dtype)
        lower = self.lower * mask + ops.cast(self._eye, self.lower.dtype)
        upper = self.upper * ops.transpose(mask) + ops.diag(self.sign_s * ops.exp(self.log_s))
        return ops.matmul(self.permutation, ops.matmul(lower, upper))

    def log_abs_det_weight(self):
        """``log |det W|`` for the current weights."""
        if self.lu_decomposed:
            return ops.sum(self.log_s)
        return ops.slogdet(self.kernel)[1]

    def _log_det(self, x, sign):
        positions = event_size(x.shape) // self.channels
        value = sign * positions * self.log_abs_det_weight()
        return ops.ones((ops.shape(x)[0],), dtype=self.compute_dtype) * ops.cast(value, self.compute_dtype)

    def call(self, inputs, training=None):
        w = ops.cast(self.weight_matrix(), self.compute_dtype)
        return ops.matmul(inputs, ops.transpose(w)), self._log_det(inputs, 1.0)

    def inverse_weight_matrix(self):
        """``W^-1``: computed from the weights, or the constant set by ``frozen_inverses``."""
        frozen = getattr(self, "_frozen_inverse", None)
        if frozen is not None:
            return frozen
        return ops.inv(self.weight_matrix())

    def _inverse(self, z, training=None):
        w_inv = ops.cast(self.inverse_weight_matrix(), self.compute_dtype)
        return ops.matmul(z, ops.transpose(w_inv)), self._log_det(z, -1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"lu_decomposed": self.lu_decomposed, "seed": self.seed})
        return config


@contextlib.contextmanager
def frozen_inverses(model):
    """Within the block, every ``InvertibleConv1x1`` of ``model`` uses its current ``W^-1`` as a constant.

    For inference graphs traced inside the block (exported samplers): the
    inverse is computed once here in float64 instead of by a matrix-inverse op
    in the graph, which device runtimes such as LiteRT lack. Weights must not
    change while the block is open.
    """
    convs = [l for l in model._flatten_layers(include_self=True, recursive=True) if isinstance(l, InvertibleConv1x1)]
    try:
        for layer in convs:
            w = np.asarray(ops.convert_to_numpy(layer.weight_matrix()), dtype=np.float64)
            layer._frozen_inverse = np.linalg.inv(w).astype(layer.variable_dtype)
        yield model
    finally:
        for layer in convs:
            layer._frozen_inverse = None
