"""Training data by name and the per-epoch order that makes resume exact."""

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


def epoch_dataset(data, epoch, global_batch_size, seed, skip_batches=0):
    """The batches of epoch ``epoch``: a shuffle seeded by ``(seed, epoch)``, full global batches only.

    The order depends on nothing but ``(seed, epoch)``, so a resumed run that
    skips the ``skip_batches`` already trained on sees exactly the batches an
    uninterrupted run sees.
    """
    import tensorflow as tf

    order = np.random.default_rng([int(seed), int(epoch)]).permutation(len(data))
    steps = len(data) // global_batch_size
    indices = order[: steps * global_batch_size].reshape(steps, global_batch_size)[skip_batches:]
    source = tf.data.Dataset.from_tensor_slices(indices)
    return source.map(lambda rows: tf.gather(data, rows), num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
