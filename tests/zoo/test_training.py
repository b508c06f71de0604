"""zoo.train / python -m zoo.train: strategies, exact resume after SIGKILL, the NaN guard, outputs."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest

import zoo
from zoo import training

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = {"steps_per_level": 2, "hidden_channels": 16}


def _env():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2")
    return env


def _cli(out, *extra, epochs=2):
    return [sys.executable, "-m", "zoo.train", "--model", "nf_digits", "--dataset", "digits", "--epochs", str(epochs),
            "--batch-size", "16", "--out", str(out), "--overrides", json.dumps(SMALL), "--num_examples", "512",
            *extra]


def _weights(preset_dir):
    with h5py.File(os.path.join(preset_dir, "model.weights.h5"), "r") as f:
        arrays = []
        f.visititems(lambda name, item: arrays.append((name, item[()])) if isinstance(item, h5py.Dataset) else None)
    return dict(arrays)


@pytest.mark.parametrize("preset, weight_tolerance", [
    ("nf_digits", 1e-5),
    # Spline couplings + reconstruction: float32 reduction order differs between 1 and 2 replicas and Adam
    # turns that rounding into weight differences ~1e-4 after a few steps; the loss (rtol 1e-5) is the sharp
    # check there (with identical noise on both replicas it was off by 1.5%).
    ("dnf_spiral_1", 1e-3),
])
def test_mirrored_two_logical_devices_match_one_device(preset, weight_tolerance):
    # Same global batch (64 = 64 x 1 = 32 x 2) and seed: the same loss and weights, act-norm equal on replicas.
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "zoo", "mirrored_check.py"), preset],
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["replicas"] == [1, 2] and report["global_batch"] == [64, 64]
    np.testing.assert_allclose(report["loss"][1], report["loss"][0], rtol=1e-5)
    assert report["max_weight_difference"] < weight_tolerance * max(1.0, report["max_abs_weight"])
    assert report["actnorm_copies"] == 2 and report["actnorm_replica_disagreement"] == 0.0
    assert report["actnorm_initialized"]


def test_cli_trains_nf_digits_and_writes_samples_tensorboard_and_a_saved_model(tmp_path):
    out = tmp_path / "run"
    run = subprocess.run(_cli(out, "--checkpoint_every", "8", epochs=1), env=_env(), capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "trained nf_digits on digits: 1 epochs" in run.stdout
    assert os.path.getsize(out / "samples" / "epoch_0001.png") > 100
    history = json.loads((out / "history.json").read_text())
    assert history["steps_per_epoch"] == 32 and history["global_batch_size"] == 16
    assert np.isfinite(history["history"][0]["val_loss"])

    import tensorflow as tf

    tags = set()
    for path in glob.glob(str(out / "logs" / "**" / "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    assert {"epoch_loss", "epoch_bits_per_dim", "samples"} <= tags, tags

    served = tf.saved_model.load(str(out / "saved_model" / "1"))  # TensorFlow Serving layout: base/version
    samples = served.sample(num_samples=tf.constant(3), temperature=tf.constant(0.7),
                            seed=tf.constant(1, tf.int64))  # a GLOW has no observation noise: no noise_scale input
    assert samples["images"].shape == (3, 8, 8, 1) and samples["images"].dtype == tf.uint8
    best = zoo.get(str(out / "best"))  # the best-model export is a loadable preset directory
    assert best.count_params() == zoo.get("nf_digits", **SMALL).count_params()


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    flags = ["--resume", "--checkpoint_every", "4", "--sample_every", "0", "--novalidation", "--nosaved_model"]
    reference = subprocess.run(_cli(tmp_path / "reference", *flags), env=_env(), capture_output=True, text=True,
                               timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]

    out = tmp_path / "killed"
    process = subprocess.Popen(_cli(out, *flags), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer, killed_at = out / "checkpoints" / "latest", None
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if pointer.exists():
            state_file = out / "checkpoints" / pointer.read_text().strip() / "state.json"
            if state_file.exists():
                state = json.loads(state_file.read_text())
                if state["epoch"] == 1 and state["step_in_epoch"] > 0:  # a mid-epoch checkpoint of epoch 2
                    process.send_signal(signal.SIGKILL)
                    killed_at = state["global_step"]
                    break
        time.sleep(0.01)
    process.wait(timeout=60)
    assert killed_at is not None, "the run ended before a mid-epoch checkpoint of epoch 2 could be awaited"
    assert not (out / "final").exists()

    resumed = subprocess.run(_cli(out, *flags), env=_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    history = json.loads((out / "history.json").read_text())
    assert history["resumed_from_step"] >= killed_at > 32
    expected, actual = _weights(tmp_path / "reference" / "final"), _weights(out / "final")
    assert expected.keys() == actual.keys()
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_an_existing_run_is_never_overwritten_without_resume(tmp_path):
    kwargs = dict(model="nf_spiral", dataset="spiral", epochs=1, batch_size=100, out=str(tmp_path),
                  num_examples=300, model_overrides={"num_couplings": 2, "hidden_units": 8}, verbose=0,
                  sample_every=0, tensorboard=False)
    training.train(**kwargs)
    with pytest.raises(FileExistsError, match="resume=True"):
        training.train(**kwargs)
    with pytest.raises(ValueError, match="other arguments"):
        training.train(**dict(kwargs, batch_size=50), resume=True)
    done = training.train(**kwargs, resume=True)  # already complete: nothing left to train
    assert len(done.history) == 1


def _spiral_run(tmp_path, data, **extra):
    return dict(model="nf_spiral", dataset=data, epochs=2, batch_size=32, out=str(tmp_path / "run"),
                model_overrides={"num_couplings": 2, "hidden_units": 8}, verbose=0, sample_every=0,
                tensorboard=False, checkpoint_every=2, **extra)


@pytest.mark.parametrize("poison", ["nan_input", "overflowing_input"])
def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path, poison):
    data = zoo.manifolds.thin_spiral(320, seed=0).data.copy()
    order = np.random.default_rng([0, 0]).permutation(len(data))  # epoch 0's order (epoch_dataset)
    row = order[5 * 32]  # first row of the 6th batch: checkpoints after steps 2 and 4 come first
    data[row] = np.nan if poison == "nan_input" else 1e30
    if poison == "nan_input":  # in-memory data is read before the first step: refused, nothing trained or written
        with pytest.raises(ValueError, match=r"nf_spiral.fit: rows 0..319 of the training data break the data contract "
                                             r"\(refused before the first step\).*2 NaN or infinite value"):
            training.train(**_spiral_run(tmp_path, data))
        assert not (tmp_path / "run" / "checkpoints").exists() or not os.listdir(tmp_path / "run" / "checkpoints")
        return
    with pytest.raises(training.TrainingDivergedError, match="last good checkpoint is kept") as caught:
        training.train(**_spiral_run(tmp_path, data))
    assert "--resume" in str(caught.value)
    manager = training.CheckpointManager(str(tmp_path / "run" / "checkpoints"))
    latest = manager.latest()
    with np.load(os.path.join(latest, "variables.npz")) as stored:
        assert all(np.all(np.isfinite(stored[key])) for key in stored.files)
    state = json.loads(open(os.path.join(latest, "state.json")).read())
    assert state["global_step"] == 4
    assert not (tmp_path / "run" / "final").exists()


def test_checkpoint_pruning_keeps_the_newest_and_touches_only_its_own_checkpoints(tmp_path):
    manager = training.CheckpointManager(str(tmp_path), keep=2)
    (tmp_path / "ckpt-mine").mkdir()  # a user's folder that only looks like a checkpoint
    (tmp_path / "ckpt-000000000").mkdir()  # the checkpoint name, but not a written checkpoint (no state.json)
    arrays = {"v0": np.zeros(3, np.float32)}
    for step in (1, 2, 3):
        manager.save(arrays, {"global_step": step})
    assert sorted(os.listdir(tmp_path)) == ["ckpt-000000000", "ckpt-000000002", "ckpt-000000003", "ckpt-mine",
                                            "latest"]
    assert manager.latest().endswith("ckpt-000000003")
    (tmp_path / "ckpt-000000002" / "notes.txt").write_text("mine")  # a user's file in a checkpoint: never pruned
    for step in (999_999_999, 1_000_000_000):  # past 9 digits the names no longer sort as text: by step
        manager.save(arrays, {"global_step": step})
    assert [n for n in sorted(os.listdir(tmp_path)) if n[5:].isdigit() and n != "ckpt-000000000"] == [
        "ckpt-000000002", "ckpt-1000000000", "ckpt-999999999"]
    assert (tmp_path / "ckpt-000000002" / "notes.txt").read_text() == "mine"


def test_sample_grid_replaces_its_own_pictures_and_refuses_a_users(tmp_path):
    from PIL import Image

    model = zoo.get("nf_digits", steps_per_level=1, hidden_channels=8)
    model.initialize(zoo.load_digits_images()[0][:64])
    grid = training.SampleGrid(str(tmp_path), columns=2)
    grid.set_model(model)
    model.stop_training = False  # as fit sets it
    grid.on_epoch_end(0)
    grid.on_epoch_end(0)  # its own epoch_0001.png (a resumed epoch): replaced
    Image.new("L", (4, 4)).save(tmp_path / "epoch_0002.png")  # a user's picture under the name of the next grid
    before = (tmp_path / "epoch_0002.png").read_bytes()
    with pytest.raises(FileExistsError, match="epoch_0002.png is not a file this project wrote"):
        grid.on_epoch_end(1)
    assert (tmp_path / "epoch_0002.png").read_bytes() == before
    assert zoo.evaluation.pictures.is_project_png(str(tmp_path / "epoch_0001.png"))


def test_training_settings_layering_and_schedule():
    settings = training.training_settings("nf_digits", {"global_clipnorm": 1.0})
    assert settings["learning_rate"] == 1e-3 and settings["warmup_steps"] == 100  # the preset's
    assert settings["global_clipnorm"] == 1.0 and training.training_settings("nf_celeba")["learning_rate"] == 1e-4
    with pytest.raises(ValueError, match="Unknown training setting"):
        training.training_settings("nf_digits", {"lr": 1.0})
    schedule = training.learning_rate_schedule(dict(settings, warmup_steps=10), total_steps=110)
    rates = [float(schedule(step)) for step in (0, 5, 10, 60, 110)]
    np.testing.assert_allclose(rates, [0.0, 5e-4, 1e-3, 5e-4, 0.0], atol=1e-9)
    constant = training.learning_rate_schedule(dict(settings, warmup_steps=0, decay="none"), total_steps=50)
    np.testing.assert_allclose([float(constant(s)) for s in (0, 25, 50)], [1e-3] * 3)
    optimizer = training.make_optimizer(settings, 100)
    assert optimizer.global_clipnorm == 1.0


def test_step_decay_and_the_two_weight_decay_forms():
    spread = training.training_settings("spread_fading_square")  # the spread paper's optimizer, as a preset setting
    assert spread["decay"] == "step" and spread["weight_decay_form"] == "coupled" and spread["warmup_steps"] == 0
    schedule = training.learning_rate_schedule(dict(spread, decay_every=10, decay_rate=0.5), total_steps=100)
    np.testing.assert_allclose([float(schedule(s)) for s in (0, 9, 10, 25, 30)],
                               [4e-3, 4e-3, 2e-3, 1e-3, 5e-4], rtol=1e-6)
    coupled = training.make_optimizer(spread, 100)
    assert isinstance(coupled, training.AdamL2) and coupled.l2 == 0.1 and coupled.global_clipnorm is None
    decoupled = training.make_optimizer(training.training_settings("spread_sin"), 100)
    assert type(decoupled) is keras.optimizers.AdamW and decoupled.weight_decay == 0.1
    # one update of each form on w = 1 with a zero data gradient: coupled decay moves it by the full learning rate
    # (Adam normalizes g + l2 w), decoupled by lr * weight_decay
    for optimizer, expected in ((training.make_optimizer(dict(spread, decay="none"), 1), 1 - 4e-3),
                                (training.make_optimizer(dict(spread, decay="none", weight_decay_form="decoupled"), 1),
                                 1 - 4e-3 * 0.1)):
        w = keras.Variable(np.ones(3, np.float32))
        optimizer.apply_gradients([(keras.ops.zeros(3), w)])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(w), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="no warm-up"):
        training.learning_rate_schedule(dict(spread, warmup_steps=5), 100)
    with pytest.raises(ValueError, match="decay_every"):
        training.learning_rate_schedule(dict(spread, decay_every=None), 100)
    with pytest.raises(ValueError, match="weight_decay_form"):
        training.make_optimizer(dict(spread, weight_decay_form="l2"), 100)


def test_epoch_order_depends_only_on_seed_and_epoch():
    data = np.arange(100, dtype=np.float32)[:, None]
    first = np.concatenate([b.numpy() for b in training.epoch_dataset(data, 3, 10, seed=7)])
    again = np.concatenate([b.numpy() for b in training.epoch_dataset(data, 3, 10, seed=7, skip_batches=4)])
    np.testing.assert_array_equal(first[40:], again)
    other = np.concatenate([b.numpy() for b in training.epoch_dataset(data, 4, 10, seed=7)])
    assert not np.array_equal(first, other) and sorted(first[:, 0]) == list(range(100))
    # One dataset per epoch: tf.data's autotuning model is off, else dropping the iterator at the epoch's end waits
    # for the autotuning thread's next (doubling) wake-up (zoo.training.data.short_lived).
    assert training.epoch_dataset(data, 3, 10, seed=7).options().autotune.enabled is False


def test_bad_arguments_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="Unknown strategy"):
        training.make_strategy("horovod")
    with pytest.raises(KeyError, match="Unknown dataset"):
        training.load_training_data("imagenet")
    with pytest.raises(ValueError, match="fewer than one global batch"):
        training.train(model="nf_spiral", dataset="spiral", num_examples=10, batch_size=64, out=str(tmp_path),
                       verbose=0)
    # Counts are checked before anything is built or written (epochs=0 once wrote an untrained out/final;
    # num_examples=0 meant 10,000 manifold points, -5 dropped the last 5 images; batch_size=0 divided by zero).
    for name, value, rule in (("epochs", 0, ">= 1"), ("epochs", -1, ">= 1"), ("epochs", 2.0, ">= 1"),
                              ("batch_size", 0, ">= 1"), ("num_examples", 0, ">= 1 or None"),
                              ("num_examples", -5, ">= 1 or None"), ("checkpoint_every", -1, ">= 0"),
                              ("sample_every", True, ">= 0")):
        out = tmp_path / f"{name}_{value}"
        with pytest.raises(ValueError, match=f"`{name}` must be an int {rule}"):
            training.train(model="nf_spiral", dataset="spiral", out=str(out), verbose=0, **{name: value})
        assert not out.exists()
    with pytest.raises(ValueError, match="`num_examples` must be None"):
        training.load_training_data("spiral", num_examples=0)


def test_user_files_at_a_runs_output_paths_are_refused_before_training(tmp_path):
    kwargs = dict(model="nf_spiral", dataset="spiral", epochs=1, batch_size=100, num_examples=300,
                  model_overrides={"num_couplings": 2, "hidden_units": 8}, verbose=0, sample_every=0,
                  tensorboard=False)
    for name in ("final", "best"):
        out = tmp_path / name
        (out / name).mkdir(parents=True)
        (out / name / "thesis.tex").write_text("mine")
        with pytest.raises(FileExistsError, match=f"zoo.train writes its {name} model to .*that flow-zoo did not "
                                                  "write.*checked before training"):
            training.train(out=str(out), **kwargs)
        assert (out / name / "thesis.tex").read_text() == "mine" and not (out / "checkpoints").exists()
    out = tmp_path / "history"
    out.mkdir()
    (out / "history.json").write_text('{"my": "notes"}')
    with pytest.raises(FileExistsError, match="history.json is not a history this project wrote"):
        training.train(out=str(out), **kwargs)
    assert (out / "history.json").read_text() == '{"my": "notes"}' and not (out / "checkpoints").exists()
    # The project's own outputs are replaced: a finished run, run again with resume, rewrites its history.
    (out / "history.json").unlink()
    training.train(out=str(out), **kwargs)
    assert training.trainer._is_history_file(str(out / "history.json"))
    training.train(out=str(out), resume=True, **kwargs)
    # A user's file added inside the run's own final/ (which the final write would delete) is refused up front too.
    (out / "final" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="writes its final model to .*also holds notes.txt.*checked before"):
        training.train(out=str(out), resume=True, **dict(kwargs, epochs=2))
    assert (out / "final" / "notes.txt").read_text() == "mine"
    # A picture the run would write (samples/epoch_0001.png) that it did not write: refused before the epoch runs.
    out = tmp_path / "grids"
    (out / "samples").mkdir(parents=True)
    (out / "samples" / "epoch_0001.png").write_bytes(b"my photo")
    with pytest.raises(FileExistsError, match="epoch_0001.png is not a file this project wrote .*PNG text chunk"):
        training.train(out=str(out), **dict(kwargs, sample_every=1))
    assert (out / "samples" / "epoch_0001.png").read_bytes() == b"my photo"
    assert not (out / "history.json").exists() and not (out / "final").exists()

def test_continuous_models_refuse_integer_data_and_train_scales_uint8_images(tmp_path):
    with pytest.raises(ValueError, match="dtype int32.*takes float data"):
        zoo.get("nf_spiral").log_prob(np.zeros((2, 2), np.int32))
    squares = zoo.manifolds.fading_squares(64, seed=0).data  # uint8 pixels, as the loaders give them
    model = zoo.get("spread_fading_square", steps_per_level=1, hidden_channels=4)
    with pytest.raises(ValueError, match="uint8"):
        model.log_prob(squares[:2])
    result = training.train(model="spread_fading_square", dataset=squares, epochs=1, batch_size=32,
                            out=str(tmp_path), model_overrides={"steps_per_level": 1, "hidden_channels": 4},
                            verbose=0, sample_every=1, tensorboard=False, validation=False)
    assert np.isfinite(result.history[0]["loss"])
    assert os.path.getsize(tmp_path / "samples" / "epoch_0001.png") > 100  # float images drawn as a grid


def test_cli_refuses_a_foreign_saved_model_folder_before_training(tmp_path):
    target = tmp_path / "run" / "saved_model" / "1"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    result = subprocess.run(_cli(tmp_path / "run", "--saved_model"), capture_output=True, text=True, env=_env(),
                            cwd=ROOT, timeout=600)
    assert result.returncode != 0 and "the run exports its SavedModel to" in result.stderr, result.stderr[-2000:]
    assert "that flow-zoo did not write" in result.stderr, result.stderr[-2000:]
    assert (target / "notes.txt").read_text() == "mine" and not (tmp_path / "run" / "checkpoints").exists()
