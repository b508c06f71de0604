"""Normalizing flows on the full space: ``FlowModel`` and the GLOW / RealNVP builders (the NF baseline)."""

from zoo.models.flow import presets
from zoo.models.flow.builders import GLOW_PAPER_CONFIGS, glow_flow, glow_step, make_glow, make_realnvp, realnvp_flow
from zoo.models.flow.model import FlowModel

__all__ = ["FlowModel", "GLOW_PAPER_CONFIGS", "glow_flow", "glow_step", "make_glow", "make_realnvp", "presets",
           "realnvp_flow"]
