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

Everything trains with ``compile`` + ``fit``. The objective terms are in nats
per example (eq. 14); the loss, as for every zoo model, is their sum in bits
per dimension (``GenerativeModel.compute_loss``).
"""

import math

import keras
import numpy as np
from keras import ops

import layers as flow_layers
from layers.base import sum_except_batch
from layers.jacobian import batch_jacobian
from layers.manifold import SplitPrior, gram_log_det
from zoo.models.base import array_input
from zoo.models.flow.model import FlowModel

DNF_PAPER = "Horvat & Pfister 2021, Denoising Normalizing Flow"
MFLOW_PAPER = "Brehmer & Cranmer 2020, Flows for simultaneous manifold learning and density estimation"
PIE_PAPER = "Beitler et al. 2021, PIE: Pseudo-Invertible Encoder (as a DNF with sigma = lambda = 0)"
MODES = ("dnf", "mflow", "pie")
PHASES = ("joint", "manifold", "density")
PIE_V_STD = 0.01
DEFAULT_NOISE_STD = 0.1
SPACES = ("data", "flow_input")


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
        noise_std: inflation noise ``sigma`` (DNF, > 0, default 0.1; must be 0,
            the default, otherwise).
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
            ``latent_dim``, ``inner_flow``, ``v_std`` and ``num_classes`` when
            None).
        num_classes: None, or ``K`` for the class-conditional DNF / M-flow /
            PIE: the inner flow on ``u`` is conditioned on ``y`` through its
            base, ``u' ~ N(mu_y, diag(exp(2 s_y)))`` (``layers.SplitPrior``),
            so a class is a region of the learned manifold while the outer
            flow (the manifold itself) is shared; train with
            ``fit(x, labels)``.
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

    def __init__(self, flow, input_shape, latent_dim, inner_flow=None, mode="dnf", noise_std=None,
                 reconstruction_weight=1.0, v_std=None, phase=None, n_bits=None, preprocessing=None, seed=None,
                 eval_seed=0, prior=None, num_classes=None, **kwargs):
        if mode not in MODES:
            raise ValueError(f"DenoisingFlow: `mode` must be one of {MODES}; received {mode!r}.")
        if noise_std is None:
            noise_std = DEFAULT_NOISE_STD if mode == "dnf" else 0.0
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
                               else (PIE_V_STD if v_std is None else v_std), num_classes=num_classes,
                               name="split_prior")
        elif num_classes is not None:
            raise ValueError("DenoisingFlow: pass `num_classes` or a `prior`, not both (the prior carries it).")
        super().__init__(flow, input_shape, prior=prior, n_bits=n_bits, preprocessing=preprocessing,
                         likelihood_term=None if mode == "mflow" else "nll", **kwargs)
        self.mode = mode
        self.density = "manifold" if mode == "mflow" else "ambient"  # M-flow's density lives on the manifold
        self.noise_std = noise_std
        self.reconstruction_weight = reconstruction_weight
        self.seed = seed
        self.eval_seed = int(eval_seed)
        if len(self.flow_latent_shape) != 1:
            raise ValueError(f"{self.name}: the outer flow must output flat vectors; it outputs shape "
                             f"{self.flow_latent_shape}. End it with layers.Flatten().")
        if self.prior.latent_dim != int(latent_dim):
            raise ValueError(f"{self.name}: the prior's latent_dim ({self.prior.latent_dim}) != latent_dim ({latent_dim}).")
        self.latent_dim = int(latent_dim)
        self._tracker.unlock()  # the model is built in FlowModel.__init__; the noise stream is state too
        self.noise_generator = keras.random.SeedGenerator(seed)
        self._tracker.lock()
        self._phase = None
        self._phase_functions = {}
        self._gram_functions = {}
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
        for part in self._density_parts():
            part.trainable = phase in ("joint", "density")
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

    def begin_training_epoch(self, epoch, epochs):
        """M-flow under ``zoo.train``: the first half of the epochs (rounded up) in the manifold phase, the rest in
        the density phase (the paper's sequential schedule); DNF / PIE have one phase."""
        if self.mode == "mflow":
            self.phase = "manifold" if epoch < (int(epochs) + 1) // 2 else "density"

    def compile(self, *args, **kwargs):
        """``keras.Model.compile``; M-flow's optimizer is built over both flows (phases share it)."""
        super().compile(*args, **kwargs)
        self._phase_functions = {}
        if (self.mode == "mflow" and keras.backend.backend() != "jax" and self.optimizer is not None
                and not self.optimizer.built):
            self.optimizer.build(self._all_trainable_candidates())

    def _density_parts(self):
        """What the density phase trains: the inner flow on ``u`` and, when conditional, its per-class base."""
        return [part for part in (self.prior.inner_flow, self.prior.class_base) if part is not None]

    def _all_trainable_candidates(self):
        """Variables that some phase trains (outer flow, preprocessing, inner flow, class-conditional base)."""
        candidates = []
        for part in (self.preprocessing, self.flow, *self._density_parts()):
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

    def loss_terms(self, x, training=False, noise=None, labels=None):
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
            labels: class indices (class-conditional models only, required there).
        """
        x = array_input(x, "x", self.name)
        labels = self._labels_for(labels, x.shape[0], "loss_terms")
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
            nll = -self.prior.log_prob_u(ops.stop_gradient(u), training=training, labels=labels)
            loss = reconstruction if self.phase == "manifold" else nll
        else:
            nll = -(self.prior.log_prob(z, training=training, labels=labels) + log_det + log_det_pre)
            loss = nll + self.reconstruction_weight * reconstruction if self.mode == "dnf" else nll
        return {"nll": nll, "reconstruction": reconstruction, "loss": loss}

    def objective_terms(self, x, training=False, labels=None):
        """The current phase's objective as named per-example terms (nats; see ``loss_terms``).

        DNF: ``nll`` (at the inflated data) and ``reconstruction`` (times
        lambda); PIE: ``nll``; M-flow: ``reconstruction`` (manifold phase) or
        ``nll_u`` (density phase, ``-log p_u(u)``).
        """
        terms = self.loss_terms(x, training=training, labels=labels)
        if self.mode == "mflow":
            return ({"reconstruction": terms["reconstruction"]} if self.phase == "manifold"
                    else {"nll_u": terms["nll"]})
        if self.mode == "dnf":
            return {"nll": terms["nll"], "reconstruction": self.reconstruction_weight * terms["reconstruction"]}
        return {"nll": terms["nll"]}

    # -------------------------------------------------------------- densities
    def log_prob(self, x, training=False, labels=None):
        """The model's log-density: ``log q(x)`` (DNF, PIE) or the M-flow density of eq. 16 (on the manifold);
        ``log q(x | y)`` / ``log p(x | y)`` given labels."""
        if self.mode == "mflow":
            return self.manifold_log_prob(x, labels=labels)
        return super().log_prob(x, training=training, labels=labels)

    def class_log_likelihoods(self, x):
        """``log p(x | y = k)`` for every class, ``(batch, K)``: the flows (and M-flow's Gram determinant) run once,
        the class-conditional base once per class."""
        if self.mode != "mflow":
            return super().class_log_likelihoods(x)
        self._require_conditional("class_log_likelihoods")
        latent = self.encode(x)
        gram = self.generator_gram_log_det(latent)
        batch = ops.shape(latent)[0]
        return ops.stack([self.prior.base_log_prob(latent, self._labels_for(k, batch, "class_log_likelihoods")) - gram
                          for k in range(self.num_classes)], axis=-1)

    def generator(self, latent):
        """``g(u') = f^-1(Pad(h^-1(u')))`` in the space ``log_prob`` is a density of.

        Vectors: the data. Images: the continuous levels ``k + u`` (the
        preprocessing inverted without ``Dequantize``'s rounding, which has a
        zero derivative), so the Jacobian of ``g`` is the manifold's.
        """
        return self._invert_preprocessing(self.flow.inverse(self.prior.decode(latent)))

    def _invert_preprocessing(self, h):
        """The flow's input space -> the data space densities refer to (continuous levels for images)."""
        if self.preprocessing is None:
            return h
        steps = self.preprocessing.flow_layers if isinstance(self.preprocessing, flow_layers.FlowSequence) else [
            self.preprocessing]
        for step in reversed(steps):
            h = h * step.num_levels if isinstance(step, flow_layers.Dequantize) else step.inverse(h)
        return h

    def _charts(self, u):
        """``u -> [c(u), P^-1(c(u))]`` (flattened, concatenated): the learned manifold, ``c(u) = f^-1(Pad(u))``,
        in the space the inflation noise is added in and in the data space (``P`` the preprocessing)."""
        h = self.flow.inverse(self.prior.pad(u))
        batch = ops.shape(h)[0]
        return ops.concatenate([ops.reshape(h, (batch, -1)),
                                ops.reshape(self._invert_preprocessing(h), (batch, -1))], axis=1)

    def _tangent_log_det_at(self, u):
        jacobian = batch_jacobian(self._charts, u)  # one pass of d JVPs gives both charts' Jacobians
        return gram_log_det(jacobian[:, : self.num_dims]) - gram_log_det(jacobian[:, self.num_dims :])

    def _generator_gram_log_det_at(self, latent):
        return gram_log_det(batch_jacobian(self.generator, latent))

    def _eager_compiled(self, method):
        """``method`` itself, or, called eagerly on the TensorFlow backend, one cached ``tf.function`` of it
        (eager forward-mode autodiff would re-trace its per-op helpers at every new batch size)."""
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            if tf.executing_eagerly():
                name = method.__name__
                if name not in self._gram_functions:
                    self._gram_functions[name] = tf.function(method, reduce_retracing=True)
                return self._gram_functions[name]
        return method

    def generator_gram_log_det(self, latent):
        """``0.5 log det(J_g^T J_g)`` of the generator at ``u'`` (autodiff Jacobian ``(batch, D, d)``)."""
        return self._eager_compiled(self._generator_gram_log_det_at)(ops.cast(latent, self.compute_dtype))

    def preprocessing_tangent_log_det(self, x):
        """``log`` of the ``d``-volume change of the preprocessing ``P`` along the learned manifold at ``x``.

        A density on the manifold transforms with the tangential part of
        ``P``'s Jacobian only, ``0.5 log det(E^T J_P^T J_P E)`` for an
        orthonormal tangent basis ``E``, not with its full ``D``-dimensional
        log-determinant: the normal directions carry no probability volume.
        With the chart ``c(u) = f^-1(Pad(u))`` of the manifold in the flow's
        input space and ``P^-1 o c`` in the data space, this is
        ``0.5 log det G_c(u) - 0.5 log det G_(P^-1 o c)(u)`` at
        ``u = Proj(f(P(x)))``: ``d`` Jacobian-vector products, about the cost
        of M-flow's Gram determinant. Zero (and free) without preprocessing;
        for a fixed elementwise scale ``a`` it is ``d log a`` where the full
        log-determinant is ``D log a``.
        """
        h, _ = self.preprocess(x, training=False)
        z, _ = self.flow(h, training=False)
        return self._tangent_log_det_at_projection(self.prior.proj(z))

    def _tangent_log_det_at_projection(self, u):
        """``preprocessing_tangent_log_det`` from ``u = Proj(f(P(x)))`` (the callers have it already)."""
        if self.preprocessing is None:
            return ops.zeros((ops.shape(u)[0],), dtype=self.compute_dtype)
        return self._eager_compiled(self._tangent_log_det_at)(u)

    def manifold_log_prob(self, x, labels=None):
        """M-flow density (eq. 16): ``log N(u'; 0, I) - 0.5 log det G_g(u')`` at ``u' = encode(x)``.

        The density of the projection of ``x`` onto the learned manifold,
        with respect to the manifold's ``d``-dimensional volume. Costs a
        ``D x d`` Jacobian per example. Class-conditional: ``N(u'; mu_y,
        diag(exp(2 s_y)))`` at the given labels.
        """
        x = array_input(x, "x", self.name)
        labels = self._labels_for(labels, x.shape[0], "manifold_log_prob")
        latent = self.encode(x)
        return self.prior.base_log_prob(latent, labels) - self.generator_gram_log_det(latent)

    def on_manifold_log_prob(self, x, threshold=1.0 / 3.0, space="data", labels=None):
        """DNF section 5.1: the density on the learned manifold, ``-inf`` where ``|v(x)| > threshold * sigma``.

        The paper's ``p(x) = q(x) / q_sigma(x | x)`` holds in the space where
        the inflation noise is added, the outer flow's input ``h = P(x)``:
        ``q_sigma(h | h) = (2 pi sigma^2)^(-(D - d) / 2)`` is the noise's
        density at zero in the ``D - d`` normal directions (``sigma`` is
        ``v_std``) and ``log q(h) = log p_z(f(h)) + log|det df/dh|``. The
        result is then carried to the data space with the tangential part of
        the preprocessing's Jacobian (``preprocessing_tangent_log_det``), so
        it is a density with respect to the manifold's ``d``-volume in the
        data (continuous levels for images), comparable with M-flow's. ``|v|``
        is the Euclidean norm of ``v``. ``space="flow_input"`` returns the
        density in the flow's input space instead (no Jacobian at all; the
        same as ``"data"`` without preprocessing). M-flow models return
        ``manifold_log_prob`` (data space). A class-conditional model needs
        ``labels`` (the density on the manifold given the class).
        """
        space = _check_space(space)
        if self.mode == "mflow":
            return self.manifold_log_prob(x, labels=labels)
        x = array_input(x, "x", self.name)
        labels = self._labels_for(labels, x.shape[0], "on_manifold_log_prob")
        h, _ = self.preprocess(x, training=False)
        z, log_det = self.flow(h, training=False)
        _, v = self.prior.split(z)
        sigma = self.prior.v_std
        log_q = self.prior.log_prob(z, labels=labels) + log_det
        log_p = log_q + 0.5 * (self.num_dims - self.latent_dim) * math.log(2 * math.pi * sigma**2)
        if space == "data":
            log_p = log_p + self._tangent_log_det_at_projection(self.prior.proj(z))
        off = ops.sqrt(sum_except_batch(ops.square(v))) > threshold * sigma
        return ops.where(off, ops.cast(-np.inf, log_p.dtype), log_p)

    def log_gram_det_estimate(self, x, space="data"):
        """Proposition 1: ``log det G_g`` from log-determinants, ``-2 (log|det df/dh| + log|det dh/du|) - 2 t(x)``.

        Proposition 1 holds in the space where the inflation noise is added
        (the outer flow's input ``h``; no Jacobian is formed there): a trained
        DNF (``L_DNF ~ 0``) is an isometry in the normal directions, so its
        full log-determinant is the tangential one. The preprocessing is no
        such isometry; only its tangential part ``t(x)``
        (``preprocessing_tangent_log_det``, zero without preprocessing)
        enters, which carries the estimate to the data space of
        ``generator_gram_log_det``. ``space="flow_input"`` leaves it out (the
        Gram determinant of ``f^-1 o Pad o h^-1``; no Jacobian).
        """
        space = _check_space(space)
        h, _ = self.preprocess(x, training=False)
        z, log_det = self.flow(h, training=False)
        u = self.prior.proj(z)
        _, log_det_h = self.prior.inner(u, training=False)
        if space == "data":
            log_det = log_det + self._tangent_log_det_at_projection(u)
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


def _check_space(space):
    if space not in SPACES:
        raise ValueError(f"`space` must be one of {SPACES} (the data, or the outer flow's input where the inflation "
                         f"noise is added); received {space!r}.")
    return space


def train_mflow(model, x, schedule="sequential", manifold_epochs=1, density_epochs=1, cycles=1, optimizers=None,
                **fit_kwargs):
    """Trains an M-flow in its two phases with ``fit`` (any backend).

    ``schedule="sequential"``: ``manifold_epochs`` of the manifold phase
    (reconstruction; outer flow), then ``density_epochs`` of the density
    phase (NLL of ``u``; inner flow). ``"alternating"``: ``cycles`` times
    (``manifold_epochs`` manifold, ``density_epochs`` density). The model
    must be compiled, unless ``optimizers`` is given: a callable
    ``phase -> optimizer`` whose result the model is compiled with at the
    start of each phase (a fresh optimizer per phase, as the M-flow
    reference trainers do; e.g. a schedule spanning that phase alone).

    Returns:
        A list of ``(phase, keras.callbacks.History)``.
    """
    if not isinstance(model, DenoisingFlow) or model.mode != "mflow":
        raise ValueError("train_mflow needs a DenoisingFlow with mode='mflow'.")
    if schedule not in ("sequential", "alternating"):
        raise ValueError(f"train_mflow: `schedule` must be 'sequential' or 'alternating'; received {schedule!r}.")
    if optimizers is None and getattr(model, "optimizer", None) is None:
        raise ValueError("train_mflow: compile the model first (model.compile(optimizer=...)), or pass "
                         "`optimizers` (phase -> optimizer).")
    rounds = 1 if schedule == "sequential" else int(cycles)
    histories = []
    for _ in range(rounds):
        for phase, epochs in (("manifold", manifold_epochs), ("density", density_epochs)):
            model.phase = phase
            if optimizers is not None:
                model.compile(optimizer=optimizers(phase))
            histories.append((phase, model.fit(x, epochs=int(epochs), **fit_kwargs)))
    return histories
