"""The main job (zoo.demo) end to end on the shipped weights, with small counts."""

import json
import os

import numpy as np
import pytest
from PIL import Image

import zoo
from zoo import demo
from zoo.evaluation import model_metrics


def test_demo_fetches_measures_fine_tunes_samples_exports_and_serves(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = "demo"  # relative, as `make demo` passes it
    result = demo.run(out, test_examples=64, fine_tune_examples=128, temperatures=["0.7", "1.0"],
                      samples_per_row=3, seed=0)
    held = result["held_out"]
    assert held["test_images"] == 64 and result["n_bits"] == 3
    shipped = zoo.get("nif_fmnist_small_64", weights="default")
    test, _ = zoo.data.load("fmnist", "test")
    np.testing.assert_allclose(held["nif_bits_per_dim_shipped"],
                               model_metrics.bits_per_dim(shipped, test[:64])["value"], rtol=1e-5)
    assert held["nif_bits_per_dim_after_fine_tune"] != held["nif_bits_per_dim_shipped"]  # fit moved the weights
    assert abs(held["nif_bits_per_dim_after_fine_tune"] - held["nif_bits_per_dim_shipped"]) < 0.05  # not re-initialized
    grid = np.asarray(Image.open(result["samples"]))
    assert grid.ndim == 2 and grid.shape[0] > 6 * 28 * 3  # NIF s = 0 and s = 1, NF: 2 temperatures each
    assert result["sampling"]["rows"][0].startswith("NIF s=0") and result["sampling"]["rows"][-1].startswith("NF")
    assert os.path.basename(result["saved_model"]) == "1" and os.path.exists(
        os.path.join(result["saved_model"], "saved_model.pb"))
    assert open(result["tflite"], "rb").read(8)[4:8] == b"TFL3"
    served = np.asarray(Image.open(result["served_samples"]))
    assert served.shape[0] > 2 * 28 * 3
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["served"]["bits_per_dim"] and metrics["held_out"] == held
    demo.refuse_foreign_outputs(out)  # a rerun into the same folder replaces the demo's own files


def test_demo_refuses_a_users_file_before_any_work(tmp_path):
    for name, content in (("metrics.json", b'{"my": "numbers"}'), ("samples.png", b"my photo"),
                          ("sampler.tflite", b"1234TFL3 my own model")):
        out = tmp_path / name.replace(".", "_")
        out.mkdir()
        (out / name).write_bytes(content)
        with pytest.raises(FileExistsError, match=f"{name} is not a .*this project wrote .*Move it away"):
            demo.run(str(out))
        assert (out / name).read_bytes() == content and os.listdir(out) == [name]
