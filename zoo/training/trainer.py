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
- ``logs/``: TensorBoard scalars (``train/``, ``validation/``: the loss, the
  ``bits_per_dim`` metric where the model has a likelihood term, the
  learning rate) and images (``samples/``);
- ``best/``: a preset directory (``zoo.get("out/best")``) of the epoch with the
  lowest ``model.monitor`` (``val_loss``; the InjFlow models, whose penalty
  coefficient grows with the step: ``val_reconstruction_mse``); ``final/``: the last epoch's;
- ``history.json``: per-epoch ``loss`` and ``val_loss`` (for every family the
  training objective in bits/dim, ``zoo.LOSS_UNIT``: the NLL for likelihood-trained
  models), ``bits_per_dim`` / ``val_bits_per_dim`` where defined, the model's
  ``diagnostics`` (training and ``val_``), and the learning rate; ``prior_fit``: the
  post-hoc priors' fit report (``fit_priors``: EM convergence, iterations), ``{}`` for
  models without.

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

import contextlib
import dataclasses
import json
import math
import os
import time

import keras
import numpy as np

from zoo import files
from zoo.models.base import GenerativeModel
from zoo.presets import registry
from zoo.training.callbacks import BestModelExport, SampleGrid, TrainingState
from zoo.training.checkpoints import CheckpointManager
from zoo.data import streaming
from zoo.training.data import (EpochBatches, SequentialBatches, epoch_dataset, epoch_order, load_training_data,
                               short_lived)
from zoo.training.optimizers import make_optimizer, training_settings
from zoo.training.strategies import JaxStrategy, is_chief, make_strategy


class TrainingDivergedError(RuntimeError):
    """Training met a non-finite loss (or data); the last good checkpoint is kept."""


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
    prior_fit: dict = dataclasses.field(default_factory=dict)  # ``fit_priors``'s report (convergence); {} if none


TRAINING_POLICIES = ("float32", "mixed_bfloat16")
"""Global dtype policies ``train`` honours (``mixed_bfloat16`` for pixel models only: ``GenerativeModel`` refuses
to build any other model under it)."""

RUN_ARGUMENTS = ("model", "dataset", "batch_size", "seed", "num_examples", "training", "model_overrides",
                 "replicas", "epochs", "weights", "dtype_policy")
_ARGUMENT_DEFAULTS = {"dtype_policy": "float32"}  # what checkpoints written before an argument existed ran with


def train(model="nf_digits", dataset="digits", epochs=10, batch_size=64, out="runs/train", strategy="default",
          resume=False, seed=0, training=None, model_overrides=None, num_examples=None, validation=True,
          checkpoint_every=100, sample_every=1, tensorboard="auto", verbose="auto", devices=None, tpu_address=None,
          callbacks=None, jit_compile="auto", weights=None, command=None, validation_dataset=None):
    """Trains a preset with ``model.fit`` under a distribution strategy; resumable and guarded.

    Args:
        model: a preset name (``zoo.list()``).
        dataset: ``zoo.datasets`` name (``digits``, ``mnist``, ``fashion_mnist``,
            ``cifar10``, ``celeba``; validation on its test split), a synthetic
            manifold (``spiral``, ``sin``, ...), arrays: ``x`` or
            ``(x_train, x_validation)``, or images read from files as they are
            needed (``zoo.data.streaming``): a ``StreamingImages`` (``Records``,
            ``ImageFolder``) or the path of such a folder.
        epochs: total number of epochs (a resumed run trains the rest).
        batch_size: examples per replica; the global batch is
            ``batch_size * strategy.num_replicas_in_sync``.
        out: run directory (see the module docstring for its contents).
        strategy: a name of ``STRATEGIES`` (``make_strategy``: tf.distribute's
            under TensorFlow; ``"default"`` or ``"data_parallel"``, a
            ``keras.distribution.DataParallel``, under JAX), a
            ``tf.distribute.Strategy`` or a ``JaxStrategy``.
        resume: continue from ``out/checkpoints`` if it holds a checkpoint
            (start fresh if it does not). Without it an existing checkpoint is
            an error, never silently overwritten.
        seed: seeds the weights, the noise and the data order.
        training: overrides of ``DEFAULT_TRAINING`` and the preset's settings.
        model_overrides: builder arguments passed to ``zoo.get`` (e.g. a
            smaller width).
        num_examples: use only the first ``num_examples`` training examples.
        validation: evaluate the objective on the test split after each epoch
            (``val_loss`` in the logs, bits/dim; the best-model export follows
            ``model.monitor``).
        checkpoint_every: also checkpoint every this many steps (0: epoch ends only).
        sample_every: sample grid every this many epochs (0: never).
        tensorboard: write TensorBoard logs to ``out/logs`` (``"auto"``: under
            TensorFlow; the JAX path imports no TensorFlow, so there it is off,
            and True is refused).
        verbose: ``model.fit`` verbosity (progress bar by default).
        devices: devices of the ``"mirrored"`` / ``"data_parallel"`` strategy.
        tpu_address: TPU of the ``"tpu"`` strategy.
        callbacks: extra Keras callbacks (called once per epoch's ``fit``).
        validation_dataset: the validation images of a file-backed ``dataset``
            (a ``StreamingImages``, a folder path or an array); None: no
            validation for it.
        jit_compile: passed to ``compile``.
        weights: start from these weights (fine-tuning): ``"default"`` (the
            preset's shipped weights), a weights file, a preset directory or a
            URL (``zoo.get``'s handles). Their act-norm layers are already
            initialized, so no data initialization overwrites them.
        command: the command line that started the run, written to
            ``out/command.txt`` (the CLI passes it; model cards cite it).

    Returns:
        A ``TrainResult``.

    Raises:
        TrainingDivergedError: the loss or weights became non-finite (or a
            batch held NaN); the last good checkpoint is kept and named.
        FileExistsError: ``out`` holds a checkpoint and ``resume`` is False.
    """
    _check_count("epochs", epochs, 1)
    _check_count("batch_size", batch_size, 1)
    _check_count("num_examples", num_examples, 1, allow_none=True)
    _check_count("checkpoint_every", checkpoint_every, 0)
    _check_count("sample_every", sample_every, 0)
    _check_outputs(out)
    if isinstance(strategy, str):
        strategy = make_strategy(strategy, devices=devices, tpu_address=tpu_address)
    jax_path = isinstance(strategy, JaxStrategy)
    if tensorboard == "auto":
        tensorboard = not jax_path
    elif tensorboard and jax_path:
        raise ValueError("tensorboard=True writes its logs with TensorFlow, which the JAX path does not import; "
                         "pass tensorboard=False (history.json has every epoch's logs).")
    # Under JAX the distribution is current for the whole run: building, fitting (it lays out each batch) and saving.
    with strategy.scope() if jax_path else contextlib.nullcontext():
        return _train(strategy, jax_path, model, dataset, epochs, batch_size, out, resume, seed, training,
                      model_overrides, num_examples, validation, checkpoint_every, sample_every, tensorboard, verbose,
                      callbacks, jit_compile, weights, command, validation_dataset)


def _train(strategy, jax_path, model, dataset, epochs, batch_size, out, resume, seed, training, model_overrides,
           num_examples, validation, checkpoint_every, sample_every, tensorboard, verbose, callbacks, jit_compile,
           weights, command, validation_dataset):
    policy = keras.config.dtype_policy().name
    if policy not in TRAINING_POLICIES:
        raise ValueError(
            f"zoo.train runs under the dtype policies {TRAINING_POLICIES}; the global policy is {policy!r}. "
            "float16 needs loss scaling and overflows exp of the coupling log-scales, and pure bfloat16 variables "
            "would hold the log-determinants in 8 mantissa bits: call "
            "keras.mixed_precision.set_global_policy('mixed_bfloat16') (networks in bfloat16, densities in float32) "
            "or 'float32'."
        )
    replicas = strategy.num_replicas_in_sync
    global_batch = int(batch_size) * replicas
    settings = training_settings(model, training)
    convert = None
    named_dataset = False  # a zoo.datasets / manifold name (the only source of labels for zoo.train)
    if isinstance(dataset, str) and streaming.is_folder_path(dataset):
        dataset = streaming.open_images(dataset)
    if isinstance(dataset, streaming.StreamingImages):  # read from files by tf.data, epoch by epoch
        if jax_path:
            raise ValueError(f"file-backed data ({dataset!r}) is read by tf.data, which the JAX path does not "
                             "import: pass arrays (e.g. `source.take(len(source))`) or train under TensorFlow.")
        if num_examples:
            raise ValueError(f"num_examples={num_examples} with file-backed data {dataset!r}: write the subset "
                             "you want with zoo.data.streaming.write_records, or pass arrays.")
        data, dataset = dataset, dataset.directory
        val_data = validation_dataset
        if isinstance(val_data, str):
            val_data = streaming.open_images(val_data)
        val_data = None if val_data is None or not validation else val_data
    elif validation_dataset is not None:
        raise ValueError("`validation_dataset` is for file-backed data; with arrays pass (x_train, x_validation), "
                         "and a dataset name validates on its test split.")
    elif isinstance(dataset, str):
        data = load_training_data(dataset, "train", num_examples, seed)
        val_data = load_training_data(dataset, "test", None, seed) if validation else None
        named_dataset = True
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

    chief = is_chief(strategy)
    manager = CheckpointManager(os.path.join(out, "checkpoints"))
    arguments = {"model": model, "dataset": dataset, "batch_size": int(batch_size), "seed": int(seed),
                 "dtype_policy": policy,
                 "num_examples": num_examples, "training": settings, "model_overrides": dict(model_overrides or {}),
                 "replicas": replicas, "epochs": int(epochs), "weights": weights}
    latest = manager.latest()
    if latest and not resume:
        raise FileExistsError(f"{out} holds a checkpoint of an earlier run ({latest}); pass resume=True "
                              "(--resume) to continue it, or choose another output directory.")

    keras.utils.set_random_seed(int(seed))
    with strategy.scope():
        net = registry.get(model, weights=weights, **dict(model_overrides or {}))
        if not isinstance(net, GenerativeModel):
            raise TypeError(f"{model!r} builds a {type(net).__name__}, not a zoo.GenerativeModel; zoo.train trains "
                            "zoo models (register your builder to return one).")
        optimizer = make_optimizer(settings, total_steps)
        net.compile(optimizer=optimizer, jit_compile=jit_compile)
        optimizer.build(net.trainable_variables)

    # A class-conditional model trains on (images, labels): the labels of a named dataset, in the same order.
    labels = val_labels = None
    if net.num_classes is not None:
        if not named_dataset:
            raise ValueError(f"{model!r} is class-conditional ({net.num_classes} classes): zoo.train reads its labels "
                             "from a named dataset (e.g. dataset='digits'); for arrays call "
                             "`model.fit(images, labels)` yourself.")
        _, labels = load_training_data(dataset, "train", num_examples, seed, labels=True)
        if val_data is not None:
            _, val_labels = load_training_data(dataset, "test", None, seed, labels=True)
        if int(labels.max()) >= net.num_classes:
            raise ValueError(f"{dataset!r} has labels up to {int(labels.max())}, but {model!r} models "
                             f"{net.num_classes} classes; build it with num_classes={int(labels.max()) + 1}.")
        net.set_class_prior(labels)  # p(y): the whole training split's label frequencies

    # The loaders give uint8 pixels; a float-image model (the spread flows) takes them as [0, 1] floats.
    if isinstance(data, streaming.StreamingImages):  # converted in tf.data; checked on the first images
        convert = streaming.model_input_converter(net, data)
        for source in (data, val_data):
            if source is not None:
                net.check_dataset(next(iter(source.sequential_dataset(2, convert=convert, limit=2))))
    else:
        data = net.as_model_input(data)
        net.check_dataset(data)
    if val_data is not None and not isinstance(val_data, streaming.StreamingImages):
        val_data = net.as_model_input(val_data)
        net.check_dataset(val_data, what="validation data")
    def epoch_input(epoch, skip=0):  # tf.data, or NumPy batches of the same order on the JAX path
        if jax_path:
            return EpochBatches(data, epoch_order(len(data), epoch, global_batch, seed)[skip:], labels=labels)
        return epoch_dataset(data, epoch, global_batch, seed, skip_batches=skip, convert=convert, labels=labels)

    input_errors = ()  # a batch that fails the model's input check inside a TensorFlow graph, or a file's decoding
    if not jax_path:
        import tensorflow as tf

        input_errors = (tf.errors.InvalidArgumentError,)
    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "history": [], "arguments": arguments}
    resumed_from = 0
    if latest:
        with open(os.path.join(latest, "state.json")) as f:
            previous = json.load(f).get("arguments", {})
        previous = {**_ARGUMENT_DEFAULTS, **previous}
        changed = {k: (previous.get(k), arguments[k]) for k in RUN_ARGUMENTS
                   if json.loads(json.dumps(previous.get(k))) != json.loads(json.dumps(arguments[k]))}
        if changed:
            raise ValueError(f"{out} holds a run with other arguments {changed} (earlier, now); rerun with the "
                             "same arguments to resume, or use another output directory.")
        state = manager.restore(net, latest)
        resumed_from = state["global_step"]
    elif not net.is_initialized:
        try:
            first = next(iter(epoch_input(0)))
        except input_errors as error:
            _raise_if_unreadable_files(error, (data, val_data), manager)
            raise
        first = np.asarray(first[0] if labels is not None else first)
        with strategy.scope():
            net.initialize(first)  # eager, on the global batch: every replica gets the same act-norm init

    os.makedirs(out, exist_ok=True)
    if command and chief:  # replaces only a command file of an earlier zoo.train run
        with files.staged_file(os.path.join(out, "command.txt"), overwrite=True,
                               recognize=_is_command_file) as staging:
            with open(staging, "w") as f:
                f.write(command + "\n")
    log_dir = os.path.join(out, "logs") if tensorboard else None
    tracker = TrainingState(manager, state, steps_per_epoch, checkpoint_every, write=chief)
    best_so_far = min((h[net.monitor] for h in state["history"] if net.monitor in h), default=math.inf)
    run_callbacks = [tracker]
    if chief:
        grids = SampleGrid(os.path.join(out, "samples"), every=sample_every, seed=seed, log_dir=log_dir)
        grids.refuse_foreign_pictures(state["epoch"] + 1, int(epochs))  # now, not at the epoch that writes one
        run_callbacks.append(grids)
        if validation:
            run_callbacks.append(BestModelExport(os.path.join(out, "best"), monitor=net.monitor, best_value=best_so_far,
                                                 metadata={"dataset": dataset, "preset": model}))
    if tensorboard and chief:  # other workers would add a second event stream to the same folder
        run_callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False))
    run_callbacks += list(callbacks or [])

    val = None
    if isinstance(val_data, streaming.StreamingImages):
        val = val_data.sequential_dataset(global_batch, convert=convert)
    elif val_data is not None and jax_path:
        # keras.distribution splits every batch evenly over the devices: keep a multiple of the replica count
        # (at most replicas - 1 examples fewer; history.json states the count).
        val_data = val_data[:len(val_data) - len(val_data) % replicas]
        val_labels = None if val_labels is None else val_labels[:len(val_data)]
        val = SequentialBatches(val_data, global_batch, labels=val_labels)
    elif val_data is not None:
        val = tf.data.Dataset.from_tensor_slices(val_data if val_labels is None else (val_data, val_labels))
        val = short_lived(val.batch(global_batch))  # fit iterates it once per epoch
    started = time.time()
    while state["epoch"] < int(epochs) and not tracker.diverged:
        epoch, skip = state["epoch"], state["step_in_epoch"]
        net.begin_training_epoch(epoch, int(epochs))  # multi-phase models (M-flow) pick this epoch's phase
        try:
            net.fit(epoch_input(epoch, skip), epochs=epoch + 1, initial_epoch=epoch, validation_data=val,
                    callbacks=run_callbacks, verbose=verbose, shuffle=False)  # the order is epoch_order's
        except input_errors as error:
            if not any(marker in str(error) for marker in ("NaN or infinite", "must hold whole numbers", "must lie in")):
                _raise_if_unreadable_files(error, (data, val_data), manager)
                raise
            _raise_diverged(manager, f"a training batch of epoch {epoch + 1} failed the input check: "
                                     f"{_first_line(error)}", out)
    if tracker.diverged:
        _raise_diverged(manager, tracker.diverged, out)
    # Post-hoc latent priors (InjFlow, autoencoders; {} otherwise); their report says whether EM converged.
    prior_fit = net.fit_priors(data, seed=int(seed), labels=labels)
    if chief:
        net.save_to_preset(os.path.join(out, "final"), overwrite=True,
                           metadata={"dataset": dataset, "preset": model, "epochs": int(epochs),
                                     "history": state["history"][-1:]})
        with files.staged_file(os.path.join(out, "history.json"), overwrite=True,
                               recognize=_is_history_file) as staging, open(staging, "w") as f:
            json.dump({"arguments": arguments, "history": state["history"], "global_batch_size": global_batch,
                       "steps_per_epoch": steps_per_epoch, "resumed_from_step": resumed_from,
                       "validation_examples": None if val_data is None else len(val_data),
                       "seconds_this_run": time.time() - started, "prior_fit": prior_fit}, f, indent=1)
    return TrainResult(net, state["history"], out, strategy, global_batch, steps_per_epoch, resumed_from, prior_fit)


def _raise_if_unreadable_files(error, sources, manager):
    """A decode error from an image folder (tf.data names no file): find and name the damaged files, if any."""
    for source in sources:
        if isinstance(source, streaming.ImageFolder):
            bad = source.unreadable()
            if bad:
                latest = manager.latest()
                kept = (f" The checkpoint {latest} is intact: after replacing them, rerun the same command with "
                        "resume=True (--resume) to continue from it." if latest else "")
                raise ValueError(source.unreadable_message(bad) + kept) from error


def _check_count(name, value, minimum, allow_none=False):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"zoo.train: `{name}` must be an int >= {minimum}" + (" or None" if allow_none else "")
                         + f"; received {value!r}.")


HISTORY_KEYS = {"arguments", "history", "global_batch_size", "steps_per_epoch"}


def _is_history_file(path):
    """True for a ``history.json`` that ``train`` wrote (its top-level keys)."""
    return files.is_json_object_with(path, HISTORY_KEYS)


def _check_outputs(out):
    """Refuses, before any training, a run folder whose outputs would replace something the project did not write.

    ``final/`` and ``best/`` are replaced at the end of a run (and of every
    improving epoch); ``history.json`` at the end. A user's folder or file at
    one of those paths would otherwise be found only after the whole run.
    """
    for name in ("final", "best"):
        try:  # the checks of the write itself (a user's folder, or a user's file inside one of ours)
            files.refuse_unless_replaceable_directory(os.path.join(out, name), "preset")
        except FileExistsError as error:
            raise FileExistsError(f"zoo.train writes its {name} model to {os.path.join(out, name)}, but: {error} "
                                  "(checked before training; or choose another --out)") from None
    history = os.path.join(out, "history.json")
    if os.path.exists(history) and not _is_history_file(history):
        raise FileExistsError(f"{history} is not a history this project wrote; a run writes its history there. "
                              "Move it away or choose another --out.")


def _is_command_file(path):
    with open(path) as f:
        return f.read(len(COMMAND_PREFIX)) == COMMAND_PREFIX


COMMAND_PREFIX = "python -m zoo.train"


def _first_line(error):
    text = getattr(error, "message", str(error))
    return next((line for line in text.splitlines() if "NaN" in line or "whole numbers" in line or "must lie in" in line),
                text.splitlines()[0])


def _raise_diverged(manager, reason, out):
    latest = manager.latest()
    kept = (f"The last good checkpoint is kept at {latest}; rerun the same command with --resume to continue "
            "from it (lower the learning rate with training={'learning_rate': ...} if it diverges again)."
            if latest else "No checkpoint had been written yet.")
    raise TrainingDivergedError(f"Training of {out} stopped: {reason}. {kept}")
