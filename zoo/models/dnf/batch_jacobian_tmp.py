import keras
from keras import ops


def batch_jacobian(fn, x):
    """Per-example Jacobian ``d fn(x)_i / d x_i`` of shape ``(batch, out_size, in_size)``.

    ``fn`` maps ``(batch, in_size)`` to ``(batch, ...)`` example by example.
    Forward mode (``in_size`` Jacobian-vector products, the cheap direction
    for an embedding ``R^d -> R^D`` with ``d < D``): TensorFlow's
    ``ForwardAccumulator``; JAX: ``vmap(jacfwd)``.
    (Keras has no Jacobian op, so this is the one backend-specific helper.)
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        columns = []
        for i in range(int(x.shape[-1])):  # forward mode: one Jacobian-vector product per input coordinate
            tangent = tf.one_hot(tf.fill(tf.shape(x)[:1], i), int(x.shape[-1]), dtype=x.dtype)
            with tf.autodiff.ForwardAccumulator(x, tangent) as accumulator:
                y = fn(x)
            column = accumulator.jvp(y, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            columns.append(tf.reshape(column, (tf.shape(y)[0], -1)))
        return tf.stack(columns, axis=-1)
    if backend == "jax":
        import jax

        return jax.vmap(jax.jacfwd(lambda xi: ops.reshape(fn(xi[None]), (-1,))))(x)
    raise NotImplementedError(f"batch_jacobian supports the tensorflow and jax backends; this is {backend}.")
