"""Safe writes: everything the project writes is staged beside its target and renamed into place.

``staged_directory(target, kind, overwrite)`` and ``staged_file(target, ...)``
are the one implementation of "write to a staging place, then rename" used by
preset directories, SavedModel and LiteRT exports and training checkpoints. A
crash leaves either the old target or the new one, never a half-written one.

Overwriting replaces only what this project wrote: a directory is ours when it
holds the marker file ``.flow_zoo.json`` (written into every directory made
here) or is recognisably one of our formats from before the marker existed (a
preset directory, or a directory holding nothing but a SavedModel). Any other
non-empty target is refused, whatever ``overwrite`` says: the working folder,
a thesis, a data folder are never deleted.
"""

import contextlib
import json
import os
import shutil
import tempfile

MARKER = ".flow_zoo.json"
SAVED_MODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "fingerprint.pb", MARKER}
PRESET_ENTRIES = {"config.json", "model.weights.h5", "metadata.json", MARKER}


def written_by_project(path):
    """The kind of project directory ``path`` is (``"preset"``, ``"saved_model"``, ...), or None."""
    if not os.path.isdir(path):
        return None
    marker = os.path.join(path, MARKER)
    if os.path.isfile(marker):
        try:
            with open(marker) as f:
                return json.load(f).get("kind") or "unknown"
        except (OSError, ValueError):
            return None
    entries = set(os.listdir(path))
    if entries and entries <= PRESET_ENTRIES and {"config.json", "metadata.json"} <= entries:
        return "preset"
    if entries and entries <= SAVED_MODEL_ENTRIES and "saved_model.pb" in entries:
        return "saved_model"
    return None


def _refuse_unless_replaceable(target, kinds, overwrite):
    if not os.path.exists(target):
        return
    if os.path.isdir(target) and not os.listdir(target):
        return  # an empty directory holds nothing to lose
    what = "file" if os.path.isfile(target) else "directory"
    if not overwrite:
        raise FileExistsError(f"{target} exists and is not empty; pass overwrite=True to replace it "
                              "(only directories this project wrote can be replaced).")
    kind = written_by_project(target) if what == "directory" else None
    if kind is None or (kinds and kind not in kinds and kind != "unknown"):
        raise FileExistsError(
            f"{target} is a {what} that flow-zoo did not write ({'not a ' + '/'.join(kinds) if kinds else 'no'} "
            f"export or preset directory of this project); refusing to replace it even with overwrite=True. "
            "Choose a new path (a subdirectory, e.g. path/model), or move its contents away first."
        )


@contextlib.contextmanager
def staged_directory(target, kind, overwrite=False, fsync=False):
    """Yields a fresh staging directory; on normal exit it replaces ``target`` atomically.

    Args:
        target: the directory to create or replace.
        kind: what the project writes there (``"preset"``, ``"saved_model"``,
            ``"checkpoint"``); recorded in the marker file.
        overwrite: replace an existing non-empty ``target``, which must be a
            directory this project wrote (of the same ``kind``).
        fsync: flush the files to disk before the rename (checkpoints).

    Raises:
        FileExistsError: ``target`` is non-empty and ``overwrite`` is False, or
            it is not a project directory of this kind.
    """
    target = os.path.abspath(target)
    _refuse_unless_replaceable(target, (kind,), overwrite)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.staging-", dir=parent)
    try:
        yield staging
        with open(os.path.join(staging, MARKER), "w") as f:
            json.dump({"kind": kind, "written_by": "flow-zoo"}, f)
        if fsync:
            _fsync_tree(staging)
        _replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def staged_file(target, overwrite=False, recognize=None):
    """Yields a staging file path beside ``target``; on normal exit it is renamed onto ``target``.

    ``recognize(path) -> bool`` says whether an existing ``target`` is a file
    this project wrote (only such a file is replaced with ``overwrite``).
    """
    target = os.path.abspath(target)
    if os.path.exists(target):
        if os.path.isdir(target):
            raise FileExistsError(f"{target} is a directory; give the path of the file to write.")
        if recognize is not None and not recognize(target):
            raise FileExistsError(f"{target} is not a file this project wrote; refusing to replace it even with "
                                  "overwrite=True. Choose another path.")
        if not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it.")
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.staging-", dir=parent)
    try:
        staged = os.path.join(staging, os.path.basename(target))
        yield staged
        os.replace(staged, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(staging, target):
    """Moves ``staging`` onto ``target``: the old one is renamed aside first, then removed."""
    if not os.path.exists(target):
        os.replace(staging, target)
        return
    aside = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old-", dir=os.path.dirname(target))
    os.rmdir(aside)
    os.replace(target, aside)
    try:
        os.replace(staging, target)
    except OSError:
        os.replace(aside, target)  # put the old one back
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _fsync_tree(path):
    for root, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def is_json_table(path, key):
    """True for a JSON file holding ``{name: {key: ..., ...}, ...}``: the tables the project writes
    (``staged_file``'s ``recognize`` for them)."""
    try:
        with open(path) as f:
            table = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(table, dict) and all(isinstance(v, dict) and key in v for v in table.values())
