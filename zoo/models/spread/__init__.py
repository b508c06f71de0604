"""Flows with a learnable low-rank manifold prior (spread divergence) and their fixed-prior baselines."""

from zoo.models.spread import presets
from zoo.models.spread.builders import (
    PAPER_SPREAD_STD,
    SPREAD_PAPER,
    checkerboard_permutation,
    make_spread_image,
    make_spread_vector,
    spread_image_flow,
    spread_vector_flow,
)

__all__ = ["PAPER_SPREAD_STD", "SPREAD_PAPER", "checkerboard_permutation", "make_spread_image", "make_spread_vector",
           "presets", "spread_image_flow", "spread_vector_flow"]
