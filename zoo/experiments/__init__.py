"""Experiments that benchmarks/ and colabs/ run on top of the models (not model code).

``thin_spiral``: DNF section 5.1 (NF, M-flow, DNF, PIE on the thin spiral);
``intrinsic_dimension``: projections onto the spread prior's eigenvectors.
"""

from zoo.experiments import intrinsic_dimension, thin_spiral

__all__ = ["intrinsic_dimension", "thin_spiral"]
