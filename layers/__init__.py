"""Keras flow layers: the flow contract and every bijective and prior layer.

Direction: ``layer(x)`` maps data -> latent and returns ``(z, log_det)``;
``layer.inverse(z)`` maps latent -> data. See ``layers.base``.

Injective (dimension-changing) layers follow the NIF contract: ``layer(x)``
returns ``(z, manifold_term)`` and ``layer.inverse(z, noise_scale=s)`` maps
back (``s = 0`` lands on the learned manifold). See ``layers.nif``.

Every prior inherits ``layers.Prior`` (``log_prob``, ``generate``, ``sample``,
``encode``, ``decode``, ``latent_shape``, ``noise_shapes``); the Gaussian
closed forms and Cholesky algebra they share are in ``layers.numerics``.

This package imports nothing else of the project.
"""

from layers import jacobian, numerics
from layers.actnorm import ActNorm
from layers.base import FlowLayer, FlowSequence, check_example_shape, event_size, sum_except_batch
from layers.conv1x1 import InvertibleConv1x1
from layers.coupling import AffineCoupling, coupling_factory
from layers.jacobian import batch_jacobian
from layers.manifold import Pad, Proj, SplitPrior
from layers.multiscale import FactorOut
from layers.nif import DeepNIFPrior, GaussianNIF, InjectiveLayer, NIFPrior, StochasticCoupling, UpsampleNIF
from layers.numerics import (
    LOG_2PI,
    cholesky_log_det,
    diagonal_normal_log_prob,
    gram_log_det,
    solve_lower,
    solve_lower_transpose,
    standard_normal_log_prob,
)
from layers.preprocessing import Dequantize, LogitTransform, pixels_from_levels, quantize_pixels
from layers.priors import ClassConditionalNormal, GaussianMixturePrior, LatentPrior, Prior, StandardNormal
from layers.reshape import Flatten, Permute, Squeeze
from layers.seeds import batch_noise, derive_seed, draw_noise
from layers.spline import ElementwiseSpline, SplineCoupling, rational_quadratic_spline
from layers.spread import DataNoise, SpreadPrior, significant_eigenvalue_count

__all__ = [
    "jacobian",
    "numerics",
    "LOG_2PI",
    "batch_jacobian",
    "cholesky_log_det",
    "coupling_factory",
    "diagonal_normal_log_prob",
    "solve_lower",
    "solve_lower_transpose",
    "standard_normal_log_prob",
    "GaussianMixturePrior",
    "Prior",
    "DataNoise",
    "SpreadPrior",
    "significant_eigenvalue_count",
    "ElementwiseSpline",
    "Pad",
    "Proj",
    "SplineCoupling",
    "SplitPrior",
    "gram_log_det",
    "rational_quadratic_spline",
    "ActNorm",
    "AffineCoupling",
    "DeepNIFPrior",
    "Dequantize",
    "FactorOut",
    "Flatten",
    "FlowLayer",
    "FlowSequence",
    "GaussianNIF",
    "InjectiveLayer",
    "InvertibleConv1x1",
    "LogitTransform",
    "NIFPrior",
    "Permute",
    "Squeeze",
    "LatentPrior",
    "StandardNormal",
    "ClassConditionalNormal",
    "StochasticCoupling",
    "UpsampleNIF",
    "check_example_shape",
    "derive_seed",
    "batch_noise",
    "draw_noise",
    "event_size",
    "pixels_from_levels",
    "quantize_pixels",
    "sum_except_batch",
]
