"""SavedModel export: reload without the project, agreement with Keras, signatures, bad input, safe writes."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import export
import zoo
from layers.testing import perturb_weights

HERE = os.path.dirname(os.path.abspath(__file__))

MODELS = {
    "nf_digits": dict(steps_per_level=1, hidden_channels=8),
    "nif_digits_16": dict(steps_per_level=1, hidden_channels=8),
    "deep_nif_celeba_128": dict(image_shape=(8, 8, 1), num_levels=2, steps_per_level=1, hidden_channels=8,
                                latent_dim=4, latent_flow_couplings=2, latent_flow_hidden_units=8, n_bits=5),
    "nif_sin_1": dict(num_couplings=2, hidden_units=8),
}


def _data(model):
    if model.is_image_model:
        return zoo.load_digits_images()[0][:7]
    return np.random.default_rng(0).standard_normal((7, 2)).astype("float32")


def _trained(name):
    model = zoo.get(name, **MODELS[name])
    data = _data(model)
    model.initialize(data)
    perturb_weights(model, np.random.default_rng(1), scale=0.02)  # away from identity initializations
    return model, data


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_model_serves_without_project_code_and_agrees_with_keras(name, tmp_path):
    model, x = _trained(name)
    path = export.saved_model(model, str(tmp_path / "sm"))
    latent = np.asarray(model.encode(x))
    rng = np.random.default_rng(2)
    latent_shape, observation_shape = model.noise_shapes
    inputs = {"x": x, "latent": latent, "latent_noise": rng.standard_normal((4,) + tuple(latent_shape)).astype("float32")}
    if observation_shape is not None:
        inputs["observation_noise"] = rng.standard_normal((4,) + tuple(observation_shape)).astype("float32")
    np.savez(tmp_path / "in.npz", **inputs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, os.path.join(HERE, "serve_without_project.py"), path,
                             str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
                            capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    served = dict(np.load(tmp_path / "out.npz"))

    out = "images" if model.is_image_model else "samples"
    np.testing.assert_allclose(served["log_prob/log_prob"], np.asarray(model.log_prob(x)), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(served["bits_per_dim/bits_per_dim"], np.asarray(model.bits_per_dim(x)), rtol=1e-5)
    np.testing.assert_allclose(served["encode/latent"], latent, rtol=1e-4, atol=1e-4)
    noisy = model.has_observation_noise  # only then do the signatures take noise_scale (and decode a seed)
    knob = {"noise_scale": 0.5} if noisy else {}
    expected = {
        "decode": model.decode(latent, **(dict(knob, seed=11) if noisy else {})),
        "sample": model.sample(5, temperature=0.8, seed=3, **knob),
        "generate": model.generate(inputs["latent_noise"], inputs.get("observation_noise"), 0.8, **knob),
    }
    for signature, value in expected.items():
        value = np.asarray(value)
        if model.is_image_model:
            # uint8 pixels: equal except where float32 rounding moves a value across a level boundary.
            assert np.mean(served[f"{signature}/{out}"] != value) <= 0.01, signature
            np.testing.assert_allclose(served[f"{signature}/images_float"], value / 255.0, atol=1 / 255 + 1e-6)
        else:
            np.testing.assert_allclose(served[f"{signature}/{out}"], value, rtol=1e-4, atol=1e-4, err_msg=signature)


def test_dynamic_batch_and_signature_dtypes(tmp_path):
    model, x = _trained("nif_digits_16")
    loaded = tf.saved_model.load(export.saved_model(model, str(tmp_path / "sm")))
    for batch in (1, 3, 7):
        assert loaded.signatures["log_prob"](x=tf.constant(x[:batch]))["log_prob"].shape == (batch,)
    outputs = loaded.signatures["sample"](num_samples=tf.constant(2), temperature=tf.constant(1.0),
                                          noise_scale=tf.constant(0.0), seed=tf.constant(0, tf.int64))
    assert outputs["images"].dtype == tf.uint8 and outputs["images_float"].dtype == tf.float32
    assert set(export.SIGNATURES) <= set(loaded.signatures)


def test_signatures_refuse_bad_input(tmp_path):
    model, x = _trained("nif_digits_16")
    loaded = tf.saved_model.load(export.saved_model(model, str(tmp_path / "sm")))
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        loaded.signatures["log_prob"](x=tf.constant(x.astype("float32")))  # wrong dtype
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)):
        loaded.signatures["log_prob"](x=tf.constant(x[..., 0]))  # wrong rank
    vector, _ = _trained("nif_sin_1")
    served = tf.saved_model.load(export.saved_model(vector, str(tmp_path / "vec")))
    bad = np.array([[0.0, np.nan]], "float32")
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite"):
        served.signatures["log_prob"](x=tf.constant(bad))


def test_existing_directory_is_refused_and_failures_leave_nothing(tmp_path, monkeypatch):
    model, _ = _trained("nf_digits")
    target = tmp_path / "sm"
    target.mkdir()
    (target / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty; pass overwrite=True"):
        export.saved_model(model, str(target))
    assert (target / "keep.txt").read_text() == "user data"

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    # ExportArchive() returns an instance of the backend's archive class: patch that class.
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", broken)
    with pytest.raises(OSError, match="disk full"):
        export.saved_model(model, str(tmp_path / "new"))
    assert sorted(os.listdir(tmp_path)) == ["sm"]
    # overwrite=True replaces only an export of this project: a user's folder is refused, whatever the flag.
    with pytest.raises(FileExistsError, match="flow-zoo did not write"):
        export.saved_model(model, str(target), overwrite=True)
    assert (target / "keep.txt").read_text() == "user data"
    monkeypatch.undo()
    previous = export.saved_model(model, str(tmp_path / "ours"))
    before = sorted(os.listdir(previous))
    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", broken)
    with pytest.raises(OSError, match="disk full"):
        export.saved_model(model, previous, overwrite=True)
    assert sorted(os.listdir(previous)) == before  # the old export survives a failed overwrite
    assert sorted(os.listdir(tmp_path)) == ["ours", "sm"]


def test_versioned_export_runs_under_saved_model_cli(tmp_path):
    """TensorFlow Serving's layout (base/version) and TensorFlow's own saved_model_cli, in subprocesses."""
    model, x = _trained("nf_digits")
    base = tmp_path / "served_model"
    (base / "7").mkdir(parents=True)
    (base / "7" / "notes.txt").write_text("another version, not ours to touch")
    path = export.saved_model(model, str(base), version=1)
    assert path == str(base / "1") and (base / "7" / "notes.txt").exists()
    with pytest.raises(ValueError, match="`version` must be an int >= 1"):
        export.saved_model(model, str(base), version=0)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-3000:]
    for signature in export.SIGNATURES:
        assert f"signature_def['{signature}']" in shown.stdout
    np.save(tmp_path / "x.npy", x)
    ran = subprocess.run([cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "log_prob",
                          "--inputs", f"x={tmp_path / 'x.npy'}", "--outdir", str(tmp_path / "cli_out")],
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "cli_out" / "log_prob.npy"), np.asarray(model.log_prob(x)),
                               rtol=1e-5, atol=1e-4)
    scalars = {"num_samples": np.int32(3), "temperature": np.float32(0.7), "seed": np.int64(1)}
    for key, value in scalars.items():
        np.save(tmp_path / f"{key}.npy", np.asarray(value))
    sampled = subprocess.run([cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", "sample",
                              "--inputs", ";".join(f"{key}={tmp_path / (key + '.npy')}" for key in scalars),
                              "--outdir", str(tmp_path / "cli_sample")], capture_output=True, text=True, timeout=300)
    assert sampled.returncode == 0, sampled.stderr[-3000:]
    assert np.load(tmp_path / "cli_sample" / "images.npy").shape == (3, 8, 8, 1)


def test_serving_signatures_refuse_bad_scalars_with_readable_messages(tmp_path):
    model, _ = _trained("nif_digits_16")
    loaded = tf.saved_model.load(export.saved_model(model, str(tmp_path / "sm")))
    sample = loaded.signatures["sample"]

    def call(num_samples=2, temperature=1.0, noise_scale=0.5):
        return sample(num_samples=tf.constant(num_samples), temperature=tf.constant(temperature),
                      noise_scale=tf.constant(noise_scale), seed=tf.constant(0, tf.int64))

    assert call()["images"].shape == (2, 8, 8, 1)
    for kwargs, message in ((dict(num_samples=0), "num_samples must be >= 1"),
                            (dict(temperature=-1.0), "temperature must be finite and >= 0"),
                            (dict(temperature=float("nan")), "temperature must be finite and >= 0"),
                            (dict(noise_scale=-0.5), "noise_scale must be finite and >= 0")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            call(**kwargs)


def test_export_under_jax_says_to_use_the_tensorflow_backend(tmp_path):
    script = ("import keras, export, zoo\n"
              "model = zoo.get('nf_digits', steps_per_level=1, hidden_channels=8)\n"
              "try:\n    export.saved_model(model, 'sm')\nexcept RuntimeError as e:\n    print('REFUSED', e)\n")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=os.path.dirname(os.path.dirname(HERE)))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=str(tmp_path), env=env,
                            timeout=300)
    assert "REFUSED export.saved_model needs the TensorFlow backend" in result.stdout, result.stderr[-3000:]
    assert "KERAS_BACKEND=tensorflow" in result.stdout and not (tmp_path / "sm").exists()
