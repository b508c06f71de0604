r"""Ships a ``zoo.train`` run's weights inside the package, with a model card.

    python -m zoo.presets.publish RUN_DIR [--which final|best]

``RUN_DIR`` is the output directory of ``python -m zoo.train`` for a registered
preset trained with its own architecture (no ``--overrides``). The command

1. loads ``RUN_DIR/final`` (or ``best``) as that preset (``zoo.get(name,
   weights=...)`` refuses another architecture);
2. measures the card on the dataset's held-out split with
   ``zoo.evaluation.evaluate``: bits/dim where the model has a likelihood
   (with n_bits and the number of test examples), reconstruction error where
   it has a smaller latent, the classifier Frechet distance on digits, and a
   sample picture; plus the *check*: the headline metric re-measured on the
   first ``CHECK_EXAMPLES`` test examples, which the test suite recomputes from
   the shipped file (so a card cannot drift from its weights);
3. writes the preset directory ``zoo/presets/shipped/NAME/`` (weights +
   ``metadata.json`` = the card) through ``zoo.files.staged_directory``, its
   sha256 into ``zoo/presets/shipped.json`` (the weights' registration) and the
   picture to ``docs/figures/cards/NAME.png``, and rewrites
   ``docs/MODEL_CARDS.md`` from every card.
"""

import json
import os
import shutil
import tempfile
import time

import numpy as np

from zoo import files
from zoo.presets import compute, registry, shipped
from zoo.presets import weights as handles

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK_EXAMPLES = 200
CHECK_RTOL = 1e-3
"""The suite re-measures a card's check within this relative tolerance (float summation order differs by CPU)."""


def held_out_examples(dataset, count, with_labels=False):
    """The first ``count`` held-out examples of ``dataset`` exactly as ``zoo.evaluation.evaluate`` reads them.

    ``with_labels=True`` returns ``(examples, labels)`` (labelled datasets only).
    """
    from zoo.data import datasets, manifolds

    if dataset in manifolds.GENERATORS:
        if with_labels:
            raise ValueError(f"The synthetic manifold {dataset!r} has no labels.")
        return manifolds.GENERATORS[dataset](count, seed=1).data[:count]
    images, labels = datasets.load(dataset, "test")
    return (images[:count], labels[:count]) if with_labels else images[:count]


def headline_metric(model):
    """``"bits_per_dim"`` for a model with a likelihood term, else ``"reconstruction_error"``."""
    return "bits_per_dim" if model.likelihood_term is not None else "reconstruction_error"


def examples_digest(examples):
    """sha256 of an example array's dtype, shape and bytes: names exactly which examples a check used."""
    import hashlib

    array = np.ascontiguousarray(examples)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def check_value(model, dataset, count=CHECK_EXAMPLES, examples=None, labels=None):
    """The headline metric of ``model`` on the first ``count`` held-out examples (what the suite re-measures).

    ``examples`` (optional) are those examples from elsewhere, e.g. a copy kept
    with the tests; the result's ``examples_sha256`` says which were used. A
    class-conditional model's bits/dim are ``p(x | y)`` at the examples'
    labels: read from the split with the examples, or given as ``labels`` with
    ``examples``.
    """
    from zoo.evaluation import model_metrics

    conditional = model.num_classes is not None
    if examples is None:
        raw = held_out_examples(dataset, count, with_labels=conditional)
        raw, labels = raw if conditional else (raw, None)
    else:
        raw = np.asarray(examples)[:count]
        if conditional and labels is None:
            raise ValueError(f"check_value: {model.name} is class-conditional; pass the examples' `labels` too.")
        labels = None if labels is None else np.asarray(labels)[:count]
    x = model.as_model_input(raw)
    metric = headline_metric(model)
    value = (model_metrics.bits_per_dim(model, x, labels=labels) if metric == "bits_per_dim"
             else model_metrics.reconstruction_error(model, x))["value"]
    return {"metric": metric, "examples": int(len(x)), "examples_sha256": examples_digest(raw),
            "value": value, "rtol": CHECK_RTOL}


def _metric_names(model, dataset):
    names = []
    if model.likelihood_term is not None:
        names.append("bpd")
    if int(np.prod(model.latent_shape)) < int(np.prod(model.example_shape)):
        names.append("recon")
    if dataset == "digits":
        names.append("fd_classifier")
    elif dataset in FID_DATASETS:  # natural images: FID with the 2015 Inception
        names.append("fid")
    if model.num_classes is not None:  # the Bayes classifier and samples of the asked class, by an independent CNN
        names += ["classify", "sample_accuracy"]
    return tuple(names)


def _command(run_dir, arguments):
    path = os.path.join(run_dir, "command.txt")
    if os.path.exists(path):
        with open(path) as f:
            return f.read().strip()
    return (f"python -m zoo.train --model {arguments['model']} --dataset {arguments['dataset']} "
            f"--epochs {arguments['epochs']} --batch_size {arguments['batch_size']} --seed {arguments['seed']}")


FID_DATASETS = ("mnist", "fmnist", "fashion_mnist", "cifar10", "celeba")
"""Datasets whose cards report FID (not the synthetic fading squares: Inception features say little there)."""
FID_SAMPLES = 500
"""Samples (and test images) of a card's FID: the 2015 Inception, compiled, took 0.21 s per image on 2 shared CPU cores (50 images in 10.6 s)."""
FID_NOISE_SCALES = (0.0, 1.0)
"""A card's FID for models with observation noise: on the manifold and at the trained noise (the headline)."""


def publish(run_dir, which="final", shipped_dir=None, registration_file=None, figures_dir=None, cards_doc=None,
            max_examples=10000, num_samples=1000, log=print):
    """Publishes ``run_dir/which`` as the shipped weights of its preset (see the module docstring).

    Returns:
        The card (a dict).
    """
    from zoo.evaluation import report as report_lib

    shipped_dir = shipped_dir or shipped.SHIPPED_DIR
    registration_file = registration_file or shipped.REGISTRATION_FILE
    if (figures_dir is None or cards_doc is None) and not os.path.exists(
            os.path.join(REPO_ROOT, "docs", "ARCHITECTURE.md")):
        raise ValueError(f"{REPO_ROOT} is not a flow-zoo checkout (no docs/ARCHITECTURE.md): publish from the "
                         "repository, or pass figures_dir= and cards_doc= for the picture and the cards table.")
    figures_dir = figures_dir or os.path.join(REPO_ROOT, "docs", "figures", "cards")
    cards_doc = cards_doc or os.path.join(REPO_ROOT, "docs", "MODEL_CARDS.md")
    table = _read_registrations(registration_file)
    with open(os.path.join(run_dir, "history.json")) as f:
        history = json.load(f)
    arguments = history["arguments"]
    name, dataset = arguments["model"], arguments["dataset"]
    for path, ours in ((cards_doc, _is_cards_doc), (os.path.join(figures_dir, f"{name}.png"), lambda p: name in table)):
        if os.path.exists(path) and not ours(path):  # refused before anything is written
            raise FileExistsError(f"{path} is not a file this project wrote; refusing to replace it. Pass "
                                  "figures_dir= / cards_doc= paths of their own.")
    if arguments.get("model_overrides"):
        raise ValueError(f"{run_dir} was trained with overrides {arguments['model_overrides']}: shipped weights must "
                         f"be the preset '{name}' itself. Train it without --overrides.")
    if arguments.get("num_examples"):
        raise ValueError(f"{run_dir} used only {arguments['num_examples']} training examples; shipped weights are "
                         "trained on the whole training split.")
    source = os.path.join(run_dir, which)
    model = registry.get(name, weights=source)  # refuses another architecture
    preset = registry.preset(name)
    log(f"{name}: measuring on {dataset} (held-out split)")
    with tempfile.TemporaryDirectory() as tmp:
        report = report_lib.evaluate(model, dataset, tmp, metrics=_metric_names(model, dataset),
                                     max_examples=max_examples, num_samples=num_samples, seed=0, progress=False,
                                     fid_samples=FID_SAMPLES, fid_noise_scales=FID_NOISE_SCALES)
        picture = report["pictures"].get("samples")
        os.makedirs(figures_dir, exist_ok=True)
        picture_path = os.path.join(figures_dir, f"{name}.png")
        if len(model.example_shape) == 3:  # images: test images, then samples at two temperatures
            picture = os.path.join(tmp, "card.png")
            _card_picture(model, held_out_examples(dataset, 12), picture)
        if picture:
            # Replaces only the picture of a preset this command published before.
            with files.staged_file(picture_path, overwrite=True, recognize=lambda p: name in table) as staging:
                shutil.copyfile(picture, staging)
    check = check_value(model, dataset)
    metric = headline_metric(model)
    headline_source = report["metrics"][metric]
    last = history["history"][-1] if history["history"] else {}
    card = {
        "preset": name,
        "family": preset.family,
        "description": preset.description,
        "paper": preset.paper,
        "data": {"dataset": dataset, "train_split": "train", "held_out_split": "test",
                 "held_out_examples": report["examples"]},
        "n_bits": model.n_bits,
        "architecture": {"class_name": type(model).__name__, "config": preset.kwargs},
        "parameters": int(model.count_params()),
        "training": {"command": _command(run_dir, arguments), "epochs": arguments["epochs"],
                     "steps": int(history["steps_per_epoch"]) * int(arguments["epochs"]),
                     "global_batch_size": history["global_batch_size"], "settings": arguments["training"],
                     "seed": arguments["seed"], "wall_seconds": round(float(history["seconds_this_run"]), 1),
                     "wall_seconds_note": "of the last (resumed) part of the run" if history.get("resumed_from_step")
                     else "the whole run", "weights_from": which, "final_logs": last,
                     "monitor": model.monitor, "curve": training_curve(history, model.monitor)},
        "machine": report_lib.machine_description(),
        "metrics": report["metrics"],
        "model_facts": model.summary_facts(),
        "headline": {"metric": metric, "value": headline_source["value"], "n_bits": model.n_bits,
                     "examples": headline_source.get("examples", report["examples"]), "split": "test"},
        "check": check,
        "picture": os.path.relpath(picture_path, REPO_ROOT) if picture else None,
        "picture_shows": (CARD_PICTURE + ("; the samples' labels cycle through the classes 0, 1, ..., K-1, 0, ..."
                                          if model.num_classes is not None else "")
                          if len(model.example_shape) == 3 else "held-out data (left) and model samples"),
        "date": time.strftime("%Y-%m-%d"),
    }
    card = json.loads(json.dumps(card, default=_plain))
    target = os.path.join(shipped_dir, name)
    model.save_to_preset(target, metadata=card, overwrite=True, include_optimizer=False)
    digest = handles.sha256_of(os.path.join(target, shipped.WEIGHTS_FILE))
    table[name] = {"sha256": digest, "bytes": os.path.getsize(os.path.join(target, shipped.WEIGHTS_FILE))}
    with files.staged_file(registration_file, overwrite=True, recognize=_is_registration_table) as staging:
        with open(staging, "w") as f:
            json.dump(dict(sorted(table.items())), f, indent=1)
    shipped.registrations.cache_clear()
    write_cards_doc(cards_doc, shipped_dir, registration_file)
    log(f"{name}: {metric} {card['headline']['value']:.4g} on {card['headline']['examples']} test examples; "
        f"weights sha256 {digest[:12]}... -> {target}")
    return card


def training_curve(history, monitor="val_loss"):
    """Per-epoch training and validation objective of a ``zoo.train`` history, and the model's ``monitor``
    (whether the curve has flattened)."""
    return [{"epoch": int(e["epoch"]), "loss": e.get("loss"), "val_loss": e.get("val_loss"), monitor: e.get(monitor)}
            for e in history["history"]]


def _last_validation_change(card):
    monitor = card["training"].get("monitor", "val_loss")
    curve = [e[monitor] for e in card["training"].get("curve", []) if e.get(monitor) is not None]
    if len(curve) < 2:
        return "-"
    change = f"{curve[-1] - curve[-2]:+.4f}" if abs(curve[-1] - curve[-2]) >= 1e-4 else \
        f"{curve[-1] - curve[-2]:+.2e}"
    return change if monitor == "val_loss" else f"{change} ({monitor})"


CARD_PICTURE = ("row 1: the first 12 test images; row 2: their reconstructions decode(encode(x)); rows 3-4: 12 "
                "samples at temperature 0.7 and at 1.0 (seed 0; models with observation noise: at their trained "
                "noise scale 1)")


def _card_picture(model, test_images, path):
    from PIL import Image

    from zoo.evaluation import pictures

    x = model.as_model_input(test_images)
    as_pixels = lambda a: np.asarray(a) if np.asarray(a).dtype == np.uint8 else np.clip(  # noqa: E731
        np.round(np.asarray(a) * 255.0), 0, 255).astype(np.uint8)
    rows = [list(as_pixels(test_images)), list(as_pixels(model.decode(model.encode(x))))]
    rows += [list(as_pixels(model.sample(12, temperature=t, seed=0, output="uint8", labels=model.every_class(12))))
             for t in (0.7, 1.0)]
    Image.fromarray(pictures.tile_images(rows, scale=4)).save(path)


def _read_registrations(path):
    if not os.path.exists(path):
        return {}
    if not _is_registration_table(path):
        raise ValueError(f"{path} is not a shipped-weights registration table ({{name: {{sha256, bytes}}}}); "
                         "refusing to replace it. Pass registration_file= a path of its own.")
    with open(path) as f:
        return json.load(f)


def _is_registration_table(path):
    """True for a JSON ``{name: {"sha256": ..., ...}}`` (what ``publish`` writes)."""
    return files.is_json_table(path, "sha256")


CARDS_HEADING = "# Model cards"


def _is_cards_doc(path):
    with open(path) as f:
        return f.readline().strip() == CARDS_HEADING


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def _format_metric(card, key, field="value", digits=3):
    entry = card["metrics"].get(key)
    if not entry:
        return "-"
    text = f"{entry[field]:.{digits}f}"
    if key == "bits_per_dim" and "median" in entry:
        text += f" ({entry['median']:.{digits}f})"
    return text


def _duration(seconds):
    """``0.23 s``, ``4.1 min``, ``2.5 h``: two significant digits in the unit that keeps the number readable."""
    for unit, size in (("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.2g} {unit}"
    return f"{seconds:.2g} s"


def write_cards_doc(path, shipped_dir=None, registration_file=None):
    """Rewrites ``docs/MODEL_CARDS.md``: one row per shipped preset, from its card."""
    shipped_dir = shipped_dir or shipped.SHIPPED_DIR
    table = _read_registrations(registration_file or shipped.REGISTRATION_FILE)
    lines = [CARDS_HEADING, "",
             "Every preset with weights shipped in the package (`zoo.get(name, weights=\"default\")`, offline). "
             "Each row is written by `python -m zoo.presets.publish RUN_DIR` from the preset's card (its "
             "`zoo/presets/shipped/NAME/metadata.json`); the test suite re-measures each card's check metric "
             f"on the first {CHECK_EXAMPLES} test examples from the shipped file. Bits/dim are on the held-out "
             "split at the stated n_bits (vectors: float data, a density in bits per dimension), as the mean "
             "(the median in brackets: on the 2-D manifolds a few tail points far outside the training range "
             "dominate the mean); the "
             "reconstruction error is the squared L2 per example (images: 8-bit pixel units) of "
             "`decode(encode(x))`; the last-epoch validation change is the change over the last epoch of the "
             "model's `monitor` (the held-out objective `val_loss`, or where that objective has a schedule, the "
             "named value: the InjFlow models weight their reconstruction by a coefficient that grows with "
             "the step, so they follow the held-out reconstruction MSE; the card's `training.curve` has every "
             "epoch); FD (classifier) is the Frechet distance on a small digit classifier's "
             "features (digits, not FID); FID (MNIST, Fashion-MNIST) is on the 2015 Inception's pool features "
             "(docs/FID_PORT.md) between samples at temperature 1 (models with observation noise: noise scale 1) "
             "and as many test images, the count in brackets: FID is biased upwards at small counts, so compare "
             "FIDs only at equal counts. Class-conditional presets: bits/dim are of p(x | y) at each test "
             "example's own label; classify is the accuracy of `model.classify` (argmax_y log p(x | y) + log p(y)) "
             "on the test examples, with the independent CNN classifier's accuracy on the same examples in brackets "
             "(trained by the project on at most 10,000 training images); sample acc. is how often that CNN "
             "assigns a sample drawn with `labels=k` to class k (1,000 samples per class, temperature 1, the "
             "trained noise scale, seeds 0..K-1), averaged over the classes.", "",
             "| preset | data (test examples) | n_bits | parameters | bits/dim (median) | recon. error | FD (classifier) | "
             "FID (samples) | classify / sample acc. | epochs / steps | last-epoch val. change | wall s | weights (KiB) | "
             "sha256 | command | picture |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- | --- |"]
    machines = set()
    cards = {}
    for name in sorted(table):
        with open(os.path.join(shipped_dir, name, shipped.CARD_FILE)) as f:
            card = cards[name] = json.load(f)
        machines.add(f"{card['machine']['cpu_model']} ({card['machine']['usable_cpus']} usable CPUs, "
                     f"TensorFlow {card['machine']['tensorflow']}, Keras {card['machine']['keras']})")
        fd = card["metrics"].get("frechet_distance_classifier")
        fid = card["metrics"].get("fid")
        classify, sampled = card["metrics"].get("classification_accuracy"), card["metrics"].get("sample_accuracy")
        accuracy = "-" if not classify else (f"{classify['value']:.3f} (CNN {classify['independent_classifier_accuracy']:.3f})"
                                             f" / {sampled['value']:.3f}")
        picture = f"[png](../{card['picture']})" if card.get("picture") else "-"
        lines.append(
            f"| `{name}` | {card['data']['dataset']} ({card['data']['held_out_examples']}) | {card['n_bits'] or '-'} | "
            f"{card['parameters']:,} | {_format_metric(card, 'bits_per_dim')} | "
            f"{_format_metric(card, 'reconstruction_error', digits=1)} | "
            f"{'-' if not fd else format(fd['value'], '.2f')} | "
            f"{'-' if not fid else format(fid['value'], '.1f') + ' (' + str(fid['samples']) + ')'} | {accuracy} | "
            f"{card['training']['epochs']} / "
            f"{card['training']['steps']} | {_last_validation_change(card)} | {card['training']['wall_seconds']:.0f} | "
            f"{table[name]['bytes'] / 1024:.0f} | `{table[name]['sha256'][:12]}` | "
            f"`{card['training']['command']}` | {picture} |")
    spectra = []
    for name, card in cards.items():
        prior = card.get("model_facts", {}).get("prior", {})
        if "intrinsic_dimension" in prior:
            top = ", ".join(f"{e:.3g}" for e in prior["eigenvalues_top"][:6])
            spectra.append(f"| `{name}` | {prior['intrinsic_dimension']} | {top} |")
    if spectra:
        lines += ["", "Learned spectra of the spread priors (the card's `model_facts`): the intrinsic dimension K by "
                  "`layers.spread.significant_eigenvalue_count` and the largest eigenvalues of A A^T.", "",
                  "| preset | K | top eigenvalues |", "| --- | ---: | --- |"] + spectra
    lines += ["", "Machines: " + "; ".join(sorted(machines)) + ".", ""]
    unshipped = [p for p in registry.list_presets() if p["name"] not in table]
    if unshipped:
        lines += ["## Presets without weights: what training them needs", "",
                  "These stay architectures (paper-size GLOWs of 16 steps x 256 channels, CelebA, CIFAR-10, and the "
                  "CPU presets not trained yet): `zoo.get(name)` builds them untrained. Each needs the data below "
                  "and the command (EPOCHS: train until the validation curve flattens; the NIF reference trainer "
                  "has no fixed end, and the papers do not report their training time). The compute columns are "
                  "counted, not timed (`python -m zoo.presets.compute`, `zoo/presets/compute.json`): "
                  f"{compute.METHOD}, times the training split; the GPU hours are those FLOPs at the "
                  f"{compute.GPU_PEAK['device']}'s {compute.GPU_PEAK['flops_per_second'] / 1e12:.1f} TFLOP/s "
                  f"{compute.GPU_PEAK['what']}. They are a lower bound: a run takes EPOCHS x that / its "
                  "utilization, which no GPU run here has measured yet.", "",
                  "| preset | parameters | data | train GFLOP / example | training examples | "
                  f"{compute.GPU_PEAK['device']} time / epoch at peak | command |",
                  "| --- | ---: | --- | ---: | ---: | ---: | --- |"]
        for entry in unshipped:
            needs, count = registry.preset(entry["name"]).training_needs(), entry["parameters"]
            cost = needs["compute"] if isinstance(needs["compute"], dict) else None
            flops = "-" if cost is None else f"{cost['train_flops_per_example'] / 1e9:.3g}"
            examples = "-" if cost is None else f"{cost['train_examples']:,}"
            hours = "-" if cost is None else _duration(cost["gpu_hours_per_epoch_at_peak"] * 3600.0)
            lines.append(f"| `{entry['name']}` | {'-' if count is None else format(count, ',')} | {needs['data']} | "
                         f"{flops} | {examples} | {hours} | `{needs['command']}` |")
        lines.append("")
    with files.staged_file(path, overwrite=True, recognize=_is_cards_doc) as staging:
        with open(staging, "w") as f:
            f.write("\n".join(lines))
    return path


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--which", default="final", choices=["final", "best"])
    args = parser.parse_args(argv)
    publish(args.run_dir, which=args.which)


if __name__ == "__main__":
    main()
