"""benchmarks/fmnist_nf_vs_nif.py's text that reads another benchmark's stored results: the gap of the same small
GLOW to the published Glow comes from the anchors' results file, never from a number written into the script."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import fmnist_nf_vs_nif as bench  # noqa: E402
from benchmarks.common import write_json  # noqa: E402


def _anchors(path, mnist_bits_per_dim):
    write_json(str(path), {"rows": {"mnist": {"bits_per_dim": {"value": mnist_bits_per_dim, "standard_error": 0.003}}},
                           "published_mnist": {"Glow (Kingma & Dhariwal 2018)": 1.05}}, "bits_per_dim_anchors")


def test_anchor_gap_comes_from_the_stored_anchors(tmp_path):
    path = tmp_path / "new" / "bits_per_dim_anchors.json"  # write_json makes the folder
    _anchors(path, 1.676)
    assert bench.anchor_gap_text(str(path)).startswith("the same small GLOW is 0.63 bits/dim behind the published")
    _anchors(path, 1.50)  # a rerun moves the number in the text
    assert bench.anchor_gap_text(str(path)).startswith("the same small GLOW is 0.45 bits/dim behind")
    write_json(str(path), {"preset": "nf_fmnist", "rows": {"mnist": {"bits_per_dim": {"value": 1.2}}},
                           "published_mnist": {"Glow (Kingma & Dhariwal 2018)": 1.05}}, "bits_per_dim_anchors")
    assert bench.anchor_gap_text(str(path)).startswith("the GLOW of `nf_fmnist` is 0.15 bits/dim behind")


def test_anchor_gap_without_stored_anchors_gives_no_number(tmp_path):
    assert bench.anchor_gap_text(str(tmp_path / "missing.json")) == (
        "for the same small GLOW against the published Glow on 8-bit MNIST see the anchors section")
    other = tmp_path / "other.json"
    write_json(str(other), {"rows": {}}, "some_other_benchmark")  # another benchmark's file is not read as anchors
    assert "bits/dim behind" not in bench.anchor_gap_text(str(other))


def test_training_text_reads_the_cards_settings():
    settings = {"decay": "cosine", "final_learning_rate_fraction": 0.0, "learning_rate": 0.001, "warmup_steps": 100,
                "global_clipnorm": 5.0}
    results = {"nf": {"train_settings": settings}, "nif": {"train_settings": dict(settings)}}
    assert bench.training_text(results) == ("peak rate 0.001, cosine decay to 0, a 100-step warm-up, gradients "
                                            "clipped to global norm 5")
    results["nif"]["train_settings"]["warmup_steps"] = 0  # cards that disagree are both named
    assert bench.training_text(results).count("cosine decay") == 2


def test_cache_note_counts_the_images_a_cold_run_would_add():
    class Cache:
        reused, computed, reused_images = ["a", "b"], ["c"], {"a": 10000, "b": 1000}

    assert bench.cache_note(Cache()).endswith("2 of the 3 Inception feature sets were read from this machine's cache "
                                              "of earlier runs on byte-identical images (see the module docstring), "
                                              "so a cold run takes longer: it also passes those 11,000 images "
                                              "through the Inception")
    Cache.reused = []
    assert bench.cache_note(Cache()) == ""
