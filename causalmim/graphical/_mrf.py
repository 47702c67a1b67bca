"""Pairwise discrete Markov random fields: the model container, its validation and layout.

A :class:`PairwiseMRF` holds log-potentials; the inference classes read them through a private
:class:`_Layout`, which pads every node to the largest state count (padded states get the
log-potential ``-inf``) so that all messages of a model are one array.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import sparse

__all__ = ["PairwiseMRF", "grid_edges", "make_ising_grid"]


class PairwiseMRF:
    r"""A pairwise Markov random field over discrete variables.

    .. math::

        p(x) = \frac{1}{Z} \exp\Big(\sum_i \theta_i(x_i)
               + \sum_{(ij) \in E} \theta_{ij}(x_i, x_j)\Big)

    Parameters
    ----------
    n_states : sequence of int
        Number of states of each node (at least 1); its length is the number of nodes.
    edges : array-like of shape (n_edges, 2)
        Undirected edges ``(i, j)`` between node indices. No self-loops and no duplicates
        (``(i, j)`` and ``(j, i)`` are the same edge).
    unary : list of arrays, array of shape (n_nodes, k) or None
        Log-potentials ``theta_i``: one array of shape ``(n_states[i],)`` per node. None: zeros.
    pairwise : list of arrays, array of shape (n_edges, k, k) or None
        Log-potentials ``theta_ij``: one array of shape ``(n_states[i], n_states[j])`` per
        edge ``(i, j)``, indexed ``[x_i, x_j]`` in the order the edge is given. None: zeros.

    Attributes
    ----------
    n_nodes, n_edges : int
    n_states : ndarray of int, shape (n_nodes,)
    edges : ndarray of int, shape (n_edges, 2)
    unary : list of ndarray
    pairwise : list of ndarray
    degrees : ndarray of int, shape (n_nodes,)

    Raises
    ------
    ValueError
        On a state count below 1, an edge to a node that does not exist, a self-loop, a
        duplicate edge, a potential whose shape does not match the state counts, or a
        non-finite potential; the message names the node or edge.

    Examples
    --------
    A chain of three binary nodes that prefer to agree:

    >>> import numpy as np
    >>> from causalmim.graphical import PairwiseMRF
    >>> agree = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> mrf = PairwiseMRF([2, 2, 2], [(0, 1), (1, 2)], unary=[[0.0, 0.5], [0, 0], [0, 0]],
    ...                   pairwise=[agree, agree])
    >>> mrf.n_nodes, mrf.n_edges, mrf.degrees.tolist()
    (3, 2, [1, 2, 1])
    """

    def __init__(self, n_states, edges, unary=None, pairwise=None):
        self.n_states = _check_n_states(n_states)
        self.edges = _check_edges(edges, len(self.n_states))
        self.unary = _check_unary(unary, self.n_states)
        self.pairwise = _check_pairwise(pairwise, self.n_states, self.edges)
        self._layout_cache = None

    @property
    def n_nodes(self):
        return int(len(self.n_states))

    @property
    def n_edges(self):
        return int(len(self.edges))

    @property
    def degrees(self):
        return np.bincount(self.edges.ravel(), minlength=self.n_nodes).astype(np.int64)

    def __repr__(self):
        return (f"PairwiseMRF(n_nodes={self.n_nodes}, n_edges={self.n_edges}, "
                f"max_states={int(self.n_states.max(initial=0))})")

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_networkx(cls, graph, n_states=2, unary="unary", pairwise="pairwise"):
        """Build a model from an undirected ``networkx.Graph``.

        Nodes are numbered ``0 .. n-1`` in the order of ``graph.nodes``; node ``k`` of the
        model is ``list(graph.nodes)[k]``.

        Parameters
        ----------
        graph : networkx.Graph
            Undirected, no self-loops, not a multigraph.
        n_states : int or str
            An int: every node has that many states. A str: the node attribute holding each
            node's state count.
        unary : str
            Node attribute with the unary log-potential (missing: zeros).
        pairwise : str
            Edge attribute with the pairwise log-potential, indexed ``[x_u, x_v]`` where ``u``
            comes before ``v`` in ``graph.nodes`` (whatever order the edge was added in:
            an undirected graph does not keep it). Missing: zeros.

        Returns
        -------
        PairwiseMRF
        """
        if graph.is_directed() or graph.is_multigraph():
            raise ValueError("from_networkx needs an undirected simple graph (nx.Graph); got "
                             f"{type(graph).__name__}.")
        nodes = list(graph.nodes)
        index = {node: k for k, node in enumerate(nodes)}
        if isinstance(n_states, str):
            missing = [node for node in nodes if n_states not in graph.nodes[node]]
            if missing:
                raise ValueError(f"node {missing[0]!r} has no {n_states!r} attribute (its "
                                 "number of states).")
            states = [graph.nodes[node][n_states] for node in nodes]
        else:
            states = [n_states] * len(nodes)
        states = _check_n_states(states)
        node_pot = [graph.nodes[node].get(unary, np.zeros(k))
                    for node, k in zip(nodes, states, strict=True)]
        edges, edge_pot = [], []
        for u, v, data in graph.edges(data=True):
            iu, iv = sorted((index[u], index[v]))  # the potential is [x_first, x_second]
            pot = data.get(pairwise, np.zeros((states[iu], states[iv])))
            edges.append((iu, iv))
            edge_pot.append(pot)
        return cls(states, np.asarray(edges, dtype=np.int64).reshape(-1, 2), node_pot, edge_pot)

    @classmethod
    def from_ising(cls, n_nodes, edges, couplings, fields=None):
        r"""Ising model ``p(s) ∝ exp(sum_(ij) J_ij s_i s_j + sum_i h_i s_i)``, ``s_i = ±1``.

        State 0 is spin -1 and state 1 is spin +1.

        Parameters
        ----------
        n_nodes : int
        edges : array-like of shape (n_edges, 2)
        couplings : array-like of shape (n_edges,)
            ``J_ij``; negative values are antiferromagnetic.
        fields : array-like of shape (n_nodes,) or None
            ``h_i``; None: zeros.
        """
        edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        J = np.asarray(couplings, dtype=np.float64).reshape(-1)
        h = np.zeros(n_nodes) if fields is None else np.asarray(fields, np.float64).reshape(-1)
        if len(J) != len(edges):
            raise ValueError(f"couplings has {len(J)} values for {len(edges)} edges.")
        if len(h) != n_nodes:
            raise ValueError(f"fields has {len(h)} values for {n_nodes} nodes.")
        spins = np.array([-1.0, 1.0])
        unary = h[:, None] * spins[None, :]
        pairwise = J[:, None, None] * np.outer(spins, spins)[None]
        return cls(np.full(n_nodes, 2), edges, unary, pairwise)

    # ------------------------------------------------------------------ internals

    def _layout(self):
        if self._layout_cache is None:
            self._layout_cache = _Layout(self)
        return self._layout_cache


def grid_edges(n_rows, n_cols=None):
    """Edges of an ``n_rows x n_cols`` 4-neighbour grid, nodes numbered row by row.

    Returns
    -------
    edges : ndarray of int, shape (n_rows * (n_cols - 1) + (n_rows - 1) * n_cols, 2)
    """
    n_cols = n_rows if n_cols is None else n_cols
    idx = np.arange(n_rows * n_cols).reshape(n_rows, n_cols)
    horizontal = np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], axis=1)
    vertical = np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()], axis=1)
    return np.concatenate([horizontal, vertical]).astype(np.int64)


def make_ising_grid(size, beta, *, couplings="gaussian", field=0.1, random_state=None):
    """A spin glass on a ``size x size`` grid (Edwards-Anderson model), as a PairwiseMRF.

    Parameters
    ----------
    size : int
        Side of the grid.
    beta : float
        Coupling strength: ``J_ij ~ N(0, beta^2)`` (``couplings="gaussian"``) or
        ``J_ij = ±beta`` with equal probability (``couplings="pm"``).
    couplings : {"gaussian", "pm"}
    field : float
        Fields ``h_i ~ N(0, field^2)``.
    random_state : int, Generator or None

    Returns
    -------
    PairwiseMRF
    """
    rng = np.random.default_rng(random_state)
    edges = grid_edges(size)
    if couplings == "gaussian":
        J = beta * rng.standard_normal(len(edges))
    elif couplings == "pm":
        J = beta * rng.choice([-1.0, 1.0], size=len(edges))
    else:
        raise ValueError(f"couplings must be 'gaussian' or 'pm'; got {couplings!r}.")
    h = field * rng.standard_normal(size * size)
    return PairwiseMRF.from_ising(size * size, edges, J, h)


# ---------------------------------------------------------------------------- validation


def _check_n_states(n_states):
    if isinstance(n_states, numbers.Integral) or np.ndim(n_states) != 1:
        raise ValueError("n_states must be a sequence with one state count per node; got "
                         f"{n_states!r}.")
    arr = np.asarray(n_states)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or np.any(arr != np.round(arr)):
            raise ValueError(f"n_states must hold integers; got {arr.tolist()!r}.")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero(arr < 1)
    if bad.size:
        raise ValueError(f"n_states must be >= 1 for every node; node {bad[0]} has "
                         f"{arr[bad[0]]}.")
    return arr


def _check_edges(edges, n_nodes):
    arr = np.asarray(edges)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"edges must have shape (n_edges, 2); got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or np.any(arr != np.round(arr)):
            raise ValueError("edges must hold integer node indices.")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero(((arr < 0) | (arr >= n_nodes)).any(axis=1))
    if bad.size:
        e = bad[0]
        raise ValueError(f"edge {e} {tuple(arr[e].tolist())} refers to a missing node; the "
                         f"model has nodes 0..{n_nodes - 1}.")
    loops = np.flatnonzero(arr[:, 0] == arr[:, 1])
    if loops.size:
        e = loops[0]
        raise ValueError(f"edge {e} {tuple(arr[e].tolist())} is a self-loop.")
    key = np.sort(arr, axis=1)
    _, first, counts = np.unique(key, axis=0, return_index=True, return_counts=True)
    if np.any(counts > 1):
        dup = key[first[counts > 1][0]]
        where = np.flatnonzero((key == dup).all(axis=1))
        raise ValueError(f"duplicate edge between nodes {dup[0]} and {dup[1]} (edges "
                         f"{where.tolist()}); (i, j) and (j, i) are the same edge.")
    return arr


def _as_float_array(value, what):
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numeric.") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} has non-finite values (NaN or inf); log-potentials must be "
                         "finite.")
    return arr


def _check_unary(unary, n_states):
    n = len(n_states)
    if unary is None:
        return [np.zeros(k) for k in n_states]
    if isinstance(unary, np.ndarray) and unary.ndim == 2:
        unary = list(unary)
    if len(unary) != n:
        raise ValueError(f"unary has {len(unary)} potentials for {n} nodes.")
    out = []
    for i, (pot, k) in enumerate(zip(unary, n_states, strict=True)):
        arr = _as_float_array(pot, f"unary potential of node {i}")
        if arr.shape != (k,):
            raise ValueError(f"unary potential of node {i} has shape {arr.shape}; node {i} "
                             f"has {k} states, so it must be ({k},).")
        out.append(arr)
    return out


def _check_pairwise(pairwise, n_states, edges):
    if pairwise is None:
        return [np.zeros((n_states[i], n_states[j])) for i, j in edges]
    if isinstance(pairwise, np.ndarray) and pairwise.ndim == 3:
        pairwise = list(pairwise)
    if len(pairwise) != len(edges):
        raise ValueError(f"pairwise has {len(pairwise)} potentials for {len(edges)} edges.")
    out = []
    for e, (pot, (i, j)) in enumerate(zip(pairwise, edges, strict=True)):
        arr = _as_float_array(pot, f"pairwise potential of edge {e} ({i}, {j})")
        want = (int(n_states[i]), int(n_states[j]))
        if arr.shape != want:
            raise ValueError(f"pairwise potential of edge {e} ({i}, {j}) has shape "
                             f"{arr.shape}; nodes {i} and {j} have {want[0]} and {want[1]} "
                             f"states, so it must be {want}.")
        out.append(arr)
    return out


def check_mrf(mrf):
    if not isinstance(mrf, PairwiseMRF):
        raise TypeError(f"expected a PairwiseMRF; got {type(mrf).__name__}.")
    return mrf


# ---------------------------------------------------------------------------- padded layout


class _Layout:
    """Padded arrays of a model, shared by the inference routines.

    Each undirected edge ``e = (i, j)`` has two halves: ``2e`` is owned by ``i`` (its table is
    ``theta_ij`` indexed ``[x_i, x_j]``), ``2e + 1`` is owned by ``j`` (``theta_ij`` transposed).
    The partner of half ``h`` is ``h ^ 1``. States beyond a node's count are padding: their
    log-potentials are ``-inf``.
    """

    def __init__(self, mrf):
        N, E = mrf.n_nodes, mrf.n_edges
        K = int(mrf.n_states.max(initial=1))
        self.N, self.E, self.H, self.K = N, E, 2 * E, K
        self.n_states = mrf.n_states
        self.node_mask = np.arange(K)[None, :] < mrf.n_states[:, None]  # (N, K)
        self.padded = not bool(self.node_mask.all())
        self.node_pot = np.full((N, K), -np.inf)
        for i, pot in enumerate(mrf.unary):
            self.node_pot[i, :len(pot)] = pot
        edge_pot = np.full((E, K, K), -np.inf)
        for e, pot in enumerate(mrf.pairwise):
            edge_pot[e, :pot.shape[0], :pot.shape[1]] = pot
        self.edge_pot = edge_pot  # (E, K, K), [x_i, x_j]
        half = np.empty((2 * E, K, K))
        half[0::2] = edge_pot
        half[1::2] = edge_pot.transpose(0, 2, 1)
        self.half_pot = half  # (H, K, K), [x_owner, x_other]
        self.owner = mrf.edges.reshape(-1).copy()  # (H,): owner of half 2e is i, of 2e+1 is j
        self.other = mrf.edges[:, ::-1].reshape(-1).copy()
        self.half_mask = self.node_mask[self.owner]  # (H, K)
        self.degree = mrf.degrees
        self.incidence = _incidence(self.owner, N)  # (N, H) sparse: sums halves per owner
        self.colors = _greedy_coloring(N, mrf.edges)

    def sum_halves(self, values, halves=None, nodes=None):
        """Sum ``values`` (H, K) of halves over their owners -> (N, K), padded entries ignored."""
        if self.padded:
            values = np.where(self.half_mask if halves is None else self.half_mask[halves],
                              values, 0.0)
        return self.incidence @ values


def _incidence(owner, n_nodes):
    H = len(owner)
    return sparse.csr_matrix((np.ones(H), (owner, np.arange(H))), shape=(n_nodes, H))


def _greedy_coloring(n_nodes, edges):
    """Colour classes (arrays of nodes) with no edge inside a class: greedy in node order.

    A grid numbered row by row gets the two colours of a checkerboard.
    """
    neighbours = [[] for _ in range(n_nodes)]
    for i, j in edges.tolist():
        neighbours[i].append(j)
        neighbours[j].append(i)
    color = np.full(n_nodes, -1, dtype=np.int64)
    for node in range(n_nodes):
        taken = {color[nb] for nb in neighbours[node]}
        c = 0
        while c in taken:
            c += 1
        color[node] = c
    return [np.flatnonzero(color == c) for c in range(int(color.max(initial=-1)) + 1)]
