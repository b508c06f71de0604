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

import contextlib

import keras
import numpy as np
from keras import ops

from layers import jacobian as jacobian_lib
from layers.jacobian import batch_jacobian
from layers.numerics import gram_log_det
from layers.priors import GaussianMixturePrior
from layers.seeds import batch_noise
from zoo.data.streaming import StreamingImages
from zoo.models.base import GenerativeModel
from zoo.models.injflow.networks import build_decoder, build_encoder

# ------------------------------------------------------------------ models


@keras.saving.register_keras_serializable(package="flow_zoo")
class Autoencoder(GenerativeModel):
    """Autoencoder with the paper's encoder / decoder, post-hoc priors and the zoo's sampling API (AE, AE+L2, AE+SN).

    Objective per example (minimized): ``mu ||x - g(h(x))||^2`` with ``mu =
    1 + i * penalty_growth / 1000`` (0 growth: the plain AE of the paper),
    plus ``decoder_weight_decay * ||decoder kernels||^2`` (AE+L2). Calling the
    model returns the per-example objective terms (fresh random draws when
    training, draws from ``eval_seed`` otherwise) and the diagnostic
    ``reconstruction_mse``, so ``compile(optimizer)`` + ``fit(images)`` trains
    it and ``evaluate`` reports both; labels are refused unless the model is class-conditional.

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
        num_classes: None, or ``K``: class-conditional post-hoc priors (one
            Gaussian and one GMM per class, fitted by ``fit_priors(images,
            labels=labels)``). The autoencoder itself does not see labels
            (its objective has no prior term to condition), so a class is a
            region of the learned latent space; ``sample``, ``log_prob`` and
            ``classify`` then take / give labels.
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
                 seed=None, num_classes=None, **kwargs):
        if len(tuple(image_shape)) != 3:
            raise ValueError(f"`image_shape` must be (H, W, C); received {image_shape!r}.")
        super().__init__(image_shape, "pixels", n_bits=8, **kwargs)
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
        self.latent_shape = (latent_dim,)
        self.encoder = build_encoder(self.example_shape, latent_dim * self.encoder_outputs, self.hidden_channels,
                                     self.encoder_strides, self.kernel_size, self.batch_norm_momentum)
        self.decoder = build_decoder(self.example_shape, latent_dim, self.hidden_channels, self.decoder_strides,
                                     self.kernel_size, self.batch_norm_momentum, self.spectral_norm,
                                     self.decoder_weight_decay)
        self.gaussian_prior = GaussianMixturePrior(latent_dim, 1, num_classes=num_classes, name="gaussian_prior")
        self.gmm_prior = GaussianMixturePrior(latent_dim, self.num_components, num_classes=num_classes,
                                              name="gmm_prior")
        self.gaussian_prior.build()
        self.gmm_prior.build()
        self.penalty_step = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False,
                                            name="penalty_step", aggregation="only_first_replica")
        self.seed_generator = keras.random.SeedGenerator(seed, name="objective_seed")
        self._track_class_prior()
        self.built = True

    # ----------------------------------------------------------- properties
    density = "manifold"  # log_prob is the paper's bound on the density on the learned d-dim manifold
    diagnostics = ("reconstruction_mse",)
    """``reconstruction_mse``: the mean over pixels of ``(x - g(h(x)))^2`` in [0, 1] units, without the penalty
    coefficient (logged as ``reconstruction_mse`` / ``val_reconstruction_mse``)."""

    @property
    def monitor(self):
        """``val_reconstruction_mse`` when the penalty coefficient grows (InjFlow: the objective's weight on the
        reconstruction rises from 1 with every step, so the held-out objective can rise while every term falls);
        ``val_loss`` for a fixed objective."""
        return "val_reconstruction_mse" if self.penalty_growth > 0 else "val_loss"

    @property
    def prior(self):
        """The post-hoc prior that ``sample``, ``generate`` and ``log_prob`` use (``sampling_prior``)."""
        return self.gmm_prior if self.sampling_prior == "gmm" else self.gaussian_prior

    def penalty_coefficient(self, step=None):
        """``1 + i * penalty_growth / 1000`` at step ``i`` (default: the model's ``penalty_step``)."""
        step = ops.cast(self.penalty_step if step is None else step, "float32")
        return 1.0 + step * (self.penalty_growth / 1000.0)

    # ----------------------------------------------------------- data
    def _pixels(self, x, name="x"):
        """uint8 pixels (checked against the data contract) -> float32 in [0, 1]."""
        return ops.cast(self.validate(x, name), "float32") / 255.0

    def latent_to_data(self, z, output):
        """Latents -> images ``g(z)``: uint8 (rounded) or floats clipped to [0, 1]."""
        x01 = self.decoder(ops.cast(z, "float32"), training=False)
        if output == "uint8":
            return ops.cast(ops.clip(ops.round(x01 * 255.0), 0.0, 255.0), "uint8")
        return ops.clip(x01, 0.0, 1.0)

    def _noise(self, shape, training):
        seed = self.seed_generator if training else self.eval_seed
        return batch_noise(shape, "float32", seed)

    # ----------------------------------------------------------- objective
    def _latent(self, x01, training):
        """Encoder -> latent used by the objective; returns ``(z, extra per-example terms)``."""
        return self.encoder(x01, training=training), {}

    def objective_terms(self, x, training=False):
        """Per-example terms of the training objective (dict of ``(batch,)`` tensors) and the ``diagnostics``."""
        x01 = self._pixels(x)
        mu = self.penalty_coefficient()
        z, terms = self._latent(x01, training)
        x_hat = self.decoder(z, training=training)
        squared_error = jacobian_lib.squared_norm(x01 - x_hat)
        terms["reconstruction"] = mu * squared_error
        terms["reconstruction_mse"] = squared_error / self.num_dims
        return terms

    def call(self, inputs, training=False):
        """The per-example objective terms; a training call also advances the penalty schedule."""
        x, _ = self._split_inputs(inputs)  # labels (conditional models) enter only the post-hoc priors
        terms = self.objective_terms(x, training=training)
        if training:
            self.penalty_step.assign_add(1)
        return terms

    # ----------------------------------------------------------- data <-> latent
    def data_to_latent(self, x, stochastic=False, seed=None):
        """uint8 images -> latents ``h(x)`` of shape ``(batch, d)`` (batch norm with moving statistics)."""
        del stochastic, seed  # deterministic encoder (stochastic_encoder is False)
        return self.encoder(ops.cast(x, "float32") / 255.0, training=False)

    def reconstruct(self, x, output=None):
        """``g(h(x))`` as images."""
        return self.decode(self.encode(x), output=output)

    # ----------------------------------------------------------- post-hoc priors and sampling
    def encode_dataset(self, images, batch_size=256):
        """Encodes ``images`` (an array, or a file-backed ``zoo.data.streaming.StreamingImages``) in batches;
        returns a NumPy ``(n, d)`` array."""
        if isinstance(images, StreamingImages):  # file-backed: read batch by batch, never all at once
            batches = images.iter_batches(batch_size)
        else:
            batches = (images[i:i + batch_size] for i in range(0, len(images), batch_size))
        return np.concatenate([np.asarray(ops.convert_to_numpy(self.encode(batch))) for batch in batches])

    def fit_priors(self, images, seed=0, batch_size=256, labels=None):
        """Fits the full-covariance Gaussian and the GMM (paper section 2.2.1) to the encoded ``images``.

        Uses scikit-learn's ``GaussianMixture``; afterwards sampling and export
        need only TensorFlow (Probability). A class-conditional model needs
        the ``labels`` of ``images`` and fits both priors per class.

        Returns:
            ``{"gaussian": fit info, "gmm": fit info}`` (see ``GaussianMixturePrior.fit``).
        """
        if self.num_classes is None and labels is not None:
            raise ValueError(f"{self.name}.fit_priors: this model is not class-conditional, so `labels` has no meaning; "
                             "build it with `num_classes=K` for per-class priors.")
        if self.num_classes is not None and labels is None:
            raise ValueError(f"{self.name}.fit_priors: this model is class-conditional ({self.num_classes} classes); "
                             "pass the images' labels: `fit_priors(images, labels=labels)`.")
        if len(images) == 0:
            raise ValueError(f"{self.name}.fit_priors: `images` holds no examples; the priors are fitted to the "
                             "encodings of the training images (pass them, e.g. the data given to fit).")
        latents = self.encode_dataset(images, batch_size)
        return {"gaussian": self.gaussian_prior.fit(latents, seed=seed, labels=labels),
                "gmm": self.gmm_prior.fit(latents, seed=seed, labels=labels)}

    @contextlib.contextmanager
    def _sampling_from(self, prior):
        """Temporarily samples from ``prior`` (None: ``sampling_prior``; ``"gmm"`` or ``"gaussian"``)."""
        if prior is not None and prior not in ("gmm", "gaussian"):
            raise ValueError(f"{self.name}: `prior` must be None, 'gmm' or 'gaussian'; received {prior!r}.")
        chosen, self.sampling_prior = self.sampling_prior, prior or self.sampling_prior
        try:
            yield
        finally:
            self.sampling_prior = chosen

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=None, output=None,
                 labels=None, prior=None):
        """Images from given standard-normal noise (``GenerativeModel.generate``); ``prior`` picks the post-hoc prior."""
        with self._sampling_from(prior):
            return super().generate(latent_noise, observation_noise, temperature, noise_scale, output, labels=labels)

    def sample(self, num_samples, temperature=1.0, noise_scale=None, seed=None, output=None, labels=None,
               prior=None):
        """Draws images: latents from the post-hoc prior (``prior``: None = ``sampling_prior``, "gmm", "gaussian"),
        decoded by g (``GenerativeModel.sample``; no observation noise, so ``noise_scale`` is refused).

        Before ``fit_priors`` the priors are the unit Gaussian (a VAE's own prior).
        """
        with self._sampling_from(prior):
            return super().sample(num_samples, temperature, noise_scale, seed, output, labels=labels)

    # ----------------------------------------------------------- density on the manifold
    def _decoder_inference(self, z):
        return self.decoder(z, training=False)

    def log_prob(self, x, labels=None, exact=False):
        """Lower bound (5) of the paper on ``ln p(x)`` on the learned manifold (nats, x in [0, 1] units).

        ``ln p(x) >= ln p_z(h(x)) - d/2 ln(||J_g(h(x))||_F^2 / d)`` with
        ``p_z`` the post-hoc prior (``model.prior``; the unit Gaussian before
        ``fit_priors``) and the exact Frobenius norm from d forward-mode JVPs.
        This is a density on the d-dimensional image of g, valid for x on it
        (``x = g(h(x))``); for x off the manifold it is the value at its
        projection ``g(h(x))``. It is not comparable with full-dimensional
        densities. ``exact=True`` returns the injective change of variables
        (3) itself, ``ln p_z(h(x)) - 1/2 ln det(J^T J)``, from the full
        ``D x d`` Jacobian (the bound is never above it). A class-conditional
        model gives ``ln p(x | y)`` for ``labels`` (the class's post-hoc prior;
        the volume term is the decoder's, the same for every class).
        """
        z = self.encode(x)
        labels = self._labels_for(labels, z.shape[0], "log_prob")
        return self.prior.log_prob(z, **self.prior.label_arguments(labels)) + self._volume(z, exact)

    def _volume(self, z, exact=False):
        """The volume term of ``log_prob`` at latents ``z`` (the bound, or the exact Gram term)."""
        if exact:
            return -gram_log_det(batch_jacobian(self._decoder_inference, z))
        frobenius = jacobian_lib.frobenius_norm_squared(self._decoder_inference, z)
        return jacobian_lib.frobenius_log_det_bound(frobenius, self.latent_dim)

    def class_log_likelihoods(self, x, exact=False):
        """``log p(x | y = k)`` for every class, ``(batch, K)``: one encoding and one volume term for all classes."""
        self._require_conditional("class_log_likelihoods")
        z = self.encode(x)
        volume = self._volume(z, exact)
        batch = ops.shape(z)[0]  # an int, or a tensor for a graph's dynamic batch (exports)
        return ops.stack([self.prior.log_prob(z, labels=self._labels_for(k, batch, "class_log_likelihoods")) + volume
                          for k in range(self.num_classes)], axis=-1)

    # ----------------------------------------------------------- serialization
    def get_config(self):
        return {
            "name": self.name, "image_shape": list(self.example_shape), "latent_dim": self.latent_dim,
            "hidden_channels": self.hidden_channels, "encoder_strides": list(self.encoder_strides),
            "decoder_strides": list(self.decoder_strides), "kernel_size": self.kernel_size,
            "batch_norm_momentum": self.batch_norm_momentum, "decoder_weight_decay": self.decoder_weight_decay,
            "spectral_norm": self.spectral_norm, "penalty_growth": self.penalty_growth,
            "num_components": self.num_components, "sampling_prior": self.sampling_prior,
            "eval_seed": self.eval_seed, "seed": self.seed, "num_classes": self.num_classes,
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
        squared_error = jacobian_lib.squared_norm(x01 - x_hat)
        if self.log_frobenius:
            volume = jacobian_lib.log_frobenius_penalty(jv_sq, v_sq, self.eta, self.latent_dim)
        else:
            volume = jacobian_lib.frobenius_penalty(jv_sq, v_sq, self.eta, self.lam)
        return {
            "prior": self.prior_weight * jacobian_lib.squared_norm(z),
            "reconstruction": mu * squared_error,
            "volume": volume,
            "injectivity": mu * jacobian_lib.injectivity_penalty(jv_sq, v_sq, self.eta),
            "reconstruction_mse": squared_error / self.num_dims,
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

    stochastic_encoder = True

    def data_to_latent(self, x, stochastic=False, seed=None):
        """Posterior mean of ``q(z | x)`` (or a draw from it with ``stochastic=True``)."""
        mean, log_var = self._posterior(ops.cast(x, "float32") / 255.0, False)
        if not stochastic:
            return mean
        return mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean), seed=seed)

    def get_config(self):
        return {**super().get_config(), "decoder_std": self.decoder_std}
