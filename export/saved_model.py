"""SavedModel export with named serving signatures.

``saved_model(model, path)`` writes a TensorFlow SavedModel that a serving
stack loads with TensorFlow alone (no project code):

=================  =========================================================  ==========================================
signature          inputs                                                     outputs
=================  =========================================================  ==========================================
``log_prob``       ``x``: uint8 ``(batch, H, W, C)`` (float32 for vectors)     ``log_prob`` float32 ``(batch,)`` (nats)
``bits_per_dim``   ``x``                                                      ``bits_per_dim`` float32 ``(batch,)``
``encode``         ``x``                                                      ``latent`` float32 ``(batch, *latent)``
``decode``         ``latent`` float32, ``noise_scale`` float32 ``()``,        ``images`` uint8, ``images_float`` float32
                   ``seed`` int64 ``()``                                      in [0, 1] (float models: ``samples``)
``sample``         ``num_samples`` int32 ``()``, ``temperature`` float32      as ``decode``
                   ``()``, ``noise_scale`` float32 ``()``, ``seed`` int64
``generate``       ``latent_noise`` float32 ``(batch, *latent)``,             as ``decode``
                   ``observation_noise`` float32 ``(batch, *obs)``,
                   ``temperature``, ``noise_scale``
``classify``       ``x`` (class-conditional models only)                      ``label`` int32 ``(batch,)``,
                                                                              ``log_posterior`` float32 ``(batch, K)``
=================  =========================================================  ==========================================

A class-conditional model (``model.num_classes``) adds ``labels`` int32
``(batch,)`` (one class index per example; ``sample``: per sample, so its
length is ``num_samples``) to ``log_prob``, ``bits_per_dim``, ``sample`` and
``generate``, and has the ``classify`` signature (the Bayes classifier with the
model's learned class prior). Labels out of range or of the wrong length make
the call fail with a message naming the problem.

``noise_scale``, ``observation_noise`` and ``decode``'s ``seed`` exist only for
models with observation noise (``model.has_observation_noise``: noisy injective
and spread priors); a model without has nothing for them to act on, so its
signatures leave them out rather than ignore them. Batch sizes are dynamic. ``sample`` with seed ``s`` draws the same noise as
``model.sample(..., seed=s)`` (``layers.draw_noise``'s seed streams and Keras's
stateless TensorFlow sampler), and ``decode`` with seed ``s`` the same as
``model.decode(..., seed=s)``, so the exported model agrees with the Keras
model to float32 rounding. Pixel models take uint8 (the signature's dtype);
float data with NaN or outside the model's ``value_range`` makes the call fail
with the model's message; wrong shapes and dtypes are refused by the
signatures.
"""

import os

import keras
import tensorflow as tf

from layers.seeds import derive_seed
from zoo import files

SIGNATURES = ("log_prob", "bits_per_dim", "encode", "decode", "sample", "generate")


def stateless_normal(shape, seed):
    """Standard-normal noise from an int seed tensor, exactly as ``keras.random.normal(seed=int)`` on TensorFlow."""
    seed = tf.cast(tf.math.floormod(tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)]), tf.int32.max - 1), tf.int32)
    return tf.random.stateless_normal(shape, seed=seed, dtype=tf.float32)


def _outputs(model, data):
    if model.data_kind == "pixels":
        return {"images": data, "images_float": tf.cast(data, tf.float32) / 255.0}
    return {"samples": data}


def require_tensorflow_backend(what):
    """Exports are TensorFlow graphs: under another Keras backend say how to get one, before anything fails."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"{what} needs the TensorFlow backend; Keras is running on {backend!r}. Run the export with "
            "KERAS_BACKEND=tensorflow (a model trained under JAX: `model.save('m.keras')`, then in a TensorFlow "
            "process `python -m export --model m.keras ...`)."
        )


def labels_for(labels, batch, what):
    """``labels`` gated on having one entry per example of ``batch`` (a serving-side check; the range is the model's)."""
    check = tf.debugging.assert_equal(tf.shape(labels)[0], tf.cast(batch, tf.int32),
                                      message=f"{what}: pass one label per example (labels must have length batch)")
    with tf.control_dependencies([check]):
        return tf.identity(labels)


def _checked_knobs(num_samples=None, temperature=None, noise_scale=None):
    """Serving-side checks of the scalar inputs, with messages a client can read (``InvalidArgumentError``)."""
    checks = []
    if num_samples is not None:
        checks.append(tf.debugging.assert_greater_equal(
            num_samples, tf.constant(1, num_samples.dtype), message="num_samples must be >= 1"))
    for value, name in ((temperature, "temperature"), (noise_scale, "noise_scale")):
        if value is not None:
            checks.append(tf.debugging.Assert(tf.logical_and(tf.math.is_finite(value), value >= 0.0),
                                              [f"{name} must be finite and >= 0; received", value]))
    return checks


def saved_model(model, path, overwrite=False, version=None):
    """Exports a ``zoo`` model as a SavedModel with the signatures in the module docstring.

    Args:
        model: a built ``zoo.GenerativeModel`` (any family).
        path: target directory; with ``version``, the base directory of a
            TensorFlow Serving model (``tensorflow_model_server
            --model_base_path=path``), and the export goes to ``path/<version>/``
            (other versions there are left alone).
        overwrite: replace an existing export of this project (any other
            non-empty directory is refused).
        version: None, or an int >= 1.

    Returns:
        The directory written (``path`` or ``path/<version>``). It is staged
        beside its target and renamed into place at the end (``zoo.files``),
        so a failure leaves nothing half-written.
    """
    require_tensorflow_backend("export.saved_model")
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"`version` must be an int >= 1 (TensorFlow Serving's version folders); "
                             f"received {version!r}.")
        path = os.path.join(path, str(version))
    path = os.path.abspath(path)
    facts = model.describe()  # the GenerativeModel interface: no probing of the model
    conditional = facts.get("num_classes") is not None
    example = tuple(facts["example_shape"])
    x_dtype = tf.uint8 if facts["input_dtype"] == "uint8" else tf.float32
    latent_shape = tuple(facts["latent_shape"])
    latent_noise_shape, observation_shape = (None if s is None else tuple(s) for s in facts["noise_shapes"])
    noisy = observation_shape is not None  # only models with observation noise take noise_scale (and decode seeds)
    x_spec = tf.TensorSpec((None,) + example, x_dtype, name="x")
    scalar = lambda dtype, name: tf.TensorSpec((), dtype, name=name)  # noqa: E731
    output = model.default_output

    labels_spec = tf.TensorSpec((None,), tf.int32, name="labels")

    archive = keras.export.ExportArchive()
    archive.track(model)
    if conditional:
        archive.add_endpoint(
            "log_prob", lambda x, labels: {"log_prob": model.log_prob(
                x, labels=labels_for(labels, tf.shape(x)[0], "log_prob"))}, input_signature=[x_spec, labels_spec])
        archive.add_endpoint(
            "bits_per_dim", lambda x, labels: {"bits_per_dim": model.bits_per_dim(
                x, labels=labels_for(labels, tf.shape(x)[0], "bits_per_dim"))}, input_signature=[x_spec, labels_spec])
        log_prior = tf.constant(model.class_log_prior, tf.float32)  # the learned p(y), fixed at export

        def classify(x):
            joint = tf.cast(model.class_log_likelihoods(x), tf.float32) + log_prior
            return {"label": tf.argmax(joint, axis=-1, output_type=tf.int32),
                    "log_posterior": joint - tf.reduce_logsumexp(joint, axis=-1, keepdims=True)}

        archive.add_endpoint("classify", classify, input_signature=[x_spec])
    else:
        archive.add_endpoint(
            "log_prob", lambda x: {"log_prob": model.log_prob(x)}, input_signature=[x_spec])
        archive.add_endpoint(
            "bits_per_dim", lambda x: {"bits_per_dim": model.bits_per_dim(x)}, input_signature=[x_spec])
    archive.add_endpoint("encode", lambda x: {"latent": model.encode(x)}, input_signature=[x_spec])

    latent_spec = tf.TensorSpec((None,) + latent_shape, tf.float32, name="latent")
    if noisy:
        def decode(latent, noise_scale, seed):
            with tf.control_dependencies(_checked_knobs(noise_scale=noise_scale)):
                noise = stateless_normal(tf.concat([tf.shape(latent)[:1], observation_shape], 0), seed)
                return _outputs(model, model.decode(latent, noise_scale=noise_scale, noise=noise, output=output))

        archive.add_endpoint("decode", decode, input_signature=[
            latent_spec, scalar(tf.float32, "noise_scale"), scalar(tf.int64, "seed")])
    else:
        archive.add_endpoint("decode", lambda latent: _outputs(model, model.decode(latent, output=output)),
                             input_signature=[latent_spec])

    def draw(num_samples, seed):
        with tf.control_dependencies(_checked_knobs(num_samples=num_samples)):
            num_samples = tf.identity(num_samples)
        latent_noise = stateless_normal(tf.concat([[num_samples], latent_noise_shape], 0), derive_seed(seed, 0))
        observation_noise = None
        if noisy:
            observation_noise = stateless_normal(tf.concat([[num_samples], observation_shape], 0), derive_seed(seed, 1))
        return latent_noise, observation_noise

    def run(latent_noise, observation_noise, temperature, noise_scale=None, labels=None):
        if labels is not None:
            labels = labels_for(labels, tf.shape(latent_noise)[0], "sample / generate")
        with tf.control_dependencies(_checked_knobs(temperature=temperature, noise_scale=noise_scale)):
            return _outputs(model, model.generate(latent_noise, observation_noise, temperature, noise_scale,
                                                  output=output, labels=labels))

    knobs = [scalar(tf.float32, "temperature")] + ([scalar(tf.float32, "noise_scale")] if noisy else [])
    latent_noise_spec = tf.TensorSpec((None,) + latent_noise_shape, tf.float32, name="latent_noise")
    if conditional and noisy:
        archive.add_endpoint(
            "sample", lambda num_samples, labels, temperature, noise_scale, seed: run(
                *draw(num_samples, seed), temperature, noise_scale, labels),
            input_signature=[scalar(tf.int32, "num_samples"), labels_spec] + knobs + [scalar(tf.int64, "seed")])
        archive.add_endpoint(
            "generate", lambda latent_noise, observation_noise, labels, temperature, noise_scale: run(
                latent_noise, observation_noise, temperature, noise_scale, labels),
            input_signature=[latent_noise_spec, tf.TensorSpec((None,) + observation_shape, tf.float32,
                                                              name="observation_noise"), labels_spec] + knobs)
    elif conditional:
        archive.add_endpoint(
            "sample", lambda num_samples, labels, temperature, seed: run(
                *draw(num_samples, seed), temperature, None, labels),
            input_signature=[scalar(tf.int32, "num_samples"), labels_spec] + knobs + [scalar(tf.int64, "seed")])
        archive.add_endpoint(
            "generate", lambda latent_noise, labels, temperature: run(latent_noise, None, temperature, None, labels),
            input_signature=[latent_noise_spec, labels_spec] + knobs)
    elif noisy:
        archive.add_endpoint(
            "sample", lambda num_samples, temperature, noise_scale, seed: run(
                *draw(num_samples, seed), temperature, noise_scale),
            input_signature=[scalar(tf.int32, "num_samples")] + knobs + [scalar(tf.int64, "seed")])
        archive.add_endpoint(
            "generate", run, input_signature=[
                tf.TensorSpec((None,) + latent_noise_shape, tf.float32, name="latent_noise"),
                tf.TensorSpec((None,) + observation_shape, tf.float32, name="observation_noise")] + knobs)
    else:
        archive.add_endpoint(
            "sample", lambda num_samples, temperature, seed: run(*draw(num_samples, seed), temperature),
            input_signature=[scalar(tf.int32, "num_samples")] + knobs + [scalar(tf.int64, "seed")])
        archive.add_endpoint(
            "generate", lambda latent_noise, temperature: run(latent_noise, None, temperature),
            input_signature=[tf.TensorSpec((None,) + latent_noise_shape, tf.float32, name="latent_noise")] + knobs)

    with files.staged_directory(path, "saved_model", overwrite=overwrite) as staging:
        archive.write_out(staging, verbose=False)
    return path
