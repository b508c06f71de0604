"""zoo.train under KERAS_BACKEND=jax with TensorFlow unimportable: one device vs data parallel, exact resume.

Usage: python jax_training_check.py OUT_DIR; prints one line ``JAX_TRAINING {json}``.
Run with ``XLA_FLAGS=--xla_force_host_platform_device_count=2`` (two host devices).
"""

import importlib.abc
import json
import os
import sys


class BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_probability", "tf_keras", "tensorflow_datasets"):
            raise ImportError(f"{name} imported on the JAX training path")
        return None


sys.meta_path.insert(0, BlockTensorFlow())
os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402
import numpy as np  # noqa: E402

import zoo  # noqa: E402

out = sys.argv[1]
digits = zoo.load_digits_images()[0][:320]
common = dict(model="nf_digits", dataset=(digits, digits[:64]), epochs=2, sample_every=0, verbose=0,
              model_overrides=dict(num_levels=2, steps_per_level=1, hidden_channels=8))
one = zoo.train(out=os.path.join(out, "one"), batch_size=32, checkpoint_every=0, **common)
two = zoo.train(out=os.path.join(out, "two"), batch_size=16, strategy="data_parallel", checkpoint_every=0, **common)


class Crash(keras.callbacks.Callback):  # dies in epoch 2 (10 steps per epoch), after the checkpoint at step 12
    def on_train_batch_end(self, batch, logs=None):
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == 14:
            raise RuntimeError("killed")


try:
    zoo.train(out=os.path.join(out, "resumed"), batch_size=32, checkpoint_every=4, callbacks=[Crash()], **common)
    crashed = False
except RuntimeError:
    crashed = True
resumed = zoo.train(out=os.path.join(out, "resumed"), batch_size=32, checkpoint_every=4, resume=True, **common)
autoencoder = zoo.train(model="ae_digits_8", dataset=(digits, digits[:64]), epochs=1, batch_size=32, sample_every=0,
                        verbose=0, checkpoint_every=0, out=os.path.join(out, "ae"))
conditional = zoo.train(model="nf_digits_conditional", dataset="digits", num_examples=320, epochs=1, batch_size=16,
                        strategy="data_parallel", sample_every=1, verbose=0, checkpoint_every=0,
                        out=os.path.join(out, "conditional"),
                        model_overrides=dict(num_levels=2, steps_per_level=1, hidden_channels=8))
refused = {}
for name, kwargs in (("tensorboard", dict(tensorboard=True)), ("mirrored", dict(strategy="mirrored"))):
    try:
        zoo.train(out=os.path.join(out, name), batch_size=32, **common, **kwargs)
    except ValueError as error:
        refused[name] = str(error)


def difference(a, b):
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - y))) for x, y in zip(a.get_weights(), b.get_weights()))


print("JAX_TRAINING " + json.dumps({
    "backend": keras.backend.backend(), "devices": len(keras.distribution.list_devices()),
    "replicas": [one.strategy.num_replicas_in_sync, two.strategy.num_replicas_in_sync],
    "global_batch": [one.global_batch_size, two.global_batch_size],
    "loss_one": [h["loss"] for h in one.history], "loss_two": [h["loss"] for h in two.history],
    "val_one": [h["val_loss"] for h in one.history], "val_two": [h["val_loss"] for h in two.history],
    "weights_one_vs_two": difference(one.model, two.model),
    "crashed": crashed, "resumed_from_step": resumed.resumed_from_step,
    "weights_resumed_vs_straight": difference(resumed.model, one.model),
    "ae_gmm_fitted": bool(autoencoder.model.gmm_prior.is_fitted),
    "ae_samples_shape": list(np.shape(autoencoder.model.sample(4, seed=0))),
    "files": sorted(os.listdir(os.path.join(out, "one"))),
    "conditional_val_loss": conditional.history[-1]["val_loss"],
    "conditional_class_prior_sum": float(np.exp(conditional.model.class_log_prior).sum()),
    "conditional_sample_grid": os.path.isfile(os.path.join(out, "conditional", "samples", "epoch_0001.png")),
    "refused": refused,
    "tensorflow_imported": any(m.split(".")[0] == "tensorflow" for m in sys.modules),
}), flush=True)
