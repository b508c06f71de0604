"""The flow contract shared by every layer in this package.

Direction convention (the opposite of TensorFlow Probability's bijectors):

* ``layer(x)`` maps **data -> latent**, the density direction used in
  training, and returns ``(z, log_det)`` where ``log_det`` has shape
  ``[batch]`` and equals ``log |det dz/dx|`` per example.
* ``layer.inverse(z)`` maps **latent -> data** and returns ``x``.
* ``layer.inverse_and_log_det(z)`` returns ``(x, log |det dx/dz|)``; for a
  bijective layer the two log-dets sum to zero.

Subclasses implement ``call(inputs, training=None)`` and
``_inverse(z, training=None)``; both return ``(output, log_det)``. They keep
to the Keras layer idiom: arguments are stored in ``__init__``, weights are
created in ``build``, ``call`` uses ``keras.ops`` only, and ``get_config``
returns every constructor argument.
"""

import keras
from keras import ops


def sum_except_batch(x):
    """Sums a tensor over every axis but the first.

    Args:
        x: a tensor of rank >= 1.

    Returns:
        A tensor of shape ``[batch]``.
    """
    if len(x.shape) == 1:
        return x
    return ops.sum(x, axis=tuple(range(1, len(x.shape))))


def split_channels(x, index):
    """``(x[..., :index], x[..., index:])`` as one split op.

    The gradient of a split is one concatenation; the gradient of each of two
    slices is a scatter into a zero tensor of the input's full size
    (``StridedSliceGrad``), which took about 12% of a GLOW training step on
    the CPU (``benchmarks/train_throughput.py``).
    """
    return tuple(ops.split(x, [int(index)], axis=-1))


def event_size(shape):
    """Number of elements in one example of a tensor with ``shape``.

    Args:
        shape: a shape tuple whose first entry is the batch dimension.

    Returns:
        The product of ``shape[1:]`` as a Python int.

    Raises:
        ValueError: if any non-batch dimension is unknown.
    """
    size = 1
    for dim in shape[1:]:
        if dim is None:
            raise ValueError(
                f"Flow layers need fully known example shapes; received {tuple(shape)}."
            )
        size *= int(dim)
    return size


def _describe(shape):
    return "(batch, " + ", ".join(str(d) for d in shape[1:]) + ")" if len(shape) > 1 else "(batch,)"


def check_example_shape(x, expected_example_shape, tensor_name, owner):
    """Raises a clear error when ``x`` does not have the expected example shape.

    Args:
        x: the tensor to check (its first axis is the batch axis).
        expected_example_shape: tuple of the non-batch dimensions expected.
        tensor_name: the name of the tensor, used in the message.
        owner: the layer or model name, used in the message.

    Raises:
        ValueError: naming the tensor, the expected and the received shape.
    """
    received = tuple(x.shape)
    expected = (None,) + tuple(expected_example_shape)
    ok = len(received) == len(expected) and all(
        e is None or r is None or int(r) == int(e) for r, e in zip(received[1:], expected[1:])
    )
    if not ok:
        raise ValueError(
            f"{owner}: `{tensor_name}` must have shape {_describe(expected)} "
            f"(rank {len(expected)}); received shape {_describe(received)} "
            f"(rank {len(received)})."
        )


def density_dtype():
    """The dtype policy of a layer that carries a density (flow layers, priors, injective layers, the models).

    None (the global policy) under a full-precision policy (``float32``, or
    ``float64`` for the dense references of the tests); ``"float32"`` under a
    mixed one. Under ``keras.mixed_precision.set_global_policy("mixed_bfloat16")``
    those layers compute in float32: a log-likelihood is a sum of
    log-determinants over all D dimensions, and bfloat16's 8-bit mantissa would be
    off by tens of nats. Only the networks inside them (coupling conditioners,
    encoders, decoders), built with the global policy, compute in bfloat16;
    ``apply_sequence`` hands their output back in the input's dtype.
    """
    policy = keras.config.dtype_policy()
    if policy.compute_dtype == policy.variable_dtype and policy.compute_dtype in ("float32", "float64"):
        return None
    return "float32"


@keras.saving.register_keras_serializable(package="flow_zoo")
class FlowLayer(keras.layers.Layer):
    """Base class of every invertible (bijective) flow layer.

    ``layer(x)`` maps data to latent and returns ``(z, log_det)`` with
    ``log_det = log |det dz/dx|`` of shape ``[batch]``. ``layer.inverse(z)``
    maps latent to data. This is the density direction, the opposite of
    TensorFlow Probability's bijector convention.

    Subclasses override ``call``, ``_inverse`` and, when the layer changes
    shape, ``compute_output_shape`` and ``compute_inverse_shape``.

    Args:
        **kwargs: standard ``keras.layers.Layer`` arguments (``name``,
            ``dtype``, ``trainable``).

    Call arguments:
        inputs: a data-space tensor whose first axis is the batch axis.
        training: Python bool; layers with data-dependent behaviour (act-norm
            initialization, dequantization noise) read it.

    Example:

    >>> layer = layers.ActNorm()
    >>> z, log_det = layer(x)
    >>> x_again = layer.inverse(z)

    Reference:
        Dinh et al., "Density estimation using Real NVP", ICLR 2017.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", density_dtype())  # under a mixed policy too (see density_dtype)
        super().__init__(**kwargs)

    def _inverse(self, z, training=None):
        raise NotImplementedError(f"{type(self).__name__} must implement `_inverse`.")

    def compute_inverse_shape(self, latent_shape):
        """Data-space shape produced by ``inverse`` for ``latent_shape``."""
        return tuple(latent_shape)

    def compute_output_shape(self, input_shape):
        batch = (input_shape[0],)
        return tuple(input_shape), batch

    def _prepare_inverse(self, z):
        if not self.built:
            self.build(self.compute_inverse_shape(tuple(z.shape)))
        return ops.cast(z, self.compute_dtype)

    def inverse_and_log_det(self, z, training=None):
        """Maps latent ``z`` to data and returns ``(x, log |det dx/dz|)``.

        Args:
            z: a latent-space tensor.
            training: Python bool, forwarded to layers that read it.

        Returns:
            ``(x, log_det)`` with ``log_det`` of shape ``[batch]``.
        """
        return self._inverse(self._prepare_inverse(z), training=training)

    def inverse(self, z, training=None):
        """Maps latent ``z`` back to data space.

        Args:
            z: a latent-space tensor.
            training: Python bool, forwarded to layers that read it.

        Returns:
            The data-space tensor ``x`` with ``layer(x)[0] == z``.
        """
        return self.inverse_and_log_det(z, training=training)[0]


@keras.saving.register_keras_serializable(package="flow_zoo")
class FlowSequence(FlowLayer):
    """Chains flow layers; log-dets add up.

    ``FlowSequence([a, b])(x)`` applies ``a`` then ``b``; the inverse applies
    ``b.inverse`` then ``a.inverse``.

    Args:
        flow_layers: list of ``FlowLayer`` instances (or their serialized
            configs), applied in order in the data -> latent direction.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: a data-space tensor.
        training: Python bool, forwarded to every sub-layer.

    Example:

    >>> flow = layers.FlowSequence([layers.ActNorm(), layers.AffineCoupling()])
    >>> z, log_det = flow(x)

    Reference:
        Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1
        Convolutions", NeurIPS 2018 (a flow step is such a chain).
    """

    def __init__(self, flow_layers, **kwargs):
        super().__init__(**kwargs)
        self.flow_layers = [
            keras.saving.deserialize_keras_object(layer) if isinstance(layer, dict) else layer
            for layer in flow_layers
        ]
        for layer in self.flow_layers:
            if not isinstance(layer, FlowLayer):
                raise TypeError(
                    f"FlowSequence accepts only FlowLayer instances; received "
                    f"{type(layer).__name__}."
                )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.flow_layers:
            if not layer.built:
                layer.build(shape)
            shape = layer.compute_output_shape(shape)[0]

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.flow_layers:
            shape = layer.compute_output_shape(shape)[0]
        return shape, (input_shape[0],)

    def compute_inverse_shape(self, latent_shape):
        shape = tuple(latent_shape)
        for layer in reversed(self.flow_layers):
            shape = layer.compute_inverse_shape(shape)
        return shape

    def call(self, inputs, training=None):
        x = inputs
        total = ops.zeros((ops.shape(inputs)[0],), dtype=self.compute_dtype)
        for layer in self.flow_layers:
            x, log_det = layer(x, training=training)
            total = total + ops.cast(log_det, total.dtype)
        return x, total

    def _inverse(self, z, training=None):
        total = ops.zeros((ops.shape(z)[0],), dtype=self.compute_dtype)
        for layer in reversed(self.flow_layers):
            z, log_det = layer.inverse_and_log_det(z, training=training)
            total = total + ops.cast(log_det, total.dtype)
        return z, total

    def get_config(self):
        config = super().get_config()
        config["flow_layers"] = [keras.saving.serialize_keras_object(l) for l in self.flow_layers]
        return config
