"""Weights shipped in the package: hashes, cards that cannot drift, offline loading, fine-tuning, the wheel."""

import json
import os
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

import zoo
from zoo.presets import publish, shipped
from zoo.presets import weights as handles

SHIPPED = shipped.names()
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUNDLED_MNIST = os.path.join(REPO_ROOT, "tests", "data", "mnist_test_first200.npz")


def check_examples(dataset, count):
    """The card check's examples: the held-out split, or for MNIST the first 200 test images kept with the tests."""
    try:
        return publish.held_out_examples(dataset, count)
    except zoo.data.datasets.DatasetNotFoundError:
        if dataset != "mnist":
            raise
        return np.load(BUNDLED_MNIST)["images"][:count]


def test_weights_are_shipped_and_listed():
    assert SHIPPED, "no shipped weights: run benchmarks/ship_weights.py"
    listed = {p["name"]: p for p in zoo.list()}
    for name in SHIPPED:
        assert listed[name]["has_weights"] and listed[name]["weights"]["sha256"] == shipped.registrations()[name]["sha256"]
        card = listed[name]["card"]
        assert card["metric"] in ("bits_per_dim", "reconstruction_error") and np.isfinite(card["value"])
        assert card["examples"] >= 200 and card["split"] == "test"
    assert not any(p["has_weights"] for n, p in listed.items() if n not in SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_preset_matches_its_hash_and_its_card(name):
    path = shipped.weights_path(name)
    registration = shipped.registrations()[name]
    assert handles.sha256_of(path) == registration["sha256"] and os.path.getsize(path) == registration["bytes"]
    card = shipped.card(name)
    assert card["weights_sha256"] == registration["sha256"] and card["preset"] == name
    for field in ("data", "n_bits", "architecture", "parameters", "training", "machine", "metrics", "headline",
                  "check", "date"):
        assert field in card, field
    assert card["training"]["command"].startswith("python -m zoo.train --model " + name)
    curve = card["training"]["curve"]  # every epoch's held-out objective: the evidence that it flattened
    assert len(curve) == card["training"]["epochs"] and curve[-1]["val_loss"] == card["training"]["final_logs"]["val_loss"]
    monitor = card["training"].get("monitor", "val_loss")  # cards before `monitor` existed followed val_loss
    assert curve[-1][monitor] == card["training"]["final_logs"][monitor]
    assert card["picture"] and os.path.exists(os.path.join(REPO_ROOT, card["picture"]))
    fd = card["metrics"].get("frechet_distance_classifier")
    if fd is not None:  # the classifier is trained on the training split and scored on the held-out one
        assert fd["classifier_accuracy_on"].endswith("(held out)") and fd["classifier_accuracy"] > 0.8, fd
    model = zoo.get(name, weights="default")  # offline, from the package
    assert model.count_params() == card["parameters"] and model.is_initialized
    assert monitor == model.monitor, f"the card followed {monitor}, the model monitors {model.monitor}: republish it"
    check = card["check"]
    if model.num_classes is not None:  # p(x | y) at the held-out labels; the sample accuracy is in the card
        sampled = card["metrics"]["sample_accuracy"]
        assert len(sampled["per_class"]) == model.num_classes and sampled["samples_per_class"] >= 1000, sampled
        assert sampled["independent_classifier"]["accuracy_on"].endswith("held-out examples"), sampled
        assert sampled["independent_classifier"]["held_out_accuracy"] > 0.8, "a weak judge makes sample accuracy moot"
        again = publish.check_value(model, card["data"]["dataset"], check["examples"])
    else:
        again = publish.check_value(model, card["data"]["dataset"], check["examples"],
                                    examples=check_examples(card["data"]["dataset"], check["examples"]))
    assert again["metric"] == check["metric"]
    if "examples_sha256" in check:  # the very examples the card was measured on
        assert again["examples_sha256"] == check["examples_sha256"]
    np.testing.assert_allclose(again["value"], check["value"], rtol=check["rtol"])


def test_shipped_files_hold_no_optimizer_state():
    import h5py

    for name in SHIPPED:
        with h5py.File(shipped.weights_path(name), "r") as f:
            assert handles.OPTIMIZER_GROUP not in f, name


def test_save_to_preset_can_leave_the_optimizer_out(tmp_path):
    model = zoo.get("nf_spiral")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(zoo.training.load_training_data("spiral", "train", 64), batch_size=32, epochs=1, verbose=0)
    model.save_to_preset(str(tmp_path / "full"))
    model.save_to_preset(str(tmp_path / "slim"), include_optimizer=False)
    full, slim = (str(tmp_path / d / shipped.WEIGHTS_FILE) for d in ("full", "slim"))
    assert os.path.getsize(slim) < 0.6 * os.path.getsize(full)
    x = zoo.training.load_training_data("spiral", "test", 16)
    np.testing.assert_array_equal(zoo.get(str(tmp_path / "slim")).log_prob(x), model.log_prob(x))


def test_the_bundled_mnist_slice_is_the_one_the_mnist_cards_were_checked_on():
    digests = {shipped.card(n)["check"].get("examples_sha256") for n in SHIPPED
               if shipped.card(n)["data"]["dataset"] == "mnist"}
    bundled = np.load(BUNDLED_MNIST)["images"]
    assert bundled.shape == (200, 28, 28, 1) and bundled.dtype == np.uint8
    assert digests and digests == {publish.examples_digest(bundled[:publish.CHECK_EXAMPLES])}


def test_without_mnist_files_the_checks_use_the_kept_slice(monkeypatch):
    monkeypatch.setitem(zoo.data.datasets.KNOWN_PLACES, "mnist", [])
    for variable in ("FLOW_ZOO_MNIST_DIR", "FLOW_ZOO_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(zoo.data.datasets, "_load_from_tfds", lambda name, split, looked: None)
    with pytest.raises(zoo.data.datasets.DatasetNotFoundError):
        publish.held_out_examples("mnist", 10)
    kept = check_examples("mnist", publish.CHECK_EXAMPLES)
    cards = [shipped.card(n)["check"] for n in SHIPPED if shipped.card(n)["data"]["dataset"] == "mnist"]
    assert cards and all(publish.examples_digest(kept) == c["examples_sha256"] for c in cards)


def test_a_damaged_shipped_file_is_refused(tmp_path, monkeypatch):
    name = SHIPPED[0]
    damaged = tmp_path / name
    damaged.mkdir()
    data = open(shipped.weights_path(name), "rb").read()
    middle = len(data) // 2
    (damaged / shipped.WEIGHTS_FILE).write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64])
                                                 + data[middle + 64:])
    monkeypatch.setattr(shipped, "SHIPPED_DIR", str(tmp_path))
    with pytest.raises(zoo.presets.WeightsError, match="does not match the expected sha256"):
        zoo.get(name, weights="default")


def test_fine_tuning_keeps_the_shipped_act_norm_statistics(tmp_path):
    """`zoo.train --weights default` starts from the shipped weights: with a zero learning rate nothing moves,
    so no data initialization ran over them; a real step then changes them."""
    name = next(n for n in SHIPPED if n.startswith(("nf_", "nif_")))  # no batch norm: lr 0 moves nothing
    dataset = zoo.presets.registry.preset(name).dataset
    start = zoo.get(name, weights="default")
    frozen = zoo.train(name, dataset, epochs=1, batch_size=64, out=str(tmp_path / "frozen"), weights="default",
                       training={"learning_rate": 0.0, "warmup_steps": 0}, num_examples=256, validation=False,
                       checkpoint_every=0, sample_every=0, tensorboard=False, verbose=0)
    for a, b in zip(start.get_weights(), frozen.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    model = zoo.get(name, weights="default")  # plain Keras fine-tuning
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = zoo.training.load_training_data(dataset, "train", 128)
    model.fit(model.as_model_input(data), batch_size=64, epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(start.get_weights(), model.get_weights()))


FINE_TUNE_DATA = {"mnist": "fmnist"}
"""MNIST-trained weights are fine-tuned on Fashion-MNIST: another dataset of the same shape (and always here)."""


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_preset_fine_tunes_with_plain_compile_and_fit(name):
    model = zoo.get(name, weights="default")
    start = [np.array(w) for w in model.get_weights()]
    dataset = zoo.presets.registry.preset(name).dataset
    conditional = model.num_classes is not None
    loaded = zoo.training.load_training_data(FINE_TUNE_DATA.get(dataset, dataset), "train", 16, labels=conditional)
    data, labels = loaded if conditional else (loaded, None)  # a class-conditional preset fine-tunes on p(x | y)
    # One eager step: the traced train step of every architecture is the model harness's; here the question is
    # only whether the shipped weights take a fit step (test_fine_tuning_keeps_... runs a traced zoo.train).
    model.compile(optimizer=keras.optimizers.Adam(1e-4), run_eagerly=True)
    history = model.fit(model.as_model_input(data), labels, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    moved = [not np.array_equal(a, b) for a, b in zip(start, model.get_weights())]
    assert any(moved)
    assert model.is_initialized  # no data initialization ran over the trained weights


def test_the_wheel_contains_every_shipped_file(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), REPO_ROOT], check=True, cwd=str(tmp_path))
    wheel = next(p for p in os.listdir(tmp_path) if p.endswith(".whl"))
    names = set(zipfile.ZipFile(tmp_path / wheel).namelist())
    assert {"zoo/presets/shipped.json", "zoo/presets/parameters.json", "zoo/presets/compute.json"} <= names
    for name in SHIPPED:
        for entry in (shipped.WEIGHTS_FILE, shipped.CARD_FILE, "config.json"):
            assert f"zoo/presets/shipped/{name}/{entry}" in names, (name, entry)
    registration = json.loads(zipfile.ZipFile(tmp_path / wheel).read("zoo/presets/shipped.json"))
    assert set(registration) == set(SHIPPED)


def test_the_sdist_contains_every_shipped_file(tmp_path):
    import tarfile

    subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path), "sdist", "-d",
                    str(tmp_path)], check=True, cwd=REPO_ROOT, capture_output=True)
    archive = next(p for p in os.listdir(tmp_path) if p.endswith(".tar.gz"))
    with tarfile.open(tmp_path / archive) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {"zoo/presets/shipped.json", "zoo/presets/parameters.json", "zoo/presets/compute.json"} <= names
    for name in SHIPPED:
        for entry in (shipped.WEIGHTS_FILE, shipped.CARD_FILE, "config.json"):
            assert f"zoo/presets/shipped/{name}/{entry}" in names, (name, entry)


def test_publish_refuses_to_replace_files_it_did_not_write(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.json").write_text(json.dumps({"arguments": {"model": "nf_spiral", "dataset": "spiral"}}))
    paths = dict(shipped_dir=str(tmp_path / "shipped"), registration_file=str(tmp_path / "shipped.json"),
                 figures_dir=str(tmp_path / "figs"), cards_doc=str(tmp_path / "CARDS.md"))
    (tmp_path / "CARDS.md").write_text("my own notes\n")
    with pytest.raises(FileExistsError, match="CARDS.md is not a file this project wrote"):
        publish.publish(str(run), **paths)
    (tmp_path / "CARDS.md").unlink()
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "nf_spiral.png").write_text("a user's picture")
    with pytest.raises(FileExistsError, match="nf_spiral.png is not a file this project wrote"):
        publish.publish(str(run), **paths)
    (tmp_path / "shipped.json").write_text('{"not": "a registration table"}')
    with pytest.raises(ValueError, match="is not a shipped-weights registration table"):
        publish.publish(str(run), **paths)
    assert (tmp_path / "figs" / "nf_spiral.png").read_text() == "a user's picture"
    assert not (tmp_path / "shipped").exists() and not (tmp_path / "CARDS.md").exists()
