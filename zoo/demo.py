r"""The main job: fetch the shipped Fashion-MNIST NIF, measure it, fine-tune it, sample it, export and serve it.

Usage:

    python -m zoo.demo --out runs/demo [--fine_tune_examples 2000] [--test_examples 10000]

The story, on the weights shipped with the package (no training from scratch):

1. ``zoo.get("nif_fmnist_small_64", weights="default")``: the pretrained noisy
   injective flow (GLOW + Gaussian NIF, d = 64), loaded offline and checked
   against its sha256; its card says how it was trained.
2. Its held-out bits/dim on the Fashion-MNIST test split (n_bits 3, the count
   of test images printed), next to the shipped NF ``nf_fmnist_small`` (the
   same GLOW with a unit Gaussian prior).
3. A brief fine-tune with plain ``compile`` + ``fit`` (progress bar) from the
   trained weights (the act-norm statistics are kept), and its bits/dim after.
4. ``samples.png``: the NIF's samples on its learned manifold (noise scale
   s = 0) and off it (s = 1) at several temperatures, next to the NF's at the
   same temperatures; every column uses the same noise seed.
5. A versioned SavedModel (``saved_model/1``, TensorFlow Serving's layout)
   and a LiteRT sampler (``sampler.tflite``).
6. One request served from the SavedModel, and one from the LiteRT sampler, in
   a fresh Python process that imports TensorFlow and LiteRT only (no project
   code); its bits/dim must match the model's.

Writes ``metrics.json`` (every number with its protocol) and prints where
everything went. Rerunning into the same ``--out`` replaces the demo's own
files; a file of the same name that the demo did not write (``metrics.json``,
the two pictures, ``sampler.tflite``) is refused before any work. Needs Fashion-MNIST (``apt-get install -y dataset-fashion-mnist``
or ``FLOW_ZOO_FASHION_MNIST_DIR``); about 3 minutes on 2 CPU cores.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs/demo", "Directory for the pictures, exports and metrics.")
flags.DEFINE_string("model", "nif_fmnist_small_64", "Shipped NIF preset to fetch.")
flags.DEFINE_string("baseline", "nf_fmnist_small", "Shipped NF preset whose samples are shown next to the NIF's.")
flags.DEFINE_integer("test_examples", 10000, "Test images for the held-out bits/dim (10000: the whole split).")
flags.DEFINE_integer("fine_tune_examples", 2000, "Training images of the brief fine-tune (one epoch).")
flags.DEFINE_float("learning_rate", 2e-5, "Adam learning rate of the fine-tune (the shipped run ended at 0).")
flags.DEFINE_list("temperatures", ["0.5", "0.7", "1.0"], "Sampling temperatures (one row each).")
flags.DEFINE_integer("samples_per_row", 10, "Samples per row of samples.png.")
flags.DEFINE_integer("seed", 0, "Seed of the fine-tune's data order and of the samples.")

SERVE_SCRIPT = r"""
import importlib.abc, json, sys


class BlockProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("layers", "zoo", "export"):
            raise ImportError(f"project module '{name}' imported while serving")
        return None


sys.meta_path.insert(0, BlockProject())
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

saved_model, tflite, images, out = sys.argv[1:5]
served = tf.saved_model.load(saved_model)
x = tf.constant(np.load(images)["x"])
bpd = served.signatures["bits_per_dim"](x=x)["bits_per_dim"].numpy()
drawn = served.signatures["sample"](num_samples=tf.constant(8), temperature=tf.constant(0.7),
                                    noise_scale=tf.constant(0.0), seed=tf.constant(0, tf.int64))["images"].numpy()
runner = Interpreter(model_path=tflite, num_threads=1).get_signature_runner("sample")
lite = runner(temperature=np.float32(0.7), noise_scale=np.float32(0.0), seed=np.int32(0))["images"]
np.savez(out, bits_per_dim=bpd, saved_model_samples=drawn, tflite_samples=lite)
print(json.dumps({"modules": sorted(m for m in sys.modules if m.split(".")[0] in ("zoo", "layers", "export"))}))
"""


def _labelled_rows(rows, labels, scale=3):
    """uint8 picture: one row of images per label, the label written to its left."""
    import numpy as np
    from PIL import Image, ImageDraw

    from zoo.evaluation import pictures

    grid = pictures.tile_images(rows, scale=scale)
    margin = 190
    canvas = Image.new("L", (grid.shape[1] + margin, grid.shape[0]), 255)
    canvas.paste(Image.fromarray(grid if grid.ndim == 2 else grid[..., 0]), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    row_height = grid.shape[0] / len(rows)
    for index, label in enumerate(labels):
        draw.text((4, int(index * row_height + row_height / 2) - 5), label, fill=0)
    return np.asarray(canvas)


def _serve_in_fresh_process(saved_model_dir, tflite_path, images, out):
    """Runs SERVE_SCRIPT in a new interpreter (TensorFlow and LiteRT only); returns its arrays and the modules seen.

    The request and the answer pass through a temporary folder (never files in ``out``, which may hold a user's).
    """
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="flow-zoo-serve-") as scratch:
        request = os.path.join(scratch, "serve_request.npz")
        answer = os.path.join(scratch, "serve_answer.npz")
        np.savez(request, x=images)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        done = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, saved_model_dir, tflite_path, request, answer],
                              capture_output=True, text=True, env=env, cwd=out)
        if done.returncode:
            raise RuntimeError(f"serving in a fresh process failed:\n{done.stderr[-3000:]}")
        seen = json.loads(done.stdout.strip().splitlines()[-1])["modules"]
        with np.load(answer) as served:
            return {k: served[k] for k in served.files}, seen


METRICS_FILE = "metrics.json"
METRICS_KEYS = ("model", "baseline", "held_out", "fine_tune", "sampling", "served")
"""Keys every metrics.json the demo writes has: an existing metrics.json is replaced only if it has them."""
METRICS_HOW = f"the demo's metrics.json is a JSON object with the keys {', '.join(METRICS_KEYS)}"
PICTURES = ("samples.png", "served_samples.png")
TFLITE_FILE = "sampler.tflite"


def is_metrics(path):
    """True for a ``metrics.json`` the demo wrote (a JSON object with ``METRICS_KEYS``)."""
    from zoo import files

    return files.is_json_object_with(path, METRICS_KEYS)


def refuse_foreign_outputs(out):
    """Raises ``FileExistsError`` before any work if ``out`` holds, under a name the demo writes, a file it did not
    write (the demo replaces only its own files there)."""
    from export import tflite
    from zoo import files
    from zoo.evaluation import pictures

    files.refuse_unless_replaceable_file(os.path.join(out, METRICS_FILE), True, is_metrics, METRICS_HOW)
    pictures.refuse_foreign_pictures(os.path.join(out, name) for name in PICTURES)
    files.refuse_unless_replaceable_file(os.path.join(out, TFLITE_FILE), True, tflite.is_project_sampler,
                                         tflite.NOT_OURS)


def run(out, model_name="nif_fmnist_small_64", baseline_name="nf_fmnist_small", test_examples=10000,
        fine_tune_examples=2000, learning_rate=2e-5, temperatures=("0.5", "0.7", "1.0"), samples_per_row=10, seed=0):
    """The story of the module docstring; returns a dict of every number and of where each file went."""
    import keras
    import numpy as np

    import export
    import zoo
    from zoo import files
    from zoo.evaluation import model_metrics, pictures
    from zoo.presets import shipped

    out = os.path.abspath(out)  # the serving process runs in `out`: every path it gets must be absolute
    refuse_foreign_outputs(out)  # before the minutes of work, not after them
    os.makedirs(out, exist_ok=True)
    temperatures = [float(t) for t in temperatures]
    started = time.time()
    model = zoo.get(model_name, weights="default")
    baseline = zoo.get(baseline_name, weights="default")
    card = shipped.card(model_name)
    print(f"Fetched {model_name} (shipped, sha256 {shipped.registrations()[model_name]['sha256'][:12]}...): "
          f"{model.count_params():,} parameters, n_bits={model.n_bits}, latent d={model.latent_shape[0]}.\n"
          f"  trained with: {card['training']['command']}\n"
          f"  ({card['training']['epochs']} epochs, {card['training']['wall_seconds']:.0f} s on "
          f"{card['machine']['cpu_model']})")

    test, _ = zoo.data.load("fmnist", "test")
    train, _ = zoo.data.load("fmnist", "train")
    test = test[:test_examples]

    def held_out(m):  # the cards' protocol: batches of 256, fixed-seed dequantization
        return model_metrics.bits_per_dim(m, test)["value"]

    before, nf_bpd = held_out(model), held_out(baseline)
    print(f"Held-out bits/dim on {len(test)} Fashion-MNIST test images (n_bits={model.n_bits}): "
          f"NIF {before:.4f}, NF {nf_bpd:.4f}")

    print(f"Fine-tuning {model_name} with compile + fit: 1 epoch on {fine_tune_examples} training images, "
          f"Adam {learning_rate:g}")
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=5.0))
    model.fit(train[:fine_tune_examples], batch_size=64, epochs=1, verbose=1)
    after = held_out(model)
    print(f"Held-out bits/dim after the fine-tune: {after:.4f} (before {before:.4f})")

    rows, labels = [], []
    for s in (0.0, 1.0):
        for t in temperatures:
            rows.append(list(np.asarray(model.sample(samples_per_row, temperature=t, noise_scale=s, seed=seed,
                                                     output="uint8"))))
            labels.append(f"NIF s={s:g} ({'on' if s == 0 else 'off'} manifold) t={t:g}")
    for t in temperatures:
        rows.append(list(np.asarray(baseline.sample(samples_per_row, temperature=t, seed=seed, output="uint8"))))
        labels.append(f"NF t={t:g}")
    samples_path = pictures.save_png(_labelled_rows(rows, labels), os.path.join(out, PICTURES[0]))

    saved_model_dir = export.saved_model(model, os.path.join(out, "saved_model"), version=1, overwrite=True)
    tflite = export.tflite_sampler(model, os.path.join(out, TFLITE_FILE), batch_size=8, overwrite=True)
    request = test[:8]
    served, seen = _serve_in_fresh_process(saved_model_dir, tflite["path"], request, out)
    expected = np.asarray(model.bits_per_dim(request))
    if seen or not np.allclose(served["bits_per_dim"], expected, rtol=1e-4, atol=1e-4):
        raise RuntimeError(f"the served SavedModel disagrees with the model (bits/dim {served['bits_per_dim']} vs "
                           f"{expected}; project modules imported while serving: {seen}).")
    served_path = pictures.save_png(pictures.tile_images(
        [list(served["saved_model_samples"]), list(served["tflite_samples"])], scale=3),
        os.path.join(out, PICTURES[1]))

    metrics = {
        "model": model_name, "baseline": baseline_name, "n_bits": model.n_bits,
        "held_out": {"split": "test", "test_images": int(len(test)), "nif_bits_per_dim_shipped": before,
                     "nf_bits_per_dim_shipped": nf_bpd, "nif_bits_per_dim_after_fine_tune": after},
        "fine_tune": {"train_images": int(fine_tune_examples), "epochs": 1, "batch_size": 64,
                      "optimizer": f"Adam {learning_rate:g}, global_clipnorm 5", "seed": seed},
        "sampling": {"temperatures": temperatures, "noise_scales": [0.0, 1.0], "per_row": samples_per_row,
                    "seed": seed, "rows": labels},
        "served": {"request": "bits_per_dim of the first 8 test images; sample(num_samples=8, t=0.7, s=0, seed=0)",
                   "bits_per_dim": [float(v) for v in served["bits_per_dim"]],
                   "tflite_bytes": tflite["bytes"]},
        "seconds": round(time.time() - started, 1),
    }
    metrics_path = os.path.join(out, METRICS_FILE)
    with files.staged_file(metrics_path, overwrite=True, recognize=is_metrics, how=METRICS_HOW) as staged:
        with open(staged, "w") as f:
            json.dump(metrics, f, indent=2)
    return {"samples": samples_path, "served_samples": served_path, "saved_model": saved_model_dir,
            "tflite": tflite["path"], "metrics": metrics_path, **metrics}


def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # TensorFlow's export logs one INFO line per traced function
    result = run(FLAGS.out, FLAGS.model, FLAGS.baseline, FLAGS.test_examples, FLAGS.fine_tune_examples,
                 FLAGS.learning_rate, FLAGS.temperatures, FLAGS.samples_per_row, FLAGS.seed)
    held = result["held_out"]
    print(f"\nHeld-out bits/dim ({held['test_images']} test images, n_bits={result['n_bits']}): NIF "
          f"{held['nif_bits_per_dim_shipped']:.4f} shipped, {held['nif_bits_per_dim_after_fine_tune']:.4f} after "
          f"the fine-tune; NF {held['nf_bits_per_dim_shipped']:.4f}")
    print(f"Samples (NIF on / off its manifold, NF; rows: temperatures "
          f"{', '.join(str(t) for t in result['sampling']['temperatures'])}): {result['samples']}")
    print(f"SavedModel (TensorFlow Serving layout, version 1): {result['saved_model']}")
    print(f"LiteRT sampler ({result['served']['tflite_bytes']:,} bytes): {result['tflite']}")
    print(f"Served in a fresh TensorFlow-only process (bits/dim matched; samples): {result['served_samples']}")
    print(f"Metrics: {result['metrics']}  ({result['seconds']} s)")


if __name__ == "__main__":
    app.run(main)
