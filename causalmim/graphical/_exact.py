"""Exact inference by enumerating every joint state (small models: the tests' reference)."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ._mrf import check_mrf
from ._ops import check_param

__all__ = ["ExactInference"]

#: Default cap on the number of joint states (2^22: about 4 million, 22 binary nodes).
MAX_CONFIGURATIONS = 2**22


class ExactInference:
    """Exact marginals and log partition function by enumeration of all joint states.

    The joint states are enumerated in blocks of ``block_size``; memory and time grow with
    ``prod(n_states)``, which must not exceed ``max_configurations``.

    Parameters
    ----------
    max_configurations : int
        Largest number of joint states accepted (default ``2**22``, 22 binary nodes).
    block_size : int
        Joint states evaluated per vectorized block.

    Attributes
    ----------
    marginals_ : ndarray of shape (n_nodes, max_states)
        Exact node marginals; zeros in padded states.
    pairwise_beliefs_ : ndarray of shape (n_edges, max_states, max_states)
        Exact edge marginals indexed ``[x_i, x_j]`` in the order of ``mrf.edges``.
    log_partition_ : float
        ``log Z``.

    Examples
    --------
    >>> from causalmim.graphical import ExactInference, PairwiseMRF
    >>> mrf = PairwiseMRF([2, 3], [(0, 1)], unary=[[0.0, 1.0], [0.0, 0.0, 0.0]])
    >>> exact = ExactInference().fit(mrf)
    >>> exact.marginals_.round(3).tolist()
    [[0.269, 0.731, 0.0], [0.333, 0.333, 0.333]]
    """

    def __init__(self, max_configurations=MAX_CONFIGURATIONS, block_size=2**18):
        self.max_configurations = max_configurations
        self.block_size = block_size

    def fit(self, mrf):
        """Enumerate the joint states of ``mrf``.

        Parameters
        ----------
        mrf : PairwiseMRF

        Returns
        -------
        self

        Raises
        ------
        ValueError
            When the model has more than ``max_configurations`` joint states.
        """
        check_mrf(mrf)
        check_param("max_configurations", self.max_configurations, int, 1)
        check_param("block_size", self.block_size, int, 1)
        k = mrf.n_states
        total = 1
        for kk in k.tolist():
            total *= kk
        if total > self.max_configurations:
            raise ValueError(f"the model has {total:.3g} joint states (product of n_states), "
                             f"more than max_configurations={self.max_configurations}; exact "
                             "enumeration is for small models (about 20 binary nodes).")
        lay = mrf._layout()
        N, K, E = lay.N, lay.K, lay.E
        strides = np.ones(N, dtype=np.int64)  # mixed radix, node 0 fastest
        if N > 1:
            strides[1:] = np.cumprod(k[:-1])
        i, j = mrf.edges[:, 0], mrf.edges[:, 1]
        # Pass 1: log-weights, log Z. Pass 2: marginals with the weights normalized.
        blocks = range(0, total, int(self.block_size))
        log_z = logsumexp([logsumexp(self._log_weights(mrf, lo, total, strides)[1])
                           for lo in blocks])
        node = np.zeros((N, K))
        pair = np.zeros((E, K, K))
        for lo in blocks:
            x, logw = self._log_weights(mrf, lo, total, strides)
            w = np.exp(logw - log_z)
            for n in range(N):
                node[n] += np.bincount(x[n], weights=w, minlength=K)
            for e in range(E):
                pair[e] += np.bincount(x[i[e]] * K + x[j[e]], weights=w,
                                       minlength=K * K).reshape(K, K)
        self.marginals_ = node
        self.pairwise_beliefs_ = pair
        self.log_partition_ = float(log_z)
        return self

    def _log_weights(self, mrf, lo, total, strides):
        idx = np.arange(lo, min(lo + int(self.block_size), total), dtype=np.int64)
        x = (idx[None, :] // strides[:, None]) % mrf.n_states[:, None]  # (N, block)
        logw = np.zeros(len(idx))
        for n, pot in enumerate(mrf.unary):
            logw += pot[x[n]]
        for (a, b), pot in zip(mrf.edges, mrf.pairwise, strict=True):
            logw += pot[x[a], x[b]]
        return x, logw
