"""Offline loaders, synthetic manifolds, the Frechet distance and the Levina-Bickel estimator."""

import gzip
import os

import numpy as np
import pytest
from scipy import stats

from zoo.data import datasets
from zoo.data import manifolds
from zoo.evaluation import metrics

SHARED_MNIST = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))), "shared", "data", "mnist")


def _write_idx(path, array, compress):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)
    return data


@pytest.mark.parametrize("compress", [True, False])
def test_idx_loader_on_tiny_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10000, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 10000).astype(np.uint8)
    suffix = ".gz" if compress else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    x, y = datasets.load_fashion_mnist("test", data_dir=str(tmp_path))
    assert x.shape == (10000, 28, 28, 1) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x[..., 0], images)
    np.testing.assert_array_equal(y, labels)


def test_truncated_or_wrong_files_are_reported(tmp_path):
    data = _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10000, 28, 28), np.uint8), False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(data[:-100])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(10000, np.uint8), False)
    with pytest.raises(datasets.DatasetCorruptError, match="truncated or corrupt"):
        datasets.load_fashion_mnist("test", data_dir=str(tmp_path))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(datasets.DatasetCorruptError, match="bad magic"):
        datasets.load_fashion_mnist("test", data_dir=str(tmp_path))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10000, 28, 28), np.uint8), False)
    with pytest.raises(datasets.DatasetCorruptError, match="md5"):
        datasets.load_mnist("test", data_dir=str(tmp_path))  # right structure, wrong content for MNIST


def test_missing_data_lists_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.setitem(datasets.KNOWN_PLACES, "fashion_mnist", [str(tmp_path / "nowhere")])
    monkeypatch.delenv("FLOW_ZOO_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setenv("FLOW_ZOO_DATA_DIR", str(tmp_path / "data_root"))
    with pytest.raises(datasets.DatasetNotFoundError) as error:
        datasets.load_fashion_mnist("train")
    message = str(error.value)
    for place in ("data_root/fashion_mnist (FLOW_ZOO_DATA_DIR)", "nowhere (known place)",
                  "tensorflow-datasets", "apt-get install -y dataset-fashion-mnist", "FLOW_ZOO_FASHION_MNIST_DIR"):
        assert place in message, message


@pytest.mark.parametrize("named_by", ["argument", "environment"])
@pytest.mark.parametrize("place", ["empty", "missing"])
def test_a_named_data_folder_without_the_files_is_refused_not_swapped_for_another_copy(tmp_path, monkeypatch,
                                                                                       named_by, place):
    copy = tmp_path / "another_copy"  # a complete copy in a known place: it must not be loaded instead
    copy.mkdir()
    _write_idx(copy / "t10k-images-idx3-ubyte", np.zeros((10000, 28, 28), np.uint8), False)
    _write_idx(copy / "t10k-labels-idx1-ubyte", np.zeros(10000, np.uint8), False)
    monkeypatch.setitem(datasets.KNOWN_PLACES, "fashion_mnist", [str(copy)])
    monkeypatch.delenv("FLOW_ZOO_FASHION_MNIST_DIR", raising=False)
    assert datasets.load_fashion_mnist("test")[0].shape == (10000, 28, 28, 1)  # nothing named: the known place
    named = tmp_path / "my_copy"
    if place == "empty":
        named.mkdir()
    if named_by == "argument":
        call = lambda: datasets.load_fashion_mnist("test", data_dir=str(named))  # noqa: E731
        source = "the data_dir argument"
    else:
        monkeypatch.setenv("FLOW_ZOO_FASHION_MNIST_DIR", str(named))
        call = lambda: datasets.load_fashion_mnist("test")  # noqa: E731
        source = "the FLOW_ZOO_FASHION_MNIST_DIR"
    with pytest.raises(datasets.DatasetNotFoundError) as error:
        call()
    message = str(error.value)
    assert f"{named} ({source})" in message and "used alone, never swapped for another copy" in message
    assert ("does not exist" if place == "missing" else "holds none of t10k-images-idx3-ubyte") in message


def test_quantize_takes_uint8_pixels_and_n_bits_in_1_to_8():
    np.testing.assert_array_equal(datasets.quantize(np.array([0, 31, 32, 255], np.uint8), 3), [0, 0, 32, 224])
    np.testing.assert_array_equal(datasets.quantize(np.array([7, 255], np.uint8), 8), [7, 255])
    for bad in (np.full(2, 0.9, np.float32), np.full(2, 300, np.int32), np.full(2, -1, np.int64)):
        with pytest.raises(ValueError, match=f"quantize takes uint8 pixels in \\[0, 255\\]; received dtype {bad.dtype}"):
            datasets.quantize(bad, 3)
    for bits in (0, 9, 3.0, True):
        with pytest.raises(ValueError, match="`n_bits` must be an int in \\[1, 8\\]"):
            datasets.quantize(np.zeros(2, np.uint8), bits)


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason="shared/data/mnist is not beside this checkout")
def test_shared_mnist_loads_with_its_checksums():
    x, y = datasets.load_mnist("test")  # found in the known place beside the checkout, md5-checked
    assert x.shape == (10000, 28, 28, 1) and set(np.unique(y)) == set(range(10))


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="dataset-fashion-mnist is not installed (.ci/run installs it)")
def test_fashion_mnist_from_the_debian_package():
    for split, count in (("train", 60000), ("test", 10000)):
        x, y = datasets.load("fmnist", split)
        assert x.shape == (count, 28, 28, 1) and np.bincount(y).tolist() == [count // 10] * 10


def test_digits_split_and_tf_data_pipeline():
    train, _ = datasets.load("digits", "train")
    test, _ = datasets.load("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 297
    batch = next(iter(datasets.as_dataset(train, batch_size=32, seed=1)))
    assert tuple(batch.shape) == (32, 8, 8, 1)
    with pytest.raises(KeyError, match="Unknown dataset 'cifar'"):
        datasets.load("cifar")


def test_manifolds_have_their_stated_ground_truth():
    spiral = manifolds.thin_spiral(2000, seed=0)
    np.testing.assert_allclose(spiral.data, manifolds.thin_spiral_map(spiral.latent[:, 0]), rtol=1e-5, atol=1e-6)
    assert stats.kstest(spiral.latent[:, 0], "expon", args=(0, 0.3)).pvalue > 1e-3
    sin = manifolds.sin_curve(1000, seed=1)
    np.testing.assert_allclose(sin.data[:, 1], np.sin(2 * sin.data[:, 0]), atol=1e-6)
    squares = manifolds.fading_squares(50, seed=2)
    assert squares.data.shape == (50, 32, 32, 1) and squares.data.dtype == np.uint8
    outside = squares.data.copy()
    outside[:, 13:19, 13:19] = 0
    assert not outside.any()
    np.testing.assert_array_equal(squares.data[:, 13, 13, 0], np.round(255 * squares.latent[:, 0]))
    circle = manifolds.von_mises_circle(1000, seed=3)
    np.testing.assert_allclose(np.linalg.norm(circle.data, axis=1), 1.0, atol=1e-6)
    grid = np.linspace(-np.pi, np.pi, 20001)
    assert abs(np.trapezoid(np.exp(circle.latent_log_density(grid)), grid) - 1.0) < 1e-6


@pytest.mark.parametrize("name,expected", [("spiral", 1), ("sin", 1), ("s_curve", 2), ("von_mises", 1)])
def test_levina_bickel_recovers_the_intrinsic_dimension(name, expected):
    manifold = manifolds.GENERATORS[name](3000, seed=0)
    estimate = metrics.levina_bickel_dimension(manifold.data, k=20)
    assert abs(estimate - expected) <= 0.2 * expected, estimate


def test_levina_bickel_on_fading_squares_and_full_dimensional_data():
    squares = manifolds.fading_squares(2000, seed=0, quantize=False)
    assert abs(metrics.levina_bickel_dimension(squares.data, k=20) - 1) <= 0.2
    gaussian = np.random.default_rng(1).standard_normal((3000, 5))
    assert abs(metrics.levina_bickel_dimension(gaussian, k=20) - 5) <= 1.0


def test_frechet_distance_closed_form_and_scipy_reference():
    rng = np.random.default_rng(0)
    # Closed form: isotropic Gaussians N(m1, a^2 I), N(m2, b^2 I): |m1 - m2|^2 + k (a - b)^2.
    k = 16
    m1, m2 = rng.standard_normal(k), rng.standard_normal(k)
    value = metrics.frechet_distance(m1, 4.0 * np.eye(k), m2, 0.25 * np.eye(k))
    assert abs(value - (np.sum((m1 - m2) ** 2) + k * (2.0 - 0.5) ** 2)) < 1e-9
    a, b = rng.standard_normal((k, k)), rng.standard_normal((k, k))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(k), b @ b.T + 0.1 * np.eye(k)
    np.testing.assert_allclose(metrics.frechet_distance(m1, cov1, m2, cov2),
                               metrics.scipy_frechet_distance(m1, cov1, m2, cov2), rtol=1e-7)


def test_frechet_distance_of_feature_sets():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((2000, 8))
    assert abs(metrics.frechet_distance_from_features(features, features)) < 1e-9
    shifted = features + 0.5
    assert metrics.frechet_distance_from_features(features, shifted) > 1.0
    with pytest.raises(ValueError, match="equal k"):
        metrics.frechet_distance_from_features(features, features[:, :4])


def test_cifar10_from_a_user_directory(tmp_path):
    import pickle

    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    expected = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (4, 3072)).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": list(range(4))}, f)
        expected.append(data)
    x, y = datasets.load("cifar10", "train", data_dir=str(tmp_path))
    assert x.shape == (20, 32, 32, 3) and y.tolist() == list(range(4)) * 5
    np.testing.assert_array_equal(x[0, :, :, 0].ravel(), expected[0][0, :1024])  # channel-first rows
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(datasets.DatasetCorruptError, match="not a readable CIFAR-10 batch"):
        datasets.load("cifar10", "test", data_dir=str(tmp_path))


def test_celeba_with_the_nif_preprocessing(tmp_path):
    from PIL import Image

    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    base = np.zeros((218, 178, 3), np.uint8)
    base[::2, ::2][26:-19, 12:-13] = 200  # exactly the region the NIF crop keeps
    for i in range(1, 11):
        Image.fromarray(base).save(folder / f"{i:06d}.jpg", quality=100)
    (tmp_path / "list_eval_partition.txt").write_text("".join(f"{i:06d}.jpg {0 if i <= 8 else 2}\n" for i in range(1, 11)))
    train, _ = datasets.load("celeba", "train", data_dir=str(tmp_path))
    test, _ = datasets.load("celeba", "test", data_dir=str(tmp_path))
    assert train.shape == (8, 64, 64, 3) and test.shape == (2, 64, 64, 3)
    assert train[:, 4:-4, 4:-4].min() > 150  # the kept region is the bright block (JPEG blurs its edges)
    raw, _ = datasets.load_celeba("train", data_dir=str(tmp_path), nif_preprocessing=False, limit=2)
    assert raw.shape == (2, 218, 178, 3)
    # Streamed (read, decoded and cropped by tf.data while training): the same images as the arrays.
    streamed = datasets.load_celeba("train", data_dir=str(tmp_path), streaming=True)
    assert len(streamed) == 8 and streamed.example_shape == (64, 64, 3)
    np.testing.assert_array_equal(streamed.take(8), train)
    np.testing.assert_array_equal(datasets.quantize(np.array([0, 31, 32, 255], np.uint8), 3), [0, 0, 32, 224])
    with pytest.raises(datasets.DatasetNotFoundError, match="FLOW_ZOO_CELEBA_DIR"):
        datasets.load("celeba", "train", data_dir=str(tmp_path / "missing"))


def test_incomplete_or_foreign_idx_sets_and_empty_celeba_splits_are_named(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10000, 28, 28), np.uint8), False)
    with pytest.raises(datasets.DatasetCorruptError, match="holds the test images but not their labels"):
        datasets.load_fashion_mnist("test", data_dir=str(tmp_path))
    labels = np.zeros(10000, np.uint8)
    labels[5] = 200  # not a Fashion-MNIST class
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, False)
    with pytest.raises(datasets.DatasetCorruptError, match="the test labels hold 200; fashion_mnist has the classes"):
        datasets.load_fashion_mnist("test", data_dir=str(tmp_path))
    from PIL import Image

    folder = tmp_path / "celeba"
    folder.mkdir()
    for i in range(3):  # 80 / 10 / 10 of three names leaves the validation split empty
        Image.new("RGB", (178, 218)).save(folder / f"{i + 1:06d}.jpg")
    with pytest.raises(datasets.DatasetNotFoundError, match=r"celeba \(validation\): .* holds no images of that split"):
        datasets.load_celeba("validation", data_dir=str(folder))
