"""The CLUB family: upper bounds of the mutual information with a variational q(b | a)."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from ._base import Penalty, _check_weights, _doc
from ._critics import _GaussianQ, _LinearPlusMLP

_SUBCLASS_PARAMS = """hidden : int, default=64
        Width of the critic's hidden layers.
    logvar_range : float, default=1.0
        Range of the heteroscedastic part of the Gaussian log-variance (see :class:`CLUB`).
    max_logvar : float, default=10.0
        Soft bound on the Gaussian log-variance."""

_WEIGHTED_SECTIONS = """Parameters
        ----------
        a : torch.Tensor of shape (n_samples, dim_a)
        b : torch.Tensor of shape (n_samples, dim_b) or (n_samples,)
        weights : torch.Tensor of shape (n_samples,), optional
            Non-negative per-sample weights; normalized to sum 1. None means uniform.

        Returns
        -------
        torch.Tensor"""


@_doc
class CLUB(Penalty):
    """Contrastive log-ratio upper bound (CLUB) of the mutual information I(a; b).

    ``forward`` returns ``E_p(a,b)[log q(b|a)] - E_p(a) E_p(b)[log q(b|a)]``, the average over
    all ``n^2`` pairs of the batch for the second term (computed in O(n) for a Gaussian q); it
    is an upper bound of I(a; b) when q is close to the true conditional p(b|a) (Cheng et al.,
    ICML 2020). ``learning_loss`` is ``-mean_i log q(b_i|a_i)``, the negative log-likelihood of
    the matched pairs (with all constants).

    For a float ``b``, q(b|a) is a diagonal Gaussian whose mean and log-variance are small
    networks of ``a``, as in the reference code: the mean is ``Linear(a) + MLP(a)`` and the
    log-variance ``c + logvar_range * tanh(MLP(a))`` (a learned per-coordinate constant plus a
    bounded heteroscedastic part; the reference bounds it with ``tanh`` too), softly bounded to
    ``[-max_logvar, max_logvar]``. The MLPs have one hidden layer of width ``hidden`` and start
    with a zero output layer, so q starts as a linear-Gaussian model (the exact family for
    jointly Gaussian data) that :func:`fit_critic` can initialize by least squares. For a label
    vector ``b``, q(b|a) is categorical: a softmax over ``n_classes`` logits
    ``Linear(a) + MLP(a)``. In the estimate, the Gaussian constants and the log-variance cancel
    between the two terms, as in the reference code.

    For jointly Gaussian ``(a, b)`` with per-coordinate correlation ``rho`` and a well-fitted q,
    the value is ``d rho^2 / (1 - rho^2)``, above the true ``-(d/2) log(1 - rho^2)``.

    Parameters
    ----------
    %(common_params)s
    hidden : int, default=64
        Width of the critic's hidden layers.
    logvar_range : float, default=1.0
        Range of the heteroscedastic part of the Gaussian log-variance; 0 makes q's variance a
        constant (homoscedastic), the least prone to overfit small samples.
    max_logvar : float, default=10.0
        Soft bound on the Gaussian log-variance (``max_logvar * tanh(raw / max_logvar)``).

    Attributes
    ----------
    dim_a_, dim_b_, n_classes_ : int or None
        Sizes the critic was built for.

    Examples
    --------
    >>> import torch
    >>> from causalmim.penalties import CLUB, fit_critic
    >>> g = torch.Generator().manual_seed(0)
    >>> a = torch.randn(512, 3, generator=g)
    >>> b = 0.8 * a + 0.6 * torch.randn(512, 3, generator=g)
    >>> club = CLUB(dim_a=3, dim_b=3)
    >>> losses = fit_critic(club, a, b)
    >>> 4.0 < club(a, b).item() < 6.5  # population value 3 * 0.64 / 0.36 = 5.33
    True
    """

    bound = "upper"
    _critic = True

    def __init__(
        self,
        dim_a=None,
        dim_b=None,
        n_classes=None,
        hidden=64,
        logvar_range=1.0,
        max_logvar=10.0,
    ):
        super().__init__(dim_a=dim_a, dim_b=dim_b, n_classes=n_classes)
        self.hidden = hidden
        self.logvar_range = logvar_range
        self.max_logvar = max_logvar
        self._maybe_build_now()

    # q(b | a) --------------------------------------------------------------------------

    def _build(self):
        if self.n_classes_ is not None:
            self.q = _LinearPlusMLP(self.dim_a_, self.hidden, self.n_classes_)
        else:
            self.q = _GaussianQ(
                self.dim_a_, self.dim_b_, self.hidden, self.logvar_range, self.max_logvar
            )

    def _mu_logvar(self, a):
        return self.q(a)

    def _init_critic(self, x, weights=None, ridge_fraction=0.25):
        """Initialize the Gaussian q by ridge least squares (used by :func:`fit_critic`)."""
        if isinstance(self.q, _GaussianQ):
            self.q.init_least_squares(x.a, x.b, weights, ridge_fraction)

    def _log_softmax(self, a):
        return F.log_softmax(self.q(a), dim=1)

    def _positive(self, x):
        """log q(b_i | a_i) up to the terms that cancel in the estimate, per sample."""
        if x.is_labels:
            return self._log_softmax(x.a).gather(1, x.labels[:, None])[:, 0]
        mu, logvar = self._mu_logvar(x.a)
        return (-((mu - x.b) ** 2) / (2.0 * logvar.exp())).sum(1)

    def _negative_all(self, x):
        """Mean over j of log q(b_j | a_i) (same dropped terms), per sample i, in O(n)."""
        if x.is_labels:
            logp = self._log_softmax(x.a)
            freq = torch.bincount(x.labels, minlength=logp.shape[1]).to(logp.dtype)
            freq = freq / freq.sum()
            return logp @ freq
        mu, logvar = self._mu_logvar(x.a)
        b = x.b
        # mean_j (b_j - mu_i)^2 = mean(b^2) - 2 mu_i mean(b) + mu_i^2, per coordinate.
        sq = (b * b).mean(0) - 2.0 * mu * b.mean(0) + mu * mu
        return (-sq / (2.0 * logvar.exp())).sum(1)

    def _log_likelihood(self, x):
        """Full log q(b_i | a_i), per sample."""
        if x.is_labels:
            return self._log_softmax(x.a).gather(1, x.labels[:, None])[:, 0]
        mu, logvar = self._mu_logvar(x.a)
        ll = -0.5 * (((mu - x.b) ** 2) / logvar.exp() + logvar + math.log(2.0 * math.pi))
        return ll.sum(1)

    # estimate ---------------------------------------------------------------------------

    def _forward(self, x):
        return (self._positive(x) - self._negative_all(x)).mean()

    def _learning_loss(self, x):
        return -self._log_likelihood(x).mean()


@_doc(subclass_params=_SUBCLASS_PARAMS)
class VCLUBSample(CLUB):
    """Sampled CLUB (vCLUB-S): CLUB with one random negative per sample, O(n).

    ``forward`` returns ``mean_i [log q(b_i|a_i) - log q(b_k'_i|a_i)]`` with ``k'`` a random
    permutation of the batch drawn from torch's global random generator (control it with
    ``torch.manual_seed`` inside ``torch.random.fork_rng``). It is an unbiased but noisy estimate
    of :class:`CLUB`'s value. The critic and its ``learning_loss`` are those of :class:`CLUB`.

    Parameters
    ----------
    %(common_params)s
    %(subclass_params)s
    """

    def _forward(self, x):
        n = x.a.shape[0]
        perm = torch.randperm(n, device=x.a.device)
        if x.is_labels:
            logp = self._log_softmax(x.a)
            pos = logp.gather(1, x.labels[:, None])[:, 0]
            neg = logp.gather(1, x.labels[perm][:, None])[:, 0]
            return (pos - neg).mean()
        mu, logvar = self._mu_logvar(x.a)
        inv = 1.0 / (2.0 * logvar.exp())
        pos = (-((mu - x.b) ** 2) * inv).sum(1)
        neg = (-((mu - x.b[perm]) ** 2) * inv).sum(1)
        return (pos - neg).mean()


@_doc(subclass_params=_SUBCLASS_PARAMS)
class L1Out(CLUB):
    """Leave-one-out variational upper bound (L1Out) of the mutual information.

    ``forward`` returns
    ``mean_i [log q(b_i|a_i) - log (1/(n-1)) sum_{j != i} q(b_i|a_j)]`` (computed in O(n^2)),
    with the same variational q(b|a) and ``learning_loss`` as :class:`CLUB` (Cheng et al.,
    ICML 2020, after Poole et al., ICML 2019).

    Parameters
    ----------
    %(common_params)s
    %(subclass_params)s
    """

    def _pair_loglik(self, x):
        """Matrix M[i, j] = log q(b_i | a_j) (full, with constants)."""
        if x.is_labels:
            logp = self._log_softmax(x.a)  # (n, K): logp[j, k] = log q(k | a_j)
            return logp[:, x.labels].T
        mu, logvar = self._mu_logvar(x.a)
        inv = torch.exp(-logvar)  # (n, d)
        b = x.b
        # sum_d (b_i - mu_j)^2 / var_j = b^2 @ inv^T - 2 b @ (mu inv)^T + sum_d mu_j^2 inv_j
        quad = (b * b) @ inv.T - 2.0 * b @ (mu * inv).T + (mu * mu * inv).sum(1)[None, :]
        const = logvar.sum(1)[None, :] + b.shape[1] * math.log(2.0 * math.pi)
        return -0.5 * (quad + const)

    def _forward(self, x):
        m = self._pair_loglik(x)
        n = m.shape[0]
        pos = torch.diagonal(m)
        eye = torch.eye(n, dtype=torch.bool, device=m.device)
        neg = torch.logsumexp(m.masked_fill(eye, float("-inf")), dim=1) - math.log(n - 1)
        return (pos - neg).mean()


@_doc(subclass_params=_SUBCLASS_PARAMS)
class IWCLUB(CLUB):
    """Importance-weighted CLUB (Wang, Cheng, Henao, AISTATS 2023).

    With per-sample weights ``w_i`` (normalized here to sum to 1), ``forward`` returns
    ``sum_i w_i [log q(b_i|a_i) - (1/n) sum_j log q(b_j|a_i)]`` and ``learning_loss`` returns
    ``-sum_i w_i log q(b_i|a_i)``: the CLUB estimate and q's fit under the target distribution
    that the weights define (e.g. a reweighted population). Without weights it equals
    :class:`CLUB`.

    Parameters
    ----------
    %(common_params)s
    %(subclass_params)s
    """

    @_doc(weighted_sections=_WEIGHTED_SECTIONS)
    def forward(self, a, b, weights=None):
        """Weighted CLUB estimate.

        %(weighted_sections)s
            A differentiable scalar.
        """
        x = self._prepare(a, b)
        return _weighted_mean(self._positive(x) - self._negative_all(x), weights)

    @_doc(weighted_sections=_WEIGHTED_SECTIONS)
    def learning_loss(self, a, b, weights=None):
        """Weighted negative log-likelihood of q on the matched pairs.

        %(weighted_sections)s
        """
        x = self._prepare(a, b)
        return -_weighted_mean(self._log_likelihood(x), weights)


def _weighted_mean(values, weights):
    """Mean of per-sample ``values``, weighted by ``weights`` (normalized to sum 1) if given."""
    if weights is None:
        return values.mean()
    return (_check_weights(weights, values.shape[0], values) * values).sum()

