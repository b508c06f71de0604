"""Training that scales and survives: strategies, exact resume, a NaN guard, callbacks, ``zoo.train``.

``train(model, dataset, epochs, batch_size, out)`` builds a preset under a
``tf.distribute`` strategy, trains it with ``model.fit`` and writes into
``out``:

- ``checkpoints/``: the full training state every ``checkpoint_every`` steps and
  at each epoch end (model variables, optimizer variables, seed-generator
  states, the position in the data and the history), written to a new
  directory and then published by atomically replacing ``checkpoints/latest``;
  a run killed at any moment (SIGKILL included) and started again with the
  same arguments and ``resume=True`` continues from the last published state
  and ends with the same weights as an uninterrupted run.
- ``samples/epoch_NNNN.png``: sample grids every ``sample_every`` epochs
  (rows = temperatures), also logged as TensorBoard images;
- ``logs/``: TensorBoard scalars (``train/``, ``validation/``: bits/dim,
  learning rate) and images (``samples/``);
- ``best/``: a preset directory (``zoo.get("out/best")``) of the epoch with the
  lowest validation bits/dim; ``final/``: the last epoch's;
- ``history.json``: per-epoch ``loss`` and ``val_loss`` (bits/dim for flows; the training
  objective for the autoencoder families) and the learning rate.

The command line ``python -m zoo.train`` (``zoo/train.py``) wraps ``train``
and also writes a SavedModel.

Exact resume rests on three choices: (1) the data order of epoch ``e`` is a
function of ``(seed, e)`` only (a fresh seeded shuffle per epoch, one
``fit`` call per epoch), so skipping the batches already consumed puts a
resumed run at the same batch; (2) the checkpoint holds every variable of
the model and the optimizer, including the seed-generator states that draw
the dequantization and NIF noise (Keras's ``save_weights`` omits those);
(3) nothing is written after a non-finite loss or non-finite weights.
"""

import dataclasses
import json
import math
import os
import shutil
import time

import keras
import numpy as np

from zoo import registry

DEFAULT_TRAINING = {
    "learning_rate": 1e-4,
    "warmup_steps": 1000,
    "decay": "cosine",
    "final_learning_rate_fraction": 0.0,
    "global_clipnorm": 5.0,
    "weight_decay": None,
}
"""Adam with linear warm-up, cosine decay and global-norm clipping at 5 (the NIF reference set-up).

Presets override entries through ``zoo.register(..., training={...})``; the
caller's ``training=`` argument of ``train`` overrides both.
"""

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")

CHECKPOINT_FORMAT = 1


class TrainingDivergedError(RuntimeError):
    """Training met a non-finite loss (or data); the last good checkpoint is kept."""


# ------------------------------------------------------------- strategies
def make_strategy(name="default", devices=None, tpu_address=None):
    """A ``tf.distribute.Strategy`` by name.

    Args:
        name: ``"default"`` (no distribution: the current default strategy),
            ``"mirrored"`` (all local GPUs, or ``devices``), ``"multi_worker"``
            (``MultiWorkerMirroredStrategy``; the cluster comes from the
            ``TF_CONFIG`` environment variable) or ``"tpu"`` (``TPUStrategy``
            on the TPU at ``tpu_address``, ``""`` for the local one).
        devices: device names for ``"mirrored"`` (e.g. ``["/cpu:0", "/cpu:1"]``).
        tpu_address: TPU name or ``grpc://`` address for ``"tpu"``.
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        if devices:
            raise ValueError("`devices` applies to the 'mirrored' strategy; multi_worker reads TF_CONFIG.")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")


def _is_chief(strategy):
    """True on the worker that writes files (every strategy but multi-worker has only one)."""
    resolver = getattr(getattr(strategy, "extended", None), "_cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type in ("chief", None) or (resolver.task_type == "worker" and resolver.task_id == 0)


# ------------------------------------------------------------------- data
def load_training_data(dataset, split="train", num_examples=None, seed=0):
    """Training arrays by dataset name: image datasets (``zoo.datasets``) or synthetic manifolds.

    Synthetic manifolds (``zoo.manifolds.GENERATORS``) draw ``num_examples``
    points (default 10000 for train, 2000 otherwise) with a split-dependent
    seed, so the validation points are not the training points.
    """
    from zoo import datasets, manifolds

    if dataset in manifolds.GENERATORS:
        n = num_examples or (10000 if split == "train" else 2000)
        return np.asarray(manifolds.GENERATORS[dataset](n, seed=seed + (0 if split == "train" else 1)).data)
    if dataset not in datasets.LOADERS:
        known = sorted(set(datasets.LOADERS) | set(manifolds.GENERATORS))
        raise KeyError(f"Unknown dataset {dataset!r}; known: {', '.join(known)}.")
    images = datasets.load(dataset, split)
    images = images[0] if isinstance(images, tuple) else images
    return np.asarray(images if num_examples is None else images[:num_examples])


def epoch_dataset(data, epoch, global_batch_size, seed, skip_batches=0):
    """The batches of epoch ``epoch``: a shuffle seeded by ``(seed, epoch)``, full global batches only.

    The order depends on nothing but ``(seed, epoch)``, so a resumed run that
    skips the ``skip_batches`` already trained on sees exactly the batches an
    uninterrupted run sees.
    """
    import tensorflow as tf

    order = np.random.default_rng([int(seed), int(epoch)]).permutation(len(data))
    steps = len(data) // global_batch_size
    indices = order[: steps * global_batch_size].reshape(steps, global_batch_size)[skip_batches:]
    source = tf.data.Dataset.from_tensor_slices(indices)
    return source.map(lambda rows: tf.gather(data, rows), num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


# ---------------------------------------------------------------- optimizer
def learning_rate_schedule(settings, total_steps):
    """Linear warm-up from 0 to ``learning_rate`` over ``warmup_steps``, then cosine decay or constant."""
    rate = float(settings["learning_rate"])
    warmup = int(min(settings["warmup_steps"], max(total_steps - 1, 0)))
    decay = settings["decay"]
    if decay not in ("cosine", "none"):
        raise ValueError(f"training['decay'] must be 'cosine' or 'none'; received {decay!r}.")
    alpha = 1.0 if decay == "none" else float(settings["final_learning_rate_fraction"])
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else rate, decay_steps=max(total_steps - warmup, 1), alpha=alpha,
        warmup_target=rate if warmup else None, warmup_steps=warmup,
    )


def make_optimizer(settings, total_steps):
    """Adam (AdamW when ``weight_decay`` is set) with the schedule and global-norm clipping of ``settings``."""
    schedule = learning_rate_schedule(settings, total_steps)
    clip = settings.get("global_clipnorm")
    if settings.get("weight_decay"):
        return keras.optimizers.AdamW(schedule, weight_decay=float(settings["weight_decay"]), global_clipnorm=clip)
    return keras.optimizers.Adam(schedule, global_clipnorm=clip)


def training_settings(model_name, overrides=None):
    """``DEFAULT_TRAINING`` updated by the preset's own settings, then by ``overrides``."""
    settings = dict(DEFAULT_TRAINING)
    if model_name in registry._REGISTRY:
        settings.update(registry._REGISTRY[model_name].training or {})
    unknown = sorted(set(overrides or {}) - set(DEFAULT_TRAINING))
    if unknown:
        raise ValueError(f"Unknown training setting(s) {unknown}; known: {sorted(DEFAULT_TRAINING)}.")
    settings.update(overrides or {})
    return settings


# ------------------------------------------------------------- checkpoints
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

    A save writes ``ckpt-<step>/`` completely (``variables.npz`` and
    ``state.json``), then atomically replaces the ``latest`` pointer file and
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
        final, partial = os.path.join(self.directory, name), os.path.join(self.directory, name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        os.makedirs(partial)
        with open(os.path.join(partial, "variables.npz"), "wb") as f:
            np.savez(f, **arrays)
        with open(os.path.join(partial, "state.json"), "w") as f:
            json.dump(dict(state, format=CHECKPOINT_FORMAT), f, indent=1)
        _fsync_dir(partial)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        tmp_pointer = self.pointer + ".tmp"
        with open(tmp_pointer, "w") as f:
            f.write(name + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_pointer, self.pointer)
        kept = sorted(d for d in os.listdir(self.directory) if d.startswith("ckpt-") and not d.endswith(".partial"))
        for old in kept[: -self.keep]:
            if old != name:
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


def _fsync_dir(path):
    for name in os.listdir(path):
        with open(os.path.join(path, name), "rb") as f:
            os.fsync(f.fileno())


def snapshot(model):
    """The values a checkpoint stores (``_variables`` keys -> arrays), read once, and whether the weights are finite."""
    trainable = {id(v) for v in model.trainable_variables}
    arrays, finite = {}, True
    for key, variable in _variables(model).items():
        arrays[key] = _value(variable)
        if id(variable) in trainable:
            finite = finite and bool(np.all(np.isfinite(arrays[key])))
    return arrays, finite


# --------------------------------------------------------------- callbacks
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
        if "val_loss" in logs:
            record["val_loss"] = float(logs["val_loss"])
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

    def on_epoch_end(self, epoch, logs=None):
        if self.every <= 0 or (epoch + 1) % self.every or self.model.stop_training:
            return
        os.makedirs(self.directory, exist_ok=True)
        path = os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png")
        if len(getattr(self.model, "example_shape", ())) == 3:  # images (uint8, or [0, 1] floats)
            self._image_grid(path, epoch)
        else:
            self._scatter(path)
        self.written.append(path)

    def _image_grid(self, path, epoch):
        from zoo.evaluate import _save_png, _scale_for, tile_images

        def pixels(images):
            images = np.asarray(images)
            return images if images.dtype == np.uint8 else np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)

        rows = [list(pixels(self.model.sample(self.columns, temperature=t, seed=self.seed))) for t in self.temperatures]
        grid = tile_images(rows, _scale_for(self.model.example_shape))
        _save_png(grid, path)
        if self.log_dir:
            import tensorflow as tf

            with tf.summary.create_file_writer(os.path.join(self.log_dir, "samples")).as_default():
                image = np.asarray(grid, np.uint8)
                image = image[..., None] if image.ndim == 2 else image
                tf.summary.image("samples", image[None], step=epoch + 1)

    def _scatter(self, path):
        from zoo.evaluate import _figure

        samples = np.asarray(self.model.sample(2000, seed=self.seed))

        def draw(figure):
            axis = figure.add_subplot(1, 1, 1)
            axis.scatter(samples[:, 0], samples[:, 1], s=1)
            axis.set_title(os.path.basename(path))
        _figure(path, draw)


class BestModelExport(keras.callbacks.Callback):
    """Writes a preset directory of the model whenever validation bits/dim improves.

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


# ------------------------------------------------------------------ train
@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns: the trained model, its per-epoch history and where things went."""

    model: keras.Model
    history: list
    out: str
    strategy: object
    global_batch_size: int
    steps_per_epoch: int
    resumed_from_step: int


RUN_ARGUMENTS = ("model", "dataset", "batch_size", "seed", "num_examples", "training", "model_overrides",
                 "replicas", "epochs")


def train(model="nf_digits", dataset="digits", epochs=10, batch_size=64, out="runs/train", strategy="default",
          resume=False, seed=0, training=None, model_overrides=None, num_examples=None, validation=True,
          checkpoint_every=100, sample_every=1, tensorboard=True, verbose="auto", devices=None, tpu_address=None,
          callbacks=None, jit_compile="auto"):
    """Trains a preset with ``model.fit`` under a distribution strategy; resumable and guarded.

    Args:
        model: a preset name (``zoo.list()``).
        dataset: ``zoo.datasets`` name (``digits``, ``mnist``, ``fashion_mnist``,
            ``cifar10``, ``celeba``; validation on its test split), a synthetic
            manifold (``spiral``, ``sin``, ...), or arrays: ``x`` or
            ``(x_train, x_validation)``.
        epochs: total number of epochs (a resumed run trains the rest).
        batch_size: examples per replica; the global batch is
            ``batch_size * strategy.num_replicas_in_sync``.
        out: run directory (see the module docstring for its contents).
        strategy: a name of ``STRATEGIES`` or a ``tf.distribute.Strategy``.
        resume: continue from ``out/checkpoints`` if it holds a checkpoint
            (start fresh if it does not). Without it an existing checkpoint is
            an error, never silently overwritten.
        seed: seeds the weights, the noise and the data order.
        training: overrides of ``DEFAULT_TRAINING`` and the preset's settings.
        model_overrides: builder arguments passed to ``zoo.get`` (e.g. a
            smaller width).
        num_examples: use only the first ``num_examples`` training examples.
        validation: evaluate bits/dim on the test split after each epoch
            (``val_loss`` in the logs; the best-model export follows it).
        checkpoint_every: also checkpoint every this many steps (0: epoch ends only).
        sample_every: sample grid every this many epochs (0: never).
        tensorboard: write TensorBoard logs to ``out/logs``.
        verbose: ``model.fit`` verbosity (progress bar by default).
        devices: devices of the ``"mirrored"`` strategy.
        tpu_address: TPU of the ``"tpu"`` strategy.
        callbacks: extra Keras callbacks (called once per epoch's ``fit``).
        jit_compile: passed to ``compile``.

    Returns:
        A ``TrainResult``.

    Raises:
        TrainingDivergedError: the loss or weights became non-finite (or a
            batch held NaN); the last good checkpoint is kept and named.
        FileExistsError: ``out`` holds a checkpoint and ``resume`` is False.
    """
    import tensorflow as tf

    if keras.config.dtype_policy().name != "float32":
        raise ValueError(
            f"Flows train in float32; the global dtype policy is {keras.config.dtype_policy().name!r}. "
            "Mixed precision is not supported (docs/ARCHITECTURE.md says why); call "
            "keras.config.set_dtype_policy('float32')."
        )
    if isinstance(strategy, str):
        strategy = make_strategy(strategy, devices=devices, tpu_address=tpu_address)
    replicas = strategy.num_replicas_in_sync
    global_batch = int(batch_size) * replicas
    settings = training_settings(model, training)
    if isinstance(dataset, str):
        data = load_training_data(dataset, "train", num_examples, seed)
        val_data = load_training_data(dataset, "test", None, seed) if validation else None
    else:  # arrays: x or (x_train, x_validation)
        data, val_data = (dataset if isinstance(dataset, tuple) else (dataset, None))
        data = np.asarray(data)[:num_examples]
        val_data = None if val_data is None or not validation else np.asarray(val_data)
        dataset = f"array{tuple(data.shape)}"
    if len(data) < global_batch:
        raise ValueError(f"{dataset}: {len(data)} training examples are fewer than one global batch "
                         f"({batch_size} per replica x {replicas} replicas); lower --batch_size.")
    steps_per_epoch = len(data) // global_batch
    total_steps = steps_per_epoch * int(epochs)

    chief = _is_chief(strategy)
    manager = CheckpointManager(os.path.join(out, "checkpoints"))
    arguments = {"model": model, "dataset": dataset, "batch_size": int(batch_size), "seed": int(seed),
                 "num_examples": num_examples, "training": settings, "model_overrides": dict(model_overrides or {}),
                 "replicas": replicas, "epochs": int(epochs)}
    latest = manager.latest()
    if latest and not resume:
        raise FileExistsError(f"{out} holds a checkpoint of an earlier run ({latest}); pass resume=True "
                              "(--resume) to continue it, or choose another output directory.")

    keras.utils.set_random_seed(int(seed))
    with strategy.scope():
        net = registry.get(model, **dict(model_overrides or {}))
        optimizer = make_optimizer(settings, total_steps)
        net.compile(optimizer=optimizer, jit_compile=jit_compile)
        optimizer.build(net.trainable_variables)

    if getattr(net, "n_bits", 0) is None and np.issubdtype(data.dtype, np.integer) and data.ndim == 4:
        # Continuous image models (the spread flows) take [0, 1] floats; the loaders give uint8 pixels.
        data = data.astype(np.float32) / 255.0
        val_data = None if val_data is None else val_data.astype(np.float32) / 255.0
    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": [], "arguments": arguments}
    resumed_from = 0
    if latest:
        with open(os.path.join(latest, "state.json")) as f:
            previous = json.load(f).get("arguments", {})
        changed = {k: (previous.get(k), arguments[k]) for k in RUN_ARGUMENTS
                   if json.loads(json.dumps(previous.get(k))) != json.loads(json.dumps(arguments[k]))}
        if changed:
            raise ValueError(f"{out} holds a run with other arguments {changed} (earlier, now); rerun with the "
                             "same arguments to resume, or use another output directory.")
        state = manager.restore(net, latest)
        resumed_from = state["global_step"]
    elif hasattr(net, "initialize") and not getattr(net, "is_initialized", True):
        first = np.asarray(next(iter(epoch_dataset(data, 0, global_batch, seed))))
        with strategy.scope():
            net.initialize(first)  # eager, on the global batch: every replica gets the same act-norm init

    os.makedirs(out, exist_ok=True)
    log_dir = os.path.join(out, "logs") if tensorboard else None
    tracker = TrainingState(manager, state, steps_per_epoch, checkpoint_every, write=chief)
    best_so_far = min((h["val_loss"] for h in state["history"] if "val_loss" in h), default=math.inf)
    run_callbacks = [tracker]
    if chief:
        run_callbacks.append(SampleGrid(os.path.join(out, "samples"), every=sample_every, seed=seed, log_dir=log_dir))
        if validation:
            run_callbacks.append(BestModelExport(os.path.join(out, "best"), best_value=best_so_far,
                                                 metadata={"dataset": dataset, "preset": model}))
    if tensorboard:
        run_callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False))
    run_callbacks += list(callbacks or [])

    val = None
    if val_data is not None:
        val = tf.data.Dataset.from_tensor_slices(val_data).batch(global_batch)
    started = time.time()
    while state["epoch"] < int(epochs) and not tracker.diverged:
        epoch, skip = state["epoch"], state["step_in_epoch"]
        try:
            net.fit(epoch_dataset(data, epoch, global_batch, seed, skip_batches=skip), epochs=epoch + 1,
                    initial_epoch=epoch, validation_data=val, callbacks=run_callbacks, verbose=verbose,
                    shuffle=False)  # the order is epoch_dataset's
        except tf.errors.InvalidArgumentError as error:
            if "NaN or infinite" not in str(error) and "must hold whole numbers" not in str(error):
                raise
            _raise_diverged(manager, f"a training batch of epoch {epoch + 1} failed the input check: "
                                     f"{_first_line(error)}", out)
    if tracker.diverged:
        _raise_diverged(manager, tracker.diverged, out)
    if hasattr(net, "fit_priors"):  # models with post-hoc latent priors (InjFlow, autoencoders): fit them now
        net.fit_priors(data, seed=int(seed))
    if chief:
        net.save_to_preset(os.path.join(out, "final"), overwrite=True,
                           metadata={"dataset": dataset, "preset": model, "epochs": int(epochs),
                                     "history": state["history"][-1:]})
        with open(os.path.join(out, "history.json"), "w") as f:
            json.dump({"arguments": arguments, "history": state["history"], "global_batch_size": global_batch,
                       "steps_per_epoch": steps_per_epoch, "resumed_from_step": resumed_from,
                       "seconds_this_run": time.time() - started}, f, indent=1)
    return TrainResult(net, state["history"], out, strategy, global_batch, steps_per_epoch, resumed_from)


def _first_line(error):
    text = getattr(error, "message", str(error))
    return next((line for line in text.splitlines() if "NaN" in line or "whole numbers" in line), text.splitlines()[0])


def _raise_diverged(manager, reason, out):
    latest = manager.latest()
    kept = (f"The last good checkpoint is kept at {latest}; rerun the same command with --resume to continue "
            "from it (lower the learning rate with training={'learning_rate': ...} if it diverges again)."
            if latest else "No checkpoint had been written yet.")
    raise TrainingDivergedError(f"Training of {out} stopped: {reason}. {kept}")
