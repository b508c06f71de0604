"""Loads a SavedModel with TensorFlow alone and runs every signature (a serving stack's view).

Usage: python serve_without_project.py SAVED_MODEL_DIR INPUTS.npz OUTPUTS.npz

Importing any module of the project (layers, zoo, export) is blocked, so the
test fails if the SavedModel needed project code.
"""

import importlib.abc
import sys


class _BlockProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("layers", "zoo", "export"):
            raise ImportError(f"project module '{name}' imported while serving")
        return None


sys.meta_path.insert(0, _BlockProject())

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

saved_model_dir, inputs_path, outputs_path = sys.argv[1:4]
inputs = dict(np.load(inputs_path))
loaded = tf.saved_model.load(saved_model_dir)
signatures = loaded.signatures
results = {}
for name in ("log_prob", "bits_per_dim", "encode"):
    for key, value in signatures[name](x=tf.constant(inputs["x"])).items():
        results[f"{name}/{key}"] = value.numpy()
# Models with observation noise take noise_scale (and decode a seed); the others' signatures leave them out.
noisy = "observation_noise" in inputs
knob = {"noise_scale": tf.constant(0.5)} if noisy else {}
decode = signatures["decode"](latent=tf.constant(inputs["latent"]),
                              **(dict(knob, seed=tf.constant(11, tf.int64)) if noisy else {}))
results.update({f"decode/{k}": v.numpy() for k, v in decode.items()})
sample = signatures["sample"](num_samples=tf.constant(5), temperature=tf.constant(0.8), seed=tf.constant(3, tf.int64),
                              **knob)
results.update({f"sample/{k}": v.numpy() for k, v in sample.items()})
noise = {"latent_noise": tf.constant(inputs["latent_noise"])}
if noisy:
    noise["observation_noise"] = tf.constant(inputs["observation_noise"])
generate = signatures["generate"](temperature=tf.constant(0.8), **knob, **noise)
results.update({f"generate/{k}": v.numpy() for k, v in generate.items()})
assert not [m for m in sys.modules if m.split(".")[0] in ("layers", "zoo", "export")]
np.savez(outputs_path, **results)
print("served", len(results), "outputs")
