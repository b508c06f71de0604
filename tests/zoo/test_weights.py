"""Weight handles and preset directories: good, wrong hash, truncated, missing, round trips, fine-tuning."""

import json
import os
import pathlib
import shutil
import zipfile

import keras
import numpy as np
import pytest

import zoo
from zoo.presets import weights as handles

SMALL = dict(steps_per_level=1, hidden_channels=8)


@pytest.fixture(scope="module")
def images():
    return zoo.load_digits_images()[0]


@pytest.fixture(scope="module")
def trained(images, tmp_path_factory):
    model = zoo.get("nif_digits_16", **SMALL)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(images[:256], batch_size=64, epochs=1, verbose=0)
    path = str(tmp_path_factory.mktemp("w") / "nif.weights.h5")
    model.save_weights(path)
    return model, path


def test_good_file_with_and_without_hash(trained, images):
    model, path = trained
    for sha in (None, handles.sha256_of(path)):
        again = zoo.get("nif_digits_16", weights=path, weights_sha256=sha, **SMALL)
        np.testing.assert_array_equal(np.asarray(again.log_prob(images[:8])), np.asarray(model.log_prob(images[:8])))


def test_wrong_hash_truncated_missing_and_other_architecture(trained, tmp_path):
    _, path = trained
    with pytest.raises(handles.WeightsError, match="does not match the expected sha256"):
        zoo.get("nif_digits_16", weights=path, weights_sha256="0" * 64, **SMALL)
    truncated = tmp_path / "truncated.weights.h5"
    data = pathlib.Path(path).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(handles.WeightsError, match="truncated or corrupt"):
        zoo.get("nif_digits_16", weights=str(truncated), **SMALL)
    with pytest.raises(FileNotFoundError, match="not found"):
        zoo.get("nif_digits_16", weights=str(tmp_path / "missing.weights.h5"), **SMALL)
    with pytest.raises(handles.WeightsError, match="another architecture"):
        zoo.get("nif_digits_16", weights=path, steps_per_level=2, hidden_channels=8)


def test_url_handle_is_fetched_verified_and_cached(trained, images, tmp_path):
    model, path = trained
    url = pathlib.Path(path).as_uri()
    sha = handles.sha256_of(path)
    with pytest.raises(ValueError, match="sha256 is required"):
        zoo.get("nif_digits_16", weights=url, **SMALL)
    with pytest.raises(handles.WeightsError, match="does not match sha256"):
        handles.fetch(url, "f" * 64, cache_dir=str(tmp_path / "cache"))
    fetched = handles.fetch(url, sha, cache_dir=str(tmp_path / "cache"))
    assert fetched.startswith(str(tmp_path / "cache")) and handles.sha256_of(fetched) == sha
    again = zoo.get("nif_digits_16", weights=url, weights_sha256=sha, **SMALL)
    np.testing.assert_array_equal(np.asarray(again.log_prob(images[:8])), np.asarray(model.log_prob(images[:8])))


def test_preset_directory_round_trip_and_zip_url(trained, images, tmp_path):
    model, _ = trained
    directory = str(tmp_path / "preset")
    model.save_to_preset(directory, metadata={"dataset": "digits", "steps": 24, "metrics": {"bpd": 3.1}})
    meta = json.loads(pathlib.Path(directory, "metadata.json").read_text())
    assert meta["n_bits"] == 5 and meta["dataset"] == "digits" and meta["weights_sha256"]
    loaded = zoo.get(directory)
    np.testing.assert_array_equal(np.asarray(loaded.log_prob(images[:8])), np.asarray(model.log_prob(images[:8])))
    np.testing.assert_array_equal(np.asarray(loaded.sample(3, noise_scale=0.5, seed=1)),
                                  np.asarray(model.sample(3, noise_scale=0.5, seed=1)))
    with pytest.raises(FileExistsError, match="not empty"):
        model.save_to_preset(directory)
    model.save_to_preset(directory, overwrite=True)
    notes = os.path.join(directory, "my_notes.txt")  # a user's file added to the preset: never deleted
    pathlib.Path(notes).write_text("irreplaceable")
    with pytest.raises(FileExistsError, match="also holds my_notes.txt, which flow-zoo did not write"):
        model.save_to_preset(directory, overwrite=True)
    assert pathlib.Path(notes).read_text() == "irreplaceable"
    os.remove(notes)

    archive = tmp_path / "preset.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in os.listdir(directory):
            z.write(os.path.join(directory, name), arcname=f"preset/{name}")
    fetched = handles.fetch(archive.as_uri(), handles.sha256_of(str(archive)), cache_dir=str(tmp_path / "cache"))
    assert handles.is_preset_dir(fetched)


def test_incomplete_or_tampered_preset_directory(trained, tmp_path):
    model, _ = trained
    directory = tmp_path / "preset"
    model.save_to_preset(str(directory))
    weights_file = directory / "model.weights.h5"
    data = weights_file.read_bytes()
    weights_file.write_bytes(data[:-10] + b"0123456789")
    with pytest.raises(handles.WeightsError, match="sha256"):
        zoo.get(str(directory))
    os.remove(weights_file)
    with pytest.raises(handles.WeightsError, match="incomplete: model.weights.h5 is missing"):
        zoo.get(str(directory))


def test_failed_save_leaves_nothing_behind(trained, tmp_path, monkeypatch):
    model, _ = trained

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model, "save_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save_to_preset(str(tmp_path / "p"))
    assert os.listdir(tmp_path) == []


def test_fine_tune_after_loading(trained, images, tmp_path):
    _, path = trained
    model = zoo.get("nif_digits_16", weights=path, **SMALL)
    assert model.is_initialized  # act-norm state came with the weights: no re-initialization
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = model.evaluate(images[:256], verbose=0, return_dict=True)["loss"]
    model.fit(images[:256], batch_size=64, epochs=2, verbose=0)
    assert model.evaluate(images[:256], verbose=0, return_dict=True)["loss"] < before
    reloaded_path = str(tmp_path / "tuned.keras")
    model.save(reloaded_path)
    reloaded = keras.saving.load_model(reloaded_path)
    np.testing.assert_array_equal(np.asarray(reloaded.log_prob(images[:8])), np.asarray(model.log_prob(images[:8])))


def test_default_weights_of_a_preset_that_publishes_them(trained, images, scratch_registry):
    model, path = trained
    zoo.register("nif_digits_16_published_test", zoo.make_nif,
                 dict(image_shape=(8, 8, 1), latent_dim=16, n_bits=5, **SMALL), family="nif", dataset="digits",
                 paper="", input_shape=(8, 8, 1), latent_dim=16,
                 weights={"url": pathlib.Path(path).as_uri(), "sha256": handles.sha256_of(path)})
    meta = [p for p in zoo.list() if p["name"] == "nif_digits_16_published_test"][0]
    assert meta["has_weights"] and meta["weights"]["sha256"] == handles.sha256_of(path)
    published = zoo.get("nif_digits_16_published_test", weights="default")
    np.testing.assert_array_equal(np.asarray(published.log_prob(images[:8])), np.asarray(model.log_prob(images[:8])))
    with pytest.raises(ValueError, match="needs 'url' and 'sha256'"):
        zoo.register("bad_weights_test", zoo.make_nif, {}, family="nif", dataset="d", paper="", input_shape=(2,),
                     weights={"url": "https://example.invalid/w.h5"})


def test_weights_of_another_architecture_are_refused_with_the_difference(trained, tmp_path):
    # NIF weights into an NF preset: Keras alone would load the flow's arrays and quietly drop the prior's.
    _, path = trained
    with pytest.raises(handles.WeightsError, match=r"another architecture than 'nf_digits'.*extra shapes \[\(64,\)"):
        zoo.get("nf_digits", weights=path, **SMALL)
    nif_dir = zoo.get("nif_digits_16", weights=path, **SMALL).save_to_preset(str(tmp_path / "nif_preset"))
    with pytest.raises(handles.WeightsError, match="another architecture than the preset 'nf_digits'"):
        zoo.get("nf_digits", weights=nif_dir)


def test_a_registered_name_means_the_preset_and_a_path_means_a_path(trained, tmp_path, monkeypatch):
    model, _ = trained
    monkeypatch.chdir(tmp_path)
    # A run folder named like a preset (here a preset directory of a 16-d NIF) does not shadow the preset.
    model.save_to_preset("nf_digits")
    assert type(zoo.get("nf_digits").prior).__name__ == "StandardNormal"
    assert zoo.get("./nf_digits").count_params() == model.count_params()  # the directory, asked for as a path
    with pytest.raises(FileNotFoundError, match="No such directory: runs/missing"):
        zoo.get("runs/missing")
    with pytest.raises(KeyError, match="Unknown preset 'nf_digitz'"):
        zoo.get("nf_digitz")
