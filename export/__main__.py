r"""Command line: export a zoo model as a SavedModel or a LiteRT sampler.

Usage:

    python -m export --model NAME_OR_PATH --format saved_model|tflite --out PATH
        [--weights HANDLE] [--weights_sha256 HEX] [--batch_size 16] [--overwrite]

``--model`` is a preset name (``zoo.list()``), a preset directory
(``model.save_to_preset``) or a ``.keras`` file. For ``tflite``, ``--out`` is the
``.tflite`` file to write; for ``saved_model``, a directory.
"""

import os
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Preset name, preset directory or .keras file.", required=True)
flags.DEFINE_enum("format", "saved_model", ["saved_model", "tflite"], "Export format.")
flags.DEFINE_string("out", None, "Output directory (saved_model) or .tflite file.", required=True)
flags.DEFINE_string("weights", None, "Weight handle for a preset name (file, preset directory or URL).")
flags.DEFINE_string("weights_sha256", None, "sha256 of --weights (required for URLs).")
flags.DEFINE_integer("batch_size", 16, "Samples per call of the LiteRT sampler.")
flags.DEFINE_bool("overwrite", False, "Replace an existing output (only one this project wrote).")
flags.DEFINE_integer("version", None, "saved_model: write --out/<version>/ (TensorFlow Serving's layout).")


def main(argv):
    del argv
    import export
    import zoo

    model = zoo.load(FLAGS.model, weights=FLAGS.weights, weights_sha256=FLAGS.weights_sha256)
    if not model.is_initialized:
        print(f"warning: {FLAGS.model} has untrained, uninitialized weights (no --weights given).")
    start = time.time()
    if FLAGS.format == "saved_model":
        path = export.saved_model(model, FLAGS.out, overwrite=FLAGS.overwrite, version=FLAGS.version)
        print(f"SavedModel with signatures {', '.join(export.SIGNATURES)}: {path} ({time.time() - start:.1f} s)")
    else:
        info = export.tflite_sampler(model, FLAGS.out, batch_size=FLAGS.batch_size, overwrite=FLAGS.overwrite)
        print(f"LiteRT sampler (batch {FLAGS.batch_size}, signatures {', '.join(info['signatures'])}): "
              f"{info['path']}, {info['bytes'] / 1024:.1f} KiB ({time.time() - start:.1f} s)")


if __name__ == "__main__":
    app.run(main)
