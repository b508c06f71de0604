"""Training-step speed under keras.mixed_precision "mixed_bfloat16" against float32, in the same run.

Builds ``--model`` (default the paper-size Fashion-MNIST GLOW ``nf_fmnist``) once per policy,
trains each with ``fit`` on the same random uint8 batches, alternating rounds (float32,
mixed, float32, ...), and reports the median images/s of each and the ratio. Whether the CPU
has bfloat16 units is read from /proc/cpuinfo (``avx512_bf16``, ``amx_bf16``). The section
"## Mixed precision (bfloat16) vs float32" of docs/BENCHMARKS.md is replaced.

Also times the FID Inception under both trunk policies and compares the FID they give.

Usage:

    nice python benchmarks/mixed_precision.py [--model nf_fmnist] [--batch_size 32] [--steps 8] [--rounds 3] [--fid_images 1000]
"""

import argparse
import os
import shlex
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
import zoo  # noqa: E402
from zoo.training.data import epoch_dataset  # noqa: E402

SECTION_HEADING = "## Mixed precision (bfloat16) vs float32"


def accuracy_rows(examples):
    """Each shipped preset's card check metric (the first ``examples`` test examples) under both policies."""
    from zoo.presets import publish, shipped

    values = {}
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        for name in shipped.names():
            try:
                model = zoo.get(name, weights="default")
            except ValueError as error:  # a model the policy refuses (vector data)
                values.setdefault(name, {})[policy] = f"refused: {str(error).split(':')[0]}"
                continue
            check = publish.check_value(model, shipped.card(name)["data"]["dataset"], examples)
            values.setdefault(name, {})[policy] = check["value"]
            values[name]["metric"] = check["metric"]
    keras.mixed_precision.set_global_policy("float32")
    rows = []
    for name, v in values.items():
        a, b = v["float32"], v["mixed_bfloat16"]
        change = "-" if isinstance(b, str) else (f"{b - a:+.4f} bits/dim" if v["metric"] == "bits_per_dim"
                                                 else f"{100 * (b - a) / a:+.2f}%")
        rows.append(f"| `{name}` | {v['metric']} | {a:.6g} | {b if isinstance(b, str) else format(b, '.6g')} | "
                    f"{change} |")
    return rows


def inception_rows(count, batch_size=50):
    """The FID Inception under each trunk policy: images/s and the FID of ``count`` Fashion-MNIST test vs train images."""
    from zoo.data import datasets
    from zoo.evaluation import fid_inception
    from zoo.evaluation import metrics

    test, _ = datasets.load_fashion_mnist("test")
    train, _ = datasets.load_fashion_mnist("train")
    weights = fid_inception.convert_weights(fid_inception.locate_weights())
    results = {}
    for policy in ("float32", "mixed_bfloat16"):
        model = fid_inception.inception_for_fid(weights, dtype=policy)
        fid_inception.inception_features(model, test[:batch_size], batch_size=batch_size)  # warm-up: tracing
        start = time.perf_counter()
        real = fid_inception.inception_features(model, test[:count], batch_size=batch_size)
        rate = count / (time.perf_counter() - start)
        other = fid_inception.inception_features(model, train[:count], batch_size=batch_size)
        results[policy] = (rate, metrics.frechet_distance_from_features(real, other), real)
    (rate32, fid32, f32), (rate16, fid16, f16) = results["float32"], results["mixed_bfloat16"]
    relative = float(np.linalg.norm(f16 - f32) / np.linalg.norm(f32))
    return [
        f"| float32 | {rate32:.1f} | 1.00x | {fid32:.3f} | - |",
        f"| mixed_bfloat16 (trunk in bf16; resize and final mean in fp32) | {rate16:.1f} | {rate16 / rate32:.2f}x | "
        f"{fid16:.3f} | {fid16 - fid32:+.3f} ({100 * (fid16 - fid32) / fid32:+.2f}%); features {100 * relative:.1f}% "
        "apart (relative L2) |",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="nf_fmnist")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accuracy_examples", type=int, default=100,
                        help="test examples of each shipped preset's check metric under both policies (0: skip)")
    parser.add_argument("--fid_images", type=int, default=1000,
                        help="Fashion-MNIST test and train images of the Inception comparison (0: skip)")
    parser.add_argument("--no_write", action="store_true")
    args = parser.parse_args()
    models = {}
    for policy in ("float32", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        model = zoo.get(args.model)
        shape = model.example_shape
        images = np.random.default_rng(0).integers(0, 256, (args.batch_size * args.steps,) + shape).astype("uint8")
        model.initialize(images[:args.batch_size])
        model.compile(optimizer=keras.optimizers.Adam(1e-5))
        model.fit(epoch_dataset(images, 0, args.batch_size, 0), epochs=1, verbose=0)  # warm-up: tracing
        models[policy] = (model, images)
    keras.mixed_precision.set_global_policy("float32")
    rates = {policy: [] for policy in models}
    for round_ in range(args.rounds):
        for policy, (model, images) in models.items():
            batches = epoch_dataset(images, round_ + 1, args.batch_size, 0)
            start = time.perf_counter()
            model.fit(batches, epochs=1, verbose=0)
            rates[policy].append(len(images) / (time.perf_counter() - start))
    fp32, bf16 = (statistics.median(rates[p]) for p in ("float32", "mixed_bfloat16"))
    machine = common.machine_description()
    units = common.bf16_units()
    section = "\n".join([
        SECTION_HEADING, "",
        f"`python benchmarks/mixed_precision.py {shlex.join(sys.argv[1:])}`".replace(" `", "`"),
        "",
        f"Model `{args.model}` ({models['float32'][0].count_params():,} parameters), batch {args.batch_size}, "
        f"median of {args.rounds} alternating rounds of {args.steps} `fit` steps after a warm-up epoch per policy. "
        f"Machine: {machine['cpu_model']}, {machine['usable_cpus']} usable CPUs, TensorFlow {machine['tensorflow']}, "
        f"Keras {machine['keras']}; bfloat16 units in /proc/cpuinfo: {', '.join(units) or 'none'}; load average "
        f"{os.getloadavg()[0]:.1f} at the end.", "",
        "| policy | images / s | vs float32 |", "| --- | ---: | ---: |",
        f"| float32 | {fp32:.1f} | 1.00x |",
        f"| mixed_bfloat16 (conditioners in bf16, densities in fp32) | {bf16:.1f} | {bf16 / fp32:.2f}x |", "",
        "Accuracy under the policy (tests/zoo/test_mixed_precision.py, 200 test images, shipped weights): "
        "bits/dim within 0.002 of float32 for `nf_digits`, `nif_fmnist_small_64` and `dnf_fmnist_small_16`.", ""])
    if args.accuracy_examples:
        # Vector models are refused under the policy (GenerativeModel.__init__); their rows say so.
        section += "\n".join([
            "", f"Every shipped preset's card check metric on the first {args.accuracy_examples} test examples, built "
            "under each policy from the same shipped weights (n_bits as on the card):", "",
            "| preset | metric | float32 | mixed_bfloat16 | change |", "| --- | --- | ---: | ---: | ---: |",
            *accuracy_rows(args.accuracy_examples), ""])
    if args.fid_images:
        section += "\n".join([
            "", f"The FID Inception (`zoo.evaluation.fid_inception`, batch 50) under each trunk policy: images/s over "
            f"the first {args.fid_images} Fashion-MNIST test images (28x28, resized to 299x299), and the FID between "
            f"those and the first {args.fid_images} training images (the same two image sets under both policies):", "",
            "| Inception trunk | images / s | vs float32 | FID (test vs train) | change |",
            "| --- | ---: | ---: | ---: | --- |", *inception_rows(args.fid_images), ""])
    print(section)
    if not args.no_write:
        common.write_section(common.BENCHMARKS_DOC, SECTION_HEADING, section)


if __name__ == "__main__":
    main()
