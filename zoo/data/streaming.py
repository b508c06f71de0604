r"""Image sets that do not fit in memory: TFRecord shards and image folders, read by tf.data.

Two sources of uint8 images of one shape, both ``StreamingImages``:

* ``ImageFolder(directory)``: every PNG / JPEG file under ``directory`` (sorted
  relative paths). Headers are read up front (PIL reads no pixels for that), so
  a file of another shape or mode is refused before training starts.
* ``Records(directory)``: TFRecord shards written by ``write_records`` from an
  array, an ``ImageFolder``, a loader's output or any iterable of uint8 batches,
  with an index file (``records.json``: count, shape, encoding, per-shard counts
  and sha256).

``zoo.train(dataset=source)`` (or ``python -m zoo.train --dataset PATH``) trains
from either; validation from another source (``validation_dataset``). Reads,
decoding and the model-input conversion run in tf.data with parallel calls and
prefetch, and the order of an epoch is a function of ``(seed, epoch)`` only, so
kill-and-resume ends with the same weights as an uninterrupted run:

* an ``ImageFolder`` gives *exactly* the order of in-memory arrays of the same
  images (``zoo.training.data.epoch_dataset``'s seeded permutation, applied to
  the file list; every file is read on its own);
* ``Records`` cannot be read at random, so an epoch reads the shards in a
  permuted order (``np.random.default_rng([seed, epoch])``), deterministically
  interleaved, through a seeded shuffle buffer (``shuffle_buffer`` examples).

Under a multi-worker strategy tf.distribute shards the batches of the epoch
dataset across workers (``AutoShardPolicy.DATA``: each worker takes its part of
every global batch, whatever the number of files).
"""

import hashlib
import json
import os

import numpy as np

from zoo import files

RECORDS_INDEX = "records.json"
RECORDS_FORMAT = "flow_zoo.records/1"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ENCODINGS = ("raw", "png")


class StreamingImages:
    """uint8 images of one shape read from files (see the module docstring); ``len()`` is the number of images."""

    example_shape = None
    dtype = "uint8"

    def __len__(self):
        raise NotImplementedError

    def epoch_dataset(self, epoch, global_batch_size, seed, skip_batches=0, convert=None):
        """The full global batches of epoch ``epoch`` (a ``tf.data.Dataset``), after ``skip_batches`` of them.

        ``convert``: a function applied to each batch in tf.data (the model-input
        conversion, e.g. uint8 -> [0, 1] floats).
        """
        raise NotImplementedError

    def sequential_dataset(self, batch_size, convert=None, limit=None):
        """The images in their stored order, in batches (the last may be short): validation and evaluation."""
        raise NotImplementedError

    def take(self, n):
        """The first ``n`` images in stored order as a NumPy array."""
        batches = [np.asarray(b) for b in self.sequential_dataset(min(n, 1024), limit=n)]
        return np.concatenate(batches)[:n] if batches else np.zeros((0,) + tuple(self.example_shape), np.uint8)

    def iter_batches(self, batch_size=1024):
        """Stored-order NumPy batches (``write_records`` takes any source through this)."""
        for batch in self.sequential_dataset(batch_size):
            yield np.asarray(batch)


def _finish(dataset, batch_size, convert, drop_remainder, take=None, skip=0, length=None):
    """Batches, then keeps the first ``take`` batches and drops ``skip``; states the ``length`` in batches (when the
    source cannot know it); converts; prefetches."""
    import tensorflow as tf

    dataset = dataset.batch(int(batch_size), drop_remainder=drop_remainder)
    if take is not None:
        dataset = dataset.take(int(take))
    if skip:
        dataset = dataset.skip(int(skip))
    if length is not None:  # TFRecord datasets do not know their length; fit's epoch end and progress bar need it
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(int(length)))
    if convert is not None:
        dataset = dataset.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    options.autotune.enabled = False  # one epoch per dataset: see zoo.training.data.short_lived
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _decoder(shape, encoding):
    """Record / file contents -> a uint8 image of ``shape`` (``encoding``: "raw" bytes, or an encoded PNG / JPEG)."""
    import tensorflow as tf

    def decode(contents):
        if encoding == "raw":
            image = tf.io.decode_raw(contents, tf.uint8)
        else:  # PNG or JPEG; JPEG with the accurate integer DCT, which decodes exactly as PIL does (the default
            # fast DCT differed from PIL by up to 105 levels on a sharp edge in the CelebA test)
            channels = int(shape[-1])
            image = tf.cond(tf.io.is_jpeg(contents),
                            lambda: tf.io.decode_jpeg(contents, channels=channels, dct_method="INTEGER_ACCURATE"),
                            lambda: tf.io.decode_png(contents, channels=channels))
        return tf.reshape(image, shape)

    return decode


class ImageFolder(StreamingImages):
    """Every PNG / JPEG file under ``directory`` (recursively, sorted by relative path) as uint8 images.

    Args:
        directory: the folder.
        channels: 1 (grayscale) or 3 (RGB); None: from the first file (``L`` -> 1, ``RGB`` -> 3).
        paths: use these files (relative to ``directory``) instead of listing it.
        preprocess: a function of one decoded image (a tensor) run in tf.data
            after decoding (e.g. the NIF CelebA crop); the example shape is
            what it returns for an image of the files' shape.
        verify: decode every file once now (``unreadable``) and refuse the
            folder if any fails; otherwise only headers are read, and a file
            damaged after its header fails when an epoch reaches it.

    Raises:
        FileNotFoundError: no image files.
        ValueError: files of different sizes, or a mode that is neither ``L`` nor ``RGB`` (say which to use); with
            ``verify``, files that do not decode (named).
    """

    def __init__(self, directory, channels=None, paths=None, preprocess=None, verify=False):
        from PIL import Image

        self.directory = os.path.abspath(directory)
        if not os.path.isdir(self.directory):
            raise FileNotFoundError(f"{self.directory} is not a directory of images.")
        if paths is None:
            paths = sorted(os.path.relpath(os.path.join(root, name), self.directory)
                           for root, _, names in os.walk(self.directory) for name in names
                           if name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith("."))
        if not paths:
            raise FileNotFoundError(f"{self.directory} holds no {'/'.join(IMAGE_SUFFIXES)} files.")
        self.paths = list(paths)
        sizes, modes = {}, {}
        for path in self.paths:
            with Image.open(os.path.join(self.directory, path)) as image:  # the header only
                sizes.setdefault(image.size, path)
                modes.setdefault(image.mode, path)
        if len(sizes) > 1:
            (a, first), (b, second) = list(sizes.items())[:2]
            raise ValueError(f"{self.directory}: images of different sizes ({first}: {a[0]}x{a[1]}, {second}: "
                             f"{b[0]}x{b[1]}); a model takes one shape: resize them to one size first.")
        if channels is None:
            if set(modes) not in ({"L"}, {"RGB"}):
                raise ValueError(f"{self.directory}: image modes {sorted(modes)} (e.g. {next(iter(modes.values()))}); "
                                 "pass channels=1 (read as grayscale) or channels=3 (read as RGB).")
            channels = 1 if set(modes) == {"L"} else 3
        if channels not in (1, 3):
            raise ValueError(f"`channels` must be 1 or 3; received {channels!r}.")
        width, height = next(iter(sizes))
        self.file_shape = (height, width, int(channels))
        self.preprocess = preprocess
        self.example_shape = self.file_shape if preprocess is None else tuple(
            int(d) for d in np.shape(preprocess(np.zeros(self.file_shape, np.uint8))))
        if verify:
            bad = self.unreadable()
            if bad:
                raise ValueError(self.unreadable_message(bad))

    def unreadable(self):
        """The files (relative paths) whose pixels do not decode, e.g. truncated after their header (reads them all)."""
        from PIL import Image

        bad = []
        for path in self.paths:
            try:
                with Image.open(os.path.join(self.directory, path)) as image:
                    image.load()
            except (OSError, SyntaxError, ValueError) as error:  # PIL's errors for damaged data
                bad.append((path, str(error)))
        return bad

    def unreadable_message(self, bad):
        shown = "; ".join(f"{path} ({why})" for path, why in bad[:5])
        return (f"{self.directory}: {len(bad)} of {len(self)} image files do not decode: {shown}"
                + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
                + ". Replace or remove them (ImageFolder(..., verify=True) checks every file before training).")

    def __len__(self):
        return len(self.paths)

    def __repr__(self):
        return f"ImageFolder({self.directory!r}: {len(self)} images of shape {self.example_shape})"

    def _read(self, paths, parallel=True):
        import tensorflow as tf

        decode = _decoder(self.file_shape, "encoded")
        preprocess = self.preprocess or (lambda image: image)
        full = [os.path.join(self.directory, p) for p in paths]
        return tf.data.Dataset.from_tensor_slices(tf.constant(full, tf.string)).map(
            lambda path: tf.ensure_shape(preprocess(decode(tf.io.read_file(path))), self.example_shape),
            num_parallel_calls=tf.data.AUTOTUNE if parallel else None, deterministic=True)

    def epoch_dataset(self, epoch, global_batch_size, seed, skip_batches=0, convert=None):
        from zoo.training.data import epoch_order

        indices = epoch_order(len(self), epoch, global_batch_size, seed)[int(skip_batches):].reshape(-1)
        return _finish(self._read([self.paths[i] for i in indices]), global_batch_size, convert, True)

    def sequential_dataset(self, batch_size, convert=None, limit=None):
        return _finish(self._read(self.paths[:limit]), batch_size, convert, False)


class Records(StreamingImages):
    """TFRecord shards written by ``write_records`` (``directory/records.json`` indexes them).

    Args:
        directory: the folder ``write_records`` wrote.
        shuffle_buffer: examples in the seeded shuffle buffer of an epoch.
        verify: check every shard's sha256 against the index (reads every byte once).

    Raises:
        FileNotFoundError: no index, or a shard is missing.
        ValueError: the index is not one this project wrote, or a shard's size / hash differs from it.
    """

    def __init__(self, directory, shuffle_buffer=10000, verify=False):
        self.directory = os.path.abspath(directory)
        index_path = os.path.join(self.directory, RECORDS_INDEX)
        if not os.path.exists(index_path):
            raise FileNotFoundError(f"{self.directory} has no {RECORDS_INDEX}: write the shards with "
                                    "zoo.data.streaming.write_records (or pass an image folder as ImageFolder).")
        with open(index_path) as f:
            index = json.load(f)
        if index.get("format") != RECORDS_FORMAT:
            raise ValueError(f"{index_path} is not a {RECORDS_FORMAT} index (format {index.get('format')!r}).")
        self.index = index
        self.example_shape = tuple(index["shape"])
        self.encoding = index["encoding"]
        self.shuffle_buffer = int(shuffle_buffer)
        for shard in index["shards"]:
            path = os.path.join(self.directory, shard["file"])
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path} (a shard listed in {index_path}) is missing.")
            if os.path.getsize(path) != shard["bytes"]:
                raise ValueError(f"{path} has {os.path.getsize(path)} bytes, the index says {shard['bytes']}: the "
                                 "shard is truncated or was replaced; write the records again.")
            if verify and _sha256(path) != shard["sha256"]:
                raise ValueError(f"{path}: sha256 differs from {index_path}; write the records again.")

    def __len__(self):
        return int(self.index["count"])

    def __repr__(self):
        return (f"Records({self.directory!r}: {len(self)} images of shape {self.example_shape} in "
                f"{len(self.index['shards'])} shards)")

    def _records(self, shard_files, parallel):
        import tensorflow as tf

        decode = _decoder(self.example_shape, self.encoding)
        spec = {"image": tf.io.FixedLenFeature([], tf.string)}
        paths = [os.path.join(self.directory, f) for f in shard_files]
        return tf.data.TFRecordDataset(paths, num_parallel_reads=min(len(paths), 8) if parallel else None).map(
            lambda record: decode(tf.io.parse_single_example(record, spec)["image"]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def epoch_dataset(self, epoch, global_batch_size, seed, skip_batches=0, convert=None):
        shards = [s["file"] for s in self.index["shards"]]
        rng = np.random.default_rng([int(seed), int(epoch)])
        order = [shards[i] for i in rng.permutation(len(shards))]
        shuffle_seed = int(rng.integers(0, 2**31 - 1))
        dataset = self._records(order, parallel=True).shuffle(min(self.shuffle_buffer, len(self)), seed=shuffle_seed)
        steps = len(self) // int(global_batch_size)
        return _finish(dataset, global_batch_size, convert, True, take=steps, skip=skip_batches,
                       length=max(steps - int(skip_batches), 0))

    def sequential_dataset(self, batch_size, convert=None, limit=None):
        dataset = self._records([s["file"] for s in self.index["shards"]], parallel=False)
        count = len(self) if limit is None else min(int(limit), len(self))
        if limit is not None:
            dataset = dataset.take(count)
        return _finish(dataset, batch_size, convert, False, length=-(-count // int(batch_size)))


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _batches(source, batch_size=1024):
    if isinstance(source, StreamingImages):
        yield from source.iter_batches(batch_size)
        return
    if isinstance(source, tuple):  # a loader's (images, labels)
        source = source[0]
    if isinstance(source, np.ndarray):
        for start in range(0, len(source), batch_size):
            yield source[start:start + batch_size]
        return
    yield from (np.asarray(b) for b in source)


def write_records(source, directory, examples_per_shard=4096, encoding="raw", overwrite=False):
    """Writes uint8 images as TFRecord shards with an index; returns ``Records(directory)``.

    Args:
        source: a uint8 array ``(N, H, W, C)``, a loader's ``(images, labels)``,
            a ``StreamingImages`` (e.g. an ``ImageFolder``), or an iterable of
            uint8 batches of one shape.
        directory: created (or, with ``overwrite``, replaced if this project
            wrote it) atomically: the shards are written to a staging folder
            that is renamed when complete.
        examples_per_shard: images per shard file.
        encoding: ``"raw"`` (the bytes; fastest to read) or ``"png"`` (lossless, smaller).

    Raises:
        ValueError: not uint8, not ``(N, H, W, C)``, shapes that differ, no images, or an unknown encoding.
        FileExistsError: ``directory`` exists and is not a records folder this project wrote (or no ``overwrite``).
    """
    import tensorflow as tf

    if encoding not in ENCODINGS:
        raise ValueError(f"`encoding` must be one of {ENCODINGS}; received {encoding!r}.")
    if not int(examples_per_shard) >= 1:
        raise ValueError(f"`examples_per_shard` must be >= 1; received {examples_per_shard!r}.")
    shards, count, shape = [], 0, None
    with files.staged_directory(directory, "records", overwrite=overwrite) as staging:
        writer, in_shard = None, 0
        for batch in _batches(source):
            if batch.dtype != np.uint8 or batch.ndim != 4:
                raise ValueError(f"write_records takes uint8 images (N, H, W, C); received a batch of dtype "
                                 f"{batch.dtype} and shape {batch.shape} (scale to 0..255 and `.astype('uint8')`).")
            if shape is None:
                shape = tuple(int(d) for d in batch.shape[1:])
            elif tuple(batch.shape[1:]) != shape:
                raise ValueError(f"images of shape {tuple(batch.shape[1:])} after {count} of shape {shape}: one "
                                 "records folder holds one shape.")
            for image in batch:
                if writer is None:
                    name = f"part-{len(shards):05d}.tfrecord"
                    writer, in_shard = tf.io.TFRecordWriter(os.path.join(staging, name)), 0
                    shards.append({"file": name})
                contents = image.tobytes() if encoding == "raw" else tf.io.encode_png(image).numpy()
                feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[contents]))}
                writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
                in_shard += 1
                count += 1
                if in_shard == int(examples_per_shard):
                    writer.close()
                    shards[-1]["count"], writer = in_shard, None
        if writer is not None:
            writer.close()
            shards[-1]["count"] = in_shard
        if count == 0:
            raise ValueError("write_records received no images.")
        for shard in shards:
            path = os.path.join(staging, shard["file"])
            shard.update(bytes=os.path.getsize(path), sha256=_sha256(path))
        with open(os.path.join(staging, RECORDS_INDEX), "w") as f:
            json.dump({"format": RECORDS_FORMAT, "count": count, "shape": list(shape), "dtype": "uint8",
                       "encoding": encoding, "shards": shards}, f, indent=1)
    return Records(directory)


def is_folder_path(name):
    """Whether ``zoo.train``'s ``dataset`` string names a folder of images rather than a dataset.

    Raises:
        ValueError: it is both a dataset name and an existing folder (write ``./NAME`` for the folder).
    """
    from zoo.data import datasets, manifolds

    known = name in datasets.LOADERS or name in manifolds.GENERATORS
    if known and os.path.isdir(name) and os.sep not in name:
        raise ValueError(f"{name!r} is both a dataset name and a folder here; pass {os.path.join('.', name)!r} for "
                         "the folder, or run from elsewhere for the dataset.")
    return not known and (os.sep in name or os.path.isdir(name))


def model_input_converter(model, source):
    """The tf.data map that turns ``source``'s uint8 batches into ``model``'s input (None: they are its input).

    The same rule as ``GenerativeModel.as_model_input``: a float-image model in [0, 1] takes ``x / 255``.
    """
    import tensorflow as tf

    probe = model.as_model_input(np.zeros((1,) + tuple(source.example_shape), np.uint8))
    if probe.dtype == np.uint8:
        return None
    return lambda batch: tf.cast(batch, tf.float32) / 255.0


def open_images(path, **kwargs):
    """A folder as a source: ``Records`` if it holds ``records.json``, else an ``ImageFolder``."""
    if os.path.exists(os.path.join(path, RECORDS_INDEX)):
        return Records(path, **kwargs)
    return ImageFolder(path, **kwargs)
