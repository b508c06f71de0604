"""benchmarks/injflow_mnist.py's bookkeeping: units committed across sessions, the section and its verdict.

The training and FID of a unit are the library's (tested elsewhere); what this file checks is what turns
committed unit files into the RESULTS section: which units are pending, the means over seeds, the refusal to
mix budgets or to read foreign files, and the verdict's arithmetic.
"""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import injflow_mnist as bench  # noqa: E402


def _record(label, seed, rec, gaussian, gmm, epochs=5):
    rng = np.random.default_rng(seed)
    images = lambda: bench._hex_images(rng.integers(0, 256, (8, 28, 28, 1)))  # noqa: E731
    return {"label": label, "seed": seed, "epochs": epochs, "steps": 2345, "fid_rec": rec, "fid_gaussian": gaussian,
            "fid_gmm": gmm, "reconstruction_error": 1000.0 + seed, "kl": 3.0 if "VAE" in label else None,
            "train_seconds": 100.0, "wall_seconds": 1800.0, "num_examples": None, "images_per_fid": 10000,
            "machine": {"cpu_model": "test CPU", "usable_cpus": 2},
            "pictures": {"test_images": images(), "reconstructions": images(), "gmm_samples": images()}}


def _units(fids):
    """{(label, seed): record} with per-seed (rec, N, GMM) = fids[label] + seed * 0.5."""
    return {(label, seed): _record(label, seed, *(v + 0.5 * seed for v in fids[label]))
            for label in bench.MODELS for seed in (0, 1)}


PAPER_LIKE = {label: (10.0, 40.0, 12.0) for label in bench.MODELS}
PAPER_LIKE.update({"InjFlow": (6.0, 30.0, 9.0), "InjFlow-ln": (7.0, 31.0, 9.5)})


def test_verdict_reproduced_when_injflow_beats_ae_and_vae_beyond_the_seed_spread():
    text = bench.verdict(_units(PAPER_LIKE), [0, 1])
    assert "the first claim is reproduced" in text
    assert "GMM beats N beyond the seed spread for 8 of 8 models" in text
    assert "second claim is reproduced" in text


def test_verdict_names_the_comparison_that_fails_and_the_model_where_gmm_does_not_win():
    fids = dict(PAPER_LIKE, AE=(10.0, 30.2, 9.1), VAE=(60.0, 50.0, 55.0))  # AE within the spread of InjFlow
    text = bench.verdict(_units(fids), [0, 1])
    assert "first claim is not reproduced" in text
    assert "InjFlow N 30.2 vs AE 30.4 (not beaten)" in text
    assert "reproduced for all but VAE" in text


def test_verdict_pending_lists_the_missing_units():
    units = _units(PAPER_LIKE)
    del units[("CAE", 1)], units[("AE", 0)]
    text = bench.verdict(units, [0, 1])
    assert text.startswith("Verdict: pending. 2 of 16 units")
    assert "AE seed 0" in text and "CAE seed 1" in text


def test_render_partial_table_marks_single_seed_cells_and_draws_the_figure(tmp_path):
    units = {key: r for key, r in _units(PAPER_LIKE).items() if key[1] == 0 or key[0] == "InjFlow"}
    del units[("VAE", 0)]
    args = type("Args", (), {"epochs": 5, "figure": str(tmp_path / "fig.png")})()
    text = bench.render(units, [0, 1], args)
    assert "Status: 8 of 16 units done" in text
    assert "| InjFlow | 6.2 ± 0.4 | 6.0 |" in text  # both seeds: mean and standard deviation
    assert "| AE | 10.0 (1 seed) | 8.69 |" in text
    assert "| VAE | - | 65.1 |" in text
    from PIL import Image

    picture = np.asarray(Image.open(tmp_path / "fig.png"))
    assert picture.shape[0] > picture.shape[1] / 4  # a test row plus seven model rows, 16 images wide


def test_load_units_ignores_files_of_other_benchmarks(tmp_path):
    from benchmarks.common import write_json

    write_json(str(tmp_path / "ae_seed0.json"), _record("AE", 0, 1.0, 2.0, 3.0), bench.BENCHMARK)
    (tmp_path / "notes.json").write_text(json.dumps({"label": "AE", "seed": 1}))
    assert list(bench.load_units(str(tmp_path))) == [("AE", 0)]


def test_main_refuses_to_mix_epochs(tmp_path, monkeypatch):
    from benchmarks.common import write_json

    write_json(str(tmp_path / "ae_seed0.json"), _record("AE", 0, 1.0, 2.0, 3.0, epochs=3), bench.BENCHMARK)
    monkeypatch.setattr(sys, "argv", ["injflow_mnist.py", "--render_only", "--epochs", "5", "--results",
                                      str(tmp_path), "--doc", str(tmp_path / "R.md")])
    with pytest.raises(SystemExit, match=r"trained for \[3\] epochs, this run asks for 5"):
        bench.main()
    assert not (tmp_path / "R.md").exists()
