"""Synthetic MNIST of known intrinsic dimension (spread paper section 7.4, appendix C.5)."""

import math

import keras
import numpy as np
from keras import ops

import layers as flow_layers
from layers.numerics import LOG_2PI

from zoo.data.manifolds import Manifold
from zoo.models.base import replica_share


# ---------------------------------------------------- synthetic MNIST (C.5)
@keras.saving.register_keras_serializable(package="flow_zoo")
class ImplicitVAE(keras.Model):
    """The implicit data model of appendix C.5.1: a VAE whose decoder mean ``g`` generates data.

    Encoder ``q(z | x) = N(mu(x), diag sigma^2(x))`` (MLP 784 -> 400 -> 200 ->
    2d, ReLU), decoder ``p(x | z) = N(g(z), decoder_std^2 I)`` with ``g`` an
    MLP ``d -> 200 -> 400 -> 784`` (ReLU, sigmoid output), prior ``N(0, I)``.
    ``call`` returns the per-example ELBO (one reparameterized sample);
    ``compile`` + ``fit`` maximize it. ``sample_images`` returns ``x = g(z)``,
    ``z ~ N(0, I_d)``: samples of an implicit model supported on a
    ``d``-dimensional manifold.

    Args:
        latent_dim: int ``d >= 1``, the intrinsic dimension of the generated data.
        image_shape: shape of one image (float pixels in ``[0, 1]``).
        hidden_units: encoder hidden widths (the decoder uses them reversed).
        decoder_std: float, the decoder's fixed standard deviation (0.3).
        seed: int or None, seed of the reparameterization noise.
    """

    def __init__(self, latent_dim, image_shape=(28, 28, 1), hidden_units=(400, 200), decoder_std=0.3, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        if int(latent_dim) < 1 or decoder_std <= 0:
            raise ValueError(f"ImplicitVAE: needs latent_dim >= 1 and decoder_std > 0; received {latent_dim}, {decoder_std}.")
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.hidden_units = tuple(int(h) for h in hidden_units)
        self.decoder_std = float(decoder_std)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        size = int(np.prod(self.image_shape))
        self.encoder = keras.Sequential(
            [keras.layers.Dense(h, activation="relu") for h in self.hidden_units] + [keras.layers.Dense(2 * self.latent_dim)],
            name="encoder",
        )
        self.decoder = keras.Sequential(
            [keras.layers.Dense(h, activation="relu") for h in reversed(self.hidden_units)]
            + [keras.layers.Dense(size, activation="sigmoid")],
            name="decoder",
        )
        self.encoder.build((None, size))
        self.decoder.build((None, self.latent_dim))

    def decode(self, z):
        """``g(z)``: images ``(batch,) + image_shape`` with pixels in ``(0, 1)``."""
        flow_layers.check_example_shape(z, (self.latent_dim,), "z", self.name)
        return ops.reshape(self.decoder(ops.cast(z, "float32")), (-1,) + self.image_shape)

    def decoder_jacobian(self, z):
        """``dg/dz`` at ``z`` ``(n, d)``: float64 NumPy ``(n, D, d)``, exact (the MLP's chain rule in float64).

        The decoder's layers are dense with ReLU or sigmoid activations; the
        forward pass is redone in float64 from their weights, so the result
        does not depend on the backend's autodiff.
        """
        z = np.asarray(z, np.float64)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"{self.name}.decoder_jacobian: needs z of shape (n, {self.latent_dim}); received "
                             f"{z.shape}.")
        h, jacobian = z, np.broadcast_to(np.eye(self.latent_dim), (len(z), self.latent_dim, self.latent_dim))
        for layer in self.decoder.layers:  # jacobian: (n, d, width) = d h / d z, transposed
            kernel = np.asarray(ops.convert_to_numpy(layer.kernel), np.float64)
            pre = h @ kernel + np.asarray(ops.convert_to_numpy(layer.bias), np.float64)
            if layer.activation is keras.activations.relu:
                h, slope = np.maximum(pre, 0.0), (pre > 0).astype(np.float64)
            elif layer.activation is keras.activations.sigmoid:
                h = 1.0 / (1.0 + np.exp(-pre))
                slope = h * (1.0 - h)
            else:
                raise ValueError(f"{self.name}.decoder_jacobian: the decoder layer {layer.name} has the activation "
                                 f"{layer.activation}; only relu and sigmoid have their derivative here.")
            jacobian = (jacobian @ kernel) * slope[:, None, :]
        return np.swapaxes(jacobian, 1, 2)

    def latent_report(self, images=None, num_samples=300, seed=0, active_threshold=0.01):
        """How strongly the data ``x = g(z)`` vary along each of the ``d`` latent directions.

        Returns a dict: ``decoder_sq_singular_values``, the median over
        ``num_samples`` draws ``z ~ N(0, I)`` of the squared singular values
        of ``dg/dz`` (descending: the pixel-space variance one unit of each
        direction carries; a near-zero last one means fewer than ``d``
        resolvable directions), and with ``images`` the encoder means'
        variance per latent unit over them (descending) and ``active_units``,
        how many exceed ``active_threshold`` (Burda et al.'s activity test).
        """
        z = self.sample_latents(num_samples, seed)
        singular = np.linalg.svd(self.decoder_jacobian(z), compute_uv=False) ** 2
        report = {"num_samples": int(num_samples), "seed": int(seed),
                  "decoder_sq_singular_values": [float(v) for v in np.median(singular, axis=0)]}
        if images is not None:
            images = np.asarray(images, np.float32)
            flow_layers.check_example_shape(images, self.image_shape, "images", self.name)
            stats = np.asarray(ops.convert_to_numpy(self.encoder(images.reshape(len(images), -1))))
            variances = np.sort(stats[:, : self.latent_dim].var(axis=0))[::-1]
            report.update({"encoder_mean_variances": [float(v) for v in variances],
                           "active_threshold": float(active_threshold),
                           "active_units": int(np.sum(variances > active_threshold))})
        return report

    def call(self, inputs, training=False):
        flow_layers.check_example_shape(inputs, self.image_shape, "x", self.name)
        x = ops.reshape(ops.cast(inputs, "float32"), (ops.shape(inputs)[0], -1))
        stats = self.encoder(x)
        mean, log_var = stats[:, : self.latent_dim], stats[:, self.latent_dim :]
        eps = flow_layers.batch_noise(ops.shape(mean), "float32", self.seed_generator)
        z = mean + ops.exp(0.5 * log_var) * eps
        residual = (x - self.decoder(z)) / self.decoder_std
        size = x.shape[-1]
        log_lik = -0.5 * ops.sum(ops.square(residual), axis=-1) - size * (math.log(self.decoder_std) + 0.5 * LOG_2PI)
        kl = 0.5 * ops.sum(ops.square(mean) + ops.exp(log_var) - 1.0 - log_var, axis=-1)
        return log_lik - kl

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative mean ELBO per pixel (``y`` is ignored)."""
        if y_pred is None:
            y_pred = self(x, training=training)
        return replica_share(-ops.mean(y_pred) / float(np.prod(self.image_shape)))

    def sample_latents(self, num_samples, seed=0):
        """``z ~ N(0, I_d)`` as a float64 NumPy array (seeded)."""
        return np.random.default_rng(seed).standard_normal((int(num_samples), self.latent_dim))

    def sample_images(self, num_samples, seed=0):
        """``(images, z)``: ``x = g(z)`` float32 NumPy images and their float64 latents."""
        z = self.sample_latents(num_samples, seed)
        return np.asarray(ops.convert_to_numpy(self.decode(z.astype("float32")))), z

    def get_config(self):
        return {
            "name": self.name,
            "latent_dim": self.latent_dim,
            "image_shape": list(self.image_shape),
            "hidden_units": list(self.hidden_units),
            "decoder_std": self.decoder_std,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def train_implicit_model(images, latent_dim, epochs=5, batch_size=100, learning_rate=1e-3, seed=0, verbose=0):
    """Fits an ``ImplicitVAE`` to uint8 or ``[0, 1]`` float images (the paper: 100 epochs, lr 1e-4).

    Returns:
        The trained ``ImplicitVAE``.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype("float32") / 255.0
    if images.ndim != 4 or images.min() < 0 or images.max() > 1:
        raise ValueError(
            f"train_implicit_model: needs images (n, h, w, c) as uint8 or floats in [0, 1]; received shape "
            f"{images.shape}, range [{images.min()}, {images.max()}]."
        )
    keras.utils.set_random_seed(seed)
    vae = ImplicitVAE(latent_dim, image_shape=images.shape[1:], seed=seed)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
    vae.fit(images.astype("float32"), batch_size=batch_size, epochs=epochs, verbose=verbose, shuffle=True)
    return vae


def synthetic_mnist(num_samples, implicit_model, seed=0):
    """Synthetic MNIST of known intrinsic dimension: ``x = g(z)``, ``z ~ N(0, I_d)`` (section 7.4).

    Args:
        num_samples: int.
        implicit_model: a trained ``ImplicitVAE`` (``train_implicit_model``).
        seed: seed of ``z``.

    Returns:
        A ``zoo.manifolds.Manifold`` with float32 images in ``[0, 1]``, the
        latents ``z`` and ``intrinsic_dim = d``.
    """
    images, z = implicit_model.sample_images(num_samples, seed)
    return Manifold(images.astype(np.float32), z, implicit_model.latent_dim, f"synthetic_mnist_{implicit_model.latent_dim}")
