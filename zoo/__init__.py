"""The flow zoo: generative models across dimensions, their presets, training, data and evaluation.

``zoo.get(name)`` builds a named architecture (``zoo.list()`` describes every
one); ``zoo.train`` trains a preset with ``model.fit``; ``zoo.evaluate``
measures it. Every model is a ``zoo.GenerativeModel``. Importing ``zoo``
registers every family's presets. ``zoo`` imports ``layers``; it never
imports ``export``.

Layout (by role): ``zoo.models`` (the base class and one subpackage per
family), ``zoo.presets`` (registry, weight handles), ``zoo.data``,
``zoo.training``, ``zoo.evaluation``, ``zoo.experiments``, ``zoo.testing``
(the model harness); ``python -m zoo.train``, ``python -m zoo.evaluate`` and
``python -m zoo.demo`` are the command lines.
"""

from zoo import data, evaluation, experiments, models, presets, training
from zoo.data import datasets, load_digits_images, manifolds
from zoo.evaluation import evaluate
from zoo.models import GenerativeModel, dnf, flow, injflow, nif, spread
from zoo.models.base import LOSS_UNIT
from zoo.models.dnf import DenoisingFlow, make_image_dnf, make_vector_dnf, train_mflow
from zoo.models.flow import FlowModel, GLOW_PAPER_CONFIGS, glow_flow, glow_step, make_glow, make_realnvp, realnvp_flow
from zoo.models.injflow import (
    Autoencoder,
    ContractiveAutoencoder,
    GaussianMixturePrior,
    InjectiveFlow,
    VariationalAutoencoder,
)
from zoo.models.nif import make_deep_nif, make_nif, make_vector_nif
from zoo.models.spread import make_spread_image, make_spread_vector
from zoo.presets import Preset, WeightsError, get, list_presets, load, register, registry, weights
from zoo.training import train

list = list_presets  # noqa: A001  (the zoo.list() of the design card)

__all__ = [
    "Autoencoder", "ContractiveAutoencoder", "DenoisingFlow", "FlowModel", "GLOW_PAPER_CONFIGS",
    "GaussianMixturePrior", "GenerativeModel", "InjectiveFlow", "LOSS_UNIT", "Preset", "VariationalAutoencoder",
    "WeightsError", "data", "datasets", "dnf", "evaluate", "evaluation", "experiments", "flow", "get", "glow_flow",
    "glow_step", "injflow", "list", "list_presets", "load", "load_digits_images", "make_deep_nif", "make_glow",
    "make_image_dnf", "make_nif", "make_realnvp", "make_spread_image", "make_spread_vector", "make_vector_dnf",
    "make_vector_nif", "manifolds", "models", "nif", "presets", "realnvp_flow", "register", "registry", "spread",
    "train", "train_mflow", "training", "weights",
]
