"""Exporters: SavedModel serving signatures and TFLite / LiteRT sampler graphs.

``export.saved_model(model, path)`` writes a SavedModel with the signatures
``log_prob``, ``bits_per_dim``, ``encode``, ``decode``, ``sample`` and
``generate`` (see ``export.saved_model``'s module docstring);
``export.tflite_sampler(model, path, batch_size)`` writes a LiteRT flatbuffer
with ``generate`` (given noise) and ``sample`` (seeded) signatures. This package
imports ``zoo`` and ``layers`` (never the other way round).
"""

from export.saved_model import SIGNATURES, saved_model, stateless_normal
from export.tflite import counter_normal, tflite_sampler

__all__ = ["SIGNATURES", "counter_normal", "saved_model", "stateless_normal", "tflite_sampler"]
