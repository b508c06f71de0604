"""Resumable checkpoints: every variable (seed states included), published atomically."""

import json
import os
import re
import shutil

import keras
import numpy as np

from zoo import files

CHECKPOINT_FORMAT = 1
_CHECKPOINT_NAME = re.compile(r"ckpt-(\d{9,})")  # what save() writes; pruning touches nothing else


def _variables(model):
    """Every variable a resumed run needs: the model's (seed states included), then the optimizer's.

    Keyed by position (``model/00012``): the order is fixed by the
    architecture, while variable paths carry Keras's per-process name
    uniquification (``act_norm_4``) and would not match across processes.
    """
    named = {}
    for prefix, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        for index, variable in enumerate(variables):
            named[f"{prefix}/{index:05d}"] = variable
    return named


def _value(variable):
    """The value as NumPy (of a distributed variable: the local copy; replicas hold equal values)."""
    return np.asarray(keras.ops.convert_to_numpy(variable))


class CheckpointManager:
    """Writes and reads the full training state under ``directory`` (one published ``latest``).

    A save stages ``ckpt-<step>/`` completely (``variables.npz`` and
    ``state.json``, flushed to disk; ``zoo.files.staged_directory``), renames
    it into place, then atomically replaces the ``latest`` pointer file and
    removes older checkpoint directories. Readers follow the pointer, so a
    crash at any point leaves the previous checkpoint usable.
    """

    def __init__(self, directory, keep=2):
        self.directory = directory
        self.keep = int(keep)

    @property
    def pointer(self):
        return os.path.join(self.directory, "latest")

    def latest(self):
        """The published checkpoint directory, or None."""
        if not os.path.exists(self.pointer):
            return None
        with open(self.pointer) as f:
            name = f.read().strip()
        path = os.path.join(self.directory, name)
        if not os.path.isdir(path):
            raise ValueError(f"Checkpoint pointer {self.pointer} names {name!r}, which does not exist; "
                             "the checkpoint directory was modified by hand. Delete it to start over.")
        return path

    def save(self, arrays, state):
        """Writes ``arrays`` (from ``snapshot(model)``) and ``state``, then publishes them as ``latest``."""
        os.makedirs(self.directory, exist_ok=True)
        name = f"ckpt-{int(state['global_step']):09d}"
        final = os.path.join(self.directory, name)
        with files.staged_directory(final, "checkpoint", overwrite=True, fsync=True) as staging:
            with open(os.path.join(staging, "variables.npz"), "wb") as f:
                np.savez(f, **arrays)
            with open(os.path.join(staging, "state.json"), "w") as f:
                json.dump(dict(state, format=CHECKPOINT_FORMAT), f, indent=1)
        tmp_pointer = self.pointer + ".tmp"
        with open(tmp_pointer, "w") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_pointer, self.pointer)
        kept = sorted((d for d in os.listdir(self.directory) if _CHECKPOINT_NAME.fullmatch(d)
                       and os.path.isfile(os.path.join(self.directory, d, "state.json"))),
                      key=lambda d: int(_CHECKPOINT_NAME.fullmatch(d).group(1)))  # by step, past 9 digits too
        for old in kept[: -self.keep]:
            # Only a checkpoint holding nothing but what was written there: a file a user added is never deleted
            # (such a folder is left in place; `latest` never points to it again).
            if old != name and files.foreign_entries(os.path.join(self.directory, old)) == []:
                shutil.rmtree(os.path.join(self.directory, old), ignore_errors=True)
        return final

    def restore(self, model, path=None):
        """Loads the checkpoint into ``model`` (built, compiled, optimizer built) and returns its state."""
        path = path or self.latest()
        with open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: checkpoint format {state.get('format')} is not {CHECKPOINT_FORMAT}.")
        try:
            with np.load(os.path.join(path, "variables.npz")) as stored:
                arrays = {key: stored[key] for key in stored.files}
        except (OSError, ValueError, EOFError) as error:
            raise ValueError(f"{path}/variables.npz is unreadable ({error}); the checkpoint is corrupt.") from error
        variables = _variables(model)
        mismatch = [key for key, variable in variables.items()
                    if key not in arrays or tuple(arrays[key].shape) != tuple(variable.shape)]
        if mismatch or len(arrays) != len(variables):
            raise ValueError(
                f"{path} was written by another architecture or optimizer ({len(arrays)} stored variables, "
                f"the model has {len(variables)}; first mismatch: {mismatch[:1]}); start a new run in another "
                "output directory."
            )
        for key, variable in variables.items():
            variable.assign(arrays[key])
        return state


def snapshot(model):
    """The values a checkpoint stores (``_variables`` keys -> arrays), read once, and whether the weights are finite."""
    trainable = {id(v) for v in model.trainable_variables}
    arrays, finite = {}, True
    for key, variable in _variables(model).items():
        arrays[key] = _value(variable)
        if id(variable) in trainable:
            finite = finite and bool(np.all(np.isfinite(arrays[key])))
    return arrays, finite
