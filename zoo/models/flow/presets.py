"""NF baseline presets: GLOW for images, RealNVP for 2-D toys (plain data, registered at import)."""

from zoo.models.flow.builders import (GLOW_PAPER_CONFIGS, NIF_REFERENCE_TRAINING, make_glow, make_realnvp,
                                      nif_reference_sources)
from zoo.presets import registry

# ---------------------------------------------------------------- presets
GLOW_PAPER = "Kingma & Dhariwal 2018 (GLOW), as configured by Cunningham et al. 2020 (A.10)"
SMALL_PRESET_TRAINING = {"learning_rate": 1e-3, "warmup_steps": 100}
"""Small CPU presets train for minutes, not days: a 10x larger peak rate and a short warm-up."""
FMNIST_SMALL_GLOW = {"num_levels": 2, "steps_per_level": 4, "hidden_channels": 32}
"""The CPU-sized Fashion-MNIST GLOW shared by ``nf_fmnist_small`` and ``nif_fmnist_small_64`` (paper: 16 x 256)."""


def _register_presets():


    for dataset, config in GLOW_PAPER_CONFIGS.items():
        sources, differences = nif_reference_sources(dataset)
        registry.register(
            f"nf_{dataset}", make_glow, dict(config, n_bits=3),
            family="nf", dataset=dataset, paper=GLOW_PAPER, input_shape=config["image_shape"],
            description=f"Paper configuration, as the NIF reference code runs its NF baseline: GLOW "
                        f"{config['num_levels']} levels x 16 steps x 256 channels, unit Gaussian prior, n_bits=3 "
                        "(sources and differences in the preset's metadata).",
            training=NIF_REFERENCE_TRAINING, sources=sources, differences=differences,
        )
    registry.register(
        "nf_digits", make_glow,
        dict(image_shape=(8, 8, 1), num_levels=2, steps_per_level=8, hidden_channels=64, n_bits=5),
        family="nf", dataset="digits", paper=GLOW_PAPER, input_shape=(8, 8, 1),
        description="Small CPU preset (not in the paper): GLOW 2 levels x 8 steps x 64 channels on 8x8 digits, "
                    "n_bits=5.",
        training=SMALL_PRESET_TRAINING,
    )
    registry.register(
        "nf_digits_conditional", make_glow,
        dict(image_shape=(8, 8, 1), num_levels=2, steps_per_level=8, hidden_channels=64, n_bits=5, num_classes=10),
        family="nf", dataset="digits", paper=GLOW_PAPER, input_shape=(8, 8, 1),
        description="Class-conditional small CPU preset (not in the paper): nf_digits with GLOW's class-conditional "
                    "top prior (a learned mean and log-scale per digit class); train with labels.",
        training=SMALL_PRESET_TRAINING,
    )
    registry.register(
        "nf_fmnist_small", make_glow, dict(FMNIST_SMALL_GLOW, image_shape=(28, 28, 1), n_bits=3),
        family="nf", dataset="fmnist", paper=GLOW_PAPER, input_shape=(28, 28, 1),
        description="CPU-sized preset (not in the paper): the paper's Fashion-MNIST GLOW reduced to 2 levels x 4 "
                    "steps x 32 channels, unit Gaussian prior, n_bits=3 (the NF of `make demo`).",
        training=SMALL_PRESET_TRAINING,
    )
    for dataset in ("spiral", "sin"):
        registry.register(
            f"nf_{dataset}", make_realnvp, dict(dim=2, num_couplings=8, hidden_units=64, num_hidden_layers=2),
            family="nf", dataset=dataset, paper="Dinh et al. 2017 (RealNVP)", input_shape=(2,),
            description=f"2-D toy preset: RealNVP 8 couplings x 64 units, unit Gaussian prior ({dataset}).",
            training=SMALL_PRESET_TRAINING,
        )


_register_presets()
