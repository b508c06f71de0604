"""Data: offline image loaders, synthetic manifolds with ground truth, synthetic MNIST of known dimension."""

from zoo.data import datasets, implicit_model, manifolds
from zoo.data.datasets import (
    DatasetCorruptError,
    DatasetNotFoundError,
    as_dataset,
    load,
    load_digits,
    load_digits_images,
    load_fashion_mnist,
    load_mnist,
    quantize,
)
from zoo.data.manifolds import GENERATORS, Manifold
from zoo.data.implicit_model import ImplicitVAE, synthetic_mnist, train_implicit_model

__all__ = ["DatasetCorruptError", "DatasetNotFoundError", "GENERATORS", "ImplicitVAE", "Manifold", "as_dataset",
           "datasets", "implicit_model", "load", "load_digits", "load_digits_images", "load_fashion_mnist", "load_mnist", "manifolds",
           "quantize", "synthetic_mnist", "train_implicit_model"]
