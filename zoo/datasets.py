"""Datasets that need no download."""

import numpy as np


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
