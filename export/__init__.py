"""Exporters: SavedModel serving signatures and TFLite / LiteRT sampler graphs.

This package imports ``zoo`` and ``layers`` (never the other way round). It
holds no exporter yet: the SavedModel and LiteRT exporters are the subject of
the zoo-and-export issue (#4). Until then a trained model is saved with
``model.save("model.keras")`` and read back with ``keras.saving.load_model``.
"""
