"""Multiscale factor-out: half of the channels leave the flow at each level."""

import keras
from keras import ops

from layers.base import FlowLayer, split_channels


@keras.saving.register_keras_serializable(package="flow_zoo")
class FactorOut(FlowLayer):
    """Factors out channels and sends the rest through an inner flow.

    ``x`` of shape ``(b, h, w, c)`` is split into ``x_out = x[..., :k]`` and
    ``x_rest = x[..., k:]`` with ``k = factored_channels`` (default ``c // 2``).
    ``x_out`` is final: it is flattened and becomes part of the latent.
    ``x_rest`` goes through ``inner_flow``, which must itself end in a flat
    vector (a ``Flatten`` or another ``FactorOut``). The output is
    ``concat(flatten(x_out), inner_flow(x_rest))`` of shape ``(b, D)`` with
    ``D = h * w * c``: the multiscale latent re-concatenated into one vector,
    as the NIF models need. ``log_det`` is the inner flow's.

    Args:
        inner_flow: a ``FlowLayer`` (or its serialized config) for the
            remaining channels; a nested ``FactorOut`` gives more levels.
        factored_channels: int or None; how many channels leave at this level.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: image tensor ``(batch, height, width, channels)``.
        training: Python bool, forwarded to the inner flow.

    Example:

    >>> inner = layers.FlowSequence([layers.Squeeze(), layers.Flatten()])
    >>> z, log_det = layers.FactorOut(inner)(keras.ops.ones((2, 4, 4, 4)))
    >>> z.shape
    (2, 64)

    Reference:
        Dinh et al., "Density estimation using Real NVP", ICLR 2017, section 3.6.
    """

    def __init__(self, inner_flow, factored_channels=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(inner_flow, dict):
            inner_flow = keras.saving.deserialize_keras_object(inner_flow)
        if not isinstance(inner_flow, FlowLayer):
            raise TypeError(f"FactorOut: `inner_flow` must be a FlowLayer; received {type(inner_flow).__name__}.")
        self.inner_flow = inner_flow
        self.factored_channels = None if factored_channels is None else int(factored_channels)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"FactorOut expects images (batch, h, w, c); received shape {tuple(input_shape)}.")
        _, h, w, c = input_shape
        k = c // 2 if self.factored_channels is None else self.factored_channels
        if not 0 < k < c:
            raise ValueError(f"FactorOut: need 0 < factored_channels < {c}; received {k}.")
        self._k = int(k)
        self._out_size = int(h * w * k)
        self._out_shape = (int(h), int(w), int(k))
        rest_shape = (input_shape[0], h, w, c - k)
        if not self.inner_flow.built:
            self.inner_flow.build(rest_shape)
        inner_out = self.inner_flow.compute_output_shape(rest_shape)[0]
        if len(inner_out) != 2:
            raise ValueError(
                "FactorOut: `inner_flow` must end in a flat vector (add layers.Flatten() "
                f"at its end); it produces shape {tuple(inner_out)}."
            )
        self._inner_size = int(inner_out[1])

    def compute_output_shape(self, input_shape):
        _, h, w, c = input_shape
        k = c // 2 if self.factored_channels is None else self.factored_channels
        rest = self.inner_flow.compute_output_shape((input_shape[0], h, w, c - k))[0]
        return (input_shape[0], h * w * k + rest[1]), (input_shape[0],)

    def compute_inverse_shape(self, latent_shape):
        if not self.built:
            raise ValueError("FactorOut.inverse needs the layer to be built by a forward call first.")
        h, w, k = self._out_shape
        rest = self.inner_flow.compute_inverse_shape((latent_shape[0], self._inner_size))
        return (latent_shape[0], h, w, k + rest[-1])

    def call(self, inputs, training=None):
        x_out, x_rest = split_channels(inputs, self._k)
        z_rest, log_det = self.inner_flow(x_rest, training=training)
        z = ops.concatenate([ops.reshape(x_out, (-1, self._out_size)), z_rest], axis=-1)
        return z, log_det

    def _inverse(self, z, training=None):
        x_out = ops.reshape(z[:, : self._out_size], (-1,) + self._out_shape)
        x_rest, log_det = self.inner_flow.inverse_and_log_det(z[:, self._out_size :], training=training)
        return ops.concatenate([x_out, x_rest], axis=-1), log_det

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "inner_flow": keras.saving.serialize_keras_object(self.inner_flow),
                "factored_channels": self.factored_channels,
            }
        )
        return config
