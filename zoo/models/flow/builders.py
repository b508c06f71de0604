"""GLOW for images and a RealNVP-style coupling stack for vectors (the NF baselines)."""

import layers as flow_layers
from zoo.models.flow.model import FlowModel

# The NF baseline configurations of the papers (NIF appendix A.10: GLOW with
# 16 steps of 256 channels per level; 2 levels for 28x28, 4 for 32x32, 5 for
# 64x64). Plain data: the zoo's presets are built from these.
GLOW_PAPER_CONFIGS = {
    "fmnist": {"image_shape": (28, 28, 1), "num_levels": 2, "steps_per_level": 16, "hidden_channels": 256},
    "cifar10": {"image_shape": (32, 32, 3), "num_levels": 4, "steps_per_level": 16, "hidden_channels": 256},
    "celeba": {"image_shape": (64, 64, 3), "num_levels": 5, "steps_per_level": 16, "hidden_channels": 256},
}


def glow_step(hidden_channels, seed, lu_decomposed=True, log_scale_clamp=2.0):
    """One GLOW step: act-norm, invertible 1x1 convolution, affine coupling."""
    return [
        flow_layers.ActNorm(),
        flow_layers.InvertibleConv1x1(lu_decomposed=lu_decomposed, seed=seed),
        flow_layers.AffineCoupling(hidden_units=hidden_channels, log_scale_clamp=log_scale_clamp),
    ]


def glow_flow(image_shape, num_levels, steps_per_level, hidden_channels, lu_decomposed=True,
              log_scale_clamp=2.0, seed=0):
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
        log_scale_clamp: float, bound on the couplings' log-scales.
        seed: int, seeds the 1x1 convolutions' initial rotations.

    Returns:
        A ``layers.FlowLayer``.
    """
    height, width, _ = image_shape
    if num_levels < 1 or steps_per_level < 1:
        raise ValueError(f"num_levels and steps_per_level must be >= 1; received {num_levels}, {steps_per_level}.")
    block = 2**num_levels
    if height % block or width % block:
        raise ValueError(
            f"GLOW with {num_levels} levels needs height and width divisible by {block}; "
            f"received image shape {tuple(image_shape)}. Use fewer levels or pad the images."
        )

    def level(index):
        steps = [flow_layers.Squeeze()]
        for step in range(steps_per_level):
            steps += glow_step(hidden_channels, seed + 1000 * index + step, lu_decomposed, log_scale_clamp)
        if index == num_levels - 1:
            steps.append(flow_layers.Flatten())
        else:
            steps.append(flow_layers.FactorOut(level(index + 1)))
        return flow_layers.FlowSequence(steps, name=f"level_{index}")

    return level(0)


def make_glow(image_shape, num_levels=2, steps_per_level=4, hidden_channels=64, n_bits=8,
              lu_decomposed=True, log_scale_clamp=2.0, seed=0, name="glow"):
    """A GLOW ``FlowModel`` with a unit Gaussian prior over the whole latent.

    Inputs are uint8 pixels of shape ``image_shape``, quantized to ``n_bits``.
    See ``glow_flow`` for the architecture arguments.

    Example:

    >>> model = make_glow((8, 8, 1), num_levels=2, steps_per_level=4,
    ...                   hidden_channels=64, n_bits=5)
    """
    flow = glow_flow(image_shape, num_levels, steps_per_level, hidden_channels, lu_decomposed, log_scale_clamp, seed)
    return FlowModel(flow, input_shape=image_shape, n_bits=n_bits, name=name)


def realnvp_flow(dim, num_couplings=8, hidden_units=64, num_hidden_layers=2, log_scale_clamp=2.0):
    """RealNVP-style vector flow: [act-norm, MLP affine coupling, reverse] x N."""
    if dim < 2:
        raise ValueError(f"A coupling flow needs at least 2 dimensions; received dim={dim}.")
    steps = []
    for _ in range(num_couplings):
        steps += [
            flow_layers.ActNorm(),
            flow_layers.AffineCoupling(hidden_units, num_hidden_layers, log_scale_clamp),
            flow_layers.Permute(),
        ]
    return flow_layers.FlowSequence(steps, name="realnvp")


def make_realnvp(dim, num_couplings=8, hidden_units=64, num_hidden_layers=2, log_scale_clamp=2.0, name="realnvp"):
    """A vector ``FlowModel`` (float32 inputs of shape ``(dim,)``) with a unit Gaussian prior."""
    flow = realnvp_flow(dim, num_couplings, hidden_units, num_hidden_layers, log_scale_clamp)
    return FlowModel(flow, input_shape=(dim,), name=name)
