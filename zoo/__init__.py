"""Models composed from ``layers``: FlowModel, the model families, the preset registry, training, data.

``zoo.get(name)`` builds a named architecture; ``zoo.list()`` describes all of
them. Importing ``zoo`` registers every family's presets. ``zoo`` imports
``layers``; it never imports ``export``.
"""

from zoo import datasets, dnf, injflow, manifolds, metrics, registry, spread, training, weights
from zoo.datasets import load_digits_images
from zoo.dnf import DenoisingFlow, make_image_dnf, make_vector_dnf, train_mflow
from zoo.flow_model import FlowModel
from zoo.glow import GLOW_PAPER_CONFIGS, glow_flow, glow_step, make_glow, make_realnvp, realnvp_flow
from zoo.injflow import (
    Autoencoder,
    ContractiveAutoencoder,
    GaussianMixturePrior,
    InjectiveFlow,
    VariationalAutoencoder,
)
from zoo.nif import make_deep_nif, make_nif, make_vector_nif
from zoo.registry import Preset, get, list_presets, register
from zoo.spread import make_spread_image, make_spread_vector, spread_optimizer, synthetic_mnist
from zoo.training import train

list = list_presets  # noqa: A001  (the zoo.list() of the design card)

__all__ = [
    "Autoencoder",
    "ContractiveAutoencoder",
    "DenoisingFlow",
    "FlowModel",
    "GaussianMixturePrior",
    "InjectiveFlow",
    "VariationalAutoencoder",
    "GLOW_PAPER_CONFIGS",
    "Preset",
    "get",
    "glow_flow",
    "glow_step",
    "list",
    "list_presets",
    "load_digits_images",
    "make_deep_nif",
    "make_image_dnf",
    "make_vector_dnf",
    "train_mflow",
    "make_glow",
    "make_nif",
    "make_realnvp",
    "make_spread_image",
    "make_spread_vector",
    "make_vector_nif",
    "realnvp_flow",
    "register",
    "spread",
    "spread_optimizer",
    "synthetic_mnist",
    "train",
    "training",
    "datasets",
    "dnf",
    "injflow",
    "manifolds",
    "metrics",
    "registry",
    "weights",
]
