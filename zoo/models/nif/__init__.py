"""Noisy injective flows (Cunningham et al. 2020): NIF, deep NIF and the vector NIF of the toy manifolds."""

from zoo.models.nif import presets
from zoo.models.nif.builders import NIF_PAPER, NIF_PAPER_N_BITS, latent_flow, make_deep_nif, make_nif, make_vector_nif

__all__ = ["NIF_PAPER", "NIF_PAPER_N_BITS", "latent_flow", "make_deep_nif", "make_nif", "make_vector_nif", "presets"]
