"""Safe writes: everything the project writes is staged beside its target and renamed into place.

``staged_directory(target, kind, overwrite)`` and ``staged_file(target, ...)``
are the one implementation of "write to a staging place, then rename" used by
preset directories, SavedModel and LiteRT exports and training checkpoints. A
crash leaves either the old target or the new one, never a half-written one.

Overwriting replaces only what this project wrote: a directory is ours when it
holds the marker file ``.flow_zoo.json`` (written into every directory made
here). Any other non-empty target is refused, whatever ``overwrite`` says: the
working folder, a thesis, a data folder, another library's preset or SavedModel
that merely has the same file names are never deleted (directories written
before the marker existed are not recognised either: their owner deletes them).
Nor is anything added to one of our directories later: the marker lists every
file and folder written there, at any depth (``"paths"``; for markers from
before that list, the top-level ``"entries"``, and before those, the entries
the directory's kind ever holds, ``KIND_ENTRIES``), and a directory holding
anything else is refused too (replacing it would delete it).
"""

import contextlib
import json
import os
import re
import shutil
import tempfile

MARKER = ".flow_zoo.json"
SAVED_MODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "fingerprint.pb", MARKER}
PRESET_ENTRIES = {"config.json", "model.weights.h5", "metadata.json", MARKER}
CHECKPOINT_ENTRIES = {"variables.npz", "state.json", MARKER}
_RECORDS_SHARD = re.compile(r"part-\d{5,}\.tfrecord")

KIND_ENTRIES = {
    "preset": PRESET_ENTRIES.__contains__,
    "saved_model": SAVED_MODEL_ENTRIES.__contains__,
    "checkpoint": CHECKPOINT_ENTRIES.__contains__,
    "records": lambda name: name in ("records.json", MARKER) or bool(_RECORDS_SHARD.fullmatch(name)),
}
"""Per kind: whether a top-level entry name is one the project writes there (markers without ``"entries"``)."""


def _read_marker(path):
    """The marker of directory ``path`` as a dict, or None (no marker, or an unreadable one)."""
    try:
        with open(os.path.join(path, MARKER)) as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


def written_by_project(path):
    """The kind of project directory ``path`` is (``"preset"``, ``"saved_model"``, ...), or None."""
    if not os.path.isdir(path):
        return None
    if not os.path.isfile(os.path.join(path, MARKER)):
        return None  # the same file names alone do not make it ours (a KerasHub preset, a user's own SavedModel)
    marker = _read_marker(path)
    return None if marker is None else marker.get("kind") or "unknown"


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
            f"export or preset directory of this project: those carry {MARKER}); refusing to replace it even with "
            "overwrite=True. Choose a new path (a subdirectory, e.g. path/model), or move its contents away first."
        )
    foreign = foreign_entries(target)
    if foreign is None:
        raise FileExistsError(
            f"{target} carries a flow-zoo marker ({MARKER}) of kind {kind!r} that does not list the entries written "
            "there, so flow-zoo cannot tell its own files from ones added later; refusing to replace it even with "
            "overwrite=True. Move what you want to keep out of it and delete it, or choose another path."
        )
    if foreign:
        shown = ", ".join(foreign[:10]) + (f" and {len(foreign) - 10} more" if len(foreign) > 10 else "")
        raise FileExistsError(
            f"{target} is a {kind} directory flow-zoo wrote, but it also holds {shown}, which flow-zoo did not write "
            "there; refusing to replace it even with overwrite=True (that would delete them). Move those entries out "
            "of it, or choose another path."
        )


def refuse_unless_replaceable_directory(target, kind):
    """Raises ``FileExistsError`` unless ``staged_directory(target, kind, overwrite=True)`` may replace ``target``
    (the same checks, nothing written): lets a command refuse before hours of work rather than at its end."""
    _refuse_unless_replaceable(os.path.abspath(target), (kind,), True)


def _tree(path, known=None):
    """Sorted relative paths (``/``-separated) of the files and folders under ``path``, the marker left out; with
    ``known``, only those not in it (a folder not in it is listed alone, not what it holds)."""
    found = []
    for root, folders, names in os.walk(path):
        relative = os.path.relpath(root, path)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        kept = []
        for name in sorted(folders):
            entry = prefix + name
            if known is not None and entry not in known:
                found.append(entry)  # foreign: its contents are the user's too
            else:
                kept.append(name)
                if known is None:
                    found.append(entry)
        folders[:] = kept
        found += [prefix + name for name in names if not (prefix == "" and name == MARKER)
                  and (known is None or prefix + name not in known)]
    return sorted(found)


def foreign_entries(path):
    """Sorted entries of project directory ``path`` that the project did not write there.

    Read from the marker's ``"paths"`` (every file and folder written, at any
    depth: a file added inside a SavedModel's ``variables/`` is found); for a
    marker without them, its top-level ``"entries"``; for a marker without
    either (written before the lists existed), from the entries its kind ever
    holds (``KIND_ENTRIES``). None when neither says (a marker of an
    unknown kind without a list): nothing can be told apart.
    """
    marker = _read_marker(path) if os.path.isfile(os.path.join(path, MARKER)) else None
    if marker is None:
        return None  # not a project directory: nothing in it was written by the project
    if isinstance(marker.get("paths"), list):  # every file and folder written, at any depth
        return _tree(path, known=set(marker["paths"]) | {MARKER})
    names = sorted(os.listdir(path))
    if isinstance(marker.get("entries"), list):
        written = set(marker["entries"]) | {MARKER}
        return [name for name in names if name not in written]
    known = KIND_ENTRIES.get(marker.get("kind"))
    if known is None:
        return None
    return [name for name in names if not known(name)]


@contextlib.contextmanager
def staged_directory(target, kind, overwrite=False, fsync=False):
    """Yields a fresh staging directory; on normal exit it replaces ``target`` atomically.

    Args:
        target: the directory to create or replace.
        kind: what the project writes there (``"preset"``, ``"saved_model"``,
            ``"checkpoint"``); recorded in the marker file.
        overwrite: replace an existing non-empty ``target``, which must be a
            directory this project wrote (of the same ``kind``) holding only
            entries the project wrote there.
        fsync: flush the files to disk before the rename (checkpoints).

    Raises:
        FileExistsError: ``target`` is non-empty and ``overwrite`` is False, or
            it is not a project directory of this kind, or it holds entries the
            project did not write there.
    """
    target = os.path.abspath(target)
    _refuse_unless_replaceable(target, (kind,), overwrite)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.staging-", dir=parent)
    try:
        yield staging
        entries = sorted(set(os.listdir(staging)) | {MARKER})
        with open(os.path.join(staging, MARKER), "w") as f:
            json.dump({"kind": kind, "written_by": "flow-zoo", "entries": entries, "paths": _tree(staging)}, f)
        if fsync:
            _fsync_tree(staging)
        _replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def refuse_unless_replaceable_file(target, overwrite=False, recognize=None, how=None):
    """Raises ``FileExistsError`` unless ``staged_file`` may write ``target`` (the same checks, nothing written).

    Lets a command refuse before hours of work rather than at its end. ``how``
    says how the project's own files are recognised (shown in the refusal).
    """
    target = os.path.abspath(target)
    if not os.path.exists(target):
        return
    if os.path.isdir(target):
        raise FileExistsError(f"{target} is a directory; give the path of the file to write.")
    if recognize is not None and not recognize(target):
        raise FileExistsError(f"{target} is not a file this project wrote{f' ({how})' if how else ''}; refusing to "
                              "replace it even with overwrite=True. Move it away, or choose another path.")
    if not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it.")


@contextlib.contextmanager
def staged_file(target, overwrite=False, recognize=None, how=None):
    """Yields a staging file path beside ``target``; on normal exit it is renamed onto ``target``.

    ``recognize(path) -> bool`` says whether an existing ``target`` is a file
    this project wrote (only such a file is replaced with ``overwrite``);
    ``how`` says how it tells (shown when it refuses).
    """
    target = os.path.abspath(target)
    refuse_unless_replaceable_file(target, overwrite, recognize, how)
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


def is_json_object_with(path, keys):
    """True for a JSON file holding an object with every one of ``keys`` at the top level: the reports, histories
    and metrics files the project writes (``staged_file``'s ``recognize`` for them)."""
    try:
        with open(path) as f:
            content = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and all(key in content for key in keys)


def is_json_table(path, key):
    """True for a JSON file holding ``{name: {key: ..., ...}, ...}``: the tables the project writes
    (``staged_file``'s ``recognize`` for them)."""
    try:
        with open(path) as f:
            table = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(table, dict) and all(isinstance(v, dict) and key in v for v in table.values())
