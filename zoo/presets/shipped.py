"""Weights shipped inside the package: where they are and what their registration says.

Each shipped preset ``NAME`` is a preset directory ``zoo/presets/shipped/NAME/``
(``config.json``, ``model.weights.h5``, ``metadata.json`` holding the model
card, the project marker) written by ``python -m zoo.presets.publish``. The
registration of its weights is the separate table ``zoo/presets/shipped.json``
(``{NAME: {"sha256": ..., "bytes": ...}}``), so a damaged or replaced weights
file is caught by its hash: ``zoo.get(NAME, weights="default")`` loads the
file into a freshly built preset only when the hash matches.
"""

import functools
import json
import os

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shipped")
REGISTRATION_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shipped.json")
WEIGHTS_FILE = "model.weights.h5"
CARD_FILE = "metadata.json"


@functools.lru_cache(maxsize=1)
def registrations():
    """``{name: {"sha256", "bytes"}}`` of every shipped preset (empty when none are shipped)."""
    if not os.path.exists(REGISTRATION_FILE):
        return {}
    with open(REGISTRATION_FILE) as f:
        return json.load(f)


def names():
    """Names of the presets with shipped weights, sorted."""
    return sorted(registrations())


def directory(name):
    """The shipped preset directory of ``name``."""
    return os.path.join(SHIPPED_DIR, name)


def weights_path(name):
    """The shipped weights file of ``name``."""
    return os.path.join(directory(name), WEIGHTS_FILE)


def card(name):
    """The model card of ``name`` (its shipped ``metadata.json``), or None when nothing is shipped."""
    if name not in registrations():
        return None
    with open(os.path.join(directory(name), CARD_FILE)) as f:
        return json.load(f)


def headline(name):
    """The card's headline metric as a small dict (what ``zoo.list()`` shows), or None."""
    facts = card(name)
    if facts is None:
        return None
    return dict(facts.get("headline") or {})
