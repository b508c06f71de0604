"""Presets: the registry of named architectures and the weight handles / preset directories they load."""

from zoo.presets import registry, weights
from zoo.presets.registry import Preset, families, get, is_registered, list_presets, load, preset, register
from zoo.presets.weights import WeightsError, load_preset_dir, save_to_preset

__all__ = ["Preset", "WeightsError", "families", "get", "is_registered", "list_presets", "load", "load_preset_dir", "preset",
           "register", "registry", "save_to_preset", "weights"]
