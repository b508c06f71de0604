"""NIF and deep NIF presets (plain data, registered at import)."""

from zoo.models.flow.builders import GLOW_PAPER_CONFIGS, NIF_REFERENCE, NIF_REFERENCE_TRAINING, nif_reference_sources
from zoo.models.flow.presets import FMNIST_SMALL_GLOW, SMALL_PRESET_TRAINING
from zoo.models.nif.builders import NIF_PAPER, NIF_PAPER_N_BITS, make_deep_nif, make_nif, make_vector_nif
from zoo.presets import registry

# ---------------------------------------------------------------- presets
def _register_presets():
    for dataset, config in GLOW_PAPER_CONFIGS.items():
        glow = {k: v for k, v in config.items() if k != "image_shape"}
        for latent_dim in (64, 128, 256, 512):
            sources, differences = nif_reference_sources(dataset, latent_dim, NIF_PAPER_N_BITS)
            registry.register(
                f"nif_{dataset}_{latent_dim}", make_nif,
                dict(image_shape=config["image_shape"], latent_dim=latent_dim, n_bits=NIF_PAPER_N_BITS, **glow),
                family="nif", dataset=dataset, paper=NIF_PAPER, input_shape=config["image_shape"],
                latent_dim=latent_dim,
                description=f"Paper configuration, as the NIF reference code runs it: GLOW {config['num_levels']} "
                            f"levels x 16 steps x 256 channels + Gaussian NIF (learned diagonal noise) on the "
                            f"flattened output, d={latent_dim}, n_bits=3 (sources and differences in the preset's "
                            "metadata).",
                training=NIF_REFERENCE_TRAINING, sources=sources, differences=differences,
            )
    celeba = GLOW_PAPER_CONFIGS["celeba"]
    registry.register(
        "deep_nif_celeba_128", make_deep_nif,
        dict(image_shape=celeba["image_shape"], latent_dim=128, num_levels=celeba["num_levels"], steps_per_level=16,
             hidden_channels=512, n_bits=NIF_PAPER_N_BITS, latent_flow_couplings=10, latent_flow_hidden_units=1024,
             latent_flow_hidden_layers=4, num_importance_samples=1),
        family="deep_nif", dataset="celeba", paper=NIF_PAPER + ", appendix B.5", input_shape=celeba["image_shape"],
        latent_dim=128,
        description="Paper configuration of the NIF paper's appendix B.5: 10 MLP couplings (4 x 1024) with "
                    "act-norm and reverse on z (d=128) + Gaussian NIF + GLOW 5 levels x 16 steps x 512 channels "
                    "(sources and differences in the preset's metadata).",
        training=NIF_REFERENCE_TRAINING,
        sources={
            "latent_dim": {"value": 128, "source": "NIF paper, appendix B.5: latent state size of 128"},
            "latent_flow_couplings": {"value": 10, "source": "NIF paper, appendix B.5: 10 affine coupling layers"},
            "latent_flow_hidden_units": {"value": 1024, "source": "NIF paper, appendix B.5: 1024 units"},
            "latent_flow_hidden_layers": {"value": 4, "source": "NIF paper, appendix B.5: a 4 layer MLP"},
            "hidden_channels": {"value": 512, "source": "NIF paper, appendix B.5: 512 channels in each filter"},
            "steps_per_level": {"value": 16, "source": "NIF paper, section 5 / appendix A.10: 16 steps"},
            "num_levels": {"value": 5, "source": f"{NIF_REFERENCE} experiment_definitions/celeba_large.yaml: "
                                                  "n_multiscale (64x64)"},
            "n_bits": {"value": NIF_PAPER_N_BITS, "source": f"{NIF_REFERENCE} train_runner.py: --quantize default"},
        },
        differences=[
            "The paper's appendix B.5 is followed; the reference's deep model (experiment_definitions/"
            "celeba_large.yaml) differs: z_dim 512, 5 couplings (3 x 1024 hidden + output), 24 steps per level, "
            "filters [512, 512, 256, 128, 64] by level, and 16 importance samples (n_importance_samples).",
            "'A 4 layer MLP with 1024 units in each hidden layer' is read as 4 hidden layers of 1024 (plus the output "
            "layer); the reference's MLPs have 3 hidden layers plus the output, 4 layers in all.",
            "One importance sample per example (num_importance_samples=1, the ELBO); the paper states no count, "
            "the reference's celeba_large uses 16.",
            "Batch 32, 1000 act-norm initialization iterations and a pooled 0.6 / 0.2 / 0.2 split in the reference, "
            "as for the other NIF presets.",
        ],
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
        "nif_digits_conditional_16", make_nif,
        dict(image_shape=(8, 8, 1), latent_dim=16, num_levels=2, steps_per_level=8, hidden_channels=64, n_bits=5,
             num_classes=10),
        family="nif", dataset="digits", paper=NIF_PAPER, input_shape=(8, 8, 1), latent_dim=16,
        description="Class-conditional small CPU preset (not in the paper): nif_digits_16 with the d=16 latent "
                    "N(mu_y, I) per digit class, so a class is a region of the learned manifold; train with labels.",
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
    registry.register(
        "deep_nif_digits_conditional_16", make_deep_nif,
        dict(image_shape=(8, 8, 1), latent_dim=16, num_levels=2, steps_per_level=4, hidden_channels=32, n_bits=5,
             latent_flow_couplings=4, latent_flow_hidden_units=64, latent_flow_hidden_layers=2,
             num_importance_samples=1, num_classes=10),
        family="deep_nif", dataset="digits", paper=NIF_PAPER + ", appendix B.5", input_shape=(8, 8, 1), latent_dim=16,
        description="Class-conditional small CPU preset (not in the paper): deep_nif_digits_16 with the "
                    "low-dimensional flow's base N(mu_y, diag(exp(2 s_y))) per digit class, so the flow on z is "
                    "conditioned on y while the GLOW, A, b and Sigma are shared; train with labels.",
        training=SMALL_PRESET_TRAINING,
    )
    registry.register(
        "nif_fmnist_small_64", make_nif,
        dict(FMNIST_SMALL_GLOW, image_shape=(28, 28, 1), latent_dim=64, n_bits=NIF_PAPER_N_BITS),
        family="nif", dataset="fmnist", paper=NIF_PAPER, input_shape=(28, 28, 1), latent_dim=64,
        description="CPU-sized preset (not in the paper): `nf_fmnist_small`'s GLOW (2 levels x 4 steps x 32 "
                    "channels) + Gaussian NIF d=64, n_bits=3 (the NIF of `make demo`).",
        training=SMALL_PRESET_TRAINING,
    )
    registry.register(
        "nif_fmnist_small_128", make_nif,
        dict(FMNIST_SMALL_GLOW, image_shape=(28, 28, 1), latent_dim=128, n_bits=NIF_PAPER_N_BITS),
        family="nif", dataset="fmnist", paper=NIF_PAPER, input_shape=(28, 28, 1), latent_dim=128,
        description="CPU-sized preset (not in the paper): `nf_fmnist_small`'s GLOW (2 levels x 4 steps x 32 "
                    "channels) + Gaussian NIF d=128, n_bits=3 (the d=128 column of the NIF vs NF comparison in "
                    "docs/RESULTS.md).",
        training=SMALL_PRESET_TRAINING,
    )
    registry.register(
        "nif_fmnist_small_conditional_64", make_nif,
        dict(FMNIST_SMALL_GLOW, image_shape=(28, 28, 1), latent_dim=64, n_bits=NIF_PAPER_N_BITS, num_classes=10),
        family="nif", dataset="fmnist", paper=NIF_PAPER, input_shape=(28, 28, 1), latent_dim=64,
        description="Class-conditional CPU-sized preset (not in the paper): nif_fmnist_small_64 with the d=64 "
                    "latent N(mu_y, I) per Fashion-MNIST class, so a class is a region of the learned manifold; "
                    "train with labels.",
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
