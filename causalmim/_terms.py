"""Penalty terms: what a model declares and the engine computes.

A model is a set of parts (the network's factors and heads, ``_architecture``) and of terms
(``_penalty_terms``). Each term is one dependence penalty ``weight * D(a, b)`` between an
input ``a`` of the network and a partner ``b``; the engine needs nothing else to train it, so a
new model variant declares its terms and never edits the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: What the partner ``b`` of a term is.
#:
#: * ``"factor"``: another representation of the network (``rep_units`` wide);
#: * ``"arms"``: the treatment labels (a batch with a single arm skips the term);
#: * ``"groups"``: labels of a per-row column given to ``fit`` (e.g. ``sensitive=``);
#: * ``"continuous"``: a real-valued per-row column given to ``fit``, one feature wide.
PARTNERS = ("factor", "arms", "groups", "continuous")


@dataclass(frozen=True)
class PenaltyTerm:
    """One dependence penalty of a model.

    Parameters
    ----------
    name : str
        Key of the term's critic (``net_.critic_[name]``) and of its per-epoch estimate in the
        history.
    a : str
        A factor of the network, or ``"outcome"``: the factors the outcome heads read,
        concatenated.
    b : str
        A factor, ``"t"`` (the arms) or the name of a per-row column of the data (``"s"`` for
        ``sensitive=``).
    weight : float
        Weight in the loss; a term of weight 0 is not computed.
    penalty : str, class or Penalty instance
        The dependence measure (a name of :data:`causalmim.penalties.PENALTIES`).
    route : str, optional
        The estimator parameter that names the penalty; its ``<route>_params`` dict holds the
        penalty's constructor parameters (``set_params(<route>__x=...)``).
    partner : {"factor", "arms", "groups", "continuous"}
        What ``b`` is (see :data:`PARTNERS`).
    weights : str, optional
        A per-row data column of importance weights passed to the penalty (for importance-
        weighted measures such as ``"iwclub"``).
    """

    name: str
    a: str
    b: str
    weight: float
    penalty: Any
    route: str | None = None
    partner: str = "factor"
    weights: str | None = None

    def __post_init__(self):
        if self.partner not in PARTNERS:
            raise ValueError(f"partner must be one of {PARTNERS}; got {self.partner!r}.")
        if self.partner == "arms" and self.b != "t":
            raise ValueError(f"a term on the arms reads b='t'; got b={self.b!r}.")

    @property
    def labels(self):
        """The label column the term needs two groups of in a batch (``"t"`` for the arms,
        ``b`` for group labels), or None: a batch whose column holds a single group carries
        no signal for the term, and the term skips it."""
        return self.b if self.partner in ("arms", "groups") else None


@dataclass(frozen=True)
class TermGroup:
    """Terms that share one critic, batched along the member axis (internal).

    Terms between factors that use the same penalty, parameters and weight (CausalMIM's three
    MI pairs) are computed as one penalty with ``G * M`` members: their inputs are stacked
    along the member axis, so the critic runs one batched product per layer for all G pairs
    instead of G. A term that cannot be batched is a group of one. ``name`` is the critic's key
    (``net_.critic_[name]``): the term's name, or the group's names joined by ``"__"``.
    """

    terms: tuple

    @property
    def name(self):
        return "__".join(term.name for term in self.terms)

    @property
    def weight(self):
        return self.terms[0].weight

    @property
    def weights(self):
        return self.terms[0].weights

    @property
    def labels(self):
        """The label columns the group's terms need two groups of (see ``PenaltyTerm``)."""
        return frozenset(term.labels for term in self.terms if term.labels is not None)


def _fusion_key(term):
    """Terms with equal keys may share one batched critic; None: never fused."""
    if term.partner != "factor" or term.weights is not None or term.a == "outcome":
        return None
    if not isinstance(term.penalty, (str, type)):
        return None  # an instance is copied per member: keep it alone
    return (term.penalty, term.route, term.weight)


def fusable_groups(terms):
    """Split ``terms`` into candidate groups (in order of first appearance): terms with the
    same :func:`_fusion_key` together, every other term alone."""
    groups, index = [], {}
    for term in terms:
        key = _fusion_key(term)
        if key is None or key not in index:
            if key is not None:
                index[key] = len(groups)
            groups.append([term])
        else:
            groups[index[key]].append(term)
    return [tuple(g) for g in groups]
