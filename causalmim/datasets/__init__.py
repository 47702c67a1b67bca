"""Benchmark data loaders and synthetic generators with known treatment effects.

:func:`make_semi_synthetic` simulates treatments and outcomes on real covariates (Hillstrom,
Jobs or your own table) in the style of the ACIC 2016 data challenge.

Real benchmarks are read from the data home (:func:`get_data_home`), laid out as
``ihdp/``, ``jobs/`` and ``hillstrom/``; missing files are downloaded and checked against the
SHA-256 checksums of :data:`REMOTE_FILES` unless ``download_if_missing=False``.
"""

from ._hillstrom import load_hillstrom
from ._home import REMOTE_FILES, get_data_home
from ._ihdp import load_ihdp
from ._jobs import load_jobs
from ._semi_synthetic import make_semi_synthetic
from ._synthetic import make_disentangled
from ._user_growth import iter_user_growth, make_user_growth

__all__ = [
    "REMOTE_FILES",
    "get_data_home",
    "iter_user_growth",
    "load_hillstrom",
    "load_ihdp",
    "load_jobs",
    "make_disentangled",
    "make_semi_synthetic",
    "make_user_growth",
]
