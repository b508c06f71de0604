"""Training data by name and the per-epoch order that makes resume exact."""

import keras
import numpy as np


def load_training_data(dataset, split="train", num_examples=None, seed=0, labels=False):
    """Training arrays by dataset name: image datasets (``zoo.datasets``) or synthetic manifolds.

    Synthetic manifolds (``zoo.manifolds.GENERATORS``) draw ``num_examples``
    points (default 10000 for train, 2000 otherwise) with a split-dependent
    seed, so the validation points are not the training points.
    ``labels=True`` returns ``(data, class labels)`` (int32; image datasets
    only: a synthetic manifold has no classes and is refused).
    """
    from zoo.data import datasets
    from zoo.data import manifolds

    if num_examples is not None and (isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer))
                                     or num_examples < 1):
        raise ValueError(f"`num_examples` must be None (all) or an int >= 1; received {num_examples!r}.")
    if dataset in manifolds.GENERATORS:
        if labels:
            raise ValueError(f"{dataset!r} is a synthetic manifold without class labels; a class-conditional model "
                             "trains on a labelled image dataset (digits, mnist, fashion_mnist, ...).")
        n = num_examples or (10000 if split == "train" else 2000)
        return np.asarray(manifolds.GENERATORS[dataset](n, seed=seed + (0 if split == "train" else 1)).data)
    if dataset not in datasets.LOADERS:
        known = sorted(set(datasets.LOADERS) | set(manifolds.GENERATORS))
        raise KeyError(f"Unknown dataset {dataset!r}; known: {', '.join(known)}.")
    loaded = datasets.load(dataset, split)
    images = loaded[0] if isinstance(loaded, tuple) else loaded
    images = np.asarray(images if num_examples is None else images[:num_examples])
    if not labels:
        return images
    if not (isinstance(loaded, tuple) and loaded[1] is not None):
        raise ValueError(f"{dataset!r} ({split}) comes without class labels; a class-conditional model needs them.")
    return images, np.asarray(loaded[1][:len(images)]).astype(np.int32)


def short_lived(dataset):
    """``dataset`` with tf.data's autotuning model off: for pipelines iterated once and dropped (one epoch).

    ``zoo.train`` calls ``fit`` once per epoch on a fresh dataset (the order of each epoch is ``(seed, epoch)``'s, so
    resume is exact). With autotuning on, dropping the iterator at the epoch's end can stall: measured with
    TensorFlow 2.21 on 2 CPU cores, ``fit`` calls whose epoch took 2.0-3.3 s returned only 2.6 s or 5.1 s after they
    started (0.4-2.1 s after the epoch ended, in 3 to 6 of the 7-8 calls of a run), and within 5 ms of the epoch's end
    with the autotuning model off. Those return times fit a background thread that sleeps 10 ms, 20, 40, ... (doubling) and is
    waited for (our reading, not checked in TensorFlow's source). Without the model, ``AUTOTUNE`` map parallelism is
    the thread-pool size and ``prefetch`` keeps its own buffer tuning, which is what a pipeline of in-memory gathers
    needs.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def epoch_order(num_examples, epoch, global_batch_size, seed):
    """Example indices of epoch ``epoch``, ``(steps, global_batch_size)``: a permutation seeded by ``(seed, epoch)``
    (full global batches only; the last ``num_examples % global_batch_size`` of the permutation are left out)."""
    order = np.random.default_rng([int(seed), int(epoch)]).permutation(int(num_examples))
    steps = int(num_examples) // int(global_batch_size)
    return order[: steps * global_batch_size].reshape(steps, global_batch_size)


def epoch_dataset(data, epoch, global_batch_size, seed, skip_batches=0, convert=None, labels=None):
    """The batches of epoch ``epoch``: a shuffle seeded by ``(seed, epoch)``, full global batches only.

    The order depends on nothing but ``(seed, epoch)``, so a resumed run that
    skips the ``skip_batches`` already trained on sees exactly the batches an
    uninterrupted run sees. ``data``: an array, or a file-backed
    ``zoo.data.streaming.StreamingImages`` (its own ``epoch_dataset``; an
    ``ImageFolder`` gives exactly the order of ``epoch_order``). ``convert``
    maps each batch in tf.data (the model-input conversion). With ``labels``
    (an array beside ``data``) the batches are ``(x, labels)`` pairs.
    """
    import tensorflow as tf

    from zoo.data.streaming import StreamingImages

    if isinstance(data, StreamingImages):  # files: the same contract, read by tf.data (zoo.data.streaming)
        return data.epoch_dataset(epoch, global_batch_size, seed, skip_batches, convert=convert)
    indices = epoch_order(len(data), epoch, global_batch_size, seed)[skip_batches:]
    batches = tf.data.Dataset.from_tensor_slices(indices).map(lambda rows: tf.gather(data, rows),
                                                               num_parallel_calls=tf.data.AUTOTUNE)
    if convert is not None:
        batches = batches.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
    if labels is not None:
        label_batches = tf.data.Dataset.from_tensor_slices(np.asarray(labels)[indices])
        batches = tf.data.Dataset.zip((batches, label_batches))
    return short_lived(batches.prefetch(2))


class EpochBatches(keras.utils.PyDataset):
    """The batches of ``epoch_order`` rows as NumPy arrays: the input of the JAX path (no tf.data).

    ``EpochBatches(data, epoch_order(len(data), epoch, global_batch, seed)[skip:])``
    gives exactly the batches of ``epoch_dataset(data, epoch, global_batch, seed, skip)``.
    """

    def __init__(self, data, indices, labels=None):
        super().__init__()
        self.data, self.indices, self.labels = data, np.asarray(indices), labels

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        rows = self.indices[index]
        return self.data[rows] if self.labels is None else (self.data[rows], self.labels[rows])


class SequentialBatches(keras.utils.PyDataset):
    """``data`` in order, in batches of ``batch_size`` (the last may be short): validation on the JAX path."""

    def __init__(self, data, batch_size, labels=None):
        super().__init__()
        self.data, self.batch_size, self.labels = data, int(batch_size), labels

    def __len__(self):
        return -(-len(self.data) // self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.data[rows] if self.labels is None else (self.data[rows], self.labels[rows])
