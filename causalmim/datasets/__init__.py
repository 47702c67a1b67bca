"""Benchmark data loaders and synthetic generators with known treatment effects."""

from ._synthetic import make_disentangled

__all__ = ["make_disentangled"]
