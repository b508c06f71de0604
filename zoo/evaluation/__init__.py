"""Evaluation: metrics with provenance, the 2015 Inception for FID, pictures, and the report of ``zoo.evaluate``."""

from zoo.evaluation import fid_inception, metrics, model_metrics, pictures
from zoo.evaluation.model_metrics import (
    bits_per_dim,
    fid,
    frechet_distance_classifier,
    reconstruction_error,
    sweep,
    train_domain_classifier,
)
from zoo.evaluation.report import METRICS, evaluate

__all__ = ["METRICS", "bits_per_dim", "evaluate", "fid", "fid_inception", "frechet_distance_classifier", "metrics",
           "model_metrics", "pictures", "reconstruction_error", "sweep", "train_domain_classifier"]
