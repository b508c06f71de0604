"""benchmarks/gpu_train.py's packed data: Fashion-MNIST as the model's n_bits levels, small enough to travel with the
project to a machine without network (64 MiB in all), giving the model exactly the levels the idx files give it."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks import gpu_train  # noqa: E402


def test_packed_levels_are_what_the_model_quantizes_the_idx_images_to(tmp_path):
    import zoo

    path = gpu_train.pack_data(str(tmp_path), n_bits=3)
    assert os.path.basename(path) == "fashion_mnist_3bit.npz"
    assert os.path.getsize(path) < 16 * 2**20  # the 8-bit idx files are ~31 MB
    train, test = gpu_train.read_packed(path, "nif_fmnist_small_64")  # a 3-bit model
    from layers.preprocessing import quantize_pixels  # what the model does to its 8-bit input

    for split, packed in (("train", train), ("test", test)):
        images = np.asarray(zoo.datasets.load("fashion_mnist", split)[0])
        assert packed.dtype == np.uint8 and packed.shape == images.shape
        np.testing.assert_array_equal(np.asarray(quantize_pixels(packed[:2000], 3)),
                                      np.asarray(quantize_pixels(images[:2000], 3)))  # the same level per pixel
        np.testing.assert_array_equal(packed >> 5, images >> 5)  # and for every image
    gpu_train.pack_data(str(tmp_path), n_bits=3)  # its own file is replaced


def test_packed_data_refuses_another_n_bits_and_foreign_files(tmp_path):
    path = gpu_train.pack_data(str(tmp_path), n_bits=4)
    with pytest.raises(SystemExit, match=r"holds 4-bit levels but nif_fmnist_small_64 models 3-bit images; pack the "
                                         r"data with --pack_data DIR --n_bits 3"):
        gpu_train.read_packed(path, "nif_fmnist_small_64")
    foreign = tmp_path / "fashion_mnist_3bit.npz"
    np.savez(foreign, images=np.zeros(3))
    with pytest.raises(SystemExit, match="is not a file of `gpu_train.py --pack_data`"):
        gpu_train.read_packed(str(foreign), "nif_fmnist_small_64")
    with pytest.raises(FileExistsError, match="not a file this project wrote"):
        gpu_train.pack_data(str(tmp_path), n_bits=3)  # never replaces a file it did not write
