"""Noisy injective flows (NIF): Gaussian NIF layers that change dimension.

A Gaussian NIF models ``p(x | z) = N(x; A z + b, Sigma)`` with ``A`` of shape
``D x d`` (``d < D``), a bias ``b`` and a diagonal covariance ``Sigma``. With
``Lambda = A^T Sigma^-1 A`` and ``u = A^T Sigma^-1 (x - b)``:

* stochastic inverse ``q(z | x) = N(Lambda^-1 u, Lambda^-1)``; its mean is the
  pseudo-inverse ``z+ = Lambda^-1 u`` (NIF eq. 42), the ``z`` minimizing
  ``||x - A z - b||`` in the ``Sigma^-1`` norm (appendix A.3);
* manifold term ``log integral p(x | z) dz = log Z_z - log Z_x`` (eq. 9) with
  ``log Z_z = (u^T Lambda^-1 u - log|Lambda| + d log 2 pi) / 2`` and
  ``log Z_x = ((x-b)^T Sigma^-1 (x-b) + log|Sigma| + D log 2 pi) / 2``;
* with ``z ~ N(0, I)`` the marginal is ``N(x; b, A A^T + Sigma)`` (eq. 41),
  computed here through Woodbury and the determinant lemma with a ``d x d``
  Cholesky of ``I + Lambda``: O(D d^2 + d^3), never a ``D x D`` matrix.

Injective contract (DESIGN.md section 3): ``layer(x, training)`` returns
``(z, log_term)`` where ``log_term`` is the manifold term of shape ``[batch]``
and ``z`` is a draw from ``q(z | x)`` when training and its mean otherwise;
``layer.inverse(z, noise_scale=s, seed=None)`` returns
``A z + b + sqrt(s) Sigma^(1/2) eps`` (``s = 0`` lands on the manifold).
Noise scale ``s`` multiplies ``Sigma``; temperature ``t`` multiplies the
standard deviation of the latent prior.
"""

import math

import keras
from keras import ops

from layers.base import density_dtype, check_example_shape, split_channels, sum_except_batch
from layers.coupling import apply_sequence, build_sequence, conditioner_layers
from layers.numerics import (
    LOG_2PI,
    cholesky_log_det,
    diagonal_normal_log_prob,
    solve_lower,
    solve_lower_transpose,
    standard_normal_log_prob,
)
from layers.priors import ClassConditionalBase, Prior, check_num_classes
from layers.seeds import batch_noise


def add_observation_noise(mean, log_variance, noise_scale, noise):
    """``mean + sqrt(noise_scale) * Sigma^(1/2) * noise`` (``noise`` None: ``mean``, on the manifold)."""
    if noise is None:
        return mean
    return mean + ops.sqrt(ops.cast(noise_scale, mean.dtype)) * ops.exp(0.5 * log_variance) * noise


def gaussian_nif_terms(residual, log_variance, a_matrix, posterior=True, marginal=False):
    """The closed-form quantities of a Gaussian NIF along the last axis.

    Args:
        residual: ``x - b``, shape ``(..., D)``.
        log_variance: ``log diag(Sigma)``, shape ``(D,)`` or ``(..., D)``.
        a_matrix: ``A``, shape ``(D, d)``.
        posterior: Python bool; return the stochastic-inverse quantities
            (needs ``Lambda`` invertible, i.e. ``A`` of full column rank).
        marginal: Python bool; return the marginal under ``z ~ N(0, I)``
            (needs only ``I + Lambda``, always positive definite).

    Returns:
        dict with, when ``posterior``: ``mean`` (pseudo-inverse, ``(..., d)``),
        ``chol`` (Cholesky of ``Lambda``) and ``manifold`` (manifold term,
        ``(...)``); when ``marginal``: ``marginal`` (``log N(x; b, A A^T +
        Sigma)``, ``(...)``).
    """
    inv_var = ops.exp(-log_variance)
    d = a_matrix.shape[-1]
    big_d = a_matrix.shape[0]
    if len(inv_var.shape) == 1:
        lam = ops.matmul(ops.transpose(a_matrix), a_matrix * inv_var[:, None])
    else:
        lam = ops.einsum("...i,ij,ik->...jk", inv_var, a_matrix, a_matrix)
    u = ops.matmul(residual * inv_var, a_matrix)
    quad_x = ops.sum(residual * residual * inv_var, axis=-1)
    log_z_x = 0.5 * (quad_x + ops.sum(log_variance, axis=-1) + big_d * LOG_2PI)
    terms = {}
    if posterior:
        chol = ops.cholesky(lam)
        w = solve_lower(chol, u)
        log_z_z = 0.5 * (ops.sum(w * w, axis=-1) - cholesky_log_det(chol) + d * LOG_2PI)
        terms.update(mean=solve_lower_transpose(chol, w), chol=chol, manifold=log_z_z - log_z_x)
    if marginal:
        # log N(x; b, A A^T + Sigma) = u^T M^-1 u / 2 - log|M| / 2 - log Z_x with M = I + Lambda.
        chol_m = ops.cholesky(lam + ops.eye(d, dtype=lam.dtype))
        w_m = solve_lower(chol_m, u)
        terms["marginal"] = 0.5 * ops.sum(w_m * w_m, axis=-1) - 0.5 * cholesky_log_det(chol_m) - log_z_x
    return terms


@keras.saving.register_keras_serializable(package="flow_zoo")
class InjectiveLayer(keras.layers.Layer):
    """Base class of the noisy injective (dimension-changing) layers.

    ``layer(x, training)`` maps data to latent and returns ``(z, log_term)``
    (``z`` drawn from ``q(z | x)`` when training, its mean otherwise;
    ``log_term`` = manifold term, shape ``[batch]``).
    ``layer.inverse(z, noise_scale=0.0, seed=None)`` maps latent to data.

    Subclasses implement ``_terms(x)`` (returning at least ``mean``,
    ``manifold`` and what ``_sample_posterior`` needs),
    ``_sample_posterior(terms, seed)``, ``_decode_noise(z, noise_scale,
    noise)`` (``noise`` of the data shape, or None on the manifold),
    ``conditional_log_prob(x, z)``, ``example_shape`` and ``latent_shape``.

    Args:
        seed: int or None, seed of the training-time posterior draws.
        **kwargs: standard layer arguments.
    """

    def __init__(self, seed=None, **kwargs):
        kwargs.setdefault("dtype", density_dtype())  # float32 under a mixed policy too
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        terms = self._terms(inputs)
        z = self._sample_posterior(terms, self.seed_generator) if training else terms["mean"]
        return z, terms["manifold"]

    def inverse(self, z, noise_scale=0.0, seed=None, noise=None):
        """Latent -> data: ``A z + b + sqrt(noise_scale) Sigma^(1/2) eps``.

        ``eps`` is ``noise`` when given (data-shaped, standard normal), else drawn from ``seed``.
        """
        if isinstance(noise_scale, (int, float)) and noise_scale < 0:
            raise ValueError(f"{self.name}: `noise_scale` must be >= 0; received {noise_scale}.")
        if noise is not None:
            noise = ops.cast(noise, self.compute_dtype)
        elif not (isinstance(noise_scale, (int, float)) and noise_scale == 0):
            noise = keras.random.normal((ops.shape(z)[0],) + tuple(self.example_shape), dtype=self.compute_dtype, seed=seed)
        return self._decode_noise(ops.cast(z, self.compute_dtype), noise_scale, noise)

    def pseudo_inverse(self, x):
        """``z+ = Lambda^-1 u``: the mean and mode of ``q(z | x)`` (NIF eq. 42)."""
        return self._terms(x)["mean"]

    def stochastic_inverse(self, x, seed=None):
        """One draw from ``q(z | x) = N(Lambda^-1 u, Lambda^-1)``."""
        return self._sample_posterior(self._terms(x), seed)

    def manifold_term(self, x):
        """``log integral p(x | z) dz`` per example (NIF eq. 9)."""
        return self._terms(x)["manifold"]

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


class NIFPrior(InjectiveLayer, Prior):
    """An injective layer that is also a complete prior for a ``FlowModel``.

    With ``z ~ N(0, I)`` the marginal of ``x`` is Gaussian and closed-form;
    subclasses return it as ``terms["marginal"]`` from ``_terms(x, True)``
    (which may skip the posterior quantities)
    and the trace of ``Lambda^-1`` from ``_posterior_trace(terms)``.
    Implements the ``layers.Prior`` protocol (``log_prob``, ``generate``,
    ``noise_shapes``, a stochastic ``encode`` and a noisy ``decode``; ``sample``
    is the base's) plus ``elbo``; ``call`` stays the injective layer's
    (``layer(x)`` returns ``(z, manifold_term)``).
    """

    stochastic_encoder = True

    def _class_means(self, labels, batch_size):
        """``mu_y`` of a class-conditional prior (``(batch, d)``), or None for the unconditional one."""
        if self.num_classes is None:
            self.label_arguments(labels)  # refuses labels
            return None
        from layers.checks import check_labels

        return ops.take(self.class_means, check_labels(labels, self.num_classes, self.name, batch_size), axis=0)

    def log_prob(self, x, training=None, labels=None):
        """Closed-form marginal ``log p(x)`` under ``z ~ N(0, I)`` (eq. 41), or ``N(mu_y, I)`` given labels."""
        del training
        class_means = self._class_means(labels, x.shape[0])
        if class_means is None:
            return self._terms(x, marginal=True)["marginal"]
        return self._terms(x, marginal=True, class_means=class_means)["marginal"]

    def elbo(self, x, labels=None):
        """``E_q[log N(z; mu, I)] + manifold term`` (eq. 7; ``mu`` = 0 or ``mu_y``), exact expectation; <= ``log_prob``."""
        terms = self._terms(x)
        class_means = self._class_means(labels, x.shape[0])
        mean = terms["mean"] if class_means is None else terms["mean"] - class_means
        return standard_normal_log_prob(mean) - 0.5 * self._posterior_trace(terms) + terms["manifold"]

    @property
    def noise_shapes(self):
        """Per-example shapes of the latent noise and the observation noise ``sample`` draws."""
        return tuple(self.latent_shape), tuple(self.example_shape)

    def generate(self, latent_noise, observation_noise, temperature=1.0, noise_scale=1.0, labels=None):
        """Deterministic sampling from given noise: ``A (mu_y + t eps_z) + b + sqrt(s) Sigma^(1/2) eps_x``."""
        z = ops.cast(temperature, self.compute_dtype) * ops.cast(latent_noise, self.compute_dtype)
        class_means = self._class_means(labels, latent_noise.shape[0])
        if class_means is not None:
            z = z + class_means
        return self.inverse(z, noise_scale=noise_scale, noise=observation_noise)

    def encode(self, x, stochastic=False, seed=None):
        """Pseudo-inverse ``z+`` by default; a draw from ``q(z | x)`` with ``stochastic=True``."""
        return self.stochastic_inverse(x, seed) if stochastic else self.pseudo_inverse(x)

    def decode(self, latent, noise_scale=0.0, seed=None, noise=None):
        """``A z + b + sqrt(noise_scale) Sigma^(1/2) eps`` (``eps`` = ``noise`` when given, else seeded)."""
        return self.inverse(latent, noise_scale=noise_scale, seed=seed, noise=noise)


@keras.saving.register_keras_serializable(package="flow_zoo")
class GaussianNIF(NIFPrior):
    """Gaussian noisy injective flow: ``p(x | z) = N(x; A z + b, Sigma)``, ``d < D``.

    Works on flat vectors ``(batch, D)`` and on any example shape (images are
    flattened; ``inverse`` restores the shape). Besides the injective
    contract it is a complete prior for a ``FlowModel`` (``log_prob`` is the
    closed-form marginal under ``z ~ N(0, I)``, eq. 41), so replacing a flow's
    unit Gaussian prior by ``GaussianNIF(d)`` gives the paper's NIF model.

    Args:
        latent_dim: int ``d`` with ``1 <= d < D``.
        a_initializer: initializer of ``A`` (default Glorot normal, as the
            reference implementation).
        seed: int or None; seeds ``A``'s initializer and training-time draws.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ``(batch, ...)`` with ``D`` entries per example.
        training: Python bool; draw ``z ~ q(z | x)`` when True, else its mean.

    Example:

    >>> nif = layers.GaussianNIF(latent_dim=16)
    >>> z, manifold_term = nif(x)                  # x: (batch, 64)
    >>> x_on_manifold = nif.inverse(z, noise_scale=0.0)
    >>> log_px = nif.log_prob(x)                   # closed form, eq. 41

    Reference:
        Cunningham et al., "Normalizing Flows Across Dimensions", 2020,
        section 4 and appendix A.5, A.8.
    """

    def __init__(self, latent_dim, a_initializer="glorot_normal", seed=None, num_classes=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"GaussianNIF: `latent_dim` must be an int >= 1; received {latent_dim!r}.")
        self.latent_dim = latent_dim
        self.num_classes = check_num_classes(num_classes, "GaussianNIF")
        self.a_initializer = keras.initializers.get(a_initializer)
        if seed is not None and hasattr(self.a_initializer, "seed"):
            self.a_initializer.seed = seed

    def build(self, input_shape):
        self.example_shape = tuple(int(d) for d in input_shape[1:])
        self.data_dim = math.prod(self.example_shape)
        if not self.latent_dim < self.data_dim:
            raise ValueError(
                f"GaussianNIF: `latent_dim` must be smaller than the data dimension "
                f"D = {self.data_dim} (input shape {tuple(input_shape)}); received latent_dim="
                f"{self.latent_dim}. Use 1 <= latent_dim <= {self.data_dim - 1}."
            )
        self.a_matrix = self.add_weight(shape=(self.data_dim, self.latent_dim), initializer=self.a_initializer, name="a_matrix")
        self.bias = self.add_weight(shape=(self.data_dim,), initializer="zeros", name="bias")
        self.log_variance = self.add_weight(shape=(self.data_dim,), initializer="zeros", name="log_variance")
        if self.num_classes is not None:  # z ~ N(mu_y, I): a class is a region of the d-dim manifold
            self.class_means = self.add_weight(shape=(self.num_classes, self.latent_dim), initializer="zeros",
                                               name="class_means")

    @property
    def latent_shape(self):
        return (self.latent_dim,)

    def _flat(self, x):
        check_example_shape(x, self.example_shape, "x", self.name)
        return ops.reshape(ops.cast(x, self.compute_dtype), (-1, self.data_dim))

    def _terms(self, x, marginal=False, class_means=None):
        residual = self._flat(x) - self.bias
        if class_means is not None:  # x ~ N(A mu_y + b, A A^T + Sigma): the class shifts the marginal's mean
            residual = residual - ops.matmul(class_means, ops.transpose(self.a_matrix))
        return gaussian_nif_terms(residual, self.log_variance, self.a_matrix, posterior=not marginal, marginal=marginal)

    def _sample_posterior(self, terms, seed):
        eps = batch_noise(ops.shape(terms["mean"]), self.compute_dtype, seed)
        return terms["mean"] + solve_lower_transpose(terms["chol"], eps)

    def _check_latent(self, z):
        if len(z.shape) != 2 or int(z.shape[-1]) != self.latent_dim:
            raise ValueError(
                f"{self.name}: `z` must have shape (batch, {self.latent_dim}) (latent_dim={self.latent_dim}); "
                f"received {tuple(z.shape)}."
            )

    def _decode_noise(self, z, noise_scale, noise):
        self._check_latent(z)
        x = ops.matmul(z, ops.transpose(self.a_matrix)) + self.bias
        noise = None if noise is None else ops.reshape(noise, (-1, self.data_dim))
        x = add_observation_noise(x, self.log_variance, noise_scale, noise)
        return ops.reshape(x, (-1,) + self.example_shape)

    def _posterior_trace(self, terms):
        chol = terms["chol"]
        inv_chol = solve_lower(chol, ops.eye(self.latent_dim, dtype=chol.dtype))  # (L^-1)^T: the same Frobenius norm
        return ops.sum(inv_chol * inv_chol)

    def conditional_log_prob(self, x, z):
        """``log N(x; A z + b, Sigma)`` computed directly (a reference for tests)."""
        residual = self._flat(x) - ops.matmul(z, ops.transpose(self.a_matrix)) - self.bias
        return diagonal_normal_log_prob(residual, self.log_variance)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"latent_dim": self.latent_dim, "a_initializer": keras.initializers.serialize(self.a_initializer)}
        )
        if self.num_classes is not None:
            config["num_classes"] = self.num_classes
        return config


@keras.saving.register_keras_serializable(package="flow_zoo")
class UpsampleNIF(NIFPrior):
    """Gaussian NIF whose ``A`` is nearest-neighbour upsampling: everything O(D).

    ``z`` of shape ``(h, w, c)`` maps to ``x`` of shape ``(f h, f w, c)`` by
    copying each latent pixel into an ``f x f`` block, plus a learned bias
    and diagonal ``Sigma``. Each latent entry touches its own block only, so
    ``Lambda = A^T Sigma^-1 A`` is diagonal (the block sums of
    ``Sigma^-1``) and the marginal, manifold term, pseudo-inverse and
    posterior draws all cost O(D) with no matrix factorization.

    Args:
        factor: int, the upsampling factor ``f`` (2 in the paper).
        seed: int or None, seed of the training-time posterior draws.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: images ``(batch, f h, f w, c)``.
        training: Python bool; draw ``z ~ q(z | x)`` when True, else its mean.

    Example:

    >>> nif = layers.UpsampleNIF(factor=2)
    >>> z, manifold_term = nif(images)             # (b, 8, 8, 3) -> (b, 4, 4, 3)
    >>> log_px = nif.log_prob(images)

    Reference:
        Cunningham et al., "Normalizing Flows Across Dimensions", 2020,
        section 4.1 and appendix A.6.
    """

    def __init__(self, factor=2, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = int(factor)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"UpsampleNIF expects images (batch, h, w, c); received shape {tuple(input_shape)}.")
        _, h, w, c = (int(d) if d is not None else None for d in input_shape)
        f = self.factor
        if h % f or w % f:
            raise ValueError(f"UpsampleNIF(factor={f}) needs height and width divisible by {f}; received {h}x{w}.")
        self.example_shape = (h, w, c)
        self._latent_shape = (h // f, w // f, c)
        self.bias = self.add_weight(shape=self.example_shape, initializer="zeros", name="bias")
        self.log_variance = self.add_weight(shape=self.example_shape, initializer="zeros", name="log_variance")

    @property
    def latent_shape(self):
        return self._latent_shape

    def _block_sum(self, t):
        h, w, c = self._latent_shape
        f = self.factor
        t = ops.reshape(t, (-1, h, f, w, f, c))
        return ops.sum(t, axis=(2, 4))

    def _upsample(self, z):
        return ops.repeat(ops.repeat(z, self.factor, axis=1), self.factor, axis=2)

    def _terms(self, x, marginal=False):
        check_example_shape(x, self.example_shape, "x", self.name)
        x = ops.cast(x, self.compute_dtype)
        inv_var = ops.exp(-self.log_variance)
        residual = x - self.bias
        lam = self._block_sum(inv_var[None])[0]
        u = self._block_sum(residual * inv_var)
        d, big_d = math.prod(self._latent_shape), math.prod(self.example_shape)
        log_z_x = 0.5 * (sum_except_batch(residual * residual * inv_var) + ops.sum(self.log_variance) + big_d * LOG_2PI)
        log_z_z = 0.5 * (sum_except_batch(u * u / lam) - ops.sum(ops.log(lam)) + d * LOG_2PI)
        terms = {"mean": u / lam, "lam": lam, "manifold": log_z_z - log_z_x}
        if marginal:
            terms["marginal"] = 0.5 * sum_except_batch(u * u / (1.0 + lam)) - 0.5 * ops.sum(ops.log1p(lam)) - log_z_x
        return terms

    def _sample_posterior(self, terms, seed):
        eps = batch_noise(ops.shape(terms["mean"]), self.compute_dtype, seed)
        return terms["mean"] + eps * ops.rsqrt(terms["lam"])

    def _posterior_trace(self, terms):
        return ops.sum(1.0 / terms["lam"])

    def _decode_noise(self, z, noise_scale, noise):
        check_example_shape(z, self._latent_shape, "z", self.name)
        return add_observation_noise(self._upsample(z) + self.bias, self.log_variance, noise_scale, noise)

    def conditional_log_prob(self, x, z):
        """``log N(x; upsample(z) + b, Sigma)`` computed directly (a reference for tests)."""
        residual = ops.cast(x, self.compute_dtype) - self._upsample(z) - self.bias
        return diagonal_normal_log_prob(residual, self.log_variance)

    def get_config(self):
        config = super().get_config()
        config["factor"] = self.factor
        return config


@keras.saving.register_keras_serializable(package="flow_zoo")
class StochasticCoupling(InjectiveLayer):
    """Stochastic coupling: one half conditions a Gaussian NIF of the other.

    The last axis is split into ``x_a`` (the first ``C // 2`` channels or
    features) and ``x_b`` (the remaining ``C_b``). ``x_a`` passes through;
    ``x_b`` is modelled as ``N(x_b; A z_b + b(x_a), Sigma(x_a))`` with a
    learned ``A`` of shape ``C_b x latent_dim`` and a conditioner network
    (the coupling conditioner, zero-initialized output) giving the bias and
    the log-variance (bounded by ``log_variance_clamp``). The output is
    ``(x_a, z_b)`` with ``z_b ~ q(z_b | x_b; x_a)`` in training and its mean
    otherwise, and the manifold term ``log integral p(x_b | z_b; x_a) dz_b``
    replaces the Jacobian log-determinant (NIF appendix A.7). For images the
    Gaussian NIF acts per pixel over channels (``A`` is shared by positions,
    ``Lambda`` is a ``latent_dim x latent_dim`` matrix per pixel).

    Args:
        latent_dim: int, size of ``z_b`` per position, ``1 <= latent_dim < C_b``.
        hidden_units: int, conditioner width.
        num_hidden_layers: int, hidden layers of the MLP conditioner (vectors).
        log_variance_clamp: float > 0, bound on ``|log diag Sigma(x_a)|``.
        seed: int or None, seeds ``A``'s initializer and training-time draws.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ``(batch, features)`` or ``(batch, height, width, channels)``.
        training: Python bool; draw ``z_b ~ q`` when True, else its mean.

    Example:

    >>> layer = layers.StochasticCoupling(latent_dim=2, hidden_units=64)
    >>> z, manifold_term = layer(x)               # x: (b, 8) -> z: (b, 4 + 2)
    >>> x_on_manifold = layer.inverse(z, noise_scale=0.0)

    Reference:
        Cunningham et al., "Normalizing Flows Across Dimensions", 2020,
        appendix A.7, eq. 40.
    """

    def __init__(self, latent_dim, hidden_units=64, num_hidden_layers=2, log_variance_clamp=6.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"StochasticCoupling: `latent_dim` must be an int >= 1; received {latent_dim!r}.")
        self.latent_dim = latent_dim
        self.hidden_units = int(hidden_units)
        self.num_hidden_layers = int(num_hidden_layers)
        self.log_variance_clamp = float(log_variance_clamp)

    def build(self, input_shape):
        rank = len(input_shape)
        if rank not in (2, 4):
            raise ValueError(
                "StochasticCoupling expects vectors (batch, features) or images (batch, h, w, c); "
                f"received shape {tuple(input_shape)}."
            )
        channels = int(input_shape[-1])
        self.split = channels // 2
        self.passive_shape = tuple(int(d) for d in input_shape[1:-1]) + (self.split,)
        modelled = channels - self.split
        if not 1 <= self.latent_dim < modelled:
            raise ValueError(
                f"StochasticCoupling: `latent_dim` must satisfy 1 <= latent_dim < {modelled} (the modelled half "
                f"of {channels} channels); received {self.latent_dim}."
            )
        self.example_shape = tuple(int(d) for d in input_shape[1:])
        self.conditioner = conditioner_layers(rank, self.hidden_units, self.num_hidden_layers, 2 * modelled)
        build_sequence(self.conditioner, (None,) + self.passive_shape)
        initializer = keras.initializers.GlorotNormal(seed=self.seed)
        self.a_matrix = self.add_weight(shape=(modelled, self.latent_dim), initializer=initializer, name="a_matrix")

    @property
    def latent_shape(self):
        return self.example_shape[:-1] + (self.split + self.latent_dim,)

    def _bias_and_log_variance(self, x_a):
        h = apply_sequence(self.conditioner, x_a)
        n = ops.shape(h)[-1] // 2
        clamp = self.log_variance_clamp
        bias, raw = split_channels(h, n)
        return bias, clamp * ops.tanh(raw / clamp)

    def _terms(self, x, marginal=False):
        del marginal
        check_example_shape(x, self.example_shape, "x", self.name)
        x = ops.cast(x, self.compute_dtype)
        x_a, x_b = split_channels(x, self.split)
        bias, log_variance = self._bias_and_log_variance(x_a)
        terms = gaussian_nif_terms(x_b - bias, log_variance, self.a_matrix)
        mean_b = terms["mean"]
        terms["x_a"] = x_a
        terms["mean_b"] = mean_b
        terms["mean"] = ops.concatenate([x_a, mean_b], axis=-1)
        terms["manifold"] = sum_except_batch(terms["manifold"])
        return terms

    def _sample_posterior(self, terms, seed):
        eps = batch_noise(ops.shape(terms["mean_b"]), self.compute_dtype, seed)
        z_b = terms["mean_b"] + solve_lower_transpose(terms["chol"], eps)
        return ops.concatenate([terms["x_a"], z_b], axis=-1)

    def _decode_noise(self, z, noise_scale, noise):
        check_example_shape(z, self.latent_shape, "z", self.name)
        z_a, z_b = split_channels(z, self.split)
        bias, log_variance = self._bias_and_log_variance(z_a)
        x_b = ops.matmul(z_b, ops.transpose(self.a_matrix)) + bias
        x_b = add_observation_noise(x_b, log_variance, noise_scale, None if noise is None else noise[..., self.split :])
        return ops.concatenate([z_a, x_b], axis=-1)

    def conditional_log_prob(self, x, z):
        """``log N(x_b; A z_b + b(x_a), Sigma(x_a))`` summed over positions (a test reference)."""
        x = ops.cast(x, self.compute_dtype)
        x_a, x_b = split_channels(x, self.split)
        bias, log_variance = self._bias_and_log_variance(x_a)
        residual = x_b - ops.matmul(z[..., self.split :], ops.transpose(self.a_matrix)) - bias
        return diagonal_normal_log_prob(residual, log_variance)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "latent_dim": self.latent_dim,
                "hidden_units": self.hidden_units,
                "num_hidden_layers": self.num_hidden_layers,
                "log_variance_clamp": self.log_variance_clamp,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="flow_zoo")
class DeepNIFPrior(ClassConditionalBase, Prior):
    """Deep NIF prior: a low-dimensional flow prior on ``z`` and a Gaussian NIF.

    Generative model: ``u ~ N(0, I_d)``, ``z = h^-1(u)`` through the flow
    ``latent_flow`` on ``R^d``, ``x ~ N(A z + b, Sigma)`` (the ``nif``). The
    likelihood has no closed form, so ``log_prob`` is a bound with the
    stochastic inverse as proposal (NIF eq. 7): with ``z_k ~ q(z | x)``,
    ``log w_k = log p_z(z_k) + manifold term`` (the ``p(x | z) / q(z | x)``
    ratio equals the manifold term exactly), and the bound is
    ``log mean_k exp(log w_k)`` (the ELBO for ``K = 1``, the importance-weighted
    bound for ``K > 1``). Draws are fresh in training and come from the fixed
    ``eval_seed`` otherwise, so evaluation is deterministic.

    The prior latent is ``u``: ``sample`` draws ``u`` with standard deviation
    ``temperature``, ``encode`` returns ``h(z+)`` (or ``h`` of a posterior draw)
    and ``decode(u, noise_scale)`` returns ``A h^-1(u) + b + sqrt(s) Sigma^(1/2) eps``
    (the ``layers.Prior`` protocol; calling the layer returns ``log_prob``).

    Class-conditional (``num_classes=K``): the low-dimensional flow is
    conditioned on ``y`` through its base, ``u ~ N(mu_y, diag(exp(2 s_y)))``
    (``layers.ClassConditionalBase``), so ``p(z | y)`` is a flow density per
    class while ``h``, ``A``, ``b`` and ``Sigma`` are shared; ``log_prob`` and
    ``generate`` then take ``labels``.

    Args:
        nif: a ``GaussianNIF`` (or its config).
        latent_flow: a ``FlowLayer`` on ``d``-vectors (or its config).
        num_importance_samples: int ``K >= 1``.
        seed: int or None, seed of the training-time draws.
        eval_seed: int, seed of the evaluation-time draws.
        num_classes: None, or ``K >= 2`` for the class-conditional base.
        **kwargs: standard layer arguments.

    Example:

    >>> prior = layers.DeepNIFPrior(layers.GaussianNIF(128), low_dim_flow, num_importance_samples=4)
    >>> model = zoo.FlowModel(glow, input_shape=(64, 64, 3), prior=prior, n_bits=3)

    Reference:
        Cunningham et al., "Normalizing Flows Across Dimensions", 2020,
        appendix B.5.
    """

    stochastic_encoder = True

    def __init__(self, nif, latent_flow, num_importance_samples=1, seed=None, eval_seed=0, num_classes=None, **kwargs):
        super().__init__(**kwargs)
        deserialize = keras.saving.deserialize_keras_object
        self.nif = deserialize(nif) if isinstance(nif, dict) else nif
        if self.nif.num_classes is not None:
            raise ValueError("DeepNIFPrior: its `nif` must be unconditional (the deep NIF conditions its "
                             "low-dimensional flow instead); build the GaussianNIF without `num_classes` and pass "
                             "`num_classes=K` to DeepNIFPrior.")
        self._init_class_base(num_classes)
        self.latent_flow = deserialize(latent_flow) if isinstance(latent_flow, dict) else latent_flow
        if not isinstance(num_importance_samples, int) or num_importance_samples < 1:
            raise ValueError(f"DeepNIFPrior: `num_importance_samples` must be an int >= 1; received {num_importance_samples!r}.")
        self.num_importance_samples = num_importance_samples
        self.seed = seed
        self.eval_seed = int(eval_seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if not self.nif.built:
            self.nif.build(input_shape)
        if not self.latent_flow.built:
            self.latent_flow.build((None, self.nif.latent_dim))
        self._build_class_base(self.nif.latent_dim)

    @property
    def latent_shape(self):
        return (self.nif.latent_dim,)

    def _latent_log_prob(self, z, training=None, labels=None):
        u, log_det = self.latent_flow(z, training=training)
        return self.base_log_prob(u, labels) + log_det

    def log_prob(self, x, training=None, labels=None):
        """The ELBO (K = 1) or importance-weighted bound on ``log p(x)`` (``log p(x | y)`` given labels), per example."""
        labels = self._checked_labels(labels, x.shape[0])
        terms = self.nif._terms(x)
        k, d = self.num_importance_samples, self.nif.latent_dim
        batch = ops.shape(terms["mean"])[0]
        seed = self.seed_generator if training else self.eval_seed
        eps = batch_noise((k, batch, d), self.compute_dtype, seed, batch_axis=1)
        draws = terms["mean"][None] + ops.reshape(
            solve_lower_transpose(terms["chol"], ops.reshape(eps, (-1, d))), (k, batch, d)
        )
        tiled = None if labels is None else ops.tile(labels, (k,))  # draw j of example b is row j * batch + b
        log_prior = ops.reshape(self._latent_log_prob(ops.reshape(draws, (-1, d)), training, tiled), (k, batch))
        bound = ops.logsumexp(log_prior, axis=0) - math.log(k)
        return bound + terms["manifold"]

    @property
    def noise_shapes(self):
        """Per-example shapes of the latent noise (``u``) and the observation noise (the data's)."""
        return (self.nif.latent_dim,), tuple(self.nif.example_shape)

    def generate(self, latent_noise, observation_noise, temperature=1.0, noise_scale=1.0, labels=None):
        """Deterministic sampling from given noise: ``A h^-1(t eps_u) + b + sqrt(s) Sigma^(1/2) eps_x``
        (class-conditional: ``u = mu_y + t exp(s_y) eps_u``)."""
        u = self.base_generate(latent_noise, temperature, labels)
        z = self.latent_flow.inverse(u)
        return self.nif.inverse(z, noise_scale=noise_scale, noise=observation_noise)

    def encode(self, x, stochastic=False, seed=None):
        """``u = h(z+)`` (``stochastic=True``: ``h`` of a draw from ``q(z | x)`` with ``seed``)."""
        return self.latent_flow(self.nif.encode(x, stochastic=stochastic, seed=seed), training=False)[0]

    def decode(self, latent, noise_scale=0.0, seed=None, noise=None):
        """``A h^-1(u) + b + sqrt(noise_scale) Sigma^(1/2) eps`` (``eps`` = ``noise`` when given, else seeded)."""
        return self.nif.decode(self.latent_flow.inverse(latent), noise_scale=noise_scale, seed=seed, noise=noise)

    def initialize(self, z):
        """Act-norm data initialization of the low-dimensional flow on the pseudo-inverses of ``z`` (eager)."""
        self.latent_flow(self.nif.pseudo_inverse(ops.cast(z, self.compute_dtype)), training=True)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "nif": keras.saving.serialize_keras_object(self.nif),
                "latent_flow": keras.saving.serialize_keras_object(self.latent_flow),
                "num_importance_samples": self.num_importance_samples,
                "seed": self.seed,
                "eval_seed": self.eval_seed,
            }
        )
        return self._class_base_config(config)
