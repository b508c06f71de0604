"""Is file-backed input the bottleneck of a GLOW step? Images/s of the input pipeline alone vs the training step.

Writes ``--images`` Fashion-MNIST training images (or random 28x28 images where the
set is absent) as PNG files and as TFRecord shards (raw and PNG-encoded), then, in one
process and interleaved over ``--repeats`` rounds, measures:

* images/s of each source's epoch pipeline alone (``zoo.training.data.epoch_dataset``:
  read, decode, batch, prefetch; iterated to the end, nothing else running);
* images/s of a training step of ``--model`` (default: the paper-size Fashion-MNIST
  GLOW) fed from in-memory arrays (``fit`` on the same epoch order, after a warm-up epoch).

The ratio pipeline / step says how much head-room the input has: above 1 the
pipeline delivers faster than the step consumes (prefetch hides it). The section
"## Input pipeline vs training step" of docs/BENCHMARKS.md is replaced.

Usage:

    nice python benchmarks/input_pipeline.py [--images 4096] [--model nf_fmnist] [--repeats 3]
"""

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
import zoo  # noqa: E402
from zoo.data import streaming  # noqa: E402
from zoo.training.data import epoch_dataset  # noqa: E402

SECTION_HEADING = "## Input pipeline vs training step"


def _images(count):
    try:
        images = zoo.datasets.load("fashion_mnist", "train")[0][:count]
        return images, "Fashion-MNIST training images"
    except zoo.datasets.DatasetNotFoundError:
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (count, 28, 28, 1)).astype(np.uint8), "random 28x28 uint8 images"


def _pipeline_rate(source, epoch, batch_size):
    start = time.perf_counter()
    seen = sum(int(batch.shape[0]) for batch in epoch_dataset(source, epoch, batch_size, seed=0))
    return seen / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--model", default="nf_fmnist")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no_write", action="store_true")
    args = parser.parse_args()
    from PIL import Image

    images, what = _images(args.images)
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "png")
        os.makedirs(folder)
        for i, image in enumerate(images):
            Image.fromarray(image[..., 0]).save(os.path.join(folder, f"{i:06d}.png"))
        sources = {
            "image folder (PNG files)": streaming.ImageFolder(folder),
            "TFRecord shards, raw": streaming.write_records(images, os.path.join(tmp, "raw"), 1024),
            "TFRecord shards, PNG": streaming.write_records(images, os.path.join(tmp, "png_records"), 1024,
                                                            encoding="png"),
        }
        keras.utils.set_random_seed(0)
        model = zoo.get(args.model)
        model.initialize(images[:256])
        model.compile(optimizer=keras.optimizers.Adam(1e-5))
        model.fit(epoch_dataset(images, 0, args.batch_size, 0), epochs=1, verbose=0)  # warm-up (tracing)
        for source in sources.values():  # warm-up: the first pass builds tf.data's functions and fills caches
            _pipeline_rate(source, 0, args.batch_size)
        rates = {name: [] for name in [*sources, "training step"]}
        for repeat in range(args.repeats):
            for name, source in sources.items():
                rates[name].append(_pipeline_rate(source, repeat + 1, args.batch_size))
            batches = epoch_dataset(images, repeat + 1, args.batch_size, 0)
            start = time.perf_counter()
            model.fit(batches, epochs=1, verbose=0)
            rates["training step"].append((len(images) // args.batch_size) * args.batch_size
                                          / (time.perf_counter() - start))
    step = statistics.median(rates["training step"])
    machine = common.machine_description()
    command = "python benchmarks/input_pipeline.py " + shlex.join(sys.argv[1:])
    lines = [SECTION_HEADING, "",
             f"`{command.strip()}`: {len(images)} {what}, batch {args.batch_size}, median of {args.repeats} "
             f"interleaved rounds of one epoch each. Model `{args.model}` "
             f"({model.count_params():,} parameters) trained by `fit` from in-memory arrays. Every source is read "
             "through `zoo.training.epoch_dataset`, the pipeline `zoo.train` builds for an epoch (tf.data's "
             "autotuning off: `zoo.training.data.short_lived`). Machine: "
             f"{machine['cpu_model']}, {machine['usable_cpus']} usable CPUs, TensorFlow {machine['tensorflow']}, "
             f"Keras {machine['keras']}; load average {os.getloadavg()[0]:.1f} at the end (other work on the "
             "machine lowers both rates alike; compare the ratio).", "",
             "| input | images / s | vs the training step |", "| --- | ---: | ---: |"]
    for name, values in rates.items():
        rate = statistics.median(values)
        lines.append(f"| {name} | {rate:,.0f} | {rate / step:.1f}x |")
    section = "\n".join(lines) + "\n"
    print(section)
    if not args.no_write:
        common.write_section(common.BENCHMARKS_DOC, SECTION_HEADING, section)


if __name__ == "__main__":
    main()
