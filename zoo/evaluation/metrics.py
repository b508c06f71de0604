"""Metrics computed in this project: the Frechet distance and the Levina-Bickel intrinsic dimension.

(tensorflow-gan does not import under TF 2.21, so the Frechet distance is the
project's own few lines; the Inception-for-FID feature extractor is a separate
piece of the evaluation issue.)
"""

import numpy as np
from scipy import linalg


def frechet_distance(mu1, cov1, mu2, cov2):
    """``||mu1 - mu2||^2 + Tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2))`` between two Gaussians.

    The trace of the matrix square root is computed as the sum of the square
    roots of the eigenvalues of ``cov1^(1/2) cov2 cov1^(1/2)`` (symmetric
    positive semi-definite), which avoids the complex parts and instabilities
    of a general ``sqrtm`` of the non-symmetric product.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError(f"Shapes do not match: mu {mu1.shape} / {mu2.shape}, cov {cov1.shape} / {cov2.shape}.")
    eigvals, eigvecs = np.linalg.eigh((cov1 + cov1.T) / 2)
    root1 = (eigvecs * np.sqrt(np.clip(eigvals, 0, None))) @ eigvecs.T
    middle = root1 @ cov2 @ root1
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)


def frechet_distance_from_features(features1, features2):
    """Frechet distance between Gaussians fitted (mean, unbiased covariance) to two feature sets ``(n, k)``."""
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"Features must be (n, k) with equal k; received {f1.shape} and {f2.shape}.")
    if min(len(f1), len(f2)) < 2:
        raise ValueError("Each feature set needs at least 2 rows to estimate a covariance.")
    return frechet_distance(f1.mean(0), np.cov(f1, rowvar=False), f2.mean(0), np.cov(f2, rowvar=False))


def scipy_frechet_distance(mu1, cov1, mu2, cov2):
    """The reference FID code's formula with ``scipy.linalg.sqrtm`` (kept as a cross-check)."""
    covmean, _ = linalg.sqrtm(cov1 @ cov2, disp=False)
    covmean = covmean.real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def levina_bickel_dimension(data, k=20):
    """Levina-Bickel maximum-likelihood intrinsic dimension (MacKay-Ghahramani averaging of inverses).

    Args:
        data: ``(n, D)`` array (images are flattened).
        k: number of nearest neighbours (k >= 3).

    Returns:
        The estimated intrinsic dimension (float).
    """
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(data, np.float64).reshape(len(data), -1)
    if k < 3 or k >= len(x):
        raise ValueError(f"`k` must satisfy 3 <= k < n = {len(x)}; received {k}.")
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    distances = distances[:, 1:]  # drop the point itself
    distances = np.maximum(distances, 1e-12)
    log_ratios = np.log(distances[:, -1:] / distances[:, :-1])  # log(T_k / T_j), j < k
    inverse_estimates = log_ratios.sum(axis=1) / (k - 1)  # 1 / m_k(x)
    return float(1.0 / np.mean(inverse_estimates))
