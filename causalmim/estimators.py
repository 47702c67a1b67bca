"""Neural treatment-effect estimators with the scikit-learn API: the presets.

Every estimator here trains the same network through the same engine (``causalmim._base``);
each preset declares only its parts: which factor representations exist, which heads read which
factors, which loss terms and dependence penalties carry weight, and its parameters with their
allowed values (``_parameter_constraints``). A new model is a new subclass of
``_BaseCausalEstimator`` that does the same; it registers itself for :func:`load`.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import _BaseCausalEstimator
from ._inspection import DisentangledMixin
from ._nn import ParallelNetwork
from ._params import non_negative, penalty_constraints, positive_int
from ._persistence import load
from ._terms import PenaltyTerm

__all__ = [
    "TARNetRegressor",
    "CFRNetRegressor",
    "DRCFRRegressor",
    "CausalMIMRegressor",
    "DragonNetRegressor",
    "ParallelMIMRegressor",
    "load",
]


# The MI penalty between representations and the shared trunk: CausalMIM and ParallelMIM.
_MI_CONSTRAINTS = {
    **penalty_constraints("mi_penalty"),
    "mi_weight": [non_negative()],
    "trunk_units": [positive_int()],
    "trunk_layers": [non_negative(Integral)],
}


def _assign(est, local_vars):
    """``__init__`` body shared by the estimators: store every argument unchanged."""
    for name, value in local_vars.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


class TARNetRegressor(_BaseCausalEstimator):
    """TARNet: a shared representation and one outcome head per arm (Shalit et al., 2017).

    Trained on the factual loss only.

    Parameters
    ----------{common}
{attrs}
    Examples
    --------
    >>> from causalmim import TARNetRegressor
    >>> from causalmim.datasets import make_disentangled
    >>> data = make_disentangled(n=300, random_state=0)
    >>> est = TARNetRegressor(max_epochs=5, random_state=0).fit(data.X, data.t, data.y)
    >>> est.predict(data.X).shape
    (300,)
    """

    def __init__(self, *, rep_units=200, rep_layers=2, head_units=100, head_layers=2,
                 activation="elu", dropout=0.0, learning_rate=3e-4, weight_decay=1e-4,
                 batch_size=128,
                 epoch_size=10_000, max_epochs=500, validation_fraction=0.2, patience=40,
                 ema_decay=0.0,
                 outcome="continuous", control=None, device="auto", random_state=None,
                 n_ensemble=1, bootstrap=False, verbose=0, callbacks=None,
                 fairness_penalty="iwclub", fairness_penalty_params=None, fairness_weight=0.0,
                 critic_lr=1e-3, critic_steps=1):
        _assign(self, locals())


class CFRNetRegressor(_BaseCausalEstimator):
    """CFRNet: TARNet plus a balance penalty between the arms' representations.

    Loss: factual loss + ``balance_weight * D(Phi, t)``, with ``D`` the integral probability
    metric (``"wasserstein"``, ``"mmd"``, ``"mmd_linear"``) or any dependence measure of
    :mod:`causalmim.penalties` between the representation and the treatment (e.g. ``"vclub_s"``,
    ``"hsic"``) (Shalit, Johansson and Sontag, ICML 2017).

    Parameters
    ----------
    balance_penalty : str, class or Penalty instance
        The dependence measure between the representation and the treatment.
    balance_penalty_params : dict, optional
        Constructor parameters of ``balance_penalty`` when it is a name or class (e.g.
        ``{{"epsilon": 0.1}}``); ``set_params(balance_penalty__epsilon=0.1)`` sets one.
    balance_weight : float
        Weight of the balance penalty (alpha).{common}
{attrs}
    """

    _parameter_constraints: dict = {
        **_BaseCausalEstimator._parameter_constraints,
        **penalty_constraints("balance_penalty"),
        "balance_weight": [non_negative()],
    }

    def __init__(self, *, balance_penalty="wasserstein", balance_penalty_params=None,
                 balance_weight=1.0, rep_units=200,
                 rep_layers=2, head_units=100, head_layers=2, activation="elu", dropout=0.0,
                 learning_rate=3e-4, weight_decay=1e-4, batch_size=128,
                 epoch_size=10_000, max_epochs=500,
                 validation_fraction=0.2, patience=40, ema_decay=0.0, outcome="continuous",
                 control=None,
                 device="auto", random_state=None, n_ensemble=1, bootstrap=False, verbose=0,
                 callbacks=None, fairness_penalty="iwclub", fairness_penalty_params=None,
                 fairness_weight=0.0, critic_lr=1e-3, critic_steps=1):
        _assign(self, locals())

    def _penalty_terms(self):
        return [PenaltyTerm("balance", "phi", "t", self.balance_weight, self.balance_penalty,
                            "balance_penalty", partner="arms")]


class DragonNetRegressor(_BaseCausalEstimator):
    """DragonNet: TARNet plus a propensity head on the shared representation, with optional
    targeted regularization (Shi, Blei and Veitch, NeurIPS 2019).

    Loss: factual loss + ``propensity_weight * CE(t, g(Phi))`` + (with
    ``targeted_regularization``) ``targeted_weight * mean((y - Q - eps * h)^2)``,
    ``h = t/g - (1-t)/(1-g)``. Targeted regularization needs two arms and a continuous outcome.

    Parameters
    ----------
    propensity_weight : float
    targeted_regularization : bool
    targeted_weight : float{common}
{attrs}
    """

    _parameter_constraints: dict = {
        **_BaseCausalEstimator._parameter_constraints,
        "propensity_weight": [non_negative()],
        "targeted_regularization": ["boolean"],
        "targeted_weight": [non_negative()],
    }

    def __init__(self, *, propensity_weight=1.0, targeted_regularization=False,
                 targeted_weight=1.0, rep_units=200, rep_layers=2, head_units=100,
                 head_layers=2, activation="elu", dropout=0.0, learning_rate=3e-4,
                 weight_decay=1e-4, batch_size=128,
                 epoch_size=10_000, max_epochs=500, validation_fraction=0.2,
                 patience=40, ema_decay=0.0, outcome="continuous", control=None, device="auto",
                 random_state=None, n_ensemble=1, bootstrap=False, verbose=0, callbacks=None,
                 fairness_penalty="iwclub", fairness_penalty_params=None, fairness_weight=0.0,
                 critic_lr=1e-3, critic_steps=1):
        _assign(self, locals())

    def _architecture(self):
        return {"factors": ("phi",), "outcome_inputs": ("phi",), "propensity_inputs": ("phi",),
                "targeted_epsilon": bool(self.targeted_regularization)}

    def _loss_config(self):
        return {"propensity_weight": self.propensity_weight,
                "targeted_weight": self.targeted_weight if self.targeted_regularization else 0.0}

    def _validate_fit(self, X, t, y, sample_weight):
        out = super()._validate_fit(X, t, y, sample_weight)
        if self.targeted_regularization and (len(out[2]) != 2 or self.outcome != "continuous"):
            raise ValueError("targeted_regularization needs two arms and outcome='continuous'; "
                             "set targeted_regularization=False.")
        return out



class DRCFRRegressor(DisentangledMixin, _BaseCausalEstimator):
    """DR-CFR: instrumental (Gamma), confounding (Delta) and adjustment (Upsilon) factors
    (Hassanpour and Greiner, ICLR 2020).

    Propensity head on (Gamma, Delta); one outcome head per arm on (Delta, Upsilon). Loss:
    importance-weighted factual loss (CFR-ISW weights from the learned propensity) +
    ``propensity_weight * CE`` + ``balance_weight * D(Upsilon, t)``.

    Parameters
    ----------
    balance_penalty : str, class or Penalty instance
        Dependence measure between the adjustment factor and the treatment.
    balance_penalty_params : dict, optional
        Constructor parameters of ``balance_penalty`` (``balance_penalty__<name>`` in
        ``set_params``).
    balance_weight : float
    propensity_weight : float
    importance_weighting : bool
        Weight the factual loss by 1 + [P(t)/(1-P(t))] [(1-pi(t|x))/pi(t|x)] (normalized to
        mean 1 in each batch, learned propensity clipped to [0.1, 0.9]).{common}
{attrs}
    factor_importances_ : DataFrame
        Features x (instrumental, confounding, adjustment): each factor's mean absolute input
        gradient per feature, each column summing to 1.
    """

    _parameter_constraints: dict = {
        **_BaseCausalEstimator._parameter_constraints,
        **penalty_constraints("balance_penalty"),
        "balance_weight": [non_negative()],
        "propensity_weight": [non_negative()],
        "importance_weighting": ["boolean"],
    }

    def __init__(self, *, balance_penalty="mmd", balance_penalty_params=None,
                 balance_weight=1.0, propensity_weight=1.0,
                 importance_weighting=False, rep_units=100, rep_layers=2, head_units=100,
                 head_layers=2, activation="elu", dropout=0.0, learning_rate=3e-4,
                 weight_decay=1e-4, batch_size=128,
                 epoch_size=10_000, max_epochs=500, validation_fraction=0.2,
                 patience=40, ema_decay=0.0, outcome="continuous", control=None, device="auto",
                 random_state=None, n_ensemble=1, bootstrap=False, verbose=0, callbacks=None,
                 fairness_penalty="iwclub", fairness_penalty_params=None, fairness_weight=0.0,
                 critic_lr=1e-3, critic_steps=1):
        _assign(self, locals())

    def _architecture(self):
        return {"factors": self._factor_names, "outcome_inputs": ("delta", "upsilon"),
                "propensity_inputs": ("gamma", "delta")}

    def _loss_config(self):
        return {"propensity_weight": self.propensity_weight,
                "importance_weighting": bool(self.importance_weighting)}

    def _penalty_terms(self):
        return [PenaltyTerm("balance", "upsilon", "t", self.balance_weight,
                            self.balance_penalty, "balance_penalty", partner="arms")]


class CausalMIMRegressor(DRCFRRegressor):
    """MIM-DRCFR: disentangled counterfactual regression with mutual-information minimization.

    A reconstruction of Cheng et al. (SIGIR 2022, "Learning Disentangled Representations for
    Counterfactual Regression via Mutual Information Minimization") from its published abstract
    plus DR-CFR (Hassanpour and Greiner, ICLR 2020) and CLUB (Cheng et al., ICML 2020); no code of
    the paper is public. A shared trunk feeds three factor networks (multi-task sharing):
    instrumental Gamma, confounding Delta, adjustment Upsilon. A propensity head reads
    (Gamma, Delta) and one outcome head per arm reads (Delta, Upsilon). The loss is

    ``L = sum_i w_i l(y_i, h_{{t_i}}(Delta_i, Upsilon_i)) / sum_i w_i``
    ``  + propensity_weight * CE(t, pi(Gamma, Delta))``
    ``  + balance_weight * D(Upsilon, t)``
    ``  + mi_weight * [I(Gamma; Delta) + I(Delta; Upsilon) + I(Gamma; Upsilon)]``

    with ``w_i`` the DR-CFR importance weights, ``D`` the balance penalty and each ``I`` estimated
    by ``mi_penalty`` (default vCLUB-S, an upper bound whose variational critic is fitted in
    alternation with the network). Every weight is a parameter.

    The defaults were chosen on development data (``benchmarks/results/defaults.md``): two
    members (``n_ensemble=2``) of 50-unit layers (``trunk_units``, ``rep_units``,
    ``head_units``), which beat one network of 100-unit layers (the earlier default) at 1.2-1.8
    times its fit time there (1.6-2.5 times on larger data, ``benchmarks/results/speed.md``).
    ``n_ensemble=1, trunk_units=100, rep_units=100, head_units=100`` is the earlier default.

    Parameters
    ----------
    mi_penalty : str, class or Penalty instance
        Estimator of the mutual information between factor pairs (see
        :data:`causalmim.penalties.PENALTIES`).
    mi_penalty_params : dict, optional
        Constructor parameters of ``mi_penalty`` (e.g. ``{{"hidden": 64}}``);
        ``set_params(mi_penalty__hidden=64)`` sets one (the old route ``critic__hidden`` still
        works, with a FutureWarning).
{mi}    trunk_units, trunk_layers : int
        The shared trunk (0 layers: factor networks read X directly). Two layers by default
        (one before 0.2; chosen on development data, ``benchmarks/results/defaults.md``).
    linear_skip : bool
        Add a linear map of X to each arm's outcome head (linear extrapolation beyond the
        training rows).
    balance_penalty : str, class or Penalty instance
        Dependence measure between the adjustment factor and the treatment.
    balance_penalty_params : dict, optional
        Its constructor parameters (``balance_penalty__<name>`` in ``set_params``).
    balance_weight, propensity_weight : float
    importance_weighting : bool{common}
{attrs}
    factor_importances_ : DataFrame
        Features x (instrumental, confounding, adjustment): each factor's mean absolute input
        gradient per feature, each column summing to 1.

    Examples
    --------
    >>> from causalmim import CausalMIMRegressor
    >>> from causalmim.datasets import make_disentangled
    >>> data = make_disentangled(n=300, random_state=0)
    >>> est = CausalMIMRegressor(max_epochs=5, random_state=0).fit(data.X, data.t, data.y)
    >>> est.factor_importances_.shape[1]
    3
    """

    _parameter_constraints: dict = {
        **DRCFRRegressor._parameter_constraints,
        **_MI_CONSTRAINTS,
        "linear_skip": ["boolean"],
    }

    def __init__(self, *, mi_penalty="vclub_s", mi_penalty_params=None, mi_weight=0.01,
                 critic_lr=1e-3, critic_steps=1, trunk_units=50, trunk_layers=2,
                 linear_skip=False,
                 balance_penalty="mmd", balance_penalty_params=None, balance_weight=1.0,
                 propensity_weight=1.0, importance_weighting=False, rep_units=50,
                 rep_layers=2, head_units=50, head_layers=2, activation="elu", dropout=0.1,
                 learning_rate=3e-4, weight_decay=1e-4, batch_size=128,
                 epoch_size=10_000, max_epochs=500,
                 validation_fraction=0.2, patience=40, ema_decay=0.0, outcome="continuous",
                 control=None,
                 device="auto", random_state=None, n_ensemble=2, bootstrap=False, verbose=0,
                 callbacks=None, fairness_penalty="iwclub", fairness_penalty_params=None,
                 fairness_weight=0.0):
        _assign(self, locals())

    def _architecture(self):
        return dict(super()._architecture(), trunk_units=self.trunk_units,
                    trunk_layers=self.trunk_layers, linear_skip=bool(self.linear_skip))


    def _penalty_terms(self):
        pairs = [("gamma", "delta"), ("delta", "upsilon"), ("gamma", "upsilon")]
        return super()._penalty_terms() + [
            PenaltyTerm(f"mi_{a}_{b}", a, b, self.mi_weight, self.mi_penalty, "mi_penalty")
            for a, b in pairs]



class ParallelMIMRegressor(_BaseCausalEstimator):
    """Parallel representation paths kept diverse by mutual-information minimization.

    After "Explore More, Learn Better: Parallel MLLM Embeddings under Mutual Information
    Minimization": one shared network is conditioned on ``n_paths`` learnable prefixes and so
    rolls out parallel paths for one input (``x -> trunk -> concat(h, prefix_k) -> shared
    representation network -> Z_k``); each path has its own outcome heads (one per arm) and its
    own factual supervision, and an MI penalty between every pair of paths pushes them to cover
    different aspects of the input. Prediction averages the paths, in one forward pass. The
    loss is

    ``L = (1/P) sum_k factual_loss(h_k(Z_k)) + mi_weight * sum_(k<l) I(Z_k; Z_l)``

    with each ``I`` estimated by ``mi_penalty`` (default vCLUB-S, its critic fitted in
    alternation with the network). :meth:`effect_std` gives the spread of the effect across
    the paths.

    Parameters
    ----------
    n_paths : int
        Number of parallel paths (at least 2).
    prefix_units : int
        Width of each path's learnable prefix (``path_conditioning="prefix"``).
    path_conditioning : {{"prefix", "film"}}
        How a path is told apart: ``"prefix"`` concatenates a learnable vector to the trunk's
        output (into the first layer of the shared network, a per-path bias); ``"film"`` scales
        and shifts each feature of the trunk's output per path (``h * (1 + scale_k) +
        shift_k``), so that paths can read different features.
    mi_penalty : str, class or Penalty instance
        Estimator of the MI between two paths' representations.
    mi_penalty_params : dict, optional
        Its constructor parameters (``mi_penalty__<name>`` in ``set_params``).
{mi}    trunk_units, trunk_layers : int
        The shared trunk before the prefixes (0 layers: the prefixes meet X directly).{common}
{attrs}

    Examples
    --------
    >>> from causalmim import ParallelMIMRegressor
    >>> from causalmim.datasets import make_disentangled
    >>> data = make_disentangled(n=300, random_state=0)
    >>> est = ParallelMIMRegressor(n_paths=2, max_epochs=5, random_state=0)
    >>> est.fit(data.X, data.t, data.y).effect_std(data.X).shape
    (300,)
    """

    _network = ParallelNetwork
    _parameter_constraints: dict = {
        **_BaseCausalEstimator._parameter_constraints,
        **_MI_CONSTRAINTS,
        "n_paths": [Interval(Integral, 2, None, closed="left")],
        "prefix_units": [positive_int()],
        "path_conditioning": [StrOptions({"prefix", "film"})],
    }

    def __init__(self, *, n_paths=4, prefix_units=8, path_conditioning="prefix",
                 mi_penalty="vclub_s",
                 mi_penalty_params=None, mi_weight=0.001, critic_lr=1e-3, critic_steps=1,
                 trunk_units=100, trunk_layers=1, rep_units=100, rep_layers=2, head_units=100,
                 head_layers=2, activation="elu", dropout=0.0, learning_rate=3e-4,
                 weight_decay=1e-4, batch_size=128, epoch_size=10_000, max_epochs=500,
                 validation_fraction=0.2, patience=40, ema_decay=0.0, outcome="continuous",
                 control=None,
                 device="auto", random_state=None, n_ensemble=1, bootstrap=False, verbose=0,
                 callbacks=None, fairness_penalty="iwclub", fairness_penalty_params=None,
                 fairness_weight=0.0):
        _assign(self, locals())

    def _architecture(self):
        return {"n_paths": self.n_paths, "prefix_units": self.prefix_units,
                "conditioning": self.path_conditioning,
                "trunk_units": self.trunk_units, "trunk_layers": self.trunk_layers,
                "outcome_inputs": tuple(f"path{k}" for k in range(self.n_paths))}


    def _penalty_terms(self):
        return [PenaltyTerm(f"mi_path{k}_path{j}", f"path{k}", f"path{j}", self.mi_weight,
                            self.mi_penalty, "mi_penalty")
                for k in range(self.n_paths) for j in range(k + 1, self.n_paths)]

    def path_effects(self, X):
        """Each path's effect of the first treated arm against control, averaged over the
        members: shape (n_paths, n)."""
        raw = self._network_output(X)["path_outcomes"].cpu().double().numpy()  # (M, P, n, K)
        if self.outcome == "binary":
            raw = 1.0 / (1.0 + np.exp(-raw))
        else:
            raw = raw * self.y_scale_ + self.y_mean_
        return (raw[..., 1] - raw[..., 0]).mean(axis=0)

    def effect_std(self, X):
        """Standard deviation of the effect across the paths, per row (a Series for a
        DataFrame ``X``): how much the paths disagree."""
        return self._wrap(X, self.path_effects(X).std(axis=0, ddof=1))
