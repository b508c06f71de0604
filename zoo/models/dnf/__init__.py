"""Manifold flows (Horvat & Pfister 2021; Brehmer & Cranmer 2020): DNF, M-flow and PIE in one model class."""

from zoo.models.dnf import presets
from zoo.models.dnf.builders import COUPLINGS, coupling_flow, make_image_dnf, make_vector_dnf
from zoo.models.dnf.model import DNF_PAPER, MFLOW_PAPER, MODES, PIE_PAPER, PIE_V_STD, DenoisingFlow, train_mflow

__all__ = ["COUPLINGS", "DNF_PAPER", "DenoisingFlow", "MFLOW_PAPER", "MODES", "PIE_PAPER", "PIE_V_STD", "coupling_flow",
           "make_image_dnf", "make_vector_dnf", "presets", "train_mflow"]
