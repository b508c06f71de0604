"""Flows with a learnable manifold prior (spread divergence) and their fixed-prior baselines.

"On the latent space of flow-based models": a volume-preserving coupling flow
(``layers.AffineCoupling(volume_preserving=True)``, log-det exactly 0) with the
learnable degenerate Gaussian prior ``layers.SpreadPrior`` (``N(0, A A^T)``
spread by ``N(0, sigma_Z^2 I)``). ``FlowModel``'s loss is then the negative
spread log-density of the latents, term 2 of the spread KL (eq. 12, 15); the
intrinsic dimension is the number of significant eigenvalues of ``A A^T``.
The baselines ("NF" in the paper, appendix C.1) have the same architecture
with unnormalized (non-volume-preserving) couplings and a fixed ``N(0, I)``.

Architectures (appendix C.1, tables 1-4): vectors use ``num_couplings`` MLP
couplings (hidden width 24, 3 hidden layers) with the feature order reversed
between couplings; images use, per level, a squeeze (space-to-depth; after
the first one a fixed channel permutation makes the coupling split a
checkerboard of each 2x2 block), ``steps_per_level`` convolutional couplings
(width 16) separated by fixed random channel permutations, then a flatten
and ``num_couplings`` MLP couplings on the whole vector. Image models take
float images in ``[0, 1]`` (not uint8: the paper fits the continuous pixel
values, with ``layers.DataNoise`` as the only noise, annealed by
``DataNoiseAnnealing``).

Synthetic MNIST with a known intrinsic dimension (section 7.4, appendix
C.5): ``ImplicitVAE`` is fitted to MNIST and its decoder ``g`` gives data
``x = g(z)``, ``z ~ N(0, I_d)``, on a ``d``-dimensional manifold
(``synthetic_mnist``).
"""

import numpy as np

import layers as flow_layers
from layers.spread import DataNoise, SpreadPrior
from zoo.models.flow.builders import check_squeeze_levels
from zoo.models.flow.model import FlowModel

SPREAD_PAPER = "On the latent space of flow-based models (ICLR 2021 submission), appendix C"
# sigma_Z of the paper (sigma_Z^2 = 1e-4, section 6).
PAPER_SPREAD_STD = 0.01


# ----------------------------------------------------------------- flows
def _coupling_maker(volume_preserving, log_scale_clamp, activation="relu"):
    """The affine coupling maker: normalized (log-det exactly 0) or the baseline's unnormalized coupling."""
    kind = "volume_preserving" if volume_preserving else "affine"
    return flow_layers.coupling_factory(kind, log_scale_clamp=log_scale_clamp, activation=activation)


def _vector_couplings(num_couplings, hidden_units, num_hidden_layers, make_coupling):
    """[coupling, reverse] x N (no reversal after the last coupling); ``make_coupling`` builds each coupling."""
    steps = []
    for i in range(num_couplings):
        if i:
            steps.append(flow_layers.Permute())
        steps.append(make_coupling(hidden_units, num_hidden_layers))
    return steps


def spread_vector_flow(dim, num_couplings=2, hidden_units=24, num_hidden_layers=3, volume_preserving=True,
                       log_scale_clamp=2.0, conditioner_activation="relu"):
    """The vector flow of tables 1-2: ``num_couplings`` MLP couplings, features reversed in between.

    No act-norm: it is not volume preserving (the spread prior carries the
    volume instead). ``conditioner_activation``: the hidden layers' Keras
    activation (the paper's: ``"leaky_relu"``, slope 0.2).
    """
    if dim < 2:
        raise ValueError(f"A coupling flow needs at least 2 dimensions; received dim={dim}.")
    if num_couplings < 1:
        raise ValueError(f"num_couplings must be >= 1; received {num_couplings}.")
    make_coupling = _coupling_maker(volume_preserving, log_scale_clamp, conditioner_activation)
    return flow_layers.FlowSequence(
        _vector_couplings(num_couplings, hidden_units, num_hidden_layers, make_coupling), name="spread_vector_flow"
    )


def checkerboard_permutation(channels):
    """Channel order after ``Squeeze(2)`` that puts the 2x2 block's diagonal first.

    ``Squeeze`` orders the channels ``(dy, dx, c)``; with this permutation the
    first half holds positions (0, 0) and (1, 1) of every block, so a coupling
    splitting channels in halves conditions a checkerboard on the other one.
    """
    return [position * channels + c for position in (0, 3, 1, 2) for c in range(channels)]


def spread_image_flow(image_shape, num_levels=2, steps_per_level=2, hidden_channels=16, num_couplings=2,
                      hidden_units=24, num_hidden_layers=3, volume_preserving=True, log_scale_clamp=2.0, seed=0,
                      conditioner_activation="relu"):
    """The image flow of tables 3-4: image ``(h, w, c)`` -> vector of size ``h * w * c``.

    Per level: squeeze, ``steps_per_level`` conv couplings (fixed random
    channel permutations in between, seeded); then flatten and
    ``num_couplings`` MLP couplings (features reversed in between).

    Args:
        image_shape: ``(height, width, channels)``, height and width divisible by ``2 ** num_levels``.
        num_levels: int >= 1, squeeze levels (2 in the paper).
        steps_per_level: int >= 1, conv couplings per level (2 for 32x32 fading squares, 4 for MNIST).
        hidden_channels: int, conv conditioner width (16).
        num_couplings: int >= 0, MLP couplings on the flattened vector (2).
        hidden_units: int, MLP conditioner width (24).
        num_hidden_layers: int, MLP conditioner hidden layers (3).
        volume_preserving: Python bool, normalized (log-det 0) couplings.
        log_scale_clamp: float, bound on the couplings' log-scales.
        seed: int, seeds the channel permutations.
        conditioner_activation: str, the conditioners' hidden activation
            (default ``"relu"``; the paper's, appendix C.1: ``"leaky_relu"``,
            slope 0.2).

    Returns:
        A ``layers.FlowSequence``.
    """
    channels = int(image_shape[2])
    if num_levels < 1 or steps_per_level < 1 or num_couplings < 0:
        raise ValueError(
            f"num_levels and steps_per_level must be >= 1 and num_couplings >= 0; received "
            f"{num_levels}, {steps_per_level}, {num_couplings}."
        )
    check_squeeze_levels(image_shape, num_levels, f"{num_levels} squeeze levels need")
    make_coupling = _coupling_maker(volume_preserving, log_scale_clamp, conditioner_activation)
    rng = np.random.default_rng(seed)
    steps = []
    for level in range(num_levels):
        channels *= 4
        steps.append(flow_layers.Squeeze())
        if level == 0:
            steps.append(flow_layers.Permute(checkerboard_permutation(channels // 4)))
        for step in range(steps_per_level):
            if step:
                steps.append(flow_layers.Permute([int(i) for i in rng.permutation(channels)]))
            steps.append(make_coupling(hidden_channels, 2))
    steps.append(flow_layers.Flatten())
    steps += _vector_couplings(num_couplings, hidden_units, num_hidden_layers, make_coupling)
    return flow_layers.FlowSequence(steps, name="spread_image_flow")


def _prior(learnable_prior, spread_std, seed):
    return SpreadPrior(spread_std, seed=seed, name="spread_prior") if learnable_prior else None


def make_spread_vector(dim, num_couplings=2, hidden_units=24, num_hidden_layers=3, volume_preserving=True,
                       learnable_prior=True, spread_std=PAPER_SPREAD_STD, log_scale_clamp=2.0, seed=None,
                       name="spread_vector", conditioner_activation="relu"):
    """A vector ``FlowModel`` with the spread prior (or, for the baseline, a unit Gaussian).

    Args:
        dim: int >= 2, the data dimension.
        num_couplings, hidden_units, num_hidden_layers, volume_preserving,
        log_scale_clamp, conditioner_activation: the flow's (``spread_vector_flow``).
        learnable_prior: True: ``layers.SpreadPrior(spread_std)``; False:
            ``layers.StandardNormal()`` (the paper's "traditional flow").
        spread_std: ``sigma_Z``.
        seed: seed of the training-time spread noise.
        name: Keras model name.

    Example:

    >>> model = make_spread_vector(2)
    >>> model.compile(optimizer=spread_optimizer(3e-4))
    >>> model.fit(zoo.manifolds.sin_curve(10000).data, batch_size=100, epochs=10)
    >>> model.prior.intrinsic_dimension()
    """
    flow = spread_vector_flow(dim, num_couplings, hidden_units, num_hidden_layers, volume_preserving, log_scale_clamp,
                              conditioner_activation)
    return FlowModel(flow, input_shape=(dim,), prior=_prior(learnable_prior, spread_std, seed), name=name)


def make_spread_image(image_shape, num_levels=2, steps_per_level=2, hidden_channels=16, num_couplings=2,
                      hidden_units=24, num_hidden_layers=3, volume_preserving=True, learnable_prior=True,
                      spread_std=PAPER_SPREAD_STD, data_noise=0.0, log_scale_clamp=2.0, seed=0, name="spread_image",
                      conditioner_activation="relu"):
    """An image ``FlowModel`` (float inputs in ``[0, 1]``) with the spread prior or a unit Gaussian.

    ``data_noise`` is the initial standard deviation of the training-time
    ``layers.DataNoise`` preprocessing (0 for fading squares; 0.05 for
    MNIST, annealed to 0.01 by ``DataNoiseAnnealing``). See
    ``spread_image_flow`` for the architecture arguments.
    """
    flow = spread_image_flow(image_shape, num_levels, steps_per_level, hidden_channels, num_couplings, hidden_units,
                             num_hidden_layers, volume_preserving, log_scale_clamp, seed, conditioner_activation)
    preprocessing = flow_layers.FlowSequence([DataNoise(data_noise, seed=seed, name="data_noise")], name="preprocessing")
    return FlowModel(flow, input_shape=tuple(image_shape), prior=_prior(learnable_prior, spread_std, seed),
                     preprocessing=preprocessing, value_range=(0.0, 1.0), name=name)
