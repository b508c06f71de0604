"""Training data by name and the per-epoch order that makes resume exact."""

import keras
import numpy as np


def load_training_data(dataset, split="train", num_examples=None, seed=0):
    """Training arrays by dataset name: image datasets (``zoo.datasets``) or synthetic manifolds.

    Synthetic manifolds (``zoo.manifolds.GENERATORS``) draw ``num_examples``
    points (default 10000 for train, 2000 otherwise) with a split-dependent
    seed, so the validation points are not the training points.
    """
    from zoo.data import datasets
    from zoo.data import manifolds

    if dataset in manifolds.GENERATORS:
        n = num_examples or (10000 if split == "train" else 2000)
        return np.asarray(manifolds.GENERATORS[dataset](n, seed=seed + (0 if split == "train" else 1)).data)
    if dataset not in datasets.LOADERS:
        known = sorted(set(datasets.LOADERS) | set(manifolds.GENERATORS))
        raise KeyError(f"Unknown dataset {dataset!r}; known: {', '.join(known)}.")
    images = datasets.load(dataset, split)
    images = images[0] if isinstance(images, tuple) else images
    return np.asarray(images if num_examples is None else images[:num_examples])


def epoch_order(num_examples, epoch, global_batch_size, seed):
    """Example indices of epoch ``epoch``, ``(steps, global_batch_size)``: a permutation seeded by ``(seed, epoch)``
    (full global batches only; the last ``num_examples % global_batch_size`` of the permutation are left out)."""
    order = np.random.default_rng([int(seed), int(epoch)]).permutation(int(num_examples))
    steps = int(num_examples) // int(global_batch_size)
    return order[: steps * global_batch_size].reshape(steps, global_batch_size)


def epoch_dataset(data, epoch, global_batch_size, seed, skip_batches=0, convert=None):
    """The batches of epoch ``epoch``: a shuffle seeded by ``(seed, epoch)``, full global batches only.

    The order depends on nothing but ``(seed, epoch)``, so a resumed run that
    skips the ``skip_batches`` already trained on sees exactly the batches an
    uninterrupted run sees. ``data``: an array, or a file-backed
    ``zoo.data.streaming.StreamingImages`` (its own ``epoch_dataset``; an
    ``ImageFolder`` gives exactly the order of ``epoch_order``). ``convert``
    maps each batch in tf.data (the model-input conversion).
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
    return batches.prefetch(2)


class EpochBatches(keras.utils.PyDataset):
    """The batches of ``epoch_order`` rows as NumPy arrays: the input of the JAX path (no tf.data).

    ``EpochBatches(data, epoch_order(len(data), epoch, global_batch, seed)[skip:])``
    gives exactly the batches of ``epoch_dataset(data, epoch, global_batch, seed, skip)``.
    """

    def __init__(self, data, indices):
        super().__init__()
        self.data, self.indices = data, np.asarray(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.data[self.indices[index]]


class SequentialBatches(keras.utils.PyDataset):
    """``data`` in order, in batches of ``batch_size`` (the last may be short): validation on the JAX path."""

    def __init__(self, data, batch_size):
        super().__init__()
        self.data, self.batch_size = data, int(batch_size)

    def __len__(self):
        return -(-len(self.data) // self.batch_size)

    def __getitem__(self, index):
        return self.data[index * self.batch_size:(index + 1) * self.batch_size]
