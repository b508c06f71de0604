"""Models composed from ``layers``: the flow model, GLOW / RealNVP builders, data.

``zoo`` imports ``layers``; it never imports ``export``.
"""

from zoo.datasets import load_digits_images
from zoo.flow_model import FlowModel
from zoo.glow import GLOW_PAPER_CONFIGS, glow_flow, glow_step, make_glow, make_realnvp, realnvp_flow

__all__ = [
    "FlowModel",
    "GLOW_PAPER_CONFIGS",
    "glow_flow",
    "glow_step",
    "load_digits_images",
    "make_glow",
    "make_realnvp",
    "realnvp_flow",
]
