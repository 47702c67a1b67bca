"""Model-selection criteria for effect estimators that use observed data only.

The individual effects tau(x) are never observed, so the error that matters, the PEHE
``mean((tau_hat(x) - tau(x))**2)``, cannot be computed on real data. The criteria here replace it
by quantities computed from the observed ``(X, t, y)`` of a validation set. Each rests on
assumptions, stated in its docstring; none of them looks at a counterfactual outcome.

=========== ===================== ============================================================
name        class                 what it measures (lower loss is better)
=========== ===================== ============================================================
``factual`` :class:`FactualScorer` error of the predicted outcome of the arm each unit received
``r_loss``  :class:`RLossScorer`   the R-loss of Nie and Wager with cross-fitted nuisances
``dr``      :class:`DRScorer`      error against the doubly robust (AIPW) pseudo-outcome
``nn_pehe`` :class:`NNPEHEScorer`  PEHE against effects imputed from nearest neighbours
=========== ===================== ============================================================

Every criterion is a scikit-learn scorer: ``scorer(estimator, X, ty)`` with ``ty`` the two-column
target ``[t, y]`` that causalmim estimators accept, returning the *negative* loss (scikit-learn
maximizes scores). Pass one as ``scoring=`` to :func:`~sklearn.model_selection.cross_val_score`,
:class:`~sklearn.model_selection.GridSearchCV` or :class:`optuna_integration.OptunaSearchCV`, or
its name to :func:`causalmim.tuning.tune`. ``scorer.loss(estimator, X, ty)`` gives the loss itself.

The estimator must expose ``predict_outcomes(X)`` (potential outcomes, one column per arm in the
order of ``classes_``); the effect-based criteria also accept an estimator with only
``predict(X)`` (the CATE) when there are two arms.

**Several arms.** With K > 2 arms, the effect-based criteria (``r_loss``, ``dr``, ``nn_pehe``)
compare each arm with the control arm on the units that received one of the two, using the
estimated effect ``mu_k(x) - mu_control(x)``, and average the K - 1 losses (unweighted). The
control is the estimator's ``control_`` (or ``control``) when set, else ``classes_[0]``.

**Nuisance models** (``r_loss``, ``dr``) are fitted on the data the scorer receives, by
cross-fitting: each unit's nuisance prediction comes from models fitted on the other folds. They
depend only on the data, not on the estimator being scored, so a scorer keeps them in a small
cache keyed by the data: scoring many candidate models on the same validation folds (as a
tuning run does) fits the nuisances once per fold.

Examples
--------
>>> from causalmim.model_selection import get_criterion
>>> get_criterion("r_loss")
RLossScorer(outcome_model=None, propensity_model=None, n_folds=5, random_state=None)
>>> sorted(CRITERIA)
['dr', 'factual', 'nn_pehe', 'r_loss']

References
----------
X. Nie and S. Wager (2021), "Quasi-oracle estimation of heterogeneous treatment effects",
Biometrika 108(2). E. H. Kennedy (2023), "Towards optimal doubly robust estimation of
heterogeneous causal effects", EJS. P. Schwab, L. Linhardt, W. Karlen (2018), "Perfect Match"
(the nearest-neighbour PEHE). A. Schuler et al. (2018), "A comparison of methods for model
selection when estimating individual treatment effects".
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

__all__ = [
    "CRITERIA",
    "DRScorer",
    "FactualScorer",
    "NNPEHEScorer",
    "RLossScorer",
    "get_criterion",
]

from ._validation import index_arms, split_two_column_target

logger = logging.getLogger(__name__)

_CACHE_SIZE = 32


# --------------------------------------------------------------------------- helpers
def _split_target(ty):
    """Return ``(t, y)`` from a two-column target (array or DataFrame), y finite floats."""
    t, y = split_two_column_target(ty)
    y = np.asarray(y, dtype=float)
    if not np.all(np.isfinite(y)):
        raise ValueError("the outcome y contains NaN or infinite values")
    return t, y


def _arm_layout(estimator, t):
    """Arm labels, the index of each unit's arm and the index of the control arm."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        classes = np.unique(t)
    classes = np.asarray(classes)
    index = index_arms(np.asarray(t), classes, "the treatment")
    control = getattr(estimator, "control_", None)
    if control is None:
        control = getattr(estimator, "control", None)
    if control is None:
        control_index = 0
    else:
        hits = np.flatnonzero(classes == control)
        if hits.size == 0:
            raise ValueError(f"control arm {control!r} is not among the arms {classes.tolist()}")
        control_index = int(hits[0])
    return classes, index, control_index


def _predicted_outcomes(estimator, X, n_arms):
    if not hasattr(estimator, "predict_outcomes"):
        return None
    mu = np.asarray(estimator.predict_outcomes(X), dtype=float)
    if mu.ndim == 1:
        mu = mu[:, None]
    if mu.shape[1] != n_arms:
        raise ValueError(f"predict_outcomes returned {mu.shape[1]} columns for {n_arms} arms")
    return mu


def _weighted_mean(values, sample_weight):
    if sample_weight is None:
        return float(np.mean(values))
    w = np.asarray(sample_weight, dtype=float)
    return float(np.sum(w * values) / np.sum(w))


def _fingerprint(*arrays):
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _with_seed(model, rng):
    """Clone ``model`` and give it a seed drawn from ``rng`` when it takes one and has none."""
    model = clone(model)
    params = model.get_params()
    seeded = {
        name: int(rng.randint(np.iinfo(np.int32).max))
        for name, value in params.items()
        if (name == "random_state" or name.endswith("__random_state")) and value is None
    }
    if seeded:
        model.set_params(**seeded)
    return model


# --------------------------------------------------------------------------- base class
class _CausalScorer:
    """Shared machinery: parse the target, loop over arm pairs, return ``-loss``."""

    name = None
    #: Whether the criterion needs predicted outcomes per arm (True) or only effects (False).
    _needs_outcomes = False

    def __call__(self, estimator, X, ty, sample_weight=None):
        """Score ``estimator`` on ``(X, ty)``: the negative loss (higher is better)."""
        return -self.loss(estimator, X, ty, sample_weight=sample_weight)

    def loss(self, estimator, X, ty, sample_weight=None):
        """The loss of ``estimator`` on ``(X, ty)`` (lower is better).

        Parameters
        ----------
        estimator : fitted estimator
            Exposes ``predict_outcomes(X)`` (or, with two arms, ``predict(X)``).
        X : array-like of shape (n_samples, n_features)
        ty : array-like of shape (n_samples, 2)
            The two-column target ``[t, y]``.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        t, y = _split_target(ty)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=float)
        classes, arm, control = _arm_layout(estimator, t)
        mu = _predicted_outcomes(estimator, X, len(classes))
        if self._needs_outcomes:
            if mu is None:
                raise TypeError(
                    f"the {self.name!r} criterion needs an estimator with predict_outcomes(X)"
                )
            return self._outcome_loss(mu, arm, y, sample_weight)
        if len(classes) < 2:
            raise ValueError("the data hold a single treatment arm; an effect cannot be scored")
        if mu is None:
            if len(classes) != 2:
                raise TypeError(
                    "with more than two arms, scoring needs an estimator with predict_outcomes(X)"
                )
            # predict(X) is the effect of the other arm against the control
            tau = np.asarray(estimator.predict(X), dtype=float).reshape(-1)
            mu = np.zeros((len(tau), 2))
            mu[:, 1 - control] = tau
            treated = [1 - control]
        else:
            treated = [k for k in range(len(classes)) if k != control]
        X_num = None
        losses = []
        for k in treated:
            mask = (arm == control) | (arm == k)
            if X_num is None:
                X_num = check_array(X, dtype=float)
            w = (arm[mask] == k).astype(int)
            if w.min() == w.max():
                raise ValueError(
                    f"the data hold no unit in arm {classes[k if w.min() == 0 else control]!r}; "
                    "an effect cannot be scored"
                )
            tau_hat = mu[mask, k] - mu[mask, control]
            sw = None if sample_weight is None else sample_weight[mask]
            losses.append(self._effect_loss(tau_hat, X_num[mask], w, y[mask], sw))
        return float(np.mean(losses))

    def _outcome_loss(self, mu, arm, y, sample_weight):  # pragma: no cover - abstract
        raise NotImplementedError

    def _effect_loss(self, tau_hat, X, w, y, sample_weight):  # pragma: no cover - abstract
        raise NotImplementedError

    # a bounded cache of per-data quantities (nuisance predictions, imputed effects)
    def _cached(self, key, compute):
        cache = self.__dict__.setdefault("_cache", OrderedDict())
        lock = self.__dict__.setdefault("_lock", threading.Lock())
        with lock:
            if key in cache:
                cache.move_to_end(key)
                return cache[key]
        value = compute()
        with lock:
            cache[key] = value
            while len(cache) > _CACHE_SIZE:
                cache.popitem(last=False)
        return value

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_cache", None)
        state.pop("_lock", None)
        return state

    def _params(self):
        return {}

    def get_params(self, deep=True):
        """The scorer's parameters (a dict), as in scikit-learn."""
        return self._params()

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------- criteria
class FactualScorer(_CausalScorer):
    """Factual error: the squared error of the predicted outcome of the arm each unit received.

    ``loss = mean((y_i - mu_hat_{t_i}(x_i))**2)``; for a binary outcome with predicted
    probabilities this is the Brier score. The scorer returns the negative loss.

    Assumes nothing beyond the observed data, and measures only how well the observed outcomes
    are fitted. That bounds the effect error only loosely: under confounding, the factual
    distribution differs from the counterfactual one, and a model can fit the factual outcomes
    well while getting the effect (a difference of two regressions) wrong. It is cheap, has no
    nuisance model, and works for any number of arms.

    Examples
    --------
    >>> from causalmim.model_selection import FactualScorer
    >>> FactualScorer()
    FactualScorer()
    """

    name = "factual"
    _needs_outcomes = True

    def _outcome_loss(self, mu, arm, y, sample_weight):
        pred = mu[np.arange(len(y)), arm]
        return _weighted_mean((y - pred) ** 2, sample_weight)


class _NuisanceScorer(_CausalScorer):
    """Shared parts of the criteria with cross-fitted nuisance models."""

    def __init__(self, outcome_model=None, propensity_model=None, n_folds=5, random_state=None):
        self.outcome_model = outcome_model
        self.propensity_model = propensity_model
        self.n_folds = n_folds
        self.random_state = random_state

    def _params(self):
        return {
            "outcome_model": self.outcome_model,
            "propensity_model": self.propensity_model,
            "n_folds": self.n_folds,
            "random_state": self.random_state,
        }

    def _outcome_model(self):
        if self.outcome_model is not None:
            return self.outcome_model
        return RandomForestRegressor(n_estimators=100, min_samples_leaf=5, max_features=0.5)

    def _propensity_model(self):
        if self.propensity_model is not None:
            return self.propensity_model
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))

    def _folds(self, w):
        smallest = int(min(np.sum(w == 0), np.sum(w == 1)))
        n_folds = min(int(self.n_folds), smallest)
        if n_folds < 2:
            raise ValueError(
                f"the {self.name!r} criterion cross-fits nuisance models and needs at least two "
                f"units in each arm of the data it scores; the smallest arm has {smallest}"
            )
        # A fixed seed when random_state is None would hide the randomness; the cache keeps the
        # nuisances fixed for given data within one scorer either way.
        rng = check_random_state(self.random_state)
        cv = StratifiedKFold(n_folds, shuffle=True, random_state=rng.randint(2**31 - 1))
        return list(cv.split(np.zeros((len(w), 1)), w)), rng

    def _propensity(self, X, w, folds, rng):
        e = np.empty(len(w), dtype=float)
        for train, test in folds:
            model = _with_seed(self._propensity_model(), rng).fit(X[train], w[train])
            e[test] = model.predict_proba(X[test])[:, list(model.classes_).index(1)]
        return e


class RLossScorer(_NuisanceScorer):
    """The R-loss of Nie and Wager (2021), with cross-fitted nuisance models.

    ``loss = mean(((y - m(x)) - (w - e(x)) * tau_hat(x))**2)``, with ``w`` the treatment
    indicator, ``m(x) = E[y | x]`` the outcome regression marginalized over treatment and
    ``e(x) = P(w = 1 | x)`` the propensity, both estimated on the scored data by cross-fitting
    (``n_folds`` folds stratified by arm). The scorer returns the negative loss.

    Assumes unconfoundedness (no hidden confounder of ``t`` and ``y``) and overlap (``e(x)``
    bounded away from 0 and 1: units where ``e`` is near 0 or 1 carry almost no weight, so the
    criterion says little about effects there), and that the nuisance models are accurate enough;
    the R-loss is Neyman-orthogonal, so first-order errors in ``m`` and ``e`` do not bias the
    comparison of candidates. Its value contains an irreducible part (outcome noise) that is the
    same for every candidate on the same data, so only differences between candidates matter.

    Parameters
    ----------
    outcome_model : regressor, default=None
        Model of ``E[y | x]``; default a random forest (100 trees, ``min_samples_leaf=5``,
        ``max_features=0.5``). Cloned for each fold.
    propensity_model : classifier with ``predict_proba``, default=None
        Model of ``P(w = 1 | x)``; default a standardized logistic regression (``C=1``).
    n_folds : int, default=5
        Cross-fitting folds (reduced to the size of the smallest arm when that is smaller).
    random_state : int, RandomState or None, default=None
        Seeds the folds and the nuisance models that have no seed of their own.

    Examples
    --------
    >>> from causalmim.model_selection import RLossScorer
    >>> RLossScorer(n_folds=3, random_state=0)
    RLossScorer(outcome_model=None, propensity_model=None, n_folds=3, random_state=0)
    """

    name = "r_loss"

    def _effect_loss(self, tau_hat, X, w, y, sample_weight):
        key = ("r_loss", _fingerprint(X, w, y))
        y_res, w_res = self._cached(key, lambda: self._residuals(X, w, y))
        return _weighted_mean((y_res - w_res * tau_hat) ** 2, sample_weight)

    def _residuals(self, X, w, y):
        folds, rng = self._folds(w)
        m = np.empty(len(y), dtype=float)
        for train, test in folds:
            model = _with_seed(self._outcome_model(), rng).fit(X[train], y[train])
            m[test] = model.predict(X[test])
        e = self._propensity(X, w, folds, rng)
        return y - m, w - e


class DRScorer(_NuisanceScorer):
    """Error against the doubly robust (AIPW) pseudo-outcome, with cross-fitted nuisances.

    ``phi = mu1(x) - mu0(x) + w (y - mu1(x)) / e(x) - (1 - w) (y - mu0(x)) / (1 - e(x))`` and
    ``loss = mean((phi - tau_hat(x))**2)``, with ``mu_a(x) = E[y | x, w = a]`` (one outcome model
    per arm) and ``e(x)`` the propensity, estimated on the scored data by cross-fitting; ``e`` is
    clipped to ``[clip, 1 - clip]``. ``E[phi | x] = tau(x)`` when either the outcome models or
    the propensity are correct, so in expectation the loss ranks candidates as the PEHE does
    (up to a constant that is the same for all). The scorer returns the negative loss.

    Assumes unconfoundedness, overlap (the inverse propensity weights explode where ``e(x)`` is
    near 0 or 1; clipping trades that variance for bias), and that at least one of the two
    nuisance models is accurate (the error of the criterion is of the order of the product of
    their errors).

    Parameters
    ----------
    outcome_model : regressor, default=None
        Model of ``E[y | x, w = a]``, fitted once per arm and fold; default a random forest
        (100 trees, ``min_samples_leaf=5``, ``max_features=0.5``).
    propensity_model : classifier with ``predict_proba``, default=None
        Model of ``P(w = 1 | x)``; default a standardized logistic regression (``C=1``).
    n_folds : int, default=5
        Cross-fitting folds (reduced to the size of the smallest arm when that is smaller).
    clip : float, default=0.05
        Propensity clipping threshold.
    random_state : int, RandomState or None, default=None
        Seeds the folds and the nuisance models that have no seed of their own.

    Examples
    --------
    >>> from causalmim.model_selection import DRScorer
    >>> DRScorer(clip=0.1).clip
    0.1
    """

    name = "dr"

    def __init__(
        self, outcome_model=None, propensity_model=None, n_folds=5, clip=0.05, random_state=None
    ):
        super().__init__(outcome_model, propensity_model, n_folds, random_state)
        self.clip = clip

    def _params(self):
        params = super()._params()
        params["clip"] = self.clip
        return params

    def _effect_loss(self, tau_hat, X, w, y, sample_weight):
        key = ("dr", _fingerprint(X, w, y))
        phi = self._cached(key, lambda: self._pseudo_outcome(X, w, y))
        return _weighted_mean((phi - tau_hat) ** 2, sample_weight)

    def _pseudo_outcome(self, X, w, y):
        if not 0 <= self.clip < 0.5:
            raise ValueError(f"clip must be in [0, 0.5); got {self.clip}")
        folds, rng = self._folds(w)
        mu = np.empty((len(y), 2), dtype=float)
        for train, test in folds:
            for a in (0, 1):
                rows = train[w[train] == a]
                model = _with_seed(self._outcome_model(), rng).fit(X[rows], y[rows])
                mu[test, a] = model.predict(X[test])
        e = np.clip(self._propensity(X, w, folds, rng), self.clip, 1 - self.clip)
        return mu[:, 1] - mu[:, 0] + w * (y - mu[:, 1]) / e - (1 - w) * (y - mu[:, 0]) / (1 - e)


class NNPEHEScorer(_CausalScorer):
    """Nearest-neighbour PEHE (Schwab et al., 2018): PEHE against effects imputed by matching.

    Each unit's missing potential outcome is imputed by the mean outcome of its
    ``n_neighbors`` nearest neighbours (Euclidean distance, on standardized covariates when
    ``scale``) in the other arm, giving an imputed effect ``tau_nn(x_i)`` (treated:
    ``y_i - y_nn``; control: ``y_nn - y_i``); ``loss = mean((tau_nn - tau_hat(x))**2)``. The
    scorer returns the negative loss.

    Assumes unconfoundedness, overlap (each unit has close neighbours in the other arm) and smooth
    outcome surfaces in the chosen metric (matching bias grows with the distance to the neighbours,
    so with many covariates or irrelevant ones the proxy degrades). The outcome noise of the
    neighbours adds a constant to the loss that is the same for every candidate; more neighbours
    lower it at the price of more matching bias. Needs no nuisance model.

    Parameters
    ----------
    n_neighbors : int, default=1
        Neighbours averaged in the other arm.
    scale : bool, default=True
        Standardize the covariates (on the scored data) before matching.

    Examples
    --------
    >>> from causalmim.model_selection import NNPEHEScorer
    >>> NNPEHEScorer(n_neighbors=3)
    NNPEHEScorer(n_neighbors=3, scale=True)
    """

    name = "nn_pehe"

    def __init__(self, n_neighbors=1, scale=True):
        self.n_neighbors = n_neighbors
        self.scale = scale

    def _params(self):
        return {"n_neighbors": self.n_neighbors, "scale": self.scale}

    def _effect_loss(self, tau_hat, X, w, y, sample_weight):
        key = ("nn_pehe", _fingerprint(X, w, y))
        tau_nn = self._cached(key, lambda: self._imputed_effect(X, w, y))
        return _weighted_mean((tau_nn - tau_hat) ** 2, sample_weight)

    def _imputed_effect(self, X, w, y):
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be at least 1; got {self.n_neighbors}")
        Z = StandardScaler().fit_transform(X) if self.scale else X
        y_other = np.empty(len(y), dtype=float)
        for a in (0, 1):
            donors = np.flatnonzero(w == 1 - a)
            k = min(int(self.n_neighbors), donors.size)
            nn = NearestNeighbors(n_neighbors=k).fit(Z[donors])
            receivers = np.flatnonzero(w == a)
            _, idx = nn.kneighbors(Z[receivers])
            y_other[receivers] = y[donors][idx].mean(axis=1)
        return np.where(w == 1, y - y_other, y_other - y)


#: Criterion names and their scorer classes.
CRITERIA = {
    "factual": FactualScorer,
    "r_loss": RLossScorer,
    "dr": DRScorer,
    "nn_pehe": NNPEHEScorer,
}


def get_criterion(criterion, **params):
    """Return a scorer for a criterion name (or pass a scorer through).

    Parameters
    ----------
    criterion : str or callable
        One of ``"factual"``, ``"r_loss"``, ``"dr"``, ``"nn_pehe"``; a callable
        ``scorer(estimator, X, ty)`` is returned unchanged.
    **params
        Passed to the scorer class (e.g. ``n_folds=3``); only with a name.

    Returns
    -------
    callable
        ``scorer(estimator, X, ty) -> float``, higher is better.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.

    Examples
    --------
    >>> get_criterion("nn_pehe", n_neighbors=5)
    NNPEHEScorer(n_neighbors=5, scale=True)
    """
    if isinstance(criterion, str):
        try:
            cls = CRITERIA[criterion]
        except KeyError:
            raise ValueError(
                f"unknown criterion {criterion!r}; valid criteria are {sorted(CRITERIA)} "
                "(or a callable scorer(estimator, X, ty))"
            ) from None
        return cls(**params)
    if callable(criterion):
        if params:
            raise ValueError("criterion parameters can only be given with a criterion name")
        return criterion
    raise ValueError(
        f"criterion must be a name in {sorted(CRITERIA)} or a callable scorer; got {criterion!r}"
    )
