"""Layers of the manifold flows (DNF, M-flow, PIE): Pad, Proj, the split prior and the Gram determinant.

A full flow ``f`` on ``R^D`` maps data to a latent ``z = (u, v)`` whose first
``d`` coordinates ``u`` describe the manifold and whose other ``D - d``
coordinates ``v`` the off-manifold (noise) directions (Horvat & Pfister 2021,
eq. 9-10; Brehmer & Cranmer 2020):

* ``Proj(d)``: ``z -> u = (z_1, ..., z_d)`` (``Proj_u``);
* ``Pad(D)``: ``u -> (u, 0, ..., 0)`` (eq. 10), so ``Pad(Proj(z))`` zeroes ``v``;
* ``SplitPrior``: the reference density ``p_u'(h^-1(u)) |det J_h^-1(u)|
  p_v(v)`` with an inner flow ``h`` on ``u`` (data -> latent direction, like
  every flow layer here) and ``p_v = N(0, v_std^2 I)`` (eq. 13 without ``f``);
  a ``layers.Prior`` over the ``d``-dim latent ``u'`` (sample, encode, decode,
  generate);
* ``gram_log_det(jacobian)`` (defined in ``layers.numerics``, importable from
  here): ``0.5 log det(J^T J)`` of a ``(batch, D, d)`` Jacobian through a
  ``d x d`` Cholesky factor (the M-flow density, eq. 16).
"""

import math

import keras
from keras import ops

from layers.base import density_dtype, FlowLayer, check_example_shape, sum_except_batch
from layers.numerics import LOG_2PI
from layers.numerics import gram_log_det  # noqa: F401  (defined in layers.numerics; imported from here by callers)
from layers.priors import ClassConditionalBase, Prior


def _check_flat(shape, name, owner):
    if len(shape) != 2:
        raise ValueError(
            f"{owner}: `{name}` must be a batch of flat vectors (batch, features); received shape "
            f"{tuple(shape)}. Flatten the flow's output first (e.g. with layers.Flatten)."
        )


@keras.saving.register_keras_serializable(package="flow_zoo")
class Proj(keras.layers.Layer):
    """``Proj_u``: keeps the first ``latent_dim`` coordinates of flat latents.

    Args:
        latent_dim: int ``d >= 1``, the number of coordinates kept.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ``(batch, D)`` with ``D > d``.

    Example:

    >>> layers.Proj(1)(np.array([[1.0, 2.0]]))  # [[1.0]]

    Reference:
        Horvat & Pfister, "Denoising Normalizing Flow", NeurIPS 2021, eq. 9.
    """

    def __init__(self, latent_dim, **kwargs):
        kwargs.setdefault("dtype", density_dtype())
        super().__init__(**kwargs)
        if int(latent_dim) < 1:
            raise ValueError(f"Proj: `latent_dim` must be >= 1; received {latent_dim}.")
        self.latent_dim = int(latent_dim)

    def build(self, input_shape):
        _check_flat(tuple(input_shape), "inputs", self.name)
        if input_shape[-1] is not None and int(input_shape[-1]) <= self.latent_dim:
            raise ValueError(
                f"{self.name}: the input dimension ({input_shape[-1]}) must exceed latent_dim ({self.latent_dim}); "
                "choose a smaller latent_dim."
            )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.latent_dim)

    def call(self, inputs):
        _check_flat(inputs.shape, "inputs", self.name)
        return inputs[:, : self.latent_dim]

    def get_config(self):
        config = super().get_config()
        config["latent_dim"] = self.latent_dim
        return config


@keras.saving.register_keras_serializable(package="flow_zoo")
class Pad(keras.layers.Layer):
    """``Pad``: appends zeros to ``d``-vectors up to ``data_dim`` coordinates (DNF eq. 10).

    Args:
        data_dim: int ``D``, the output dimension.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: ``(batch, d)`` with ``1 <= d < D``.

    Example:

    >>> layers.Pad(3)(np.array([[1.0]]))  # [[1.0, 0.0, 0.0]]

    Reference:
        Horvat & Pfister, "Denoising Normalizing Flow", NeurIPS 2021, eq. 10.
    """

    def __init__(self, data_dim, **kwargs):
        kwargs.setdefault("dtype", density_dtype())
        super().__init__(**kwargs)
        if int(data_dim) < 2:
            raise ValueError(f"Pad: `data_dim` must be >= 2; received {data_dim}.")
        self.data_dim = int(data_dim)

    def build(self, input_shape):
        _check_flat(tuple(input_shape), "inputs", self.name)
        if input_shape[-1] is not None and int(input_shape[-1]) >= self.data_dim:
            raise ValueError(
                f"{self.name}: the input dimension ({input_shape[-1]}) must be smaller than data_dim "
                f"({self.data_dim})."
            )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.data_dim)

    def call(self, inputs):
        _check_flat(inputs.shape, "inputs", self.name)
        d = inputs.shape[-1]
        zeros = ops.zeros((ops.shape(inputs)[0], self.data_dim - d), dtype=inputs.dtype)
        return ops.concatenate([inputs, zeros], axis=-1)

    def get_config(self):
        config = super().get_config()
        config["data_dim"] = self.data_dim
        return config


@keras.saving.register_keras_serializable(package="flow_zoo")
class SplitPrior(ClassConditionalBase, Prior):
    """Reference density of a manifold flow's latent ``z = (u, v)`` (DNF eq. 13 without ``f``).

    ``log p(z) = log p_u'(h(u)) + log |det dh/du| + log N(v; 0, v_std^2 I)``
    with ``u = Proj_u(z)`` (first ``latent_dim`` coordinates), ``v`` the rest,
    an inner flow ``h`` mapping ``u`` to ``u'`` (data -> latent, as every flow
    layer here; the paper's ``h_phi`` is its inverse) and ``p_u' = N(0, I)``.

    A ``layers.Prior``, so a ``FlowModel`` samples, encodes and decodes
    through it:

    * ``latent_shape = (latent_dim,)``: the prior latent is ``u'``;
    * ``encode(z) = h(Proj_u(z))`` (deterministic: ``stochastic=True`` is
      refused); ``decode(u') = Pad(h^-1(u'))`` (no observation noise: a
      non-zero ``noise_scale`` is refused);
    * ``generate(eps, temperature=t) = Pad(h^-1(t * eps))`` (temperature
      multiplies the standard deviation of ``u'``, GLOW's convention;
      ``noise_scale`` has no effect: samples lie on the learned manifold).

    Class-conditional (``num_classes=K``): ``p_u'`` becomes
    ``N(mu_y, diag(exp(2 s_y)))`` per class (``layers.ClassConditionalBase``),
    so the inner flow on ``u`` is conditioned on ``y`` through its base while
    the outer flow, ``h`` and ``p_v`` are shared; ``log_prob``, ``log_prob_u``
    and ``generate`` then take ``labels``.

    Args:
        latent_dim: int ``d``, the manifold dimension.
        inner_flow: a ``FlowLayer`` on ``(batch, d)`` vectors, or None for
            ``h = identity``.
        v_std: float > 0, the standard deviation of ``p_v`` (DNF: the
            inflation noise ``sigma``; PIE: a small epsilon).
        num_classes: None, or ``K >= 2`` for the class-conditional base.
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: flat flow latents ``(batch, D)``; calling returns ``log_prob``.

    Example:

    >>> prior = layers.SplitPrior(1, v_std=0.1)
    >>> prior.build((None, 2))
    >>> prior.log_prob(np.zeros((3, 2), "float32")).shape  # (3,)

    Reference:
        Horvat & Pfister, "Denoising Normalizing Flow", NeurIPS 2021, eq. 13;
        Brehmer & Cranmer, "Flows for simultaneous manifold learning and
        density estimation", NeurIPS 2020.
    """

    def __init__(self, latent_dim, inner_flow=None, v_std=1.0, num_classes=None, **kwargs):
        super().__init__(**kwargs)
        self._init_class_base(num_classes)
        if isinstance(inner_flow, dict):
            inner_flow = keras.saving.deserialize_keras_object(inner_flow)
        if inner_flow is not None and not isinstance(inner_flow, FlowLayer):
            raise TypeError(f"SplitPrior: `inner_flow` must be a FlowLayer or None; received {type(inner_flow).__name__}.")
        if not float(v_std) > 0:
            raise ValueError(f"SplitPrior: `v_std` must be > 0; received {v_std}.")
        self.latent_dim = int(latent_dim)
        self.inner_flow = inner_flow
        self.v_std = float(v_std)
        self.proj = Proj(self.latent_dim, name="proj")

    def build(self, input_shape):
        _check_flat(tuple(input_shape), "latent", self.name)
        self.data_dim = int(input_shape[-1])
        self.proj.build(input_shape)
        self.pad = Pad(self.data_dim, name="pad")
        self.pad.build((None, self.latent_dim))
        if self.inner_flow is not None and not self.inner_flow.built:
            self.inner_flow.build((None, self.latent_dim))
        self._build_class_base(self.latent_dim)

    @property
    def latent_shape(self):
        """Shape of one prior latent ``u'``: ``(latent_dim,)``."""
        return (self.latent_dim,)

    @property
    def noise_shapes(self):
        """Per-example shapes of the latent noise (``u'``) and (none here) the observation noise."""
        return (self.latent_dim,), None

    def split(self, z):
        """``(u, v)``: the first ``latent_dim`` coordinates of flat latents and the rest."""
        check_example_shape(z, (self.data_dim,), "z", self.name)
        return self.proj(z), z[:, self.latent_dim :]

    def inner(self, u, training=None):
        """``(u', log |det du'/du|)`` through the inner flow ``h``."""
        if self.inner_flow is None:
            return u, ops.zeros((ops.shape(u)[0],), dtype=u.dtype)
        return self.inner_flow(u, training=training)

    def log_prob_u(self, u, training=None, labels=None):
        """``log p_u(u) = log N(h(u); 0, I) + log |det dh/du|`` per example (``log p_u(u | y)`` given labels)."""
        u_prime, log_det = self.inner(u, training=training)
        return self.base_log_prob(u_prime, labels) + log_det

    def log_prob_v(self, v):
        """``log N(v; 0, v_std^2 I)`` per example."""
        k = v.shape[-1]
        return -0.5 * sum_except_batch(ops.square(v)) / self.v_std**2 - 0.5 * k * (LOG_2PI + 2.0 * math.log(self.v_std))

    def log_prob(self, z, training=None, labels=None):
        """``log p_u(u) + log p_v(v)`` per example, shape ``[batch]`` (``p_u(u | y)`` given labels)."""
        z = ops.cast(z, self.compute_dtype)
        u, v = self.split(z)
        return self.log_prob_u(u, training=training, labels=labels) + self.log_prob_v(v)

    def generate(self, latent_noise, observation_noise=None, temperature=1.0, noise_scale=1.0, labels=None):
        """``Pad(h^-1(temperature * latent_noise))``: flow latents on the learned manifold (class-conditional:
        ``Pad(h^-1(mu_y + temperature * exp(s_y) * latent_noise))``)."""
        del observation_noise, noise_scale
        return self.decode(self.base_generate(latent_noise, temperature, labels))

    def encode(self, z, stochastic=False, seed=None):
        """Flow latent -> ``u' = h(Proj_u(z))`` (deterministic: ``stochastic=True`` / a ``seed`` are refused)."""
        self.check_deterministic_encode(stochastic, seed)
        u, _ = self.split(ops.cast(z, self.compute_dtype))
        return self.inner(u, training=False)[0]

    def decode(self, latent, noise_scale=0.0, seed=None, noise=None):
        """``u'`` -> flow latent ``Pad(h^-1(u'))`` (no observation noise: ``noise_scale`` must be 0)."""
        self.check_noiseless_decode(noise_scale, seed, noise)
        latent = ops.cast(latent, self.compute_dtype)
        u = latent if self.inner_flow is None else self.inner_flow.inverse(latent)
        return self.pad(u)

    def initialize(self, z):
        """Act-norm data initialization of the inner flow on ``Proj_u(z)`` (eager, training mode)."""
        u, _ = self.split(ops.cast(z, self.compute_dtype))
        self.inner(u, training=True)

    def get_config(self):
        config = super().get_config()
        config.update({
            "latent_dim": self.latent_dim,
            "inner_flow": None if self.inner_flow is None else keras.saving.serialize_keras_object(self.inner_flow),
            "v_std": self.v_std,
        })
        return self._class_base_config(config)
