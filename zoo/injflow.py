r"""Relaxed injective flows (InjFlow, InjFlow-ln) and the regularized autoencoders they are compared with.

An injective decoder ``g: R^d -> R^D`` pushes a latent density onto the
d-dimensional manifold ``g(R^d)``; an amortized encoder ``h`` inverts it on the
manifold. For ``x = g(h(x))`` the injective change of variables (paper eq. 3) is
``ln p(x) = ln p_z(h(x)) - 1/2 ln det(J^T J)``, ``J = J_g(h(x))``, and its
lower bounds (4) and (5) replace the determinant by ``||J||_F^2``, estimated
with Hutchinson's estimator from one Jacobian-vector product per example
(``layers.jacobian``). Penalty method on the constraint ``x = g(h(x))`` and on
local injectivity gives the training objectives (per example, minimized):

* InjFlow (eq. 10): ``w ||h(x)||^2 + mu ||x - g(h(x))||^2 + 1/(2 lambda)
  max(||J v||^2, eta^2 ||v||^2) + mu_in [||J v|| / ||v|| - eta]_-^2``;
* InjFlow-ln (eq. 9): the same with ``d/2 ln max(||J v||^2, eta^2 ||v||^2)``;

with ``w = 1/(2 sigma^2)`` (``prior_weight``), ``v ~ N(0, I_d)`` (one draw per
example) and ``mu = mu_in = 1 + i nu / 1000`` at training step ``i``
(``penalty_growth = nu``). ``i`` is the non-trainable weight ``penalty_step``,
incremented by every training forward pass, so it is saved with the weights
and a resumed run resumes the schedule.

The baselines of the paper's table 1 share the encoder / decoder:
``Autoencoder`` (AE; AE+L2 with ``decoder_weight_decay``; AE+SN with
``spectral_norm=True``), ``ContractiveAutoencoder`` (CAE: Hutchinson estimate
of the encoder Jacobian's squared Frobenius norm) and
``VariationalAutoencoder`` (VAE with ``decoder_std = 1``; beta-VAE with
``beta = decoder_std^2``).

Sampling (paper section 2.2.1): after training, ``fit_priors`` fits a
full-covariance Gaussian and a 10-component GMM (scikit-learn's
``GaussianMixture``) to the encoded training data; both are held as
non-trainable weights of ``GaussianMixturePrior`` layers and evaluated as
TensorFlow Probability distributions, so ``sample``, ``log_prob`` and the
SavedModel export need no scikit-learn.

Pixels: models take uint8 images; the networks see ``x / 255`` in [0, 1]
(every norm above is in those units); decoded images are rounded to uint8
(``output="uint8"``) or clipped to [0, 1] (``output="float"``).

Reference:
    Kumar, Poole & Murphy, "Regularized Autoencoders via Relaxed Injective
    Probability Flow", AISTATS 2020.
"""

import math

import keras
import numpy as np
from keras import ops

from layers import jacobian as jacobian_lib
from layers.base import check_example_shape
from layers.checks import check_finite, check_integer_range
from layers.priors import LatentPrior
from layers.seeds import batch_noise, draw_noise
from zoo import registry
from zoo.flow_model import FlowModel, replica_share, weighted_mean

PAPER = "Kumar, Poole & Murphy, Regularized Autoencoders via Relaxed Injective Probability Flow, AISTATS 2020"

# Encoder: 5 convolutions (channels hidden_channels * 2^i) + a dense layer to the latent;
# decoder: a dense layer + 5 transposed convolutions (channels 8, 4, 2, 1 x hidden_channels, then the
# image channels). The paper's supplementary (strides and kernels per dataset) is not available; these
# strides keep the layer count of the paper and end at the image size.
ARCHITECTURES = {
    "mnist": dict(image_shape=(28, 28, 1), encoder_strides=(2, 2, 2, 2, 1), decoder_strides=(2, 2, 1, 1, 1),
                  kernel_size=4),
    "cifar10": dict(image_shape=(32, 32, 3), encoder_strides=(2, 2, 2, 2, 1), decoder_strides=(2, 2, 2, 1, 1),
                    kernel_size=4),
    "celeba": dict(image_shape=(64, 64, 3), encoder_strides=(2, 2, 2, 2, 2), decoder_strides=(2, 2, 2, 2, 1),
                   kernel_size=4),
    "digits": dict(image_shape=(8, 8, 1), encoder_strides=(1, 2, 1, 2, 1), decoder_strides=(2, 2, 1, 1, 1),
                   kernel_size=3),
}
PAPER_LATENT_DIMS = {"mnist": 32, "cifar10": 128, "celeba": 128}


def _tfd():
    """TensorFlow Probability's distributions (TensorFlow backend)."""
    if keras.backend.backend() != "tensorflow":
        raise NotImplementedError(
            "GaussianMixturePrior.distribution() is a TensorFlow Probability distribution and needs the TensorFlow "
            "backend (TFP's JAX substrate does not import with this JAX); log_prob and sample work on every backend."
        )
    import tensorflow_probability as tfp

    return tfp.distributions


# ------------------------------------------------------------------ post-hoc prior


def _component_thresholds(weights):
    """``Phi^-1`` of the cumulative mixture weights (the last, +inf, stored as 1e30), float32."""
    from scipy.special import ndtri

    cumulative = np.cumsum(np.asarray(weights, np.float64))
    cumulative[-1] = 1.0
    return np.minimum(ndtri(np.clip(cumulative, 0.0, 1.0)), 1e30).astype("float32")


@keras.saving.register_keras_serializable(package="flow_zoo")
class GaussianMixturePrior(LatentPrior, keras.layers.Layer):
    """A full-covariance Gaussian mixture over the latent, fitted after training.

    Held as non-trainable weights (``logits``, ``means``, ``scale_tril``, the
    Cholesky factors of the covariances) and evaluated as a TensorFlow
    Probability ``MixtureSameFamily(Categorical, MultivariateNormalTriL)``
    (``distribution()``). Until ``fit`` (or ``set_parameters``) is called it is
    the unit Gaussian (``is_fitted`` is False).

    Sampling is a deterministic map of standard-normal noise (what exported
    samplers run): for ``K > 1`` components the noise has ``d + 1``
    coordinates; the first, ``u``, picks the component k with
    ``t_(k-1) < u <= t_k``, ``t_k = Phi^-1(w_1 + ... + w_k)`` (so with
    probability ``w_k``; the thresholds are a weight set with the mixture,
    so the graph needs only comparisons: LiteRT has no ``erf``), the others
    give ``z = mean_k + temperature * L_k eps``.
    Temperature multiplies every component's standard deviation.

    Args:
        latent_dim: int, d.
        num_components: int K (1: a single full-covariance Gaussian).
        **kwargs: standard layer arguments.

    Example:

    >>> prior = GaussianMixturePrior(8, num_components=10)
    >>> prior.fit(encoded_training_data, seed=0)
    >>> z = prior.sample(16, temperature=1.0, seed=0)
    """

    def __init__(self, latent_dim, num_components=10, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(latent_dim, int) and latent_dim >= 1):
            raise ValueError(f"`latent_dim` must be an int >= 1; received {latent_dim!r}.")
        if not (isinstance(num_components, int) and num_components >= 1):
            raise ValueError(f"`num_components` must be an int >= 1; received {num_components!r}.")
        self.latent_dim = latent_dim
        self.num_components = num_components

    def build(self, input_shape=None):
        k, d = self.num_components, self.latent_dim
        self.logits = self.add_weight(shape=(k,), initializer="zeros", trainable=False, name="logits")
        self.means = self.add_weight(shape=(k, d), initializer="zeros", trainable=False, name="means")
        eye = np.broadcast_to(np.eye(d, dtype="float32"), (k, d, d)).copy()
        self.scale_tril = self.add_weight(shape=(k, d, d), initializer=keras.initializers.Constant(eye),
                                          trainable=False, name="scale_tril")
        self.thresholds = self.add_weight(shape=(k,), initializer=keras.initializers.Constant(
            _component_thresholds(np.full(k, 1.0 / k))), trainable=False, name="component_thresholds")
        self.fitted = self.add_weight(shape=(), initializer="zeros", trainable=False, name="fitted")
        self.built = True

    @property
    def latent_shape(self):
        return (self.latent_dim,)

    @property
    def is_fitted(self):
        return bool(ops.convert_to_numpy(self.fitted) > 0.5)

    @property
    def noise_shapes(self):
        """Per-example noise shapes: ``(d + 1,)`` for a mixture (component coordinate first), ``(d,)`` for K = 1."""
        extra = 1 if self.num_components > 1 else 0
        return (self.latent_dim + extra,), None

    # -------------------------------------------------------------- fitting
    def set_parameters(self, weights, means, covariances):
        """Sets the mixture from weights ``(K,)``, means ``(K, d)`` and covariances ``(K, d, d)`` (NumPy)."""
        k, d = self.num_components, self.latent_dim
        weights = np.asarray(weights, np.float64).reshape(-1)
        means = np.asarray(means, np.float64)
        covariances = np.asarray(covariances, np.float64)
        if weights.shape != (k,) or means.shape != (k, d) or covariances.shape != (k, d, d):
            raise ValueError(
                f"{self.name}: expected weights ({k},), means ({k}, {d}), covariances ({k}, {d}, {d}); received "
                f"{weights.shape}, {means.shape}, {covariances.shape}."
            )
        if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(means)) and np.all(np.isfinite(covariances))):
            raise ValueError(f"{self.name}: mixture parameters contain NaN or infinite values.")
        if np.any(weights <= 0) or not np.isclose(weights.sum(), 1.0, atol=1e-6):
            raise ValueError(f"{self.name}: mixture weights must be positive and sum to 1; received {weights}.")
        try:
            chol = np.linalg.cholesky((covariances + np.swapaxes(covariances, 1, 2)) / 2)
        except np.linalg.LinAlgError as error:
            raise ValueError(f"{self.name}: covariances must be symmetric positive definite ({error}).") from None
        self.logits.assign(np.log(weights).astype("float32"))
        self.thresholds.assign(_component_thresholds(weights))
        self.means.assign(means.astype("float32"))
        self.scale_tril.assign(chol.astype("float32"))
        self.fitted.assign(1.0)

    def fit(self, latents, seed=0, max_iter=200, reg_covar=1e-6):
        """Fits the mixture to ``latents`` ``(n, d)`` with scikit-learn's ``GaussianMixture`` (full covariances, EM).

        Returns:
            dict with ``converged``, ``iterations`` and ``mean_log_likelihood``
            (per example, of the fitted mixture on ``latents``).
        """
        from sklearn.mixture import GaussianMixture

        x = np.asarray(ops.convert_to_numpy(latents), np.float64)
        if x.ndim != 2 or x.shape[1] != self.latent_dim:
            raise ValueError(f"{self.name}.fit: `latents` must be (n, {self.latent_dim}); received {x.shape}.")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{self.name}.fit: `latents` contain NaN or infinite values; the encoder diverged?")
        if len(x) < max(2, self.num_components):
            raise ValueError(
                f"{self.name}.fit: needs at least {max(2, self.num_components)} encoded examples for "
                f"{self.num_components} component(s); received {len(x)}."
            )
        mixture = GaussianMixture(self.num_components, covariance_type="full", random_state=seed, max_iter=max_iter,
                                  reg_covar=reg_covar).fit(x)
        self.set_parameters(mixture.weights_ / mixture.weights_.sum(), mixture.means_, mixture.covariances_)
        return {"converged": bool(mixture.converged_), "iterations": int(mixture.n_iter_),
                "mean_log_likelihood": float(mixture.score(x))}

    # ---------------------------------------------------------- evaluation
    def distribution(self):
        """The mixture as a TensorFlow Probability distribution (event shape ``(d,)``)."""
        tfd = _tfd()
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=ops.convert_to_tensor(self.logits)),
            components_distribution=tfd.MultivariateNormalTriL(
                loc=ops.convert_to_tensor(self.means), scale_tril=ops.convert_to_tensor(self.scale_tril)),
        )

    def log_prob(self, z, training=None):
        """Per-example ``log p(z)`` (nats), shape ``(batch,)``: the TFP distribution's on TensorFlow, else ``log_prob_ops``."""
        del training
        if keras.backend.backend() == "tensorflow":
            return self.distribution().log_prob(ops.cast(z, "float32"))
        return self.log_prob_ops(z)

    def log_prob_ops(self, z):
        """The same log-density in plain ``keras.ops`` (triangular solves and a log-sum-exp; any backend)."""
        z = ops.cast(z, "float32")
        means, scales = ops.convert_to_tensor(self.means), ops.convert_to_tensor(self.scale_tril)
        diff = ops.transpose(z[:, None, :] - means[None], (1, 2, 0))  # (K, d, batch)
        white = ops.solve_triangular(scales, diff, lower=True)
        log_det = ops.sum(ops.log(ops.diagonal(scales, axis1=-2, axis2=-1)), axis=-1)  # (K,)
        component = (-0.5 * ops.sum(ops.square(white), axis=1) - log_det[:, None]
                     - 0.5 * self.latent_dim * math.log(2.0 * math.pi))  # (K, batch)
        log_weights = ops.log_softmax(ops.convert_to_tensor(self.logits))
        return ops.logsumexp(component + log_weights[:, None], axis=0)

    def call(self, inputs):
        return self.log_prob(inputs)

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0):
        """Latents from given standard-normal noise of shape ``(batch,) + noise_shapes[0]`` (see the class docstring)."""
        del observation_noise, noise_scale
        noise = ops.cast(latent_noise, "float32")
        if self.num_components > 1:
            u, eps = noise[:, 0], noise[:, 1:]
            thresholds = ops.convert_to_tensor(self.thresholds)[:-1]
            component = ops.sum(ops.cast(u[:, None] > thresholds[None, :], "int32"), axis=1)
        else:
            eps = noise
            component = ops.zeros((ops.shape(noise)[0],), "int32")
        means = ops.take(ops.convert_to_tensor(self.means), component, axis=0)
        scales = ops.take(ops.convert_to_tensor(self.scale_tril), component, axis=0)
        return means + ops.cast(temperature, "float32") * ops.einsum("bij,bj->bi", scales, eps)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "num_components": self.num_components}


# ------------------------------------------------------------------ networks


def build_encoder(image_shape, output_dim, hidden_channels=64, strides=(2, 2, 2, 2, 1), kernel_size=4,
                  batch_norm_momentum=0.99, name="encoder"):
    """The paper's encoder: 5 x (Conv2D -> BatchNorm -> ELU), channels ``hidden_channels * 2^i``, then Dense."""
    model = keras.Sequential(name=name)
    model.add(keras.Input(tuple(image_shape)))
    for i, stride in enumerate(strides):
        model.add(keras.layers.Conv2D(hidden_channels * 2**i, kernel_size, strides=stride, padding="same",
                                      name=f"conv_{i}"))
        model.add(keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=f"bn_{i}"))
        model.add(keras.layers.ELU(name=f"elu_{i}"))
    model.add(keras.layers.Flatten(name="flatten"))
    model.add(keras.layers.Dense(output_dim, name="latent"))
    return model


def build_decoder(image_shape, latent_dim, hidden_channels=64, strides=(2, 2, 1, 1, 1), kernel_size=4,
                  batch_norm_momentum=0.99, spectral_norm=False, weight_decay=0.0, name="decoder"):
    """The paper's decoder: Dense -> BatchNorm -> ELU, then 5 transposed convolutions (the last is linear).

    Channels ``16, 8, 4, 2, 1 x hidden_channels`` and the image channels; the
    dense layer's output is ``image size / prod(strides)`` square.
    ``spectral_norm`` wraps every dense / transposed-conv layer in
    ``keras.layers.SpectralNormalization`` (AE+SN); ``weight_decay`` adds an
    L2 penalty on their kernels (AE+L2).
    """
    height, width, channels = (int(s) for s in image_shape)
    factor = math.prod(strides)
    if height % factor or width % factor:
        raise ValueError(f"Decoder strides {tuple(strides)} (total {factor}) must divide the image size {height}x{width}.")
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay else None
    wrap = (lambda layer: keras.layers.SpectralNormalization(layer, name=f"sn_{layer.name}")) if spectral_norm else (
        lambda layer: layer)
    top = 16 * hidden_channels
    model = keras.Sequential(name=name)
    model.add(keras.Input((latent_dim,)))
    model.add(wrap(keras.layers.Dense((height // factor) * (width // factor) * top, kernel_regularizer=regularizer,
                                      name="dense")))
    model.add(keras.layers.BatchNormalization(momentum=batch_norm_momentum, name="bn_dense"))
    model.add(keras.layers.ELU(name="elu_dense"))
    model.add(keras.layers.Reshape((height // factor, width // factor, top), name="reshape"))
    filters = [hidden_channels * 2**i for i in (3, 2, 1, 0)] + [channels]
    for i, (f, stride) in enumerate(zip(filters, strides)):
        model.add(wrap(keras.layers.Conv2DTranspose(f, kernel_size, strides=stride, padding="same",
                                                    kernel_regularizer=regularizer, name=f"deconv_{i}")))
        if i < len(filters) - 1:
            model.add(keras.layers.BatchNormalization(momentum=batch_norm_momentum, name=f"bn_{i}"))
            model.add(keras.layers.ELU(name=f"elu_{i}"))
    return model


# ------------------------------------------------------------------ models


@keras.saving.register_keras_serializable(package="flow_zoo")
class Autoencoder(keras.Model):
    """Autoencoder with the paper's encoder / decoder, post-hoc priors and the zoo's sampling API (AE, AE+L2, AE+SN).

    Objective per example (minimized): ``mu ||x - g(h(x))||^2`` with ``mu =
    1 + i * penalty_growth / 1000`` (0 growth: the plain AE of the paper),
    plus ``decoder_weight_decay * ||decoder kernels||^2`` (AE+L2). Calling the
    model returns the per-example objective (fresh random draws when
    training, draws from ``eval_seed`` otherwise), so ``compile(optimizer)`` +
    ``fit(images)`` trains it and ``evaluate`` reports it; labels are ignored.

    Args:
        image_shape: ``(H, W, C)``.
        latent_dim: d.
        hidden_channels: channels of the first encoder convolution (doubling per layer).
        encoder_strides: five strides of the encoder convolutions.
        decoder_strides: five strides of the decoder's transposed convolutions.
        kernel_size: convolution kernel size.
        batch_norm_momentum: momentum of the batch-norm moving statistics.
        decoder_weight_decay: L2 weight on the decoder kernels (AE+L2).
        spectral_norm: spectral normalization of every decoder layer (AE+SN).
        penalty_growth: nu of the schedule ``mu = 1 + i nu / 1000``.
        num_components: components of the post-hoc GMM (the paper: 10).
        sampling_prior: ``"gmm"`` or ``"gaussian"``: which post-hoc prior
            ``sample``, ``generate`` and ``log_prob`` use (``model.prior``).
        eval_seed: seed of the random draws of the objective when not training.
        seed: seed of the training-time draws (None: random).
        **kwargs: ``keras.Model`` arguments (``name``).

    Example:

    >>> model = zoo.get("ae_digits_8")
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> model.fit(images_uint8, batch_size=64, epochs=20)
    >>> model.fit_priors(images_uint8)
    >>> samples = model.sample(16, seed=0)  # uint8 images from the post-hoc GMM
    """

    encoder_outputs = 1  # latent vectors per example the encoder emits (2 for a VAE: mean, log-variance)

    def __init__(self, image_shape, latent_dim, hidden_channels=64, encoder_strides=(2, 2, 2, 2, 1),
                 decoder_strides=(2, 2, 1, 1, 1), kernel_size=4, batch_norm_momentum=0.99, decoder_weight_decay=0.0,
                 spectral_norm=False, penalty_growth=0.0, num_components=10, sampling_prior="gmm", eval_seed=0,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.example_shape = tuple(int(s) for s in image_shape)
        if len(self.example_shape) != 3:
            raise ValueError(f"`image_shape` must be (H, W, C); received {image_shape!r}.")
        if not (isinstance(latent_dim, int) and latent_dim >= 1):
            raise ValueError(f"`latent_dim` must be an int >= 1; received {latent_dim!r}.")
        if len(encoder_strides) != 5 or len(decoder_strides) != 5:
            raise ValueError("`encoder_strides` and `decoder_strides` need five entries each (the paper's 5 layers).")
        if sampling_prior not in ("gmm", "gaussian"):
            raise ValueError(f"`sampling_prior` must be 'gmm' or 'gaussian'; received {sampling_prior!r}.")
        if penalty_growth < 0 or decoder_weight_decay < 0:
            raise ValueError("`penalty_growth` and `decoder_weight_decay` must be >= 0.")
        self.latent_dim = latent_dim
        self.hidden_channels = int(hidden_channels)
        self.encoder_strides = tuple(int(s) for s in encoder_strides)
        self.decoder_strides = tuple(int(s) for s in decoder_strides)
        self.kernel_size = int(kernel_size)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.decoder_weight_decay = float(decoder_weight_decay)
        self.spectral_norm = bool(spectral_norm)
        self.penalty_growth = float(penalty_growth)
        self.num_components = int(num_components)
        self.sampling_prior = sampling_prior
        self.eval_seed = int(eval_seed)
        self.seed = seed
        self.num_dims = math.prod(self.example_shape)
        self.latent_shape = (latent_dim,)
        self.encoder = build_encoder(self.example_shape, latent_dim * self.encoder_outputs, self.hidden_channels,
                                     self.encoder_strides, self.kernel_size, self.batch_norm_momentum)
        self.decoder = build_decoder(self.example_shape, latent_dim, self.hidden_channels, self.decoder_strides,
                                     self.kernel_size, self.batch_norm_momentum, self.spectral_norm,
                                     self.decoder_weight_decay)
        self.gaussian_prior = GaussianMixturePrior(latent_dim, 1, name="gaussian_prior")
        self.gmm_prior = GaussianMixturePrior(latent_dim, self.num_components, name="gmm_prior")
        self.gaussian_prior.build()
        self.gmm_prior.build()
        self.penalty_step = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False,
                                            name="penalty_step", aggregation="only_first_replica")
        self.seed_generator = keras.random.SeedGenerator(seed, name="objective_seed")
        self.built = True

    # ----------------------------------------------------------- properties
    is_image_model = True
    n_bits = None  # 8-bit pixels in, 8-bit pixels out

    @property
    def prior(self):
        """The post-hoc prior that ``sample``, ``generate`` and ``log_prob`` use (``sampling_prior``)."""
        return self.gmm_prior if self.sampling_prior == "gmm" else self.gaussian_prior

    @property
    def noise_shapes(self):
        """Per-example shapes of the noise ``sample`` draws: (latent noise, None)."""
        return self.prior.noise_shapes

    def penalty_coefficient(self, step=None):
        """``1 + i * penalty_growth / 1000`` at step ``i`` (default: the model's ``penalty_step``)."""
        step = ops.cast(self.penalty_step if step is None else step, "float32")
        return 1.0 + step * (self.penalty_growth / 1000.0)

    # ----------------------------------------------------------- data
    def _pixels(self, x, name="x"):
        """uint8 pixels (checked) -> float32 in [0, 1]."""
        check_example_shape(x, self.example_shape, name, self.name)
        x = check_integer_range(x, 0, 255, name, self.name, hint="pass images as uint8 pixels in [0, 255].")
        return ops.cast(x, "float32") / 255.0

    def _images(self, x01, output):
        if output == "uint8":
            return ops.cast(ops.clip(ops.round(x01 * 255.0), 0.0, 255.0), "uint8")
        if output == "float":
            return ops.clip(x01, 0.0, 1.0)
        raise ValueError(f"{self.name}: `output` must be 'uint8' or 'float'; received {output!r}.")

    def _noise(self, shape, training):
        seed = self.seed_generator if training else self.eval_seed
        return batch_noise(shape, "float32", seed)

    # ----------------------------------------------------------- objective
    def _latent(self, x01, training):
        """Encoder -> latent used by the objective; returns ``(z, extra per-example terms)``."""
        return self.encoder(x01, training=training), {}

    def objective_terms(self, x, training=False):
        """Per-example terms of the training objective (dict of ``(batch,)`` tensors; their sum is minimized)."""
        x01 = self._pixels(x)
        mu = self.penalty_coefficient()
        z, terms = self._latent(x01, training)
        x_hat = self.decoder(z, training=training)
        terms["reconstruction"] = mu * jacobian_lib.squared_norm(x01 - x_hat)
        return terms

    def call(self, inputs, training=False):
        terms = self.objective_terms(inputs, training=training)
        if training:
            self.penalty_step.assign_add(1)
        return sum(terms.values())

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Weighted mean of the per-example objective plus weight penalties (``y`` is ignored)."""
        if y_pred is None:
            y_pred = self(x, training=training)
        loss = weighted_mean(y_pred, sample_weight)
        for penalty in self.losses:
            loss = loss + ops.cast(penalty, loss.dtype)
        return replica_share(loss)

    # ----------------------------------------------------------- data <-> latent
    def encode(self, x, stochastic=False, seed=None):
        """uint8 images -> latents ``h(x)`` of shape ``(batch, d)`` (batch norm with moving statistics)."""
        del stochastic, seed
        return self.encoder(self._pixels(x), training=False)

    def _check_latent(self, latent, name="latent"):
        check_example_shape(latent, self.latent_shape, name, self.name)
        return ops.cast(check_finite(latent, name, self.name), "float32")

    def decode(self, latent, noise_scale=0.0, seed=None, output="uint8", noise=None):
        """Latents -> images ``g(z)`` (uint8, or floats in [0, 1] with ``output="float"``).

        ``noise_scale``, ``seed`` and ``noise`` are accepted for the zoo's
        common API and ignored: the decoder adds no observation noise, so
        decoded images lie on the learned manifold.
        """
        del noise_scale, seed, noise
        return self._images(self.decoder(self._check_latent(latent), training=False), output)

    def reconstruct(self, x, output="uint8"):
        """``g(h(x))`` as images."""
        return self.decode(self.encode(x), output=output)

    # ----------------------------------------------------------- post-hoc priors and sampling
    def encode_dataset(self, images, batch_size=256):
        """Encodes ``images`` in batches; returns a NumPy ``(n, d)`` array."""
        return np.concatenate([np.asarray(ops.convert_to_numpy(self.encode(images[i:i + batch_size])))
                               for i in range(0, len(images), batch_size)])

    def fit_priors(self, images, batch_size=256, seed=0):
        """Fits the full-covariance Gaussian and the GMM (paper section 2.2.1) to the encoded ``images``.

        Uses scikit-learn's ``GaussianMixture``; afterwards sampling and export
        need only TensorFlow (Probability).

        Returns:
            ``{"gaussian": fit info, "gmm": fit info}`` (see ``GaussianMixturePrior.fit``).
        """
        latents = self.encode_dataset(images, batch_size)
        return {"gaussian": self.gaussian_prior.fit(latents, seed=seed), "gmm": self.gmm_prior.fit(latents, seed=seed)}

    def _select_prior(self, prior):
        if prior is None:
            return self.prior
        if prior not in ("gmm", "gaussian"):
            raise ValueError(f"{self.name}: `prior` must be None, 'gmm' or 'gaussian'; received {prior!r}.")
        return self.gmm_prior if prior == "gmm" else self.gaussian_prior

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0, output="uint8",
                 prior=None):
        """Images from given standard-normal noise (shape ``(batch,) + noise_shapes[0]``); what exports run."""
        prior = self._select_prior(prior)
        check_example_shape(latent_noise, prior.noise_shapes[0], "latent_noise", self.name)
        latent_noise = check_finite(latent_noise, "latent_noise", self.name)
        return self.decode(prior.generate(latent_noise, observation_noise, temperature, noise_scale), output=output)

    def sample(self, num_samples, temperature=1.0, noise_scale=1.0, seed=None, output="uint8", prior=None):
        """Draws ``num_samples`` images: latents from the post-hoc prior, decoded by g.

        Args:
            num_samples: int.
            temperature: float >= 0, multiplies the prior's standard deviation.
            noise_scale: accepted for the common API; no effect (no observation noise).
            seed: int or None; equal seeds give equal samples.
            output: ``"uint8"`` or ``"float"``.
            prior: None (``model.prior``), ``"gmm"`` or ``"gaussian"``.

        Before ``fit_priors`` the priors are the unit Gaussian (a VAE's own prior).
        """
        if temperature < 0 or noise_scale < 0:
            raise ValueError(f"{self.name}.sample: temperature and noise_scale must be >= 0; received "
                             f"temperature={temperature}, noise_scale={noise_scale}.")
        noise = draw_noise(self._select_prior(prior).noise_shapes, int(num_samples), seed)[0]
        return self.generate(noise, None, temperature, noise_scale, output=output, prior=prior)

    # ----------------------------------------------------------- density on the manifold
    def _decoder_inference(self, z):
        return self.decoder(z, training=False)

    def log_prob(self, x, exact=False):
        """Lower bound (5) of the paper on ``ln p(x)`` on the learned manifold (nats, x in [0, 1] units).

        ``ln p(x) >= ln p_z(h(x)) - d/2 ln(||J_g(h(x))||_F^2 / d)`` with
        ``p_z`` the post-hoc prior (``model.prior``; the unit Gaussian before
        ``fit_priors``) and the exact Frobenius norm from d forward-mode JVPs.
        This is a density on the d-dimensional image of g, valid for x on it
        (``x = g(h(x))``); for x off the manifold it is the value at its
        projection ``g(h(x))``. It is not comparable with full-dimensional
        densities. ``exact=True`` returns the injective change of variables
        (3) itself, ``ln p_z(h(x)) - 1/2 ln det(J^T J)``, from the full
        ``D x d`` Jacobian (the bound is never above it).
        """
        z = self.encode(x)
        if exact:
            volume = -0.5 * jacobian_lib.log_det_jtj(jacobian_lib.jacobian(self._decoder_inference, z))
        else:
            frobenius = jacobian_lib.frobenius_norm_squared(self._decoder_inference, z)
            volume = jacobian_lib.frobenius_log_det_bound(frobenius, self.latent_dim)
        return self.prior.log_prob(z) + volume

    def bits_per_dim(self, x):
        """``-log_prob(x) / (D ln 2)``: the manifold bound per ambient dimension (see ``log_prob``; not an ambient bits/dim)."""
        return -self.log_prob(x) / (self.num_dims * math.log(2.0))

    # ----------------------------------------------------------- serialization
    # ``zoo.weights.save_to_preset`` with this model's facts (n_bits None: 8-bit pixels); ``zoo.get(directory)``
    # rebuilds the model.
    save_to_preset = FlowModel.save_to_preset

    def get_config(self):
        return {
            "name": self.name, "image_shape": list(self.example_shape), "latent_dim": self.latent_dim,
            "hidden_channels": self.hidden_channels, "encoder_strides": list(self.encoder_strides),
            "decoder_strides": list(self.decoder_strides), "kernel_size": self.kernel_size,
            "batch_norm_momentum": self.batch_norm_momentum, "decoder_weight_decay": self.decoder_weight_decay,
            "spectral_norm": self.spectral_norm, "penalty_growth": self.penalty_growth,
            "num_components": self.num_components, "sampling_prior": self.sampling_prior,
            "eval_seed": self.eval_seed, "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="flow_zoo")
class InjectiveFlow(Autoencoder):
    """Relaxed injective probability flow: InjFlow (eq. 10) or InjFlow-ln (eq. 9, ``log_frobenius=True``).

    Objective per example (minimized), ``z = h(x)``, ``v ~ N(0, I_d)``:

        prior_weight ||z||^2 + mu ||x - g(z)||^2 + F(||J v||^2, ||v||^2) + mu [||J v|| / ||v|| - eta]_-^2

    with ``F = 1/(2 lam) max(||Jv||^2, eta^2 ||v||^2)`` (InjFlow) or
    ``d/2 ln max(||Jv||^2, eta^2 ||v||^2)`` (InjFlow-ln), ``J = J_g(z)`` and
    ``mu = 1 + i nu / 1000`` (both penalty coefficients, as in the paper).
    ``J v`` is exact forward mode (``jvp_method="auto"``/``"forward"``) or the
    finite difference of eq. 8 (``"finite_difference"``, step ``epsilon``).

    Args:
        image_shape, latent_dim, ...: as ``Autoencoder``.
        log_frobenius: False: InjFlow (eq. 10); True: InjFlow-ln (eq. 9).
        prior_weight: ``1 / (2 sigma^2)`` of the training prior ``N(0, sigma^2 I)``.
        eta: singular-value threshold of the injectivity penalty (paper: 0.1).
        lam: lambda of bound (4) (paper: 1; InjFlow only).
        jvp_method: ``"auto"``, ``"forward"`` or ``"finite_difference"``.
        epsilon: finite-difference step (paper: 0.01).
        penalty_growth: nu (paper: searched over {1, 1.3}).

    Reference:
        Kumar, Poole & Murphy, AISTATS 2020, eqs. 9 and 10.
    """

    def __init__(self, image_shape, latent_dim, log_frobenius=False, prior_weight=0.01, eta=0.1, lam=1.0,
                 jvp_method="auto", epsilon=jacobian_lib.DEFAULT_EPSILON, penalty_growth=1.0, **kwargs):
        jacobian_lib._check_method(jvp_method)
        if prior_weight < 0 or eta < 0 or not lam > 0 or not epsilon > 0:
            raise ValueError("InjectiveFlow needs prior_weight >= 0, eta >= 0, lam > 0 and epsilon > 0; received "
                             f"{prior_weight}, {eta}, {lam}, {epsilon}.")
        super().__init__(image_shape, latent_dim, penalty_growth=penalty_growth, **kwargs)
        self.log_frobenius = bool(log_frobenius)
        self.prior_weight = float(prior_weight)
        self.eta = float(eta)
        self.lam = float(lam)
        self.jvp_method = jvp_method
        self.epsilon = float(epsilon)

    def objective_terms(self, x, training=False):
        x01 = self._pixels(x)
        mu = self.penalty_coefficient()
        z = self.encoder(x01, training=training)
        v = self._noise(ops.shape(z), training)
        x_hat, jv = jacobian_lib.layer_jvp(self.decoder, z, v, training=training, method=self.jvp_method,
                                           epsilon=self.epsilon)
        jv_sq, v_sq = jacobian_lib.squared_norm(jv), jacobian_lib.squared_norm(v)
        if self.log_frobenius:
            volume = jacobian_lib.log_frobenius_penalty(jv_sq, v_sq, self.eta, self.latent_dim)
        else:
            volume = jacobian_lib.frobenius_penalty(jv_sq, v_sq, self.eta, self.lam)
        return {
            "prior": self.prior_weight * jacobian_lib.squared_norm(z),
            "reconstruction": mu * jacobian_lib.squared_norm(x01 - x_hat),
            "volume": volume,
            "injectivity": mu * jacobian_lib.injectivity_penalty(jv_sq, v_sq, self.eta),
        }

    def get_config(self):
        return {**super().get_config(), "log_frobenius": self.log_frobenius, "prior_weight": self.prior_weight,
                "eta": self.eta, "lam": self.lam, "jvp_method": self.jvp_method, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="flow_zoo")
class ContractiveAutoencoder(Autoencoder):
    """Contractive autoencoder (CAE): ``mu ||x - g(h(x))||^2 + c ||J_h(x)||_F^2``.

    The squared Frobenius norm of the encoder Jacobian (``d x D``) is
    Hutchinson's one-draw estimate ``||J_h u||^2``, ``u ~ N(0, I_D)``, from a
    forward-mode JVP (``jvp_method``), as in the paper.

    Args:
        contraction_weight: c (paper: searched over {0.001, ..., 10}).
        jvp_method, epsilon: as ``InjectiveFlow``.
        **kwargs: as ``Autoencoder``.

    Reference:
        Rifai et al., "Contractive auto-encoders", ICML 2011.
    """

    def __init__(self, image_shape, latent_dim, contraction_weight=0.1, jvp_method="auto",
                 epsilon=jacobian_lib.DEFAULT_EPSILON, **kwargs):
        jacobian_lib._check_method(jvp_method)
        if contraction_weight < 0:
            raise ValueError(f"`contraction_weight` must be >= 0; received {contraction_weight}.")
        super().__init__(image_shape, latent_dim, **kwargs)
        self.contraction_weight = float(contraction_weight)
        self.jvp_method = jvp_method
        self.epsilon = float(epsilon)

    def _latent(self, x01, training):
        u = self._noise(ops.shape(x01), training)
        z, ju = jacobian_lib.layer_jvp(self.encoder, x01, u, training=training, method=self.jvp_method,
                                       epsilon=self.epsilon)
        return z, {"contraction": self.contraction_weight * jacobian_lib.squared_norm(ju)}

    def get_config(self):
        return {**super().get_config(), "contraction_weight": self.contraction_weight,
                "jvp_method": self.jvp_method, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="flow_zoo")
class VariationalAutoencoder(Autoencoder):
    """VAE / beta-VAE with a Gaussian observation model ``N(g(z), decoder_std^2 I)``.

    Objective per example (the negative ELBO without constants):
    ``||x - g(z)||^2 / (2 decoder_std^2) + KL(q(z|x) || N(0, I))`` with
    ``z = mean + std * eps`` (one reparameterized draw). ``decoder_std = 1``
    is the paper's VAE; smaller values are its beta-VAE with ``beta =
    decoder_std^2``. ``encode`` returns the posterior mean (``stochastic=True``:
    a draw); the decoder's mean is the image (no observation noise).

    Reference:
        Kingma & Welling, 2014; Higgins et al., 2017.
    """

    encoder_outputs = 2

    def __init__(self, image_shape, latent_dim, decoder_std=1.0, **kwargs):
        if not decoder_std > 0:
            raise ValueError(f"`decoder_std` must be > 0; received {decoder_std!r}.")
        super().__init__(image_shape, latent_dim, **kwargs)
        self.decoder_std = float(decoder_std)

    def _posterior(self, x01, training):
        stats = self.encoder(x01, training=training)
        return stats[:, :self.latent_dim], stats[:, self.latent_dim:]

    def _latent(self, x01, training):
        mean, log_var = self._posterior(x01, training)
        z = mean + ops.exp(0.5 * log_var) * self._noise(ops.shape(mean), training)
        kl = 0.5 * ops.sum(ops.square(mean) + ops.exp(log_var) - 1.0 - log_var, axis=-1)
        return z, {"kl": kl}

    def objective_terms(self, x, training=False):
        terms = super().objective_terms(x, training)
        terms["reconstruction"] = terms["reconstruction"] / (2.0 * self.decoder_std**2)
        return terms

    def encode(self, x, stochastic=False, seed=None):
        """Posterior mean of ``q(z | x)`` (or a draw from it with ``stochastic=True``)."""
        mean, log_var = self._posterior(self._pixels(x), False)
        if not stochastic:
            return mean
        return mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean), seed=seed)

    def get_config(self):
        return {**super().get_config(), "decoder_std": self.decoder_std}


# ------------------------------------------------------------------ presets

_FAMILIES = {
    # family: (class, extra kwargs, description)
    "injflow": (InjectiveFlow, dict(log_frobenius=False, prior_weight=0.01, eta=0.1, lam=1.0, penalty_growth=1.0),
                "InjFlow (eq. 10, lambda=1, eta=0.1, nu=1, prior weight 0.01)"),
    "injflow_ln": (InjectiveFlow, dict(log_frobenius=True, prior_weight=0.01, eta=0.1, penalty_growth=1.0),
                   "InjFlow-ln (eq. 9, eta=0.1, nu=1, prior weight 0.01)"),
    "ae": (Autoencoder, dict(), "plain autoencoder (l2 reconstruction)"),
    "ae_l2": (Autoencoder, dict(decoder_weight_decay=0.01), "AE + decoder weight decay 0.01"),
    "ae_sn": (Autoencoder, dict(spectral_norm=True), "AE + spectral normalization of every decoder layer"),
    "cae": (ContractiveAutoencoder, dict(contraction_weight=0.1), "contractive AE (Hutchinson encoder-Jacobian "
                                                                  "penalty 0.1)"),
    "vae": (VariationalAutoencoder, dict(decoder_std=1.0), "VAE (decoder sigma^2 = 1)"),
    "beta_vae": (VariationalAutoencoder, dict(decoder_std=0.1), "beta-VAE (decoder sigma = 0.1, beta = 0.01)"),
}


def _register(family, dataset, latent_dim, hidden_channels, description_prefix, extra=None):
    cls, family_kwargs, what = _FAMILIES[family]
    arch = ARCHITECTURES[dataset]
    kwargs = dict(image_shape=arch["image_shape"], latent_dim=latent_dim, hidden_channels=hidden_channels,
                  encoder_strides=arch["encoder_strides"], decoder_strides=arch["decoder_strides"],
                  kernel_size=arch["kernel_size"], **family_kwargs, **(extra or {}))
    registry.register(
        f"{family}_{dataset}_{latent_dim}", cls, kwargs, family=family, dataset=dataset, paper=PAPER,
        input_shape=arch["image_shape"], latent_dim=latent_dim,
        description=f"{description_prefix}{what}; 5-layer conv encoder / transposed-conv decoder (ELU, batch norm, "
                    f"{hidden_channels}-{16 * hidden_channels} channels), d={latent_dim}; post-hoc Gaussian and "
                    "10-component GMM priors.",
    )


def _register_presets():
    for dataset, latent_dim in PAPER_LATENT_DIMS.items():
        for family in _FAMILIES:
            extra = None
            if dataset == "cifar10" and family.startswith("injflow"):
                extra = dict(jvp_method="finite_difference")  # the paper's eq. 8 for CIFAR-10 (section 2.2)
            _register(family, dataset, latent_dim, 64, "Paper configuration (hyperparameters from the paper's search "
                      "grids; the chosen values are not reported): ", extra)
    small = dict(batch_norm_momentum=0.9)
    for family in ("injflow", "injflow_ln", "ae", "vae"):
        _register(family, "digits", 8, 8, "Small CPU preset (not in the paper; scikit-learn's 8x8 digits, "
                  "batch-norm momentum 0.9): ", small)


_register_presets()
