r"""Jacobian-vector products, Hutchinson's estimator and the injective-flow penalty terms.

For an injective map ``g: R^d -> R^D`` (a decoder) with Jacobian ``J`` at
``z`` (``D x d``), the relaxed injective flow (Kumar, Poole & Murphy, 2020)
needs ``J v`` for random ``v``, never ``J`` itself:

* ``jvp(fn, z, v)``: ``(fn(z), J v)``. ``method="forward"`` is exact
  forward-mode differentiation (TensorFlow: ``tf.autodiff.ForwardAccumulator``;
  JAX: ``jax.jvp``); ``method="finite_difference"`` is the paper's eq. 8,
  ``J v ~ (fn(z + eps v) - fn(z)) / eps`` with ``eps = 0.01``, accurate to
  O(eps); ``method="auto"`` takes forward mode where the backend offers it and
  finite differences otherwise. Both are differentiable with respect to the
  weights ``fn`` closes over, so they can sit inside a training loss.
* ``hutchinson_frobenius(fn, z)``: the unbiased estimate
  ``||J||_F^2 = E_v ||J v||^2``, ``v ~ N(0, I_d)`` (one draw per example by
  default, as in the paper).
* ``frobenius_norm_squared`` / ``batch_jacobian``: the exact quantities from
  ``d`` JVPs with the basis vectors (for evaluation, tests and small ``d``);
  ``layers.numerics.gram_log_det`` turns the Jacobian into ``0.5 ln det(J^T J)``.
* The terms of the paper's objectives (eqs. 4, 5, 9, 10), as functions of
  ``||J v||^2`` and ``||v||^2``: ``frobenius_penalty`` (``1/(2 lambda)
  max(||Jv||^2, eta^2 ||v||^2)``), ``log_frobenius_penalty`` (``d/2 ln max(...)``),
  ``injectivity_penalty`` (``[||Jv|| / ||v|| - eta]_-^2``), and the bounds on
  ``-1/2 ln det(J^T J)``: ``frobenius_log_det_bound`` (eq. 5) and
  ``lambda_log_det_bound`` (eq. 4).

State and batch norm: ``fn`` is called once per JVP (forward mode) or twice
(finite differences). Under TensorFlow ``fn`` may update state (batch-norm
moving averages). Under JAX, ``jax.jvp`` needs a pure function: pass one
that updates no state (``zoo.injflow`` passes the decoder's ``stateless_call``
and writes the moving averages back itself). A batch-norm layer in training
mode normalizes with the batch's statistics, so its ``J`` also contains the
O(1 / batch) dependence of one example's output on the others' latents;
with moving statistics (``training=False``) ``J`` is exactly per example.

Reference:
    Kumar, Poole & Murphy, "Regularized Autoencoders via Relaxed Injective
    Probability Flow", AISTATS 2020 (eqs. 4-10).
    Hutchinson, "A stochastic estimator of the trace of the influence matrix
    for Laplacian smoothing splines", 1990.
"""

import math

import keras
from keras import ops

from layers.base import sum_except_batch

METHODS = ("auto", "forward", "finite_difference")
DEFAULT_EPSILON = 0.01  # the paper's eq. 8


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"`method` must be one of {METHODS}; received {method!r}.")
    return method


def forward_mode_available():
    """True when the backend has exact forward-mode differentiation (TensorFlow, JAX)."""
    return keras.backend.backend() in ("tensorflow", "jax")


def resolve_method(method):
    """``"auto"`` -> ``"forward"`` where the backend offers it, else ``"finite_difference"``."""
    method = _check_method(method)
    if method == "auto":
        return "forward" if forward_mode_available() else "finite_difference"
    if method == "forward" and not forward_mode_available():
        raise ValueError(
            f"Forward-mode JVPs are implemented for the TensorFlow and JAX backends, not "
            f"'{keras.backend.backend()}'; use method='finite_difference' (or 'auto')."
        )
    return method


def _check_tangent(primals, tangents):
    if tuple(primals.shape) != tuple(tangents.shape):
        if len(primals.shape) != len(tangents.shape) or any(
            p is not None and t is not None and int(p) != int(t) for p, t in zip(primals.shape, tangents.shape)
        ):
            raise ValueError(
                f"jvp: `tangents` must have the shape of `primals`; received {tuple(tangents.shape)} "
                f"and {tuple(primals.shape)}."
            )


def finite_difference_jvp(fn, primals, tangents, epsilon=DEFAULT_EPSILON):
    """``(fn(z), (fn(z + eps v) - fn(z)) / eps)``: the paper's eq. 8, error O(eps).

    Args:
        fn: callable ``z -> output``.
        primals: the point ``z``.
        tangents: the direction ``v`` (same shape as ``z``).
        epsilon: step size (> 0).

    Returns:
        ``(fn(primals), approximate J v)``.
    """
    if not epsilon > 0:
        raise ValueError(f"`epsilon` must be > 0; received {epsilon!r}.")
    _check_tangent(primals, tangents)
    output = fn(primals)
    shifted = fn(primals + float(epsilon) * ops.cast(tangents, primals.dtype))
    return output, (shifted - output) / float(epsilon)


def _forward_jvp(fn, primals, tangents):
    backend = keras.backend.backend()
    tangents = ops.cast(tangents, primals.dtype)
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.autodiff.ForwardAccumulator(primals, tangents) as accumulator:
            output = fn(primals)
        jv = accumulator.jvp(output, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return output, jv
    import jax

    return jax.jvp(fn, (primals,), (tangents,))


def jvp(fn, primals, tangents, method="auto", epsilon=DEFAULT_EPSILON):
    """Jacobian-vector product ``(fn(z), J_fn(z) v)``.

    Args:
        fn: callable mapping a tensor ``z`` of shape ``(batch, ...)`` to a
            tensor; under JAX with ``method="forward"`` it must be pure (no
            state updates; see the module docstring).
        primals: ``z``.
        tangents: ``v``, the shape of ``z``.
        method: ``"auto"`` (forward mode where available), ``"forward"``
            (exact) or ``"finite_difference"`` (eq. 8).
        epsilon: finite-difference step (only for ``"finite_difference"``).

    Returns:
        ``(output, jv)``, both of ``fn``'s output shape.

    Example:

    >>> decoder = keras.Sequential([keras.layers.Dense(7, activation="tanh")])
    >>> z = keras.random.normal((4, 3)); v = keras.random.normal((4, 3))
    >>> x, jv = layers.jacobian.jvp(decoder, z, v)
    """
    method = resolve_method(method)
    _check_tangent(primals, tangents)
    if method == "finite_difference":
        return finite_difference_jvp(fn, primals, tangents, epsilon)
    return _forward_jvp(fn, primals, tangents)


def squared_norm(x):
    """Per-example ``||x||^2`` (sum over every axis but the first)."""
    return sum_except_batch(ops.square(x))


def hutchinson_frobenius(fn, primals, num_samples=1, seed=None, method="auto", epsilon=DEFAULT_EPSILON):
    """Hutchinson's unbiased estimate of ``||J_fn(z)||_F^2`` per example.

    ``||J||_F^2 = tr(J^T J) = E_v ||J v||^2`` for ``v ~ N(0, I)``; the estimate
    averages ``num_samples`` draws (the paper uses one). Its variance with
    Gaussian ``v`` is ``2 ||J^T J||_F^2 / num_samples``.

    Args:
        fn: callable ``z -> output``, applied per example (rows do not interact).
        primals: ``z`` of shape ``(batch, ...)``.
        num_samples: number of draws per example.
        seed: int, ``keras.random.SeedGenerator`` or None.
        method: as in ``jvp``.
        epsilon: as in ``jvp``.

    Returns:
        ``(fn(z), estimate)``; ``estimate`` has shape ``(batch,)``.
    """
    if not (isinstance(num_samples, int) and num_samples >= 1):
        raise ValueError(f"`num_samples` must be an int >= 1; received {num_samples!r}.")
    batch = ops.shape(primals)[0]
    tiled = primals if num_samples == 1 else ops.concatenate([primals] * num_samples, axis=0)
    v = keras.random.normal(ops.shape(tiled), dtype=primals.dtype, seed=seed)
    output, jv = jvp(fn, tiled, v, method=method, epsilon=epsilon)
    estimate = ops.mean(ops.reshape(squared_norm(jv), (num_samples, batch)), axis=0)
    return output[:batch], estimate


def _basis_jvps(fn, primals, method, epsilon):
    """``J e_i`` for every basis vector ``e_i`` of one example's latent, in one batched call.

    Returns ``jv`` of shape ``(d, batch) + output_shape[1:]``.
    """
    d = math.prod(primals.shape[1:])
    batch = ops.shape(primals)[0]
    eye = ops.reshape(ops.eye(d, dtype=primals.dtype), (d, 1) + tuple(primals.shape[1:]))
    tangents = ops.reshape(ops.broadcast_to(eye, (d, batch) + tuple(primals.shape[1:])), (-1,) + tuple(primals.shape[1:]))
    tiled = ops.concatenate([primals] * d, axis=0)
    _, jv = jvp(fn, tiled, tangents, method=method, epsilon=epsilon)
    return ops.reshape(jv, (d, batch) + tuple(jv.shape[1:]))


def batch_jacobian(fn, primals, method="auto", epsilon=DEFAULT_EPSILON):
    """The per-example Jacobian ``d fn(x)_b / d x_b`` of shape ``(batch, D, d)`` (inputs and outputs flattened).

    Forward mode: ``d`` Jacobian-vector products with the basis vectors, the
    cheap direction for an embedding ``R^d -> R^D`` with ``d < D`` (a
    generator or decoder), computed in one batched call of ``fn`` on a batch
    ``d`` times larger (TensorFlow: one ``ForwardAccumulator``; JAX:
    ``jax.jvp``; ``method="finite_difference"``: eq. 8 of Kumar et al., error
    O(epsilon)). Exact with ``method="forward"`` (``"auto"`` picks it on
    TensorFlow and JAX). Differentiable in the weights ``fn`` closes over.

    Args:
        fn: callable mapping ``(batch, ...)`` to ``(batch, ...)`` row by row
            (rows must not interact: batch norm with moving statistics, not
            batch statistics); under JAX with forward mode it must be pure.
        primals: the points ``x``, shape ``(batch, ...)`` with ``d`` entries per example.
        method: ``"auto"``, ``"forward"`` or ``"finite_difference"`` (as ``jvp``).
        epsilon: finite-difference step (only for ``"finite_difference"``).

    Returns:
        A tensor ``(batch, D, d)``, ``D`` the number of entries of one output.

    Example:

    >>> decoder = keras.Sequential([keras.layers.Dense(7, activation="tanh")])
    >>> layers.batch_jacobian(decoder, keras.random.normal((4, 3))).shape
    (4, 7, 3)
    """
    jv = _basis_jvps(fn, primals, method, epsilon)
    d = jv.shape[0]
    columns = ops.reshape(jv, (d, ops.shape(primals)[0], -1))  # (d, batch, D)
    return ops.transpose(columns, (1, 2, 0))


def frobenius_norm_squared(fn, primals, method="auto", epsilon=DEFAULT_EPSILON):
    """Exact ``||J_fn(z)||_F^2`` per example, as the sum of ``||J e_i||^2`` over the basis (``d`` JVPs)."""
    jv = _basis_jvps(fn, primals, method, epsilon)
    return ops.sum(ops.reshape(ops.square(jv), (jv.shape[0], ops.shape(primals)[0], -1)), axis=(0, 2))


# ------------------------------------------------------------------ penalty terms and bounds


def _clipped(jv_norm_sq, v_norm_sq, eta):
    return ops.maximum(jv_norm_sq, float(eta) ** 2 * v_norm_sq)


def frobenius_penalty(jv_norm_sq, v_norm_sq, eta, lam=1.0):
    """``1/(2 lambda) max(||Jv||^2, eta^2 ||v||^2)``: the Frobenius term of InjFlow (eq. 10).

    With ``v ~ N(0, I)``, ``E ||Jv||^2 = ||J||_F^2``, so without the clip this
    is the unbiased estimate of the ``||J||_F^2 / (2 lambda)`` of bound (4).
    """
    if not lam > 0:
        raise ValueError(f"`lam` must be > 0; received {lam!r}.")
    return _clipped(jv_norm_sq, v_norm_sq, eta) / (2.0 * lam)


def log_frobenius_penalty(jv_norm_sq, v_norm_sq, eta, latent_dim):
    """``d/2 ln max(||Jv||^2, eta^2 ||v||^2)``: the log-Frobenius term of InjFlow-ln (eq. 9)."""
    return 0.5 * latent_dim * ops.log(_clipped(jv_norm_sq, v_norm_sq, eta))


def injectivity_penalty(jv_norm_sq, v_norm_sq, eta):
    """``[||Jv|| / ||v|| - eta]_-^2`` with ``[a]_- = min(a, 0)`` (eqs. 9, 10).

    Zero whenever ``||Jv|| >= eta ||v||``, in particular for every ``v`` when
    all singular values of ``J`` are at least ``eta``.
    """
    ratio = ops.sqrt(ops.maximum(jv_norm_sq, 0.0) / ops.maximum(v_norm_sq, 1e-30))
    return ops.square(ops.minimum(ratio - float(eta), 0.0))


def frobenius_log_det_bound(frobenius_sq, latent_dim):
    """Bound (5): ``-d/2 ln(||J||_F^2 / d) <= -1/2 ln det(J^T J)``, tight iff all singular values are equal."""
    return -0.5 * latent_dim * ops.log(frobenius_sq / float(latent_dim))


def lambda_log_det_bound(frobenius_sq, latent_dim, lam=1.0):
    """Bound (4): ``-||J||_F^2 / (2 lambda) - d/2 ln(lambda) + d/2 <= -1/2 ln det(J^T J)`` for any ``lambda > 0``."""
    if not lam > 0:
        raise ValueError(f"`lam` must be > 0; received {lam!r}.")
    return -frobenius_sq / (2.0 * lam) - 0.5 * latent_dim * math.log(lam) + 0.5 * latent_dim


def layer_jvp(layer, inputs, tangents, training=False, method="auto", epsilon=DEFAULT_EPSILON):
    """``(layer(inputs, training), J v)`` for a Keras layer that may update state (batch norm).

    TensorFlow and finite differences call the layer directly (its state
    updates happen as usual). Under JAX, forward mode differentiates the
    layer's ``stateless_call`` (``jax.jvp`` with the new non-trainable values
    as auxiliary output) and assigns those values afterwards, so batch-norm
    moving averages are updated inside ``fit`` without leaking JVP tracers.
    """
    method = resolve_method(method)
    if method == "forward" and keras.backend.backend() == "jax":
        import jax

        _check_tangent(inputs, tangents)
        trainable = [w.value for w in layer.trainable_variables]
        non_trainable = [w.value for w in layer.non_trainable_variables]

        def pure(q):
            return layer.stateless_call(trainable, non_trainable, q, training=training)

        output, jv, new_state = jax.jvp(pure, (inputs,), (ops.cast(tangents, inputs.dtype),), has_aux=True)
        for variable, value in zip(layer.non_trainable_variables, new_state):
            variable.assign(value)
        return output, jv
    return jvp(lambda q: layer(q, training=training), inputs, tangents, method=method, epsilon=epsilon)
