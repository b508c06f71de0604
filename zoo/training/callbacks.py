"""Keras callbacks of zoo.train: the state / NaN guard, sample grids, best-model export, data-noise annealing."""

import math
import os

import keras
import numpy as np
from keras import ops

from layers.spread import DataNoise, SpreadPrior
from zoo.training.checkpoints import snapshot


class TrainingState(keras.callbacks.Callback):
    """Counts steps, guards against non-finite losses and writes resumable checkpoints.

    Put it first in the callback list: when a batch's loss (or the weights) is
    not finite it stops training before any later callback can save or export
    the broken model, and it never checkpoints such a state.
    """

    def __init__(self, manager, state, steps_per_epoch, checkpoint_every, write=True):
        super().__init__()
        self.manager, self.state = manager, state
        self.steps_per_epoch, self.checkpoint_every, self.write = steps_per_epoch, checkpoint_every, write
        self.diverged = None

    def _checkpoint(self):
        """Checkpoints the current state; returns False (and writes nothing) when the weights are not finite."""
        arrays, finite = snapshot(self.model)
        if finite and self.write:
            self.manager.save(arrays, self.state)
        return finite

    def on_train_batch_end(self, batch, logs=None):
        self.state["global_step"] += 1
        self.state["step_in_epoch"] += 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = (f"the loss became {float(loss)} at epoch {self.state['epoch'] + 1}, step "
                             f"{self.state['step_in_epoch']} (global step {self.state['global_step']})")
            self.model.stop_training = True
            return
        if self.checkpoint_every and self.state["global_step"] % self.checkpoint_every == 0 \
                and self.state["step_in_epoch"] < self.steps_per_epoch:
            if not self._checkpoint():
                self.diverged = f"the weights became non-finite at global step {self.state['global_step']}"
                self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged:
            return
        logs = logs or {}
        if not all(math.isfinite(float(v)) for k, v in logs.items() if k in ("loss", "val_loss")):
            self.diverged = f"the epoch-{epoch + 1} metrics are not finite ({logs})"
            self.model.stop_training = True
            return
        record = {"epoch": epoch + 1, "loss": float(logs["loss"]),
                  "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))}
        # bits/dim: models with a likelihood_term; the model's diagnostics (training and validation).
        diagnostics = [prefix + name for name in self.model.diagnostics for prefix in ("", "val_")]
        for key in ("val_loss", "bits_per_dim", "val_bits_per_dim", *diagnostics):
            if key in logs:
                record[key] = float(logs[key])
        before = (self.state["epoch"], self.state["step_in_epoch"])
        self.state["history"].append(record)
        self.state["epoch"], self.state["step_in_epoch"] = epoch + 1, 0
        if not self._checkpoint():  # keep the state of the last good checkpoint
            self.state["history"].pop()
            self.state["epoch"], self.state["step_in_epoch"] = before
            self.diverged = f"the weights are not finite at the end of epoch {epoch + 1}"
            self.model.stop_training = True


class SampleGrid(keras.callbacks.Callback):
    """Every ``every`` epochs: a PNG of samples (rows = temperatures) and a TensorBoard image.

    Image models draw ``columns`` samples per temperature with a fixed seed
    (the same noise every time, so grids of different epochs are comparable);
    vector models get a scatter plot of samples.
    """

    def __init__(self, directory, every=1, temperatures=(0.5, 0.7, 0.85, 1.0), columns=8, seed=0, log_dir=None):
        super().__init__()
        self.directory, self.every, self.temperatures = directory, int(every), tuple(temperatures)
        self.columns, self.seed, self.log_dir = int(columns), int(seed), log_dir
        self.written = []

    def paths(self, first_epoch, last_epoch):
        """The pictures this callback writes at the ends of epochs ``first_epoch..last_epoch`` (counted from 1)."""
        if self.every <= 0:
            return []
        return [os.path.join(self.directory, f"epoch_{epoch:04d}.png")
                for epoch in range(first_epoch, last_epoch + 1) if epoch % self.every == 0]

    def refuse_foreign_pictures(self, first_epoch, last_epoch):
        """Raises ``FileExistsError`` now if a picture of those epochs would replace a file the project did not
        write (otherwise found only at that epoch's end)."""
        from zoo.evaluation import pictures

        pictures.refuse_foreign_pictures(self.paths(first_epoch, last_epoch))

    def on_epoch_end(self, epoch, logs=None):
        due = self.paths(epoch + 1, epoch + 1)
        if not due or self.model.stop_training:
            return
        os.makedirs(self.directory, exist_ok=True)
        path = due[0]
        if self.model.is_image_model:  # uint8 pixels, or [0, 1] floats
            self._image_grid(path, epoch)
        else:
            self._scatter(path)
        self.written.append(path)

    def _image_grid(self, path, epoch):
        from zoo.evaluation import pictures

        grid = pictures.temperature_grid(self.model, self.temperatures, self.columns, self.seed)
        pictures.save_png(grid, path)
        if self.log_dir:
            import tensorflow as tf

            with tf.summary.create_file_writer(os.path.join(self.log_dir, "samples")).as_default():
                image = np.asarray(grid, np.uint8)
                image = image[..., None] if image.ndim == 2 else image
                tf.summary.image("samples", image[None], step=epoch + 1)

    def _scatter(self, path):
        from zoo.evaluation.pictures import figure

        samples = np.asarray(self.model.sample(2000, seed=self.seed, labels=self.model.every_class(2000)))

        def draw(figure):
            axis = figure.add_subplot(1, 1, 1)
            axis.scatter(samples[:, 0], samples[:, 1], s=1)
            axis.set_title(os.path.basename(path))
        figure(path, draw)


class BestModelExport(keras.callbacks.Callback):
    """Writes a preset directory of the model whenever its monitored validation value improves.

    ``monitor``: a key of the epoch logs (``zoo.train`` passes ``model.monitor``:
    ``val_loss``, the held-out objective in bits/dim, unless the objective has a
    schedule).

    The directory is replaced atomically (``save_to_preset(overwrite=True)``);
    ``best_value`` starts from the resumed run's best so a restart does not
    overwrite a better export with a worse one.
    """

    def __init__(self, directory, monitor="val_loss", best_value=math.inf, metadata=None):
        super().__init__()
        self.directory, self.monitor, self.best_value = directory, monitor, float(best_value)
        self.metadata = dict(metadata or {})

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or self.model.stop_training or not math.isfinite(float(value)):
            return
        if float(value) < self.best_value:
            self.best_value = float(value)
            facts = dict(self.metadata, epoch=epoch + 1, **{self.monitor: float(value)})
            self.model.save_to_preset(self.directory, metadata=facts, overwrite=True)
def data_noise_layers(model):
    """The ``layers.DataNoise`` layers inside ``model`` (possibly none)."""
    return [l for l in model._flatten_layers(include_self=False, recursive=True) if isinstance(l, DataNoise)]


class DataNoiseAnnealing(keras.callbacks.Callback):
    """Anneals the ``layers.DataNoise`` of a model during ``fit``, never below a floor.

    After ``start_step`` optimizer steps, every ``every_steps`` steps the
    noise standard deviation is multiplied by ``factor`` and clipped at
    ``floor`` (section 7.4: 0.05, annealed by 0.9 every 10k iterations after
    2000k, floor 0.01). Steps are the optimizer's iteration count, so
    annealing continues across several ``fit`` calls.

    Args:
        start_step: int >= 0.
        every_steps: int >= 1.
        factor: float in (0, 1].
        floor: float >= 0, the smallest noise standard deviation.
    """

    def __init__(self, start_step=2_000_000, every_steps=10_000, factor=0.9, floor=0.01):
        super().__init__()
        if start_step < 0 or every_steps < 1 or not 0 < factor <= 1 or floor < 0:
            raise ValueError(
                "DataNoiseAnnealing: needs start_step >= 0, every_steps >= 1, 0 < factor <= 1 and floor >= 0; "
                f"received {start_step}, {every_steps}, {factor}, {floor}."
            )
        self.start_step, self.every_steps, self.factor, self.floor = int(start_step), int(every_steps), factor, floor

    def noise_layers(self):
        found = data_noise_layers(self.model)
        if not found:
            raise ValueError("DataNoiseAnnealing: the model has no layers.DataNoise to anneal.")
        return found

    def on_train_batch_end(self, batch, logs=None):
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        if step <= self.start_step or (step - self.start_step) % self.every_steps:
            return
        for layer in self.noise_layers():
            current = float(ops.convert_to_numpy(layer.stddev))
            layer.stddev.assign(max(self.floor, current * self.factor))


class SpreadSpectrumHistory(keras.callbacks.Callback):
    """Records the spectrum of a spread prior's ``A A^T`` every ``every_steps`` optimizer steps during ``fit``.

    How the eigenvalue gap of the learnable manifold prior emerges with training
    (section 7 of "On the latent space of flow-based models"). After the
    run, ``history`` is a list of ``{"step", "data_noise", "eigenvalues"}``
    (eigenvalues of ``A A^T`` in decreasing order, float64, as
    ``SpreadPrior.spectrum()``; ``data_noise``: the ``layers.DataNoise``
    standard deviation at that step, or None without one). Steps are the
    optimizer's iteration count, so the record continues across ``fit`` calls;
    step 0 is recorded when training starts from it, and the last step when each
    ``fit`` ends. With ``steps_per_execution > 1`` a record is taken at the first
    batch end at or past each multiple of ``every_steps``.

    Args:
        every_steps: int >= 1.
    """

    def __init__(self, every_steps=500):
        super().__init__()
        if int(every_steps) < 1:
            raise ValueError(f"SpreadSpectrumHistory: needs every_steps >= 1; received {every_steps}.")
        self.every_steps = int(every_steps)
        self.history = []

    def _prior(self):
        prior = getattr(self.model, "prior", None)
        if not isinstance(prior, SpreadPrior):
            raise ValueError(
                "SpreadSpectrumHistory: the model's prior is "
                f"{type(prior).__name__}, not a layers.SpreadPrior; use it with a spread model (zoo.get('spread_*')).")
        return prior

    def _record(self):
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        if self.history and self.history[-1]["step"] == step:
            return
        noise = data_noise_layers(self.model)
        self.history.append({"step": step,
                             "data_noise": float(ops.convert_to_numpy(noise[0].stddev)) if noise else None,
                             "eigenvalues": [float(e) for e in self._prior().spectrum()]})

    def on_train_begin(self, logs=None):
        self._prior()
        if int(ops.convert_to_numpy(self.model.optimizer.iterations)) == 0:
            self._record()

    def on_train_batch_end(self, batch, logs=None):
        # a multiple of every_steps passed since the last record (steps_per_execution > 1 moves by several steps)
        step = int(ops.convert_to_numpy(self.model.optimizer.iterations))
        last = self.history[-1]["step"] if self.history else 0
        if step // self.every_steps > last // self.every_steps:
            self._record()

    def on_train_end(self, logs=None):
        self._record()
