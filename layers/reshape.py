"""Shape-changing bijections: squeeze, flatten, channel permutation."""

import keras
import numpy as np
from keras import ops

from layers.base import FlowLayer, check_example_shape


@keras.saving.register_keras_serializable(package="flow_zoo")
class Squeeze(FlowLayer):
    """Space-to-depth: ``(b, h, w, c) -> (b, h / f, w / f, c * f * f)``.

    A permutation of entries, so ``log_det = 0``. ``inverse`` is the
    depth-to-space map.

    Args:
        factor: int, the spatial block size (2 in GLOW).
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: image tensor ``(batch, height, width, channels)`` whose height
            and width are divisible by ``factor``.
        training: unused.

    Example:

    >>> z, log_det = layers.Squeeze()(keras.ops.ones((2, 8, 8, 1)))
    >>> z.shape
    (2, 4, 4, 4)

    Reference:
        Dinh et al., "Density estimation using Real NVP", ICLR 2017, section 3.6.
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"Squeeze expects images of shape (batch, height, width, channels); "
                f"received rank {len(input_shape)} shape {tuple(input_shape)}."
            )
        h, w = input_shape[1], input_shape[2]
        if h % self.factor or w % self.factor:
            raise ValueError(
                f"Squeeze(factor={self.factor}) needs height and width divisible by "
                f"{self.factor}; received height {h}, width {w}. Pad or crop the images."
            )

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        f = self.factor
        return (b, h // f, w // f, c * f * f), (b,)

    def compute_inverse_shape(self, latent_shape):
        b, h, w, c = latent_shape
        f = self.factor
        return (b, h * f, w * f, c // (f * f))

    def call(self, inputs, training=None):
        _, h, w, c = inputs.shape
        f = self.factor
        x = ops.reshape(inputs, (-1, h // f, f, w // f, f, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        z = ops.reshape(x, (-1, h // f, w // f, c * f * f))
        return z, ops.zeros((ops.shape(inputs)[0],), dtype=self.compute_dtype)

    def _inverse(self, z, training=None):
        _, h, w, c = z.shape
        f = self.factor
        x = ops.reshape(z, (-1, h, w, f, f, c // (f * f)))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        x = ops.reshape(x, (-1, h * f, w * f, c // (f * f)))
        return x, ops.zeros((ops.shape(z)[0],), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config


@keras.saving.register_keras_serializable(package="flow_zoo")
class Flatten(FlowLayer):
    """Reshapes each example to a vector; ``log_det = 0``.

    Args:
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: tensor ``(batch, ...)`` with known non-batch dimensions.
        training: unused.

    Example:

    >>> z, _ = layers.Flatten()(keras.ops.ones((2, 4, 4, 3)))
    >>> z.shape
    (2, 48)

    Reference:
        Used between a multiscale flow and a prior over the whole flattened
        latent, as in Cunningham et al., "Normalizing Flows Across
        Dimensions", 2020 (section 5).
    """

    def build(self, input_shape):
        self.example_shape = tuple(int(d) for d in input_shape[1:])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], int(np.prod(input_shape[1:]))), (input_shape[0],)

    def compute_inverse_shape(self, latent_shape):
        if not self.built:
            raise ValueError("Flatten.inverse needs the layer to be built by a forward call first.")
        return (latent_shape[0],) + self.example_shape

    def call(self, inputs, training=None):
        z = ops.reshape(inputs, (-1, int(np.prod(self.example_shape))))
        return z, ops.zeros((ops.shape(inputs)[0],), dtype=self.compute_dtype)

    def _inverse(self, z, training=None):
        check_example_shape(z, (int(np.prod(self.example_shape)),), "z", self.name)
        x = ops.reshape(z, (-1,) + self.example_shape)
        return x, ops.zeros((ops.shape(z)[0],), dtype=self.compute_dtype)


@keras.saving.register_keras_serializable(package="flow_zoo")
class Permute(FlowLayer):
    """Fixed permutation of the last (channel / feature) axis; ``log_det = 0``.

    Args:
        permutation: list of ints, a permutation of ``range(channels)``, or
            None for the reversal ``[C - 1, ..., 0]`` (RealNVP's "reverse").
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: tensor ``(batch, ..., channels)``.
        training: unused.

    Example:

    >>> z, _ = layers.Permute()(keras.ops.array([[1.0, 2.0, 3.0]]))
    >>> z  # [[3., 2., 1.]]

    Reference:
        Dinh et al., "Density estimation using Real NVP", ICLR 2017.
    """

    def __init__(self, permutation=None, **kwargs):
        super().__init__(**kwargs)
        self.permutation = None if permutation is None else [int(i) for i in permutation]

    def build(self, input_shape):
        channels = int(input_shape[-1])
        perm = list(range(channels))[::-1] if self.permutation is None else self.permutation
        if sorted(perm) != list(range(channels)):
            raise ValueError(
                f"Permute: `permutation` must be a permutation of range({channels}) "
                f"(the channel count); received {perm}."
            )
        self._perm = np.asarray(perm, dtype="int32")
        self._inverse_perm = np.argsort(self._perm).astype("int32")
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: channels})

    def call(self, inputs, training=None):
        z = ops.take(inputs, self._perm, axis=-1)
        return z, ops.zeros((ops.shape(inputs)[0],), dtype=self.compute_dtype)

    def _inverse(self, z, training=None):
        x = ops.take(z, self._inverse_perm, axis=-1)
        return x, ops.zeros((ops.shape(z)[0],), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config["permutation"] = self.permutation
        return config
