"""NIF and deep NIF presets (plain data, registered at import)."""

from zoo.models.flow.builders import GLOW_PAPER_CONFIGS
from zoo.models.flow.presets import SMALL_PRESET_TRAINING
from zoo.models.nif.builders import NIF_PAPER, NIF_PAPER_N_BITS, make_deep_nif, make_nif, make_vector_nif
from zoo.presets import registry

# ---------------------------------------------------------------- presets
def _register_presets():
    for dataset, config in GLOW_PAPER_CONFIGS.items():
        glow = {k: v for k, v in config.items() if k != "image_shape"}
        for latent_dim in (64, 128, 256, 512):
            registry.register(
                f"nif_{dataset}_{latent_dim}", make_nif,
                dict(image_shape=config["image_shape"], latent_dim=latent_dim, n_bits=NIF_PAPER_N_BITS, **glow),
                family="nif", dataset=dataset, paper=NIF_PAPER, input_shape=config["image_shape"],
                latent_dim=latent_dim,
                description=f"Paper configuration: GLOW {config['num_levels']} levels x 16 steps x 256 channels "
                            f"+ Gaussian NIF, d={latent_dim}, n_bits=3.",
            )
    celeba = GLOW_PAPER_CONFIGS["celeba"]
    registry.register(
        "deep_nif_celeba_128", make_deep_nif,
        dict(image_shape=celeba["image_shape"], latent_dim=128, num_levels=celeba["num_levels"], steps_per_level=16,
             hidden_channels=512, n_bits=NIF_PAPER_N_BITS, latent_flow_couplings=10, latent_flow_hidden_units=1024,
             latent_flow_hidden_layers=4, num_importance_samples=1),
        family="deep_nif", dataset="celeba", paper=NIF_PAPER + ", appendix B.5", input_shape=celeba["image_shape"],
        latent_dim=128,
        description="10 MLP couplings (4 x 1024) with act-norm and reverse on z (d=128) + Gaussian NIF + "
                    "GLOW 5 levels x 16 steps x 512 channels.",
    )
    registry.register(
        "nif_digits_16", make_nif,
        dict(image_shape=(8, 8, 1), latent_dim=16, num_levels=2, steps_per_level=8, hidden_channels=64, n_bits=5),
        family="nif", dataset="digits", paper=NIF_PAPER, input_shape=(8, 8, 1), latent_dim=16,
        description="Small CPU preset (not in the paper): GLOW 2 levels x 8 steps x 64 channels + Gaussian NIF "
                    "d=16 on scikit-learn's 8x8 digits, n_bits=5.",
        training=SMALL_PRESET_TRAINING,
    )
    registry.register(
        "deep_nif_digits_16", make_deep_nif,
        dict(image_shape=(8, 8, 1), latent_dim=16, num_levels=2, steps_per_level=4, hidden_channels=32, n_bits=5,
             latent_flow_couplings=4, latent_flow_hidden_units=64, latent_flow_hidden_layers=2,
             num_importance_samples=1),
        family="deep_nif", dataset="digits", paper=NIF_PAPER + ", appendix B.5", input_shape=(8, 8, 1), latent_dim=16,
        description="Small CPU preset (not in the paper): 4 MLP couplings (2 x 64) with act-norm and reverse on z "
                    "(d=16) + Gaussian NIF + GLOW 2 levels x 4 steps x 32 channels on 8x8 digits, n_bits=5, ELBO.",
        training=SMALL_PRESET_TRAINING,
    )
    for dataset in ("spiral", "sin"):
        registry.register(
            f"nif_{dataset}_1", make_vector_nif,
            dict(dim=2, latent_dim=1, num_couplings=8, hidden_units=64, num_hidden_layers=2),
            family="nif", dataset=dataset, paper=NIF_PAPER, input_shape=(2,), latent_dim=1,
            description=f"2-D toy preset: RealNVP 8 couplings x 64 units + Gaussian NIF d=1 ({dataset} manifold).",
            training=SMALL_PRESET_TRAINING,
        )


_register_presets()
