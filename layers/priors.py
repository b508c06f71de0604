"""Priors over a flow's latent: the ``Prior`` protocol, the unit Gaussian and the post-hoc Gaussian mixture.

Every prior in this package (``StandardNormal``, ``GaussianMixturePrior``
here; ``GaussianNIF``, ``UpsampleNIF`` and ``DeepNIFPrior`` in ``layers.nif``;
``SplitPrior`` in ``layers.manifold``; ``SpreadPrior`` in ``layers.spread``)
inherits ``Prior``, so a model swaps one for another and talks to one
interface: ``log_prob``, ``generate`` from standard-normal noise, ``sample``,
``encode``, ``decode``, ``latent_shape``, ``noise_shapes``,
``stochastic_encoder`` and ``has_observation_noise``.
"""

import numbers

import keras
import numpy as np
from keras import ops

from layers.base import density_dtype
from layers.numerics import cholesky_log_det, standard_normal_log_prob
from layers.seeds import draw_noise


def _is_zero(value):
    """True for None or a Python / NumPy number equal to 0 (a tensor cannot be checked, so it is not)."""
    return value is None or (isinstance(value, numbers.Real) and value == 0)


@keras.saving.register_keras_serializable(package="flow_zoo")
class Prior(keras.layers.Layer):
    """Base class of every prior over a flow's latent (the protocol a model talks to).

    The latent ``z`` a flow produces (the *flow latent*) is modelled by the
    prior, which may have a latent of its own (the *prior latent*: ``d``
    coordinates for a noisy injective or manifold prior, the flow latent
    itself for a unit Gaussian). A subclass implements:

    * ``log_prob(z, training=None)``: per-example ``log p(z)``, shape ``[batch]``;
    * ``latent_shape``: shape of one prior latent;
    * ``noise_shapes``: ``(latent_noise_shape, observation_noise_shape or None)``,
      the per-example shapes of the standard-normal noise ``generate`` maps;
    * ``generate(latent_noise, observation_noise=None, temperature=1.0,
      noise_scale=1.0)``: a deterministic map from given noise to flow latents
      (what exported samplers run). Temperature ``t`` multiplies the standard
      deviation of the prior latent (GLOW's convention); noise scale ``s``
      multiplies the observation-noise covariance of priors that have one.

    and, where they are not identities, ``encode(z, stochastic=False, seed=None)``
    (flow latent -> prior latent; ``stochastic=True`` draws from the
    posterior of priors with ``stochastic_encoder = True``) and
    ``decode(latent, noise_scale=0.0, seed=None, noise=None)`` (prior latent ->
    flow latent, with ``sqrt(noise_scale)``-scaled observation noise drawn from
    ``seed`` or given as ``noise`` where ``has_observation_noise``).

    Written once here: ``sample(num_samples, temperature, noise_scale, seed) =
    generate(*layers.draw_noise(noise_shapes, num_samples, seed), temperature,
    noise_scale)`` (one seed stream per noise tensor, so exports reproduce it),
    identity ``encode`` / ``decode`` that refuse ``stochastic=True``, a
    non-zero ``noise_scale``, a ``seed`` or ``noise`` with a ``ValueError``
    (never ignored silently), ``has_observation_noise`` and ``call(inputs) =
    log_prob(inputs)`` (evaluation mode). Layers that are priors and also
    follow another contract (the NIF priors: ``layer(x)`` returns ``(z,
    manifold_term)``) keep their own ``call``.

    Args:
        **kwargs: standard ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: flow latents ``(batch, ...)``; returns ``log_prob(inputs)``.

    Example (a prior defines its density, its shapes and its noise map; the rest is inherited):

    >>> class Wide(layers.Prior):  # N(0, 4 I)
    ...     def build(self, input_shape):
    ...         self.shape = tuple(input_shape[1:])
    ...     latent_shape = property(lambda self: self.shape)
    ...     noise_shapes = property(lambda self: (self.shape, None))
    ...     def log_prob(self, z, training=None):
    ...         return layers.standard_normal_log_prob(z / 2.0) - math.prod(self.shape) * math.log(2.0)
    ...     def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0):
    ...         return 2.0 * temperature * latent_noise
    >>> prior = Wide()
    >>> prior.build((None, 3))
    >>> prior.log_prob(prior.sample(4, seed=0)).shape, prior.has_observation_noise
    ((4,), False)

    Reference:
        Kingma & Dhariwal, "Glow", NeurIPS 2018 (temperature, section 5.2);
        Cunningham et al., "Normalizing Flows Across Dimensions", 2020 (noise
        scale).
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", density_dtype())  # float32 under a mixed policy too (layers.base.density_dtype)
        super().__init__(**kwargs)

    stochastic_encoder = False
    """True where ``encode(z, stochastic=True)`` draws from a posterior (the NIF priors, ``SpreadPrior``)."""

    num_classes = None
    """``K`` for a class-conditional prior (``log_prob`` and ``generate`` then take ``labels=``), None otherwise."""

    def label_arguments(self, labels):
        """``{"labels": labels}`` for a class-conditional prior, ``{}`` otherwise (refusing labels it cannot use)."""
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(f"{type(self).__name__} is not class-conditional: `labels` has no meaning here. Build "
                                 "the model with `num_classes=K` to train p(x | y).")
            return {}
        return {"labels": labels}

    @property
    def latent_shape(self):
        """Shape of one prior latent (what ``encode`` returns and ``decode`` takes, per example)."""
        raise NotImplementedError(f"{type(self).__name__} must define `latent_shape`.")

    @property
    def noise_shapes(self):
        """Per-example shapes ``(latent_noise, observation_noise or None)`` of the noise ``generate`` maps."""
        raise NotImplementedError(f"{type(self).__name__} must define `noise_shapes`.")

    @property
    def has_observation_noise(self):
        """True when sampling and ``decode`` add observation noise (``noise_shapes[1]`` is not None)."""
        return self.noise_shapes[1] is not None

    def summary_facts(self):
        """JSON-serializable facts about the fitted prior that a model card reports; ``{}`` by default."""
        return {}

    def log_prob(self, z, training=None):
        """Per-example ``log p(z)`` of flow latents ``z``, shape ``[batch]``.

        Args:
            z: flow latents ``(batch, ...)``.
            training: Python bool; priors with training-time noise (spread,
                deep NIF draws) read it.

        Returns:
            A tensor of shape ``[batch]`` (nats).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `log_prob`.")

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0):
        """Flow latents from given standard-normal noise (deterministic; what exported samplers run).

        Args:
            latent_noise: ``(batch,) + noise_shapes[0]``.
            observation_noise: ``(batch,) + noise_shapes[1]``, or None (priors
                without observation noise; on the learned manifold otherwise).
            temperature: multiplies the prior latent's standard deviation.
            noise_scale: multiplies the observation-noise covariance.

        Returns:
            Flow latents ``(batch, ...)``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `generate`.")

    def sample(self, num_samples, temperature=1.0, noise_scale=1.0, seed=None, labels=None):
        """Draws ``num_samples`` flow latents: ``generate`` on seeded standard-normal noise.

        Args:
            num_samples: int, the number of draws.
            temperature: float >= 0 (see ``generate``).
            noise_scale: float >= 0 (see ``generate``).
            seed: int, ``keras.random.SeedGenerator`` or None; noise tensor
                ``i`` is drawn from ``layers.derive_seed(seed, i)``.
            labels: class indices ``(num_samples,)`` of a class-conditional
                prior (refused by the others).

        Returns:
            Flow latents ``(num_samples, ...)``.
        """
        noise = draw_noise(self.noise_shapes, num_samples, seed, self.compute_dtype)
        return self.generate(*noise, temperature, noise_scale, **self.label_arguments(labels))

    def check_deterministic_encode(self, stochastic, seed):
        """Refuses ``stochastic=True`` and a ``seed`` for a prior whose encoder is deterministic.

        Raises:
            ValueError: naming the prior and the fix.
        """
        if stochastic:
            raise ValueError(
                f"{type(self).__name__} has a deterministic encoder; stochastic=True is not available. Call "
                "encode(z) with stochastic=False (priors with stochastic_encoder=True draw from a posterior)."
            )
        if seed is not None:
            raise ValueError(f"{type(self).__name__} has a deterministic encoder: `seed` is unused; leave it None.")

    def check_noiseless_decode(self, noise_scale, seed, noise):
        """Refuses a non-zero ``noise_scale``, a ``seed`` and ``noise`` for a prior without observation noise.

        Raises:
            ValueError: naming the prior and the fix.
        """
        if not _is_zero(noise_scale):
            raise ValueError(
                f"{type(self).__name__} has no observation noise; decode(noise_scale={noise_scale!r}) is not "
                "available. Use noise_scale=0.0 (the default, a Python number): its decodes lie on the support."
            )
        if seed is not None or noise is not None:
            raise ValueError(
                f"{type(self).__name__} has no observation noise: decode's `seed` and `noise` are unused; "
                "leave them None."
            )

    def encode(self, z, stochastic=False, seed=None):
        """Flow latent -> prior latent; here the identity (the prior is over the flow latent itself).

        Args:
            z: flow latents ``(batch, ...)``.
            stochastic: must be False (deterministic encoder; refused otherwise).
            seed: must be None.

        Returns:
            ``z``.
        """
        self.check_deterministic_encode(stochastic, seed)
        return z

    def decode(self, latent, noise_scale=0.0, seed=None, noise=None):
        """Prior latent -> flow latent; here the identity (no observation noise).

        Args:
            latent: prior latents ``(batch,) + latent_shape``.
            noise_scale: must be 0 (refused otherwise).
            seed: must be None.
            noise: must be None.

        Returns:
            ``latent``.
        """
        self.check_noiseless_decode(noise_scale, seed, noise)
        return latent

    def initialize(self, z):
        """Data-dependent initialization (act-norm) of the prior's own flows from flow latents ``z`` (eager).

        Nothing here; priors holding a flow with act-norm layers override it.
        """
        del z

    def call(self, inputs):
        return self.log_prob(inputs)


LatentPrior = Prior
"""The former name of ``Prior`` (kept so existing imports work)."""


@keras.saving.register_keras_serializable(package="flow_zoo")
class StandardNormal(Prior):
    """Unit Gaussian prior ``N(0, I)`` over a flow's latent.

    The prior latent is the flow latent: ``encode`` / ``decode`` are
    identities (deterministic, no observation noise: ``stochastic=True`` and
    a non-zero ``noise_scale`` are refused, see ``Prior``). Temperature ``t``
    multiplies the standard deviation of the samples (GLOW's convention):
    ``z = t * eps``; ``generate``'s ``noise_scale`` has no effect here (it
    scales a noisy injective prior's observation noise).

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
        return standard_normal_log_prob(ops.cast(z, self.compute_dtype))

    @property
    def noise_shapes(self):
        """Per-example shapes of the latent noise and (none here) the observation noise."""
        return self.event_shape, None

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0):
        """Deterministic sampling from given noise: ``temperature * latent_noise``."""
        del observation_noise, noise_scale
        return ops.cast(temperature, self.compute_dtype) * ops.cast(latent_noise, self.compute_dtype)


@keras.saving.register_keras_serializable(package="flow_zoo")
class ClassConditionalNormal(Prior):
    """A learned diagonal Gaussian per class over a flow's latent: ``p(z | y) = N(z; mu_y, diag(exp(2 s_y)))``.

    The class-conditional top prior of GLOW (section 5 of the paper, its
    ``y``-conditioned prior): every class ``y`` has its own mean ``mu_y`` and
    log-scale ``s_y`` over the whole latent, both initialized to zero, so a
    new prior is the unit Gaussian for every class. The flow is shared; a
    class is a region of the latent space. ``log_prob`` and ``generate``
    take ``labels`` (integer class indices, shape ``(batch,)``; refused when
    missing, of the wrong shape or dtype, or out of range). The prior latent
    is the flow latent (``encode`` / ``decode`` are identities).

    Temperature ``t`` multiplies the class's standard deviation:
    ``z = mu_y + t exp(s_y) eps`` (GLOW's convention).

    Args:
        num_classes: int ``K >= 2``.
        **kwargs: standard layer arguments.

    Example:

    >>> prior = layers.ClassConditionalNormal(num_classes=10)
    >>> prior.build((None, 16))
    >>> z = prior.sample(4, seed=0, labels=np.array([0, 1, 2, 3]))
    >>> prior.log_prob(z, labels=np.array([0, 1, 2, 3])).shape
    (4,)

    Reference:
        Kingma & Dhariwal, "Glow", NeurIPS 2018 (class-conditional prior, section 5).
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        if num_classes is None:
            raise ValueError("ClassConditionalNormal: `num_classes` must be an int >= 2; received None.")
        self.num_classes = check_num_classes(num_classes, "ClassConditionalNormal")

    def build(self, input_shape):
        self.event_shape = tuple(int(d) for d in input_shape[1:])
        shape = (self.num_classes,) + self.event_shape
        self.class_means = self.add_weight(shape=shape, initializer="zeros", name="class_means")
        self.class_log_scales = self.add_weight(shape=shape, initializer="zeros", name="class_log_scales")

    @property
    def latent_shape(self):
        """Shape of one prior latent (the flow's latent shape)."""
        return self.event_shape

    @property
    def noise_shapes(self):
        """Per-example shapes of the latent noise and (none here) the observation noise."""
        return self.event_shape, None

    def class_parameters(self, labels, batch_size=None):
        """``(mu_y, s_y)`` gathered for ``labels`` (checked), each ``(batch,) + latent_shape``."""
        from layers.checks import check_labels

        labels = check_labels(labels, self.num_classes, self.name, batch_size)
        return ops.take(self.class_means, labels, axis=0), ops.take(self.class_log_scales, labels, axis=0)

    def log_prob(self, z, training=None, labels=None):
        """Per-example ``log N(z; mu_y, diag(exp(2 s_y)))``, shape ``[batch]`` (nats)."""
        del training
        z = ops.cast(z, self.compute_dtype)
        mean, log_scale = self.class_parameters(labels, z.shape[0])
        axes = tuple(range(1, len(z.shape)))
        return standard_normal_log_prob((z - mean) * ops.exp(-log_scale)) - ops.sum(log_scale, axis=axes)

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0, labels=None):
        """Deterministic sampling from given noise: ``mu_y + temperature * exp(s_y) * latent_noise``."""
        del observation_noise, noise_scale
        latent_noise = ops.cast(latent_noise, self.compute_dtype)
        mean, log_scale = self.class_parameters(labels, latent_noise.shape[0])
        return mean + ops.cast(temperature, self.compute_dtype) * ops.exp(log_scale) * latent_noise

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config


def check_num_classes(num_classes, owner):
    """``num_classes`` as None or an int ``K >= 2``, refused otherwise with a message naming ``owner``."""
    if num_classes is None:
        return None
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"{owner}: `num_classes` must be None or an int >= 2; received {num_classes!r}.")
    return int(num_classes)


class ClassConditionalBase:
    """Mixin of the priors whose latent goes through a low-dimensional flow ``h`` to a base latent ``u'``.

    Deep NIF's flow on ``z`` (``layers.DeepNIFPrior``) and the DNF / M-flow
    inner flow on ``u`` (``layers.SplitPrior``) end in a unit Gaussian; with
    ``num_classes=K`` that base becomes GLOW's class-conditional normal
    (``ClassConditionalNormal``: a learned mean and log-scale of ``u'`` per
    class), so ``p(u | y) = N(h(u); mu_y, diag(exp(2 s_y))) |det dh/du|``:
    the flow ``h`` is shared and conditioned on ``y`` through its base, as
    GLOW conditions its top prior. A new prior is the unconditional one for
    every class (both parameters start at zero).

    The host calls ``_init_class_base`` in ``__init__``, ``_build_class_base``
    in ``build`` and adds ``num_classes`` to its config when set.
    """

    def _init_class_base(self, num_classes):
        self.num_classes = check_num_classes(num_classes, type(self).__name__)
        self.class_base = (None if self.num_classes is None
                           else ClassConditionalNormal(self.num_classes, name="class_base"))

    def _build_class_base(self, dim):
        if self.class_base is not None and not self.class_base.built:
            self.class_base.build((None, int(dim)))

    def _checked_labels(self, labels, batch_size):
        """Checked int32 labels of a conditional prior; None for an unconditional one (which refuses labels)."""
        if self.class_base is None:
            self.label_arguments(labels)
            return None
        from layers.checks import check_labels

        return check_labels(labels, self.num_classes, self.name, batch_size)

    def base_log_prob(self, u, labels=None):
        """``log p(u' | y)`` of base latents ``u'`` (``log N(u'; 0, I)`` when unconditional), per example."""
        if self.class_base is None:
            self.label_arguments(labels)
            return standard_normal_log_prob(u)
        return self.class_base.log_prob(u, labels=labels)

    def base_generate(self, latent_noise, temperature=1.0, labels=None):
        """Base latents from standard-normal noise: ``t eps`` (unconditional) or ``mu_y + t exp(s_y) eps``."""
        if self.class_base is None:
            self.label_arguments(labels)
            return ops.cast(temperature, self.compute_dtype) * ops.cast(latent_noise, self.compute_dtype)
        return self.class_base.generate(latent_noise, temperature=temperature, labels=labels)

    def _class_base_config(self, config):
        if self.num_classes is not None:  # only when set: configs of unconditional models stay byte-identical
            config["num_classes"] = self.num_classes
        return config


# ------------------------------------------------------------------ post-hoc Gaussian mixture


def _tfd():
    """TensorFlow Probability's distributions (TensorFlow backend)."""
    if keras.backend.backend() != "tensorflow":
        raise NotImplementedError(
            "GaussianMixturePrior.distribution() is a TensorFlow Probability distribution and needs the TensorFlow "
            "backend (TFP's JAX substrate does not import with this JAX); log_prob and sample work on every backend."
        )
    import tensorflow_probability as tfp

    return tfp.distributions


def _component_thresholds(weights):
    """``Phi^-1`` of the cumulative mixture weights (the last, +inf, stored as 1e30), float32."""
    from scipy.special import ndtri

    cumulative = np.cumsum(np.asarray(weights, np.float64))
    cumulative[-1] = 1.0
    return np.minimum(ndtri(np.clip(cumulative, 0.0, 1.0)), 1e30).astype("float32")


@keras.saving.register_keras_serializable(package="flow_zoo")
class GaussianMixturePrior(Prior):
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
    Temperature multiplies every component's standard deviation. The prior
    latent is the flow / encoder latent (identity ``encode`` / ``decode``,
    deterministic, no observation noise; see ``Prior``).

    Args:
        latent_dim: int, d.
        num_components: int K (1: a single full-covariance Gaussian).
        **kwargs: standard layer arguments.

    Example:

    >>> prior = layers.GaussianMixturePrior(8, num_components=10)
    >>> prior.fit(encoded_training_data, seed=0)
    >>> z = prior.sample(16, temperature=1.0, seed=0)

    Reference:
        Ghosh et al., "From Variational to Deterministic Autoencoders", ICLR
        2020 (ex-post density estimation); Kumar, Poole & Murphy,
        "Regularized Autoencoders via Relaxed Injective Probability Flow",
        AISTATS 2020.
    """

    def __init__(self, latent_dim, num_components=10, num_classes=None, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(latent_dim, int) and latent_dim >= 1):
            raise ValueError(f"`latent_dim` must be an int >= 1; received {latent_dim!r}.")
        if not (isinstance(num_components, int) and num_components >= 1):
            raise ValueError(f"`num_components` must be an int >= 1; received {num_components!r}.")
        num_classes = check_num_classes(num_classes, "GaussianMixturePrior")
        self.latent_dim = latent_dim
        self.num_components = num_components
        self.num_classes = None if num_classes is None else int(num_classes)

    @property
    def _class_axes(self):
        """The leading parameter shape: ``(K_classes,)`` for a class-conditional mixture, ``()`` otherwise."""
        return () if self.num_classes is None else (self.num_classes,)

    def build(self, input_shape=None):
        k, d, lead = self.num_components, self.latent_dim, self._class_axes
        self.logits = self.add_weight(shape=lead + (k,), initializer="zeros", trainable=False, name="logits")
        self.means = self.add_weight(shape=lead + (k, d), initializer="zeros", trainable=False, name="means")
        eye = np.broadcast_to(np.eye(d, dtype="float32"), lead + (k, d, d)).copy()
        self.scale_tril = self.add_weight(shape=lead + (k, d, d), initializer=keras.initializers.Constant(eye),
                                          trainable=False, name="scale_tril")
        thresholds = np.broadcast_to(_component_thresholds(np.full(k, 1.0 / k)), lead + (k,)).copy()
        self.thresholds = self.add_weight(shape=lead + (k,), initializer=keras.initializers.Constant(thresholds),
                                          trainable=False, name="component_thresholds")
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
    def _checked_mixture(self, weights, means, covariances):
        """One mixture's float64 ``(weights, means, Cholesky factors)``, checked."""
        if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(means)) and np.all(np.isfinite(covariances))):
            raise ValueError(f"{self.name}: mixture parameters contain NaN or infinite values.")
        if np.any(weights <= 0) or not np.isclose(weights.sum(), 1.0, atol=1e-6):
            raise ValueError(f"{self.name}: mixture weights must be positive and sum to 1; received {weights}.")
        try:
            chol = np.linalg.cholesky((covariances + np.swapaxes(covariances, -1, -2)) / 2)
        except np.linalg.LinAlgError as error:
            raise ValueError(f"{self.name}: covariances must be symmetric positive definite ({error}).") from None
        return weights, means, chol

    def set_parameters(self, weights, means, covariances):
        """Sets the mixture from weights ``(K,)``, means ``(K, d)`` and covariances ``(K, d, d)`` (NumPy).

        A class-conditional mixture takes one mixture per class: a leading
        class axis on all three, ``(classes, K)``, ``(classes, K, d)``,
        ``(classes, K, d, d)``.
        """
        k, d, lead = self.num_components, self.latent_dim, self._class_axes
        weights = np.asarray(weights, np.float64)
        means = np.asarray(means, np.float64)
        covariances = np.asarray(covariances, np.float64)
        if self.num_classes is None:
            weights = weights.reshape(-1)
        if weights.shape != lead + (k,) or means.shape != lead + (k, d) or covariances.shape != lead + (k, d, d):
            expected = ", ".join(str(lead + shape) for shape in ((k,), (k, d), (k, d, d)))
            raise ValueError(f"{self.name}: expected weights, means, covariances of shapes {expected}; received "
                             f"{weights.shape}, {means.shape}, {covariances.shape}.")
        if self.num_classes is None:
            weights, means, chol = self._checked_mixture(weights, means, covariances)
            thresholds = _component_thresholds(weights)
        else:
            chol = np.empty_like(covariances)
            for c in range(self.num_classes):
                _, _, chol[c] = self._checked_mixture(weights[c], means[c], covariances[c])
            thresholds = np.stack([_component_thresholds(w) for w in weights])
        self.logits.assign(np.log(weights).astype("float32"))
        self.thresholds.assign(thresholds)
        self.means.assign(means.astype("float32"))
        self.scale_tril.assign(chol.astype("float32"))
        self.fitted.assign(1.0)

    def _fit_one(self, x, seed, max_iter, reg_covar, what):
        from sklearn.mixture import GaussianMixture

        if len(x) < max(2, self.num_components):
            raise ValueError(
                f"{self.name}.fit: needs at least {max(2, self.num_components)} encoded examples {what}for "
                f"{self.num_components} component(s); received {len(x)}."
            )
        return GaussianMixture(self.num_components, covariance_type="full", random_state=seed, max_iter=max_iter,
                               reg_covar=reg_covar).fit(x)

    def fit(self, latents, seed=0, max_iter=200, reg_covar=1e-6, labels=None):
        """Fits the mixture to ``latents`` ``(n, d)`` with scikit-learn's ``GaussianMixture`` (full covariances, EM).

        A class-conditional mixture needs ``labels`` (``(n,)`` class indices)
        and fits one mixture per class to that class's latents (each class
        needs at least ``max(2, num_components)`` examples).

        Returns:
            dict with ``converged``, ``iterations`` and ``mean_log_likelihood``
            (per example, of the fitted mixture on ``latents``; conditional:
            of ``log p(z | y)`` at each example's own class, plus
            ``per_class`` with each class's dict).
        """
        from layers.checks import check_labels

        x = np.asarray(ops.convert_to_numpy(latents), np.float64)
        if x.ndim != 2 or x.shape[1] != self.latent_dim:
            raise ValueError(f"{self.name}.fit: `latents` must be (n, {self.latent_dim}); received {x.shape}.")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{self.name}.fit: `latents` contain NaN or infinite values; the encoder diverged?")
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(f"{self.name}.fit: this mixture is not class-conditional, so `labels` has no meaning; "
                                 "build it with `num_classes=K` to fit one mixture per class.")
            mixture = self._fit_one(x, seed, max_iter, reg_covar, "")
            self.set_parameters(mixture.weights_ / mixture.weights_.sum(), mixture.means_, mixture.covariances_)
            return {"converged": bool(mixture.converged_), "iterations": int(mixture.n_iter_),
                    "mean_log_likelihood": float(mixture.score(x))}
        labels = np.asarray(ops.convert_to_numpy(check_labels(labels, self.num_classes, f"{self.name}.fit", len(x))))
        per_class, parameters, total = [], [], 0.0
        for c in range(self.num_classes):
            members = x[labels == c]
            mixture = self._fit_one(members, seed, max_iter, reg_covar, f"of class {c} ")
            parameters.append((mixture.weights_ / mixture.weights_.sum(), mixture.means_, mixture.covariances_))
            score = float(mixture.score(members))
            total += score * len(members)
            per_class.append({"converged": bool(mixture.converged_), "iterations": int(mixture.n_iter_),
                              "mean_log_likelihood": score, "examples": int(len(members))})
        self.set_parameters(*(np.stack(part) for part in zip(*parameters)))
        return {"converged": all(c["converged"] for c in per_class),
                "iterations": max(c["iterations"] for c in per_class),
                "mean_log_likelihood": total / len(x), "per_class": per_class}

    def _parameters(self, labels, batch_size):
        """``(logits, means, scale_tril, thresholds)``: the mixture's, or gathered per example for ``labels``."""
        names = (self.logits, self.means, self.scale_tril, self.thresholds)
        if self.num_classes is None:
            if labels is not None:
                raise ValueError(f"{self.name}: this mixture is not class-conditional, so `labels` has no meaning.")
            return tuple(ops.convert_to_tensor(v) for v in names)
        from layers.checks import check_labels

        labels = check_labels(labels, self.num_classes, self.name, batch_size)
        return tuple(ops.take(ops.convert_to_tensor(v), labels, axis=0) for v in names)

    # ---------------------------------------------------------- evaluation
    def distribution(self, labels=None):
        """The mixture as a TensorFlow Probability distribution (event shape ``(d,)``).

        Class-conditional: pass ``labels`` (``(batch,)``); the result has batch
        shape ``(batch,)``, each the mixture of that example's class.
        """
        return self._distribution(labels, None)

    def _distribution(self, labels, batch_size):
        tfd = _tfd()
        logits, means, scales, _ = self._parameters(labels, batch_size)
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(logits=logits),
            components_distribution=tfd.MultivariateNormalTriL(loc=means, scale_tril=scales),
        )

    def log_prob(self, z, training=None, labels=None):
        """Per-example ``log p(z)`` (nats), shape ``(batch,)``: the TFP distribution's on TensorFlow, else ``log_prob_ops``.

        Class-conditional: ``log p(z | y)`` for ``labels`` (one class index per example).
        """
        del training
        if keras.backend.backend() == "tensorflow":
            return self._distribution(labels, z.shape[0]).log_prob(ops.cast(z, "float32"))
        return self.log_prob_ops(z, labels=labels)

    def log_prob_ops(self, z, labels=None):
        """The same log-density in plain ``keras.ops`` (triangular solves and a log-sum-exp; any backend)."""
        z = ops.cast(z, "float32")
        logits, means, scales, _ = self._parameters(labels, z.shape[0])
        if self.num_classes is None:
            diff = ops.transpose(z[:, None, :] - means[None], (1, 2, 0))  # (K, d, batch)
            white = ops.solve_triangular(scales, diff, lower=True)  # (K, d, batch): L_k^-1 (z - mean_k)
            component = standard_normal_log_prob(white, axis=1) - 0.5 * cholesky_log_det(scales)[:, None]
            return ops.logsumexp(component + ops.log_softmax(logits)[:, None], axis=0)
        diff = (z[:, None, :] - means)[..., None]  # (batch, K, d, 1): per-example mixtures
        white = ops.solve_triangular(scales, diff, lower=True)[..., 0]  # (batch, K, d)
        component = standard_normal_log_prob(white, axis=-1) - 0.5 * cholesky_log_det(scales)  # (batch, K)
        return ops.logsumexp(component + ops.log_softmax(logits, axis=-1), axis=-1)

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0, labels=None):
        """Latents from given standard-normal noise of shape ``(batch,) + noise_shapes[0]`` (see the class docstring).

        Class-conditional: each example from its class's mixture (``labels``).
        """
        del observation_noise, noise_scale
        noise = ops.cast(latent_noise, "float32")
        _, means, scales, thresholds = self._parameters(labels, noise.shape[0])
        if self.num_components > 1:
            u, eps = noise[:, 0], noise[:, 1:]
            component = ops.sum(ops.cast(u[:, None] > thresholds[..., :-1], "int32"), axis=1)  # (K,) or (batch, K)
        else:
            eps = noise
            component = ops.zeros((ops.shape(noise)[0],), "int32")
        if self.num_classes is None:
            means, scales = ops.take(means, component, axis=0), ops.take(scales, component, axis=0)
        else:
            pick = ops.one_hot(component, self.num_components, dtype="float32")  # per-example component of its class
            means = ops.einsum("bk,bkd->bd", pick, means)
            scales = ops.einsum("bk,bkij->bij", pick, scales)
        return means + ops.cast(temperature, "float32") * ops.einsum("bij,bj->bi", scales, eps)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "num_components": self.num_components,
                "num_classes": self.num_classes}
