"""Flows with a learnable manifold prior (spread divergence) and their fixed-prior baselines.

"On the latent space of flow-based models": a volume-preserving coupling flow
(``layers.AffineCoupling(volume_preserving=True)``, log-det exactly 0) with the
learnable degenerate Gaussian prior ``layers.SpreadPrior`` (``N(0, A A^T)``
spread by ``N(0, sigma_Z^2 I)``). ``FlowModel``'s loss is then the negative
spread log-density of the latents, term 2 of the spread KL (eq. 12, 15); the
intrinsic dimension is the number of significant eigenvalues of ``A A^T``.
The baselines ("NF" in the paper, appendix C.1) have the same architecture
with unnormalized (non-volume-preserving) couplings and a fixed ``N(0, I)``.

Architectures (appendix C.1, tables 1-4): vectors use ``num_couplings`` MLP
couplings (hidden width 24, 3 hidden layers) with the feature order reversed
between couplings; images use, per level, a squeeze (space-to-depth; after
the first one a fixed channel permutation makes the coupling split a
checkerboard of each 2x2 block), ``steps_per_level`` convolutional couplings
(width 16) separated by fixed random channel permutations, then a flatten
and ``num_couplings`` MLP couplings on the whole vector. Image models take
float images in ``[0, 1]`` (not uint8: the paper fits the continuous pixel
values, with ``layers.DataNoise`` as the only noise, annealed by
``DataNoiseAnnealing``).

Synthetic MNIST with a known intrinsic dimension (section 7.4, appendix
C.5): ``ImplicitVAE`` is fitted to MNIST and its decoder ``g`` gives data
``x = g(z)``, ``z ~ N(0, I_d)``, on a ``d``-dimensional manifold
(``synthetic_mnist``).
"""

import math

import keras
import numpy as np
from keras import ops

import layers as flow_layers
from layers.spread import DataNoise, SpreadPrior
from zoo import registry
from zoo.flow_model import FlowModel, replica_share
from zoo.manifolds import Manifold

SPREAD_PAPER = "On the latent space of flow-based models (ICLR 2021 submission), appendix C"
# sigma_Z of the paper (sigma_Z^2 = 1e-4, section 6).
PAPER_SPREAD_STD = 0.01


# ----------------------------------------------------------------- flows
def _coupling(hidden_units, num_hidden_layers, volume_preserving, log_scale_clamp):
    return flow_layers.AffineCoupling(
        hidden_units, num_hidden_layers, log_scale_clamp, volume_preserving=volume_preserving
    )


def _vector_couplings(num_couplings, hidden_units, num_hidden_layers, volume_preserving, log_scale_clamp):
    """[coupling, reverse] x N (no reversal after the last coupling)."""
    steps = []
    for i in range(num_couplings):
        if i:
            steps.append(flow_layers.Permute())
        steps.append(_coupling(hidden_units, num_hidden_layers, volume_preserving, log_scale_clamp))
    return steps


def spread_vector_flow(dim, num_couplings=2, hidden_units=24, num_hidden_layers=3, volume_preserving=True,
                       log_scale_clamp=2.0):
    """The vector flow of tables 1-2: ``num_couplings`` MLP couplings, features reversed in between.

    No act-norm: it is not volume preserving (the spread prior carries the
    volume instead).
    """
    if dim < 2:
        raise ValueError(f"A coupling flow needs at least 2 dimensions; received dim={dim}.")
    if num_couplings < 1:
        raise ValueError(f"num_couplings must be >= 1; received {num_couplings}.")
    return flow_layers.FlowSequence(
        _vector_couplings(num_couplings, hidden_units, num_hidden_layers, volume_preserving, log_scale_clamp),
        name="spread_vector_flow",
    )


def checkerboard_permutation(channels):
    """Channel order after ``Squeeze(2)`` that puts the 2x2 block's diagonal first.

    ``Squeeze`` orders the channels ``(dy, dx, c)``; with this permutation the
    first half holds positions (0, 0) and (1, 1) of every block, so a coupling
    splitting channels in halves conditions a checkerboard on the other one.
    """
    return [position * channels + c for position in (0, 3, 1, 2) for c in range(channels)]


def spread_image_flow(image_shape, num_levels=2, steps_per_level=2, hidden_channels=16, num_couplings=2,
                      hidden_units=24, num_hidden_layers=3, volume_preserving=True, log_scale_clamp=2.0, seed=0):
    """The image flow of tables 3-4: image ``(h, w, c)`` -> vector of size ``h * w * c``.

    Per level: squeeze, ``steps_per_level`` conv couplings (fixed random
    channel permutations in between, seeded); then flatten and
    ``num_couplings`` MLP couplings (features reversed in between).

    Args:
        image_shape: ``(height, width, channels)``, height and width divisible by ``2 ** num_levels``.
        num_levels: int >= 1, squeeze levels (2 in the paper).
        steps_per_level: int >= 1, conv couplings per level (2 for 32x32 fading squares, 4 for MNIST).
        hidden_channels: int, conv conditioner width (16).
        num_couplings: int >= 0, MLP couplings on the flattened vector (2).
        hidden_units: int, MLP conditioner width (24).
        num_hidden_layers: int, MLP conditioner hidden layers (3).
        volume_preserving: Python bool, normalized (log-det 0) couplings.
        log_scale_clamp: float, bound on the couplings' log-scales.
        seed: int, seeds the channel permutations.

    Returns:
        A ``layers.FlowSequence``.
    """
    height, width, channels = (int(d) for d in image_shape)
    if num_levels < 1 or steps_per_level < 1 or num_couplings < 0:
        raise ValueError(
            f"num_levels and steps_per_level must be >= 1 and num_couplings >= 0; received "
            f"{num_levels}, {steps_per_level}, {num_couplings}."
        )
    block = 2**num_levels
    if height % block or width % block:
        raise ValueError(
            f"{num_levels} squeeze levels need height and width divisible by {block}; received image shape "
            f"{tuple(image_shape)}. Use fewer levels or pad the images."
        )
    rng = np.random.default_rng(seed)
    steps = []
    for level in range(num_levels):
        channels *= 4
        steps.append(flow_layers.Squeeze())
        if level == 0:
            steps.append(flow_layers.Permute(checkerboard_permutation(channels // 4)))
        for step in range(steps_per_level):
            if step:
                steps.append(flow_layers.Permute([int(i) for i in rng.permutation(channels)]))
            steps.append(_coupling(hidden_channels, 2, volume_preserving, log_scale_clamp))
    steps.append(flow_layers.Flatten())
    steps += _vector_couplings(num_couplings, hidden_units, num_hidden_layers, volume_preserving, log_scale_clamp)
    return flow_layers.FlowSequence(steps, name="spread_image_flow")


def _prior(learnable_prior, spread_std, seed):
    return SpreadPrior(spread_std, seed=seed, name="spread_prior") if learnable_prior else None


def make_spread_vector(dim, num_couplings=2, hidden_units=24, num_hidden_layers=3, volume_preserving=True,
                       learnable_prior=True, spread_std=PAPER_SPREAD_STD, log_scale_clamp=2.0, seed=None,
                       name="spread_vector"):
    """A vector ``FlowModel`` with the spread prior (or, for the baseline, a unit Gaussian).

    Args:
        dim: int >= 2, the data dimension.
        num_couplings, hidden_units, num_hidden_layers, volume_preserving,
        log_scale_clamp: the flow's (``spread_vector_flow``).
        learnable_prior: True: ``layers.SpreadPrior(spread_std)``; False:
            ``layers.StandardNormal()`` (the paper's "traditional flow").
        spread_std: ``sigma_Z``.
        seed: seed of the training-time spread noise.
        name: Keras model name.

    Example:

    >>> model = make_spread_vector(2)
    >>> model.compile(optimizer=spread_optimizer(3e-4))
    >>> model.fit(zoo.manifolds.sin_curve(10000).data, batch_size=100, epochs=10)
    >>> model.prior.intrinsic_dimension()
    """
    flow = spread_vector_flow(dim, num_couplings, hidden_units, num_hidden_layers, volume_preserving, log_scale_clamp)
    return FlowModel(flow, input_shape=(dim,), prior=_prior(learnable_prior, spread_std, seed), name=name)


def make_spread_image(image_shape, num_levels=2, steps_per_level=2, hidden_channels=16, num_couplings=2,
                      hidden_units=24, num_hidden_layers=3, volume_preserving=True, learnable_prior=True,
                      spread_std=PAPER_SPREAD_STD, data_noise=0.0, log_scale_clamp=2.0, seed=0, name="spread_image"):
    """An image ``FlowModel`` (float inputs in ``[0, 1]``) with the spread prior or a unit Gaussian.

    ``data_noise`` is the initial standard deviation of the training-time
    ``layers.DataNoise`` preprocessing (0 for fading squares; 0.05 for
    MNIST, annealed to 0.01 by ``DataNoiseAnnealing``). See
    ``spread_image_flow`` for the architecture arguments.
    """
    flow = spread_image_flow(image_shape, num_levels, steps_per_level, hidden_channels, num_couplings, hidden_units,
                             num_hidden_layers, volume_preserving, log_scale_clamp, seed)
    preprocessing = flow_layers.FlowSequence([DataNoise(data_noise, seed=seed, name="data_noise")], name="preprocessing")
    return FlowModel(flow, input_shape=tuple(image_shape), prior=_prior(learnable_prior, spread_std, seed),
                     preprocessing=preprocessing, name=name)


# -------------------------------------------------------------- training
@keras.saving.register_keras_serializable(package="flow_zoo")
class AdamL2(keras.optimizers.Adam):
    """Adam with a coupled L2 weight decay: the gradient becomes ``g + l2 * w`` before the Adam update.

    This is ``torch.optim.Adam(weight_decay=l2)``, what the spread paper's
    reference uses, and unlike AdamW's decoupled decay it passes through
    Adam's per-coordinate normalization: entries of ``A`` whose data gradient
    is only noise are pulled to zero at the learning rate instead of random
    walking by it (with ``D (D + 1) / 2`` such entries, that random walk
    alone would make every eigenvalue of ``A A^T`` grow).

    Args:
        l2: float >= 0, the decay coefficient.
        **kwargs: ``keras.optimizers.Adam`` arguments.
    """

    def __init__(self, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        if not l2 >= 0:
            raise ValueError(f"AdamL2: `l2` must be >= 0; received {l2}.")
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = ops.add(ops.cast(gradient, variable.dtype), ops.multiply(self.l2, variable))
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["l2"] = self.l2
        return config


def spread_optimizer(learning_rate=5e-4, weight_decay=0.1, decay_every=None, decay_rate=0.9, coupled=True):
    """Adam with weight decay 0.1 (the reference's, appendix C.4) and the paper's step-decayed learning rate.

    ``coupled=True`` (images): ``AdamL2``, the reference's
    ``torch.optim.Adam(weight_decay=...)`` form, whose decay passes through
    Adam's normalization and keeps the ``D (D + 1) / 2`` entries of ``A``
    from random walking. The reference applies 0.1 to a loss in nats per
    example; ``FlowModel``'s loss is bits per dimension (``D ln 2`` times
    smaller), so the same coefficient is relatively stronger here, which
    budgets of hundreds instead of 20k steps need (measured on 16x16 fading
    squares: K = 1 with it, eigenvalues growing to K = 256 with AdamW).

    ``coupled=False`` (low-dimensional vectors): ``keras.optimizers.AdamW``,
    decoupled decay ``w <- w - lr * weight_decay * w``. The objective (term 2
    of the spread KL only) rewards shrinking the latent manifold, and the
    decay on the flow's weights is what keeps the S-curve from collapsing to
    a curve (measured: K = 2 with AdamW 0.1, K = 1 without decay, slow
    convergence with the coupled form).

    Args:
        learning_rate: float, initial learning rate.
        weight_decay: float >= 0.
        decay_every: int or None; multiply the learning rate by ``decay_rate``
            every ``decay_every`` steps (staircase), as the paper does.
        decay_rate: float in (0, 1].
        coupled: Python bool, ``AdamL2`` (True) or ``AdamW`` (False).

    Returns:
        A Keras optimizer.
    """
    if decay_every:
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            learning_rate, decay_steps=int(decay_every), decay_rate=decay_rate, staircase=True
        )
    if coupled:
        return AdamL2(l2=weight_decay, learning_rate=learning_rate)
    return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)


class DataNoiseAnnealing(keras.callbacks.Callback):
    """Anneals the ``layers.DataNoise`` of a model during ``fit``, never below a floor.

    After ``start_step`` optimizer steps, every ``every_steps`` steps the
    noise standard deviation is multiplied by ``factor`` and clipped at
    ``floor`` (section 7.4: 0.05, annealed by 0.9 every 10k iterations after
    2000k, floor 0.01). Steps are the optimizer's iteration count, so
    annealing continues across several ``fit`` calls.

    Args:
        start_step: int >= 0.
        every_steps: int >= 1.
        factor: float in (0, 1].
        floor: float >= 0, the smallest noise standard deviation.
    """

    def __init__(self, start_step=2_000_000, every_steps=10_000, factor=0.9, floor=0.01):
        super().__init__()
        if start_step < 0 or every_steps < 1 or not 0 < factor <= 1 or floor < 0:
            raise ValueError(
                "DataNoiseAnnealing: needs start_step >= 0, every_steps >= 1, 0 < factor <= 1 and floor >= 0; "
                f"received {start_step}, {every_steps}, {factor}, {floor}."
            )
        self.start_step, self.every_steps, self.factor, self.floor = int(start_step), int(every_steps), factor, floor

    def noise_layers(self):
        found = [l for l in self.model._flatten_layers(include_self=False, recursive=True) if isinstance(l, DataNoise)]
        if not found:
            raise ValueError("DataNoiseAnnealing: the model has no layers.DataNoise to anneal.")
        return found

    def on_train_batch_end(self, batch, logs=None):
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        if step <= self.start_step or (step - self.start_step) % self.every_steps:
            return
        for layer in self.noise_layers():
            current = float(ops.convert_to_numpy(layer.stddev))
            layer.stddev.assign(max(self.floor, current * self.factor))


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

    def call(self, inputs, training=False):
        flow_layers.check_example_shape(inputs, self.image_shape, "x", self.name)
        x = ops.reshape(ops.cast(inputs, "float32"), (ops.shape(inputs)[0], -1))
        stats = self.encoder(x)
        mean, log_var = stats[:, : self.latent_dim], stats[:, self.latent_dim :]
        eps = flow_layers.batch_noise(ops.shape(mean), "float32", self.seed_generator)
        z = mean + ops.exp(0.5 * log_var) * eps
        residual = (x - self.decoder(z)) / self.decoder_std
        size = x.shape[-1]
        log_lik = -0.5 * ops.sum(ops.square(residual), axis=-1) - size * (math.log(self.decoder_std) + 0.5 * math.log(2 * math.pi))
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


# ---------------------------------------------------------------- presets
def _register_presets():
    vectors = {
        "sin": dict(dim=2, num_couplings=2, hidden_units=24, num_hidden_layers=3, seed=0),
        "scurve": dict(dim=3, num_couplings=6, hidden_units=24, num_hidden_layers=3, seed=0),
    }
    images = {
        "fading_square": dict(image_shape=(32, 32, 1), steps_per_level=2, hidden_channels=16, num_couplings=2,
                              hidden_units=24, num_hidden_layers=3, data_noise=0.0, seed=0),
        "mnist": dict(image_shape=(28, 28, 1), steps_per_level=4, hidden_channels=16, num_couplings=2,
                      hidden_units=24, num_hidden_layers=3, data_noise=0.05, seed=0),
    }
    tables = {"sin": "table 1", "scurve": "table 2", "fading_square": "table 3", "mnist": "table 4"}
    for dataset, config in list(vectors.items()) + list(images.items()):
        builder = make_spread_vector if dataset in vectors else make_spread_image
        shape = (config["dim"],) if dataset in vectors else config["image_shape"]
        kind = "float vectors" if dataset in vectors else "float images in [0, 1]"
        registry.register(
            f"spread_{dataset}", builder, dict(config, spread_std=PAPER_SPREAD_STD),
            family="spread", dataset=dataset, paper=SPREAD_PAPER, input_shape=shape,
            description=f"Volume-preserving coupling flow ({tables[dataset]}) + learnable prior N(0, AA^T) spread by "
                        f"sigma_Z = {PAPER_SPREAD_STD}; {kind}; intrinsic dimension = rank of AA^T.",
        )
        registry.register(
            f"nf_spread_{dataset}", builder, dict(config, volume_preserving=False, learnable_prior=False),
            family="nf_spread", dataset=dataset, paper=SPREAD_PAPER, input_shape=shape,
            description=f"The spread paper's baseline for {dataset}: same flow ({tables[dataset]}) with "
                        f"non-volume-preserving couplings and a fixed N(0, I) prior; {kind}.",
        )


_register_presets()
