"""Training-step throughput under MirroredStrategy with 1 and 2 logical CPU devices (docs/BENCHMARKS.md).

The CPU is split into two logical devices before TensorFlow starts. They share
the same physical cores, so this measures the overhead and the scaling of the
distributed code path on this machine, not what two accelerators would give.
Same per-replica batch in every configuration (global batch = per-replica x
replicas); the default (non-distributed) strategy is measured as the peer.

    PYTHONPATH=. python benchmarks/distributed_throughput.py [--steps 30] [--repeats 3]
"""

import argparse
import os
import sys
import time

import tensorflow as tf

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import zoo  # noqa: E402
from benchmarks.common import BENCHMARKS_DOC, machine_description, write_section  # noqa: E402

CONFIGS = {
    "default strategy (1 device)": lambda: tf.distribute.get_strategy(),
    "MirroredStrategy, 1 logical CPU": lambda: tf.distribute.MirroredStrategy(["/cpu:0"]),
    "MirroredStrategy, 2 logical CPUs": lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
}


def build(strategy, preset, per_replica_batch, data):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = zoo.get(preset)
        model.compile(optimizer=keras.optimizers.Adam(1e-4, global_clipnorm=5.0))
    global_batch = per_replica_batch * strategy.num_replicas_in_sync
    with strategy.scope():
        model.initialize(data[:global_batch])
    dataset = tf.data.Dataset.from_tensor_slices(data).repeat().batch(global_batch, drop_remainder=True).prefetch(2)
    return model, dataset, global_batch


def time_steps(model, dataset, steps):
    model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)  # trace + warm-up
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="nf_digits")
    parser.add_argument("--per-replica-batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    images, _ = zoo.load_digits_images()
    built = {name: build(make(), args.preset, args.per_replica_batch, images) for name, make in CONFIGS.items()}
    seconds = {name: [] for name in CONFIGS}
    for _ in range(args.repeats):  # interleaved, so slow phases of a noisy machine hit every configuration
        for name, (model, dataset, _) in built.items():
            seconds[name].append(time_steps(model, dataset, args.steps))
    peer = "default strategy (1 device)"
    rows = []
    for name, (model, _, global_batch) in built.items():
        step = float(np.median(seconds[name]))
        replicas = model.distribute_strategy.num_replicas_in_sync
        total = global_batch / step
        rows.append((name, replicas, global_batch, step * 1e3, total, total / replicas))
    peer_total = next(r[4] for r in rows if r[0] == peer)
    machine = machine_description()
    lines = [
        "## Distributed training throughput (MirroredStrategy, logical CPU devices)",
        "",
        f"`PYTHONPATH=. python benchmarks/distributed_throughput.py --steps {args.steps} --repeats {args.repeats}`: "
        f"preset `{args.preset}` (full size), per-replica batch {args.per_replica_batch}, median over "
        f"{args.repeats} interleaved repeats of {args.steps} `fit` steps after a warm-up. Machine: "
        f"{machine['cpu_model']}, {machine['usable_cpus']} usable cores, TF {machine['tensorflow']}, "
        f"Keras {machine['keras']}; 1-minute load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after the run.",
        "",
        "**The two logical devices are one CPU split in two: they share the same 2 physical cores.** The numbers "
        "show the cost and correctness of the distributed path here, not the speed-up of two accelerators "
        "(each replica's convolutions already use both cores, so two replicas compete for them).",
        "",
        "| configuration | replicas | global batch | ms / step | examples / s (total) | examples / s per replica "
        "| total vs default |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, replicas, global_batch, ms, total, per_replica in rows:
        lines.append(f"| {name} | {replicas} | {global_batch} | {ms:.1f} | {total:.0f} | {per_replica:.0f} "
                     f"| {total / peer_total:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(BENCHMARKS_DOC, lines[0], text)
        print(f"wrote the section to {BENCHMARKS_DOC}")


if __name__ == "__main__":
    main()
