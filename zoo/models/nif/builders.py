"""Noisy injective flow models: NIF, deep NIF and vector NIF (builders; presets in ``presets.py``).

NIF = the GLOW of the NF baseline with its unit Gaussian prior replaced by a
closed-form Gaussian NIF over the whole flattened GLOW output (NIF section 5,
appendix A.10). Deep NIF (appendix B.5) adds a low-dimensional flow prior on
the NIF latent and trains on the ELBO / importance-weighted bound.
"""

import layers as flow_layers
from zoo.models.flow.builders import glow_flow, realnvp_flow
from zoo.models.flow.model import FlowModel

NIF_PAPER = "Cunningham et al. 2020, Normalizing Flows Across Dimensions"
# Quantization of the NIF reference's image experiments (DESIGN.md section 4).
NIF_PAPER_N_BITS = 3


def make_nif(image_shape, latent_dim, num_levels=2, steps_per_level=4, hidden_channels=64, n_bits=8,
             lu_decomposed=True, log_scale_clamp=2.0, seed=0, name="nif", num_classes=None):
    """GLOW + a Gaussian NIF prior with ``latent_dim`` over the whole latent.

    Args:
        image_shape: ``(height, width, channels)`` of the uint8 inputs.
        latent_dim: int ``d``, ``1 <= d < height * width * channels``.
        num_levels, steps_per_level, hidden_channels, lu_decomposed,
        log_scale_clamp: the GLOW's (see ``zoo.models.flow.glow_flow``).
        n_bits: quantization depth of the inputs.
        seed: seeds the 1x1 convolutions and ``A``.
        name: Keras model name.
        num_classes: None, or ``K`` for the class-conditional NIF: the
            ``d``-dim latent is ``N(mu_y, I)`` per class, so a class is a
            region of the learned manifold (train with ``fit(images, labels)``).

    Returns:
        A ``FlowModel`` whose ``encode`` is the pseudo-inverse (``d``-vectors)
        and whose ``sample`` takes ``temperature`` and ``noise_scale``.
    """
    flow = glow_flow(image_shape, num_levels, steps_per_level, hidden_channels, lu_decomposed, log_scale_clamp, seed)
    prior = flow_layers.GaussianNIF(latent_dim, seed=seed, name="gaussian_nif", num_classes=num_classes)
    return FlowModel(flow, input_shape=image_shape, prior=prior, n_bits=n_bits, name=name)


def latent_flow(latent_dim, num_couplings=10, hidden_units=1024, num_hidden_layers=4):
    """The deep NIF's low-dimensional flow: [act-norm, MLP affine coupling, reverse] x N."""
    return realnvp_flow(latent_dim, num_couplings, hidden_units, num_hidden_layers)


def make_deep_nif(image_shape, latent_dim, num_levels=2, steps_per_level=4, hidden_channels=64, n_bits=8,
                  latent_flow_couplings=10, latent_flow_hidden_units=1024, latent_flow_hidden_layers=4,
                  num_importance_samples=1, seed=0, name="deep_nif", num_classes=None):
    """Low-dimensional flow prior + Gaussian NIF + GLOW (NIF appendix B.5).

    Trained on the ELBO with the stochastic inverse (``num_importance_samples=1``)
    or the importance-weighted bound with ``K`` samples. ``num_classes=K``: the
    class-conditional deep NIF, whose low-dimensional flow has a per-class
    base (``layers.DeepNIFPrior``); train with ``fit(images, labels)``.
    """
    flow = glow_flow(image_shape, num_levels, steps_per_level, hidden_channels, seed=seed)
    prior = flow_layers.DeepNIFPrior(
        flow_layers.GaussianNIF(latent_dim, seed=seed, name="gaussian_nif"),
        latent_flow(latent_dim, latent_flow_couplings, latent_flow_hidden_units, latent_flow_hidden_layers),
        num_importance_samples=num_importance_samples,
        seed=seed,
        num_classes=num_classes,
        name="deep_nif_prior",
    )
    return FlowModel(flow, input_shape=image_shape, prior=prior, n_bits=n_bits, name=name)


def make_vector_nif(dim, latent_dim, num_couplings=8, hidden_units=64, num_hidden_layers=2, seed=0, name="vector_nif",
                    num_classes=None):
    """RealNVP-style flow on ``dim``-vectors + a Gaussian NIF prior (toy manifolds; ``num_classes``: see ``make_nif``)."""
    flow = realnvp_flow(dim, num_couplings, hidden_units, num_hidden_layers)
    prior = flow_layers.GaussianNIF(latent_dim, seed=seed, name="gaussian_nif", num_classes=num_classes)
    return FlowModel(flow, input_shape=(dim,), prior=prior, name=name)
