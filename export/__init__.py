"""Exporters: SavedModel serving signatures and TFLite / LiteRT sampler graphs.

``export.saved_model(model, path)`` writes a SavedModel with the signatures
``log_prob``, ``bits_per_dim``, ``encode``, ``decode``, ``sample`` and
``generate`` (see ``export.saved_model``'s module docstring). This package
imports ``zoo`` and ``layers`` (never the other way round).
"""

from export.saved_model import SIGNATURES, saved_model, stateless_normal

__all__ = ["SIGNATURES", "saved_model", "stateless_normal"]
