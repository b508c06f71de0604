"""Weight handles and self-describing preset directories.

A weight handle is one of:

* a local weights file (``*.weights.h5``, as written by ``model.save_weights``);
* a local preset directory (``config.json`` + ``model.weights.h5`` +
  ``metadata.json``, as written by ``save_to_preset``);
* an ``https://`` (or ``file://``) URL of a weights file or of a ``.zip`` of a
  preset directory, with its sha256: fetched once into the Keras cache
  (``~/.keras/flow_zoo``, like ``keras.utils.get_file``) and verified.

A hash mismatch, a truncated file or a file of another architecture raises a
clear error and never returns a half-loaded model: weights are always loaded
into a freshly built model that is discarded on failure.
"""

import hashlib
import json
import os
import shutil
import tempfile
import zipfile

import keras

from zoo import files

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1


class WeightsError(ValueError):
    """A weights file or preset directory that cannot be used (corrupt, mismatched, incomplete)."""


def file_digest(path, algorithm="sha256", chunk=1 << 20):
    """Hex digest of a file (``algorithm``: any ``hashlib`` name), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path):
    """Hex sha256 of a file."""
    return file_digest(path, "sha256")


def is_preset_dir(path):
    return os.path.isdir(path) and os.path.exists(os.path.join(path, CONFIG_FILE))


def fetch(url, sha256, cache_dir=None):
    """Downloads ``url`` into the cache (once) and verifies its sha256; returns the local path.

    Args:
        url: ``https://`` or ``file://`` URL.
        sha256: expected hex digest (required: an unverified download is refused).
        cache_dir: cache root (default ``~/.keras``; files go to ``flow_zoo/``).

    Raises:
        ValueError: if ``sha256`` is missing.
        WeightsError: if the downloaded file does not match ``sha256``.
    """
    if not sha256:
        raise ValueError(f"A sha256 is required for remote weights ({url}); pass weights_sha256='<hex digest>'.")
    fname = f"{sha256[:16]}-{os.path.basename(url.split('?')[0]) or 'weights'}"
    if cache_dir is not None:  # keras.utils.get_file falls back to /tmp/.keras for a directory it cannot write
        os.makedirs(cache_dir, exist_ok=True)
    try:
        path = keras.utils.get_file(fname, origin=url, file_hash=sha256, hash_algorithm="sha256",
                                    cache_dir=cache_dir, cache_subdir="flow_zoo")
    except ValueError as error:  # Keras reports a hash mismatch as ValueError
        raise WeightsError(f"Download of {url} does not match sha256 {sha256}: {error}") from error
    if sha256_of(path) != sha256:
        os.remove(path)
        raise WeightsError(f"{path} (from {url}) does not match sha256 {sha256}; the cached copy was removed.")
    if path.endswith(".zip"):
        target = path[: -len(".zip")]
        if not is_preset_dir(target):
            _extract_preset_zip(path, target)
        return target
    return path


def _extract_preset_zip(archive, target):
    staging = tempfile.mkdtemp(dir=os.path.dirname(target))
    try:
        with zipfile.ZipFile(archive) as z:
            z.extractall(staging)
        root = staging
        entries = os.listdir(staging)
        if len(entries) == 1 and os.path.isdir(os.path.join(staging, entries[0])):
            root = os.path.join(staging, entries[0])
        if not is_preset_dir(root):
            raise WeightsError(f"{archive} is not a zipped preset directory (no {CONFIG_FILE}).")
        os.replace(root, target)
    except zipfile.BadZipFile as error:
        raise WeightsError(f"{archive} is not a valid zip archive: {error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_weights_into(model, path, expected_sha256=None):
    """Loads a weights file into ``model`` (a freshly built one), with clear errors.

    Raises:
        FileNotFoundError: missing file.
        WeightsError: hash mismatch, truncated / corrupt file, or another architecture.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file not found: {path}")
    if expected_sha256 and sha256_of(path) != expected_sha256:
        raise WeightsError(f"{path} does not match the expected sha256 {expected_sha256} (got {sha256_of(path)}).")
    _check_stored_shapes(model, path)
    try:
        model.load_weights(path)
    except (OSError, ValueError, KeyError) as error:
        raise WeightsError(
            f"Cannot load {path} into '{model.name}': the file is truncated or corrupt, or it holds the weights "
            f"of another architecture ({type(error).__name__}: {str(error)[:300]})."
        ) from error


def _shape_difference(expected, received):
    """A short description of how two lists of weight shapes differ, or None when they are the same multiset."""
    import collections

    want, have = collections.Counter(map(tuple, expected)), collections.Counter(map(tuple, received))
    if want == have:
        return None
    missing, extra = sorted((want - have).elements()), sorted((have - want).elements())
    return (f"{len(received)} arrays stored for {len(expected)} weights; missing shapes {missing[:4]}"
            f"{' ...' if len(missing) > 4 else ''}, extra shapes {extra[:4]}{' ...' if len(extra) > 4 else ''}")


def _saved_shapes(model):
    """Shapes of the arrays ``save_weights`` writes for ``model``: every layer's own variables, as Keras saves them.

    Not ``model.weights``: a variable two layers track (``SpectralNormalization``
    and the layer it wraps share the kernel: AE+SN) is written once per layer.
    """
    shapes = []
    for layer in model._flatten_layers(include_self=True, recursive=True):
        store = {}
        layer.save_own_variables(store)
        shapes += [tuple(v.shape) for v in store.values()]
    return shapes


def _check_stored_shapes(model, path):
    """Refuses a ``.weights.h5`` whose arrays are not exactly the model's (Keras would load a subset quietly)."""
    import h5py

    shapes = []
    try:
        with h5py.File(path, "r") as f:
            for key in f.keys():
                if key == OPTIMIZER_GROUP:  # a compiled model's save_weights also stores the optimizer's state
                    continue
                if isinstance(f[key], h5py.Dataset):
                    shapes.append(f[key].shape)
                else:
                    f[key].visititems(
                        lambda name, item: shapes.append(item.shape) if isinstance(item, h5py.Dataset) else None)
    except OSError as error:
        raise WeightsError(f"Cannot read {path}: the file is truncated or corrupt ({error}).") from error
    difference = _shape_difference(_saved_shapes(model), shapes)
    if difference:
        raise WeightsError(f"{path} holds the weights of another architecture than '{model.name}' "
                           f"({type(model).__name__}): {difference}.")


def check_same_architecture(expected, loaded, source):
    """Refuses a loaded model whose class or weights differ from ``expected`` (a freshly built preset)."""
    if type(loaded) is not type(expected):
        raise WeightsError(f"{source} holds a {type(loaded).__name__}, but '{expected.name}' is a "
                           f"{type(expected).__name__}; load it with zoo.get('{source}') instead.")
    difference = _shape_difference([w.shape for w in expected.weights], [w.shape for w in loaded.weights])
    if difference is None and [tuple(w.shape) for w in expected.weights] != [tuple(w.shape) for w in loaded.weights]:
        difference = "the same shapes in another order (another layout of layers)"
    if difference:
        raise WeightsError(f"{source} holds another architecture than the preset '{expected.name}': {difference}. "
                           f"Load it with zoo.get('{source}') to get the model it describes.")


def save_to_preset(model, directory, metadata=None, overwrite=False, include_optimizer=True):
    """Writes a self-describing preset directory for ``model``.

    ``config.json`` (the Keras-serialized model), ``model.weights.h5`` and
    ``metadata.json`` (``metadata`` merged with the model class, n_bits,
    parameter count, Keras version and the weights' sha256). Written into a
    staging directory beside ``directory`` and renamed at the end
    (``zoo.files.staged_directory``), so a failure leaves nothing half-written.

    Args:
        model: a built Keras model (any ``zoo`` model).
        directory: target directory; must not exist or be empty unless
            ``overwrite``, and then it must be a preset directory this project
            wrote (anything else is refused).
        metadata: dict of JSON-serializable facts (training data, n_bits,
            steps, metrics, ...).
        overwrite: replace an existing preset directory.
        include_optimizer: keep a compiled model's optimizer state in the
            weights file (``save_weights`` stores it; about twice the model's
            own size for Adam). ``False`` for weights that are shipped.

    Returns:
        ``directory``.
    """
    with files.staged_directory(directory, "preset", overwrite=overwrite) as staging:
        with open(os.path.join(staging, CONFIG_FILE), "w") as f:
            json.dump(keras.saving.serialize_keras_object(model), f, indent=1)
        model.save_weights(os.path.join(staging, WEIGHTS_FILE))
        if not include_optimizer:
            _drop_optimizer_state(os.path.join(staging, WEIGHTS_FILE))
        facts = dict(metadata or {})
        facts.update(
            {
                "format_version": FORMAT_VERSION,
                "class_name": type(model).__name__,
                "name": model.name,
                "n_bits": model.n_bits,
                "parameters": int(model.count_params()),
                "keras_version": keras.__version__,
                "weights_sha256": sha256_of(os.path.join(staging, WEIGHTS_FILE)),
            }
        )
        with open(os.path.join(staging, METADATA_FILE), "w") as f:
            json.dump(facts, f, indent=1, sort_keys=True)
    return directory


def _drop_optimizer_state(path):
    """Rewrites a ``.weights.h5`` without its ``optimizer`` group (HDF5 does not reclaim deleted space in place)."""
    import h5py

    with h5py.File(path, "r") as source:
        if OPTIMIZER_GROUP not in source:
            return
        slim = path + ".slim"
        with h5py.File(slim, "w") as target:
            for key, value in source.attrs.items():
                target.attrs[key] = value
            for key in source.keys():
                if key != OPTIMIZER_GROUP:
                    source.copy(source[key], target, name=key)
    os.replace(slim, path)


OPTIMIZER_GROUP = "optimizer"
"""The group of a ``.weights.h5`` in which Keras stores a compiled model's optimizer variables."""


def read_metadata(directory):
    with open(os.path.join(directory, METADATA_FILE)) as f:
        return json.load(f)


def load_preset_dir(directory):
    """Builds the model a preset directory describes and loads its (verified) weights."""
    for required in (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE):
        if not os.path.exists(os.path.join(directory, required)):
            raise WeightsError(f"Preset directory {directory} is incomplete: {required} is missing.")
    try:
        with open(os.path.join(directory, CONFIG_FILE)) as f:
            config = json.load(f)
        metadata = read_metadata(directory)
    except json.JSONDecodeError as error:
        raise WeightsError(f"Preset directory {directory}: unreadable JSON ({error}).") from error
    model = keras.saving.deserialize_keras_object(config)
    load_weights_into(model, os.path.join(directory, WEIGHTS_FILE), metadata.get("weights_sha256"))
    return model
