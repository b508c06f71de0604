"""Denoising normalizing flow (DNF), M-flow and PIE: manifold learning and on-manifold density in one flow.

All three share one architecture (Horvat & Pfister 2021, figure 1): an outer
flow ``f`` on ``R^D`` (here in the data -> latent direction, ``z = f(x)``,
the paper's ``f_psi^-1``) whose flat latent splits into ``u`` (first ``d``
coordinates) and ``v`` (the rest), an inner flow ``h`` on ``u`` and the
reference density ``p_u'(h(u)) |det dh/du| p_v(v)`` with ``p_v = N(0, v_std^2
I)`` (``layers.SplitPrior``). The generator is ``g(u') = f^-1(Pad(h^-1(u')))``.

* DNF (``mode="dnf"``): trained on data inflated with ``N(0, sigma^2 I)``
  noise on the negative log-likelihood of eq. 13 plus ``lambda`` times the
  reconstruction ``||x - f^-1(Pad(Proj_u(f(x~))))||^2`` against the clean
  ``x`` (eq. 12, 14); ``v_std = sigma``.
* PIE (``mode="pie"``): the DNF with ``sigma = lambda = 0`` (the paper's
  remark); ``p_v`` needs a positive width, a small ``v_std`` (default 0.01).
* M-flow (``mode="mflow"``): density ``p_u'(u') |det G_g(u')|^-1/2`` (eq.
  16) with the full Gram determinant of ``g`` from its Jacobian; trained
  in a manifold phase (reconstruction, outer flow only) and a density phase
  (NLL of ``u``, inner flow only), sequentially or alternately
  (``train_mflow``).

Everything trains with ``compile`` + ``fit``; the loss is in nats per example
(eq. 14), not bits/dim.
"""

import math

import keras
import numpy as np
from keras import ops

import layers as flow_layers
from layers.base import sum_except_batch
from layers.manifold import SplitPrior, gram_log_det
from layers.spline import ElementwiseSpline, SplineCoupling
from zoo import registry
from zoo.flow_model import FlowModel, replica_share, weighted_mean
from zoo.glow import glow_flow, realnvp_flow
from zoo.manifolds import THIN_SPIRAL_ALPHA, thin_spiral, thin_spiral_map

DNF_PAPER = "Horvat & Pfister 2021, Denoising Normalizing Flow"
MFLOW_PAPER = "Brehmer & Cranmer 2020, Flows for simultaneous manifold learning and density estimation"
PIE_PAPER = "Beitler et al. 2021, PIE: Pseudo-Invertible Encoder (as a DNF with sigma = lambda = 0)"
MODES = ("dnf", "mflow", "pie")
PHASES = ("joint", "manifold", "density")
PIE_V_STD = 0.01


def batch_jacobian(fn, x):
    """Per-example Jacobian ``d fn(x)_i / d x_i`` of shape ``(batch, out_size, in_size)``.

    ``fn`` maps ``(batch, in_size)`` to ``(batch, ...)`` example by example.
    Forward mode (``in_size`` Jacobian-vector products, the cheap direction
    for an embedding ``R^d -> R^D`` with ``d < D``): TensorFlow's
    ``ForwardAccumulator``; JAX: ``vmap(jacfwd)``.
    (Keras has no Jacobian op, so this is the one backend-specific helper.)
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        columns = []
        for i in range(int(x.shape[-1])):  # forward mode: one Jacobian-vector product per input coordinate
            tangent = tf.one_hot(tf.fill(tf.shape(x)[:1], i), int(x.shape[-1]), dtype=x.dtype)
            with tf.autodiff.ForwardAccumulator(x, tangent) as accumulator:
                y = fn(x)
            column = accumulator.jvp(y, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            columns.append(tf.reshape(column, (tf.shape(y)[0], -1)))
        return tf.stack(columns, axis=-1)
    if backend == "jax":
        import jax

        return jax.vmap(jax.jacfwd(lambda xi: ops.reshape(fn(xi[None]), (-1,))))(x)
    raise NotImplementedError(f"batch_jacobian supports the tensorflow and jax backends; this is {backend}.")


@keras.saving.register_keras_serializable(package="flow_zoo")
class DenoisingFlow(FlowModel):
    """DNF / M-flow / PIE as one Keras model (see the module docstring).

    ``model(x)`` returns the full-dimensional log-density ``log q(x)`` of eq.
    13 (outer flow + ``SplitPrior``); ``model.log_prob(x)`` is the model's
    density: ``log q(x)`` for DNF / PIE and the M-flow density of eq. 16
    (full Gram determinant, autodiff Jacobian: small ``D`` only) for M-flow.
    ``on_manifold_log_prob`` is the DNF's on-manifold estimate of section 5.1
    and ``log_gram_det_estimate`` the Gram determinant of Proposition 1.

    Sampling: ``u' ~ N(0, temperature^2 I)``, ``x = f^-1(Pad(h^-1(u')))``;
    ``encode(x) = h(Proj_u(f(x)))`` (``d``-vectors); ``decode(u')``.

    Args:
        flow: outer ``FlowLayer`` mapping (preprocessed) data to a flat
            ``D``-vector.
        input_shape: shape of one example.
        latent_dim: int ``d``, ``1 <= d < D``.
        inner_flow: ``FlowLayer`` on ``d``-vectors (``h``), or None.
        mode: ``"dnf"``, ``"mflow"`` or ``"pie"``.
        noise_std: inflation noise ``sigma`` (DNF, > 0; must be 0 otherwise).
        reconstruction_weight: ``lambda`` >= 0 (DNF; 0 for PIE; unused by
            M-flow, whose manifold phase is pure reconstruction).
        v_std: standard deviation of ``p_v``; default ``noise_std`` (DNF) or
            0.01 (PIE, M-flow).
        phase: ``"joint"`` (DNF, PIE) or ``"manifold"`` / ``"density"``
            (M-flow; default ``"manifold"``).
        n_bits: int for image models (uint8 inputs), None for vectors.
        preprocessing: as ``FlowModel``'s. For images the inflation noise
            and the reconstruction live in the space the outer flow sees
            (after dequantization and the logit transform).
        seed: int or None, seed of the training-time inflation noise.
        eval_seed: int, seed of the evaluation-time noise (deterministic
            ``evaluate``).
        prior: a ``SplitPrior`` (used by ``from_config``; built from
            ``latent_dim``, ``inner_flow`` and ``v_std`` when None).
        **kwargs: ``keras.Model`` arguments (``name``).

    Example:

    >>> model = zoo.get("dnf_spiral_1")
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> model.fit(zoo.manifolds.thin_spiral(10000).data, batch_size=100, epochs=5)
    >>> density = np.exp(model.on_manifold_log_prob(grid))

    Reference:
        Horvat & Pfister, "Denoising Normalizing Flow", NeurIPS 2021;
        Brehmer & Cranmer, "Flows for simultaneous manifold learning and
        density estimation", NeurIPS 2020.
    """

    def __init__(self, flow, input_shape, latent_dim, inner_flow=None, mode="dnf", noise_std=0.1,
                 reconstruction_weight=1.0, v_std=None, phase=None, n_bits=None, preprocessing=None, seed=None,
                 eval_seed=0, prior=None, **kwargs):
        if mode not in MODES:
            raise ValueError(f"DenoisingFlow: `mode` must be one of {MODES}; received {mode!r}.")
        noise_std, reconstruction_weight = float(noise_std), float(reconstruction_weight)
        if mode == "dnf" and not noise_std > 0:
            raise ValueError(f"DenoisingFlow(mode='dnf'): `noise_std` (sigma) must be > 0; received {noise_std}. "
                             "sigma = 0 is PIE: use mode='pie'.")
        if mode != "dnf" and noise_std != 0:
            raise ValueError(f"DenoisingFlow(mode={mode!r}) trains on clean data: `noise_std` must be 0; received "
                             f"{noise_std}. Inflation noise makes it a DNF (mode='dnf').")
        if mode == "pie" and reconstruction_weight != 0:
            raise ValueError(f"DenoisingFlow(mode='pie') is the DNF with sigma = lambda = 0: "
                             f"`reconstruction_weight` must be 0; received {reconstruction_weight}.")
        if reconstruction_weight < 0:
            raise ValueError(f"DenoisingFlow: `reconstruction_weight` must be >= 0; received {reconstruction_weight}.")
        data_dim = math.prod(int(n) for n in input_shape)
        if not 1 <= int(latent_dim) < data_dim:
            raise ValueError(f"DenoisingFlow: `latent_dim` must satisfy 1 <= d < D = {data_dim}; received {latent_dim}.")
        if phase is None:
            phase = "manifold" if mode == "mflow" else "joint"
        if prior is None:
            prior = SplitPrior(latent_dim, inner_flow, v_std=noise_std if v_std is None and mode == "dnf"
                               else (PIE_V_STD if v_std is None else v_std), name="split_prior")
        super().__init__(flow, input_shape, prior=prior, n_bits=n_bits, preprocessing=preprocessing, **kwargs)
        self.mode = mode
        self.noise_std = noise_std
        self.reconstruction_weight = reconstruction_weight
        self.seed = seed
        self.eval_seed = int(eval_seed)
        if len(self.latent_shape) != 1:
            raise ValueError(f"{self.name}: the outer flow must output flat vectors; it outputs shape "
                             f"{self.latent_shape}. End it with layers.Flatten().")
        if self.prior.latent_dim != int(latent_dim):
            raise ValueError(f"{self.name}: the prior's latent_dim ({self.prior.latent_dim}) != latent_dim ({latent_dim}).")
        self.latent_dim = int(latent_dim)
        self._tracker.unlock()  # the model is built in FlowModel.__init__; the noise stream is state too
        self.noise_generator = keras.random.SeedGenerator(seed)
        self._tracker.lock()
        self._phase = None
        self._phase_functions = {}
        self._gram_function = None
        self.phase = phase

    # ------------------------------------------------------------------ phases
    @property
    def phase(self):
        """Training phase: ``"joint"`` (DNF, PIE) or M-flow's ``"manifold"`` / ``"density"``.

        Setting it marks the outer flow (manifold phase) or the inner flow
        (density phase) as the only trainable part and makes the next ``fit``
        trace a new train step. Compile before switching phases (``compile``
        builds the optimizer over both flows, so one optimizer serves both;
        under JAX each phase switch starts a fresh optimizer instead).
        """
        return self._phase

    @phase.setter
    def phase(self, phase):
        allowed = ("manifold", "density") if self.mode == "mflow" else ("joint",)
        if phase not in allowed:
            raise ValueError(f"{self.name} (mode={self.mode!r}): `phase` must be one of {allowed}; received {phase!r}.")
        outer = phase in ("joint", "manifold")
        self.flow.trainable = outer
        if self.preprocessing is not None:
            self.preprocessing.trainable = outer
        if self.prior.inner_flow is not None:
            self.prior.inner_flow.trainable = phase in ("joint", "density")
        if self._phase != phase and keras.backend.backend() == "jax":
            # JAX's stateless optimizer step needs the variable list it was built with: each phase starts a
            # fresh optimizer of the same configuration (as the reference trainers do) and re-traces.
            self.train_function = self.test_function = None
            if getattr(self, "optimizer", None) is not None and self.optimizer.built:
                self.optimizer = type(self.optimizer).from_config(self.optimizer.get_config())
        elif self._phase != phase:  # each phase keeps its own traced train / test steps and one optimizer
            if self._phase is not None:
                self._phase_functions[self._phase] = (self.train_function, self.test_function)
            self.train_function, self.test_function = self._phase_functions.get(phase, (None, None))
        self._phase = phase

    def compile(self, *args, **kwargs):
        """``keras.Model.compile``; M-flow's optimizer is built over both flows (phases share it)."""
        super().compile(*args, **kwargs)
        self._phase_functions = {}
        if (self.mode == "mflow" and keras.backend.backend() != "jax" and self.optimizer is not None
                and not self.optimizer.built):
            self.optimizer.build(self._all_trainable_candidates())

    def _all_trainable_candidates(self):
        """Variables that some phase trains (outer flow, preprocessing, inner flow)."""
        candidates = []
        for part in (self.preprocessing, self.flow, self.prior.inner_flow):
            if part is None:
                continue
            was = part.trainable
            part.trainable = True
            candidates += list(part.trainable_weights)
            part.trainable = was
        return candidates

    # ------------------------------------------------------------ data -> latent
    def _inflation_noise(self, h, training):
        seed = self.noise_generator if training else self.eval_seed
        return flow_layers.batch_noise(ops.shape(h), self.compute_dtype, seed)

    def reconstruct_flow_input(self, h):
        """``f^-1(Pad(Proj_u(f(h))))`` in the outer flow's input space (eq. 11)."""
        z, _ = self.flow(h, training=False)
        return self.flow.inverse(self.prior.pad(self.prior.proj(z)))

    def loss_terms(self, x, training=False, noise=None):
        """Per-example terms of the training objective, in nats.

        Returns a dict with ``nll``: ``-log q(x~)`` (eq. 13 at the inflated
        ``x~ = x + sigma eps``; DNF, PIE) or ``-log p_u(u(x))`` (M-flow's
        density-phase objective, ``u`` held fixed); ``reconstruction``:
        ``||x - f^-1(Pad(Proj_u(f(x~))))||^2`` against the clean ``x`` (eq.
        12); and ``loss``: the phase's per-example objective (DNF:
        ``nll + lambda * reconstruction``, eq. 14).

        Args:
            x: a batch of data.
            training: fresh inflation noise when True, fixed-seed noise
                otherwise.
            noise: optional standard-normal noise of the flow input's shape
                (replaces the draw; for tests).
        """
        h, log_det_pre = self.preprocess(x, training=training)
        if self.mode == "dnf":
            eps = self._inflation_noise(h, training) if noise is None else ops.cast(noise, h.dtype)
            h_tilde = h + self.noise_std * eps
        else:
            h_tilde = h
        z, log_det = self.flow(h_tilde, training=training)
        u = self.prior.proj(z)
        reconstruction = sum_except_batch(ops.square(h - self.flow.inverse(self.prior.pad(u))))
        if self.mode == "mflow":
            nll = -self.prior.log_prob_u(ops.stop_gradient(u), training=training)
            loss = reconstruction if self.phase == "manifold" else nll
        else:
            nll = -(self.prior.log_prob(z, training=training) + log_det + log_det_pre)
            loss = nll + self.reconstruction_weight * reconstruction if self.mode == "dnf" else nll
        return {"nll": nll, "reconstruction": reconstruction, "loss": loss}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean per-example objective of the current phase, in nats (``y`` / ``y_pred`` are unused)."""
        del y, y_pred
        return replica_share(weighted_mean(self.loss_terms(x, training=training)["loss"], sample_weight))

    def initialize(self, x):
        """Act-norm data-dependent init of the outer flow and (on ``u``) of the inner flow."""
        z, _ = self.forward(ops.convert_to_tensor(x), training=True)
        self.prior.inner(self.prior.proj(z), training=True)

    # -------------------------------------------------------------- densities
    def log_prob(self, x):
        """The model's log-density: ``log q(x)`` (DNF, PIE) or the M-flow density of eq. 16."""
        if self.mode == "mflow":
            return self.manifold_log_prob(x)
        return self(x, training=False)

    def generator(self, latent):
        """``g(u') = f^-1(Pad(h^-1(u')))`` in the space ``log_prob`` is a density of.

        Vectors: the data. Images: the continuous levels ``k + u`` (the
        preprocessing inverted without ``Dequantize``'s rounding, which has a
        zero derivative), so the Jacobian of ``g`` is the manifold's.
        """
        h = self.flow.inverse(self.prior.decode(latent))
        if self.preprocessing is None:
            return h
        steps = self.preprocessing.flow_layers if isinstance(self.preprocessing, flow_layers.FlowSequence) else [
            self.preprocessing]
        for step in reversed(steps):
            h = h * step.num_levels if isinstance(step, flow_layers.Dequantize) else step.inverse(h)
        return h

    def generator_gram_log_det(self, latent):
        """``0.5 log det(J_g^T J_g)`` of the generator at ``u'`` (autodiff Jacobian ``(batch, D, d)``).

        Called eagerly on the TensorFlow backend, the Jacobian runs as one
        cached ``tf.function`` (eager forward-mode autodiff would re-trace its
        per-op helpers at every new batch size).
        """
        latent = ops.cast(latent, self.compute_dtype)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            if tf.executing_eagerly():
                if self._gram_function is None:
                    self._gram_function = tf.function(
                        lambda value: gram_log_det(batch_jacobian(self.generator, value)), reduce_retracing=True)
                return self._gram_function(latent)
        return gram_log_det(batch_jacobian(self.generator, latent))

    def manifold_log_prob(self, x):
        """M-flow density (eq. 16): ``log N(u'; 0, I) - 0.5 log det G_g(u')`` at ``u' = encode(x)``.

        The density of the projection of ``x`` onto the learned manifold,
        with respect to the manifold's ``d``-dimensional volume. Costs a
        ``D x d`` Jacobian per example.
        """
        latent = self.encode(x)
        log_pu = -0.5 * sum_except_batch(ops.square(latent)) - 0.5 * self.latent_dim * math.log(2 * math.pi)
        return log_pu - self.generator_gram_log_det(latent)

    def on_manifold_log_prob(self, x, threshold=1.0 / 3.0):
        """DNF section 5.1: ``log(q(x) / q_sigma(x | x))``, ``-inf`` where ``|v(x)| > threshold * sigma``.

        ``q_sigma(x | x) = (2 pi sigma^2)^(-(D - d) / 2)`` is the inflation
        noise's density at zero in the ``D - d`` normal directions (``sigma``
        is ``v_std``); ``|v|`` is the Euclidean norm of ``v``. M-flow models
        return ``manifold_log_prob``.
        """
        if self.mode == "mflow":
            return self.manifold_log_prob(x)
        z, log_det = self.forward(x, training=False)
        _, v = self.prior.split(z)
        sigma = self.prior.v_std
        log_q = self.prior.log_prob(z) + log_det
        log_p = log_q + 0.5 * (self.num_dims - self.latent_dim) * math.log(2 * math.pi * sigma**2)
        off = ops.sqrt(sum_except_batch(ops.square(v))) > threshold * sigma
        return ops.where(off, ops.cast(-np.inf, log_p.dtype), log_p)

    def log_gram_det_estimate(self, x):
        """Proposition 1: ``log |det G_g(x)| ~ log |det G_f(x)| + log |det G_h(u)| = -2 (log|det df/dx| + log|det dh/du|)``.

        Valid for a trained DNF (``L_DNF ~ 0``), where ``g`` is the map from a
        standard-normal ``u'`` to the manifold; no Jacobian is formed.
        """
        z, log_det = self.forward(x, training=False)
        _, log_det_h = self.prior.inner(self.prior.proj(z), training=False)
        return -2.0 * (log_det + log_det_h)

    # ---------------------------------------------------------- serialization
    def get_config(self):
        config = super().get_config()
        config.update({
            "latent_dim": self.latent_dim,
            "mode": self.mode,
            "noise_std": self.noise_std,
            "reconstruction_weight": self.reconstruction_weight,
            "phase": self.phase,
            "seed": self.seed,
            "eval_seed": self.eval_seed,
        })
        return config


def train_mflow(model, x, schedule="sequential", manifold_epochs=1, density_epochs=1, cycles=1, **fit_kwargs):
    """Trains an M-flow in its two phases with ``fit`` (any backend).

    ``schedule="sequential"``: ``manifold_epochs`` of the manifold phase
    (reconstruction; outer flow), then ``density_epochs`` of the density
    phase (NLL of ``u``; inner flow). ``"alternating"``: ``cycles`` times
    (``manifold_epochs`` manifold, ``density_epochs`` density). The model
    must be compiled.

    Returns:
        A list of ``(phase, keras.callbacks.History)``.
    """
    if getattr(model, "mode", None) != "mflow":
        raise ValueError("train_mflow needs a DenoisingFlow with mode='mflow'.")
    if schedule not in ("sequential", "alternating"):
        raise ValueError(f"train_mflow: `schedule` must be 'sequential' or 'alternating'; received {schedule!r}.")
    if model.optimizer is None:
        raise ValueError("train_mflow: compile the model first (model.compile(optimizer=...)).")
    rounds = 1 if schedule == "sequential" else int(cycles)
    histories = []
    for _ in range(rounds):
        for phase, epochs in (("manifold", manifold_epochs), ("density", density_epochs)):
            model.phase = phase
            histories.append((phase, model.fit(x, epochs=int(epochs), **fit_kwargs)))
    return histories


# ---------------------------------------------------------------- builders
COUPLINGS = ("affine", "spline")


def use_spline_couplings(flow, num_bins=8, tail_bound=3.0):
    """Replaces every ``AffineCoupling`` of an unbuilt flow tree by a ``SplineCoupling`` of the same width.

    Turns ``zoo.glow.glow_flow`` / ``realnvp_flow`` into their
    rational-quadratic spline versions (Durkan et al. 2019) without a second
    copy of the architecture code. Returns ``flow`` (changed in place).
    """
    if isinstance(flow, flow_layers.FlowSequence):
        for i, layer in enumerate(list(flow.flow_layers)):
            if isinstance(layer, flow_layers.AffineCoupling):
                flow.flow_layers.pop(i)
                flow.flow_layers.insert(i, SplineCoupling(layer.hidden_units, layer.num_hidden_layers, num_bins,
                                                          tail_bound))
            else:
                use_spline_couplings(layer, num_bins, tail_bound)
    elif isinstance(flow, flow_layers.FactorOut):
        use_spline_couplings(flow.inner_flow, num_bins, tail_bound)
    return flow


def coupling_flow(dim, num_couplings, hidden_units, num_hidden_layers=2, coupling="spline", num_bins=8,
                  tail_bound=3.0):
    """``realnvp_flow`` ([act-norm, coupling, reverse] x N) with affine or rational-quadratic spline couplings."""
    if coupling not in COUPLINGS:
        raise ValueError(f"`coupling` must be one of {COUPLINGS}; received {coupling!r}.")
    flow = realnvp_flow(dim, num_couplings, hidden_units, num_hidden_layers)
    return use_spline_couplings(flow, num_bins, tail_bound) if coupling == "spline" else flow


def _inner_flow(latent_dim, num_couplings, hidden_units, num_hidden_layers=2, coupling="spline", num_bins=8,
                tail_bound=3.0):
    """The inner flow ``h``: couplings for ``d >= 2``; for ``d = 1`` act-norm (+ an element-wise spline)."""
    if latent_dim == 1:  # no coupling split in 1-D (the reference's thin-spiral inner flow is a single affine map)
        steps = [flow_layers.ActNorm()]
        if coupling == "spline":
            steps.append(ElementwiseSpline(num_bins, tail_bound))
        return flow_layers.FlowSequence(steps, name="inner_flow")
    flow = coupling_flow(latent_dim, num_couplings, hidden_units, num_hidden_layers, coupling, num_bins, tail_bound)
    return flow_layers.FlowSequence(flow.flow_layers, name="inner_flow")


def make_vector_dnf(dim, latent_dim, mode="dnf", num_couplings=8, hidden_units=64, num_hidden_layers=2,
                    inner_couplings=4, coupling="spline", num_bins=8, tail_bound=3.0, noise_std=None,
                    reconstruction_weight=None, v_std=None, phase=None, seed=None, name="vector_dnf"):
    """DNF / M-flow / PIE on ``dim``-vectors: coupling-MLP outer flow + inner flow on ``u``.

    ``coupling``: ``"spline"`` (rational-quadratic, ``num_bins`` bins on
    ``[-tail_bound, tail_bound]``, as the paper) or ``"affine"``. Defaults:
    DNF ``sigma = 0.1`` (``sigma^2 = 0.01``), ``lambda = 1`` (the paper's
    thin-spiral setting); PIE and M-flow ``sigma = lambda = 0``.
    """
    noise_std = (0.1 if mode == "dnf" else 0.0) if noise_std is None else noise_std
    reconstruction_weight = (1.0 if mode == "dnf" else 0.0) if reconstruction_weight is None else reconstruction_weight
    flow = coupling_flow(dim, num_couplings, hidden_units, num_hidden_layers, coupling, num_bins, tail_bound)
    inner = _inner_flow(latent_dim, inner_couplings, hidden_units, num_hidden_layers, coupling, num_bins, tail_bound)
    return DenoisingFlow(flow, (dim,), latent_dim, inner, mode=mode, noise_std=noise_std,
                         reconstruction_weight=reconstruction_weight, v_std=v_std, phase=phase, seed=seed, name=name)


def make_image_dnf(image_shape, latent_dim, mode="dnf", num_levels=2, steps_per_level=4, hidden_channels=64, n_bits=8,
                   latent_flow_couplings=4, latent_flow_hidden_units=256, coupling="spline", num_bins=8,
                   tail_bound=3.0, noise_std=None, reconstruction_weight=None, v_std=None, phase=None, seed=0,
                   name="image_dnf"):
    """DNF / M-flow / PIE on uint8 images: multiscale GLOW outer flow + coupling inner flow on ``u``.

    The GLOW (``zoo.glow.glow_flow``: act-norm, 1x1 convolution, coupling;
    squeeze and factor-out per level) uses rational-quadratic spline couplings
    (``coupling="spline"``, as the paper) or affine ones. Its flat output is
    reversed (``layers.Permute``) so that ``u``, the first ``d`` coordinates,
    comes from the last (coarsest, deepest) level rather than the first
    factored-out half.
    """
    noise_std = (0.1 if mode == "dnf" else 0.0) if noise_std is None else noise_std
    reconstruction_weight = (1.0 if mode == "dnf" else 0.0) if reconstruction_weight is None else reconstruction_weight
    if coupling not in COUPLINGS:
        raise ValueError(f"`coupling` must be one of {COUPLINGS}; received {coupling!r}.")
    glow = glow_flow(image_shape, num_levels, steps_per_level, hidden_channels, seed=seed)
    if coupling == "spline":
        use_spline_couplings(glow, num_bins, tail_bound)
    flow = flow_layers.FlowSequence([glow, flow_layers.Permute()], name="outer_flow")
    inner = _inner_flow(latent_dim, latent_flow_couplings, latent_flow_hidden_units, 2, coupling, num_bins,
                        tail_bound)
    return DenoisingFlow(flow, image_shape, latent_dim, inner, mode=mode, noise_std=noise_std,
                         reconstruction_weight=reconstruction_weight, v_std=v_std, phase=phase, n_bits=n_bits,
                         seed=seed, name=name)


# ------------------------------------------------- thin-spiral experiment (DNF section 5.1)
def thin_spiral_log_speed(u):
    """``log sqrt(det G_g(u)) = log |g'(u)|`` of the thin-spiral map ``g`` of ``zoo.manifolds.thin_spiral_map``.

    With ``r = alpha sqrt(u)``: ``|dg/dr| = sqrt(1 + r^2) / 3`` and ``dr/du =
    alpha / (2 sqrt(u))``, so ``|g'(u)| = alpha sqrt(1 + alpha^2 u) / (6 sqrt(u))``.
    """
    u = np.asarray(u, dtype=np.float64)
    alpha = THIN_SPIRAL_ALPHA
    return math.log(alpha / 6.0) + 0.5 * np.log1p(alpha**2 * u) - 0.5 * np.log(u)


def manifold_log_density(model, x, batch_size=500):
    """The density a model reports for points on the data manifold, as NumPy.

    DNF / PIE: ``on_manifold_log_prob`` (section 5.1); M-flow:
    ``manifold_log_prob`` (eq. 16); any other flow: ``log_prob`` (a
    ``D``-dimensional density, out of scale on a manifold).
    """
    fn = model.on_manifold_log_prob if isinstance(model, DenoisingFlow) else model.log_prob
    x = np.asarray(x, dtype="float32")
    return np.concatenate([np.asarray(fn(x[i : i + batch_size])) for i in range(0, len(x), batch_size)])


def latent_density_distances(u, learned, true):
    """Distances between a learned and the true latent density on a 1-D grid ``u`` (trapezoid rule).

    Returns a dict: ``total_variation`` = ``0.5 int |learned - true| du``
    (scale and shape), ``wasserstein_1`` between the two densities each
    normalized over the grid (shape only; ``nan`` when the learned one has no
    mass), and ``learned_mass`` = ``int learned du``.
    """
    u, learned, true = (np.asarray(a, dtype=np.float64) for a in (u, learned, true))
    learned = np.where(np.isfinite(learned), learned, 0.0)
    steps = np.diff(u)

    def cumulative(f):
        return np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * steps)])

    mass, true_mass = cumulative(learned)[-1], cumulative(true)[-1]
    w1 = float("nan")
    if mass > 0:
        gap = np.abs(cumulative(learned) / mass - cumulative(true) / true_mass)
        w1 = float(np.sum(0.5 * (gap[1:] + gap[:-1]) * steps))
    tv = 0.5 * np.sum(0.5 * (np.abs(learned - true)[1:] + np.abs(learned - true)[:-1]) * steps)
    return {"total_variation": float(tv), "wasserstein_1": w1, "learned_mass": float(mass)}


def induced_latent_density(model, u, scale=0.3):
    """DNF section 5.1: ``pi_hat(u) = p_model(g(u)) sqrt(det G_g(u))`` against the true ``Exp(scale)`` density.

    Returns ``(pi_hat, pi)`` on ``u`` (NumPy); ``pi_hat = pi`` exactly when
    the model's on-manifold density is right.
    """
    u = np.asarray(u, dtype=np.float64)
    log_p = manifold_log_density(model, thin_spiral_map(u).astype("float32"))
    return np.exp(log_p + thin_spiral_log_speed(u)), np.exp(-u / scale) / scale


def compiled(fn):
    """``fn`` as a graph function on the TensorFlow backend (``tf.function``), unchanged otherwise."""
    if keras.backend.backend() != "tensorflow":
        return fn
    import tensorflow as tf

    return tf.function(fn, reduce_retracing=True)


def time_density(fn, x, repeats=3):
    """Median wall seconds of ``fn(x)`` over ``repeats`` calls, after one warm-up call (which traces)."""
    import time

    np.asarray(fn(x))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn(x))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def density_timing(mflow_model, dnf_model, x, repeats=3):
    """Seconds for one density evaluation of the batch ``x``: M-flow (full Gram determinant) vs DNF.

    Both run as compiled graph functions (``compiled``); returns a dict with
    ``points``, ``mflow_seconds``, ``dnf_seconds`` and their ``ratio``.
    """
    timing = {"points": int(len(x)),
              "mflow_seconds": time_density(compiled(mflow_model.log_prob), x, repeats),
              "dnf_seconds": time_density(compiled(dnf_model.on_manifold_log_prob), x, repeats)}
    timing["ratio"] = timing["mflow_seconds"] / timing["dnf_seconds"]
    return timing


def make_thin_spiral_nf(num_couplings=9, hidden_units=64, num_bins=5, tail_bound=3.0, name="nf_spiral_spline"):
    """The NF baseline of section 5.1 with the DNF's outer architecture: a spline coupling flow, unit Gaussian."""
    return FlowModel(coupling_flow(2, num_couplings, hidden_units, 2, "spline", num_bins, tail_bound), (2,), name=name)


def run_thin_spiral(num_train=10000, epochs=10, batch_size=100, learning_rate=1e-3, num_couplings=9, hidden_units=64,
                    grid_size=100, timing_points=500, latent_points=400, seed=0, verbose=0, log=print):
    """Section 5.1: trains NF, M-flow (sequential), DNF (sigma^2 = 0.01, lambda = 1) and PIE on the thin spiral.

    Every model has the same outer architecture (``num_couplings`` spline
    couplings of ``hidden_units``) and sees ``epochs`` passes over
    ``num_train`` points (M-flow: ``epochs`` in each phase). Evaluates each
    density on a ``grid_size^2`` grid, the induced latent density against the
    true ``pi(u)`` on ``latent_points`` values of ``u``, and times one
    density evaluation of ``timing_points`` points (M-flow: full Gram
    determinant; DNF: no Jacobian).

    Returns:
        A dict with ``models``, ``grid`` (axis values and per-model
        densities), ``latent`` (``u``, true and per-model induced densities),
        ``metrics`` (per model: distances, reconstruction error, train
        seconds) and ``timing``.
    """
    import time

    keras.utils.set_random_seed(seed)  # initial weights, shuffling and noise draws
    data = thin_spiral(num_train, seed=seed).data
    test = thin_spiral(1000, seed=seed + 1).data
    spiral = dict(num_couplings=num_couplings, hidden_units=hidden_units, num_bins=5, tail_bound=3.0)
    models = {
        "NF": make_thin_spiral_nf(**spiral),
        "M-flow": make_vector_dnf(2, 1, mode="mflow", seed=seed, name="mflow", **spiral),
        "DNF": make_vector_dnf(2, 1, mode="dnf", noise_std=0.1, reconstruction_weight=1.0, seed=seed, name="dnf",
                               **spiral),
        "PIE": make_vector_dnf(2, 1, mode="pie", seed=seed, name="pie", **spiral),
    }
    metrics = {}
    for label, model in models.items():
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        start = time.perf_counter()
        if label == "M-flow":
            train_mflow(model, data, "sequential", epochs, epochs, batch_size=batch_size, verbose=verbose)
        else:
            model.fit(data, batch_size=batch_size, epochs=epochs, verbose=verbose)
        metrics[label] = {"train_seconds": time.perf_counter() - start}
        if isinstance(model, DenoisingFlow):
            residual = test - np.asarray(model.reconstruct_flow_input(test))  # vectors: flow input = data
            metrics[label]["reconstruction_mse"] = float(np.mean(np.sum(residual**2, axis=-1)))
        log(f"{label}: trained in {metrics[label]['train_seconds']:.1f} s")

    extent = float(np.abs(data).max()) * 1.15
    axis_values = np.linspace(-extent, extent, grid_size)
    xx, yy = np.meshgrid(axis_values, axis_values)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1)
    grid = {"axis": axis_values}
    u = np.linspace(1e-3, 2.0, latent_points)
    latent = {"u": u}
    for label, model in models.items():
        grid[label] = np.exp(manifold_log_density(model, points)).reshape(grid_size, grid_size)
        latent[label], latent["true"] = induced_latent_density(model, u)
        metrics[label].update(latent_density_distances(u, latent[label], latent["true"]))
        log(f"{label}: TV {metrics[label]['total_variation']:.3f}, W1 {metrics[label]['wasserstein_1']:.3f}")

    timing = density_timing(models["M-flow"], models["DNF"], test[:timing_points])
    dnf_model = models["DNF"]
    estimate = np.asarray(dnf_model.log_gram_det_estimate(test[:200]))
    exact = 2.0 * np.asarray(dnf_model.generator_gram_log_det(dnf_model.encode(test[:200])))
    metrics["DNF"]["prop1_log_gram_mean_abs_error"] = float(np.mean(np.abs(estimate - exact)))
    return {"models": models, "grid": grid, "latent": latent, "metrics": metrics, "timing": timing,
            "data": data}


def plot_thin_spiral(results, path):
    """Figure 2 of the paper: learned densities on the grid (top) and induced latent densities (bottom)."""
    from zoo.evaluate import _figure

    labels = [k for k in results["models"]]
    axis = results["grid"]["axis"]
    extent = [axis[0], axis[-1], axis[0], axis[-1]]
    latent = results["latent"]

    def draw(figure):
        top = figure.add_subplot(2, len(labels) + 1, 1)
        top.scatter(results["data"][:2000, 0], results["data"][:2000, 1], s=0.5)
        top.set_xlim(extent[:2])
        top.set_ylim(extent[2:])
        top.set_aspect("equal")
        top.set_title("data")
        bottom = figure.add_subplot(2, len(labels) + 1, len(labels) + 2)
        bottom.plot(latent["u"], latent["true"], "k")
        bottom.set_title("true pi(u)")
        bottom.set_xlabel("u")
        for i, label in enumerate(labels):
            density = results["grid"][label]
            shown = figure.add_subplot(2, len(labels) + 1, i + 2)
            shown.imshow(density, origin="lower", extent=extent, cmap="viridis",
                         vmax=np.quantile(density[density > 0], 0.99) if np.any(density > 0) else None)
            shown.set_title(label)
            curve = figure.add_subplot(2, len(labels) + 1, len(labels) + i + 3)
            curve.plot(latent["u"], latent["true"], "k", label="true")
            curve.plot(latent["u"], latent[label], "r", label=label)
            curve.set_ylim(0, 1.5 * latent["true"].max())
            tv = results["metrics"][label]["total_variation"]
            curve.set_title(f"{label}: TV {tv:.2f}")
            curve.set_xlabel("u")
            curve.legend(fontsize=7)
    return _figure(path, draw, size=(3.2 * (len(labels) + 1), 6.4))


# ---------------------------------------------------------------- presets
# Thin spiral as the reference configuration: 9 outer rational-quadratic couplings with 5 bins on [-3, 3];
# the inner flow on u (d = 1) is act-norm + an element-wise spline.
SPIRAL = dict(dim=2, latent_dim=1, num_couplings=9, hidden_units=64, num_hidden_layers=2, coupling="spline",
              num_bins=5, tail_bound=3.0)


def _register_presets():
    notes = {"dnf": "sigma^2=0.01, lambda=1", "pie": "sigma=lambda=0, p_v=N(0, 0.01^2)",
             "mflow": "trained in manifold / density phases"}
    for family, paper in (("dnf", DNF_PAPER), ("mflow", MFLOW_PAPER), ("pie", PIE_PAPER)):
        registry.register(
            f"{family}_spiral_1", make_vector_dnf, dict(SPIRAL, mode=family),
            family=family, dataset="spiral", paper=paper, input_shape=(2,), latent_dim=1,
            description=f"Thin spiral (DNF section 5.1), d=1: 9 rational-quadratic MLP couplings (64 units, 5 bins on "
                        f"[-3, 3]) + act-norm and element-wise spline on u; {notes[family]}.",
        )
    registry.register(
        "dnf_sin_1", make_vector_dnf, dict(SPIRAL, mode="dnf"),
        family="dnf", dataset="sin", paper=DNF_PAPER, input_shape=(2,), latent_dim=1,
        description="2-D sin curve (not in the paper), d=1: the thin-spiral architecture; sigma^2=0.01, lambda=1.",
    )
    # CelebA 64x64 as the reference configuration: 4 levels, 20 outer layers (5 per level), 8 inner layers,
    # rational-quadratic splines with 11 bins on [-10, 10], d=512, sigma^2=0.01, MSE weight 1000 on the
    # per-pixel mean; the reconstruction here is a sum over pixels, so lambda = 1000 / D. Conditioner widths
    # are ours (the reference's are not in its config).
    celeba = (64, 64, 3)
    for family in ("dnf", "mflow"):
        registry.register(
            f"{family}_celeba_512", make_image_dnf,
            dict(image_shape=celeba, latent_dim=512, mode=family, num_levels=4, steps_per_level=5,
                 hidden_channels=256, n_bits=8, latent_flow_couplings=8, latent_flow_hidden_units=512,
                 coupling="spline", num_bins=11, tail_bound=10.0,
                 **({"reconstruction_weight": 1000.0 / (64 * 64 * 3)} if family == "dnf" else {})),
            family=family, dataset="celeba", paper=DNF_PAPER if family == "dnf" else MFLOW_PAPER,
            input_shape=celeba, latent_dim=512,
            description=f"{family} on CelebA 64x64, d=512: spline GLOW 4 levels x 5 steps x 256 channels + 8 spline "
                        "couplings x 512 units on u (11 bins on [-10, 10]), n_bits=8"
                        + (", sigma^2=0.01 (logit space), lambda=1000/D." if family == "dnf" else "."),
        )
    registry.register(
        "dnf_fmnist_64", make_image_dnf,
        dict(image_shape=(28, 28, 1), latent_dim=64, mode="dnf", num_levels=2, steps_per_level=8,
             hidden_channels=256, n_bits=8, latent_flow_couplings=8, latent_flow_hidden_units=256,
             coupling="spline", num_bins=11, tail_bound=10.0, reconstruction_weight=1000.0 / (28 * 28)),
        family="dnf", dataset="fmnist", paper=DNF_PAPER, input_shape=(28, 28, 1), latent_dim=64,
        description="DNF on Fashion-MNIST, d=64 (not in the paper): spline GLOW 2 levels x 8 steps x 256 channels "
                    "+ 8 spline couplings x 256 units on u, n_bits=8, sigma^2=0.01 (logit space), lambda=1000/D.",
    )
    registry.register(
        "dnf_digits_8", make_image_dnf,
        dict(image_shape=(8, 8, 1), latent_dim=8, mode="dnf", num_levels=2, steps_per_level=4, hidden_channels=32,
             n_bits=5, latent_flow_couplings=4, latent_flow_hidden_units=64, coupling="spline", num_bins=8,
             tail_bound=5.0, reconstruction_weight=1.0),
        family="dnf", dataset="digits", paper=DNF_PAPER, input_shape=(8, 8, 1), latent_dim=8,
        description="Small CPU preset (not in the paper): DNF on 8x8 digits, d=8, spline GLOW 2 levels x 4 steps x "
                    "32 channels + 4 spline couplings x 64 units on u (8 bins on [-5, 5]), n_bits=5, sigma^2=0.01 "
                    "(logit space), lambda=1.",
    )


_register_presets()
