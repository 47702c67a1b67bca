"""Closed-form independence measures: HSIC and distance correlation."""

from __future__ import annotations

import torch

from ._base import Penalty, _doc
from ._kernels import _one_hot, _rbf_gram, _sq_dists


def _b_features(x, n_classes):
    """``b`` as a float matrix: the float ``b`` itself, or the one-hot labels.

    Labels are encoded over ``max(max(label) + 1, n_classes)`` columns.
    """
    if x.is_labels:
        k = max(int(x.labels.max().item()) + 1, n_classes or 0)
        return _one_hot(x.labels, k, x.a.dtype)
    return x.b


@_doc
class HSIC(Penalty):
    """Hilbert-Schmidt independence criterion with RBF kernels.

    The default is the biased (V-statistic) estimator of Gretton et al. (2005),
    ``HSIC_b = tr(K H L H) / (n - 1)^2`` with ``H`` the centering matrix; it is non-negative,
    with a small positive bias (order ``1/n``) on independent samples. ``unbiased=True`` gives
    the unbiased estimator of Song et al. (JMLR 2012), centred at 0 on independent samples (it can
    be slightly negative; needs ``n >= 4``).

    Both kernels are ``exp(-|x - x'|^2 / (2 sigma^2))``; by default ``sigma`` is the median
    heuristic, the median of the non-zero pairwise distances of the batch, computed without
    gradient. A label vector ``b`` is one-hot encoded first.

    Parameters
    ----------
    %(common_params)s
    bandwidth : float, optional
        Fixed kernel bandwidth ``sigma`` for both variables; None uses the median heuristic.
    unbiased : bool, default=False
        Use the unbiased estimator.
    """

    def __init__(self, dim_a=None, dim_b=None, n_classes=None, bandwidth=None, unbiased=False):
        super().__init__(dim_a=dim_a, dim_b=dim_b, n_classes=n_classes)
        self.bandwidth = bandwidth
        self.unbiased = unbiased

    def _forward(self, x):
        k = _rbf_gram(x.a, self.bandwidth)
        l_ = _rbf_gram(_b_features(x, self.n_classes), self.bandwidth)
        n = k.shape[0]
        if not self.unbiased:
            kc = k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()
            return (kc * l_).sum() / (n - 1) ** 2
        if n < 4:
            raise ValueError(f"the unbiased HSIC needs at least 4 samples; got {n}.")
        eye = torch.eye(n, dtype=torch.bool, device=k.device)
        kt = k.masked_fill(eye, 0.0)
        lt = l_.masked_fill(eye, 0.0)
        term1 = (kt * lt).sum()
        term2 = kt.sum() * lt.sum() / ((n - 1) * (n - 2))
        term3 = 2.0 * (kt.sum(0) * lt.sum(0)).sum() / (n - 2)
        return (term1 + term2 - term3) / (n * (n - 3))


@_doc
class DistanceCorrelation(Penalty):
    """Squared distance correlation of Szekely, Rizzo and Bakirov (2007).

    ``forward`` returns the squared distance correlation ``dCor^2(a, b)``, 0 in the population
    iff ``a`` and ``b`` are independent (with finite first moments), computed from the
    Euclidean distance matrices of the batch. By default it is the bias-corrected estimator of
    Szekely and Rizzo (J. Multivariate Anal. 2013; Ann. Statist. 2014), built on U-centred
    distance matrices: nearly unbiased, so near 0 on independent samples even in high
    dimension, and slightly negative at times (needs ``n >= 4``). ``bias_corrected=False``
    gives the classic V-statistic (double-centred matrices), in [0, 1] but with a positive bias
    that grows with the dimension (about 0.13 for two independent 20-dimensional samples of
    512). A label vector ``b`` is one-hot encoded first.

    Parameters
    ----------
    %(common_params)s
    bias_corrected : bool, default=True
        Use the bias-corrected (U-centred) estimator.
    eps : float, default=1e-9
        Floor on squared distances and variances (keeps gradients and ratios finite): when the
        product of the two distance variances is at most ``eps``, the measure is 0.
    """

    def __init__(self, dim_a=None, dim_b=None, n_classes=None, bias_corrected=True, eps=1e-9):
        super().__init__(dim_a=dim_a, dim_b=dim_b, n_classes=n_classes)
        self.bias_corrected = bias_corrected
        self.eps = eps

    def _centred(self, x):
        d = torch.sqrt(_sq_dists(x).clamp_min(self.eps))
        n = d.shape[0]
        eye = torch.eye(n, dtype=torch.bool, device=d.device)
        d = d.masked_fill(eye, 0.0)
        if not self.bias_corrected:
            return d - d.mean(0, keepdim=True) - d.mean(1, keepdim=True) + d.mean()
        u = (
            d
            - d.sum(0, keepdim=True) / (n - 2)
            - d.sum(1, keepdim=True) / (n - 2)
            + d.sum() / ((n - 1) * (n - 2))
        )
        return u.masked_fill(eye, 0.0)

    def _forward(self, x):
        n = x.a.shape[0]
        if self.bias_corrected and n < 4:
            raise ValueError(
                f"the bias-corrected distance correlation needs at least 4 samples; got {n}. "
                "Use a larger batch or bias_corrected=False."
            )
        aa = self._centred(x.a)
        bb = self._centred(_b_features(x, self.n_classes))
        # Inner products (the U-statistic's 1/(n(n-3)) factor cancels in the ratio).
        cov = (aa * bb).sum()
        var = (aa * aa).sum() * (bb * bb).sum()
        if var <= self.eps:
            return x.a.sum() * 0.0
        return cov / torch.sqrt(var)
