"""TFLite / LiteRT sampler graphs.

``tflite_sampler(model, path, batch_size)`` writes one LiteRT flatbuffer with
two signatures, both for a fixed batch size:

* ``generate(latent_noise, [observation_noise,] temperature, [noise_scale])``:
  images from given standard-normal noise (``observation_noise`` only for
  models with observation noise, which alone also take ``noise_scale``). Same computation as the SavedModel's ``generate``
  signature, so both agree on the same noise to float32 rounding.
* A class-conditional model (``model.num_classes``) takes ``labels`` int32
  ``(batch_size,)``, a class per sample, in both signatures (after the noise
  in ``generate``, first in ``sample``).
* ``sample(temperature, [noise_scale,] seed)``: draws the noise inside the graph
  from an int32 seed. LiteRT has no stateless random ops, so the noise comes
  from a counter-based Wichmann-Hill stream (three small multiplicative
  congruential generators whose per-element multipliers ``a^(i+1) mod m`` are
  precomputed constants: at run time one multiply-mod per generator, products
  below 2^31, then Box-Muller). Equal seeds give equal images; the stream is
  not Keras's Philox stream, so ``sample`` here does not reproduce
  ``model.sample(seed=...)`` (``generate`` on the same noise does).

Both output ``images`` (uint8) and ``images_float`` (float32 in [0, 1]) for image
models, ``samples`` (float32) for vector models. The 1x1 convolutions' inverses
are baked in as constants (``layers.conv1x1.frozen_inverses``): LiteRT has no
matrix-inverse op, and a sampler should not invert matrices at every call.
"""

import math
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from export.saved_model import _outputs, require_tensorflow_backend
from zoo import files
from layers.conv1x1 import frozen_inverses

_MODULI = (30269, 30307, 30323)
_MULTIPLIERS = (171, 172, 170)


def stream_multipliers(count):
    """``a_k^(i+1) mod m_k`` for ``i < count`` and the three generators, int32 ``(3, count)``."""
    table = np.empty((3, count), dtype=np.int64)
    for k, (a, m) in enumerate(zip(_MULTIPLIERS, _MODULI)):
        value = 1
        for i in range(count):
            value = (value * a) % m
            table[k, i] = value
    return table.astype(np.int32)


def counter_normal(seed, shape, multipliers=None):
    """Standard-normal noise of static ``shape`` from an int32 ``seed`` with LiteRT builtin ops.

    Args:
        seed: int32 scalar tensor.
        shape: static shape (Python ints).
        multipliers: ``stream_multipliers(2 * prod(shape))`` (computed if None).

    Returns:
        float32 tensor of ``shape``.
    """
    count = math.prod(shape)
    if multipliers is None:
        multipliers = stream_multipliers(2 * count)
    seed = tf.cast(seed, tf.int32)
    uniform = tf.zeros((2 * count,), tf.float32)
    for k, m in enumerate(_MODULI):
        state = 1 + tf.math.floormod(tf.math.floormod(seed, m - 1) * (k + 2) + 7 * (k + 1), m - 1)
        values = tf.math.floormod(tf.constant(multipliers[k]) * state, m)
        uniform = uniform + tf.cast(values, tf.float32) / float(m)
    uniform = uniform - tf.floor(uniform)
    u1, u2 = 1.0 - uniform[:count], uniform[count:]  # u1 in (0, 1]
    normal = tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos(2.0 * math.pi * u2)
    return tf.reshape(normal, shape)


def _is_flatbuffer(path):
    """True for a LiteRT / TFLite flatbuffer (file identifier ``TFL3`` at bytes 4-8)."""
    with open(path, "rb") as f:
        return f.read(8)[4:8] == b"TFL3"


SIGNATURES = ("generate", "sample")
OUTPUTS = ({"images", "images_float"}, {"samples"})
"""What ``tflite_sampler`` writes: exactly these signatures, ``generate`` taking ``latent_noise``, ``sample``
taking ``seed``, both returning one of these output sets."""


def _interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the optional LiteRT package; TensorFlow's own (deprecated) interpreter reads the same file
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_path=path)


def is_project_sampler(path):
    """True for a LiteRT sampler this project wrote: a flatbuffer with exactly ``tflite_sampler``'s signatures.

    A user's own ``.tflite`` (other signature names, inputs or outputs, or none) is not replaced.
    """
    if not _is_flatbuffer(path):
        return False
    try:
        signatures = _interpreter(path).get_signature_list()
    except Exception:  # noqa: BLE001 -- any file the interpreter cannot open is not one this project wrote
        return False
    if set(signatures) != set(SIGNATURES):
        return False
    generate, sample = signatures["generate"], signatures["sample"]
    outputs = set(generate.get("outputs", ()))
    return ("latent_noise" in generate.get("inputs", ()) and "seed" in sample.get("inputs", ())
            and outputs == set(sample.get("outputs", ())) and outputs in OUTPUTS)


NOT_OURS = (f"flow-zoo's samplers are LiteRT flatbuffers with exactly the signatures {' and '.join(SIGNATURES)}, "
            "generate taking latent_noise and sample taking seed")


def tflite_sampler(model, path, batch_size=16, overwrite=False):
    """Writes a LiteRT sampler flatbuffer for ``model`` (see the module docstring).

    Args:
        model: a built ``zoo.FlowModel``.
        path: target ``.tflite`` file.
        batch_size: number of samples per call (fixed in the graph).
        overwrite: replace an existing sampler this project wrote (``is_project_sampler``); any
            other existing file is refused, with or without it.

    Returns:
        dict with ``path``, ``bytes`` (file size) and ``signatures``.
    """
    require_tensorflow_backend("export.tflite_sampler")
    conditional = model.num_classes is not None
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise FileExistsError(f"{path} is a directory; give the path of the .tflite file to write.")
    if os.path.isfile(path) and not is_project_sampler(path):
        raise FileExistsError(f"{path} is not a LiteRT sampler this project wrote ({NOT_OURS}); refusing to replace "
                              "it even with overwrite=True. Move it away, or choose another path.")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an int >= 1; received {batch_size!r}.")
    latent_shape, observation_shape = model.noise_shapes
    latent_full = (batch_size,) + tuple(latent_shape)
    observation_full = None if observation_shape is None else (batch_size,) + tuple(observation_shape)
    output = model.default_output
    scalar = lambda dtype, name: tf.TensorSpec((), dtype, name=name)  # noqa: E731

    latent_multipliers = stream_multipliers(2 * math.prod(latent_full))
    observation_multipliers = None if observation_full is None else stream_multipliers(2 * math.prod(observation_full))

    def run(latent_noise, observation_noise, temperature, noise_scale=None, labels=None):
        return _outputs(model, model.generate(latent_noise, observation_noise, temperature, noise_scale, output=output,
                                              labels=labels))

    labels_spec = tf.TensorSpec((batch_size,), tf.int32, name="labels")

    archive = keras.export.ExportArchive()
    archive.track(model)
    with frozen_inverses(model):
        latent_spec = tf.TensorSpec(latent_full, tf.float32, name="latent_noise")
        if conditional and observation_full is None:  # a label per sample (class-conditional models)
            archive.add_endpoint(
                "generate", lambda latent_noise, labels, temperature: run(latent_noise, None, temperature, None, labels),
                input_signature=[latent_spec, labels_spec, scalar(tf.float32, "temperature")])
            archive.add_endpoint(
                "sample", lambda labels, temperature, seed: run(counter_normal(seed, latent_full, latent_multipliers),
                                                                None, temperature, None, labels),
                input_signature=[labels_spec, scalar(tf.float32, "temperature"), scalar(tf.int32, "seed")])
        elif conditional:
            knobs = [scalar(tf.float32, "temperature"), scalar(tf.float32, "noise_scale")]
            archive.add_endpoint(
                "generate", lambda latent_noise, observation_noise, labels, temperature, noise_scale: run(
                    latent_noise, observation_noise, temperature, noise_scale, labels),
                input_signature=[latent_spec, tf.TensorSpec(observation_full, tf.float32, name="observation_noise"),
                                 labels_spec] + knobs)

            def sample_class(labels, temperature, noise_scale, seed):
                latent_noise = counter_normal(seed, latent_full, latent_multipliers)
                observation_noise = counter_normal(seed + 1, observation_full, observation_multipliers)
                return run(latent_noise, observation_noise, temperature, noise_scale, labels)

            archive.add_endpoint("sample", sample_class, input_signature=[labels_spec] + knobs + [
                scalar(tf.int32, "seed")])
        elif observation_full is None:  # no observation noise: no noise_scale to take (see export.saved_model)
            archive.add_endpoint("generate", lambda latent_noise, temperature: run(latent_noise, None, temperature),
                                 input_signature=[latent_spec, scalar(tf.float32, "temperature")])
            archive.add_endpoint(
                "sample", lambda temperature, seed: run(counter_normal(seed, latent_full, latent_multipliers), None,
                                                        temperature),
                input_signature=[scalar(tf.float32, "temperature"), scalar(tf.int32, "seed")])
        else:
            knobs = [scalar(tf.float32, "temperature"), scalar(tf.float32, "noise_scale")]
            archive.add_endpoint("generate", run, input_signature=[
                latent_spec, tf.TensorSpec(observation_full, tf.float32, name="observation_noise")] + knobs)

            def sample(temperature, noise_scale, seed):
                latent_noise = counter_normal(seed, latent_full, latent_multipliers)
                observation_noise = counter_normal(seed + 1, observation_full, observation_multipliers)
                return run(latent_noise, observation_noise, temperature, noise_scale)

            archive.add_endpoint("sample", sample, input_signature=knobs + [scalar(tf.int32, "seed")])

    with tempfile.TemporaryDirectory(prefix="flow-zoo-tflite-") as scratch:
        archive.write_out(os.path.join(scratch, "saved_model"), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            os.path.join(scratch, "saved_model"), signature_keys=list(SIGNATURES))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
    with files.staged_file(path, overwrite=overwrite, recognize=is_project_sampler,
                           how=NOT_OURS) as staged:
        with open(staged, "wb") as f:
            f.write(flatbuffer)
    return {"path": path, "bytes": os.path.getsize(path), "signatures": list(SIGNATURES)}
