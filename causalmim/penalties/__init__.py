"""Dependence penalties: mutual-information bounds, kernel measures and IPMs.

Every penalty is a :class:`torch.nn.Module` with one interface for a dependence measure
``D(a, b)`` between a batch of representations ``a`` of shape ``(n, dim_a)`` and either a second
float batch ``b`` of shape ``(n, dim_b)`` or a vector of group labels ``b`` of shape ``(n,)``
(treatment arms: an integer or bool tensor, or a float tensor holding the integers ``0..K-1``):

- ``forward(a, b)`` returns a differentiable scalar estimate (in nats for the MI estimators);
  gradients reach ``a``, a float ``b`` and the critic's parameters;
- ``learning_loss(a, b)`` returns the loss that the penalty's own critic minimizes, or ``None``
  for the closed-form measures (HSIC, distance correlation, MMD, Wasserstein).

In model training the caller alternates: one step of the critic's optimizer on
``learning_loss(a.detach(), b.detach())``, then the model minimizes ``forward(a, b)``.
:func:`fit_critic` fits a critic against fixed samples.

Penalties are registered by name in :data:`PENALTIES`; :func:`get_penalty` builds one from a name,
a class or an instance.

===============  ============================  =====  =========================================
name             class                         bound  critic
===============  ============================  =====  =========================================
``club``         :class:`CLUB`                 upper  q(b|a): diagonal Gaussian, or categorical
``vclub_s``      :class:`VCLUBSample`          upper  as CLUB; one sampled negative per row
``l1out``        :class:`L1Out`                upper  as CLUB
``iwclub``       :class:`IWCLUB`               upper  as CLUB; per-sample weights
``mine``         :class:`MINE`                 lower  separable T(a, b) = f(a).g(b) + u(a) + v(b)
``nwj``          :class:`NWJ`                  lower  as MINE
``infonce``      :class:`InfoNCE`              lower  as MINE
``hsic``         :class:`HSIC`                 none   closed form (RBF kernels)
``dcor``         :class:`DistanceCorrelation`  none   closed form (squared, bias-corrected)
``mmd``          :class:`MMD`                  none   closed form, between label groups
``mmd_linear``   :class:`LinearMMD`            none   ``MMD(kernel="linear")``
``mmd_rbf``      :class:`RBFMMD`               none   ``MMD(kernel="rbf")``
``wasserstein``  :class:`Wasserstein`          none   Sinkhorn divergence, between label groups
===============  ============================  =====  =========================================

Group measures (MMD, Wasserstein) need a label vector ``b``; with K groups they average the
measure over all pairs of groups present in the batch. HSIC and distance correlation one-hot
encode labels; the CLUB family fits a categorical q(b|a) for labels; the MI lower bounds one-hot
encode them.

References
----------
Cheng, Hao, Dai, Liu, Gan, Carin. CLUB: A Contrastive Log-ratio Upper Bound of Mutual
Information. ICML 2020 (CLUB, vCLUB-S, L1Out; the reference code ``mi_estimators.py``).
Wang, Cheng, Henao. Toward Fairness in Text Generation via Mutual Information Minimization
based on Importance Sampling. AISTATS 2023 (importance-weighted CLUB).
Belghazi et al. MINE: Mutual Information Neural Estimation. ICML 2018.
Nguyen, Wainwright, Jordan. Estimating divergence functionals and the likelihood ratio by convex
risk minimization. IEEE Trans. Inf. Theory 2010 (NWJ).
van den Oord, Li, Vinyals. Representation Learning with Contrastive Predictive Coding. 2018
(InfoNCE).
Gretton et al. Measuring Statistical Dependence with Hilbert-Schmidt Norms. ALT 2005 (HSIC).
Szekely, Rizzo, Bakirov. Measuring and testing dependence by correlation of distances. Ann.
Statist. 2007 (distance correlation).
Gretton et al. A Kernel Two-Sample Test. JMLR 2012 (MMD).
Feydy et al. Interpolating between Optimal Transport and MMD using Sinkhorn Divergences.
AISTATS 2019 (debiased Sinkhorn divergence).
"""

from __future__ import annotations

# The private names re-exported (``as`` themselves) are those that other modules, tests and
# pickles made by older versions (penalties.py was one module) look up here.
from ._base import Penalty
from ._base import _validate as _validate
from ._bounds import MINE, NWJ, InfoNCE
from ._club import CLUB, IWCLUB, L1Out, VCLUBSample
from ._critics import _GaussianQ as _GaussianQ
from ._critics import _LinearPlusMLP as _LinearPlusMLP
from ._critics import _SeparableCritic as _SeparableCritic
from ._fit import fit_critic, held_out_estimate
from ._independence import HSIC, DistanceCorrelation
from ._ipm import MMD, RBFMMD, LinearMMD, Wasserstein
from ._ipm import _entropic_ot as _entropic_ot
from ._kernels import _sq_dists as _sq_dists

__all__ = [
    "CLUB",
    "HSIC",
    "IWCLUB",
    "L1Out",
    "MINE",
    "MMD",
    "NWJ",
    "PENALTIES",
    "DistanceCorrelation",
    "InfoNCE",
    "LinearMMD",
    "Penalty",
    "RBFMMD",
    "VCLUBSample",
    "Wasserstein",
    "fit_critic",
    "held_out_estimate",
    "get_penalty",
]

#: Registry of the penalties by name.
PENALTIES = {
    "club": CLUB,
    "vclub_s": VCLUBSample,
    "l1out": L1Out,
    "iwclub": IWCLUB,
    "mine": MINE,
    "nwj": NWJ,
    "infonce": InfoNCE,
    "hsic": HSIC,
    "dcor": DistanceCorrelation,
    "mmd": MMD,
    "mmd_linear": LinearMMD,
    "mmd_rbf": RBFMMD,
    "wasserstein": Wasserstein,
}


def get_penalty(name_or_instance, **params):
    """Build a penalty from a registry name, a class or an instance.

    Parameters
    ----------
    name_or_instance : str, Penalty subclass or Penalty
        A name in :data:`PENALTIES` (case-insensitive), a :class:`Penalty` subclass, or an
        instance, which is returned as is.
    **params
        Constructor arguments (e.g. ``dim_a``, ``dim_b``, ``hidden``). Not allowed with an
        instance.

    Returns
    -------
    Penalty

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones), or for params given with an
        instance.
    TypeError
        For anything that is not a name, a Penalty subclass or an instance.

    Examples
    --------
    >>> import torch
    >>> from causalmim.penalties import get_penalty
    >>> mmd = get_penalty("mmd", kernel="linear")
    >>> a = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    >>> t = torch.tensor([0, 0, 1, 1])
    >>> round(mmd(a, t).item(), 4)
    4.0
    >>> club = get_penalty("club", dim_a=3, dim_b=2, hidden=16)
    >>> club.bound, club.has_critic, sum(p.numel() for p in club.parameters()) > 0
    ('upper', True, True)
    >>> get_penalty(club) is club
    True
    >>> get_penalty("nope")
    Traceback (most recent call last):
    ...
    ValueError: unknown penalty 'nope'; valid names are: club, dcor, hsic, infonce, iwclub, \
l1out, mine, mmd, mmd_linear, mmd_rbf, nwj, vclub_s, wasserstein.
    """
    if isinstance(name_or_instance, Penalty):
        if params:
            raise ValueError(
                f"got a {type(name_or_instance).__name__} instance together with parameters "
                f"{sorted(params)}; set them on the instance, or pass a name or a class."
            )
        return name_or_instance
    if isinstance(name_or_instance, type) and issubclass(name_or_instance, Penalty):
        return name_or_instance(**params)
    if isinstance(name_or_instance, str):
        key = name_or_instance.lower()
        if key not in PENALTIES:
            raise ValueError(
                f"unknown penalty {name_or_instance!r}; valid names are: "
                f"{', '.join(sorted(PENALTIES))}."
            )
        return PENALTIES[key](**params)
    raise TypeError(
        "a penalty must be a name in PENALTIES, a Penalty subclass or a Penalty instance; got "
        f"{type(name_or_instance).__name__}."
    )
