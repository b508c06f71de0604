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
