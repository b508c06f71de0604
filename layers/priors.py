"""Base distributions over a flow's latent."""

import math

import keras
from keras import ops

from layers.base import sum_except_batch
from layers.seeds import draw_noise


class LatentPrior:
    """What a prior over the whole latent shares: seeded ``sample`` and identity ``encode`` / ``decode``.

    A subclass (a Keras layer) defines ``noise_shapes`` and ``generate(latent_noise,
    observation_noise, temperature, noise_scale)``; sampling is ``generate`` on
    seeded standard-normal noise, as for every prior (DESIGN.md: exports rebuild it).
    """

    def sample(self, num_samples, temperature=1.0, noise_scale=1.0, seed=None):
        """Draws ``num_samples`` latents with standard deviation ``temperature`` (seeded noise)."""
        return self.generate(*draw_noise(self.noise_shapes, num_samples, seed, self.compute_dtype), temperature, noise_scale)

    def encode(self, z, stochastic=False, seed=None):
        """Flow latent -> prior latent (identity: the prior is over the flow latent itself)."""
        del stochastic, seed
        return z

    def decode(self, latent, noise_scale=0.0, seed=None, noise=None):
        """Prior latent -> flow latent (identity)."""
        del noise_scale, seed, noise
        return latent


@keras.saving.register_keras_serializable(package="flow_zoo")
class StandardNormal(LatentPrior, keras.layers.Layer):
    """Unit Gaussian prior ``N(0, I)`` over a flow's latent.

    Every prior in this package offers the same four methods, so a
    ``FlowModel`` can swap a unit Gaussian for a noisy injective prior:
    ``log_prob(z)``, ``sample(num_samples, temperature, noise_scale, seed)``,
    ``encode(z)`` (flow latent -> prior latent) and ``decode(latent,
    noise_scale)`` (prior latent -> flow latent). For this prior the latent
    spaces coincide and ``encode`` / ``decode`` are identities.

    Temperature ``t`` multiplies the standard deviation of the samples
    (GLOW's convention): ``z = t * eps``. ``noise_scale`` has no effect here
    (it scales a noisy injective prior's observation noise).

    Args:
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: latent tensor ``(batch, ...)``; calling the layer returns
            ``log_prob(inputs)``.

    Example:

    >>> prior = layers.StandardNormal()
    >>> prior.build((None, 16))
    >>> z = prior.sample(4, temperature=0.7, seed=0)
    >>> prior.log_prob(z).shape
    (4,)

    Reference:
        Kingma & Dhariwal, "Glow", NeurIPS 2018 (temperature, section 5.2).
    """

    def build(self, input_shape):
        self.event_shape = tuple(int(d) for d in input_shape[1:])

    @property
    def latent_shape(self):
        """Shape of one prior latent (the flow's latent shape here)."""
        return self.event_shape

    def log_prob(self, z, training=None):
        """Per-example ``log N(z; 0, I)``, shape ``[batch]`` (``training`` is unused)."""
        del training
        z = ops.cast(z, self.compute_dtype)
        d = math.prod(self.event_shape)
        return -0.5 * sum_except_batch(ops.square(z)) - 0.5 * d * math.log(2.0 * math.pi)

    def call(self, inputs):
        return self.log_prob(inputs)

    @property
    def noise_shapes(self):
        """Per-example shapes of the latent noise and (none here) the observation noise."""
        return self.event_shape, None

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0):
        """Deterministic sampling from given noise: ``temperature * latent_noise``."""
        del observation_noise, noise_scale
        return ops.cast(temperature, self.compute_dtype) * ops.cast(latent_noise, self.compute_dtype)

