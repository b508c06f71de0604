"""The preset registry: names, metadata, errors, overrides, weights."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import zoo
from zoo.presets import compute

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ISSUE_PRESETS = (
    [f"nif_{d}_{k}" for d in ("fmnist", "cifar10", "celeba") for k in (64, 128, 256, 512)]
    + ["deep_nif_celeba_128", "nf_fmnist", "nf_cifar10", "nf_celeba", "nif_digits_16", "nf_digits",
       "nif_spiral_1", "nif_sin_1", "nf_spiral", "nf_sin"]
    + ["dnf_spiral_1", "mflow_spiral_1", "pie_spiral_1", "dnf_sin_1", "dnf_celeba_512", "mflow_celeba_512",
       "dnf_fmnist_64", "dnf_digits_8"]
    + [f"{family}_{data}" for family in ("injflow", "injflow_ln", "ae", "ae_l2", "ae_sn", "cae", "vae", "beta_vae")
       for data in ("mnist_32", "cifar10_128", "celeba_128")]
    + ["injflow_digits_8"]
    + [f"{family}_{data}" for family in ("spread", "nf_spread") for data in ("sin", "scurve", "fading_square", "mnist")]
)


def test_every_named_preset_exists_with_metadata():
    names = {p["name"] for p in zoo.list()}
    assert set(ISSUE_PRESETS) <= names
    for p in zoo.list():
        assert {"family", "dataset", "paper", "input_shape", "latent_dim", "description", "config", "parameters",
                "has_weights", "weights"} <= set(p)
        if p["family"] in ("nif", "deep_nif"):
            assert p["latent_dim"] is not None
            assert p["name"].endswith(f"_{p['latent_dim']}")


def test_paper_presets_cite_a_source_for_every_value_and_match_it():
    """A preset that reproduces a published configuration names the file each value comes from, and has that value."""
    from zoo.training.optimizers import training_settings

    cited = [p for p in zoo.list() if p["sources"]]
    for name in ([f"nif_{d}_{k}" for d in ("fmnist", "cifar10", "celeba") for k in (64, 128, 256, 512)]
                 + ["nf_fmnist", "nf_cifar10", "nf_celeba", "deep_nif_celeba_128"]):
        p = zoo.presets.registry.preset(name).metadata()
        assert p["description"].startswith("Paper configuration"), name
        assert {"n_bits", "num_levels", "steps_per_level", "hidden_channels"} <= set(p["sources"]), name
        assert p["differences"], name  # how it differs from the source (batch size at least)
    assert len(cited) >= 16
    for p in cited:
        settings = training_settings(p["name"])
        for key, entry in p["sources"].items():
            actual = p["config"][key] if key in p["config"] else settings[key]
            assert tuple(actual) == tuple(entry["value"]) if isinstance(actual, (tuple, list)) else \
                actual == entry["value"], (p["name"], key, actual, entry)
            assert entry["source"], (p["name"], key)
    levels = {d: zoo.presets.registry.preset(f"nif_{d}_64").kwargs["num_levels"] for d in ("fmnist", "cifar10", "celeba")}
    assert levels == {"fmnist": 2, "cifar10": 4, "celeba": 5}  # the reference's n_multiscale, not the paper's 5 for all
    assert zoo.presets.registry.preset("nif_fmnist_64").kwargs["n_bits"] == 3  # train_runner.py --quantize default


def test_filters():
    assert {p["name"] for p in zoo.list(family="nf", dataset="celeba")} == {"nf_celeba"}
    assert {p["name"] for p in zoo.list(dataset="fmnist")} == {f"nif_fmnist_{d}" for d in (64, 128, 256, 512)} | {
        "nf_fmnist", "dnf_fmnist_64", "nf_fmnist_small", "nif_fmnist_small_64", "nif_fmnist_small_128",
        "dnf_fmnist_small_16",
        "nif_fmnist_small_conditional_64"}
    assert zoo.list(family="no_such_family") == []


def test_presets_without_weights_say_what_training_them_needs():
    for p in zoo.list():
        needs = p["training_needs"]
        if p["has_weights"]:
            assert needs is None, p["name"]
            continue
        assert needs["command"].startswith(f"python -m zoo.train --model {p['name']} --dataset {p['dataset']} ")
        assert needs["data"] and needs["epochs"]
        cost = needs["compute"]  # counted for every preset (`python -m zoo.presets.compute`)
        assert isinstance(cost, dict), f"{p['name']}: {cost}"
        assert cost["train_flops_per_example"] > 0 and cost["train_examples"] > 0
        np.testing.assert_allclose(cost["gpu_hours_per_epoch_at_peak"] * 3600 * compute.GPU_PEAK["flops_per_second"],
                                   cost["train_flops_per_example"] * cost["train_examples"], rtol=1e-12)
    celeba = {p["name"]: p for p in zoo.list(dataset="celeba")}["nif_celeba_128"]["training_needs"]
    assert "FLOW_ZOO_CELEBA_DIR" in celeba["data"] and "--batch_size 32" in celeba["command"]
    assert celeba["compute"]["train_examples"] == 162770  # CelebA's train partition


def test_the_compute_table_covers_every_preset_and_recounts_exactly():
    table = compute.read()
    assert set(table) == {p["name"] for p in zoo.list()}, "run `python -m zoo.presets.compute`"
    # A wider latent and larger images cost more (NIF = the NF's GLOW + the D x d matrix).
    assert table["nif_celeba_128"]["train_flops_per_example"] > table["nif_fmnist_128"]["train_flops_per_example"]
    assert table["nif_fmnist_128"]["train_flops_per_example"] > table["nf_fmnist"]["train_flops_per_example"]
    env = dict(os.environ, KERAS_BACKEND="tensorflow")  # the command re-starts itself on JAX
    out = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import json, os, sys
        os.environ["KERAS_BACKEND"] = "jax"
        sys.path.insert(0, sys.argv[1])
        from zoo.presets import compute
        print(json.dumps(compute.measure("nf_digits")))
    """), REPO_ROOT], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    again = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(again["train_flops_per_example"], table["nf_digits"]["train_flops_per_example"],
                               rtol=1e-9)
    assert again["train_flops_per_step_fixed"] >= 0


def test_every_preset_builds():
    # Paper-sized presets take seconds each to build; shrink width and depth (levels, shapes and
    # latent sizes stay the preset's) for the sweep, and build one paper configuration in full below.
    for p in zoo.list():
        small = {k: v for k, v in dict(steps_per_level=1, hidden_channels=4, latent_flow_hidden_units=4,
                                          num_couplings=1, hidden_units=4).items() if k in p["config"]}
        model = zoo.get(p["name"], **small)
        assert model.example_shape == tuple(p["input_shape"]), p["name"]
        expected_latent = (p["latent_dim"],) if p["latent_dim"] else model.latent_shape
        assert tuple(model.prior.latent_shape) == expected_latent, p["name"]


def test_a_paper_preset_builds_in_full_with_its_listed_parameter_count():
    celeba = zoo.get("nif_celeba_128")
    assert celeba.n_bits == 3 and celeba.num_dims == 64 * 64 * 3
    assert len(celeba.actnorm_layers()) == 5 * 16
    assert tuple(celeba.prior.a_matrix.shape) == (64 * 64 * 3, 128)
    listed = {p["name"]: p["parameters"] for p in zoo.list()}
    assert celeba.count_params() == listed["nif_celeba_128"]


def test_listed_parameter_counts():
    # Rewrite the table with `python -m zoo.presets.registry` when an architecture changes.
    listed = {p["name"]: p["parameters"] for p in zoo.list()}
    missing = sorted(name for name, count in listed.items() if count is None)
    assert not missing, f"no parameter count for {missing}: run `python -m zoo.presets.registry`"
    for p in zoo.list():
        if p["dataset"] in ("digits", "spiral", "sin"):  # small: build and count
            assert zoo.get(p["name"]).count_params() == p["parameters"], p["name"]
    for dataset, config in zoo.GLOW_PAPER_CONFIGS.items():  # NIF = the NF's GLOW + A (D x d) + bias + log-variance
        data_dim = int(np.prod(config["image_shape"]))
        for latent_dim in (64, 128, 256, 512):
            assert listed[f"nif_{dataset}_{latent_dim}"] == listed[f"nf_{dataset}"] + data_dim * (latent_dim + 2)
    from zoo.presets import shipped

    assert {p["name"] for p in zoo.list() if p["has_weights"]} == set(shipped.names())  # exactly the shipped ones


def test_unknown_name_suggests_the_closest():
    with pytest.raises(KeyError, match="Did you mean: nif_celeba_128"):
        zoo.get("nif_celeb_128")


def test_duplicates_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        zoo.register("nf_digits", zoo.make_glow, {}, family="nf", dataset="digits", paper="", input_shape=(8, 8, 1))


def test_users_register_their_own(scratch_registry):
    zoo.register("my_tiny_nif_test", zoo.make_vector_nif, dict(dim=3, latent_dim=2, num_couplings=2, hidden_units=8),
                 family="nif", dataset="mine", paper="", input_shape=(3,), latent_dim=2)
    model = zoo.get("my_tiny_nif_test")
    assert model.name == "my_tiny_nif_test" and tuple(model.prior.latent_shape) == (2,)


def test_overrides_and_their_errors():
    model = zoo.get("nf_digits", steps_per_level=1, hidden_channels=8)
    assert len(model.actnorm_layers()) == 2
    with pytest.raises(ValueError, match=r"has no argument\(s\) \['hidden'\]"):
        zoo.get("nf_digits", hidden=8)


def test_weights_handles(tmp_path):
    with pytest.raises(ValueError, match="No pretrained weights are published for 'nif_celeba_128'.*model.fit"):
        zoo.get("nif_celeba_128", weights="default")
    with pytest.raises(FileNotFoundError, match="not found"):
        zoo.get("nf_digits", weights=str(tmp_path / "missing.weights.h5"))
    model = zoo.get("nif_digits_16", steps_per_level=1, hidden_channels=8)
    model.initialize(zoo.load_digits_images()[0][:64])
    path = str(tmp_path / "nif.weights.h5")
    model.save_weights(path)
    again = zoo.get("nif_digits_16", weights=path, steps_per_level=1, hidden_channels=8)
    images = zoo.load_digits_images()[0][:8]
    np.testing.assert_array_equal(np.asarray(again.log_prob(images)), np.asarray(model.log_prob(images)))
