r"""A GPU-ready training run: the paper-size Fashion-MNIST NIF under JAX, data parallel, for a fixed number of steps.

Runs with JAX, NumPy and a Keras wheel beside the project: no TensorFlow, no network
(TensorFlow is made unimportable at the start, so a hidden dependency fails loudly).
It trains ``--model`` (default ``nif_fmnist_64``: GLOW 16 steps x 256 channels + a
Gaussian NIF with d = 64, n_bits 3) with ``zoo.train`` exactly as a user would, on
``--steps`` global batches of the Fashion-MNIST training split, with
``keras.distribution.DataParallel`` over every device when there are several, and reports:

* images/s over the steps after ``--warmup_steps`` (each step synchronized by reading
  its loss, so the clock sees finished work);
* model FLOPs per image of the training step, counted by XLA for this very step
  (``zoo.presets.compute``: ``jax.jit(model.train_step).lower(...).cost_analysis()``);
* model FLOP utilization against (a) a float32 and a bfloat16 matmul peak measured in the
  same run on the same devices and (b) the datasheet peak where the device is known;
* the held-out bits/dim reached (``--eval_examples`` test images, n_bits 3).

``--dtype_policy mixed_bfloat16`` trains under Keras's mixed policy (the conditioners in
bfloat16, every density term in float32; docs/ARCHITECTURE.md); the FLOP count is that of
the float32 step (the same operations), and the MFU is then best read against the measured
bfloat16 peak.

Usage (the data: ``--data_dir`` with Fashion-MNIST's idx files, the loaders' search path, or ``--data_npz`` with
the file of ``--pack_data``):

    KERAS_BACKEND=jax python benchmarks/gpu_train.py --steps 300 --out /tmp/gpu_train
    python benchmarks/gpu_train.py --write_doc /tmp/gpu_train/gpu_train.json   # into docs/BENCHMARKS.md
    python benchmarks/gpu_train.py --pack_data .device   # 3-bit levels, ~10 MiB (`make device-bundle`)

README.md ("Running on another backend") gives the command for a machine without network.

Prints and writes ``OUT/gpu_train.json``.
"""

import argparse
import importlib.abc
import json
import os
import statistics
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION_HEADING = "## GPU-ready training run (JAX, data parallel)"
DATASHEET_PEAKS = {  # dense (no sparsity) tensor-core TFLOP/s: (TF32, BF16)
    "H200": (494.7, 989.4), "H100": (494.7, 989.4), "A100": (156.0, 312.0), "L4": (60.0, 121.0),
}


class _BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_probability", "tf_keras", "tensorflow_datasets"):
            raise ImportError(f"{name} imported by benchmarks/gpu_train.py, which must run without TensorFlow")
        return None


def _matmul_peak(dtype, size, repeats=5):
    """FLOP/s of a ``size x size`` matmul in ``dtype`` on every device at once (median of ``repeats``)."""
    import jax
    import jax.numpy as jnp

    devices = jax.devices()
    key = jax.random.PRNGKey(0)
    a = [jax.device_put(jax.random.normal(key, (size, size), dtype), d) for d in devices]
    matmul = jax.jit(lambda x: x @ x)
    for x in a:
        matmul(x).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        results = [matmul(x) for x in a]
        for r in results:
            r.block_until_ready()
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 * len(devices) / statistics.median(times)


def _is_report(path):
    try:
        with open(path) as f:
            return "images_per_second" in json.load(f)
    except (OSError, ValueError, TypeError):
        return False


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        import platform

        return platform.processor() or "unknown"


PACKED_NAME = "fashion_mnist_{n_bits}bit.npz"


def pack_data(directory, data_dir=None, n_bits=3):
    """Writes DIRECTORY/fashion_mnist_<n>bit.npz: both splits as n_bits levels (uint8 in [0, 2^n_bits)).

    A model trained at ``n_bits`` sees exactly these levels (it quantizes 8-bit images the same way), and the file is
    about a third of the 8-bit idx files (the 3-bit set: ~11 MB against ~31 MB), so the project, the data and a Keras
    wheel travel together to a machine without network under its 64 MiB limit. ``read_packed`` refuses the file for
    a model of another n_bits.
    """
    sys.path.insert(0, REPO_ROOT)
    import numpy as np

    import zoo
    from zoo import files

    if not 1 <= n_bits <= 8:
        raise SystemExit(f"--n_bits must be in [1, 8]; received {n_bits}.")
    arrays = {}
    for split in ("train", "test"):
        images, labels = zoo.datasets.load("fashion_mnist", split, data_dir=data_dir)
        arrays[f"{split}_levels"] = (np.asarray(images) >> (8 - n_bits)).astype(np.uint8)
        arrays[f"{split}_labels"] = np.asarray(labels).astype(np.uint8)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, PACKED_NAME.format(n_bits=n_bits))
    with files.staged_file(path, overwrite=True, recognize=_is_packed) as staged:
        with open(staged, "wb") as f:
            np.savez_compressed(f, n_bits=np.array(n_bits), dataset=np.array("fashion_mnist"), **arrays)
    print(f"wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB)")
    return path


def _is_packed(path):
    import numpy as np

    try:
        with np.load(path) as packed:
            return str(packed["dataset"]) == "fashion_mnist" and "n_bits" in packed
    except (OSError, ValueError, KeyError):
        return False


def read_packed(path, model):
    """(train, test) 8-bit images from ``pack_data``'s file, for ``model`` (a preset name) of the same n_bits."""
    import numpy as np

    from zoo.presets import registry

    model_bits = registry.preset(model).kwargs.get("n_bits", 8)
    if not _is_packed(path):
        raise SystemExit(f"{path} is not a file of `gpu_train.py --pack_data` (no 'dataset' / 'n_bits' in it).")
    with np.load(path) as packed:
        n_bits = int(packed["n_bits"])
        if n_bits != model_bits:
            raise SystemExit(f"{path} holds {n_bits}-bit levels but {model} models {model_bits}-bit images; pack the "
                             f"data with --pack_data DIR --n_bits {model_bits}, or pass --data_dir with the idx files.")
        # level k -> the 8-bit value k * 2^(8 - n): the model's own quantization maps it back to k
        return tuple((packed[f"{split}_levels"].astype(np.uint8) << (8 - n_bits)).astype(np.uint8)
                     for split in ("train", "test"))


def run(args):
    sys.meta_path.insert(0, _BlockTensorFlow())
    os.environ["KERAS_BACKEND"] = "jax"
    sys.path.insert(0, REPO_ROOT)
    import jax
    import keras
    import numpy as np

    import zoo
    from zoo.presets import compute

    if keras.backend.backend() != "jax":
        raise SystemExit(f"Keras runs {keras.backend.backend()!r}; run with KERAS_BACKEND=jax.")
    devices = jax.devices()
    kind = devices[0].device_kind
    strategy = "data_parallel" if len(devices) > 1 else "default"
    global_batch = args.batch_size * len(devices)
    if args.data_npz:
        train, test = read_packed(args.data_npz, args.model)
    else:
        train, _ = zoo.datasets.load("fashion_mnist", "train", data_dir=args.data_dir)
        test, _ = zoo.datasets.load("fashion_mnist", "test", data_dir=args.data_dir)
    needed = args.steps * global_batch
    if needed > len(train):
        raise SystemExit(f"{args.steps} steps of {global_batch} need {needed} images; the split has {len(train)}.")

    step_ends = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            float(keras.ops.convert_to_numpy(logs["loss"]))  # wait for the step to finish
            step_ends.append(time.perf_counter())

    if args.dtype_policy != "float32":
        keras.config.set_dtype_policy(args.dtype_policy)
    started = time.perf_counter()
    import tempfile

    out = os.path.join(args.out, "run") if args.out else tempfile.mkdtemp(prefix="gpu_train_")
    result = zoo.train(model=args.model, dataset=(train[:needed], test[:args.eval_examples]), epochs=1,
                       batch_size=args.batch_size, out=out,
                       strategy=strategy, checkpoint_every=0, sample_every=0, tensorboard=False, verbose=0,
                       callbacks=[Clock()], seed=0)
    wall = time.perf_counter() - started
    timed = step_ends[args.warmup_steps:]
    images_per_second = (len(timed) - 1) * global_batch / (timed[-1] - timed[0])
    flops = compute.measure(args.model)
    per_image = flops["train_flops_per_example"] + flops["train_flops_per_step_fixed"] / global_batch
    size = 8192 if devices[0].platform == "gpu" else 1024
    peaks = {"float32": _matmul_peak("float32", size), "bfloat16": _matmul_peak("bfloat16", size)}
    datasheet = next((v for k, v in DATASHEET_PEAKS.items() if k in kind), None)
    last = result.history[-1]
    report = {
        "model": args.model, "parameters": int(result.model.count_params()), "device_kind": kind,
        "platform": devices[0].platform, "devices": len(devices), "strategy": strategy,
        "global_batch": global_batch, "steps": args.steps, "warmup_steps": args.warmup_steps,
        "dtype_policy": args.dtype_policy, "images_per_second": images_per_second,
        "seconds_per_step": global_batch / images_per_second, "wall_seconds": wall,
        "train_flops_per_image": per_image, "matmul_size": size,
        "measured_matmul_peak_flops": peaks,
        "mfu_vs_measured_float32_matmul": per_image * images_per_second / peaks["float32"],
        "mfu_vs_measured_bfloat16_matmul": per_image * images_per_second / peaks["bfloat16"],
        "datasheet_peak_tflops_tf32_bf16": datasheet,
        "mfu_vs_datasheet_tf32": None if datasheet is None else
        per_image * images_per_second / (datasheet[0] * 1e12 * len(devices)),
        "val_bits_per_dim": last.get("val_bits_per_dim"), "val_examples": min(args.eval_examples, len(test)),
        "n_bits": result.model.n_bits, "train_bits_per_dim": last.get("bits_per_dim"),
        "versions": {"jax": jax.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "tensorflow_imported": any(m.split(".")[0] == "tensorflow" for m in sys.modules),
        "host_cpu": _cpu_model(), "usable_cpus": len(os.sched_getaffinity(0)),
        "load_average_after": os.getloadavg()[0],
        "command": "KERAS_BACKEND=jax python benchmarks/gpu_train.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(report, indent=1))
    if args.out:
        from zoo import files

        # Replaces only an earlier report of this script (a JSON object with its "images_per_second").
        target = os.path.join(args.out, "gpu_train.json")
        with files.staged_file(target, overwrite=True, recognize=_is_report) as staging:
            with open(staging, "w") as f:
                json.dump(report, f, indent=1)
    return report


def write_doc(path, doc=None):
    """Writes the docs/BENCHMARKS.md (or ``doc``) section from a ``gpu_train.json`` (this machine may not be the one
    that ran it)."""
    sys.path.insert(0, REPO_ROOT)
    from benchmarks import common

    with open(path) as f:
        r = json.load(f)
    gpu = r["platform"] == "gpu"
    lines = [SECTION_HEADING, "",
             f"`{r['command']}` on {r['devices']} x {r['device_kind']} ({r['platform']}; host "
             f"{r.get('host_cpu', 'unknown')}, {r.get('usable_cpus', '?')} usable CPUs, load average "
             f"{r.get('load_average_after', float('nan')):.1f} at the end), JAX {r['versions']['jax']}, "
             f"Keras {r['versions']['keras']}, TensorFlow imported: {'yes' if r['tensorflow_imported'] else 'no'}. "
             "Model "
             f"`{r['model']}` ({r['parameters']:,} parameters), global batch {r['global_batch']}, {r['steps']} steps "
             f"({r['warmup_steps']} warm-up steps not timed), dtype policy {r['dtype_policy']}, wall "
             f"{r['wall_seconds']:.0f} s (compilation included).", "",
             "| quantity | value |", "| --- | ---: |",
             f"| images / s | {r['images_per_second']:,.1f} |",
             f"| s / step | {r['seconds_per_step']:.3f} |",
             f"| train GFLOP / image (XLA count) | {r['train_flops_per_image'] / 1e9:.3f} |",
             f"| measured matmul peak fp32 / bf16 (TFLOP/s, {r['matmul_size']}^2) | "
             f"{r['measured_matmul_peak_flops']['float32'] / 1e12:.2f} / "
             f"{r['measured_matmul_peak_flops']['bfloat16'] / 1e12:.2f} |",
             f"| MFU vs measured fp32 matmul | {100 * r['mfu_vs_measured_float32_matmul']:.1f}% |",
             f"| MFU vs datasheet TF32 | "
             f"{'-' if r['mfu_vs_datasheet_tf32'] is None else format(100 * r['mfu_vs_datasheet_tf32'], '.1f') + '%'} |",
             f"| held-out bits/dim after the run (n_bits {r['n_bits']}, {r['val_examples']} test images) | "
             f"{r['val_bits_per_dim']:.4f} |", ""]
    if not gpu:
        lines += ["This run is the same script on this machine's CPU: **the GPU numbers are still to come** (no GPU "
                  "was lent to this session). The script is built for one H200 with JAX and no TensorFlow.", ""]
    common.write_section(doc or common.BENCHMARKS_DOC, SECTION_HEADING, "\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="nif_fmnist_64")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup_steps", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=64, help="per device")
    parser.add_argument("--eval_examples", type=int, default=10000)
    parser.add_argument("--dtype_policy", default="float32")
    parser.add_argument("--data_dir", default=None, help="Fashion-MNIST idx files (else the loaders' search path)")
    parser.add_argument("--data_npz", default=None, help="the file of --pack_data instead of the idx files")
    parser.add_argument("--pack_data", default=None, metavar="DIR",
                        help="only write DIR/fashion_mnist_<n_bits>bit.npz (from --data_dir or the search path)")
    parser.add_argument("--n_bits", type=int, default=3, help="--pack_data: the levels to keep (the model's n_bits)")
    parser.add_argument("--out", default=None, help="writes OUT/gpu_train.json (and the run under OUT/run)")
    parser.add_argument("--write_doc", default=None, metavar="JSON", help="only write docs/BENCHMARKS.md from JSON")
    parser.add_argument("--doc", default=None, help="the markdown file --write_doc writes (default docs/BENCHMARKS.md)")
    args = parser.parse_args()
    if args.write_doc:
        write_doc(args.write_doc, args.doc)
        return
    if args.pack_data:
        pack_data(args.pack_data, args.data_dir, args.n_bits)
        return
    if args.data_npz and args.data_dir:
        parser.error("give --data_npz or --data_dir, not both")
    if args.steps <= args.warmup_steps + 1:
        parser.error("--steps must exceed --warmup_steps + 1 (the timed steps)")
    run(args)


if __name__ == "__main__":
    main()
