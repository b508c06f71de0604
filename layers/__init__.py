"""Keras flow layers: the flow contract and every bijective and prior layer.

Direction: ``layer(x)`` maps data -> latent and returns ``(z, log_det)``;
``layer.inverse(z)`` maps latent -> data. See ``layers.base``.

This package imports nothing else of the project.
"""

from layers.actnorm import ActNorm
from layers.base import FlowLayer, FlowSequence, check_example_shape, event_size, sum_except_batch
from layers.conv1x1 import InvertibleConv1x1
from layers.coupling import AffineCoupling
from layers.multiscale import FactorOut
from layers.preprocessing import Dequantize, LogitTransform, pixels_from_levels, quantize_pixels
from layers.priors import StandardNormal
from layers.reshape import Flatten, Permute, Squeeze

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Dequantize",
    "FactorOut",
    "Flatten",
    "FlowLayer",
    "FlowSequence",
    "InvertibleConv1x1",
    "LogitTransform",
    "Permute",
    "Squeeze",
    "StandardNormal",
    "check_example_shape",
    "event_size",
    "pixels_from_levels",
    "quantize_pixels",
    "sum_except_batch",
]
