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
