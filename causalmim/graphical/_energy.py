r"""The Bethe free energy of a pairwise model and its MIME terms.

With beliefs :math:`b_i` on the nodes and :math:`b_{ij}` on the edges,

.. math::

    F(b) = \sum_{(ij)} \sum_{x_i, x_j} b_{ij} \log\frac{b_{ij}}
           {e^{\theta_{ij} + \theta_i + \theta_j}}
         - \sum_i (d_i - 1) \sum_{x_i} b_i \log\frac{b_i}{e^{\theta_i}}
         = U(b) + \sum_{(ij)} I_{ij}(b) - \sum_i H_i(b)

where
:math:`U = -\sum_i \langle\theta_i\rangle_{b_i} - \sum_{(ij)}\langle\theta_{ij}\rangle_{b_{ij}}`
is the expected energy, :math:`I_{ij} = \sum b_{ij}\log[b_{ij}/(b_i b_j)]` the mutual information
of the pair and :math:`H_i = -\sum b_i \log b_i` the marginal entropy. The second form holds
on the local polytope (``b_ij`` sums to ``b_i`` over ``x_j`` and to ``b_j`` over ``x_i``);
:func:`bethe_free_energy` computes ``F`` by the first form, defined for any beliefs, and the
three terms by their own definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from ._mrf import check_mrf

__all__ = ["BetheFreeEnergy", "bethe_free_energy"]


@dataclass(frozen=True)
class BetheFreeEnergy:
    """The Bethe free energy and its MIME terms (all in nats).

    Attributes
    ----------
    free_energy : float
        ``F``, by its definition as a sum of edge and node terms.
    energy : float
        ``U = -sum_i <theta_i>_{b_i} - sum_(ij) <theta_ij>_{b_ij}``, the expected energy.
    mutual_information : float
        ``sum_(ij) I_ij``, the pairwise mutual informations of the edge beliefs.
    entropy : float
        ``sum_i H_i``, the marginal entropies of the node beliefs.
    max_inconsistency : float
        The largest ``|sum_{x_j} b_ij - b_i|`` over edges, both sides, and states (0 on the
        local polytope, where ``free_energy == energy + mutual_information - entropy``).
    """

    free_energy: float
    energy: float
    mutual_information: float
    entropy: float
    max_inconsistency: float


def _unpack_beliefs(beliefs):
    if hasattr(beliefs, "marginals_") and hasattr(beliefs, "pairwise_beliefs_"):
        return beliefs.marginals_, beliefs.pairwise_beliefs_
    try:
        node, edge = beliefs
    except (TypeError, ValueError) as exc:
        raise ValueError("beliefs must be a pair (node_beliefs, edge_beliefs) or a fitted "
                         "inference object with marginals_ and pairwise_beliefs_.") from exc
    return node, edge


def _padded_beliefs(mrf, node, edge):
    """Node beliefs as (N, K) and edge beliefs as (E, K, K), zeros in padded states."""
    lay = mrf._layout()
    N, E, K = lay.N, lay.E, lay.K
    out_node = np.zeros((N, K))
    out_edge = np.zeros((E, K, K))
    if isinstance(node, np.ndarray) and node.ndim == 2:
        node = list(node)
    if isinstance(edge, np.ndarray) and edge.ndim == 3:
        edge = list(edge)
    if len(node) != N:
        raise ValueError(f"node beliefs: got {len(node)} for {N} nodes.")
    if len(edge) != E:
        raise ValueError(f"edge beliefs: got {len(edge)} for {E} edges.")
    for i, (b, k) in enumerate(zip(node, mrf.n_states, strict=True)):
        b = np.asarray(b, dtype=np.float64)
        if b.shape not in ((k,), (K,)) or (b.shape == (K,) and np.any(b[k:] != 0)):
            raise ValueError(f"node belief {i} has shape {b.shape}; node {i} has {k} states.")
        out_node[i, :k] = b[:k]
    for e, (b, (i, j)) in enumerate(zip(edge, mrf.edges, strict=True)):
        b = np.asarray(b, dtype=np.float64)
        ki, kj = mrf.n_states[i], mrf.n_states[j]
        if b.shape != (ki, kj):
            if b.shape != (K, K) or np.any(b[ki:] != 0) or np.any(b[:, kj:] != 0):
                raise ValueError(f"edge belief {e} has shape {b.shape}; nodes {i} and {j} "
                                 f"have {ki} and {kj} states.")
        out_edge[e, :ki, :kj] = b[:ki, :kj]
    if not (np.all(np.isfinite(out_node)) and np.all(np.isfinite(out_edge))):
        raise ValueError("beliefs have non-finite values.")
    if np.any(out_node < 0) or np.any(out_edge < 0):
        raise ValueError("beliefs must be non-negative.")
    return out_node, out_edge


def bethe_free_energy(mrf, beliefs):
    r"""Bethe free energy of ``beliefs`` on ``mrf`` and its MIME terms.

    .. math::

        F = \sum_{(ij)} \sum b_{ij} \log\frac{b_{ij}}{e^{\theta_{ij}+\theta_i+\theta_j}}
          - \sum_i (d_i - 1) \sum b_i \log\frac{b_i}{e^{\theta_i}}
          = U + \sum_{(ij)} I_{ij} - \sum_i H_i

    The identity on the right holds when the edge beliefs marginalize to the node beliefs.

    Parameters
    ----------
    mrf : PairwiseMRF
    beliefs : (node_beliefs, edge_beliefs) or fitted inference object
        Node beliefs: an array (n_nodes, max_states) padded with zeros, or a list of arrays
        of shape (n_states[i],). Edge beliefs: an array (n_edges, max_states, max_states)
        padded with zeros, or a list of (n_states[i], n_states[j]) arrays. An object with
        ``marginals_`` and ``pairwise_beliefs_`` (a fitted :class:`LoopyBP`,
        :class:`MIMEInference` or :class:`ExactInference`) is read from those.

    Returns
    -------
    BetheFreeEnergy

    Examples
    --------
    On a tree the Bethe free energy at the exact marginals is ``-log Z``:

    >>> import numpy as np
    >>> from causalmim.graphical import ExactInference, PairwiseMRF, bethe_free_energy
    >>> mrf = PairwiseMRF.from_ising(3, [(0, 1), (1, 2)], couplings=[1.0, -0.5],
    ...                              fields=[0.2, 0.0, -0.3])
    >>> exact = ExactInference().fit(mrf)
    >>> terms = bethe_free_energy(mrf, exact)
    >>> bool(np.isclose(terms.free_energy, -exact.log_partition_))
    True
    >>> bool(np.isclose(terms.free_energy,
    ...                 terms.energy + terms.mutual_information - terms.entropy))
    True
    """
    check_mrf(mrf)
    node, edge = _padded_beliefs(mrf, *_unpack_beliefs(beliefs))
    return _bethe_terms(mrf._layout(), mrf.edges, node, edge)


def _bethe_terms(lay, edges, node, edge):
    """Bethe terms from padded beliefs (no validation); see :func:`bethe_free_energy`."""
    node_pot = np.where(lay.node_mask, lay.node_pot, 0.0)
    edge_pot = np.where(np.isfinite(lay.edge_pot), lay.edge_pot, 0.0)
    i, j = edges[:, 0], edges[:, 1]
    node_neg_entropy = xlogy(node, node).sum(axis=1)  # (N,)
    node_energy = -(node * node_pot).sum(axis=1)  # (N,)
    pair_energy = -(edge * edge_pot).sum(axis=(1, 2))  # (E,)
    edge_neg_entropy = xlogy(edge, edge).sum(axis=(1, 2))  # (E,)
    # Edge term: sum b_ij [log b_ij - theta_ij - theta_i - theta_j].
    row, col = edge.sum(axis=2), edge.sum(axis=1)  # marginals of b_ij on x_i and x_j
    edge_terms = (edge_neg_entropy + pair_energy - (row * node_pot[i]).sum(axis=1)
                  - (col * node_pot[j]).sum(axis=1))
    node_terms = (lay.degree - 1) * (node_neg_entropy + node_energy)
    free_energy = float(edge_terms.sum() - node_terms.sum())
    # MIME terms: I_ij = sum b_ij log[b_ij / (b_i b_j)] with the node beliefs b_i, b_j.
    outer = node[i][:, :, None] * node[j][:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(edge > 0, edge / np.where(outer > 0, outer, 1.0), 1.0)
    mi = float(xlogy(edge, ratio).sum())
    energy = float(node_energy.sum() + pair_energy.sum())
    entropy = float(-node_neg_entropy.sum())
    gap = 0.0
    if len(edges):
        gap = float(max(np.abs(row - node[i]).max(), np.abs(col - node[j]).max()))
    return BetheFreeEnergy(free_energy, energy, mi, entropy, gap)
