"""The registry of named architectures (presets).

Presets are plain data next to their family (``zoo/models/<family>/presets.py``)
and are registered when the family package is imported (``import zoo`` imports
every family). ``get(name)`` builds the architecture; ``list_presets`` describes
them; ``register`` adds users' own.
"""

import dataclasses
import difflib
import json
import os
from typing import Any, Callable, Dict, Optional, Tuple

_REGISTRY: Dict[str, "Preset"] = {}
PARAMETER_COUNTS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "parameters.json")


def _parameter_counts():
    """Parameter counts of the presets, from ``parameters.json``.

    Building a paper-sized preset takes seconds, so ``list_presets`` reads
    the counts from this file; ``python -m zoo.presets.registry`` rewrites it and
    ``tests/zoo/test_registry.py`` builds every preset to check it.
    """
    if not os.path.exists(PARAMETER_COUNTS_FILE):
        return {}
    with open(PARAMETER_COUNTS_FILE) as f:
        return json.load(f)


@dataclasses.dataclass(frozen=True)
class Preset:
    """One named architecture.

    Attributes:
        name: registry key, ``<family>_<dataset>[_<latent dim>]``.
        builder: callable returning a Keras model; called with ``kwargs``
            updated by the caller's overrides and ``name=name``.
        kwargs: the builder's arguments (plain data).
        family: model family, e.g. ``"nf"``, ``"nif"``, ``"deep_nif"``.
        dataset: dataset the configuration is meant for.
        paper: short citation of the configuration's source.
        input_shape: shape of one example.
        latent_dim: dimension of the prior latent (``None`` when it equals D).
        description: one line, including how a small preset differs from the paper.
        weights: published weights ``{"url": ..., "sha256": ...}`` or None.
        training: training settings that differ from ``zoo.training.DEFAULT_TRAINING``
            for this preset (for example a larger learning rate for a small CPU preset).
        sources: for a preset that reproduces a published configuration, where
            each value comes from: ``{setting: {"value": v, "source": "file:
            key"}}`` for builder arguments and training settings (tests check
            that every ``value`` is the preset's own), or None.
        differences: how the preset differs from that source (one sentence
            each), or empty.
    """

    name: str
    builder: Callable[..., Any]
    kwargs: Dict[str, Any]
    family: str
    dataset: str
    paper: str
    input_shape: Tuple[int, ...]
    latent_dim: Optional[int]
    description: str
    weights: Optional[Dict[str, str]] = None
    training: Optional[Dict[str, Any]] = None
    sources: Optional[Dict[str, Dict[str, Any]]] = None
    differences: Tuple[str, ...] = ()

    def published_weights(self):
        """The preset's default weights: ``{"url", "sha256"}``, ``{"file", "sha256"}`` (shipped in the package) or None."""
        if self.weights is not None:
            return dict(self.weights)
        from zoo.presets import shipped

        entry = shipped.registrations().get(self.name)
        if entry is None:
            return None
        return {"file": shipped.weights_path(self.name), "sha256": entry["sha256"], "bytes": entry.get("bytes")}

    def training_needs(self):
        """For a preset without weights: the data it needs, where to get it, the command that trains it, and the
        compute of an epoch (``zoo.presets.compute``: FLOPs counted by XLA, GPU hours at a peak).

        ``None`` for a preset with published weights (its card says how they were trained).
        """
        if self.published_weights() is not None:
            return None
        from zoo.data import datasets, manifolds
        from zoo.presets import compute

        loader = {"fmnist": "fashion_mnist"}.get(self.dataset, self.dataset)
        if self.dataset in manifolds.GENERATORS:
            data = f"synthetic ({self.dataset}: zoo.data.manifolds, generated on the fly)"
        elif loader == "digits":
            data = "scikit-learn's 8x8 digits (bundled with scikit-learn)"
        else:
            data = f"{loader}: {datasets.HOW_TO_SUPPLY[loader]}, or set FLOW_ZOO_{loader.upper()}_DIR"
        batch = 100 if self.family in ("spread", "nf_spread") else 32 if self.family in ("nf", "nif", "deep_nif") else 64
        return {
            "data": data,
            "command": f"python -m zoo.train --model {self.name} --dataset {self.dataset} --epochs EPOCHS "
                       f"--batch_size {batch} --strategy mirrored --out runs/{self.name}",
            "compute": compute.epoch_cost(self.name, self.dataset) or "not counted (run `python -m "
                       "zoo.presets.compute`)",
            "epochs": "not known in advance: `zoo.train` checkpoints and resumes, so EPOCHS can be raised until "
                      "the validation curve (history.json, TensorBoard logs) is flat",
            "batch_size_source": "the NIF reference's batch 32" if batch == 32 else "the zoo.train default"
                                 if batch == 64 else "the spread paper's batch 100",
        }

    def metadata(self):
        """The preset as a plain dict (what ``list_presets`` returns)."""
        from zoo.presets import shipped

        published = self.published_weights()
        return {
            "name": self.name,
            "family": self.family,
            "dataset": self.dataset,
            "paper": self.paper,
            "input_shape": tuple(self.input_shape),
            "latent_dim": self.latent_dim,
            "num_classes": self.kwargs.get("num_classes"),
            "description": self.description,
            "config": dict(self.kwargs),
            "parameters": _parameter_counts().get(self.name),
            "has_weights": published is not None,
            "weights": published,
            "card": shipped.headline(self.name),
            "training_needs": self.training_needs(),
            "training": dict(self.training or {}),
            "sources": None if self.sources is None else {k: dict(v) for k, v in self.sources.items()},
            "differences": list(self.differences),
        }


def register(name, builder, kwargs, family, dataset, paper, input_shape, latent_dim=None, description="",
             weights=None, training=None, sources=None, differences=()):
    """Registers a named architecture; refuses duplicates.

    Args:
        name: the registry key.
        builder: callable building the model from ``kwargs`` (and ``name``).
        kwargs: dict of plain-data builder arguments.
        family: the model family.
        dataset: the dataset the configuration targets.
        paper: citation of the configuration's source.
        input_shape: shape of one example.
        latent_dim: prior latent size, or None.
        description: one line describing the preset.
        weights: published weights as ``{"url": ..., "sha256": ...}``, or None.
        training: per-preset overrides of ``zoo.training.DEFAULT_TRAINING`` (learning rate,
            warm-up, decay, clipping), or None for the defaults.
        sources: ``{setting: {"value": v, "source": str}}`` citing the file each
            value of a reproduced configuration comes from (see ``Preset``).
        differences: sentences saying how the preset differs from that source.

    Returns:
        The registered ``Preset``.

    Raises:
        ValueError: if ``name`` is already registered.
    """
    if name in _REGISTRY:
        raise ValueError(
            f"A preset named '{name}' is already registered (family '{_REGISTRY[name].family}'); "
            "choose another name."
        )
    if weights is not None and not {"url", "sha256"} <= set(weights):
        raise ValueError(f"Preset '{name}': `weights` needs 'url' and 'sha256'; received {sorted(weights)}.")
    if sources is not None:
        for key, entry in sources.items():
            if not {"value", "source"} <= set(entry):
                raise ValueError(f"Preset '{name}': sources[{key!r}] needs 'value' and 'source'; received {sorted(entry)}.")
    preset = Preset(name, builder, dict(kwargs), family, dataset, paper, tuple(input_shape), latent_dim, description,
                    None if weights is None else dict(weights), None if training is None else dict(training),
                    None if sources is None else {k: dict(v) for k, v in sources.items()}, tuple(differences))
    _REGISTRY[name] = preset
    return preset


def _lookup(name):
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(
            f"Unknown preset '{name}'.{hint} `zoo.list_presets()` names all {len(_REGISTRY)} presets; "
            "users' own architectures need `zoo.register(...)` first."
        )
    return _REGISTRY[name]


def _looks_like_path(name):
    return isinstance(name, str) and (os.sep in name or name.startswith((".", "~")) or
                                      (os.altsep is not None and os.altsep in name))


def is_registered(name):
    """True when ``name`` is a registered preset name."""
    return isinstance(name, str) and name in _REGISTRY


def preset(name):
    """The registered ``Preset`` called ``name`` (``KeyError`` with the closest names otherwise)."""
    return _lookup(name)


def families():
    """The sorted family names of the registered presets."""
    return sorted({p.family for p in _REGISTRY.values()})


def list_presets(family=None, dataset=None):
    """Metadata of every preset, optionally filtered by family and / or dataset."""
    return [
        p.metadata()
        for p in sorted(_REGISTRY.values(), key=lambda p: p.name)
        if (family is None or p.family == family) and (dataset is None or p.dataset == dataset)
    ]


def get(name, weights=None, weights_sha256=None, **overrides):
    """Builds a named preset (or loads a preset directory), ready for ``compile`` / ``fit``.

    Args:
        name: a registered preset name, or the path of a preset directory
            written by ``model.save_to_preset`` (then ``weights`` and
            ``overrides`` must be left out). A registered name always means
            the preset, even when a directory of that name exists in the
            working folder (write ``./name`` for the directory); anything else
            is a path when it is an existing directory or contains a path
            separator or starts with ``.`` / ``~`` (a missing one raises
            ``FileNotFoundError``), and an unknown preset name otherwise.
        weights: None (fresh weights), ``"default"`` (the preset's published
            weights: shipped in the package, ``zoo.presets.shipped``, or a URL
            with its sha256), a local weights file (``.weights.h5``), a local preset
            directory, or an ``https://`` / ``file://`` URL of either (a preset
            directory as ``.zip``), which needs ``weights_sha256``.
        weights_sha256: hex sha256 of the weights file / archive; required for
            URLs, checked for local files when given.
        **overrides: builder arguments replacing the preset's (e.g.
            ``hidden_channels=64``).

    Returns:
        A built Keras model.

    Raises:
        KeyError: unknown name (with the closest names).
        ValueError: ``weights="default"`` when none are published, or an
            unknown override.
        FileNotFoundError: a local weights path that does not exist.
        zoo.presets.WeightsError: a hash mismatch, a truncated or corrupt file,
            or weights of another architecture, named with the difference
            (never a half-loaded model); a preset directory given as
            ``weights`` must hold this preset's architecture.
    """
    from zoo.presets import weights as handles

    if not is_registered(name):  # a registered name always means the preset, whatever the working folder holds
        if os.path.isdir(name):
            if weights is not None or overrides:
                raise ValueError(f"{name} is a preset directory: it fixes its own architecture and weights.")
            return handles.load_preset_dir(name)
        if _looks_like_path(name):
            raise FileNotFoundError(f"No such directory: {name} (a path was given; preset names are "
                                    "`zoo.list()`'s names and contain no '/').")
    preset = _lookup(name)
    unknown = set(overrides) - set(preset.kwargs)
    if unknown:
        raise ValueError(
            f"Preset '{name}' has no argument(s) {sorted(unknown)}; it takes {sorted(preset.kwargs)}."
        )
    published = preset.published_weights()
    if weights == "default" and published is not None:
        weights, weights_sha256 = published.get("file") or published["url"], published["sha256"]
    if weights == "default":
        raise ValueError(
            f"No pretrained weights are published for '{name}' yet. Build it with weights=None and "
            "train it with `model.fit` on its dataset "
            f"('{preset.dataset}'), e.g. model = zoo.get('{name}'); model.compile(optimizer="
            "keras.optimizers.Adam(1e-4)); model.fit(images, batch_size=64, epochs=...)."
        )
    if isinstance(weights, str) and "://" in weights:
        weights = handles.fetch(weights, weights_sha256)
        weights_sha256 = None
    if isinstance(weights, str) and handles.is_preset_dir(weights):
        if overrides:
            raise ValueError("Overrides cannot be combined with a preset directory's weights.")
        loaded = handles.load_preset_dir(weights)
        handles.check_same_architecture(preset.builder(**{**preset.kwargs, "name": name}), loaded, weights)
        return loaded
    model = preset.builder(**{**preset.kwargs, **overrides, "name": name})
    if weights is not None:
        handles.load_weights_into(model, weights, weights_sha256)
    return model


def load(handle, weights=None, weights_sha256=None, **overrides):
    """A zoo model from a preset name, a preset directory or a ``.keras`` file (what the command lines take).

    ``.keras`` files carry their own weights (``weights`` and ``overrides``
    must be left out) and are read with ``keras.saving.load_model`` after
    checking that the file exists (``FileNotFoundError``) and is a complete
    zip archive whose members pass their CRC check (``ValueError`` "truncated
    or corrupt"; Keras itself answers "File not found" for a truncated
    file). ``keras.saving.load_model`` works as well once ``zoo`` is imported:
    importing it registers every class a zoo model is made of (Keras looks up
    custom classes only among the registered ones). Anything else goes to
    ``get``.
    """
    if isinstance(handle, str) and handle.endswith(".keras"):
        if weights is not None or overrides:
            raise ValueError(f"{handle} is a .keras file: it fixes its own architecture and weights.")
        if not os.path.isfile(handle):
            raise FileNotFoundError(f"No such .keras file: {handle}")
        _check_complete_archive(handle)
        import keras

        return keras.saving.load_model(handle)
    return get(handle, weights=weights, weights_sha256=weights_sha256, **overrides)


def _check_complete_archive(path):
    """Refuses a ``.keras`` file that is not a complete, intact zip archive (a cut-off download or copy)."""
    import zipfile

    problem = None
    if not zipfile.is_zipfile(path):
        problem = "it is not a complete zip archive (its end-of-archive record is missing)"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                problem = f"its member {bad!r} fails its CRC check"
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            problem = f"reading it fails ({error})"
    if problem:
        raise ValueError(f"{path} ({os.path.getsize(path)} bytes) is truncated or corrupt: {problem}. A .keras file is "
                         "a zip archive written by model.save(); copy or download it again, or re-save the model.")


def count_parameters(name):
    """Builds preset ``name`` with its own configuration and returns its parameter count."""
    return int(get(name).count_params())


if __name__ == "__main__":
    # Run as a script this file is a second module (__main__); the families register into zoo.presets.registry.
    from zoo.presets import registry

    counts = {preset["name"]: registry.count_parameters(preset["name"]) for preset in registry.list_presets()}
    with open(registry.PARAMETER_COUNTS_FILE, "w") as f:
        json.dump(counts, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(counts)} parameter counts to {registry.PARAMETER_COUNTS_FILE}")
