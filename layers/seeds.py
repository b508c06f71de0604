"""Seed streams shared by every sampler, in Python and inside exported graphs."""

import keras
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
