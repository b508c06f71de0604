"""Synthetic manifolds with known ground truth (intrinsic dimension, latent, on-manifold density).

Each generator returns a ``Manifold``: the data, the latent coordinates that
generated it, the intrinsic dimension and, where the papers give it, the
latent density. All take a ``seed`` and need no download.
"""

import dataclasses
import math
from typing import Callable, Optional

import numpy as np


@dataclasses.dataclass
class Manifold:
    """Samples on a known manifold.

    Attributes:
        data: float32 ``(n, D)`` vectors or uint8 ``(n, H, W, 1)`` images.
        latent: float64 ``(n, intrinsic_dim)`` generating coordinates.
        intrinsic_dim: dimension of the manifold.
        name: dataset name.
        latent_log_density: callable ``u -> log pi(u)`` of the latent law, or None.
    """

    data: np.ndarray
    latent: np.ndarray
    intrinsic_dim: int
    name: str
    latent_log_density: Optional[Callable[[np.ndarray], np.ndarray]] = None


# The thin spiral's winding: the angle is ``alpha sqrt(u)``. The DNF paper (section 5.1) prints
# alpha = 4 pi / 3; the authors' released simulator (chrvt/denoising-normalizing-flow,
# experiments/datasets/thin_spiral.py, ``_draw_z``) uses 540 degrees, alpha = 3 pi, and its figure 2
# was made with that: with u ~ Exp(0.3), 99% of the points lie within 1.76 turns (3 pi) instead of
# 0.78 (4 pi / 3). The simulator also mirrors the x axis, an isometry that changes no density.
THIN_SPIRAL_WINDINGS = {"reference": 3.0 * math.pi, "paper": 4.0 * math.pi / 3.0}
THIN_SPIRAL_ALPHA = THIN_SPIRAL_WINDINGS["reference"]  # the default everywhere


def thin_spiral_alpha(winding="reference"):
    """The thin spiral's ``alpha`` for ``winding`` ``"reference"`` (3 pi, the released simulator) or ``"paper"`` (4 pi / 3)."""
    if winding not in THIN_SPIRAL_WINDINGS:
        raise ValueError(f"thin_spiral: `winding` must be one of {sorted(THIN_SPIRAL_WINDINGS)} ('reference': alpha = "
                         f"3 pi as the authors' simulator, 'paper': alpha = 4 pi / 3 as printed); received {winding!r}.")
    return THIN_SPIRAL_WINDINGS[winding]


def thin_spiral_map(u, winding="reference"):
    """DNF section 5.1: ``g(u) = (alpha sqrt(u) / 3) (cos(alpha sqrt(u)), sin(alpha sqrt(u)))`` (``thin_spiral_alpha``)."""
    r = thin_spiral_alpha(winding) * np.sqrt(np.asarray(u, dtype=np.float64))
    return np.stack([r / 3.0 * np.cos(r), r / 3.0 * np.sin(r)], axis=-1)


def thin_spiral(n, scale=0.3, noise_std=0.0, seed=0, winding="reference"):
    """Thin spiral of DNF section 5.1: ``u ~ Exp(scale)``, ``x = g(u)`` (+ noise).

    ``winding="reference"`` (default) winds the spiral as the authors'
    released simulator (angle ``3 pi sqrt(u)``, the data of the paper's
    figure 2); ``"paper"`` as the paper's text (``4 pi sqrt(u) / 3``).
    """
    thin_spiral_alpha(winding)  # refuses an unknown winding before drawing
    rng = np.random.default_rng(seed)
    u = rng.exponential(scale, size=n)
    x = thin_spiral_map(u, winding) + noise_std * rng.standard_normal((n, 2))
    log_density = lambda v: np.where(np.asarray(v) >= 0, -np.log(scale) - np.asarray(v) / scale, -np.inf)  # noqa: E731
    name = "thin_spiral" if winding == "reference" else f"thin_spiral_{winding}"
    return Manifold(x.astype(np.float32), u[:, None], 1, name, log_density)


def sin_curve(n, noise_std=0.0, seed=0):
    """Latent-space paper section 2: ``x1 ~ N(0, 1)``, ``x2 = sin(2 x1)``."""
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal(n)
    x = np.stack([x1, np.sin(2.0 * x1)], axis=1) + noise_std * rng.standard_normal((n, 2))
    log_density = lambda v: -0.5 * np.asarray(v) ** 2 - 0.5 * math.log(2 * math.pi)  # noqa: E731
    return Manifold(x.astype(np.float32), x1[:, None], 1, "sin_curve", log_density)


def s_curve(n, noise_std=0.0, seed=0):
    """The 3-D S-curve (scikit-learn's ``make_s_curve``): a 2-D manifold; latent = (position, height)."""
    from sklearn.datasets import make_s_curve

    x, t = make_s_curve(n, noise=noise_std, random_state=seed)
    height = x[:, 1]
    return Manifold(x.astype(np.float32), np.stack([t, height], axis=1), 2, "s_curve")


def fading_squares(n, seed=0, quantize=True):
    """32x32 black images with a fixed 6x6 square (rows / columns 13-18) of one grey level ~ U(0, 1).

    Args:
        n: number of images.
        seed: seed of the grey levels.
        quantize: True for uint8 pixels ``round(255 v)`` (what image models
            take); False for float32 images with the exact level ``v`` (the
            continuous manifold, e.g. for intrinsic-dimension estimators:
            quantized images repeat, 256 distinct values at most).

    Returns:
        A ``Manifold`` of intrinsic dimension 1 whose latent is ``v``.
    """
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.0, 1.0, size=n)
    images = np.zeros((n, 32, 32, 1), dtype=np.float32)
    images[:, 13:19, 13:19, 0] = v[:, None, None]
    if quantize:
        images = np.round(255.0 * images).astype(np.uint8)
    log_density = lambda w: np.where((np.asarray(w) >= 0) & (np.asarray(w) <= 1), 0.0, -np.inf)  # noqa: E731
    return Manifold(images, v[:, None], 1, "fading_squares", log_density)


def von_mises_circle(n, mu=0.0, kappa=2.0, seed=0):
    """Points on the unit circle with angle ~ von Mises(mu, kappa); the latent is the angle."""
    from scipy import special

    rng = np.random.default_rng(seed)
    theta = rng.vonmises(mu, kappa, size=n)
    x = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    log_density = lambda t: kappa * np.cos(np.asarray(t) - mu) - math.log(2 * math.pi * special.i0(kappa))  # noqa: E731
    return Manifold(x.astype(np.float32), theta[:, None], 1, "von_mises_circle", log_density)


GENERATORS = {
    "spiral": thin_spiral,
    "thin_spiral": thin_spiral,
    "sin": sin_curve,
    "s_curve": s_curve,
    "scurve": s_curve,  # the spread presets' dataset name
    "fading_squares": fading_squares,
    "fading_square": fading_squares,  # the spread presets' dataset name
    "von_mises": von_mises_circle,
}
