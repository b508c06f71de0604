r"""Evaluation: metrics with provenance, sweeps, pictures, and the ``zoo.evaluate`` command.

Every number in a report says how it was obtained (split, number of examples,
n_bits, feature extractor, seed). Pictures are PNG files.

Usage:

    python -m zoo.evaluate --model NAME_OR_PATH --dataset NAME --metrics bpd,recon,fd_classifier[,fid] --out DIR

``--model`` is a preset name, a preset directory or a ``.keras`` file.
"""

import json
import platform
import os
import time

import keras
import numpy as np

from zoo import files
from zoo.evaluation import model_metrics, pictures

METRICS = ("bpd", "recon", "fd_classifier", "fid", "id", "classify", "sample_accuracy")
CONDITIONAL_METRICS = ("classify", "sample_accuracy")
"""Metrics of class-conditional models only (``model.classify`` and samples of a requested class)."""

REPORT_FILE = "report.json"
REPORT_KEYS = ("model", "dataset", "split", "metrics", "pictures")
"""Keys every report.json this project writes has: an existing report.json is replaced only if it has them."""
PICTURE_FILES = ("samples_t_rows_s_columns.png", "reconstructions.png", "interpolation.png", "mean_intensity_vs_s.png",
                 "umap.png", "fid_vs_s.png", "density.png", "samples.png")
"""Every picture ``evaluate`` may write into ``out`` (checked before any work: only the project's own are replaced)."""


def is_report(path):
    """True for a ``report.json`` this project wrote (a JSON object with ``REPORT_KEYS``)."""
    return files.is_json_object_with(path, REPORT_KEYS)


REPORT_HOW = f"flow-zoo's report.json is a JSON object with the keys {', '.join(REPORT_KEYS)}"




def evaluate(model, dataset, out, metrics=("bpd", "recon"), split="test", max_examples=2000, num_samples=1000,
             seed=0, data_dir=None, progress=True, fid_samples=None, fid_noise_scales=(0.0, 0.25, 0.5, 1.0)):
    """Computes ``metrics`` on a dataset split, draws the pictures, writes ``out/report.json``.

    Args:
        model: a ``zoo`` model.
        dataset: dataset name (``zoo.datasets.load``) or a synthetic manifold
            (``zoo.manifolds.GENERATORS``: spiral, sin, s_curve, ...).
        out: output directory.
        metrics: subset of ``bpd``, ``recon``, ``fd_classifier``, ``fid``, ``id``
            (Levina-Bickel intrinsic dimension of the data and of samples),
            and for class-conditional models ``classify`` (accuracy of
            ``model.classify`` on the split, next to an independent CNN
            classifier's) and ``sample_accuracy`` (how often a sample drawn
            for class ``k`` is classified ``k`` by that CNN, ``num_samples``
            samples per class). The CNN is trained once on the training split
            (at most 10,000 images; its held-out accuracy is in the report).
            A conditional model's bits/dim are ``p(x | y)`` at the examples'
            own labels; its samples for ``fd_classifier``, ``fid``, ``id``
            and the pictures cycle through the classes.
        split: dataset split.
        max_examples: evaluate on at most this many examples.
        num_samples: samples for the Frechet distances.
        seed: seed of samples and pictures.
        fid_samples: samples (and test images) for FID, default ``num_samples``.
        fid_noise_scales: the noise scales FID is swept over for models with
            observation noise (the headline is at 1, which must be among them).
        data_dir: optional dataset directory.
        progress: print a progress line per step.

    Returns:
        The report dict (also written as JSON).

    Raises:
        FileExistsError: before any work, when ``out`` holds a ``report.json``
            or one of the pictures' file names that this project did not write
            (it replaces only its own files; move the others away or choose
            another ``out``).
    """
    from zoo.data import datasets, manifolds

    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; choose from {', '.join(METRICS)}.")
    conditional = model.num_classes is not None
    asked = sorted(set(metrics) & set(CONDITIONAL_METRICS))
    if asked and not conditional:
        raise ValueError(f"Metric(s) {asked} need a class-conditional model; {model.name} is unconditional (build it "
                         "with `num_classes=K` and train it on labels).")
    if conditional and dataset in manifolds.GENERATORS:
        raise ValueError(f"{model.name} is class-conditional; the synthetic manifold {dataset!r} has no labels. "
                         "Evaluate it on a labelled dataset (digits, mnist, fashion_mnist).")

    files.refuse_unless_replaceable_file(os.path.join(out, REPORT_FILE), True, is_report, REPORT_HOW)
    pictures.refuse_foreign_pictures(os.path.join(out, name) for name in PICTURE_FILES)
    os.makedirs(out, exist_ok=True)
    manifold = None
    if dataset in manifolds.GENERATORS:
        manifold = manifolds.GENERATORS[dataset](max_examples, seed=seed + (split == "test"))
        images, labels = manifold.data, np.zeros(len(manifold.data), np.int64)
    else:
        images, labels = datasets.load(dataset, split, data_dir=data_dir)
    images, labels = images[:max_examples], labels[:max_examples]
    images = model.as_model_input(images)  # e.g. uint8 images for a float-image model: [0, 1] floats
    report = {"model": model.name, "dataset": dataset, "split": split, "examples": int(len(images)),
              "n_bits": model.n_bits, "data_kind": model.data_kind, "density": model.density, "seed": seed,
              "metrics": {}, "pictures": {}, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if conditional:
        report["num_classes"] = model.num_classes
    steps = list(metrics) + ["pictures"]
    bar = keras.utils.Progbar(len(steps), verbose=1 if progress else 0)
    judge = {}

    def independent_classifier():
        if not judge:  # trained once per report, on the training split; scored on the evaluated examples
            train_images, train_labels = datasets.load(dataset, "train", data_dir=data_dir)
            limit = model_metrics.JUDGE_TRAIN_EXAMPLES
            judge.update(model_metrics.fit_dataset_judge(model.as_model_input(train_images[:limit]), train_labels,
                                                         images, labels, seed=seed))
        return judge

    for step in steps:
        if step == "bpd":
            report["metrics"]["bits_per_dim"] = model_metrics.bits_per_dim(model, images,
                                                                           labels=labels if conditional else None)
        elif step == "classify":
            report["metrics"]["classification_accuracy"] = model_metrics.classification_accuracy(
                model, images, labels, judge=independent_classifier())
        elif step == "sample_accuracy":
            report["metrics"]["sample_accuracy"] = model_metrics.sample_accuracy(
                model, independent_classifier(), num_samples, seed=seed)
        elif step == "recon":
            report["metrics"]["reconstruction_error"] = model_metrics.reconstruction_error(model, images)
        elif step == "fd_classifier":
            if manifold is not None:
                raise ValueError(f"fd_classifier needs a labelled image dataset; {dataset!r} is a synthetic manifold.")
            report["metrics"]["frechet_distance_classifier"] = model_metrics.frechet_distance_classifier(
                model, images, labels, min(num_samples, len(images)), seed=seed, judge=independent_classifier())
        elif step == "fid":
            count = min(num_samples if fid_samples is None else fid_samples, len(images))
            report["metrics"]["fid"] = model_metrics.fid(model, images, count, seed=seed,
                                                         noise_scales=fid_noise_scales)
            if len(report["metrics"]["fid"]["sweep"]) > 1:
                report["pictures"]["fid_vs_s"] = pictures.metric_curve(
                    report["metrics"]["fid"]["sweep"], os.path.join(out, "fid_vs_s.png"), "FID")
        elif step == "id":
            from zoo.evaluation import metrics as metric_lib

            n = min(num_samples, len(images))
            samples = model_metrics.draw_samples(model, n, seed=seed)
            report["metrics"]["intrinsic_dimension"] = {
                "data": metric_lib.levina_bickel_dimension(images[:n].astype(np.float64), k=20),
                "samples": metric_lib.levina_bickel_dimension(samples.astype(np.float64), k=20),
                "how": "Levina-Bickel MLE, k = 20 nearest neighbours", "examples": n}
        elif step == "pictures" and manifold is not None:
            shown = report["pictures"]
            if images.shape[1] == 2:
                shown["density"] = pictures.density_grid(model, manifold, os.path.join(out, "density.png"))
            shown["samples"] = pictures.sample_scatter(model, manifold, os.path.join(out, "samples.png"), seed=seed)
        elif step == "pictures":
            shown = report["pictures"]
            shown["samples"] = pictures.sample_grid(model, os.path.join(out, "samples_t_rows_s_columns.png"), seed=seed)
            shown["reconstructions"] = pictures.reconstruction_strip(model, images[:10], os.path.join(out, "reconstructions.png"))
            shown["interpolation"] = pictures.interpolation(model, images[0], images[1], os.path.join(out, "interpolation.png"))
            if "recon" in metrics or "bpd" in metrics:
                scales = (0.0, 0.25, 0.5, 1.0) if model.has_observation_noise else (None,)
                rows = model_metrics.sweep(lambda t, s: float(np.mean(model_metrics.draw_samples(
                    model, 64, temperature=t, noise_scale=s, seed=seed).astype(np.float64))),
                    noise_scales=scales, temperatures=(0.7, 1.0))
                report["metrics"]["mean_sample_intensity_sweep"] = {"rows": rows, "how": "mean pixel of 64 samples"}
                shown["sweep"] = pictures.metric_curve(rows, os.path.join(out, "mean_intensity_vs_s.png"), "mean pixel value")
            if len(np.unique(labels)) > 1 and len(images) >= 50:
                shown["umap"] = pictures.umap_embedding(model, images[:1000], labels[:1000], os.path.join(out, "umap.png"), seed)
        bar.add(1)
    with files.staged_file(os.path.join(out, REPORT_FILE), overwrite=True, recognize=is_report,
                           how=REPORT_HOW) as staged:
        with open(staged, "w") as f:
            json.dump(report, f, indent=1)
    return report


def machine_description():
    """CPU model, core counts, platform and library versions of this process."""
    import keras
    import tensorflow as tf

    cpu_model, logical = "unknown", 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu_model == "unknown":
                    cpu_model = line.split(":", 1)[1].strip()
                if line.startswith("processor"):
                    logical += 1
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model,
        "logical_cpus": logical or os.cpu_count(),
        "usable_cpus": usable,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
    }
