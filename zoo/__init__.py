"""Models composed from ``layers``: FlowModel, the model families, the preset registry, training, data.

``zoo.get(name)`` builds a named architecture; ``zoo.list()`` describes all of
them. Importing ``zoo`` registers every family's presets. ``zoo`` imports
``layers``; it never imports ``export``.
"""

from zoo import datasets, injflow, manifolds, metrics, registry, training, weights
from zoo.datasets import load_digits_images
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
from zoo.training import train

list = list_presets  # noqa: A001  (the zoo.list() of the design card)

__all__ = [
    "Autoencoder",
    "ContractiveAutoencoder",
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
    "make_glow",
    "make_nif",
    "make_realnvp",
    "make_vector_nif",
    "realnvp_flow",
    "register",
    "train",
    "training",
    "datasets",
    "injflow",
    "manifolds",
    "metrics",
    "registry",
    "weights",
]
