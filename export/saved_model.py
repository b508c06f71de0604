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
                   ``seed`` int64 ``()``                                      in [0, 1] (vectors: ``samples`` float32)
``sample``         ``num_samples`` int32 ``()``, ``temperature`` float32      as ``decode``
                   ``()``, ``noise_scale`` float32 ``()``, ``seed`` int64
``generate``       ``latent_noise`` float32 ``(batch, *latent)``,             as ``decode``
                   ``observation_noise`` float32 ``(batch, *obs)`` (NIF
                   priors only), ``temperature``, ``noise_scale``
=================  =========================================================  ==========================================

Batch sizes are dynamic. ``sample`` with seed ``s`` draws the same noise as
``model.sample(..., seed=s)`` (``layers.draw_noise``'s seed streams and Keras's
stateless TensorFlow sampler), and ``decode`` with seed ``s`` the same as
``model.decode(..., seed=s)``, so the exported model agrees with the Keras
model to float32 rounding. Image pixels outside [0, 255] or fractional make
the call fail with the model's message; wrong shapes and dtypes are refused
by the signatures.
"""

import os
import shutil
import tempfile

import keras
import tensorflow as tf

from layers.seeds import derive_seed

SIGNATURES = ("log_prob", "bits_per_dim", "encode", "decode", "sample", "generate")


def stateless_normal(shape, seed):
    """Standard-normal noise from an int seed tensor, exactly as ``keras.random.normal(seed=int)`` on TensorFlow."""
    seed = tf.cast(tf.math.floormod(tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)]), tf.int32.max - 1), tf.int32)
    return tf.random.stateless_normal(shape, seed=seed, dtype=tf.float32)


def _outputs(model, data):
    if model.is_image_model:
        return {"images": data, "images_float": tf.cast(data, tf.float32) / 255.0}
    return {"samples": data}


def _prepare_directory(path, overwrite):
    path = os.path.abspath(path)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)) and not overwrite:
        raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True to replace it.")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def _commit_path(staging, path):
    """Moves a finished file or directory into place, replacing what was there."""
    if os.path.exists(path):
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    os.replace(staging, path)


def saved_model(model, path, overwrite=False):
    """Exports a ``zoo`` model as a SavedModel with the signatures in the module docstring.

    Args:
        model: a built ``zoo.FlowModel`` (any family).
        path: target directory.
        overwrite: replace an existing non-empty directory.

    Returns:
        ``path``. The directory is written elsewhere and moved into place at
        the end, so a failure leaves nothing half-written.
    """
    path = _prepare_directory(path, overwrite)
    example = tuple(model.example_shape)
    x_dtype = tf.uint8 if model.is_image_model else tf.float32
    latent_shape = tuple(model.prior.latent_shape)
    latent_noise_shape, observation_shape = model.noise_shapes
    x_spec = tf.TensorSpec((None,) + example, x_dtype, name="x")
    scalar = lambda dtype, name: tf.TensorSpec((), dtype, name=name)  # noqa: E731
    output = "uint8" if model.is_image_model else "float"

    def _data(z_to_data):
        return _outputs(model, z_to_data)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "log_prob", lambda x: {"log_prob": model.log_prob(x)}, input_signature=[x_spec])
    archive.add_endpoint(
        "bits_per_dim", lambda x: {"bits_per_dim": model.bits_per_dim(x)}, input_signature=[x_spec])
    archive.add_endpoint("encode", lambda x: {"latent": model.encode(x)}, input_signature=[x_spec])

    def decode(latent, noise_scale, seed):
        noise = None
        if observation_shape is not None:
            noise = stateless_normal(tf.concat([tf.shape(latent)[:1], observation_shape], 0), seed)
        return _data(model.decode(latent, noise_scale=noise_scale, noise=noise, output=output))

    archive.add_endpoint(
        "decode", decode,
        input_signature=[tf.TensorSpec((None,) + latent_shape, tf.float32, name="latent"),
                         scalar(tf.float32, "noise_scale"), scalar(tf.int64, "seed")])

    def sample(num_samples, temperature, noise_scale, seed):
        latent_noise = stateless_normal(tf.concat([[num_samples], latent_noise_shape], 0), derive_seed(seed, 0))
        observation_noise = None
        if observation_shape is not None:
            observation_noise = stateless_normal(tf.concat([[num_samples], observation_shape], 0), derive_seed(seed, 1))
        return _data(model.generate(latent_noise, observation_noise, temperature, noise_scale, output=output))

    archive.add_endpoint(
        "sample", sample,
        input_signature=[scalar(tf.int32, "num_samples"), scalar(tf.float32, "temperature"),
                         scalar(tf.float32, "noise_scale"), scalar(tf.int64, "seed")])

    noise_specs = [tf.TensorSpec((None,) + tuple(latent_noise_shape), tf.float32, name="latent_noise")]
    if observation_shape is not None:
        noise_specs.append(tf.TensorSpec((None,) + tuple(observation_shape), tf.float32, name="observation_noise"))
        generate = lambda latent_noise, observation_noise, temperature, noise_scale: _data(  # noqa: E731
            model.generate(latent_noise, observation_noise, temperature, noise_scale, output=output))
    else:
        generate = lambda latent_noise, temperature, noise_scale: _data(  # noqa: E731
            model.generate(latent_noise, None, temperature, noise_scale, output=output))
    archive.add_endpoint(
        "generate", generate,
        input_signature=noise_specs + [scalar(tf.float32, "temperature"), scalar(tf.float32, "noise_scale")])

    staging = tempfile.mkdtemp(prefix=".export-", dir=os.path.dirname(path))
    try:
        archive.write_out(staging, verbose=False)
        _commit_path(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path
