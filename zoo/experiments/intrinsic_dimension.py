"""Intrinsic dimension with the learnable manifold prior (spread paper section 7): projections of data."""

import numpy as np
from keras import ops

from layers.spread import SpreadPrior


def project(model, x, num_dims=None):
    """``z_proj = f(x) E``: data -> its ``num_dims``-dimensional representation (section 7.2).

    Args:
        model: a ``FlowModel`` with a ``layers.SpreadPrior``.
        x: data batch.
        num_dims: int or None (the prior's ``intrinsic_dimension()``).

    Returns:
        A NumPy array ``(batch, num_dims)``.
    """
    if not isinstance(model.prior, SpreadPrior):
        raise ValueError(f"{model.name}: `project` needs a model with a SpreadPrior; it has {type(model.prior).__name__}.")
    z, _ = model.forward(x, training=False)
    return np.asarray(ops.convert_to_numpy(model.prior.project(z, num_dims)))
