r"""``python -m zoo.evaluate``: metrics, pictures and ``report.json`` for one model (an application).

Usage:

    python -m zoo.evaluate --model NAME_OR_PATH --dataset NAME --metrics bpd,recon,fd_classifier[,fid] --out DIR

``--model`` is a preset name, a preset directory or a ``.keras`` file; the
library code is ``zoo.evaluation`` (``zoo.evaluate(...)`` from Python).
"""

import json
import os

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Preset name, preset directory or .keras file.", required=True)
flags.DEFINE_string("weights", None, "Weight handle for a preset name (file, preset directory, URL, 'default').")
flags.DEFINE_string("dataset", None, "Dataset name (mnist, fashion_mnist, digits) or a synthetic manifold.",
                    required=True)
flags.DEFINE_list("metrics", ["bpd", "recon"],
                  "Metrics: bpd, recon, fd_classifier, fid, id; class-conditional models also classify, sample_accuracy.")
flags.DEFINE_string("out", None, "Output directory.", required=True)
flags.DEFINE_string("split", "test", "Dataset split.")
flags.DEFINE_integer("max_examples", 2000, "Evaluate on at most this many examples.")
flags.DEFINE_integer("num_samples", 1000, "Samples for the Frechet distances.")
flags.DEFINE_integer("seed", 0, "Seed of samples and pictures.")


def main(argv):
    del argv
    import zoo

    model = zoo.load(FLAGS.model, weights=FLAGS.weights)
    if not model.is_initialized:
        print(f"warning: {FLAGS.model} has untrained, uninitialized weights.")
    report = zoo.evaluate(model, FLAGS.dataset, FLAGS.out, FLAGS.metrics, FLAGS.split, FLAGS.max_examples,
                          FLAGS.num_samples, FLAGS.seed)
    print(json.dumps(report["metrics"], indent=1))
    print(f"report: {os.path.join(FLAGS.out, 'report.json')}")


if __name__ == "__main__":
    app.run(main)
