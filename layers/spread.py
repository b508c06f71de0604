"""A learnable low-rank manifold prior trained with the spread divergence.

"On the latent space of flow-based models" (sections 3-7): a volume-preserving
flow ``z = f(x)`` maps data on a ``K``-dimensional manifold to latents on a
``K``-dimensional manifold. The prior is a degenerate Gaussian
``N(0, A A^T)`` with a lower-triangular ``A`` (``D (D + 1) / 2`` parameters,
identity at initialization). Neither ``Q_Z`` (the latents of the data) nor
``P_Z`` (the prior) has a density, so both are spread by independent noise
``N(0, sigma_Z^2 I)``; the spread prior has the closed-form density
``N(0, A A^T + sigma_Z^2 I)`` (eq. 14) and training minimizes its negative
log-density at spread latents ``z + sigma_Z eps`` (term 2 of eq. 12; term 1 is
left out, which is justified for volume-preserving flows and small
``sigma_Z``, section 6 and appendix B).

After training the rank of ``A A^T`` is the intrinsic dimension (eq. 11), and
projecting latents on the top eigenvectors, ``z_proj = z E`` (section 7.2), is
a ``K``-dimensional representation.

Cost for ``D``-dimensional latents (images: ``D`` = pixels): the parameters
are the ``D (D + 1) / 2`` lower-triangular entries, stored packed. One
``log_prob`` call forms ``A`` and ``C = A A^T + sigma_Z^2 I`` (two ``D x D``
matrices), one Cholesky factor of ``C`` (``D^3 / 3`` flops) and one triangular
solve for the whole batch (``B D^2``); nothing per example is ``D x D`` and no
inverse is formed. ``A A^T`` costs ``D^3`` flops (``D^3 / 3`` exploitable by
triangularity, not exploited). For ``D = 1024`` (32x32 images) that is about
1.4 GFLOP and 12 MB of float32 matrices per training step. The spectrum and
the projection are float64 NumPy / SciPy analyses done once after training
(``O(D^3)``; the projection keeps only the ``D x K`` top eigenvectors).
"""

import math

import keras
import numpy as np
from keras import ops

from layers.base import FlowLayer, check_example_shape
from layers.numerics import LOG_2PI, cholesky_log_det, solve_lower
from layers.priors import Prior
from layers.seeds import batch_noise


def significant_eigenvalue_count(eigenvalues, floor, min_ratio=10.0):
    """The number of significant eigenvalues of ``A A^T`` (the intrinsic dimension estimate).

    Rule (documented in docs/ARCHITECTURE.md):

    1. sort the eigenvalues in decreasing order and raise every one to at
       least ``floor`` (default in ``SpreadPrior``: ``sigma_Z^2``; a direction
       whose variance is below the spread noise variance changes the training
       density ``N(0, A A^T + sigma_Z^2 I)`` by less than the noise does, so
       it is indistinguishable from zero);
    2. find the largest ratio between consecutive eigenvalues,
       ``lambda_k / lambda_{k+1}``;
    3. if that ratio is at least ``min_ratio`` (an order of magnitude by
       default), the count is ``k``; otherwise there is no gap and the count
       is ``D`` (no evidence of a lower dimension).

    Args:
        eigenvalues: 1-D array of eigenvalues (any order, >= 0 up to round-off).
        floor: float > 0, the resolution below which eigenvalues count as zero.
        min_ratio: float > 1, the smallest gap accepted as a dimension cut.

    Returns:
        An int in ``[1, len(eigenvalues)]``.

    Raises:
        ValueError: for an empty or non-finite spectrum, ``floor <= 0`` or
            ``min_ratio <= 1``.
    """
    values = np.sort(np.asarray(eigenvalues, dtype=np.float64).ravel())[::-1]
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"significant_eigenvalue_count: needs a non-empty finite spectrum; received {values}.")
    if not floor > 0:
        raise ValueError(f"significant_eigenvalue_count: `floor` must be > 0; received {floor}.")
    if not min_ratio > 1:
        raise ValueError(f"significant_eigenvalue_count: `min_ratio` must be > 1; received {min_ratio}.")
    if values.size == 1:
        return 1
    values = np.maximum(values, floor)
    ratios = values[:-1] / values[1:]
    k = int(np.argmax(ratios))
    return k + 1 if ratios[k] >= min_ratio else int(values.size)


def _identity_packed(size):
    """Initializer of the packed lower triangle: ones at the diagonal positions (``A = I``)."""
    rows, cols = np.tril_indices(size)
    diagonal = (rows == cols).astype("float64")

    def initializer(shape, dtype=None):
        return ops.convert_to_tensor(diagonal.reshape(shape), dtype=dtype)

    return initializer


@keras.saving.register_keras_serializable(package="flow_zoo")
class SpreadPrior(Prior):
    """Learnable degenerate Gaussian prior ``N(0, A A^T)`` spread by ``N(0, sigma_Z^2 I)``.

    A ``layers.Prior`` (``log_prob``, ``noise_shapes``, ``generate``; the base's
    ``sample``; a stochastic ``encode`` and a noisy ``decode``), so it
    replaces the unit Gaussian of a ``FlowModel``. The latent may have any
    example shape; the prior works on the flattened ``D``-vector.

    * ``log_prob(z, training=True)``: ``log N(z + sigma_Z eps; 0, A A^T +
      sigma_Z^2 I)`` with fresh ``eps`` at each call (the Monte Carlo estimate
      of term 2, eq. 15). ``training=False``: ``log N(z; 0, A A^T +
      sigma_Z^2 I)``, deterministic (``evaluate``, saved models).
    * Sampling: ``z = t A eps_z + sqrt(s) sigma_Z eps_s``. Temperature ``t``
      multiplies the standard deviation of the degenerate prior (GLOW's
      convention); noise scale ``s`` multiplies the spread covariance
      ``sigma_Z^2 I``: ``s = 0`` samples the learned degenerate prior (the
      paper's samples), ``s = 1`` the spread prior that was trained.
    * ``encode`` / ``decode``: the prior latent is the flow latent
      (identities; ``stochastic=True`` / ``noise_scale > 0`` add spread
      noise). The low-dimensional representation is ``project``.
    * Analysis (eager, float64): ``a_matrix``, ``covariance``, ``spectrum``,
      ``eigenvectors``, ``intrinsic_dimension`` and ``project``.

    Args:
        spread_std: float > 0, ``sigma_Z`` (the paper uses ``sigma_Z^2 = 1e-4``).
        seed: int or None, seed of the training-time spread noise.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: latent tensor ``(batch, ...)``; calling the layer returns
            ``log_prob(inputs)`` (evaluation mode).

    Example:

    >>> prior = layers.SpreadPrior(spread_std=0.01)
    >>> prior.build((None, 2))
    >>> prior.log_prob(keras.random.normal((4, 2)), training=True).shape
    (4,)
    >>> prior.intrinsic_dimension()  # 2 at initialization (A = I)

    Reference:
        "On the latent space of flow-based models" (anonymous ICLR 2021
        submission), eq. 11, 14, 15 and section 7.2; Zhang et al., "Spread
        Divergence", ICML 2020.
    """

    stochastic_encoder = True

    def __init__(self, spread_std=0.01, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(spread_std, (int, float)) and math.isfinite(spread_std) and spread_std > 0):
            raise ValueError(
                f"SpreadPrior: `spread_std` (sigma_Z) must be a finite float > 0; received {spread_std!r}. "
                "The paper uses 0.01 (sigma_Z^2 = 1e-4)."
            )
        self.spread_std = float(spread_std)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if len(input_shape) < 2 or any(d is None for d in input_shape[1:]):
            raise ValueError(
                f"SpreadPrior needs latents (batch, ...) with known example shape; received {tuple(input_shape)}."
            )
        self.event_shape = tuple(int(d) for d in input_shape[1:])
        self.num_dims = int(np.prod(self.event_shape))
        size = self.num_dims * (self.num_dims + 1) // 2
        self.a_packed = self.add_weight(
            shape=(size,), initializer=_identity_packed(self.num_dims), name="a_lower_packed", trainable=True
        )
        # Position of each A[i, j] in [0, packed...]: 0 (a zero) above the diagonal, 1 + packed index below.
        rows, cols = np.tril_indices(self.num_dims)
        index = np.zeros((self.num_dims, self.num_dims), dtype="int32")
        index[rows, cols] = np.arange(1, size + 1, dtype="int32")
        self._gather_index = index.reshape(-1)

    @property
    def latent_shape(self):
        """Shape of one prior latent (the flow's latent shape)."""
        return self.event_shape

    # ------------------------------------------------------------ the matrix
    def a_matrix(self):
        """The lower-triangular ``A`` as a ``(D, D)`` tensor (formed from the packed entries)."""
        padded = ops.concatenate([ops.zeros((1,), dtype=self.a_packed.dtype), ops.convert_to_tensor(self.a_packed)])
        return ops.reshape(ops.take(padded, self._gather_index), (self.num_dims, self.num_dims))

    def covariance(self, spread=True):
        """``A A^T`` (+ ``sigma_Z^2 I`` with ``spread=True``), a ``(D, D)`` tensor."""
        a = ops.cast(self.a_matrix(), self.compute_dtype)
        cov = ops.matmul(a, ops.transpose(a))
        if spread:
            cov = cov + (self.spread_std**2) * ops.eye(self.num_dims, dtype=cov.dtype)
        return cov

    def _flat(self, z, name="z"):
        check_example_shape(z, self.event_shape, name, self.name)
        return ops.reshape(ops.cast(z, self.compute_dtype), (-1, self.num_dims))

    # ------------------------------------------------------------- density
    def log_prob(self, z, training=None):
        """Per-example log-density of the spread prior, shape ``[batch]``.

        ``training=True`` evaluates it at ``z + sigma_Z eps`` with fresh noise
        (the spread latents of the paper's objective); otherwise at ``z``.
        """
        flat = self._flat(z)
        if training:
            flat = flat + self.spread_std * batch_noise(ops.shape(flat), self.compute_dtype, self.seed_generator)
        chol = ops.cholesky(self.covariance(spread=True))
        whitened = solve_lower(chol, flat)
        return -0.5 * (ops.sum(ops.square(whitened), axis=-1) + cholesky_log_det(chol) + self.num_dims * LOG_2PI)

    # ------------------------------------------------------------ sampling
    @property
    def noise_shapes(self):
        """Per-example shapes of the latent noise ``eps_z`` and the spread noise ``eps_s``."""
        return self.event_shape, self.event_shape

    def _add_spread(self, z, noise_scale, noise):
        if noise is None:
            return z
        noise = ops.cast(noise, self.compute_dtype)
        return z + ops.sqrt(ops.cast(noise_scale, self.compute_dtype)) * self.spread_std * noise

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0):
        """Deterministic sampling from given noise: ``t A eps_z + sqrt(s) sigma_Z eps_s``.

        ``observation_noise`` (the spread noise ``eps_s``) may be None, then
        ``s`` is ignored and the degenerate prior is sampled.
        """
        flat = self._flat(latent_noise, "latent_noise")
        a = ops.cast(self.a_matrix(), self.compute_dtype)
        z = ops.cast(temperature, self.compute_dtype) * ops.matmul(flat, ops.transpose(a))
        z = ops.reshape(z, (-1,) + self.event_shape)
        return self._add_spread(z, noise_scale, observation_noise)

    def _spread_noise(self, z, noise_scale, seed, noise):
        if isinstance(noise_scale, (int, float)) and noise_scale < 0:
            raise ValueError(f"{self.name}: `noise_scale` must be >= 0; received {noise_scale}.")
        if noise is None and not (isinstance(noise_scale, (int, float)) and noise_scale == 0):
            noise = keras.random.normal(ops.shape(z), dtype=self.compute_dtype, seed=seed)
        return self._add_spread(ops.cast(z, self.compute_dtype), noise_scale, noise)

    def encode(self, z, stochastic=False, seed=None):
        """Flow latent -> prior latent: ``z`` (``stochastic=True``: the spread latent ``z + sigma_Z eps``)."""
        return self._spread_noise(z, 1.0 if stochastic else 0.0, seed, None)

    def decode(self, latent, noise_scale=0.0, seed=None, noise=None):
        """Prior latent -> flow latent: ``latent + sqrt(noise_scale) sigma_Z eps`` (identity at 0)."""
        return self._spread_noise(latent, noise_scale, seed, noise)

    # ------------------------------------------------------------ analysis
    def _a_numpy(self):
        return np.asarray(ops.convert_to_numpy(self.a_matrix()), dtype=np.float64)

    def spectrum(self):
        """Eigenvalues of ``A A^T`` in decreasing order (float64; the squared singular values of ``A``)."""
        from scipy import linalg

        return linalg.svdvals(self._a_numpy()) ** 2

    def eigenvectors(self, num_dims):
        """The ``(D, num_dims)`` matrix ``E`` of the top eigenvectors of ``A A^T`` (float64).

        Columns are sorted by decreasing eigenvalue; each column's sign is fixed
        so that its largest-magnitude entry is positive (reproducible). Only the
        requested eigenvectors are computed (``scipy.linalg.eigh`` with
        ``subset_by_index``).
        """
        from scipy import linalg

        num_dims = int(num_dims)
        if not 1 <= num_dims <= self.num_dims:
            raise ValueError(f"{self.name}: `num_dims` must be in [1, {self.num_dims}]; received {num_dims}.")
        a = self._a_numpy()
        _, vectors = linalg.eigh(a @ a.T, subset_by_index=[self.num_dims - num_dims, self.num_dims - 1])
        vectors = vectors[:, ::-1]
        signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(num_dims)])
        return vectors * np.where(signs == 0, 1.0, signs)

    def intrinsic_dimension(self, min_ratio=10.0, floor=None):
        """Count of significant eigenvalues of ``A A^T`` (``significant_eigenvalue_count``).

        ``floor`` defaults to ``sigma_Z^2``, the spread noise variance.
        """
        floor = self.spread_std**2 if floor is None else floor
        return significant_eigenvalue_count(self.spectrum(), floor, min_ratio)

    def summary_facts(self, count=20):
        """The learned spectrum: the intrinsic dimension (rule and floor) and the top ``count`` eigenvalues."""
        eigenvalues = self.spectrum()
        return {"intrinsic_dimension": int(self.intrinsic_dimension()),
                "eigenvalues_top": [float(e) for e in eigenvalues[:count]],
                "rule": "significant_eigenvalue_count: eigenvalues of A A^T floored at sigma_Z^2 = "
                        f"{self.spread_std ** 2:g}; K = position of the largest ratio between consecutive "
                        "eigenvalues if it is >= 10, else D"}

    def project(self, z, num_dims=None):
        """``z_proj = z E``: latents on the top ``num_dims`` eigenvectors (default: the intrinsic dimension).

        Args:
            z: flow latents ``(batch,) + latent_shape``.
            num_dims: int or None (``intrinsic_dimension()``).

        Returns:
            A ``(batch, num_dims)`` tensor.
        """
        num_dims = self.intrinsic_dimension() if num_dims is None else num_dims
        basis = ops.convert_to_tensor(self.eigenvectors(num_dims), dtype=self.compute_dtype)
        return ops.matmul(self._flat(z), basis)

    def get_config(self):
        config = super().get_config()
        config.update({"spread_std": self.spread_std, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="flow_zoo")
class DataNoise(FlowLayer):
    """Adds ``N(0, stddev^2)`` noise to the data when training; the identity otherwise.

    The image experiments of the spread paper (section 7.4) train on data with
    small Gaussian noise whose standard deviation is annealed to a floor.
    ``stddev`` is a non-trainable weight, so a callback can anneal it during
    ``fit`` (``zoo.spread.DataNoiseAnnealing``) and its value is saved with
    the model. Like dequantization noise, it is not part of the bijection:
    ``log_det = 0`` and ``inverse`` is the identity.

    Args:
        stddev: float >= 0, the initial noise standard deviation.
        seed: int or None, seed of the training-time noise.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: any tensor ``(batch, ...)``.
        training: Python bool; noise is added only when True.

    Example:

    >>> noisy, log_det = layers.DataNoise(stddev=0.05)(images, training=True)

    Reference:
        "On the latent space of flow-based models", section 7.4; Sorrenson
        et al., "GIN", ICLR 2020.
    """

    def __init__(self, stddev=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(stddev, (int, float)) and math.isfinite(stddev) and stddev >= 0):
            raise ValueError(f"DataNoise: `stddev` must be a finite float >= 0; received {stddev!r}.")
        self.initial_stddev = float(stddev)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.stddev = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_stddev), trainable=False, name="stddev"
        )

    def call(self, inputs, training=None):
        zeros = ops.zeros((ops.shape(inputs)[0],), dtype=self.compute_dtype)
        if not training:
            return inputs, zeros
        noise = batch_noise(ops.shape(inputs), self.compute_dtype, self.seed_generator)
        return inputs + ops.cast(self.stddev, self.compute_dtype) * noise, zeros

    def _inverse(self, z, training=None):
        return z, ops.zeros((ops.shape(z)[0],), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"stddev": self.initial_stddev, "seed": self.seed})
        return config
