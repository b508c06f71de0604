"""Optimizers and learning-rate schedules of zoo.train (and the spread paper's Adam with coupled L2)."""

import keras
from keras import ops

from zoo.presets import registry

DEFAULT_TRAINING = {
    "learning_rate": 1e-4,
    "warmup_steps": 1000,
    "decay": "cosine",
    "final_learning_rate_fraction": 0.0,
    "global_clipnorm": 5.0,
    "weight_decay": None,
    "weight_decay_form": "decoupled",
    "decay_every": None,
    "decay_rate": 0.7,
}
"""Adam with linear warm-up, cosine decay and global-norm clipping at 5 (the NIF reference set-up).

``decay`` is ``"cosine"`` (to ``final_learning_rate_fraction`` of the peak
at the last step), ``"none"`` (constant after the warm-up) or ``"step"``
(the spread paper's staircase: times ``decay_rate`` every ``decay_every``
steps, no warm-up). ``weight_decay`` (None or a float) is applied
``"decoupled"`` (AdamW) or ``"coupled"`` (``AdamL2``: added to the gradient
before Adam's normalization, as ``torch.optim.Adam(weight_decay=...)``).
Presets override entries through ``zoo.register(..., training={...})``; the
caller's ``training=`` argument of ``train`` overrides both.
"""

DECAYS = ("cosine", "none", "step")
WEIGHT_DECAY_FORMS = ("decoupled", "coupled")


def learning_rate_schedule(settings, total_steps):
    """Linear warm-up from 0 to ``learning_rate`` over ``warmup_steps``, then cosine decay or constant.

    ``decay="step"``: ``learning_rate * decay_rate ** floor(step / decay_every)``.
    """
    rate = float(settings["learning_rate"])
    decay = settings["decay"]
    if decay not in DECAYS:
        raise ValueError(f"training['decay'] must be one of {DECAYS}; received {decay!r}.")
    if decay == "step":
        every, factor = settings.get("decay_every"), settings.get("decay_rate")
        if not (isinstance(every, int) and every >= 1) or not (factor is not None and 0 < factor <= 1):
            raise ValueError(f"training['decay'] = 'step' needs an integer 'decay_every' >= 1 and a 'decay_rate' in "
                             f"(0, 1]; received decay_every={every!r}, decay_rate={factor!r}.")
        if settings["warmup_steps"]:
            raise ValueError(f"training['decay'] = 'step' has no warm-up; set 'warmup_steps' to 0 (received "
                             f"{settings['warmup_steps']}).")
        return keras.optimizers.schedules.ExponentialDecay(rate, decay_steps=every, decay_rate=float(factor),
                                                           staircase=True)
    warmup = int(min(settings["warmup_steps"], max(total_steps - 1, 0)))
    alpha = 1.0 if decay == "none" else float(settings["final_learning_rate_fraction"])
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else rate, decay_steps=max(total_steps - warmup, 1), alpha=alpha,
        warmup_target=rate if warmup else None, warmup_steps=warmup,
    )


def make_optimizer(settings, total_steps):
    """Adam (AdamW or ``AdamL2`` when ``weight_decay`` is set) with the schedule and clipping of ``settings``."""
    schedule = learning_rate_schedule(settings, total_steps)
    clip = settings.get("global_clipnorm")
    form = settings.get("weight_decay_form", "decoupled")
    if form not in WEIGHT_DECAY_FORMS:
        raise ValueError(f"training['weight_decay_form'] must be one of {WEIGHT_DECAY_FORMS}; received {form!r}.")
    if settings.get("weight_decay"):
        if form == "coupled":
            return AdamL2(l2=float(settings["weight_decay"]), learning_rate=schedule, global_clipnorm=clip)
        return keras.optimizers.AdamW(schedule, weight_decay=float(settings["weight_decay"]), global_clipnorm=clip)
    return keras.optimizers.Adam(schedule, global_clipnorm=clip)


def training_settings(model_name, overrides=None):
    """``DEFAULT_TRAINING`` updated by the preset's own settings, then by ``overrides``."""
    settings = dict(DEFAULT_TRAINING)
    if registry.is_registered(model_name):
        settings.update(registry.preset(model_name).training or {})
    unknown = sorted(set(overrides or {}) - set(DEFAULT_TRAINING))
    if unknown:
        raise ValueError(f"Unknown training setting(s) {unknown}; known: {sorted(DEFAULT_TRAINING)}.")
    settings.update(overrides or {})
    return settings

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
    """Adam with weight decay 0.1 (the paper's, appendix C.4) and the paper's step-decayed learning rate.

    ``coupled=True`` (images): ``AdamL2``, the reference's
    ``torch.optim.Adam(weight_decay=...)`` form, whose decay passes through
    Adam's normalization and keeps the ``D (D + 1) / 2`` entries of ``A``
    from random walking. The paper's 0.1 (fading squares, appendix C.4; the
    reference notebook uses 0.5; appendix C.5 gives none for MNIST) is for a
    loss in nats per example, the reference's; ``FlowModel``'s loss is bits
    per dimension (``D ln 2`` times smaller), so the same coefficient is
    relatively ``D ln 2`` times stronger here, which
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
    settings = dict(DEFAULT_TRAINING, learning_rate=learning_rate, warmup_steps=0, global_clipnorm=None,
                    decay="step" if decay_every else "none", decay_every=int(decay_every) if decay_every else None,
                    decay_rate=decay_rate, weight_decay=weight_decay,
                    weight_decay_form="coupled" if coupled else "decoupled")
    return make_optimizer(settings, total_steps=1)
