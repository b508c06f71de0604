"""The shared test harnesses: every flow layer and every injective layer goes through one.

``check_flow_layer`` runs, on one layer factory:

1. the float32 round trip ``inverse(forward(x)) == x`` (rtol 1e-5) with
   finite outputs and forward + inverse log-dets summing to zero;
2. ``log_det`` against ``log |det J|`` of an autodiff Jacobian in float64
   (small shapes, tolerance 1e-6);
3. ``get_config`` / ``from_config`` giving identical outputs;
4. a ``.keras`` save / load round trip giving identical forward and inverse
   outputs.

Weights are perturbed away from their (often identity) initial values before
the checks so that a layer cannot pass by doing nothing. The Jacobian is
computed with TensorFlow's ``GradientTape.batch_jacobian`` (the project's
tests run on the TensorFlow backend; the JAX backend has its own smoke test).

Example:

>>> from layers.testing import check_flow_layer
>>> check_flow_layer(lambda **kw: layers.ActNorm(**kw), input_shape=(2, 4, 4, 3),
...                  tmp_dir="/tmp/x")
"""

import os

import keras
import numpy as np
from keras import ops


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def default_inputs(rng, shape, dtype):
    """Standard-normal inputs, the harness default."""
    return rng.standard_normal(shape).astype(dtype)


def perturb_weights(layer, rng, scale=0.1):
    """Adds ``scale * N(0, 1)`` noise to every trainable weight of ``layer``."""
    for weight in layer.trainable_weights:
        value = _numpy(weight.value)
        weight.assign(value + scale * rng.standard_normal(value.shape).astype(value.dtype))


def _copy_weights(source, target):
    for src, dst in zip(source.weights, target.weights):
        dst.assign(_numpy(src.value).astype(dst.dtype))


def autodiff_log_abs_det(layer, x):
    """``log |det dz/dx|`` per example from a float64 autodiff Jacobian."""
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z, _ = layer(x, training=False)
        z = tf.reshape(z, (tf.shape(z)[0], -1))
    jac = tape.batch_jacobian(z, x).numpy()
    jac = jac.reshape(jac.shape[0], jac.shape[1], -1)
    if jac.shape[1] != jac.shape[2]:
        raise AssertionError(f"Jacobian is not square: {jac.shape[1:]} (the layer is not a bijection).")
    return np.linalg.slogdet(jac)[1]


def _assert_close(actual, expected, rtol, atol, what):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def check_flow_layer(
    layer_factory,
    input_shape,
    tmp_dir,
    input_fn=default_inputs,
    jacobian_shape=None,
    stochastic=False,
    roundtrip_rtol=1e-5,
    logdet_tol=1e-6,
    seed=0,
):
    """Runs every check of the flow contract on layers made by ``layer_factory``.

    Args:
        layer_factory: callable taking keyword ``dtype`` and returning a new,
            unbuilt flow layer.
        input_shape: shape (batch first) of the float32 round-trip inputs.
        tmp_dir: a writable directory for the ``.keras`` file.
        input_fn: ``input_fn(rng, shape, dtype)`` returning valid inputs.
        jacobian_shape: smaller shape for the float64 Jacobian check
            (defaults to ``input_shape``).
        stochastic: True for layers whose forward output is random
            (dequantization); outputs are then compared through the inverse.
        roundtrip_rtol: relative tolerance of the float32 round trip.
        logdet_tol: absolute and relative tolerance of the log-det check.
        seed: seed of the inputs and weight perturbations.

    Raises:
        AssertionError: naming the check that failed.
    """
    rng = np.random.default_rng(seed)

    # 1. float32 round trip, finiteness, log-dets summing to zero.
    layer = layer_factory(dtype="float32")
    x = input_fn(rng, input_shape, "float32")
    layer(x, training=True)  # builds (and runs data-dependent init)
    perturb_weights(layer, rng)
    z, log_det = layer(x, training=False)
    x_back, inverse_log_det = layer.inverse_and_log_det(z)
    z, log_det, x_back, inverse_log_det = map(_numpy, (z, log_det, x_back, inverse_log_det))
    for name, value in (("z", z), ("log_det", log_det), ("inverse(z)", x_back), ("inverse log_det", inverse_log_det)):
        assert np.all(np.isfinite(value)), f"{type(layer).__name__}: {name} has non-finite values"
    assert log_det.shape == (input_shape[0],), f"log_det must have shape [batch]; got {log_det.shape}"
    _assert_close(x_back, x, roundtrip_rtol, roundtrip_rtol * max(1.0, float(np.abs(x).max())), "inverse(forward(x)) != x")
    _assert_close(log_det + inverse_log_det, np.zeros_like(log_det), 0, 1e-4 * max(1.0, float(np.abs(log_det).max())),
                  "forward and inverse log-dets do not sum to zero")

    # 2. log-det against an autodiff Jacobian in float64.
    layer64 = layer_factory(dtype="float64")
    shape64 = tuple(jacobian_shape or input_shape)
    x64 = input_fn(rng, shape64, "float64")
    layer64(x64, training=True)
    perturb_weights(layer64, rng)
    _, log_det64 = layer64(x64, training=False)
    reference = autodiff_log_abs_det(layer64, x64)
    _assert_close(_numpy(log_det64), reference, logdet_tol, logdet_tol, "log_det != log|det J| (float64 autodiff)")
    z64 = layer64(x64, training=False)[0]
    _, inverse_log_det64 = layer64.inverse_and_log_det(z64)
    _assert_close(_numpy(inverse_log_det64), -reference, logdet_tol, logdet_tol, "inverse log_det != -log|det J|")

    def compare(other, what):
        z_other, log_det_other = other(x, training=False)
        _assert_close(_numpy(log_det_other), log_det, 1e-6, 1e-5, f"{what}: log_det differs")
        if stochastic:
            _assert_close(_numpy(other.inverse(z_other)), x, 0, 0, f"{what}: inverse(forward(x)) differs")
        else:
            _assert_close(_numpy(z_other), z, 1e-6, 1e-6, f"{what}: forward output differs")
        _assert_close(_numpy(other.inverse(z)), x_back, 1e-6, 1e-6, f"{what}: inverse output differs")

    # 3. get_config / from_config.
    config = layer.get_config()
    clone = type(layer).from_config(config)
    clone(x, training=False)
    _copy_weights(layer, clone)
    assert clone.get_config() == config, "get_config differs after from_config"
    compare(clone, "from_config")

    # 4. .keras save / load.
    inputs = keras.Input(shape=input_shape[1:], dtype="float32")
    outputs = layer(inputs)
    model = keras.Model(inputs, outputs)
    path = os.path.join(tmp_dir, f"{layer.name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    loaded_layer = [l for l in loaded.layers if type(l) is type(layer)][0]
    compare(loaded_layer, ".keras round trip")
    return layer


def laplace_log_integral(layer, x, z_mode):
    """``log integral p(x | z) dz`` by Laplace's method around ``z_mode`` (float64 autodiff).

    Exact when ``p(x | z)`` is Gaussian with a mean linear in ``z`` (every
    Gaussian NIF). Only latent coordinates that ``p(x | z)`` depends on are
    integrated (a stochastic coupling passes half of its latent through).

    Returns:
        ``(log_integral, gradient_at_mode)`` per example.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    z = tf.convert_to_tensor(z_mode)
    with tf.GradientTape() as outer:
        outer.watch(z)
        with tf.GradientTape() as inner:
            inner.watch(z)
            log_p = layer.conditional_log_prob(x, z)
        grad = tf.reshape(inner.gradient(log_p, z), (tf.shape(z)[0], -1))
    hessian = outer.batch_jacobian(grad, z).numpy()
    hessian = hessian.reshape(hessian.shape[0], hessian.shape[1], -1)
    free = np.abs(np.diagonal(hessian, axis1=1, axis2=2)).max(axis=0) > 0
    hessian = hessian[:, free][:, :, free]
    k = int(free.sum())
    log_integral = log_p.numpy() + 0.5 * k * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(-hessian)[1]
    return log_integral, grad.numpy()


def check_injective_layer(layer_factory, input_shape, tmp_dir, input_fn=default_inputs, seed=0, tol=1e-6):
    """The harness for noisy injective layers (the NIF contract).

    Checks: shapes and finiteness of ``(z, manifold_term)``; on-manifold
    round trip (``pseudo_inverse(inverse(z, 0)) == z``); seeded, finite
    off-manifold draws; training-time posterior draws; the manifold term
    against a float64 Laplace integral of ``conditional_log_prob`` whose
    gradient vanishes at the pseudo-inverse (the mode, NIF A.3);
    ``get_config`` / ``from_config`` and ``.keras`` round trips.

    Args:
        layer_factory: callable taking keyword ``dtype``, returning a new layer.
        input_shape: batch-first input shape.
        tmp_dir: writable directory for the ``.keras`` file.
        input_fn: ``input_fn(rng, shape, dtype)`` returning inputs.
        seed: seed of inputs and weight perturbations.
        tol: tolerance of the float64 manifold-term check.
    """
    rng = np.random.default_rng(seed)
    layer = layer_factory(dtype="float32")
    x = input_fn(rng, input_shape, "float32")
    layer(x, training=True)
    perturb_weights(layer, rng)
    z, term = map(_numpy, layer(x, training=False))
    assert z.shape == (input_shape[0],) + tuple(layer.latent_shape), f"latent shape {z.shape}"
    assert term.shape == (input_shape[0],), f"manifold term must have shape [batch]; got {term.shape}"
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(term)), "non-finite z or manifold term"

    on_manifold = layer.inverse(z, noise_scale=0.0)
    assert tuple(on_manifold.shape) == tuple(input_shape), f"inverse shape {tuple(on_manifold.shape)}"
    z_again = _numpy(layer(on_manifold, training=False)[0])
    _assert_close(z_again, z, 1e-4, 1e-4 * max(1.0, float(np.abs(z).max())), "pseudo_inverse(inverse(z, 0)) != z")
    noisy = _numpy(layer.inverse(z, noise_scale=1.0, seed=3))
    assert np.all(np.isfinite(noisy)), "non-finite off-manifold sample"
    _assert_close(_numpy(layer.inverse(z, noise_scale=1.0, seed=3)), noisy, 0, 0, "seeded inverse is not reproducible")
    assert not np.allclose(noisy, _numpy(on_manifold)), "noise_scale=1 added no noise"
    drawn = _numpy(layer(x, training=True)[0])
    assert np.all(np.isfinite(drawn)) and not np.allclose(drawn, z), "training call must draw from q(z | x)"

    layer64 = layer_factory(dtype="float64")
    x64 = input_fn(rng, input_shape, "float64")
    layer64(x64, training=False)
    perturb_weights(layer64, rng)
    z64, term64 = layer64(x64, training=False)
    reference, gradient = laplace_log_integral(layer64, x64, z64)
    _assert_close(_numpy(term64), reference, tol, tol, "manifold term != Laplace integral of p(x | z) (float64)")
    _assert_close(gradient, np.zeros_like(gradient), 0, 1e-6, "pseudo-inverse is not the mode of p(x | z)")

    def compare(other, what):
        z_other, term_other = other(x, training=False)
        _assert_close(_numpy(z_other), z, 1e-6, 1e-6, f"{what}: z differs")
        _assert_close(_numpy(term_other), term, 1e-6, 1e-5, f"{what}: manifold term differs")
        _assert_close(_numpy(other.inverse(z, noise_scale=0.0)), _numpy(on_manifold), 1e-6, 1e-6, f"{what}: inverse differs")

    config = layer.get_config()
    clone = type(layer).from_config(config)
    clone(x, training=False)
    _copy_weights(layer, clone)
    compare(clone, "from_config")

    inputs = keras.Input(shape=input_shape[1:], dtype="float32")
    model = keras.Model(inputs, layer(inputs))
    path = os.path.join(tmp_dir, f"{layer.name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    compare([l for l in loaded.layers if type(l) is type(layer)][0], ".keras round trip")
    return layer
