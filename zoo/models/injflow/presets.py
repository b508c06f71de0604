"""InjFlow, InjFlow-ln and the regularized-autoencoder presets (plain data, registered at import)."""

from zoo.models.injflow.models import Autoencoder, ContractiveAutoencoder, InjectiveFlow, VariationalAutoencoder
from zoo.models.injflow.networks import ARCHITECTURES, PAPER_LATENT_DIMS
from zoo.models.flow.presets import SMALL_PRESET_TRAINING
from zoo.presets import registry

PAPER = "Kumar, Poole & Murphy, Regularized Autoencoders via Relaxed Injective Probability Flow, AISTATS 2020"

# ------------------------------------------------------------------ presets

_FAMILIES = {
    # family: (class, extra kwargs, description)
    "injflow": (InjectiveFlow, dict(log_frobenius=False, prior_weight=0.01, eta=0.1, lam=1.0, penalty_growth=1.0),
                "InjFlow (eq. 10, lambda=1, eta=0.1, nu=1, prior weight 0.01)"),
    "injflow_ln": (InjectiveFlow, dict(log_frobenius=True, prior_weight=0.01, eta=0.1, penalty_growth=1.0),
                   "InjFlow-ln (eq. 9, eta=0.1, nu=1, prior weight 0.01)"),
    "ae": (Autoencoder, dict(), "plain autoencoder (l2 reconstruction)"),
    "ae_l2": (Autoencoder, dict(decoder_weight_decay=0.01), "AE + decoder weight decay 0.01"),
    "ae_sn": (Autoencoder, dict(spectral_norm=True), "AE + spectral normalization of every decoder layer"),
    "cae": (ContractiveAutoencoder, dict(contraction_weight=0.1), "contractive AE (Hutchinson encoder-Jacobian "
                                                                  "penalty 0.1)"),
    "vae": (VariationalAutoencoder, dict(decoder_std=1.0), "VAE (decoder sigma^2 = 1)"),
    "beta_vae": (VariationalAutoencoder, dict(decoder_std=0.1), "beta-VAE (decoder sigma = 0.1, beta = 0.01)"),
}


def _register(family, dataset, latent_dim, hidden_channels, description_prefix, extra=None, training=None, size=""):
    cls, family_kwargs, what = _FAMILIES[family]
    arch = ARCHITECTURES[dataset]
    kwargs = dict(image_shape=arch["image_shape"], latent_dim=latent_dim, hidden_channels=hidden_channels,
                  encoder_strides=arch["encoder_strides"], decoder_strides=arch["decoder_strides"],
                  kernel_size=arch["kernel_size"], **family_kwargs, **(extra or {}))
    registry.register(
        f"{family}_{dataset}_{size}{latent_dim}", cls, kwargs, family=family, dataset=dataset, paper=PAPER,
        input_shape=arch["image_shape"], latent_dim=latent_dim, training=training,
        description=f"{description_prefix}{what}; 5-layer conv encoder / transposed-conv decoder (ELU, batch norm, "
                    f"{hidden_channels}-{16 * hidden_channels} channels), d={latent_dim}; post-hoc Gaussian and "
                    "10-component GMM priors.",
    )


def _register_presets():
    for dataset, latent_dim in PAPER_LATENT_DIMS.items():
        for family in _FAMILIES:
            extra = None
            if dataset == "cifar10" and family.startswith("injflow"):
                extra = dict(jvp_method="finite_difference")  # the paper's eq. 8 for CIFAR-10 (section 2.2)
            _register(family, dataset, latent_dim, 64, "Paper configuration (hyperparameters from the paper's search "
                      "grids; the chosen values are not reported): ", extra)
    small = dict(batch_norm_momentum=0.9)
    for family in _FAMILIES:  # every variant has a small digits preset (the model harness runs each)
        _register(family, "digits", 8, 8, "Small CPU preset (not in the paper; scikit-learn's 8x8 digits, "
                  "batch-norm momentum 0.9, Adam 1e-3 with a 100-step warm-up): ", small,
                  training=SMALL_PRESET_TRAINING)
        # CPU-sized MNIST presets at the paper's d = 32: the paper's network with 1/8 of its channels.
        _register(family, "mnist", PAPER_LATENT_DIMS["mnist"], 8, "CPU-sized preset (not in the paper; the MNIST "
                  "network with 8 instead of 64 base channels, batch-norm momentum 0.9, Adam 1e-3 with a 100-step "
                  "warm-up): ", small, training=SMALL_PRESET_TRAINING, size="small_")
    # Class-conditional: injflow_digits_8 with one post-hoc Gaussian and GMM per digit class.
    _register("injflow", "digits", 8, 8, "Class-conditional small CPU preset (not in the paper): injflow_digits_8 "
              "with per-class post-hoc priors (fit_priors(images, labels=labels)); ", dict(small, num_classes=10),
              training=SMALL_PRESET_TRAINING, size="conditional_")


_register_presets()
