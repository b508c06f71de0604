"""``python -m zoo.train``: train a preset under a distribution strategy, resumably (TensorFlow or JAX backend).

Example (a short CPU run)::

    python -m zoo.train --model nf_digits --dataset digits --epochs 5 --batch-size 64 \\
        --out runs/nf_digits --resume

Writes checkpoints, sample grids, TensorBoard logs, the best and final preset
directories (``zoo.training``) and a SavedModel (``out/saved_model/1``, TensorFlow Serving's layout;
``export.saved_model``). Killed at any point, the same command with
``--resume`` continues from the last checkpoint.

Under ``KERAS_BACKEND=jax`` the same command trains without importing
TensorFlow (NumPy input, ``keras.distribution``; ``--strategy data_parallel``
splits each batch over the devices), and writes no TensorBoard logs or
SavedModel.
"""

import json
import os
import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "nf_digits", "Preset name (see zoo.list()).")
flags.DEFINE_string("dataset", "digits", "Dataset: digits, mnist, fashion_mnist, cifar10, celeba, a manifold, or "
                    "the path of a folder of TFRecord shards (zoo.data.streaming.write_records) or of PNG / JPEG "
                    "images, read from disk as training needs them.")
flags.DEFINE_string("validation_dataset", None, "Validation images of a folder --dataset: a folder of TFRecord "
                    "shards or of images (default: no validation).")
flags.DEFINE_integer("epochs", 10, "Total epochs (a resumed run trains the rest).")
flags.DEFINE_integer("batch_size", 64, "Examples per replica (global batch = batch size x replicas).")
flags.DEFINE_alias("batch-size", "batch_size")
flags.DEFINE_string("out", "runs/train", "Run directory.")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu", "data_parallel"],
                  "Distribution: tf.distribute's default / mirrored / multi_worker / tpu under TensorFlow; default / "
                  "data_parallel (keras.distribution.DataParallel over the devices) under KERAS_BACKEND=jax.")
flags.DEFINE_boolean("resume", False, "Continue from the run directory's last checkpoint (fresh start if none).")
flags.DEFINE_integer("seed", 0, "Seed of weights, noise and data order.")
flags.DEFINE_integer("num_examples", None, "Use only the first N training examples.")
flags.DEFINE_float("learning_rate", None, "Peak learning rate (default: the preset's, else 1e-4).")
flags.DEFINE_integer("warmup_steps", None, "Linear warm-up steps (default: the preset's, else 1000).")
flags.DEFINE_enum("decay", None, ["cosine", "none", "step"],
                  "Learning-rate decay after warm-up ('step': times --decay_rate every --decay_every steps).")
flags.DEFINE_integer("decay_every", None, "Steps between the decays of --decay=step.")
flags.DEFINE_float("decay_rate", None, "Factor of each --decay=step decay (default 0.7).")
flags.DEFINE_float("global_clipnorm", None, "Global gradient-norm clip (default 5).")
flags.DEFINE_float("weight_decay", None, "Weight decay (default: none, plain Adam).")
flags.DEFINE_enum("weight_decay_form", None, ["decoupled", "coupled"],
                  "decoupled: AdamW; coupled: added to the gradient (zoo.training.AdamL2).")
flags.DEFINE_enum("dtype_policy", "float32", ["float32", "mixed_bfloat16"],
                  "Keras dtype policy: mixed_bfloat16 runs the networks (coupling conditioners, encoders, decoders) "
                  "in bfloat16 and every density term in float32 (pixel models, i.e. uint8 images, only).")
flags.DEFINE_string("weights", None, "Start from these weights (fine-tuning): 'default' (the preset's shipped "
                    "weights), a .weights.h5 file, a preset directory or a URL; act-norm keeps their statistics.")
flags.DEFINE_string("overrides", "{}", 'Builder arguments as JSON, e.g. \'{"hidden_channels": 32}\'.')
flags.DEFINE_integer("checkpoint_every", 100, "Checkpoint every N steps as well as at epoch ends (0: epochs only).")
flags.DEFINE_integer("sample_every", 1, "Sample grid every N epochs (0: never).")
flags.DEFINE_boolean("validation", True, "Validation bits/dim on the test split after each epoch.")
flags.DEFINE_boolean("saved_model", None, "Also export the final model as a SavedModel (out/saved_model/1); "
                     "default: yes under TensorFlow, no under JAX (the SavedModel is TensorFlow's).")
flags.DEFINE_boolean("tensorboard", None, "TensorBoard logs in out/logs (default: yes under TensorFlow, no under "
                     "JAX, whose path imports no TensorFlow).")
flags.DEFINE_list("devices", None, "Devices of the mirrored strategy, e.g. /cpu:0,/cpu:1.")
flags.DEFINE_string("tpu", None, "TPU name or grpc:// address for --strategy=tpu ('' = local).")
flags.DEFINE_integer("logical_cpus", None,
                     "Split the CPU into N logical devices first (to exercise --strategy=mirrored without "
                     "accelerators; the devices share the same cores).")


def split_cpu(count):
    """Configures ``count`` logical CPU devices; must run before TensorFlow initializes its devices."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * int(count))
    return [f"/cpu:{i}" for i in range(int(count))]


def main(argv):
    del argv
    devices = FLAGS.devices
    if FLAGS.logical_cpus and os.environ.get("KERAS_BACKEND") == "jax":
        raise app.UsageError("--logical_cpus splits the CPU for TensorFlow; under JAX set "
                             f"XLA_FLAGS=--xla_force_host_platform_device_count={FLAGS.logical_cpus} instead.")
    if FLAGS.logical_cpus:
        logical = split_cpu(FLAGS.logical_cpus)
        devices = devices or (logical if FLAGS.strategy == "mirrored" else None)
    import keras

    import zoo
    from zoo import training

    keras.mixed_precision.set_global_policy(FLAGS.dtype_policy)
    saved = FLAGS.saved_model if FLAGS.saved_model is not None else keras.backend.backend() == "tensorflow"
    if saved and keras.backend.backend() != "tensorflow":
        raise app.UsageError("--saved_model needs TensorFlow (KERAS_BACKEND=tensorflow): train under JAX without "
                             "it, then export OUT/final from a TensorFlow process (`python -m export`).")

    if saved:  # refused now, not after the whole run: the export replaces only a SavedModel this project wrote
        from zoo import files

        target = os.path.join(FLAGS.out, "saved_model", "1")
        try:
            files.refuse_unless_replaceable_directory(target, "saved_model")
        except FileExistsError as error:
            raise app.UsageError(f"the run exports its SavedModel to {target}, but: {error} (or pass "
                                 "--nosaved_model)") from None
    try:
        overrides = json.loads(FLAGS.overrides)
    except json.JSONDecodeError as error:
        raise app.UsageError(f"--overrides must be a JSON object of builder arguments: {error}")
    settings = {key: FLAGS[key].value for key in ("learning_rate", "warmup_steps", "decay", "decay_every",
                                                  "decay_rate", "global_clipnorm", "weight_decay",
                                                  "weight_decay_form") if FLAGS[key].value is not None}
    result = zoo.train(
        model=FLAGS.model, dataset=FLAGS.dataset, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size, out=FLAGS.out,
        strategy=FLAGS.strategy, resume=FLAGS.resume, seed=FLAGS.seed, training=settings or None,
        model_overrides=overrides, num_examples=FLAGS.num_examples, validation=FLAGS.validation,
        checkpoint_every=FLAGS.checkpoint_every, sample_every=FLAGS.sample_every, devices=devices,
        tpu_address=FLAGS.tpu, weights=FLAGS.weights, validation_dataset=FLAGS.validation_dataset,
        tensorboard="auto" if FLAGS.tensorboard is None else FLAGS.tensorboard,
        command=" ".join([training.trainer.COMMAND_PREFIX] + sys.argv[1:]),
    )
    if saved and training.is_chief(result.strategy):
        # The command line is an application: it may use export/ (the zoo library never does).
        from export import saved_model

        saved_model(result.model, os.path.join(result.out, "saved_model"), overwrite=True, version=1)
    last = result.history[-1] if result.history else {}
    print(f"trained {FLAGS.model} on {FLAGS.dataset}: {len(result.history)} epochs, global batch "
          f"{result.global_batch_size} on {result.strategy.num_replicas_in_sync} replica(s); last epoch {last}; "
          f"outputs in {result.out}")


if __name__ == "__main__":
    app.run(main)
