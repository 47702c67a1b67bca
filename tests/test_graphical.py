"""causalmim.graphical: Bethe free energy, loopy BP, the MIME double loop and exact inference."""

import itertools
import warnings

import networkx as nx
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from causalmim.graphical import (
    ExactInference,
    LoopyBP,
    MIMEInference,
    PairwiseMRF,
    bethe_free_energy,
    grid_edges,
    make_ising_grid,
)

DECOMPOSITIONS = ["cccp", "tight", 0.5]


def random_mrf(seed, n_states, edges, coupling=1.0, field=0.5):
    rng = np.random.default_rng(seed)
    n_states = np.asarray(n_states)
    unary = [field * rng.standard_normal(k) for k in n_states]
    pairwise = [coupling * rng.standard_normal((n_states[i], n_states[j])) for i, j in edges]
    return PairwiseMRF(n_states, edges, unary, pairwise)


# ----------------------------------------------------------------------------- trees

TREE_EDGES = [(0, 1), (0, 2), (1, 3), (1, 4), (2, 5), (5, 6), (5, 7)]
TREES = {
    "chain-binary": lambda: random_mrf(0, [2] * 8, [(i, i + 1) for i in range(7)], 1.5),
    "chain-mixed-states": lambda: random_mrf(1, [2, 3, 4, 2, 3, 1, 2],
                                             [(i, i + 1) for i in range(6)], 1.5),
    "tree-binary-strong": lambda: random_mrf(2, [2] * 8, TREE_EDGES, 3.0),
    "tree-3-states": lambda: random_mrf(3, [3] * 8, TREE_EDGES, 1.0),
    "forest-with-isolated-node": lambda: random_mrf(4, [2, 3, 2, 2, 2],
                                                    [(3, 0), (0, 1), (2, 4)], 1.0),
}


@pytest.fixture(scope="module", params=list(TREES), ids=list(TREES))
def tree(request):
    mrf = TREES[request.param]()
    return mrf, ExactInference().fit(mrf)


def test_loopy_bp_is_exact_on_trees(tree):
    mrf, exact = tree
    bp = LoopyBP().fit(mrf)
    assert bp.converged_
    np.testing.assert_allclose(bp.marginals_, exact.marginals_, atol=1e-6, rtol=0)
    np.testing.assert_allclose(bp.pairwise_beliefs_, exact.pairwise_beliefs_, atol=1e-6, rtol=0)
    # On a tree the Bethe free energy at the BP fixed point is -log Z.
    assert bp.free_energy_ == pytest.approx(-exact.log_partition_, abs=1e-8)


@pytest.mark.parametrize("decomposition", DECOMPOSITIONS, ids=str)
def test_mime_is_exact_on_trees(tree, decomposition):
    mrf, exact = tree
    mime = MIMEInference(decomposition=decomposition).fit(mrf)
    assert mime.converged_
    np.testing.assert_allclose(mime.marginals_, exact.marginals_, atol=1e-6, rtol=0)
    np.testing.assert_allclose(mime.pairwise_beliefs_, exact.pairwise_beliefs_, atol=1e-6,
                               rtol=0)
    assert mime.free_energy_ == pytest.approx(-exact.log_partition_, abs=1e-7)


def test_padded_states_stay_zero(tree):
    mrf, exact = tree
    padded = ~mrf._layout().node_mask
    for est in (LoopyBP().fit(mrf), MIMEInference().fit(mrf), exact):
        assert np.all(est.marginals_[padded] == 0)
        np.testing.assert_allclose(est.marginals_.sum(axis=1), 1.0, atol=1e-12)


# ----------------------------------------------------------------------------- loopy graphs

LOOPY = {
    "grid-3x3": lambda: random_mrf(10, [2] * 9, grid_edges(3), 0.8),
    "grid-4x4": lambda: random_mrf(11, [2] * 16, grid_edges(4), 0.8),
    "complete-K5": lambda: random_mrf(12, [2] * 5, list(itertools.combinations(range(5), 2)),
                                      0.5),
    "grid-3x3-ternary": lambda: random_mrf(13, [3] * 9, grid_edges(3), 0.6),
}


@pytest.fixture(scope="module", params=list(LOOPY), ids=list(LOOPY))
def loopy(request):
    mrf = LOOPY[request.param]()
    return mrf, LoopyBP().fit(mrf)


@pytest.mark.parametrize("decomposition", DECOMPOSITIONS, ids=str)
def test_mime_reaches_the_bp_fixed_point(loopy, decomposition):
    mrf, bp = loopy
    assert bp.converged_
    mime = MIMEInference(decomposition=decomposition).fit(mrf)
    assert mime.converged_
    np.testing.assert_allclose(mime.marginals_, bp.marginals_, atol=1e-4, rtol=0)
    np.testing.assert_allclose(mime.pairwise_beliefs_, bp.pairwise_beliefs_, atol=1e-4, rtol=0)
    assert mime.free_energy_ <= bp.free_energy_ + 1e-9 * abs(bp.free_energy_)


def test_damped_bp_reaches_the_same_fixed_point(loopy):
    mrf, bp = loopy
    damped = LoopyBP(damping=0.5).fit(mrf)
    assert damped.converged_ and damped.n_iter_ > bp.n_iter_
    np.testing.assert_allclose(damped.marginals_, bp.marginals_, atol=1e-8, rtol=0)


def test_bethe_terms_add_up_on_consistent_beliefs(loopy):
    mrf, bp = loopy
    for beliefs in (bp, ExactInference().fit(mrf)):  # a BP fixed point; the true marginals
        terms = bethe_free_energy(mrf, beliefs)
        assert terms.max_inconsistency < 1e-9
        assert terms.free_energy == pytest.approx(
            terms.energy + terms.mutual_information - terms.entropy, abs=1e-9)
        assert terms.mutual_information >= 0 and terms.entropy > 0


def test_bethe_terms_of_two_nodes_by_hand():
    pair = np.array([[0.4, 0.1], [0.2, 0.3]])
    theta_i, theta_j, theta_ij = np.array([0.3, -0.1]), np.array([0.0, 0.7]), np.eye(2)
    mrf = PairwiseMRF([2, 2], [(0, 1)], [theta_i, theta_j], [theta_ij])
    bi, bj = pair.sum(axis=1), pair.sum(axis=0)
    terms = bethe_free_energy(mrf, ([bi, bj], [pair]))
    mi = float((pair * np.log(pair / np.outer(bi, bj))).sum())
    entropy = float(-(bi * np.log(bi)).sum() - (bj * np.log(bj)).sum())
    energy = float(-(bi * theta_i).sum() - (bj * theta_j).sum() - (pair * theta_ij).sum())
    assert terms.mutual_information == pytest.approx(mi, abs=1e-12)
    assert terms.entropy == pytest.approx(entropy, abs=1e-12)
    assert terms.energy == pytest.approx(energy, abs=1e-12)
    assert terms.free_energy == pytest.approx(energy + mi - entropy, abs=1e-12)
    # Edge beliefs that do not marginalize to the node beliefs are reported as such.
    off = bethe_free_energy(mrf, ([bi, [0.5, 0.5]], [pair]))
    assert off.max_inconsistency == pytest.approx(0.5 - bj[0] if bj[0] < 0.5 else bj[0] - 0.5)


# ----------------------------------------------------------------------------- monotone decrease


def monotone_case(seed):
    """Small random models: random graphs, 2-3 states, a third of them frustrated Ising."""
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(3, 6))
    graph = nx.gnp_random_graph(n, 0.6, seed=int(rng.integers(1 << 30)))
    edges = np.asarray(list(graph.edges), dtype=np.int64).reshape(-1, 2)
    if seed % 3 == 0:  # antiferromagnetic couplings of 1.5-2.5: frustrated on odd cycles
        J = -rng.uniform(1.5, 2.5, len(edges))
        return PairwiseMRF.from_ising(n, edges, J, 0.2 * rng.standard_normal(n))
    n_states = rng.integers(2, 4, n)
    return random_mrf(seed, n_states, edges, coupling=float(rng.uniform(0.5, 3.0)))


@pytest.mark.parametrize("seed", range(100))
def test_free_energy_never_increases(seed):
    mrf = monotone_case(seed)
    decomposition = DECOMPOSITIONS[seed % len(DECOMPOSITIONS)]
    mime = MIMEInference(decomposition=decomposition, outer_tol=1e-6).fit(mrf)
    history = mime.free_energy_history_
    assert mime.converged_ and len(history) == mime.n_iter_ >= 1
    assert np.all(np.diff(history) <= 1e-9 * np.maximum(1.0, np.abs(history[:-1])))


# ----------------------------------------------------------------------------- frustration

# Antiferromagnetic complete graph on five nodes, couplings -2: every triangle is frustrated.
K5_FIELDS = [0.1, -0.05, 0.2, 0.0, -0.15]


@pytest.fixture(scope="module")
def frustrated():
    mrf = PairwiseMRF.from_ising(5, list(itertools.combinations(range(5), 2)), [-2.0] * 10,
                                 K5_FIELDS)
    return mrf, ExactInference().fit(mrf)


def test_undamped_bp_fails_where_mime_converges(frustrated):
    mrf, exact = frustrated
    with pytest.warns(ConvergenceWarning, match="LoopyBP did not converge"):
        bp = LoopyBP(max_iter=500).fit(mrf)
    assert not bp.converged_ and bp.residuals_[-1] > 1.0  # oscillates, does not creep
    with pytest.warns(ConvergenceWarning):
        damped = LoopyBP(damping=0.5, max_iter=500).fit(mrf)
    assert not damped.converged_
    fits = [MIMEInference(decomposition=d).fit(mrf) for d in DECOMPOSITIONS]
    for mime in fits:
        assert mime.converged_
        history = mime.free_energy_history_
        assert np.all(np.diff(history) <= 1e-9 * np.abs(history[:-1]))
        # Every split reaches the same stationary point of F ...
        np.testing.assert_allclose(mime.marginals_, fits[0].marginals_, atol=1e-6)
        assert mime.free_energy_ == pytest.approx(fits[0].free_energy_, abs=1e-8)
        # ... and it is a fixed point of BP: one BP sweep from there stays put.
        start = LoopyBP(max_iter=1, tol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start.fit(mrf, init_messages=mime.messages_)
        assert start.residuals_[0] < 1e-6
        np.testing.assert_allclose(start.marginals_, mime.marginals_, atol=1e-6)
        # The Bethe approximation flattens this model's marginals towards 1/2: measured max
        # error 0.106 against the exact marginals (undamped BP's last iterate: 0.60).
        error = np.abs(mime.marginals_ - exact.marginals_).max()
        assert error < 0.12
        assert error < 0.25 * np.abs(bp.marginals_ - exact.marginals_).max()


def test_mime_on_a_frustrated_spin_glass_grid():
    mrf = make_ising_grid(3, 2.0, couplings="pm", random_state=1)
    with pytest.warns(ConvergenceWarning):
        bp = LoopyBP(max_iter=300).fit(mrf)
    assert not bp.converged_
    mime = MIMEInference(decomposition="tight").fit(mrf)
    assert mime.converged_
    error = np.abs(mime.marginals_ - ExactInference().fit(mrf).marginals_).max()
    assert error < 0.04  # measured 0.026


# ----------------------------------------------------------------------------- exact inference


def test_exact_matches_a_hand_enumeration():
    mrf = random_mrf(20, [2, 3, 2, 2], [(0, 1), (1, 2), (2, 0), (2, 3)], 1.0)
    weights, node = {}, np.zeros((4, 3))
    for x in itertools.product(*(range(k) for k in mrf.n_states)):
        logw = sum(mrf.unary[i][x[i]] for i in range(4))
        logw += sum(pot[x[i], x[j]]
                    for (i, j), pot in zip(mrf.edges, mrf.pairwise, strict=True))
        weights[x] = np.exp(logw)
    Z = sum(weights.values())
    for x, w in weights.items():
        for i in range(4):
            node[i, x[i]] += w / Z
    exact = ExactInference(block_size=5).fit(mrf)  # several blocks
    assert exact.log_partition_ == pytest.approx(np.log(Z), abs=1e-12)
    np.testing.assert_allclose(exact.marginals_, node, atol=1e-12)
    np.testing.assert_allclose(exact.pairwise_beliefs_.sum(axis=2)[:, :3],
                               exact.marginals_[mrf.edges[:, 0]], atol=1e-12)


def test_exact_refuses_large_models():
    mrf = PairwiseMRF([2] * 30, grid_edges(5, 6))
    with pytest.raises(ValueError, match="joint states"):
        ExactInference().fit(mrf)


# ----------------------------------------------------------------------------- construction


def test_from_networkx_matches_arrays():
    graph = nx.Graph()
    graph.add_nodes_from(["a", "b", "c"])
    asym = np.array([[0.0, 1.0, 0.5], [0.2, 0.0, -1.0]])  # (x_a, x_b): 2 x 3
    graph.add_edge("b", "a", pairwise=asym)  # indexed [x_a, x_b]: "a" comes first in nodes
    graph.add_edge("b", "c")
    graph.nodes["a"].update(k=2, unary=[0.3, 0.0])
    graph.nodes["b"].update(k=3)
    graph.nodes["c"].update(k=2)
    mrf = PairwiseMRF.from_networkx(graph, n_states="k")
    ref = PairwiseMRF([2, 3, 2], [(0, 1), (1, 2)], [[0.3, 0.0], [0, 0, 0], [0, 0]],
                      [asym, np.zeros((3, 2))])
    np.testing.assert_allclose(ExactInference().fit(mrf).marginals_,
                               ExactInference().fit(ref).marginals_, atol=1e-12)
    assert not np.allclose(ExactInference().fit(ref).marginals_[1, :3], 1 / 3)
    graph.edges["a", "b"]["pairwise"] = asym.T  # indexed [x_b, x_a]: the wrong way round
    with pytest.raises(ValueError, match=r"edge 0 \(0, 1\) has shape \(3, 2\)"):
        PairwiseMRF.from_networkx(graph, n_states="k")
    with pytest.raises(ValueError, match="undirected"):
        PairwiseMRF.from_networkx(nx.DiGraph([(0, 1)]))


def test_ising_convention():
    mrf = PairwiseMRF.from_ising(2, [(0, 1)], couplings=[1.0], fields=[0.5, 0.0])
    np.testing.assert_allclose(mrf.unary[0], [-0.5, 0.5])
    np.testing.assert_allclose(mrf.pairwise[0], [[1.0, -1.0], [-1.0, 1.0]])


BAD_MODELS = {
    "nan-unary": (dict(n_states=[2, 2], edges=[(0, 1)], unary=[[0.0, np.nan], [0, 0]]),
                  "unary potential of node 0 has non-finite"),
    "inf-pairwise": (dict(n_states=[2, 2], edges=[(0, 1)],
                          pairwise=[[[0.0, np.inf], [0, 0]]]),
                     "pairwise potential of edge 0 .* non-finite"),
    "unary-shape": (dict(n_states=[2, 3], edges=[(0, 1)], unary=[[0, 0], [0, 0]]),
                    r"node 1 has shape \(2,\); node 1 has 3 states"),
    "pairwise-shape": (dict(n_states=[2, 3], edges=[(0, 1)], pairwise=[np.zeros((2, 2))]),
                       r"edge 0 \(0, 1\) has shape \(2, 2\).*must be \(2, 3\)"),
    "missing-node": (dict(n_states=[2, 2], edges=[(0, 1), (1, 5)]),
                     r"edge 1 \(1, 5\) refers to a missing node"),
    "negative-node": (dict(n_states=[2, 2], edges=[(-1, 1)]), "missing node"),
    "self-loop": (dict(n_states=[2, 2], edges=[(0, 1), (1, 1)]), r"edge 1 \(1, 1\) is a self-loop"),
    "duplicate": (dict(n_states=[2, 2, 2], edges=[(0, 1), (1, 2), (1, 0)]),
                  r"duplicate edge between nodes 0 and 1 \(edges \[0, 2\]\)"),
    "zero-states": (dict(n_states=[2, 0], edges=[]), "node 1 has 0"),
    "scalar-states": (dict(n_states=2, edges=[]), "one state count per node"),
    "edges-shape": (dict(n_states=[2, 2], edges=[0, 1, 1]), r"shape \(n_edges, 2\)"),
    "too-few-unary": (dict(n_states=[2, 2], edges=[], unary=[[0, 0]]), "1 potentials for 2"),
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
def test_bad_models_raise(name):
    kwargs, match = BAD_MODELS[name]
    with pytest.raises(ValueError, match=match):
        PairwiseMRF(**kwargs)


@pytest.mark.parametrize("est, match", [
    (LoopyBP(damping=1.0), "damping"),
    (LoopyBP(max_iter=0), "max_iter"),
    (LoopyBP(tol=0.0), "tol"),
    (MIMEInference(decomposition="bethe"), "'cccp', 'tight'"),
    (MIMEInference(decomposition=-0.5), "decomposition"),
    (MIMEInference(inner_tol=-1.0), "inner_tol"),
    (MIMEInference(max_outer_iter=1.5), "max_outer_iter"),
    (ExactInference(max_configurations=0), "max_configurations"),
], ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_bad_parameters_raise(est, match):
    with pytest.raises(ValueError, match=match):
        est.fit(PairwiseMRF([2, 2], [(0, 1)]))


def test_not_a_model_raises():
    with pytest.raises(TypeError, match="PairwiseMRF"):
        LoopyBP().fit(np.zeros((2, 2)))


def test_bad_beliefs_and_messages_raise():
    mrf = PairwiseMRF([2, 2], [(0, 1)])
    with pytest.raises(ValueError, match="node belief 1 has shape"):
        bethe_free_energy(mrf, ([[0.5, 0.5], [1.0]], [np.full((2, 2), 0.25)]))
    with pytest.raises(ValueError, match="non-negative"):
        bethe_free_energy(mrf, ([[1.5, -0.5], [0.5, 0.5]], [np.full((2, 2), 0.25)]))
    with pytest.raises(ValueError, match="init_messages must have shape"):
        LoopyBP().fit(mrf, init_messages=np.zeros((3, 2)))


def test_mime_without_convergence_warns():
    mrf = make_ising_grid(3, 1.0, random_state=0)
    with pytest.warns(ConvergenceWarning, match="MIMEInference did not converge in 2"):
        mime = MIMEInference(max_outer_iter=2).fit(mrf)
    assert not mime.converged_ and mime.n_iter_ == 2


@pytest.mark.parametrize("decomposition", ["cccp", "tight"])
def test_binary_fast_path_matches_the_general_one(decomposition):
    """All-binary models run in log-odds; an extra isolated 3-state node forces the padded
    general path, which must give the same iterates on the binary nodes."""
    mrf = make_ising_grid(3, 1.5, couplings="pm", random_state=3)
    twin = PairwiseMRF([*mrf.n_states, 3], mrf.edges, [*mrf.unary, np.zeros(3)], mrf.pairwise)
    fast = MIMEInference(decomposition=decomposition).fit(mrf)
    slow = MIMEInference(decomposition=decomposition).fit(twin)
    assert fast.n_iter_ == slow.n_iter_
    np.testing.assert_array_equal(fast.n_inner_iter_, slow.n_inner_iter_)
    np.testing.assert_allclose(fast.marginals_, slow.marginals_[:-1, :2], atol=1e-12)
    np.testing.assert_allclose(fast.pairwise_beliefs_, slow.pairwise_beliefs_[:, :2, :2],
                               atol=1e-12)
    # The isolated uniform 3-state node adds its entropy: F drops by log 3.
    np.testing.assert_allclose(fast.free_energy_history_ - np.log(3), slow.free_energy_history_,
                               atol=1e-9)
