"""Kernels, distances and label helpers shared by the measures."""

from __future__ import annotations

import itertools

import torch
from torch.nn import functional as F


def _sq_dists(x, y=None):
    """Squared Euclidean distances between the rows of x and y (x with itself by default)."""
    y = x if y is None else y
    x2 = (x * x).sum(1, keepdim=True)
    y2 = (y * y).sum(1, keepdim=True)
    d2 = x2 + y2.T - 2.0 * (x @ y.T)
    return d2.clamp_min(0.0)


def _median_sq_dist(d2):
    """Median of the non-zero off-diagonal squared distances (detached); 1.0 if there is none."""
    with torch.no_grad():
        n = d2.shape[0]
        iu = torch.triu_indices(n, n, offset=1, device=d2.device)
        vals = d2[iu[0], iu[1]]
        vals = vals[vals > 0]
        if vals.numel() == 0:
            return torch.ones((), dtype=d2.dtype, device=d2.device)
        return vals.median()


def _rbf_gram(x, bandwidth=None):
    """RBF Gram matrix exp(-|x_i - x_j|^2 / (2 sigma^2)), sigma = median distance by default."""
    d2 = _sq_dists(x)
    if bandwidth is None:
        sigma2 = _median_sq_dist(d2)
    else:
        sigma2 = torch.as_tensor(float(bandwidth) ** 2, dtype=x.dtype, device=x.device)
    return torch.exp(-d2 / (2.0 * sigma2))


def _one_hot(labels, n_classes, dtype):
    """One-hot encoding of a label vector, as a float matrix of ``dtype``."""
    return F.one_hot(labels, n_classes).to(dtype)



def _group_index(labels):
    """The groups present in the batch, as a list of index tensors (sorted by label)."""
    groups = torch.unique(labels)
    return [torch.nonzero(labels == g, as_tuple=True)[0] for g in groups]


def _mean_over_pairs(n_groups, measure):
    """Mean of ``measure(k, m)`` (a scalar tensor) over all pairs of groups ``k < m``."""
    return torch.stack(
        [measure(k, m) for k, m in itertools.combinations(range(n_groups), 2)]
    ).mean()
