"""Gaussian closed forms and Cholesky linear algebra shared by the priors and the injective layers.

Each quantity is written once here and used by ``layers.priors``,
``layers.nif``, ``layers.spread``, ``layers.manifold`` and
``layers.jacobian``:

* ``LOG_2PI``: ``log(2 pi)``;
* ``standard_normal_log_prob(z)``: ``log N(z; 0, I)`` per example;
* ``diagonal_normal_log_prob(residual, log_variance)``: ``log N(r; 0, diag(exp(log_variance)))``;
* ``cholesky_log_det(chol)``: ``log det(L L^T)`` from a (batched) Cholesky factor;
* ``solve_lower(chol, rhs)`` / ``solve_lower_transpose(chol, rhs)``: ``L^-1 b`` and
  ``L^-T b`` along the last axis (triangular solves, no inverse formed);
* ``gram_log_det(jacobian)``: ``0.5 log det(J^T J)`` of a ``(batch, D, d)`` Jacobian.

Everything is ``keras.ops`` (any backend) and keeps the input's dtype,
except ``gram_log_det``, which factors in float64 where the backend allows.
"""

import math

import keras
from keras import ops

from layers.base import sum_except_batch

LOG_2PI = math.log(2.0 * math.pi)
"""``log(2 pi)``, the per-dimension constant of a Gaussian log-density."""


def standard_normal_log_prob(z, axis=None):
    """Log-density of the unit Gaussian, summed over the event axes.

    Args:
        z: a float tensor ``(batch, ...)``.
        axis: int or tuple of ints, the event axes summed over; None (the
            default) sums over every axis but the first (one value per example).

    Returns:
        ``sum_i log N(z_i; 0, 1) = -||z||^2 / 2 - (n / 2) log(2 pi)``, ``n`` the
        number of summed entries; shape ``[batch]`` for ``axis=None``, else
        ``z``'s shape without ``axis``.

    Example:

    >>> standard_normal_log_prob(ops.zeros((3, 2)))  # 3 x -log(2 pi)
    """
    if axis is None:
        axes = tuple(range(1, len(z.shape)))
        total = sum_except_batch(ops.square(z))
    else:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        total = ops.sum(ops.square(z), axis=axes)
    return -0.5 * total - 0.5 * _count(z, axes) * LOG_2PI


def _count(x, axes):
    """Number of entries along ``axes``: a Python int for static shapes, else a tensor of ``x``'s dtype."""
    dims = [x.shape[a] for a in axes]
    if all(d is not None for d in dims):
        return math.prod(int(d) for d in dims)
    shape = ops.shape(x)
    return ops.cast(math.prod(shape[a] for a in axes), x.dtype)


def diagonal_normal_log_prob(residual, log_variance):
    """``log N(residual; 0, diag(exp(log_variance)))`` per example.

    Args:
        residual: ``x - mean``, a float tensor ``(batch, ...)``.
        log_variance: log-variances broadcastable to ``residual``.

    Returns:
        A tensor of shape ``[batch]`` (summed over every axis but the first).
    """
    return -0.5 * sum_except_batch(ops.square(residual) * ops.exp(-log_variance) + log_variance + LOG_2PI)


def cholesky_log_det(chol):
    """``log det(L L^T) = 2 sum_i log L_ii`` of lower-triangular Cholesky factors.

    Args:
        chol: ``L``, shape ``(..., d, d)``, with a positive diagonal (as
            ``ops.cholesky`` returns).

    Returns:
        A tensor of shape ``(...)``.
    """
    return 2.0 * ops.sum(ops.log(ops.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def solve_lower(chol, rhs):
    """``y = L^-1 b`` for a lower-triangular ``L``, along the last axis of ``rhs``.

    Args:
        chol: ``L``, shape ``(d, d)`` (one matrix for every row of ``rhs``) or
            ``(..., d, d)`` (one per row; then ``rhs`` has shape ``(..., d)``).
        rhs: ``b``, shape ``(..., d)``.

    Returns:
        ``y`` of ``rhs``'s shape.
    """
    if len(chol.shape) == 2:
        return ops.transpose(ops.solve_triangular(chol, ops.transpose(rhs), lower=True))
    return ops.solve_triangular(chol, rhs[..., None], lower=True)[..., 0]


def solve_lower_transpose(chol, rhs):
    """``y = L^-T b`` for a lower-triangular ``L`` (a solve with the upper factor ``L^T``).

    Args:
        chol: ``L``, shape ``(d, d)`` or ``(..., d, d)``, as in ``solve_lower``.
        rhs: ``b``, shape ``(..., d)``.

    Returns:
        ``y`` of ``rhs``'s shape. With ``eps ~ N(0, I)``, ``L^-T eps`` has
        covariance ``(L L^T)^-1`` (a posterior draw from a precision factor).
    """
    if len(chol.shape) == 2:
        return ops.transpose(ops.solve_triangular(ops.transpose(chol), ops.transpose(rhs), lower=False))
    chol_t = ops.swapaxes(chol, -1, -2)
    return ops.solve_triangular(chol_t, rhs[..., None], lower=False)[..., 0]


def _wide_dtype(dtype):
    """float64 where the backend computes in it (JAX only with ``jax_enable_x64``), else ``dtype``."""
    if keras.backend.backend() == "jax":
        import jax

        return "float64" if jax.config.jax_enable_x64 else dtype
    return "float64"


def gram_log_det(jacobian):
    """``0.5 * log det(J^T J)`` per example for Jacobians ``J`` of shape ``(batch, D, d)``, ``d <= D``.

    This is ``log sqrt(det G)``, the volume change of an embedding
    ``g: R^d -> R^D`` (DNF eq. 1, 16; the injective change of variables of
    Kumar et al. 2020, eq. 3, has ``-gram_log_det``), computed from the
    Cholesky factor ``L`` of the ``d x d`` Gram matrix ``G = J^T J`` as
    ``cholesky_log_det(L) / 2``: ``O(D d^2 + d^3)`` per example, no ``D x D``
    matrix. ``G`` squares the Jacobian's condition number, so it is formed
    and factored in float64 (under JAX only with ``jax_enable_x64``; without
    it, in the Jacobian's dtype); the result has the Jacobian's dtype.

    Args:
        jacobian: a float tensor ``(batch, D, d)`` (e.g. ``batch_jacobian``'s).

    Returns:
        A tensor of shape ``(batch,)``.

    Raises:
        ValueError: if the Jacobian is not rank 3 with ``d <= D``.

    Reference:
        Horvat & Pfister, "Denoising Normalizing Flow", NeurIPS 2021, eq. 1;
        Brehmer & Cranmer, "Flows for simultaneous manifold learning and
        density estimation", NeurIPS 2020, eq. 16.
    """
    if len(jacobian.shape) != 3:
        raise ValueError(f"gram_log_det: the Jacobian must have shape (batch, D, d); received {tuple(jacobian.shape)}.")
    if jacobian.shape[1] is not None and jacobian.shape[2] is not None and jacobian.shape[2] > jacobian.shape[1]:
        raise ValueError(
            f"gram_log_det: an embedding R^d -> R^D needs d <= D; received a Jacobian of shape {tuple(jacobian.shape)} "
            "(pass d/du of the data-space output, shape (batch, D, d))."
        )
    jacobian = ops.convert_to_tensor(jacobian)
    dtype = jacobian.dtype
    wide = ops.cast(jacobian, _wide_dtype(dtype))
    gram = ops.matmul(ops.transpose(wide, (0, 2, 1)), wide)
    return ops.cast(0.5 * cholesky_log_det(ops.cholesky(gram)), dtype)
