"""Experiments that benchmarks/ and colabs/ run on top of the models (not model code)."""
