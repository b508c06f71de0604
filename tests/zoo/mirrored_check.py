"""``python mirrored_check.py PRESET``: trains PRESET with 1 and 2 logical CPU devices, prints a JSON comparison.

The logical devices must be configured before TensorFlow initializes, hence
a separate process (tests/zoo/test_training.py starts one per preset; two
2-replica MirroredStrategy runs in one process collided on collective keys).
Presets: nf_digits (act-norm, dequantization noise) and dnf_spiral_1 (spline
couplings, inflation noise, reconstruction term).
"""

import json
import sys
import tempfile

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import zoo  # noqa: E402

CASES = {
    "nf_digits": ("digits", {"steps_per_level": 2, "hidden_channels": 16}),
    "dnf_spiral_1": ("spiral", {"num_couplings": 2, "hidden_units": 8}),
}


def run(preset, devices, per_replica_batch, out):
    dataset, overrides = CASES[preset]
    strategy = tf.distribute.MirroredStrategy(devices)
    result = zoo.train(model=preset, dataset=dataset, epochs=1, batch_size=per_replica_batch, out=out,
                       strategy=strategy, num_examples=6 * 64, model_overrides=overrides, validation=False,
                       sample_every=0, tensorboard=False, verbose=0, checkpoint_every=0)
    model = result.model
    weights = [np.asarray(keras.ops.convert_to_numpy(v)) for v in model.weights]  # same order in both runs
    replica_copies = {}
    for layer in model.actnorm_layers():
        for variable in (layer.loc, layer.log_scale, layer.initialized):
            copies = getattr(variable.value, "values", None) or (variable.value,)
            replica_copies[variable.path] = [np.asarray(c.numpy()) for c in copies]
    return result, weights, replica_copies


preset = sys.argv[1]
with tempfile.TemporaryDirectory() as tmp:
    one, w1, _ = run(preset, ["/cpu:0"], 64, f"{tmp}/one")
    two, w2, copies = run(preset, ["/cpu:0", "/cpu:1"], 32, f"{tmp}/two")
report = {
    "replicas": [one.strategy.num_replicas_in_sync, two.strategy.num_replicas_in_sync],
    "global_batch": [one.global_batch_size, two.global_batch_size],
    "loss": [one.history[-1]["loss"], two.history[-1]["loss"]],
    "max_weight_difference": max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2)),
    "max_abs_weight": max(float(np.max(np.abs(a))) for a in w1),
    "actnorm_copies": min((len(c) for c in copies.values()), default=None),
    "actnorm_replica_disagreement": max((float(np.max(np.abs(c[0] - c[-1]))) for c in copies.values()),
                                        default=None),
    "actnorm_initialized": bool(two.model.is_initialized),
}
json.dump(report, sys.stdout)
