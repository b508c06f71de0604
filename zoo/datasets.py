"""Offline image datasets as uint8 arrays and tf.data pipelines.

Every loader looks, in order, in: the explicit ``data_dir`` argument, an
environment variable (``FLOW_ZOO_<NAME>_DIR``, then ``FLOW_ZOO_DATA_DIR/<name>``),
the known local places, and tensorflow-datasets' local copy (``download=False``:
nothing is fetched). When nothing is found, the error lists every place looked
and how to supply the data. Images are uint8 ``(N, H, W, C)``, labels int64.

MNIST is checked against the md5 of the uncompressed idx files (shared/data/README.md);
Fashion-MNIST (Debian's ``dataset-fashion-mnist``, re-compressed, so archive
checksums differ) is checked for idx structure and example counts.
"""

import gzip
import hashlib
import os

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(_HERE)

MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
IDX_COUNTS = {"train": 60000, "test": 10000}
KNOWN_PLACES = {
    "mnist": [os.path.join(os.path.dirname(_REPO), "shared", "data", "mnist"),
              os.path.join(_REPO, "shared", "data", "mnist")],
    "fashion_mnist": ["/usr/share/datasets/fashion-mnist"],
}
TFDS_NAMES = {"mnist": "mnist", "fashion_mnist": "fashion_mnist", "cifar10": "cifar10", "celeba": "celeb_a"}
HOW_TO_SUPPLY = {
    "mnist": "pass data_dir= a folder with the four MNIST idx files (.gz or raw)",
    "fashion_mnist": "run `apt-get install -y dataset-fashion-mnist` (files under /usr/share/datasets/fashion-mnist) "
                     "or pass data_dir= a folder with the four idx files",
    "cifar10": "pass data_dir= a folder with CIFAR-10's python pickles (data_batch_1..5, test_batch)",
    "celeba": "pass data_dir= a folder of aligned CelebA images (img_align_celeba/*.jpg)",
}


class DatasetNotFoundError(FileNotFoundError):
    """No copy of a dataset was found; the message lists every place looked."""


class DatasetCorruptError(ValueError):
    """A dataset file exists but is truncated, malformed or fails its checksum."""


def _read_maybe_gz(path):
    with open(path, "rb") as f:
        head = f.read(2)
    opener = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as error:
        raise DatasetCorruptError(f"{path}: cannot be read ({error}); the file is truncated or corrupt.") from error


def read_idx(path):
    """Parses an idx file (raw or gzip-compressed) into a uint8 array, checking its header against its size."""
    data = _read_maybe_gz(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetCorruptError(f"{path}: not an idx file of unsigned bytes (bad magic {data[:4]!r}).")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DatasetCorruptError(
            f"{path}: header says shape {shape} ({expected} bytes) but the file holds {len(data)} bytes; "
            "it is truncated or corrupt."
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape), data


def _find_idx_dir(name, data_dir, stem):
    looked = []
    candidates = []
    if data_dir:
        candidates.append(("data_dir argument", data_dir))
    env_name = f"FLOW_ZOO_{name.upper()}_DIR"
    if os.environ.get(env_name):
        candidates.append((env_name, os.environ[env_name]))
    if os.environ.get("FLOW_ZOO_DATA_DIR"):
        candidates.append(("FLOW_ZOO_DATA_DIR", os.path.join(os.environ["FLOW_ZOO_DATA_DIR"], name)))
    candidates += [("known place", p) for p in KNOWN_PLACES.get(name, [])]
    for source, directory in candidates:
        for suffix in ("", ".gz"):
            if os.path.exists(os.path.join(directory, stem + suffix)):
                return directory, looked
        looked.append(f"{directory} ({source})")
    return None, looked


def _load_idx_dataset(name, split, data_dir, checksums=None):
    if split not in IDX_COUNTS:
        raise ValueError(f"`split` must be 'train' or 'test'; received {split!r}.")
    prefix = "train" if split == "train" else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    directory, looked = _find_idx_dir(name, data_dir, stems[0])
    if directory is None:
        arrays = _load_from_tfds(name, split, looked)
        if arrays is not None:
            return arrays
        raise DatasetNotFoundError(
            f"{name} ({split}) not found. Looked in: {'; '.join(looked) or 'nowhere'}; and tensorflow-datasets' "
            f"local copy. To supply it: {HOW_TO_SUPPLY[name]}, or set FLOW_ZOO_{name.upper()}_DIR."
        )
    arrays = []
    for stem in stems:
        path = os.path.join(directory, stem) if os.path.exists(os.path.join(directory, stem)) else \
            os.path.join(directory, stem + ".gz")
        array, raw = read_idx(path)
        if checksums and hashlib.md5(raw).hexdigest() != checksums[stem]:
            raise DatasetCorruptError(f"{path}: md5 of the content is {hashlib.md5(raw).hexdigest()}, expected "
                                      f"{checksums[stem]}.")
        arrays.append(array)
    images, labels = arrays
    if len(images) != len(labels) or (checksums is None and len(images) != IDX_COUNTS[split]):
        raise DatasetCorruptError(
            f"{directory}: {len(images)} images and {len(labels)} labels for the {split} split "
            f"(expected {IDX_COUNTS[split]} of each)."
        )
    return images[..., None], labels.astype(np.int64)


def _load_from_tfds(name, split, looked):
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        looked.append("tensorflow-datasets (not installed)")
        return None
    try:
        dataset = tfds.load(TFDS_NAMES[name], split=split, download=False, batch_size=-1, as_supervised=True)
    except Exception as error:  # tfds raises several types when the data is absent
        looked.append(f"tensorflow-datasets local copy ({type(error).__name__})")
        return None
    images, labels = tfds.as_numpy(dataset)
    return images.astype(np.uint8), labels.astype(np.int64)


def load_mnist(split="train", data_dir=None):
    """MNIST as ``(images uint8 (N, 28, 28, 1), labels int64)``, md5-checked."""
    return _load_idx_dataset("mnist", split, data_dir, MNIST_MD5)


def load_fashion_mnist(split="train", data_dir=None):
    """Fashion-MNIST as ``(images uint8 (N, 28, 28, 1), labels int64)``, structure-checked."""
    return _load_idx_dataset("fashion_mnist", split, data_dir)


def load_digits_images():
    """scikit-learn's bundled 8x8 digits as uint8 pixels.

    The 17 grey levels (0..16) are mapped to 8-bit pixels by
    ``round(v * 255 / 16)``. At ``n_bits=5`` all 17 levels stay distinct.

    Returns:
        ``(images, labels)``: uint8 array ``(1797, 8, 8, 1)`` and int64 labels.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, bunch.target.astype(np.int64)


def load_digits(split="train", test_size=297, seed=0):
    """The digits with a fixed, seeded train / test split (the demo's split)."""
    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test'; received {split!r}.")
    images, labels = load_digits_images()
    order = np.random.default_rng(seed).permutation(len(images))
    index = order[test_size:] if split == "train" else order[:test_size]
    return images[index], labels[index]


LOADERS = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist, "fmnist": load_fashion_mnist,
           "digits": load_digits}


def load(name, split="train", data_dir=None):
    """Loads a dataset by name (``mnist``, ``fashion_mnist`` / ``fmnist``, ``digits``; ``data_dir`` unused for digits)."""
    if name not in LOADERS:
        raise KeyError(f"Unknown dataset '{name}'; known: {', '.join(sorted(LOADERS))}.")
    if name == "digits":
        return load_digits(split)
    return LOADERS[name](split, data_dir)


def as_dataset(images, labels=None, batch_size=64, shuffle=True, seed=0, drop_remainder=False):
    """A ``tf.data.Dataset`` that ``model.fit`` takes directly (``(x,)`` or ``(x, y)`` batches)."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(images if labels is None else (images, labels))
    if shuffle:
        data = data.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return data.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
