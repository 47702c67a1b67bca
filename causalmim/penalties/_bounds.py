"""Lower bounds of the mutual information with a separable critic T(a, b): MINE, NWJ, InfoNCE."""

from __future__ import annotations

import math

import torch

from ._base import Penalty, _doc
from ._critics import _SeparableCritic
from ._kernels import _one_hot

_LB_NOTE = """The critic is separable, ``T(a, b) = f(a) . g(b) + u(a) + v(b)`` with one-hidden-layer
    MLPs (Poole et al., ICML 2019), so all pairs of a batch cost one matrix product. Labels (a
    1-D ``b``) are one-hot encoded over ``n_classes``. ``learning_loss`` is minus the estimate
    (the critic maximizes the bound). A lower bound: use it to monitor, not as a minimization
    penalty on its own."""

_LB_SECTIONS = f"""{_LB_NOTE}

    Parameters
    ----------
    %(common_params)s
    hidden : int, default=64
        Width of the hidden layer of the critic's two MLPs (of ``a`` and of ``b``).
    clip : float or None, default=10.0
        Soft bound on the critic's scores, ``clip * tanh(T / clip)``; None leaves them
        unbounded."""

_lb_doc = _doc(lb_sections=_LB_SECTIONS)


class _LowerBound(Penalty):
    """Shared code of the MI lower bounds (a separable critic T(a, b))."""

    bound = "lower"
    _critic = True
    _fit_defaults = {"lr": 1e-3, "patience": 100}

    def __init__(self, dim_a=None, dim_b=None, n_classes=None, hidden=64, clip=10.0):
        super().__init__(dim_a=dim_a, dim_b=dim_b, n_classes=n_classes)
        self.hidden = hidden
        self.clip = clip
        self._maybe_build_now()

    def _build(self):
        d_b = self.n_classes_ if self.n_classes_ is not None else self.dim_b_
        self.critic = _SeparableCritic(self.dim_a_, d_b, self.hidden, self.clip)

    def _b(self, x):
        if x.is_labels:
            return _one_hot(x.labels, self.n_classes_, x.a.dtype)
        return x.b

    def _forward(self, x):
        return self._estimate(self.critic.pairs(x.a, self._b(x)))

    def _learning_loss(self, x):
        return -self._forward(x)

    def _estimate(self, t):  # pragma: no cover - abstract
        """The bound from the pair scores ``t[i, j] = T(a_i, b_j)``."""
        raise NotImplementedError

    @staticmethod
    def _offdiag(t):
        n = t.shape[0]
        return t[~torch.eye(n, dtype=torch.bool, device=t.device)]


@_lb_doc
class MINE(_LowerBound):
    """MINE: the Donsker-Varadhan lower bound of the mutual information (Belghazi et al., 2018).

    ``forward`` returns ``E_p(a,b)[T] - log E_p(a)p(b)[exp T]``; the product-of-marginals term
    uses the ``n(n-1)`` off-diagonal pairs of the batch.

    %(lb_sections)s
    """

    def _estimate(self, t):
        joint = torch.diagonal(t).mean()
        marg = self._offdiag(t)
        return joint - (torch.logsumexp(marg, 0) - math.log(marg.numel()))


@_lb_doc
class NWJ(_LowerBound):
    """NWJ (f-divergence / MINE-f) lower bound of the mutual information (Nguyen et al., 2010).

    ``forward`` returns ``E_p(a,b)[T] - E_p(a)p(b)[exp(T - 1)]``; the product-of-marginals
    term uses the ``n(n-1)`` off-diagonal pairs of the batch.

    %(lb_sections)s
    """

    def _estimate(self, t):
        joint = torch.diagonal(t).mean()
        return joint - torch.exp(self._offdiag(t) - 1.0).mean()


@_lb_doc
class InfoNCE(_LowerBound):
    """InfoNCE lower bound of the mutual information (van den Oord et al., 2018).

    ``forward`` returns ``mean_i [T(a_i, b_i) - log (1/n) sum_j exp T(a_i, b_j)]`` over all
    ``n^2`` pairs (the matched pair included); it cannot exceed ``log n``.

    %(lb_sections)s
    """

    def _estimate(self, t):
        n = t.shape[0]
        return (torch.diagonal(t) - torch.logsumexp(t, dim=1)).mean() + math.log(n)
