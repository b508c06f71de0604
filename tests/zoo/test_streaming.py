"""File-backed training data: TFRecord shards and image folders read by tf.data (zoo.data.streaming)."""

import os
from collections import Counter

import keras
import numpy as np
import pytest
from PIL import Image

import zoo
from zoo.data import streaming
from zoo.training.data import epoch_dataset, epoch_order

SMALL = dict(num_levels=2, steps_per_level=1, hidden_channels=8)


@pytest.fixture(scope="module")
def digits():
    images = zoo.load_digits_images()[0]  # 1797 digits and their mirror images: a few thousand files
    return np.concatenate([images, images[:, :, ::-1]])[:2400]


@pytest.fixture(scope="module")
def png_folder(digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("png") / "images"
    (folder / "sub").mkdir(parents=True)
    for i, image in enumerate(digits):  # a nested folder too: paths are sorted relative paths
        Image.fromarray(image[..., 0]).save(folder / ("sub" if i >= 1000 else "") / f"{i:05d}.png")
    return str(folder)


def _epoch(source, epoch, batch=32, seed=0, skip=0):
    return np.concatenate([np.asarray(b) for b in epoch_dataset(source, epoch, batch, seed, skip_batches=skip)])


def test_an_image_folder_reads_the_images_in_the_array_order(digits, png_folder):
    folder = streaming.ImageFolder(png_folder)
    assert len(folder) == 2400 and folder.example_shape == (8, 8, 1)
    np.testing.assert_array_equal(folder.take(2400), digits)
    for epoch in (0, 3):  # exactly the batches of the in-memory path, epoch by epoch and after a skip
        np.testing.assert_array_equal(_epoch(folder, epoch), _epoch(digits, epoch))
    np.testing.assert_array_equal(_epoch(folder, 1, skip=4), digits[epoch_order(2400, 1, 32, 0)[4:].reshape(-1)])


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_records_round_trip_and_a_deterministic_epoch_order(digits, png_folder, tmp_path, encoding):
    records = streaming.write_records(streaming.ImageFolder(png_folder), str(tmp_path / "records"),
                                      examples_per_shard=512, encoding=encoding)
    assert len(records) == 2400 and [s["count"] for s in records.index["shards"]] == [512] * 4 + [352]
    np.testing.assert_array_equal(records.take(2400), digits)
    first = _epoch(records, 1)
    assert first.shape == (75 * 32, 8, 8, 1)
    np.testing.assert_array_equal(_epoch(records, 1), first)  # a function of (seed, epoch) only
    np.testing.assert_array_equal(_epoch(records, 1, skip=3), first[3 * 32:])  # resume mid-epoch
    assert not np.array_equal(_epoch(records, 2), first) and not np.array_equal(_epoch(records, 1, seed=1), first)
    assert records.epoch_dataset(1, 32, 0).options().autotune.enabled is False  # one epoch per dataset (short_lived)
    # An epoch draws without replacement: no image more often than the data holds it.
    seen, held = Counter(image.tobytes() for image in first), Counter(image.tobytes() for image in digits)
    assert all(count <= held[key] for key, count in seen.items())


def test_records_refuse_damaged_shards_and_bad_input(digits, tmp_path):
    target = str(tmp_path / "records")
    streaming.write_records(digits, target, examples_per_shard=100)
    shard = os.path.join(target, "part-00001.tfrecord")
    data = bytearray(open(shard, "rb").read())
    data[40] ^= 0xFF  # same size, other bytes: only the hash sees it
    open(shard, "wb").write(bytes(data))
    streaming.Records(target)
    with pytest.raises(ValueError, match="sha256 differs"):
        streaming.Records(target, verify=True)
    open(shard, "wb").write(bytes(data[:-10]))
    with pytest.raises(ValueError, match="truncated"):
        streaming.Records(target)
    with pytest.raises(FileExistsError):  # never replaced without overwrite=True
        streaming.write_records(digits, target)
    streaming.write_records(digits[:10], target, overwrite=True)
    assert len(streaming.Records(target)) == 10
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's file")
    with pytest.raises(FileExistsError):  # not a folder the project wrote: refused even with overwrite
        streaming.write_records(digits, str(mine), overwrite=True)
    assert (mine / "notes.txt").read_text() == "a user's file"
    with pytest.raises(ValueError, match="uint8 images"):
        streaming.write_records(digits.astype("float32"), str(tmp_path / "f"))
    with pytest.raises(ValueError, match="one records folder holds one shape"):
        streaming.write_records([digits[:4], np.zeros((4, 9, 9, 1), np.uint8)], str(tmp_path / "g"))
    with pytest.raises(FileNotFoundError, match="records.json"):
        streaming.Records(str(mine))


def test_image_folders_refuse_mixed_sizes_and_modes(tmp_path):
    (tmp_path / "a").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "a" / "1.png")
    Image.new("L", (9, 8)).save(tmp_path / "a" / "2.png")
    with pytest.raises(ValueError, match="different sizes.*resize"):
        streaming.ImageFolder(str(tmp_path / "a"))
    (tmp_path / "b").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "b" / "1.png")
    Image.new("RGBA", (8, 8)).save(tmp_path / "b" / "2.png")
    with pytest.raises(ValueError, match="channels=1.*channels=3"):
        streaming.ImageFolder(str(tmp_path / "b"))
    assert streaming.ImageFolder(str(tmp_path / "b"), channels=3).example_shape == (8, 8, 3)
    (tmp_path / "c").mkdir()
    with pytest.raises(FileNotFoundError, match="no .png"):
        streaming.ImageFolder(str(tmp_path / "c"))


def test_a_file_damaged_after_its_header_is_named_up_front_with_verify_and_by_zoo_train(digits, tmp_path):
    folder = tmp_path / "damaged"
    folder.mkdir()
    for i, image in enumerate(digits[:96]):
        Image.fromarray(image[..., 0]).save(folder / f"{i:03d}.png")
    damaged = f"{epoch_order(96, 0, 32, 0)[2, 0]:03d}.png"  # in the last batch of epoch 1: checkpoints before it
    with open(folder / damaged, "r+b") as f:  # the header (size, mode) survives; the pixel data is cut
        f.truncate(60)
    assert streaming.ImageFolder(str(folder)).example_shape == (8, 8, 1)  # headers only: not found here
    with pytest.raises(ValueError, match=rf"1 of 96 image files do not decode: {damaged}.*verify=True"):
        streaming.ImageFolder(str(folder), verify=True)
    # Without verify, tf.data fails at the file naming none; zoo.train finds it and says what is kept.
    with pytest.raises(ValueError, match=rf"{damaged} .*The checkpoint .*ckpt-0+2 is intact.*resume=True") as caught:
        zoo.train(model="nf_digits", dataset=str(folder), epochs=2, batch_size=32, model_overrides=SMALL,
                  checkpoint_every=1, sample_every=0, tensorboard=False, verbose=0, validation=False,
                  out=str(tmp_path / "run"))
    assert "PNG" in str(caught.value.__cause__)  # TensorFlow's own error, kept as the cause


def test_a_dataset_name_that_is_also_a_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    os.mkdir("digits")
    with pytest.raises(ValueError, match="both a dataset name and a folder.*'./digits'"):
        streaming.is_folder_path("digits")
    assert streaming.is_folder_path("./digits") and not streaming.is_folder_path("mnist")


def test_zoo_train_from_a_folder_equals_training_from_arrays(digits, png_folder, tmp_path):
    args = dict(model="nf_digits", epochs=1, batch_size=32, model_overrides=SMALL, checkpoint_every=0,
                sample_every=0, tensorboard=False, verbose=0)
    from_arrays = zoo.train(dataset=(digits, digits[:1000]), out=str(tmp_path / "arrays"), **args)
    validation = streaming.write_records(digits[:1000], str(tmp_path / "validation"))
    from_files = zoo.train(dataset=png_folder, validation_dataset=validation.directory, out=str(tmp_path / "files"),
                           **args)
    for a, b in zip(from_arrays.model.get_weights(), from_files.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(from_files.history[0]["val_loss"], from_arrays.history[0]["val_loss"], rtol=1e-6)


def test_zoo_train_from_records_resumes_to_the_same_weights(digits, tmp_path):
    records = streaming.write_records(digits[:300], str(tmp_path / "records"), examples_per_shard=50)
    args = dict(model="nf_digits", dataset=records, batch_size=32, model_overrides=SMALL, checkpoint_every=0,
                sample_every=0, tensorboard=False, verbose=0)
    straight = zoo.train(epochs=2, out=str(tmp_path / "straight"), **args)

    class Crash(keras.callbacks.Callback):  # the process dies in epoch 2, after its checkpoint at step 12
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == 14:
                raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        zoo.train(epochs=2, out=str(tmp_path / "resumed"), callbacks=[Crash()], **dict(args, checkpoint_every=4))
    resumed = zoo.train(epochs=2, out=str(tmp_path / "resumed"), resume=True, **dict(args, checkpoint_every=4))
    assert resumed.resumed_from_step == 12  # 9 steps per epoch: 3 batches into epoch 2
    for a, b in zip(straight.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="num_examples"):
        zoo.train(epochs=1, out=str(tmp_path / "subset"), num_examples=100, **args)


def test_file_backed_autoencoder_priors_and_float_models(digits, tmp_path):
    records = streaming.write_records(digits[:300], str(tmp_path / "records"), examples_per_shard=128)
    model = zoo.get("ae_digits_8")
    np.testing.assert_allclose(model.encode_dataset(records, batch_size=64), model.encode_dataset(digits[:300], 64),
                               rtol=1e-6)
    keras.utils.set_random_seed(0)
    spread = zoo.get("spread_fading_square", steps_per_level=1, hidden_channels=4, num_couplings=1, hidden_units=4)
    images = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 1)).astype("uint8")
    convert = streaming.model_input_converter(spread, streaming.write_records(images, str(tmp_path / "sq")))
    np.testing.assert_allclose(np.asarray(convert(images)), spread.as_model_input(images), rtol=1e-7)
    assert streaming.model_input_converter(model, records) is None  # a pixel model takes the uint8 images
