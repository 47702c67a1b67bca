r"""Belief propagation that always converges, read as mutual-information minimization (MIME).

A pairwise Markov random field over discrete :math:`x = (x_1, \dots, x_n)` is

.. math::

    p(x) = \frac{1}{Z} \exp\Big(\sum_i \theta_i(x_i) + \sum_{(ij)\in E}\theta_{ij}(x_i, x_j)\Big).

**Bethe free energy.** Loopy belief propagation (BP) works with beliefs :math:`b_i(x_i)` and
:math:`b_{ij}(x_i, x_j)` on the local polytope: :math:`\sum_{x_i} b_i = 1` and
:math:`\sum_{x_j} b_{ij}(x_i, x_j) = b_i(x_i)`. Its fixed points are the stationary points
of the Bethe free energy (Yedidia, Freeman and Weiss 2001), with :math:`d_i` the degree of
node ``i``:

.. math::

    F(b) = \sum_{(ij)} \sum_{x_i, x_j} b_{ij}\log\frac{b_{ij}}{e^{\theta_{ij}+\theta_i+\theta_j}}
         - \sum_i (d_i - 1) \sum_{x_i} b_i \log\frac{b_i}{e^{\theta_i}}.

**The MIME form** (Rangarajan and Yuille 2001). Write the energy part out: by the
marginalization constraints, :math:`\sum b_{ij}(\theta_i + \theta_j)` adds up to
:math:`d_i` copies of :math:`\langle\theta_i\rangle_{b_i}`, and the second sum removes
:math:`d_i - 1` of them, so the potentials contribute the expected energy
:math:`U(b) = -\sum_i\langle\theta_i\rangle_{b_i} - \sum_{(ij)}\langle\theta_{ij}\rangle_{b_{ij}}`.
For the entropy part, :math:`\sum b_{ij}\log b_{ij} = I_{ij} - H_i - H_j` with the mutual
information :math:`I_{ij} = \sum b_{ij}\log[b_{ij}/(b_i b_j)]` and the marginal entropy
:math:`H_i = -\sum b_i\log b_i`; each node appears in :math:`d_i` edges, so

.. math::

    F(b) = U(b) + \sum_{(ij)} I_{ij}(b) - \sum_i d_i H_i(b) + \sum_i (d_i - 1) H_i(b)
         = U(b) + \sum_{(ij)} I_{ij}(b) - \sum_i H_i(b).

Minimizing :math:`F` minimizes the mutual information along the edges, maximizes the
marginal entropies and lowers the energy. On a tree the minimum is attained at the exact
marginals and equals :math:`-\log Z`.

**Double loop.** :math:`F` is not convex on loopy graphs, which is why BP can oscillate. Split
:math:`F = F_{vex} + F_{cave}` with, for any :math:`c_i \ge 0` and
:math:`a_i = d_i - 1 + c_i \ge 0`,

.. math::

    F_{vex} = \sum_{(ij)} \sum b_{ij}\log b_{ij} + \sum_i c_i\sum b_i\log b_i + U(b),
    \qquad F_{cave} = -\sum_i a_i \sum b_i \log b_i.

The concave-convex procedure (Yuille 2002) minimizes
:math:`F_{vex}(b) + \langle\nabla F_{cave}(b^k), b\rangle` on the local polytope at each
outer step; since a concave function lies below its tangents,
:math:`F(b^{k+1}) \le F(b^k)`. The inner problem is convex and its dual is solved exactly by
block coordinate ascent, one node's multipliers at a time (see :class:`MIMEInference`, where
the update equations are written out). ``c_i = 1`` is Yuille's CCCP split, ``c_i = 0`` the
smallest convex part; every member decreases :math:`F` and converges to a stationary point,
that is to a fixed point of loopy BP, also where BP itself does not converge.

Contents
--------
:class:`PairwiseMRF`
    The model: state counts, edges, unary and pairwise log-potentials, validated.
:func:`bethe_free_energy`
    ``F`` and its MIME terms (energy, sum of mutual informations, sum of entropies).
:class:`LoopyBP`
    Sum-product BP, log domain, all edges in one array, optional damping.
:class:`MIMEInference`
    The convergent double-loop algorithm, ``decomposition="cccp"``, ``"tight"`` or ``c``.
:class:`ExactInference`
    Enumeration of all joint states, for small models.

Examples
--------
>>> from causalmim.graphical import LoopyBP, MIMEInference, make_ising_grid
>>> mrf = make_ising_grid(3, beta=0.5, random_state=0)
>>> bp, mime = LoopyBP().fit(mrf), MIMEInference().fit(mrf)
>>> bool(abs(bp.marginals_ - mime.marginals_).max() < 1e-6)
True
"""

from ._bp import LoopyBP
from ._energy import BetheFreeEnergy, bethe_free_energy
from ._exact import ExactInference
from ._mime import DECOMPOSITIONS, MIMEInference
from ._mrf import PairwiseMRF, grid_edges, make_ising_grid

__all__ = [
    "BetheFreeEnergy",
    "DECOMPOSITIONS",
    "ExactInference",
    "LoopyBP",
    "MIMEInference",
    "PairwiseMRF",
    "bethe_free_energy",
    "grid_edges",
    "make_ising_grid",
]
