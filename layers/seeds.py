"""Seed streams shared by every sampler, in Python and inside exported graphs."""

import keras
import numpy as np
from keras import ops


def derive_seed(seed, stream):
    """Seed of the ``stream``-th independent draw made from a user ``seed``.

    Works on Python ints (returns an int) and on integer tensors (returns an
    int64 tensor), with the same arithmetic, so an exported graph reproduces
    the draws of ``sample(seed=...)``. ``None`` (and ``SeedGenerator``) pass
    through unchanged.
    """
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return seed
    if isinstance(seed, np.integer):
        seed = int(seed)
    if isinstance(seed, (bool, float, str, bytes, np.floating, np.bool_)):
        raise ValueError(f"`seed` must be an int (or None); received {seed!r}.")
    if isinstance(seed, int):
        return (seed * 1_000_003 + 7919 * (stream + 1)) % (2**31 - 1)
    seed = ops.cast(seed, "int64")
    return ops.mod(seed * 1_000_003 + 7919 * (stream + 1), 2**31 - 1)


def draw_noise(noise_shapes, num_samples, seed, dtype="float32"):
    """Standard-normal noise of ``noise_shapes`` (``None`` entries give ``None``), one seed stream each."""
    return tuple(
        None if shape is None else keras.random.normal((num_samples,) + tuple(shape), dtype=dtype, seed=derive_seed(seed, i))
        for i, shape in enumerate(noise_shapes)
    )


def _replica_position():
    """``(replicas, replica_id)`` inside a ``tf.distribute`` replica context, else ``(1, 0)``."""
    if keras.backend.backend() != "tensorflow":
        return 1, 0
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return 1, 0
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 1, 0
    return context.num_replicas_in_sync, context.replica_id_in_sync_group


def batch_noise(shape, dtype, seed, batch_axis=0, distribution="normal"):
    """Standard-normal (or ``distribution="uniform"``: U[0, 1)) noise for a batch, replica-aware.

    A replica of an ``R``-replica ``tf.distribute`` strategy holds rows
    ``r b ... (r + 1) b - 1`` of the global batch (``b`` local rows along
    ``batch_axis``). Drawing ``shape`` directly would give every replica the
    same noise (their seed generators advance in lockstep). Instead each
    replica draws the noise of the whole global batch (``R b`` rows) from the
    shared seed and keeps its own block: replicas get different noise and
    together exactly the noise one device draws for the global batch, so
    training with ``R`` replicas and with one device on the same global batch
    and seed match. Outside a replica context (or with one replica) this is
    one plain draw of ``shape``.
    """
    draw = keras.random.uniform if distribution == "uniform" else keras.random.normal
    replicas, replica_id = _replica_position()
    shape = tuple(shape)
    if replicas == 1:
        return draw(shape, dtype=dtype, seed=seed)
    global_shape = shape[:batch_axis] + (shape[batch_axis] * replicas,) + shape[batch_axis + 1:]
    noise = draw(global_shape, dtype=dtype, seed=seed)
    split = shape[:batch_axis] + (replicas, shape[batch_axis]) + shape[batch_axis + 1:]
    return ops.take(ops.reshape(noise, split), replica_id, axis=batch_axis)
