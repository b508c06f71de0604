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
_REPO = os.path.dirname(os.path.dirname(_HERE))  # the repository root (zoo/data -> .)

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


def _find_dir(name, data_dir, filenames, subdirs=("",)):
    """The first search place (or one of its ``subdirs``) holding one of ``filenames``.

    Search order: ``data_dir``, ``FLOW_ZOO_<NAME>_DIR``, ``FLOW_ZOO_DATA_DIR/<name>``, the
    known local places. Returns ``(directory or None, list of the places looked at)``.

    A place named for this dataset (the ``data_dir`` argument, else
    ``FLOW_ZOO_<NAME>_DIR``) is the only one used: when it lacks the files,
    ``DatasetNotFoundError`` names it rather than another copy being loaded
    in silence (a mistyped path, or a folder meant to hold a private copy).
    """
    env_name = f"FLOW_ZOO_{name.upper()}_DIR"
    named = ("data_dir argument", data_dir) if data_dir else (
        (env_name, os.environ[env_name]) if os.environ.get(env_name) else None)
    if named:
        source, directory = named
        root = _holding(directory, filenames, subdirs)
        if root is not None:
            return root, []
        where = "it does not exist" if not os.path.isdir(directory) else (
            "it holds none of " + ", ".join(filenames) + (f" (also looked in its subfolder(s) "
                                                          f"{', '.join(s for s in subdirs if s)})"
                                                          if any(subdirs) else ""))
        raise DatasetNotFoundError(
            f"{name}: {directory} (the {source}) was named as the place of the data, but {where}. A named place is "
            f"used alone, never swapped for another copy: fix the path, or leave it unset to search "
            f"FLOW_ZOO_DATA_DIR and the known places. To supply it: {HOW_TO_SUPPLY.get(name, 'see the README')}, "
            f"or set {env_name}.")
    candidates = []
    if os.environ.get("FLOW_ZOO_DATA_DIR"):
        candidates.append(("FLOW_ZOO_DATA_DIR", os.path.join(os.environ["FLOW_ZOO_DATA_DIR"], name)))
    candidates += [("known place", p) for p in KNOWN_PLACES.get(name, [])]
    looked = []
    for source, directory in candidates:
        root = _holding(directory, filenames, subdirs)
        if root is not None:
            return root, looked
        looked.append(f"{directory} ({source})")
    return None, looked


def _holding(directory, filenames, subdirs):
    """``directory`` or the first of its ``subdirs`` that holds one of ``filenames``; None if none does."""
    for sub in subdirs:
        root = os.path.join(directory, sub) if sub else directory
        if any(os.path.exists(os.path.join(root, f)) for f in filenames):
            return root
    return None


def _load_idx_dataset(name, split, data_dir, checksums=None):
    if split not in IDX_COUNTS:
        raise ValueError(f"`split` must be 'train' or 'test'; received {split!r}.")
    prefix = "train" if split == "train" else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    directory, looked = _find_dir(name, data_dir, (stems[0], stems[0] + ".gz"))
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
        if not os.path.exists(path):
            raise DatasetCorruptError(f"{directory}: holds the {split} images but not their labels ({stem} or "
                                      f"{stem}.gz); copy the complete set of four idx files there.")
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
    if labels.size and labels.max() >= 10:
        raise DatasetCorruptError(f"{directory}: the {split} labels hold {int(labels.max())}; {name} has the classes "
                                  "0..9, so the labels file is corrupt or of another dataset.")
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


def load_cifar10(split="train", data_dir=None):
    """CIFAR-10 from its python pickles (``data_batch_1..5``, ``test_batch``) as uint8 ``(N, 32, 32, 3)``."""
    import pickle

    if split not in ("train", "test"):
        raise ValueError(f"`split` must be 'train' or 'test'; received {split!r}.")
    files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    directory, looked = _find_dir("cifar10", data_dir, (files[0],), subdirs=("", "cifar-10-batches-py"))
    if directory is None:
        arrays = _load_from_tfds("cifar10", split, looked)
        if arrays is not None:
            return arrays
        raise DatasetNotFoundError(
            f"cifar10 ({split}) not found. Looked in: {'; '.join(looked) or 'nowhere'}; and tensorflow-datasets' "
            f"local copy. To supply it: {HOW_TO_SUPPLY['cifar10']}, or set FLOW_ZOO_CIFAR10_DIR.")
    images, labels = [], []
    for name in files:
        path = os.path.join(directory, name)
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        except (OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as error:
            raise DatasetCorruptError(f"{path}: not a readable CIFAR-10 batch ({type(error).__name__}: {error}).") from error
    return np.concatenate(images), np.concatenate(labels)


# The NIF reference's CelebA preprocessing: aligned 218 x 178 images, every second pixel,
# then rows 26:-19 and columns 12:-13 of the 109 x 89 result: 64 x 64.
CELEBA_NIF_STRIDE = 2
CELEBA_NIF_CROP = ((26, -19), (12, -13))


def celeba_nif_preprocess(image):
    """Stride 2 then the reference crop: an aligned CelebA image (218, 178, 3) -> (64, 64, 3)."""
    (top, bottom), (left, right) = CELEBA_NIF_CROP
    return image[::CELEBA_NIF_STRIDE, ::CELEBA_NIF_STRIDE][top:bottom, left:right]


def load_celeba(split="train", data_dir=None, nif_preprocessing=True, limit=None, streaming=False):
    """Aligned CelebA from a folder of ``*.jpg`` (``img_align_celeba``) as uint8 images.

    Splits follow ``list_eval_partition.txt`` when it is beside the images
    (0 train, 1 validation, 2 test); otherwise the sorted file list is split
    deterministically 80 / 10 / 10. ``nif_preprocessing`` applies the NIF
    paper's stride-2 + crop to 64x64. ``streaming=True`` returns the split as a
    ``zoo.data.streaming.ImageFolder`` instead (files read and preprocessed by
    tf.data while training: ``zoo.train(dataset=...)``), not an array.
    """
    from PIL import Image

    splits = {"train": 0, "validation": 1, "test": 2}
    if split not in splits:
        raise ValueError(f"`split` must be one of {sorted(splits)}; received {split!r}.")
    directory, looked = _find_dir("celeba", data_dir, ("000001.jpg",), subdirs=("", "img_align_celeba"))
    if directory is None:
        raise DatasetNotFoundError(
            f"celeba ({split}) not found. Looked in: {'; '.join(looked) or 'nowhere'}. "
            f"To supply it: {HOW_TO_SUPPLY['celeba']}, or set FLOW_ZOO_CELEBA_DIR.")
    names = sorted(f for f in os.listdir(directory) if f.endswith(".jpg"))
    partition_file = next((p for p in (os.path.join(directory, "list_eval_partition.txt"),
                                       os.path.join(os.path.dirname(directory), "list_eval_partition.txt"))
                           if os.path.exists(p)), None)
    if partition_file:
        with open(partition_file) as f:
            partition = dict(line.split() for line in f if line.strip())
        names = [n for n in names if int(partition.get(n, -1)) == splits[split]]
    else:
        cut1, cut2 = int(0.8 * len(names)), int(0.9 * len(names))
        names = {"train": names[:cut1], "validation": names[cut1:cut2], "test": names[cut2:]}[split]
    names = names[:limit] if limit else names
    if not names:
        raise DatasetNotFoundError(f"celeba ({split}): {directory} holds no images of that split (partition file "
                                   "list_eval_partition.txt, or without it an 80 / 10 / 10 split of the sorted .jpg "
                                   "names); supply the aligned CelebA images there.")
    if streaming:
        from zoo.data.streaming import ImageFolder

        return ImageFolder(directory, channels=3, paths=names,
                           preprocess=celeba_nif_preprocess if nif_preprocessing else None)
    images = []
    for name in names:
        image = np.asarray(Image.open(os.path.join(directory, name)).convert("RGB"), dtype=np.uint8)
        if nif_preprocessing:
            if image.shape[:2] != (218, 178):
                raise DatasetCorruptError(f"{name}: the NIF preprocessing expects aligned 218x178 images; got "
                                          f"{image.shape[:2]}.")
            image = celeba_nif_preprocess(image)
        images.append(image)
    return np.stack(images), np.zeros(len(images), dtype=np.int64)


def quantize(images, n_bits):
    """Reduces uint8 images to ``n_bits`` (as the NIF reference does: 3 bits), kept on the 8-bit scale.

    Only uint8 pixels are taken: other dtypes would be cast to uint8 (wrapping
    300 to 44, turning [0, 1] floats black), so they are refused.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"quantize takes uint8 pixels in [0, 255]; received dtype {images.dtype}. Convert first "
                         "(floats in [0, 1]: `np.round(x * 255).astype('uint8')`; whole numbers already in 0..255: "
                         "`x.astype('uint8')`).")
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or not 1 <= n_bits <= 8:
        raise ValueError(f"`n_bits` must be an int in [1, 8]; received {n_bits!r}.")
    shift = 8 - int(n_bits)
    return ((images >> shift) << shift).astype(np.uint8)


LOADERS = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist, "fmnist": load_fashion_mnist,
           "digits": load_digits, "cifar10": load_cifar10, "celeba": load_celeba}


def load(name, split="train", data_dir=None):
    """Loads a dataset by name (``mnist``, ``fashion_mnist`` / ``fmnist``, ``digits``, ``cifar10``, ``celeba``).

    ``data_dir`` is unused for the digits (they ship with scikit-learn).
    """
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
