r"""Loopy belief propagation (sum-product), log domain, all edges in one array."""

from __future__ import annotations

import numpy as np

from ._energy import _bethe_terms
from ._mrf import check_mrf
from ._ops import check_param, lse_last, pairwise_beliefs, softmax_last, warn_not_converged

__all__ = ["LoopyBP"]


class LoopyBP:
    r"""Sum-product loopy belief propagation with a parallel (flooding) schedule.

    Each edge ``(i, j)`` carries a message each way. In the log domain, with
    :math:`\theta` the log-potentials and :math:`N(i)` the neighbours of ``i``,

    .. math::

        m_{j \to i}(x_i) = \log \sum_{x_j} \exp\Big(\theta_{ij}(x_i, x_j) + \theta_j(x_j)
                           + \sum_{k \in N(j) \setminus i} m_{k \to j}(x_j)\Big)

    All messages are computed at once from the previous ones (flooding) and shifted so that
    their largest entry is 0; with damping :math:`\alpha` the new log message is
    :math:`(1 - \alpha) m^{\text{new}} + \alpha m^{\text{old}}`. The beliefs are

    .. math::

        b_i \propto e^{\theta_i + \sum_{k \in N(i)} m_{k\to i}}, \qquad
        b_{ij} \propto e^{\theta_{ij} + \theta_i + \theta_j
                 + \sum_{k \in N(i)\setminus j} m_{k\to i}
                 + \sum_{k \in N(j)\setminus i} m_{k\to j}}.

    Fixed points are the stationary points of the Bethe free energy (Yedidia, Freeman and
    Weiss 2001); on trees they give the exact marginals. On loops with strong or frustrated
    couplings the iteration may oscillate: then ``converged_`` is False and a
    ``ConvergenceWarning`` is raised (:class:`MIMEInference` converges there).

    Parameters
    ----------
    damping : float in [0, 1)
        Weight of the old message in the log-domain update; 0: undamped.
    max_iter : int
        Largest number of sweeps (one sweep updates every message once).
    tol : float
        Converged when the largest absolute change of a log message in a sweep is below it.

    Attributes
    ----------
    marginals_ : ndarray of shape (n_nodes, max_states)
        Node beliefs ``b_i``; zeros in the padded states of nodes with fewer states.
    pairwise_beliefs_ : ndarray of shape (n_edges, max_states, max_states)
        Edge beliefs ``b_ij`` indexed ``[x_i, x_j]`` in the order of ``mrf.edges``.
    messages_ : ndarray of shape (2 * n_edges, max_states)
        Log messages: row ``2e`` goes into node ``edges[e, 0]``, row ``2e + 1`` into node
        ``edges[e, 1]``.
    residuals_ : ndarray of shape (n_iter_,)
        The largest absolute change of a log message in each sweep.
    converged_ : bool
    n_iter_ : int
        Sweeps run.
    free_energy_ : float
        The Bethe free energy of the final beliefs (see :func:`bethe_free_energy`).

    Examples
    --------
    >>> from causalmim.graphical import LoopyBP, PairwiseMRF
    >>> mrf = PairwiseMRF.from_ising(3, [(0, 1), (1, 2), (0, 2)], couplings=[0.3, 0.3, 0.3],
    ...                              fields=[0.5, 0.0, 0.0])
    >>> bp = LoopyBP().fit(mrf)
    >>> bp.converged_, bp.marginals_.shape
    (True, (3, 2))
    """

    def __init__(self, damping=0.0, max_iter=1000, tol=1e-10):
        self.damping = damping
        self.max_iter = max_iter
        self.tol = tol

    def _check_params(self):
        check_param("damping", self.damping, float, 0.0, 1.0, high_open=True)
        check_param("max_iter", self.max_iter, int, 1)
        check_param("tol", self.tol, float, 0.0, low_open=True)

    def fit(self, mrf, init_messages=None):
        """Run belief propagation on ``mrf``.

        Parameters
        ----------
        mrf : PairwiseMRF
        init_messages : ndarray of shape (2 * n_edges, max_states) or None
            Starting log messages (layout of ``messages_``); None: all zeros (uniform).

        Returns
        -------
        self
        """
        check_mrf(mrf)
        self._check_params()
        lay = mrf._layout()
        if init_messages is None:
            m = np.zeros((lay.H, lay.K))
        else:
            m = np.array(init_messages, dtype=np.float64)
            if m.shape != (lay.H, lay.K):
                raise ValueError(f"init_messages must have shape {(lay.H, lay.K)}; got "
                                 f"{m.shape}.")
            if not np.all(np.isfinite(m[lay.half_mask])):
                raise ValueError("init_messages has non-finite values.")
            m = np.where(lay.half_mask, m, 0.0)
        m, residuals, converged = _run_bp(lay, m, float(self.damping), int(self.max_iter),
                                          float(self.tol))
        self.messages_ = m
        self.residuals_ = np.asarray(residuals)
        self.n_iter_ = len(residuals)
        self.converged_ = bool(converged)
        self.marginals_, self.pairwise_beliefs_ = _beliefs(lay, m)
        self.free_energy_ = _bethe_terms(lay, mrf.edges, self.marginals_,
                                         self.pairwise_beliefs_).free_energy
        if not self.converged_:
            warn_not_converged("LoopyBP", self.n_iter_,
                               f"last message change {residuals[-1]:.3g} > tol={self.tol}")
        return self


def _sweep(lay, m, node_pot):
    """One flooding update of all messages; returns new log messages, max-normalized."""
    belief = node_pot + lay.sum_halves(m)  # (N, K): theta_i + all incoming messages
    E, K = lay.E, lay.K
    # Cavity of the sending node: its belief minus the message it got from the receiver.
    # Row h of m goes into owner[h]; the message from owner[h] into other[h] is row h ^ 1.
    partner = m.reshape(E, 2, K)[:, ::-1].reshape(2 * E, K)
    cavity = belief[lay.other] - partner
    new = lse_last(lay.half_pot + cavity[:, None, :])
    if lay.padded:
        new = np.where(lay.half_mask, new, -np.inf)
        return np.where(lay.half_mask, new - new.max(axis=1, keepdims=True), 0.0)
    return new - new.max(axis=1, keepdims=True)


def _run_bp(lay, m, damping, max_iter, tol):
    residuals = []
    if lay.E == 0:
        return m, [0.0], True
    node_pot = lay.node_pot
    converged = False
    for _ in range(max_iter):
        new = _sweep(lay, m, node_pot)
        if damping > 0:
            new = (1.0 - damping) * new + damping * m
            new = new - np.where(lay.half_mask, new, -np.inf).max(axis=1, keepdims=True)
            new = np.where(lay.half_mask, new, 0.0)
        res = float(np.abs(new - m).max())
        m = new
        residuals.append(res)
        if not np.isfinite(res):
            break
        if res < tol:
            converged = True
            break
    return m, residuals, converged


def _beliefs(lay, m):
    """Node and edge beliefs from log messages ``m`` (H, K)."""
    belief = lay.node_pot + lay.sum_halves(m)
    marginals = softmax_last(belief)
    if lay.E == 0:
        return marginals, np.zeros((0, lay.K, lay.K))
    cavity = belief[lay.owner] - m  # (H, K): owner's belief without the message on this edge
    return marginals, pairwise_beliefs(lay.edge_pot, cavity[0::2], cavity[1::2])
