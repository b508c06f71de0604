"""DNF / M-flow / PIE presets (plain data, registered at import)."""

from zoo.models.dnf.builders import make_image_dnf, make_vector_dnf
from zoo.models.dnf.model import DNF_PAPER, MFLOW_PAPER, PIE_PAPER
from zoo.models.flow.presets import SMALL_PRESET_TRAINING
from zoo.presets import registry

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
        "dnf_fmnist_small_16", make_image_dnf,
        dict(image_shape=(28, 28, 1), latent_dim=16, mode="dnf", num_levels=2, steps_per_level=4, hidden_channels=32,
             n_bits=3, latent_flow_couplings=4, latent_flow_hidden_units=64, coupling="affine",
             reconstruction_weight=1.0),
        family="dnf", dataset="fmnist", paper=DNF_PAPER, input_shape=(28, 28, 1), latent_dim=16,
        description="CPU-sized preset (not in the paper): DNF on Fashion-MNIST, d=16, affine GLOW 2 levels x 4 steps "
                    "x 32 channels + 4 affine couplings x 64 units on u, n_bits=3, sigma^2=0.01 (logit space), "
                    "lambda=1. Affine, not spline, couplings: the spline GLOW trains at 1/8 the speed on 2 CPU cores.",
        training=SMALL_PRESET_TRAINING,
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
    registry.register(
        "dnf_digits_conditional_8", make_image_dnf,
        dict(image_shape=(8, 8, 1), latent_dim=8, mode="dnf", num_levels=2, steps_per_level=4, hidden_channels=32,
             n_bits=5, latent_flow_couplings=4, latent_flow_hidden_units=64, coupling="spline", num_bins=8,
             tail_bound=5.0, reconstruction_weight=1.0, num_classes=10),
        family="dnf", dataset="digits", paper=DNF_PAPER, input_shape=(8, 8, 1), latent_dim=8,
        description="Class-conditional small CPU preset (not in the paper): dnf_digits_8 with the inner flow's base "
                    "N(mu_y, diag(exp(2 s_y))) per digit class, so the flow on u is conditioned on y while the "
                    "outer flow (the learned manifold) is shared; train with labels.",
    )


_register_presets()
