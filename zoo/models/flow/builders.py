"""GLOW for images and a RealNVP-style coupling stack for vectors (the NF baselines)."""

import layers as flow_layers
from zoo.models.flow.model import FlowModel

# The NF baseline configurations of the NIF paper as its reference code runs them: GLOW with 16 steps
# of 256 channels per level (paper, appendix A.10) and 2 levels for 28x28, 4 for 32x32, 5 for 64x64
# (the reference's experiment_definitions/*.yaml, `n_multiscale`; the paper's text says 5 for all).
# Plain data: the zoo's presets are built from these.
GLOW_PAPER_CONFIGS = {
    "fmnist": {"image_shape": (28, 28, 1), "num_levels": 2, "steps_per_level": 16, "hidden_channels": 256},
    "cifar10": {"image_shape": (32, 32, 3), "num_levels": 4, "steps_per_level": 16, "hidden_channels": 256},
    "celeba": {"image_shape": (64, 64, 3), "num_levels": 5, "steps_per_level": 16, "hidden_channels": 256},
}

NIF_REFERENCE = "Information-Fusion-Lab-Umass/NoisyInjectiveFlows@6d1430f"
_NIF_REFERENCE_YAML = {"fmnist": "fmnist", "cifar10": "cifar", "celeba": "celeba"}
# The reference trainer's optimizer (train_runner.py uses experiment_definitions/adam_warmup.yaml):
# Adam, lr 1e-4, linear warm-up over 10000 steps, lr_decay 1.0 (none), batch 32, global-norm clip 5.
NIF_REFERENCE_TRAINING = {"learning_rate": 1e-4, "warmup_steps": 10000, "decay": "none", "global_clipnorm": 5.0}
NIF_REFERENCE_BATCH_SIZE = 32


def nif_reference_sources(dataset, latent_dim=None, n_bits=3):
    """Where each value of a NIF-paper preset (NF baseline or NIF) comes from in the reference code.

    Returns ``(sources, differences)`` for ``zoo.presets.registry.register``.
    """
    yaml = f"experiment_definitions/{_NIF_REFERENCE_YAML[dataset]}_{latent_dim or 'glow'}.yaml"
    config = GLOW_PAPER_CONFIGS[dataset]
    cite = lambda where: f"{NIF_REFERENCE} {where}"  # noqa: E731
    sources = {
        "image_shape": {"value": config["image_shape"], "source": cite(f"{yaml}: x_shape")},
        "num_levels": {"value": config["num_levels"], "source": cite(f"{yaml}: n_multiscale")},
        "steps_per_level": {"value": config["steps_per_level"], "source": cite(f"{yaml}: n_blocks")},
        "hidden_channels": {"value": config["hidden_channels"], "source": cite(f"{yaml}: n_filters")},
        "n_bits": {"value": n_bits, "source": cite("train_runner.py: --quantize default (the paper states no n_bits)")},
        "learning_rate": {"value": NIF_REFERENCE_TRAINING["learning_rate"],
                          "source": cite("experiment_definitions/adam_warmup.yaml: lr")},
        "warmup_steps": {"value": NIF_REFERENCE_TRAINING["warmup_steps"],
                         "source": cite("experiment_definitions/adam_warmup.yaml: warmup")},
        "decay": {"value": "none", "source": cite("experiment_definitions/adam_warmup.yaml: lr_decay 1.0")},
        "global_clipnorm": {"value": 5.0, "source": cite("optimizer.py: clip_by_global_norm 5.0")},
    }
    if latent_dim is not None:
        sources["latent_dim"] = {"value": latent_dim, "source": cite(f"{yaml}: z_dim")}
    differences = [
        f"Batch {NIF_REFERENCE_BATCH_SIZE} in the reference (adam_warmup.yaml: batch_size); zoo.train's default is 64: "
        f"pass --batch_size {NIF_REFERENCE_BATCH_SIZE}.",
        "The reference trains without a fixed end (optimizer.py: max_iterations 1e7, checkpoints every 5000) on a "
        "0.6 / 0.2 / 0.2 split of the pooled data (experiments.py); the zoo uses the datasets' own train / test "
        "splits and the epochs you ask for.",
        "Act-norm data initialization: the reference runs 1000 initialization iterations of batch 64 "
        "(data_init_iterations); the zoo initializes once from the first batch.",
        "The paper's appendix A.10 says 5 multiscale levels for every dataset; the reference (and this preset) use "
        f"{config['num_levels']} for {config['image_shape'][0]}x{config['image_shape'][1]}.",
    ]
    return sources, differences


DEFAULT_LOG_SCALE_CLAMP = 2.0


def coupling_maker(coupling=None, log_scale_clamp=DEFAULT_LOG_SCALE_CLAMP):
    """The builders' ``coupling`` argument as a maker ``make(hidden_units, num_hidden_layers=2) -> FlowLayer``.

    Args:
        coupling: None or ``"affine"`` (the RealNVP / GLOW coupling),
            ``"volume_preserving"`` (log-det exactly 0), ``"spline"``
            (rational-quadratic, ``layers.SplineCoupling``'s default bins), or
            a callable such as ``layers.coupling_factory("spline", num_bins=5)``.
        log_scale_clamp: the bound on the log-scales of the affine kinds named
            by string; with a callable or ``"spline"`` it must stay at its
            default (give the coupling's options to ``layers.coupling_factory``).

    Returns:
        The maker.

    Raises:
        ValueError: for an unknown kind or a ``log_scale_clamp`` that would be unused.
        TypeError: when ``coupling`` is neither a kind name nor callable.
    """
    if coupling is None:
        coupling = "affine"
    if isinstance(coupling, str):
        if coupling in ("affine", "volume_preserving"):
            return flow_layers.coupling_factory(coupling, log_scale_clamp=log_scale_clamp)
        coupling = flow_layers.coupling_factory(coupling)
    if not callable(coupling):
        raise TypeError(
            "`coupling` must be a kind name (\"affine\", \"volume_preserving\", \"spline\") or a callable "
            f"(hidden_units, num_hidden_layers) -> FlowLayer such as layers.coupling_factory(...); received "
            f"{type(coupling).__name__}."
        )
    if log_scale_clamp != DEFAULT_LOG_SCALE_CLAMP:
        raise ValueError(
            f"log_scale_clamp={log_scale_clamp} would be unused: it applies to affine couplings named by string. "
            "Pass it to the coupling's maker instead, e.g. layers.coupling_factory(\"affine\", log_scale_clamp=...)."
        )
    return coupling


def glow_step(hidden_channels, seed, lu_decomposed=True, log_scale_clamp=DEFAULT_LOG_SCALE_CLAMP, coupling=None):
    """One GLOW step: act-norm, invertible 1x1 convolution, coupling.

    Args:
        hidden_channels: int, width of the coupling's conditioner.
        seed: int, seeds the 1x1 convolution's initial rotation.
        lu_decomposed: Python bool, LU-parameterized 1x1 convolution.
        log_scale_clamp: float, bound on an affine coupling's log-scales.
        coupling: the coupling (see ``coupling_maker``; default affine).

    Returns:
        A list of three ``layers.FlowLayer``s.
    """
    make = coupling_maker(coupling, log_scale_clamp)
    return [
        flow_layers.ActNorm(),
        flow_layers.InvertibleConv1x1(lu_decomposed=lu_decomposed, seed=seed),
        make(hidden_channels),
    ]


def check_squeeze_levels(image_shape, num_levels, what):
    """Refuses an image shape that ``num_levels`` squeezes (2x2 each) cannot divide; ``what`` starts the message."""
    height, width = int(image_shape[0]), int(image_shape[1])
    block = 2**num_levels
    if height % block or width % block:
        raise ValueError(f"{what} height and width divisible by {block}; received image shape "
                         f"{tuple(image_shape)}. Use fewer levels or pad the images.")


def glow_flow(image_shape, num_levels, steps_per_level, hidden_channels, lu_decomposed=True,
              log_scale_clamp=DEFAULT_LOG_SCALE_CLAMP, seed=0, coupling=None):
    """The multiscale GLOW flow: image ``(h, w, c)`` -> flat latent of size ``h * w * c``.

    Each level squeezes, runs ``steps_per_level`` GLOW steps and factors out
    half of its channels; the last level flattens instead. The factored-out
    parts and the last level's output are concatenated into one vector (the
    layout a prior over the whole latent needs).

    Args:
        image_shape: ``(height, width, channels)``; height and width must be
            divisible by ``2 ** num_levels``.
        num_levels: int >= 1, multiscale levels.
        steps_per_level: int >= 1, GLOW steps per level.
        hidden_channels: int, width of the coupling conditioners.
        lu_decomposed: Python bool, LU-parameterized 1x1 convolutions.
        log_scale_clamp: float, bound on the affine couplings' log-scales.
        seed: int, seeds the 1x1 convolutions' initial rotations.
        coupling: the coupling of every step (see ``coupling_maker``): None /
            ``"affine"`` (GLOW), ``"spline"``, ``"volume_preserving"`` or a
            maker such as ``layers.coupling_factory("spline", num_bins=11)``.

    Returns:
        A ``layers.FlowLayer``.

    Example:

    >>> spline_glow = glow_flow((8, 8, 1), 2, 4, 32, coupling=layers.coupling_factory("spline", num_bins=8))
    """
    if num_levels < 1 or steps_per_level < 1:
        raise ValueError(f"num_levels and steps_per_level must be >= 1; received {num_levels}, {steps_per_level}.")
    check_squeeze_levels(image_shape, num_levels, f"GLOW with {num_levels} levels needs")
    make = coupling_maker(coupling, log_scale_clamp)

    def level(index):
        steps = [flow_layers.Squeeze()]
        for step in range(steps_per_level):
            steps += glow_step(hidden_channels, seed + 1000 * index + step, lu_decomposed, coupling=make)
        if index == num_levels - 1:
            steps.append(flow_layers.Flatten())
        else:
            steps.append(flow_layers.FactorOut(level(index + 1)))
        return flow_layers.FlowSequence(steps, name=f"level_{index}")

    return level(0)


def make_glow(image_shape, num_levels=2, steps_per_level=4, hidden_channels=64, n_bits=8,
              lu_decomposed=True, log_scale_clamp=DEFAULT_LOG_SCALE_CLAMP, seed=0, name="glow", coupling=None,
              num_classes=None):
    """A GLOW ``FlowModel`` with a unit Gaussian prior over the whole latent.

    Inputs are uint8 pixels of shape ``image_shape``, quantized to ``n_bits``.
    See ``glow_flow`` for the architecture arguments (``coupling`` included).
    ``num_classes=K``: the class-conditional GLOW, ``p(x | y)`` with GLOW's
    per-class learned mean and log-scale of the latent
    (``layers.ClassConditionalNormal``); train with ``fit(images, labels)``.

    Example:

    >>> model = make_glow((8, 8, 1), num_levels=2, steps_per_level=4,
    ...                   hidden_channels=64, n_bits=5)
    """
    flow = glow_flow(image_shape, num_levels, steps_per_level, hidden_channels, lu_decomposed, log_scale_clamp, seed,
                     coupling)
    return FlowModel(flow, input_shape=image_shape, prior=class_prior(num_classes), n_bits=n_bits, name=name)


def class_prior(num_classes):
    """The NF prior: the unit Gaussian (``num_classes`` None) or GLOW's class-conditional Gaussian."""
    return None if num_classes is None else flow_layers.ClassConditionalNormal(num_classes, name="class_prior")


def realnvp_flow(dim, num_couplings=8, hidden_units=64, num_hidden_layers=2, log_scale_clamp=DEFAULT_LOG_SCALE_CLAMP,
                 coupling=None):
    """RealNVP-style vector flow: [act-norm, MLP coupling, reverse] x N.

    Args:
        dim: int >= 2, the vector size.
        num_couplings: int, the number of [act-norm, coupling, reverse] blocks.
        hidden_units: int, width of the couplings' MLP conditioners.
        num_hidden_layers: int, their hidden layers.
        log_scale_clamp: float, bound on the affine couplings' log-scales.
        coupling: the coupling (see ``coupling_maker``): None / ``"affine"``
            (RealNVP), ``"spline"``, ``"volume_preserving"`` or a maker such as
            ``layers.coupling_factory("spline", num_bins=5, tail_bound=3.0)``.

    Returns:
        A ``layers.FlowSequence`` named ``"realnvp"``.
    """
    if dim < 2:
        raise ValueError(f"A coupling flow needs at least 2 dimensions; received dim={dim}.")
    make = coupling_maker(coupling, log_scale_clamp)
    steps = []
    for _ in range(num_couplings):
        steps += [flow_layers.ActNorm(), make(hidden_units, num_hidden_layers), flow_layers.Permute()]
    return flow_layers.FlowSequence(steps, name="realnvp")


def make_realnvp(dim, num_couplings=8, hidden_units=64, num_hidden_layers=2, log_scale_clamp=DEFAULT_LOG_SCALE_CLAMP,
                 name="realnvp", coupling=None, num_classes=None):
    """A vector ``FlowModel`` (float32 inputs of shape ``(dim,)``) with a unit Gaussian prior (``coupling``: see
    ``realnvp_flow``; ``num_classes``: class-conditional, see ``make_glow``)."""
    flow = realnvp_flow(dim, num_couplings, hidden_units, num_hidden_layers, log_scale_clamp, coupling)
    return FlowModel(flow, input_shape=(dim,), prior=class_prior(num_classes), name=name)
