r"""Training compute of every preset: FLOPs of one training step, counted by XLA, and what an epoch costs on a GPU.

``python -m zoo.presets.compute`` (under ``KERAS_BACKEND=jax``; the command sets
it) builds each preset with its own configuration, compiles nothing, and asks
XLA for the cost of one ``model.train_step`` (the objective, its gradient and
the Adam update) lowered with ``jax.jit(...).lower(...)``:
``Lowered.cost_analysis()["flops"]`` (a multiply-add counts 2). The count at two
batch sizes separates the per-example FLOPs from the per-step part (the
optimizer update, which does not grow with the batch). The table goes to
``zoo/presets/compute.json``; ``Preset.training_needs()`` and
``docs/MODEL_CARDS.md`` turn it into FLOPs per epoch of the training split and
the GPU hours that take at a device's peak.

What this does not measure: the utilization a real run reaches. GPU hours at
the peak are a lower bound; divide them by the utilization (``issue 17``'s
``benchmarks/gpu_train.py`` measures it). Multi-phase models (M-flow) are
counted in their first phase.

Usage:

    python -m zoo.presets.compute [--only NAME ...]
    python -m zoo.presets.compute --builder make_glow --kwargs '{"image_shape": [32, 32, 3]}'   # prints only
"""

import json
import os

from zoo import files

COMPUTE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compute.json")
BATCH_SIZES = (2, 4)
"""The two batch sizes of the count: per-example FLOPs = the difference / 2."""
TRAIN_EXAMPLES = {"mnist": 60000, "fmnist": 60000, "cifar10": 50000, "celeba": 162770, "digits": 1500,
                  "fading_square": 10000, "spiral": 10000, "sin": 10000, "scurve": 10000}
"""Examples in the training split ``zoo.train`` uses (CelebA: list_eval_partition's train partition; the
synthetic sets: ``zoo.train``'s default 10000 points; digits: the project's 1500-image training part)."""
GPU_PEAK = {"device": "NVIDIA H200 SXM", "flops_per_second": 494.7e12,
            "what": "dense TF32 tensor-core peak (NVIDIA's datasheet: 989 TFLOP/s with sparsity); float32 training "
                    "runs its matmuls and convolutions in TF32 by default in TensorFlow and JAX"}
METHOD = ("XLA cost analysis of one JAX training step, jax.jit(model.train_step).lower(state, (x,))"
          ".cost_analysis()['flops'] (a multiply-add counts 2), at batch sizes 2 and 4")


def read():
    """The table ``{preset: {...}}`` of ``compute.json`` (``{}`` when it has not been written)."""
    if not os.path.exists(COMPUTE_FILE):
        return {}
    with open(COMPUTE_FILE) as f:
        return json.load(f)


def training_step_flops(name, batch_size, build=None):
    """FLOPs of one training step of preset ``name`` (or of the model ``build()`` returns) at ``batch_size``.

    Needs ``KERAS_BACKEND=jax``.
    """
    import jax
    import keras
    import numpy as np

    from zoo.presets import registry

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"counting FLOPs needs KERAS_BACKEND=jax (this process runs {keras.backend.backend()!r}): "
                           "run `python -m zoo.presets.compute`, which sets it.")
    model = build() if build is not None else registry.get(name)
    shape = (int(batch_size),) + tuple(model.example_shape)
    rng = np.random.default_rng(0)
    if model.input_dtype == "uint8":
        x = rng.integers(0, 256, shape).astype("uint8")
    else:
        low, high = model.value_range or (-1.0, 1.0)
        x = rng.uniform(low, high, shape).astype("float32")
    if model.num_classes is not None:  # a class-conditional model's input is (x, labels)
        x = (x, (np.arange(shape[0]) % model.num_classes).astype("int32"))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model._symbolic_build(data_batch=(x,))  # builds the optimizer and metric variables, as fit does
    state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in model.optimizer.variables], [v.value for v in model.metrics_variables])
    cost = jax.jit(model.train_step).lower(state, (x,)).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"])


def measure(name, build=None):
    """``{"train_flops_per_example", "train_flops_per_step_fixed", "batch_sizes", "versions"}`` of preset ``name``
    (or of the model ``build()`` returns, e.g. ``lambda: zoo.make_glow(...)``)."""
    import jax
    import keras

    small, large = (training_step_flops(name, b, build) for b in BATCH_SIZES)
    per_example = (large - small) / (BATCH_SIZES[1] - BATCH_SIZES[0])
    return {"train_flops_per_example": per_example, "train_flops_per_step_fixed": small - BATCH_SIZES[0] * per_example,
            "batch_sizes": list(BATCH_SIZES), "versions": {"jax": jax.__version__, "keras": keras.__version__}}


def epoch_cost(name, dataset, table=None):
    """FLOPs of one epoch of ``zoo.train`` on ``dataset``'s training split and GPU hours at the peak (None: unknown)."""
    entry = (read() if table is None else table).get(name)
    examples = TRAIN_EXAMPLES.get(dataset)
    if entry is None or examples is None:
        return None
    flops = entry["train_flops_per_example"] * examples
    return {"train_flops_per_example": entry["train_flops_per_example"], "train_examples": examples,
            "flops_per_epoch": flops, "gpu": GPU_PEAK["device"],
            "gpu_hours_per_epoch_at_peak": flops / GPU_PEAK["flops_per_second"] / 3600.0,
            "method": METHOD,
            "note": f"a lower bound: at the {GPU_PEAK['device']}'s {GPU_PEAK['what']}; divide by the utilization a "
                    "run reaches (not measured here) and multiply by the epochs"}


def _is_compute_table(path):
    return files.is_json_table(path, "train_flops_per_example")


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None, help="count only these presets (the rest are kept)")
    parser.add_argument("--builder", default=None, help="count zoo.BUILDER(**--kwargs) instead and print its JSON "
                        "(nothing is written; e.g. make_glow)")
    parser.add_argument("--kwargs", default="{}", help="JSON builder arguments for --builder")
    args = parser.parse_args(argv)
    if args.builder:
        import zoo

        builder = getattr(zoo, args.builder)
        print("COMPUTE " + json.dumps(measure(args.builder, lambda: builder(**json.loads(args.kwargs)))), flush=True)
        return
    import keras

    from zoo.presets import registry

    table = read()
    names = args.only or [p["name"] for p in registry.list_presets()]
    for name in names:
        registry.preset(name)  # refuses an unknown name before anything is counted
    for name in names:
        table[name] = measure(name)
        print(f"{name}: {table[name]['train_flops_per_example'] / 1e9:.4g} GFLOP per training example", flush=True)
        keras.backend.clear_session()
    table = {k: table[k] for k in sorted(table)}
    with files.staged_file(COMPUTE_FILE, overwrite=True, recognize=_is_compute_table) as staging:
        with open(staging, "w") as f:
            json.dump(table, f, indent=1)
            f.write("\n")
    print(f"wrote {len(table)} entries to {COMPUTE_FILE}")


if __name__ == "__main__":
    import sys

    import keras

    if keras.backend.backend() != "jax":  # `import zoo` chose the backend before this module ran: start again on JAX
        if os.environ.get("KERAS_BACKEND") not in (None, "", "jax"):
            raise SystemExit(f"python -m zoo.presets.compute counts with JAX; unset KERAS_BACKEND (it is "
                             f"{os.environ['KERAS_BACKEND']!r}) or set it to jax.")
        os.execve(sys.executable, [sys.executable, "-m", "zoo.presets.compute", *sys.argv[1:]],
                  dict(os.environ, KERAS_BACKEND="jax"))
    main()
