r"""Size and per-batch latency of the LiteRT sampler, with the SavedModel as the peer.

Exports a preset (act-norm initialized on the digits; untrained weights cost the
same as trained ones) as a SavedModel and as a LiteRT sampler, then times, in
one process: the LiteRT ``generate`` (given noise) and ``sample`` (seeded)
signatures with the ``ai-edge-litert`` interpreter, and the SavedModel's
``sample`` signature. Median of ``--repeats`` calls after a warm-up.

Usage:

    python benchmarks/tflite_sampler.py [--model nif_digits_16] [--batch_size 16] [--repeats 50]

Writes the section "## LiteRT sampler" of docs/BENCHMARKS.md.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.common import BENCHMARKS_DOC, machine_description, write_section  # noqa: E402

SECTION_HEADING = "## LiteRT sampler"


def _median_seconds(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="nif_digits_16")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--doc", default=BENCHMARKS_DOC)
    args = parser.parse_args()

    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    import export
    import zoo

    model = zoo.get(args.model)
    if model.is_image_model:
        model.initialize(zoo.load_digits_images()[0][:256] if model.example_shape == (8, 8, 1) else
                         np.random.default_rng(0).integers(0, 256, (64,) + model.example_shape).astype("uint8"))
    out = tempfile.mkdtemp()
    info = export.tflite_sampler(model, os.path.join(out, "sampler.tflite"), batch_size=args.batch_size)
    served = tf.saved_model.load(export.saved_model(model, os.path.join(out, "saved_model")))
    interpreter = Interpreter(model_path=info["path"])
    generate, sample = interpreter.get_signature_runner("generate"), interpreter.get_signature_runner("sample")
    rng = np.random.default_rng(0)
    latent_shape, observation_shape = model.noise_shapes
    noise = {"latent_noise": rng.standard_normal((args.batch_size,) + tuple(latent_shape)).astype("float32")}
    if observation_shape is not None:
        noise["observation_noise"] = rng.standard_normal((args.batch_size,) + tuple(observation_shape)).astype("float32")
    knobs = {"temperature": np.float32(0.7), "noise_scale": np.float32(1.0)}
    timings = {
        "LiteRT generate (given noise)": _median_seconds(lambda: generate(**noise, **knobs), args.repeats),
        "LiteRT sample (seeded)": _median_seconds(lambda: sample(seed=np.int32(1), **knobs), args.repeats),
        "SavedModel sample (seeded, TensorFlow)": _median_seconds(lambda: served.signatures["sample"](
            num_samples=tf.constant(args.batch_size), temperature=tf.constant(0.7), noise_scale=tf.constant(1.0),
            seed=tf.constant(1, tf.int64)), args.repeats),
    }
    saved_bytes = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(out, "saved_model")) for f in fs)
    machine = machine_description()
    peer = timings["SavedModel sample (seeded, TensorFlow)"]
    command = "python benchmarks/tflite_sampler.py" + "".join(
        f" --{k} {v}" for k, v in (("model", args.model), ("batch_size", args.batch_size), ("repeats", args.repeats))
        if v != parser.get_default(k))
    lines = [
        SECTION_HEADING, "",
        f"Command: `{command}` ({args.model}, {model.count_params():,} parameters, batch {args.batch_size}, "
        f"median of {args.repeats} calls after a warm-up). Machine: {machine['cpu_model']}, "
        f"{machine['usable_cpus']} usable CPUs; TensorFlow {machine['tensorflow']}, ai-edge-litert interpreter "
        f"(XNNPACK delegate). Date: {time.strftime('%Y-%m-%d')}.", "",
        f"LiteRT flatbuffer: {info['bytes'] / 1024:.1f} KiB (float32 weights, 1x1-conv inverses baked in); "
        f"SavedModel directory: {saved_bytes / 1024:.1f} KiB.", "",
        "| call | ms per batch | vs SavedModel sample |", "| --- | ---: | ---: |",
    ]
    for name, seconds in timings.items():
        lines.append(f"| {name} | {1e3 * seconds:.2f} | {peer / seconds:.2f}x faster |" if name != "SavedModel sample (seeded, TensorFlow)"
                     else f"| {name} | {1e3 * seconds:.2f} | 1.00x |")
    section = "\n".join(lines) + "\n"
    write_section(args.doc, SECTION_HEADING, section)
    print(section)


if __name__ == "__main__":
    main()
