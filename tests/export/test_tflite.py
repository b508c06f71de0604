"""LiteRT sampler: agreement with the SavedModel on the same noise, seeded sampling, the noise stream, the CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from scipy import stats

import export
import zoo
from layers.testing import perturb_weights

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = {
    "nif_digits_16": dict(steps_per_level=1, hidden_channels=8),
    "nf_digits": dict(steps_per_level=1, hidden_channels=8),
    "nif_sin_1": dict(num_couplings=2, hidden_units=8),
}
BATCH = 3


def _model(name):
    model = zoo.get(name, **SMALL[name])
    data = zoo.load_digits_images()[0][:64] if model.is_image_model else \
        np.random.default_rng(0).standard_normal((64, 2)).astype("float32")
    model.initialize(data)
    perturb_weights(model, np.random.default_rng(1), scale=0.02)
    return model


@pytest.mark.parametrize("name", sorted(SMALL))
def test_litert_generate_matches_the_saved_model_on_the_same_noise(name, tmp_path):
    model = _model(name)
    info = export.tflite_sampler(model, str(tmp_path / "s.tflite"), batch_size=BATCH)
    assert info["bytes"] == os.path.getsize(info["path"]) > 0
    served = tf.saved_model.load(export.saved_model(model, str(tmp_path / "sm")))
    rng = np.random.default_rng(4)
    latent_shape, observation_shape = model.noise_shapes
    noise = {"latent_noise": rng.standard_normal((BATCH,) + tuple(latent_shape)).astype("float32")}
    if observation_shape is not None:
        noise["observation_noise"] = rng.standard_normal((BATCH,) + tuple(observation_shape)).astype("float32")
    knobs = {"temperature": np.float32(0.7)}
    if model.has_observation_noise:  # only these samplers take a noise scale
        knobs["noise_scale"] = np.float32(0.5)
    lite = Interpreter(model_path=info["path"]).get_signature_runner("generate")(**noise, **knobs)
    reference = served.signatures["generate"](**{k: tf.constant(v) for k, v in {**noise, **knobs}.items()})
    key = "images_float" if model.is_image_model else "samples"
    np.testing.assert_allclose(lite[key], reference[key].numpy(), rtol=1e-4, atol=1e-4 if key == "samples" else 1 / 255 + 1e-6)
    if model.is_image_model:
        assert np.mean(lite["images"] != reference["images"].numpy()) <= 0.01


def test_litert_seeded_sampling_is_reproducible_and_matches_its_tf_graph(tmp_path):
    model = _model("nif_digits_16")
    info = export.tflite_sampler(model, str(tmp_path / "s.tflite"), batch_size=BATCH)
    runner = Interpreter(model_path=info["path"]).get_signature_runner("sample")
    knobs = {"temperature": np.float32(0.8), "noise_scale": np.float32(1.0)}
    a = runner(seed=np.int32(5), **knobs)["images_float"]
    np.testing.assert_array_equal(runner(seed=np.int32(5), **knobs)["images_float"], a)
    assert not np.array_equal(runner(seed=np.int32(6), **knobs)["images_float"], a)
    latent_shape, observation_shape = model.noise_shapes
    latent = export.counter_normal(tf.constant(5), (BATCH,) + tuple(latent_shape))
    observation = export.counter_normal(tf.constant(6), (BATCH,) + tuple(observation_shape))
    expected = np.asarray(model.generate(latent, observation, 0.8, 1.0, output="float"))
    np.testing.assert_allclose(a, expected, atol=1 / 255 + 1e-6)
    assert np.mean(np.abs(a - expected) > 1e-6) <= 0.01


def test_counter_normal_is_standard_normal_and_seeded():
    draws = export.counter_normal(tf.constant(12345), (100000,)).numpy()
    assert abs(draws.mean()) < 0.02 and abs(draws.std() - 1.0) < 0.02
    assert stats.kstest(draws, "norm").pvalue > 1e-3
    other = export.counter_normal(tf.constant(12346), (100000,)).numpy()
    assert abs(np.corrcoef(draws, other)[0, 1]) < 0.02
    np.testing.assert_array_equal(export.counter_normal(tf.constant(12345), (100000,)).numpy(), draws)


def test_tflite_refuses_existing_file_and_bad_batch(tmp_path):
    model = _model("nf_digits")
    path = tmp_path / "s.tflite"
    path.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export.tflite_sampler(model, str(path))
    assert path.read_bytes() == b"keep"
    with pytest.raises(ValueError, match="batch_size"):
        export.tflite_sampler(model, str(tmp_path / "t.tflite"), batch_size=0)


def test_overwrite_replaces_only_a_sampler_this_project_wrote(tmp_path):
    model = _model("nf_digits")
    # A user's own LiteRT model (a trivial function, no project signatures): refused even with overwrite=True.
    double = tf.function(lambda x: {"y": 2.0 * x}, input_signature=[tf.TensorSpec((2,), tf.float32, name="x")])
    theirs = tf.lite.TFLiteConverter.from_concrete_functions([double.get_concrete_function()], double).convert()
    path = tmp_path / "s.tflite"
    path.write_bytes(theirs)
    with pytest.raises(FileExistsError, match="is not a LiteRT sampler this project wrote .*Move it away"):
        export.tflite_sampler(model, str(path), batch_size=2, overwrite=True)
    assert path.read_bytes() == theirs
    ours = tmp_path / "ours.tflite"
    export.tflite_sampler(model, str(ours), batch_size=2)
    before = ours.read_bytes()
    export.tflite_sampler(model, str(ours), batch_size=1, overwrite=True)  # its own file: replaced
    assert ours.read_bytes() != before
    assert Interpreter(model_path=str(ours)).get_signature_runner("sample")(
        temperature=np.float32(0.7), seed=np.int32(1))["images"].shape[0] == 1


def test_command_line_exports_both_formats(tmp_path):
    model = _model("nif_digits_16")
    preset = model.save_to_preset(str(tmp_path / "preset"))
    env = dict(os.environ, PYTHONPATH=ROOT)
    for fmt, out in (("saved_model", tmp_path / "sm"), ("tflite", tmp_path / "s.tflite")):
        result = subprocess.run([sys.executable, "-m", "export", "--model", preset, "--format", fmt, "--out", str(out),
                                 "--batch_size", "2"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert os.path.exists(out)
    assert "SavedModel with signatures log_prob" in subprocess.run(
        [sys.executable, "-m", "export", "--model", "nf_digits", "--out", str(tmp_path / "fresh")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600).stdout
    failed = subprocess.run([sys.executable, "-m", "export", "--model", "nif_celeb_128", "--out", str(tmp_path / "x")],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert failed.returncode != 0 and "Did you mean: nif_celeba_128" in failed.stderr
