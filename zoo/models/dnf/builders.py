"""Builders of the DNF / M-flow / PIE architectures (outer flow + inner flow on u)."""

import layers as flow_layers
from layers.spline import ElementwiseSpline
from zoo.models.dnf.model import DenoisingFlow
from zoo.models.flow.builders import glow_flow, realnvp_flow

# ---------------------------------------------------------------- builders
COUPLINGS = ("affine", "spline")


def _coupling_maker(coupling, num_bins, tail_bound):
    """The DNF builders' ``coupling`` kind as a maker for ``glow_flow`` / ``realnvp_flow`` (``layers.coupling_factory``)."""
    if coupling not in COUPLINGS:
        raise ValueError(f"`coupling` must be one of {COUPLINGS}; received {coupling!r}.")
    if coupling == "spline":
        return flow_layers.coupling_factory("spline", num_bins=num_bins, tail_bound=tail_bound)
    return flow_layers.coupling_factory("affine")


def coupling_flow(dim, num_couplings, hidden_units, num_hidden_layers=2, coupling="spline", num_bins=8,
                  tail_bound=3.0):
    """``realnvp_flow`` ([act-norm, coupling, reverse] x N) with affine or rational-quadratic spline couplings.

    ``coupling="spline"``: ``num_bins`` bins on ``[-tail_bound, tail_bound]``
    (Durkan et al. 2019), passed into ``realnvp_flow`` as its coupling maker.
    """
    return realnvp_flow(dim, num_couplings, hidden_units, num_hidden_layers,
                        coupling=_coupling_maker(coupling, num_bins, tail_bound))


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
                    reconstruction_weight=None, v_std=None, phase=None, seed=None, name="vector_dnf", num_classes=None):
    """DNF / M-flow / PIE on ``dim``-vectors: coupling-MLP outer flow + inner flow on ``u``.

    ``coupling``: ``"spline"`` (rational-quadratic, ``num_bins`` bins on
    ``[-tail_bound, tail_bound]``, as the paper) or ``"affine"``. Defaults:
    DNF ``sigma = 0.1`` (``sigma^2 = 0.01``), ``lambda = 1`` (the paper's
    thin-spiral setting); PIE and M-flow ``sigma = lambda = 0``. ``num_classes``:
    the class-conditional model (see ``DenoisingFlow``).
    """
    noise_std = (0.1 if mode == "dnf" else 0.0) if noise_std is None else noise_std
    reconstruction_weight = (1.0 if mode == "dnf" else 0.0) if reconstruction_weight is None else reconstruction_weight
    flow = coupling_flow(dim, num_couplings, hidden_units, num_hidden_layers, coupling, num_bins, tail_bound)
    inner = _inner_flow(latent_dim, inner_couplings, hidden_units, num_hidden_layers, coupling, num_bins, tail_bound)
    return DenoisingFlow(flow, (dim,), latent_dim, inner, mode=mode, noise_std=noise_std,
                         reconstruction_weight=reconstruction_weight, v_std=v_std, phase=phase, seed=seed, name=name,
                         num_classes=num_classes)


def make_image_dnf(image_shape, latent_dim, mode="dnf", num_levels=2, steps_per_level=4, hidden_channels=64, n_bits=8,
                   latent_flow_couplings=4, latent_flow_hidden_units=256, coupling="spline", num_bins=8,
                   tail_bound=3.0, noise_std=None, reconstruction_weight=None, v_std=None, phase=None, seed=0,
                   name="image_dnf", num_classes=None):
    """DNF / M-flow / PIE on uint8 images: multiscale GLOW outer flow + coupling inner flow on ``u``.

    The GLOW (``glow_flow``: act-norm, 1x1 convolution, coupling;
    squeeze and factor-out per level) uses rational-quadratic spline couplings
    (``coupling="spline"``, as the paper) or affine ones. Its flat output is
    reversed (``layers.Permute``) so that ``u``, the first ``d`` coordinates,
    comes from the last (coarsest, deepest) level rather than the first
    factored-out half. ``num_classes``: the class-conditional model, whose
    inner flow on ``u`` has a per-class base (see ``DenoisingFlow``).
    """
    noise_std = (0.1 if mode == "dnf" else 0.0) if noise_std is None else noise_std
    reconstruction_weight = (1.0 if mode == "dnf" else 0.0) if reconstruction_weight is None else reconstruction_weight
    glow = glow_flow(image_shape, num_levels, steps_per_level, hidden_channels, seed=seed,
                     coupling=_coupling_maker(coupling, num_bins, tail_bound))
    flow = flow_layers.FlowSequence([glow, flow_layers.Permute()], name="outer_flow")
    inner = _inner_flow(latent_dim, latent_flow_couplings, latent_flow_hidden_units, 2, coupling, num_bins,
                        tail_bound)
    return DenoisingFlow(flow, image_shape, latent_dim, inner, mode=mode, noise_std=noise_std,
                         reconstruction_weight=reconstruction_weight, v_std=v_std, phase=phase, n_bits=n_bits,
                         seed=seed, name=name, num_classes=num_classes)
