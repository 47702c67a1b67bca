"""Dependence penalties over a leading member axis (internal).

The training engine computes each penalty term for every member of the network at once: the
inputs are ``a`` of shape (M, n, d_a) and either ``b`` of shape (M, n, d_b) or a label vector
of shape (n,) shared by the members; the value is a vector (M,), one estimate per member, and
every member has its own critic.

* :class:`StackedCLUB` batches the Gaussian critics of CLUB and vCLUB-S over the members
  (``MemberLinear`` layers, one batched matrix product per layer instead of M small ones);
* :class:`StackedMMD` computes the RBF or linear MMD of every member from one batched Gram
  matrix;
* :class:`LoopedPenalty` holds M independent copies of any other penalty of
  :mod:`causalmim.penalties` and loops over them: correct for every measure, and what a new
  measure gets until it has a batched form.

Internal inputs are trusted (they come from the network); the public penalties in
:mod:`causalmim.penalties` validate theirs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import penalties as _penalties
from ._nn import MemberLinear


class MemberPenalty(nn.Module):
    """Base class: ``forward(a, b) -> (M,)`` estimates, ``learning_loss(a, b) -> scalar``."""

    @property
    def prototype(self):
        """The penalty computed per member (not a submodule: its own weights are unused)."""
        return self.__dict__["_prototype"]

    def _set_prototype(self, prototype):
        self.__dict__["_prototype"] = prototype

    @property
    def has_critic(self):
        return self.prototype.has_critic

    def get_params(self):
        """Constructor parameters of the penalty computed per member."""
        return self.prototype.get_params()

    def learning_loss(self, a, b):  # pragma: no cover - closed-form measures have no critic
        return None


class LoopedPenalty(MemberPenalty):
    """M independent copies of any penalty, evaluated member by member."""

    def __init__(self, make, n_members):
        super().__init__()
        self.copies = nn.ModuleList([make() for _ in range(n_members)])
        self._set_prototype(self.copies[0])

    @staticmethod
    def _b(b, m):
        return b if b.ndim == 1 else b[m]

    def forward(self, a, b, **kwargs):
        return torch.stack([p(a[m], self._b(b, m), **kwargs)
                            for m, p in enumerate(self.copies)])

    def learning_loss(self, a, b, **kwargs):
        return torch.stack([p.learning_loss(a[m], self._b(b, m), **kwargs)
                            for m, p in enumerate(self.copies)]).sum()


class _MemberMLPOut(nn.Module):
    """``Linear(x) + MLP(x)`` per member (``MLP(x)`` alone without ``linear``), the MLP's
    output layer starting at zero."""

    def __init__(self, d_in, hidden, d_out, n_members, linear=True):
        super().__init__()
        self.linear = MemberLinear(d_in, d_out, n_members) if linear else None
        self.hidden = MemberLinear(d_in, hidden, n_members)
        self.out = MemberLinear(hidden, d_out, n_members)
        with torch.no_grad():
            self.out.weight.zero_()
            self.out.bias.zero_()

    def mlp(self, x):
        return self.out(torch.relu(self.hidden(x)))

    def forward(self, x):
        out = self.mlp(x)
        return out if self.linear is None else self.linear(x) + out


class StackedCLUB(MemberPenalty):
    """CLUB / vCLUB-S with a diagonal Gaussian critic q(b|a) per member, batched.

    The critic is :class:`causalmim.penalties.CLUB`'s: mean ``Linear(a) + MLP(a)``, log-variance
    ``c + logvar_range * tanh(MLP(a))`` softly bounded to ``[-max_logvar, max_logvar]``, both
    MLPs starting from a zero output layer. ``sampled=True`` gives vCLUB-S (one random negative
    per row, one permutation of the batch shared by the members), otherwise the full CLUB
    average over all pairs in O(n).
    """

    def __init__(self, prototype, dim_a, dim_b, n_members, sampled):
        super().__init__()
        self._set_prototype(prototype)
        hidden = prototype.hidden
        self.sampled = sampled
        self.mean = _MemberMLPOut(dim_a, hidden, dim_b, n_members)
        self.logvar_bias = nn.Parameter(torch.zeros(n_members, 1, dim_b))
        self.logvar_mlp = _MemberMLPOut(dim_a, hidden, dim_b, n_members, linear=False)
        self.logvar_range = float(prototype.logvar_range)
        self.max_logvar = float(prototype.max_logvar)

    def _mu_logvar(self, a):
        raw = self.logvar_bias
        if self.logvar_range > 0:
            raw = raw + self.logvar_range * torch.tanh(self.logvar_mlp(a))
        m = self.max_logvar
        return self.mean(a), m * torch.tanh(raw / m)

    def forward(self, a, b):
        mu, logvar = self._mu_logvar(a)
        inv = 0.5 * torch.exp(-logvar)
        pos = -((mu - b) ** 2 * inv).sum(-1)
        if self.sampled:
            perm = torch.randperm(b.shape[1], device=b.device)
            neg = -((mu - b[:, perm]) ** 2 * inv).sum(-1)
        else:  # mean_j (b_j - mu_i)^2 = mean(b^2) - 2 mu_i mean(b) + mu_i^2
            sq = (b * b).mean(1, keepdim=True) - 2.0 * mu * b.mean(1, keepdim=True) + mu * mu
            neg = -(sq * inv).sum(-1)
        return (pos - neg).mean(1)

    def learning_loss(self, a, b):
        mu, logvar = self._mu_logvar(a)
        nll = 0.5 * ((mu - b) ** 2 * torch.exp(-logvar) + logvar + math.log(2.0 * math.pi))
        return nll.sum(-1).mean(1).sum()


class StackedMMD(MemberPenalty):
    """Biased (V-statistic) MMD^2 between the arms, per member, from one batched Gram matrix.

    As :class:`causalmim.penalties.MMD`: the RBF bandwidth is each member's median pairwise
    distance (without gradient) unless fixed; with K groups the value is the mean over the pairs
    of groups present in the batch, and 0 when the batch holds a single group.
    """

    def __init__(self, prototype, n_classes):
        super().__init__()
        self._set_prototype(prototype)
        self.kernel = prototype.kernel
        self.bandwidth = prototype.bandwidth
        self.n_classes = n_classes

    def forward(self, a, labels):
        k = self.n_classes
        onehot = F.one_hot(labels, k).to(a.dtype)
        counts = onehot.sum(0)
        p = onehot / counts.clamp_min(1.0)
        if self.kernel == "linear":
            means = torch.einsum("nk,mnd->mkd", p, a)
            gram = means @ means.transpose(1, 2)
        else:
            d2 = _sq_dists(a)
            if self.bandwidth is None:
                sigma2 = _median_offdiag(d2)[:, None, None]
            else:
                sigma2 = torch.as_tensor(float(self.bandwidth) ** 2, dtype=a.dtype,
                                         device=a.device)
            kern = torch.exp(-d2 / (2.0 * sigma2))
            gram = torch.einsum("nk,mnl,lj->mkj", p, kern, p)
        diag = torch.diagonal(gram, dim1=1, dim2=2)
        dist = diag[:, :, None] + diag[:, None, :] - 2.0 * gram
        present = counts > 0
        pairs = torch.triu(present[:, None] & present[None, :], diagonal=1).to(a.dtype)
        return (dist * pairs).sum((1, 2)) / pairs.sum().clamp_min(1.0)


def _sq_dists(x):
    """Squared Euclidean distances between the rows of each member: (M, n, d) -> (M, n, n)."""
    x2 = (x * x).sum(-1)
    d2 = x2[:, :, None] + x2[:, None, :] - 2.0 * (x @ x.transpose(1, 2))
    return d2.clamp_min(0.0)


def _median_offdiag(d2):
    """Per member: the median of the non-zero off-diagonal squared distances (1 if none)."""
    with torch.no_grad():
        n = d2.shape[1]
        iu = torch.triu_indices(n, n, offset=1, device=d2.device)
        vals = d2[:, iu[0], iu[1]]
        vals = torch.where(vals > 0, vals, torch.full_like(vals, float("nan")))
        med = torch.nanmedian(vals, dim=1).values
        return torch.nan_to_num(med, nan=1.0)


def member_penalty(make, n_members, dim_a, dim_b=None, n_classes=None):
    """The member form of the penalty that ``make()`` builds.

    ``make`` returns a fresh :class:`causalmim.penalties.Penalty` (its critic, if any, is
    initialized anew each call). CLUB and vCLUB-S with a continuous partner and the biased MMD
    get a batched form; every other measure is looped over its copies.
    """
    prototype = make()
    kind = type(prototype)
    if kind in (_penalties.CLUB, _penalties.VCLUBSample) and dim_b is not None:
        return StackedCLUB(prototype, dim_a, dim_b, n_members,
                           sampled=kind is _penalties.VCLUBSample)
    if (kind in (_penalties.MMD, _penalties.RBFMMD, _penalties.LinearMMD)
            and n_classes is not None and not prototype.unbiased):
        return StackedMMD(prototype, n_classes)
    return LoopedPenalty(_first_then(prototype, make), n_members)


def _first_then(first, make):
    """A factory that returns ``first`` once, then fresh objects from ``make``."""
    pending = [first]

    def factory():
        return pending.pop() if pending else make()

    return factory
