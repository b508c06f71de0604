"""Activation normalization with data-dependent initialization."""

import keras
from keras import ops

from layers.base import FlowLayer, event_size
from layers.checks import is_eager


@keras.saving.register_keras_serializable(package="flow_zoo")
class ActNorm(FlowLayer):
    """Per-channel affine normalization: ``z = (x + loc) * exp(log_scale)``.

    The last axis is the channel axis; every other non-batch axis shares the
    parameters, so ``log_det = (number of positions) * sum(log_scale)``.

    Data-dependent initialization: the first call with ``training=True`` that
    runs eagerly sets ``loc`` and ``log_scale`` so that the output of that
    batch has zero mean and unit variance per channel, and sets the
    non-trainable ``initialized`` weight to 1. That flag is saved with the
    model, so a loaded model never re-initializes. Inside a compiled function
    (``tf.function``, ``jax.jit``) the layer never initializes;
    ``FlowModel.fit`` and ``FlowModel.initialize`` run the initializing pass
    eagerly on the first batch before training starts, which also gives every
    replica of a distribution strategy the same initialization.

    Args:
        data_init: Python bool; whether to use data-dependent initialization.
        epsilon: float added to the batch standard deviation at init.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: tensor of shape ``(batch, ..., channels)``.
        training: Python bool; initialization happens only when True.

    Example:

    >>> layer = layers.ActNorm()
    >>> z, log_det = layer(x, training=True)  # initializes from x
    >>> layer.is_initialized
    True

    Reference:
        Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1
        Convolutions", NeurIPS 2018, section 3.1.
    """

    def __init__(self, data_init=True, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.data_init = bool(data_init)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("ActNorm needs a known channel (last) dimension.")
        self.loc = self.add_weight(shape=(channels,), initializer="zeros", name="loc")
        self.log_scale = self.add_weight(shape=(channels,), initializer="zeros", name="log_scale")
        self.initialized = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="initialized", dtype="float32"
        )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: channels})

    @property
    def is_initialized(self):
        """Python bool: whether data-dependent initialization has happened."""
        return bool(ops.convert_to_numpy(self.initialized) > 0.5)

    def initialize_from(self, x):
        """Sets ``loc`` and ``log_scale`` from the batch ``x`` (eagerly)."""
        axes = tuple(range(len(x.shape) - 1))
        x = ops.cast(x, self.variable_dtype)
        mean = ops.mean(x, axis=axes)
        std = ops.sqrt(ops.mean(ops.square(x - mean), axis=axes))
        self.loc.assign(-mean)
        self.log_scale.assign(-ops.log(std + self.epsilon))
        self.initialized.assign(1.0)

    def _positions(self, x):
        return event_size(x.shape) // int(x.shape[-1])

    def _log_det(self, x):
        batch = ops.shape(x)[0]
        per_example = self._positions(x) * ops.sum(self.log_scale)
        return ops.ones((batch,), dtype=self.compute_dtype) * ops.cast(per_example, self.compute_dtype)

    def call(self, inputs, training=None):
        if (
            training
            and self.data_init
            and is_eager(inputs)
            and not self.is_initialized
        ):
            self.initialize_from(inputs)
        z = (inputs + self.loc) * ops.exp(self.log_scale)
        return z, self._log_det(inputs)

    def _inverse(self, z, training=None):
        x = z * ops.exp(-self.log_scale) - self.loc
        return x, -self._log_det(z)

    def get_config(self):
        config = super().get_config()
        config.update({"data_init": self.data_init, "epsilon": self.epsilon})
        return config
