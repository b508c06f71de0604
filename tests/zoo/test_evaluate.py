"""Evaluation metrics, pictures and the zoo.evaluate command."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import zoo
from layers.testing import perturb_weights
from zoo import evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def digits():
    return zoo.datasets.load("digits", "test")


@pytest.fixture(scope="module")
def nif(digits):
    model = zoo.get("nif_digits_16", steps_per_level=1, hidden_channels=8)
    model.initialize(digits[0])
    perturb_weights(model, np.random.default_rng(0), scale=0.02)
    return model


def test_reconstruction_error_of_a_bijective_flow_is_zero(digits):
    images = digits[0]
    model = zoo.get("nf_digits", steps_per_level=1, hidden_channels=8)
    model.initialize(images)
    perturb_weights(model, np.random.default_rng(3), scale=0.05)
    result = zoo.evaluation.reconstruction_error(model, images)
    assert result["value"] == 0.0 and result["units"].startswith("squared L2") and result["n_bits"] == 5


def test_nif_reconstructions_lose_information_and_metrics_carry_provenance(nif, digits):
    images = digits[0]
    recon = zoo.evaluation.reconstruction_error(nif, images)
    assert recon["value"] > 0  # a 16-d manifold cannot hold every 64-pixel image
    bpd = zoo.evaluation.bits_per_dim(nif, images)
    assert bpd["n_bits"] == 5 and bpd["examples"] == len(images) and np.isfinite(bpd["value"])
    rows = zoo.evaluation.sweep(lambda t, s: t + 10 * s, noise_scales=(0.0, 1.0), temperatures=(0.5, 1.0))
    assert [r["value"] for r in rows] == [0.5, 10.5, 1.0, 11.0]


def test_pictures(nif, digits, tmp_path):
    images, labels = digits
    grid = np.asarray(Image.open(zoo.evaluation.pictures.sample_grid(nif, str(tmp_path / "g.png"), temperatures=(0.5, 1.0),
                                                      noise_scales=(0.0, 0.5, 1.0))))
    scale = 64 // 8
    assert grid.shape == (2 * (8 * scale + 2) + 2, 3 * (8 * scale + 2) + 2)
    flow = zoo.get("nf_digits", steps_per_level=1, hidden_channels=8)
    flow.initialize(images)
    one_column = np.asarray(Image.open(zoo.evaluation.pictures.sample_grid(flow, str(tmp_path / "f.png"), temperatures=(0.5, 1.0))))
    assert one_column.shape == (2 * (8 * scale + 2) + 2, 1 * (8 * scale + 2) + 2)  # no noise scale: one column
    strip = np.asarray(Image.open(zoo.evaluation.pictures.reconstruction_strip(nif, images[:5], str(tmp_path / "r.png"))))
    assert strip.shape == (2 * (8 * scale + 2) + 2, 5 * (8 * scale + 2) + 2)
    # The top row of the strip shows the originals, pixel for pixel (upscaled).
    np.testing.assert_array_equal(strip[2:2 + 8 * scale:scale, 2:2 + 8 * scale:scale], images[0, ..., 0])
    assert os.path.getsize(zoo.evaluation.pictures.interpolation(nif, images[0], images[1], str(tmp_path / "i.png"))) > 0
    assert os.path.getsize(zoo.evaluation.pictures.umap_embedding(nif, images[:200], labels[:200], str(tmp_path / "u.png"))) > 0
    rows = zoo.evaluation.sweep(lambda t, s: s * t, noise_scales=(0.0, 1.0), temperatures=(0.5, 1.0))
    assert os.path.getsize(zoo.evaluation.pictures.metric_curve(rows, str(tmp_path / "c.png"), "m")) > 0
    spiral = zoo.manifolds.thin_spiral(500)
    vector = zoo.get("nif_spiral_1", num_couplings=2, hidden_units=8)
    assert os.path.getsize(zoo.evaluation.pictures.density_grid(vector, spiral, str(tmp_path / "d.png"), n=50)) > 0


def test_classifier_frechet_distance_is_labelled_and_separates_real_from_noise(digits):
    images, labels = digits

    class NoiseModel:
        def every_class(self, n):  # unconditional (zoo.GenerativeModel.every_class)
            return None

        def sample(self, n, temperature=1.0, noise_scale=1.0, seed=0, labels=None):
            return np.random.default_rng(seed).integers(0, 256, (n, 8, 8, 1)).astype(np.uint8)

    class RealModel(NoiseModel):
        def sample(self, n, temperature=1.0, noise_scale=1.0, seed=0, labels=None):
            return images[np.random.default_rng(seed + 1).permutation(len(images))[:n]]

    noise = zoo.evaluation.frechet_distance_classifier(NoiseModel(), images, labels, 200)
    real = zoo.evaluation.frechet_distance_classifier(RealModel(), images, labels, 200)
    assert "not FID" in noise["label"] and real["value"] < noise["value"]


def test_evaluate_writes_a_report_and_the_command_line_runs(nif, tmp_path):
    report = zoo.evaluation.evaluate(nif, "digits", str(tmp_path / "e"), metrics=("bpd", "recon"), progress=False)
    with open(tmp_path / "e" / "report.json") as f:
        assert json.load(f)["metrics"]["bits_per_dim"]["n_bits"] == 5
    for picture in report["pictures"].values():
        assert os.path.getsize(picture) > 0
    with pytest.raises(ValueError, match=r"Unknown metric\(s\) \['fdi'\]"):
        zoo.evaluation.evaluate(nif, "digits", str(tmp_path / "x"), metrics=("fdi",), progress=False)
    path = str(tmp_path / "m.keras")
    nif.save(path)
    result = subprocess.run([sys.executable, "-m", "zoo.evaluate", "--model", path, "--dataset", "digits",
                             "--metrics", "bpd", "--out", str(tmp_path / "cli")], capture_output=True, text=True,
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.exists(tmp_path / "cli" / "report.json") and "bits_per_dim" in result.stdout


def test_evaluate_on_a_synthetic_manifold(tmp_path):
    model = zoo.get("nif_spiral_1", num_couplings=2, hidden_units=8)
    model.initialize(zoo.manifolds.thin_spiral(256).data)
    report = zoo.evaluation.evaluate(model, "spiral", str(tmp_path), metrics=("bpd", "id"), max_examples=500,
                               num_samples=300, progress=False)
    assert report["metrics"]["bits_per_dim"]["n_bits"] is None
    assert abs(report["metrics"]["intrinsic_dimension"]["data"] - 1) < 0.3
    assert {"density", "samples"} <= set(report["pictures"])


def test_evaluate_replaces_its_own_files_and_refuses_a_users(tmp_path):
    model = zoo.get("nif_spiral_1", num_couplings=2, hidden_units=8)
    model.initialize(zoo.manifolds.thin_spiral(256).data)

    def run():
        return zoo.evaluation.evaluate(model, "spiral", str(tmp_path), metrics=("bpd",), max_examples=100,
                                       num_samples=100, progress=False)

    report = run()
    assert all(zoo.evaluation.pictures.is_project_png(p) for p in report["pictures"].values())
    run()  # a rerun into the same folder replaces the project's own report and pictures
    mine = Image.new("L", (4, 4))
    for name in ("samples.png", "report.json"):
        original = tmp_path / f"{name}.ours"
        os.replace(tmp_path / name, original)
        if name.endswith(".png"):
            mine.save(tmp_path / name)  # a real PNG, but not one flow-zoo wrote
        else:
            (tmp_path / name).write_text('{"my": "previous report"}')
        before = (tmp_path / name).read_bytes()
        with pytest.raises(FileExistsError, match=f"{name} is not a file this project wrote .*Move it away"):
            run()
        assert (tmp_path / name).read_bytes() == before
        os.replace(original, tmp_path / name)
    photo = tmp_path / "photo.png"
    mine.save(photo)
    with pytest.raises(FileExistsError, match="flow_zoo"):
        zoo.evaluation.pictures.save_png(np.zeros((2, 2), np.uint8), str(photo))
    with pytest.raises(FileExistsError, match="flow_zoo"):
        zoo.evaluation.pictures.metric_curve([{"temperature": 1.0, "noise_scale": 0.0, "value": 1.0}], str(photo), "m")
    assert np.asarray(Image.open(photo)).shape == (4, 4)


def test_fid_sweeps_noise_scale_for_noisy_injective_models(nif, digits, monkeypatch):
    from zoo.evaluation import fid_inception

    # The Inception port has its own tests (test_fid_inception.py); here a cheap stand-in feature map.
    monkeypatch.setattr(fid_inception, "load_inception_for_fid", lambda *a, **k: "stand-in")
    monkeypatch.setattr(fid_inception, "inception_features",
                        lambda model, x, batch_size=50, value_range=None:
                        np.asarray(x, np.float64).reshape(len(x), -1)[:, ::4])
    images = digits[0]
    result = zoo.evaluation.fid(nif, images, 100, noise_scales=(0.0, 1.0))
    assert [r["noise_scale"] for r in result["sweep"]] == [0.0, 1.0]
    assert result["value"] == result["sweep"][1]["value"] and "2015 Inception" in result["feature_extractor"]
    flow = zoo.get("nf_digits", steps_per_level=1, hidden_channels=8)
    flow.initialize(images)
    assert len(zoo.evaluation.fid(flow, images, 100)["sweep"]) == 1  # no observation noise: one point


def test_fid_shows_float_image_models_to_the_inception_as_pixels(monkeypatch):
    from zoo.evaluation import fid_inception

    seen = []

    class StandIn:  # records what the network is fed; features: the first pixels, repeated
        def predict_on_batch(self, batch):
            seen.append(np.asarray(batch))
            flat = np.asarray(batch, np.float64).reshape(len(batch), -1)[:, :16]
            return np.tile(flat, (1, fid_inception.FEATURE_DIM // 16))

    monkeypatch.setattr(fid_inception, "load_inception_for_fid", lambda *a, **k: StandIn())
    model = zoo.get("nf_spread_fading_square")  # float images in [0, 1]
    pixels = zoo.manifolds.GENERATORS["fading_square"](64).data
    images = model.as_model_input(pixels)
    assert images.dtype == np.float32 and images.max() <= 1.0
    zoo.evaluation.fid(model, images, 32)
    # The real images reach the network as the pixels they came from (they were fed as [0, 1] before: FID could not
    # tell the data from black images); the samples are on the same scale.
    np.testing.assert_allclose(seen[0][..., 0], pixels[:32].reshape(seen[0].shape[:3]).astype(np.float32), atol=1e-3)
    assert seen[1].max() > 50
    vectors = zoo.get("nf_spiral")
    with pytest.raises(ValueError, match="FID compares images"):
        zoo.evaluation.fid(vectors, np.zeros((4, 2), np.float32), 4)
