"""The main job (zoo.demo) end to end, with a tiny configuration."""

import json
import os

import keras
import numpy as np
from PIL import Image

from zoo import demo


def test_demo_trains_writes_samples_model_and_metrics(tmp_path):
    out = str(tmp_path / "demo")
    result = demo.run(out, epochs=2, batch_size=64, num_levels=2, steps_per_level=1, hidden_channels=8,
                      n_bits=5, learning_rate=1e-3, temperatures=["0.5", "1.0"], samples_per_row=3, seed=0)
    grid = np.asarray(Image.open(result["samples"]))
    assert grid.ndim == 2 and grid.shape[0] > 2 * 8 * 4 and grid.shape[1] > 3 * 8 * 4
    model = keras.saving.load_model(result["model"])
    assert model.n_bits == 5 and model.is_initialized
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["n_bits"] == 5 and 0 < metrics["test_bits_per_dim"] < 8
