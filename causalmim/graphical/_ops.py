"""Log-domain array operations shared by the inference routines, and parameter checks."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["lse_last", "normalize_log", "softmax_last", "pairwise_beliefs", "check_param",
           "warn_not_converged"]


def lse_last(t):
    """``log sum exp`` over the last axis; rows that are all ``-inf`` give ``-inf``."""
    if t.shape[-1] == 2:  # binary fast path: log(e^a + e^b) = max + log1p(e^-|a-b|)
        a, b = t[..., 0], t[..., 1]
        with np.errstate(invalid="ignore"):
            out = np.logaddexp(a, b)
        return out
    mx = t.max(axis=-1)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(divide="ignore"):
        return mx + np.log(np.exp(t - mx[..., None]).sum(axis=-1))


def normalize_log(logp):
    """Shift each row of log-probabilities (last axis) so that it sums to one."""
    return logp - lse_last(logp)[..., None]


def softmax_last(logp):
    """Probabilities from unnormalized log-probabilities (last axis); ``-inf`` gives 0."""
    mx = logp.max(axis=-1, keepdims=True)
    p = np.exp(logp - np.where(np.isfinite(mx), mx, 0.0))
    return p / p.sum(axis=-1, keepdims=True)


def pairwise_beliefs(edge_pot, left, right):
    """``b_ij ∝ exp(theta_ij + left_i[:, None] + right_j[None, :])``, normalized per edge.

    ``edge_pot`` (E, K, K), ``left`` and ``right`` (E, K); returns (E, K, K), 0 where padded.
    """
    t = edge_pot + left[:, :, None] + right[:, None, :]
    E, K = t.shape[0], t.shape[1]
    return softmax_last(t.reshape(E, K * K)).reshape(E, K, K)


def check_param(name, value, kind, low=None, high=None, low_open=False, high_open=False):
    """Check one constructor parameter; raise a ValueError that names it."""
    if kind is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        ok = ok and np.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("(" if low_open else "[") + f"{low}, "
        hi = "" if high is None else f"{high}" + (")" if high_open else "]")
        rng = f" in {lo}{hi or 'inf)'}" if lo else ""
        raise ValueError(f"{name} must be {'an int' if kind is int else 'a finite number'}"
                         f"{rng}; got {value!r}.")
    return value


def warn_not_converged(name, n_iter, what):
    warnings.warn(f"{name} did not converge in {n_iter} iterations ({what}); the beliefs are "
                  "those of the last iteration.", ConvergenceWarning, stacklevel=3)
