r"""MIME / CCCP: double-loop minimization of the Bethe free energy that always converges."""

from __future__ import annotations

import numbers

import numpy as np
from scipy import sparse
from scipy.special import expit

from ._energy import _bethe_terms
from ._mrf import check_mrf
from ._ops import (
    check_param,
    lse_last,
    normalize_log,
    pairwise_beliefs,
    softmax_last,
    warn_not_converged,
)

__all__ = ["MIMEInference", "DECOMPOSITIONS"]

#: Named splits of the Bethe free energy: name -> c, the share of each node's entropy term
#: ``sum b_i log b_i`` kept in the convex part (see :class:`MIMEInference`).
DECOMPOSITIONS = {
    "cccp": 1.0,  # Yuille (2002): F_vex holds every b_i log b_i once, F_cave -d_i times
    "tight": 0.0,  # Heskes, Albers and Kappen (2003): the smallest convex part, c_i = 0
}


class MIMEInference:
    r"""Convergent double-loop minimization of the Bethe free energy (MIME / CCCP family).

    **Free energy.** With log-potentials :math:`\theta`, node degrees :math:`d_i` and
    beliefs :math:`b` on the local polytope (:math:`\sum_{x_i} b_i = 1`,
    :math:`\sum_{x_j} b_{ij}(x_i, x_j) = b_i(x_i)`),

    .. math::

        F(b) = \sum_{(ij)} \sum b_{ij}\log b_{ij} - \sum_i (d_i - 1)\sum b_i \log b_i + U(b)
             = U(b) + \sum_{(ij)} I_{ij}(b) - \sum_i H_i(b),

    with the linear energy
    :math:`U = -\sum_i\langle\theta_i\rangle_{b_i} - \sum_{(ij)}\langle\theta_{ij}\rangle_{b_{ij}}`.

    **Split.** For :math:`c_i \ge 0` (``c_i = max(c, 1 - d_i)``, so an isolated node keeps its
    entropy convex) write :math:`a_i = d_i - 1 + c_i \ge 0` and

    .. math::

        F_{vex} = \sum_{(ij)} \sum b_{ij}\log b_{ij} + \sum_i c_i \sum b_i\log b_i + U, \qquad
        F_{cave} = -\sum_i a_i \sum b_i \log b_i.

    ``decomposition="cccp"`` is Yuille's split, :math:`c = 1`; ``"tight"`` is
    :math:`c = 0`, the smallest convex part; a float sets :math:`c` directly.

    **Outer loop** (CCCP). At beliefs :math:`b^k` replace :math:`F_{cave}` by its tangent:
    minimize :math:`F_{vex}(b) - \sum_i a_i \sum b_i \log b_i^k` on the local polytope.
    Since :math:`F_{cave}` is concave, it lies below its tangent, so
    :math:`F(b^{k+1}) \le F(b^k)`: ``free_energy_history_`` never increases (up to the
    precision of the inner loop), and the fixed points are stationary points of ``F``, the
    fixed points of loopy BP.

    **Inner loop** (convex, solved in its dual). With
    :math:`\phi_i = \theta_i + a_i \log b_i^k` and one multiplier :math:`\lambda_{ij}(x_i)`
    per edge side for :math:`\sum_{x_j} b_{ij} = b_i`, the Lagrangian is minimized by

    .. math::

        b_{ij} \propto e^{\theta_{ij} + \lambda_{ij}(x_i) + \lambda_{ji}(x_j)}, \qquad
        b_i \propto e^{(\phi_i - \sum_{j \in N(i)} \lambda_{ij}) / c_i},

    and the dual :math:`D(\lambda) = -\sum_{(ij)} \log Z_{ij} - \sum_i c_i \log Z_i` is
    concave. Its exact maximization over the block :math:`\{\lambda_{ij}\}_{j \in N(i)}` of one
    node, with :math:`\mu_{j\to i}(x_i) = \log\sum_{x_j} e^{\theta_{ij}(x_i, x_j) +
    \lambda_{ji}(x_j)}`, is

    .. math::

        \log b_i = \frac{\phi_i + \sum_{j \in N(i)} \mu_{j \to i}}{c_i + d_i} + \text{const},
        \qquad \lambda_{ij} = \log b_i - \mu_{j \to i},

    after which every edge belief at ``i`` marginalizes to :math:`b_i` exactly. Blocks of
    nodes that share no edge are independent, so one inner sweep updates the colour classes
    of a greedy colouring in turn (two for a grid), each colour vectorized over its edges:
    block coordinate ascent, so ``D`` never decreases. The multipliers are warm-started from
    the previous outer step; the inner loop stops when the largest violation
    :math:`|\sum_{x_j} b_{ij} - b_i|` falls below ``inner_tol``.

    Parameters
    ----------
    decomposition : {"cccp", "tight"} or float
        The split: a name of :data:`DECOMPOSITIONS` or ``c >= 0``.
    outer_tol : float
        Converged when no node belief moves by more than this in an outer step.
    inner_tol : float
        Inner loop stops when the largest marginalization violation is below it.
    max_outer_iter, max_inner_iter : int
        Caps of the outer steps and of the inner sweeps per outer step.

    Attributes
    ----------
    marginals_ : ndarray of shape (n_nodes, max_states)
        Node beliefs; zeros in padded states.
    pairwise_beliefs_ : ndarray of shape (n_edges, max_states, max_states)
        Edge beliefs indexed ``[x_i, x_j]`` in the order of ``mrf.edges``.
    free_energy_history_ : ndarray of shape (n_iter_,)
        Bethe free energy after each outer step.
    free_energy_ : float
        Its last value.
    converged_ : bool
    n_iter_ : int
        Outer steps run.
    n_inner_iter_ : ndarray of int, shape (n_iter_,)
        Inner sweeps of each outer step.
    c_ : float
        The ``c`` of the split.
    messages_ : ndarray of shape (2 * n_edges, max_states)
        :math:`\mu_{j \to i}` at the final multipliers, shifted to a largest entry of 0, in
        the layout of :attr:`LoopyBP.messages_`. At a fixed point of the outer loop,
        :math:`\log b_i = \theta_i + \sum_j \mu_{j \to i} + \text{const}` (because
        :math:`c_i + d_i - a_i = 1`) and :math:`\lambda_{ij}` is the cavity
        :math:`\theta_i + \sum_{k \ne j} \mu_{k \to i}`: these are BP messages, and a
        fixed point of BP (``LoopyBP().fit(mrf, init_messages=mime.messages_)`` starts there).

    References
    ----------
    A. Rangarajan and A. L. Yuille, "MIME: Mutual Information Minimization and Entropy
    Maximization for Bayesian Belief Propagation", NIPS 14, 2001.
    A. L. Yuille, "CCCP algorithms to minimize the Bethe and Kikuchi free energies",
    Neural Computation 14(7), 2002.
    T. Heskes, K. Albers and B. Kappen, "Approximate inference and constrained
    optimization", UAI 2003.

    Examples
    --------
    An antiferromagnetic triangle (frustrated):

    >>> from causalmim.graphical import MIMEInference, PairwiseMRF
    >>> mrf = PairwiseMRF.from_ising(3, [(0, 1), (1, 2), (0, 2)], couplings=[-2.0] * 3,
    ...                              fields=[0.1, -0.2, 0.05])
    >>> mime = MIMEInference().fit(mrf)
    >>> bool(mime.converged_)
    True
    >>> bool((mime.free_energy_history_[1:] <= mime.free_energy_history_[:-1] + 1e-9).all())
    True
    """

    def __init__(self, decomposition="cccp", outer_tol=1e-9, inner_tol=1e-11,
                 max_outer_iter=2000, max_inner_iter=1000):
        self.decomposition = decomposition
        self.outer_tol = outer_tol
        self.inner_tol = inner_tol
        self.max_outer_iter = max_outer_iter
        self.max_inner_iter = max_inner_iter

    def _check_params(self):
        dec = self.decomposition
        if isinstance(dec, str):
            if dec not in DECOMPOSITIONS:
                raise ValueError(f"decomposition={dec!r} is not one of "
                                 f"{', '.join(map(repr, DECOMPOSITIONS))} (or a float c >= 0).")
            c = DECOMPOSITIONS[dec]
        elif isinstance(dec, numbers.Real) and not isinstance(dec, bool):
            c = float(check_param("decomposition", dec, float, 0.0))
        else:
            raise ValueError(f"decomposition must be one of {', '.join(map(repr, DECOMPOSITIONS))}"
                             f" or a float c >= 0; got {dec!r}.")
        check_param("outer_tol", self.outer_tol, float, 0.0, low_open=True)
        check_param("inner_tol", self.inner_tol, float, 0.0, low_open=True)
        check_param("max_outer_iter", self.max_outer_iter, int, 1)
        check_param("max_inner_iter", self.max_inner_iter, int, 1)
        return c

    def fit(self, mrf):
        """Minimize the Bethe free energy of ``mrf``.

        Parameters
        ----------
        mrf : PairwiseMRF

        Returns
        -------
        self
        """
        check_mrf(mrf)
        c = self._check_params()
        lay = mrf._layout()
        plan = _color_plan(lay)
        c_i = np.maximum(c, 1.0 - lay.degree)  # isolated nodes: the whole entropy is convex
        a_i = lay.degree - 1.0 + c_i
        denom = (c_i + lay.degree)[:, None]
        mask = lay.node_mask
        logb = normalize_log(np.where(mask, 0.0, -np.inf))  # uniform start
        lam = np.zeros((lay.H, lay.K))
        history, inner_counts = [], []
        converged = False
        b_old = np.exp(logb)
        binary = lay.K == 2 and not lay.padded
        if binary:  # log-odds form: half the memory traffic, same iterates
            bplan = _binary_plan(lay, plan)
            lam_odds = np.zeros(lay.H)
        for _ in range(int(self.max_outer_iter)):
            phi = np.where(mask, lay.node_pot + a_i[:, None] * np.where(mask, logb, 0.0),
                           -np.inf)
            if binary:
                odds, n_inner = _inner_loop_binary(
                    bplan, lam_odds, phi[:, 1] - phi[:, 0], denom[:, 0],
                    logb[:, 1] - logb[:, 0], float(self.inner_tol), int(self.max_inner_iter))
                logb = -np.logaddexp(0.0, np.stack([odds, -odds], axis=1))
                lam[:, 1] = lam_odds
            else:
                logb, n_inner = _inner_loop(lay, plan, lam, phi, denom, logb,
                                            float(self.inner_tol), int(self.max_inner_iter))
            inner_counts.append(n_inner)
            b_new = np.exp(logb)
            edge = (pairwise_beliefs(lay.edge_pot, lam[0::2], lam[1::2]) if lay.E
                    else np.zeros((0, lay.K, lay.K)))
            history.append(_bethe_terms(lay, mrf.edges, b_new, edge).free_energy)
            delta = float(np.abs(b_new - b_old).max())
            b_old = b_new
            if delta < self.outer_tol:
                converged = True
                break
        self.c_ = float(c)
        self.marginals_ = b_new
        self.pairwise_beliefs_ = edge
        self.messages_ = _messages(lay, lam)
        self.free_energy_history_ = np.asarray(history)
        self.free_energy_ = float(history[-1])
        self.n_iter_ = len(history)
        self.n_inner_iter_ = np.asarray(inner_counts, dtype=np.int64)
        self.converged_ = converged
        if not converged:
            warn_not_converged("MIMEInference", self.n_iter_,
                               f"last belief change {delta:.3g} > outer_tol={self.outer_tol}")
        return self


def _color_plan(lay):
    """Per colour class: its nodes, the halves they own, and a local owner index."""
    plan = []
    pos = np.full(lay.N, -1, dtype=np.int64)
    for nodes in lay.colors:
        halves = np.flatnonzero(np.isin(lay.owner, nodes))
        pos[nodes] = np.arange(len(nodes))
        local_owner = pos[lay.owner[halves]]
        inc = sparse.csr_matrix((np.ones(len(halves)), (local_owner, np.arange(len(halves)))),
                                shape=(len(nodes), len(halves)))
        plan.append((nodes, halves, halves ^ 1, local_owner, inc, lay.half_mask[halves]))
    return plan


def _binary_plan(lay, plan):
    """The colour plan with the four entries of each half's table as separate arrays."""
    out = []
    for nodes, halves, partners, local_owner, _, _ in plan:
        pot = lay.half_pot[halves]
        out.append((nodes, halves, partners, local_owner, len(nodes),
                    pot[:, 0, 0].copy(), pot[:, 0, 1].copy(), pot[:, 1, 0].copy(),
                    pot[:, 1, 1].copy()))
    return out


def _inner_loop_binary(bplan, lam, phi, denom, odds, tol, max_iter):
    """:func:`_inner_loop` for binary models, in log-odds: ``lam`` (H,) holds
    ``lambda(1) - lambda(0)`` (updated in place), ``phi`` and ``odds`` (N,) hold
    ``phi_i(1) - phi_i(0)`` and ``log b_i(1) - log b_i(0)``; returns (odds, sweeps)."""
    odds = odds.copy()
    sweeps = 0
    for sweeps in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        gap = 0.0
        for nodes, halves, partners, local_owner, n_c, t00, t01, t10, t11 in bplan:
            if len(halves) == 0:
                odds[nodes] = phi[nodes] / denom[nodes]
                continue
            other = lam[partners]
            mu = np.logaddexp(t10, t11 + other) - np.logaddexp(t00, t01 + other)
            gap = max(gap, float(np.abs(expit(lam[halves] + mu)
                                        - expit(odds[nodes][local_owner])).max()))
            new = (phi[nodes] + np.bincount(local_owner, weights=mu, minlength=n_c)) / denom[nodes]
            odds[nodes] = new
            lam[halves] = new[local_owner] - mu
        if gap < tol:
            break
    return odds, sweeps


def _inner_loop(lay, plan, lam, phi, denom, logb, tol, max_iter):
    """Block coordinate ascent on the dual; updates ``lam`` in place, returns (log b, sweeps).

    Before a colour class is updated, its edge sides are checked: the largest
    ``|sum_{x_j} b_ij - b_i|`` over them. The loop stops after the first sweep in which
    every colour was within ``tol`` before its update (updates only shrink the dual gap).
    """
    logb = logb.copy()
    mask = lay.node_mask
    sweeps = 0
    for sweeps in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        gap = 0.0
        for nodes, halves, partners, local_owner, inc, hmask in plan:
            if len(halves) == 0:
                new = phi[nodes] / denom[nodes]
            else:
                mu = lse_last(lay.half_pot[halves] + lam[partners][:, None, :])
                if lay.padded:
                    mu = np.where(hmask, mu, 0.0)
                side = lam[halves] + mu  # log of sum_{x_j} b_ij, unnormalized
                if lay.padded:
                    side = np.where(hmask, side, -np.inf)
                gap = max(gap, float(np.abs(softmax_last(side)
                                            - np.exp(logb[nodes][local_owner])).max()))
                new = (phi[nodes] + inc @ mu) / denom[nodes]
            new = normalize_log(np.where(mask[nodes], new, -np.inf))
            logb[nodes] = new
            if len(halves):
                lam[halves] = np.where(hmask, new[local_owner] - mu, 0.0)
        if gap < tol:
            break
    return logb, sweeps


def _messages(lay, lam):
    """BP messages ``mu_{j->i}(x_i) = log sum_{x_j} exp(theta_ij + lambda_ji(x_j))``."""
    if lay.E == 0:
        return np.zeros((0, lay.K))
    partner = lam.reshape(lay.E, 2, lay.K)[:, ::-1].reshape(lay.H, lay.K)
    mu = lse_last(lay.half_pot + partner[:, None, :])
    mu = np.where(lay.half_mask, mu, -np.inf)
    return np.where(lay.half_mask, mu - mu.max(axis=1, keepdims=True), 0.0)
