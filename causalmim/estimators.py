"""Neural treatment-effect estimators with the scikit-learn API.

Every estimator here trains the same network (``causalmim._nn.CausalNetwork``) through the same
skorch engine (``causalmim._engine.CausalNet``); they differ only in the parts they switch on:
which factor representations exist, which heads read which factors, and which loss terms and
dependence penalties carry weight.
"""

from __future__ import annotations

import copy
import json
import logging
import os

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import ProgressBar
from torch import nn

from ._engine import CausalNet, MemberEarlyStopping, eval_chunk, fused_adam_kwargs
from ._nn import ACTIVATIONS, CausalNetwork
from ._validation import (
    check_arms,
    check_features,
    check_sample_weight,
    check_treatment_outcome,
    split_two_column_target,
)

__all__ = [
    "TARNetRegressor",
    "CFRNetRegressor",
    "DRCFRRegressor",
    "CausalMIMRegressor",
    "DragonNetRegressor",
    "load",
]

logger = logging.getLogger(__name__)

FACTOR_LABELS = {"gamma": "instrumental", "delta": "confounding", "upsilon": "adjustment"}

# Prefixes of routed component parameters: ``critic__hidden=64`` goes to the constructor of the
# mutual-information penalty, ``balance__epsilon=0.1`` to the balance penalty.
_ROUTES = {"critic": "mi_penalty", "balance": "balance_penalty"}

_COMMON_DOC = """
    rep_units : int
        Width of each representation (factor) network and of its output.
    rep_layers : int
        Hidden layers of each representation network.
    head_units, head_layers : int
        Width and depth of each outcome head (one head per arm).
    activation : {"elu", "relu", "tanh", "gelu"}
    dropout : float
        Dropout rate in the hidden layers.
    learning_rate : float
        Adam learning rate of the network.
    weight_decay : float
        L2 penalty (Adam's ``weight_decay``).
    batch_size : int
    epoch_size : int or None
        Rows per epoch. With more training rows than this, an epoch is the next
        ``epoch_size`` rows of an endless shuffled stream, and the validation loss is computed
        on at most ``10 * epoch_size`` validation rows drawn once: early stopping then checks
        at a fixed budget of steps however large the data (``patience`` counts these epochs).
        None: every epoch is a full pass.
    max_epochs : int
        Upper bound on the passes over the data; early stopping usually ends sooner.
    validation_fraction : float
        Share of the training data held out (stratified by arm) for early stopping on the factual
        validation loss; 0 disables early stopping.
    patience : int
        Epochs without improvement of the validation loss before stopping; the best epoch's
        weights are restored.
    outcome : {"continuous", "binary"}
        ``"binary"`` trains the outcome heads with log-loss on 0/1 outcomes (conversions); effects
        are then differences of probabilities.
    control : label, optional
        The control arm; by default the first sorted arm label.
    device : {"auto", "cpu", "cuda"} or str
        Where to train; ``"auto"`` takes the GPU when one is there.
    random_state : int, RandomState or None
        Seeds weight initialization, batching, the validation split and penalty sampling. The
        same integer gives the same predictions on the CPU; the global torch and numpy random
        states are left untouched.
    n_ensemble : int
        Members of the network: M independently initialized copies trained together, in one
        forward and one backward pass per batch, each with its own validation split, its own
        early stopping (it keeps its best epoch's weights) and its own penalty critics. Every
        prediction averages the members; averaging cuts the variance of the effect estimates.
    bootstrap : bool
        Give each member its own Poisson(1) resampling weights of the training rows, so that
        the members form a bagged ensemble; needed by the ``*_interval`` methods.
    verbose : int
        0 silent, 1 a table per epoch, 2 also a progress bar per epoch.
    callbacks : list of skorch callbacks, optional
        Extra callbacks for the internal skorch net (e.g. Optuna's ``SkorchPruningCallback``).
"""

_ATTRS_DOC = """
    Attributes
    ----------
    classes_ : ndarray
        The arm labels, control first.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` was a DataFrame with string column names.
    net_ : skorch.NeuralNet
        The trained internal net; its module holds all ``n_ensemble`` members.
    history_ : skorch.History
        ``net_.history``: per epoch, ``train_loss`` and ``valid_loss`` (means over members),
        ``valid_losses`` (one per member) and each penalty term's mean estimate.
    best_epochs_ : ndarray of shape (n_ensemble,)
        The epoch whose weights each member kept (the last epoch without early stopping).
"""


def _resolve_device(device):
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class _BaseCausalEstimator(BaseEstimator):
    """Common fit/predict logic; subclasses declare their parts in ``_architecture``."""

    def __init__(self, **kwargs):  # pragma: no cover - subclasses define the signature
        raise NotImplementedError

    # ------------------------------------------------------------ routed parameters
    def _set_routed(self, kwargs):
        for key, value in kwargs.items():
            self._check_routed_key(key)
            setattr(self, key, value)

    def _check_routed_key(self, key):
        prefix = key.split("__", 1)[0]
        allowed = [p for p, owner in _ROUTES.items() if owner in self._get_param_names()]
        if "__" not in key or prefix not in allowed:
            valid = sorted(self._get_param_names())
            routes = ", ".join(f"{p}__<param>" for p in allowed) or "none"
            raise ValueError(
                f"Invalid parameter {key!r} for estimator {type(self).__name__}. Valid "
                f"parameters are {valid}; routed component parameters: {routes}.")

    def _routed_params(self, prefix):
        start = prefix + "__"
        return {k[len(start):]: v for k, v in self.__dict__.items() if k.startswith(start)}

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update({k: v for k, v in self.__dict__.items()
                       if "__" in k and k.split("__", 1)[0] in _ROUTES})
        return params

    def set_params(self, **params):
        routed = {k: v for k, v in params.items()
                  if "__" in k and k.split("__", 1)[0] in _ROUTES}
        self._set_routed(routed)
        rest = {k: v for k, v in params.items() if k not in routed}
        return super().set_params(**rest) if rest else self

    # ------------------------------------------------------------ architecture hooks
    def _architecture(self):
        """Keyword arguments of ``CausalNetwork`` beyond the shared sizes."""
        return {"factors": ("phi",), "outcome_inputs": ("phi",)}

    def _loss_config(self):
        """Keyword arguments of ``CausalNet`` for the loss terms."""
        return {}

    def _penalty_terms(self):
        """``(key, a, b, weight, penalty_spec, routed_prefix)`` for each dependence penalty."""
        return []

    # ------------------------------------------------------------ validation
    def _check_params(self):
        if self.outcome not in ("continuous", "binary"):
            raise ValueError(f"outcome must be 'continuous' or 'binary'; got {self.outcome!r}.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got "
                             f"{self.activation!r}.")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in [0, 1); got "
                             f"{self.validation_fraction!r}.")
        for name in ("rep_units", "rep_layers", "head_units", "batch_size", "max_epochs",
                     "n_ensemble"):
            value = getattr(self, name)
            if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                    or value < 1):
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        if not isinstance(self.bootstrap, (bool, np.bool_)):
            raise ValueError(f"bootstrap must be True or False; got {self.bootstrap!r}.")
        if self.bootstrap and self.n_ensemble < 2:
            raise ValueError("bootstrap=True needs at least 2 members to measure a spread; "
                             f"got n_ensemble={self.n_ensemble}. Set n_ensemble=20, say.")
        if self.epoch_size is not None and (
                isinstance(self.epoch_size, bool)
                or not isinstance(self.epoch_size, (int, np.integer)) or self.epoch_size < 1):
            raise ValueError("epoch_size must be a positive integer or None; got "
                             f"{self.epoch_size!r}.")
        for key in [k for k in self.__dict__ if "__" in k]:
            self._check_routed_key(key)

    def _validate_fit(self, X, t, y, sample_weight):
        if y is None:
            t, y = split_two_column_target(t)
        X, names = check_features(X)
        t, y = check_treatment_outcome(t, y, X.shape[0], binary_outcome=self.outcome == "binary")
        classes, t_index = check_arms(t, self.control)
        w = check_sample_weight(sample_weight, X.shape[0])
        return X, names, classes, t_index, y, w

    def _validate_X(self, X):
        check_is_fitted(self, "net_")
        X, _ = check_features(X, n_features=self.n_features_in_,
                              feature_names=getattr(self, "feature_names_in_", None))
        return X

    # ------------------------------------------------------------ fit
    def fit(self, X, t, y=None, sample_weight=None):
        """Fit the network on observational data.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric covariates (standardized inside the estimator).
        t : array-like of shape (n_samples,), or (n_samples, 2) when ``y`` is None
            Arm labels of any type (two or more arms). When ``y`` is None, ``t`` is the
            two-column target ``[t, y]`` that scikit-learn tools pass.
        y : array-like of shape (n_samples,), optional
            Observed outcome (float, or 0/1 with ``outcome="binary"``).
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        self._check_params()
        X, names, classes, t_index, y, w = self._validate_fit(X, t, y, sample_weight)
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        if names is not None and all(isinstance(n, str) for n in names):
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.x_mean_ = X.mean(axis=0)
        self.x_scale_ = X.std(axis=0)
        self.x_scale_[self.x_scale_ == 0] = 1.0
        if self.outcome == "binary":
            self.y_mean_, self.y_scale_ = 0.0, 1.0
        else:
            self.y_mean_ = float(np.average(y, weights=w))
            self.y_scale_ = float(np.sqrt(np.average((y - self.y_mean_) ** 2, weights=w))) or 1.0
        Xs = (X - self.x_mean_) / self.x_scale_
        ys = (y - self.y_mean_) / self.y_scale_
        self._fit(Xs, t_index, ys, w / w.mean())
        with torch.no_grad():
            members = self._effects(self._member_outcomes(Xs))
        self._train_ate_members_ = members.mean(axis=1)
        self._train_ate_ = self._train_ate_members_.mean(axis=0)
        if hasattr(self, "_factor_importances"):
            self.factor_importances_ = self._factor_importances(Xs)
        return self

    def _build_net(self, n_features, arm_shares, early_stopping=False, shuffle_seed=0):
        from . import penalties as _penalties
        from ._members import member_penalty

        n_arms, n_members = len(arm_shares), self.n_ensemble
        module = CausalNetwork(
            n_features, n_arms, rep_units=self.rep_units, rep_layers=self.rep_layers,
            head_units=self.head_units, head_layers=self.head_layers,
            activation=self.activation, dropout=self.dropout, n_members=n_members,
            **self._architecture())
        critics, terms = nn.ModuleDict(), []
        for key, a, b, weight, spec, prefix in self._penalty_terms():
            dims = ({"n_classes": n_arms} if b == "t" else {"dim_b": self.rep_units})
            params = self._routed_params(prefix)
            if isinstance(spec, (str, type)):
                def make(spec=spec, dims=dims, params=params):
                    return _penalties.get_penalty(spec, dim_a=self.rep_units, **dims, **params)
            elif params:
                raise ValueError(f"{prefix}__* parameters need a penalty given by name, not "
                                 "an instance; configure the instance directly.")
            else:  # an instance: each member trains its own copy
                def make(spec=spec):
                    return copy.deepcopy(_penalties.get_penalty(spec))
            critics[key] = member_penalty(make, n_members, self.rep_units, **dims)
            terms.append((key, a, b, float(weight)))
        device = _resolve_device(self.device)
        callbacks = []
        if self.verbose >= 2:
            callbacks.append(("progress", ProgressBar()))
        if early_stopping:
            callbacks.append(("early_stopping", MemberEarlyStopping(self.patience)))
        for i, cb in enumerate(self.callbacks or []):
            callbacks.append((f"user_{i}", cb))
        return CausalNet(
            module, critic=critics, penalty_terms=tuple(terms),
            criterion=nn.MSELoss, optimizer=torch.optim.Adam, lr=self.learning_rate,
            optimizer__weight_decay=self.weight_decay, batch_size=self.batch_size,
            **{f"optimizer__{k}": v for k, v in fused_adam_kwargs(device).items()},
            max_epochs=self.max_epochs, train_split=None, device=device,
            epoch_size=self.epoch_size,
            callbacks=callbacks, shuffle_seed=shuffle_seed,
            outcome=self.outcome, arm_shares=tuple(float(s) for s in arm_shares),
            verbose=self.verbose, **self._loss_config())

    def _member_weights(self, t_index, w, rng):
        """(n, M) training and validation weights of the members.

        Member m holds out its own stratified ``validation_fraction`` of the rows (weight 0 in
        its training loss); with ``bootstrap`` its training rows are weighted by Poisson(1)
        counts.
        """
        n, m = len(t_index), self.n_ensemble
        train = np.ones((n, m))
        valid = np.zeros((n, m))
        for j in range(m):
            if self.validation_fraction > 0:
                _, idx_valid = train_test_split(
                    np.arange(n), test_size=self.validation_fraction, stratify=t_index,
                    random_state=int(rng.randint(np.iinfo(np.int32).max)))
                train[idx_valid, j] = 0.0
                valid[idx_valid, j] = 1.0
        if self.bootstrap:
            train *= rng.poisson(1.0, size=(n, m))
        return (train * w[:, None]).astype(np.float32), (valid * w[:, None]).astype(np.float32)

    def _fit(self, Xs, t_index, ys, w):
        n_arms = len(self.classes_)
        arm_shares = np.bincount(t_index, minlength=n_arms) / len(t_index)
        rng = check_random_state(self.random_state)
        max_seed = np.iinfo(np.int32).max
        torch_seed, shuffle_seed = int(rng.randint(max_seed)), int(rng.randint(max_seed))
        wm, vm = self._member_weights(t_index, w, rng)
        data = {"x": Xs.astype(np.float32), "t": t_index.astype(np.int64), "wm": wm, "vm": vm}
        device = _resolve_device(self.device)
        devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(torch_seed)
            net = self._build_net(Xs.shape[1], arm_shares,
                                  early_stopping=self.validation_fraction > 0,
                                  shuffle_seed=shuffle_seed)
            net.fit(data, ys.astype(np.float32))
        self.net_ = net
        self.history_ = net.history
        self.best_epochs_ = getattr(net, "best_epochs_",
                                    np.full(self.n_ensemble, len(net.history)))
        net.release_fit_data()
        return self

    # ------------------------------------------------------------ predict
    def _member_outcomes(self, Xs):
        """Outcomes of every member (M, n, K) on the original scale (probabilities for binary
        outcomes)."""
        module = self.net_.module_
        was_training = module.training
        module.eval()
        outs = []
        device = next(module.parameters()).device
        batch_size = eval_chunk(device)
        with torch.no_grad():
            for start in range(0, len(Xs), batch_size):
                xb = torch.as_tensor(Xs[start:start + batch_size], dtype=torch.float32,
                                     device=device)
                outs.append(module.predict_outcomes(xb).cpu().double().numpy())
        module.train(was_training)
        raw = np.concatenate(outs, axis=1)
        if self.outcome == "binary":
            return 1.0 / (1.0 + np.exp(-raw))
        return raw * self.y_scale_ + self.y_mean_

    def _forward(self, Xs):
        """Outcomes (n, K) averaged over the members."""
        return self._member_outcomes(Xs).mean(axis=0)

    @staticmethod
    def _effects(outcomes):
        """Effects of each treated arm against control: (..., n, K) -> (..., n) for two arms,
        (..., n, K-1) for more."""
        eff = outcomes[..., 1:] - outcomes[..., :1]
        return eff[..., 0] if eff.shape[-1] == 1 else eff

    def _standardize(self, X):
        return (self._validate_X(X) - self.x_mean_) / self.x_scale_

    def predict_outcomes(self, X):
        """Potential outcomes (or probabilities), shape (n, K), columns in ``classes_`` order."""
        out = self._forward(self._standardize(X))
        return self._wrap(X, out, columns=list(self.classes_))

    def predict(self, X):
        """Conditional average treatment effect: shape (n,) for two arms, (n, K-1) against
        control for K arms."""
        eff = self._effects(self._forward(self._standardize(X)))
        return self._wrap(X, eff, columns=[f"{c} - {self.classes_[0]}" for c in self.classes_[1:]])

    def const_marginal_effect(self, X):
        """EconML's name for :meth:`predict` (effect of each treated arm against control)."""
        return np.asarray(self.predict(X))

    def _arm_index(self, label, name):
        matches = np.flatnonzero(self.classes_ == label)
        if len(matches) == 0:
            raise ValueError(f"{name}={label!r} is not an arm seen in fit; arms are "
                             f"{self.classes_.tolist()}.")
        return int(matches[0])

    def _member_effect(self, Xs, T0, T1):
        """Each member's effect of moving from ``T0`` to ``T1``: (M, n)."""
        out = self._member_outcomes(Xs)
        T0 = self.classes_[0] if T0 is None else T0
        T1 = self.classes_[1] if T1 is None else T1
        n = out.shape[1]
        rows = np.arange(n)
        i0 = np.array([self._arm_index(v, "T0") for v in np.ravel(T0)])
        i1 = np.array([self._arm_index(v, "T1") for v in np.ravel(T1)])
        for name, idx in (("T0", i0), ("T1", i1)):
            if len(idx) not in (1, n):
                raise ValueError(f"{name} must be one label or one label per row of X.")
        return out[:, rows, i1] - out[:, rows, i0]

    def effect(self, X, T0=None, T1=None):
        """Effect of moving from arm ``T0`` (default control) to ``T1`` (default the first
        treated arm); ``T0``/``T1`` are labels, or arrays of labels per row."""
        return self._member_effect(self._standardize(X), T0, T1).mean(axis=0)

    # ------------------------------------------------------------ intervals
    def _check_interval(self, alpha):
        """Validate an interval request before any forward pass."""
        if not (isinstance(alpha, (float, int, np.floating)) and 0.0 < alpha < 1.0):
            raise ValueError(f"alpha must be a number in (0, 1); got {alpha!r}.")
        check_is_fitted(self, "net_")
        if not self.bootstrap:
            raise ValueError(
                f"Intervals need bootstrap members; this {type(self).__name__} was fitted with "
                "bootstrap=False. Refit with bootstrap=True (and n_ensemble=20, say).")

    @staticmethod
    def _interval(members, alpha):
        """Normal interval over bootstrap members: mean -/+ t_{M-1, 1-alpha/2} * sd."""
        from scipy import stats

        m = members.shape[0]
        center = members.mean(axis=0)
        half = stats.t.ppf(1.0 - alpha / 2.0, df=m - 1) * members.std(axis=0, ddof=1)
        return center - half, center + half

    def effect_interval(self, X, T0=None, T1=None, alpha=0.05):
        """Confidence interval of :meth:`effect` at level ``1 - alpha``, per row.

        The members of a ``bootstrap=True`` model are fitted on Poisson(1) resamplings of the
        training rows, so their spread estimates the sampling spread of the estimate. The
        interval is normal with the members' standard deviation and a Student quantile with
        ``n_ensemble - 1`` degrees of freedom (the spread is itself estimated from M
        members): ``mean -/+ t_{M-1, 1-alpha/2} * sd``. It covers sampling variability only;
        the bias of the network (confounding it has not removed, extrapolation) is not in it.

        Returns
        -------
        lower, upper : ndarray of shape (n,), or Series when ``X`` is a DataFrame
        """
        self._check_interval(alpha)
        members = self._member_effect(self._standardize(X), T0, T1)
        lower, upper = self._interval(members, alpha)
        return self._wrap(X, lower), self._wrap(X, upper)

    def const_marginal_effect_interval(self, X, alpha=0.05):
        """Interval of :meth:`const_marginal_effect` (every treated arm against control):
        ``(lower, upper)`` of shape (n,) for two arms, (n, K-1) for more. See
        :meth:`effect_interval` for the method."""
        self._check_interval(alpha)
        members = self._effects(self._member_outcomes(self._standardize(X)))
        return self._interval(members, alpha)

    def ate_interval(self, X=None, T0=None, T1=None, alpha=0.05):
        """Interval of :meth:`ate`, from the members' average effects (see
        :meth:`effect_interval`); ``X=None`` means the training data. Returns
        ``(lower, upper)``, floats for two arms (arrays of K-1 against control with more arms
        and ``X=None``)."""
        self._check_interval(alpha)
        if X is None:
            if T0 is not None or T1 is not None:
                raise ValueError("Pass X to compute the ATE between non-default arms.")
            lower, upper = self._interval(self._train_ate_members_, alpha)
        else:
            members = self._member_effect(self._standardize(X), T0, T1).mean(axis=1)
            lower, upper = self._interval(members, alpha)
        if np.ndim(lower) == 0:
            return float(lower), float(upper)
        return lower, upper

    def ate(self, X=None, T0=None, T1=None):
        """Average effect over ``X`` (default: the training data)."""
        if X is None:
            check_is_fitted(self, "net_")
            if T0 is None and T1 is None:
                return self._train_ate_ if np.ndim(self._train_ate_) else float(self._train_ate_)
            raise ValueError("Pass X to compute the ATE between non-default arms.")
        return float(np.mean(self.effect(X, T0, T1)))

    def score(self, X, t, y=None, sample_weight=None):
        """R^2 of the factual predictions (higher is better). ``score(X, ty)`` or
        ``score(X, t, y)``."""
        if y is None:
            t, y = split_two_column_target(t)
        Xv = self._validate_X(X)
        t, y = check_treatment_outcome(t, y, Xv.shape[0])
        idx = np.array([self._arm_index(v, "t") for v in t])
        out = self._forward((Xv - self.x_mean_) / self.x_scale_)
        return float(r2_score(y, out[np.arange(len(idx)), idx], sample_weight=sample_weight))

    def _wrap(self, X, values, columns=None):
        if isinstance(X, pd.DataFrame):
            if values.ndim == 1:
                return pd.Series(values, index=X.index, name="effect")
            return pd.DataFrame(values, index=X.index, columns=columns)
        return values

    # ------------------------------------------------------------ persistence
    def save(self, path):
        """Store parameters and weights in one file readable by :func:`load`.

        No pickle: the file holds tensors, numbers and strings only, read back with
        ``torch.load(weights_only=True)``.
        """
        check_is_fitted(self, "net_")
        params = self.get_params(deep=False)
        bad = {k: type(v).__name__ for k, v in params.items()
               if not isinstance(v, (str, int, float, bool, type(None)))}
        if bad:
            raise ValueError(f"save() stores plain parameters only; these are objects: {bad}. "
                             "Use pickle/joblib for estimators with object parameters.")
        state = {
            "format": "causalmim-2",
            "class": type(self).__name__,
            "params_json": json.dumps(params),
            "classes_json": json.dumps(self.classes_.tolist()),
            "feature_names_json": json.dumps(
                None if not hasattr(self, "feature_names_in_") else list(self.feature_names_in_)),
            "x_mean": torch.as_tensor(self.x_mean_), "x_scale": torch.as_tensor(self.x_scale_),
            "y_mean": float(self.y_mean_), "y_scale": float(self.y_scale_),
            "train_ate": torch.as_tensor(np.asarray(self._train_ate_, dtype=np.float64)),
            "train_ate_members": torch.as_tensor(np.asarray(self._train_ate_members_,
                                                            dtype=np.float64)),
            "best_epochs": torch.as_tensor(np.asarray(self.best_epochs_, dtype=np.int64)),
            "module": {k: v.cpu() for k, v in self.net_.module_.state_dict().items()},
            "critic": {k: v.cpu() for k, v in self.net_.critic_.state_dict().items()},
        }
        if hasattr(self, "factor_importances_"):
            state["factor_importances"] = torch.tensor(self.factor_importances_.to_numpy())
        torch.save(state, os.fspath(path))

    @classmethod
    def load(cls, path):
        """Load an estimator written by :meth:`save`."""
        return load(path)


def _assign(est, local_vars):
    """``__init__`` body shared by the estimators: assign every argument, route ``**kwargs``."""
    kwargs = local_vars.pop("kwargs")
    for name, value in local_vars.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)
    est._set_routed(kwargs)


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
                 outcome="continuous", control=None, device="auto", random_state=None,
                 n_ensemble=1, bootstrap=False, verbose=0, callbacks=None, **kwargs):
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
    balance_weight : float
        Weight of the balance penalty (alpha).{common}
{attrs}
    """

    def __init__(self, *, balance_penalty="wasserstein", balance_weight=1.0, rep_units=200,
                 rep_layers=2, head_units=100, head_layers=2, activation="elu", dropout=0.0,
                 learning_rate=3e-4, weight_decay=1e-4, batch_size=128,
                 epoch_size=10_000, max_epochs=500,
                 validation_fraction=0.2, patience=40, outcome="continuous", control=None,
                 device="auto", random_state=None, n_ensemble=1, bootstrap=False, verbose=0,
                 callbacks=None, **kwargs):
        _assign(self, locals())

    def _penalty_terms(self):
        return [("balance", "phi", "t", self.balance_weight, self.balance_penalty, "balance")]


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

    def __init__(self, *, propensity_weight=1.0, targeted_regularization=False,
                 targeted_weight=1.0, rep_units=200, rep_layers=2, head_units=100,
                 head_layers=2, activation="elu", dropout=0.0, learning_rate=3e-4,
                 weight_decay=1e-4, batch_size=128,
                 epoch_size=10_000, max_epochs=500, validation_fraction=0.2,
                 patience=40, outcome="continuous", control=None, device="auto",
                 random_state=None, n_ensemble=1, bootstrap=False, verbose=0, callbacks=None,
                 **kwargs):
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


class _DisentangledMixin:
    """Factor importances for models with instrumental/confounding/adjustment factors."""

    _factor_names = ("gamma", "delta", "upsilon")

    def _factor_importances(self, Xs, max_rows=2000):
        """Mean absolute input gradient of each factor's norm (summed over the members), per
        feature; columns sum to 1."""
        imp = self._factor_gradients(self.net_.module_, Xs[:max_rows])
        index = (self.feature_names_in_ if hasattr(self, "feature_names_in_")
                 else [f"x{i}" for i in range(Xs.shape[1])])
        return pd.DataFrame(imp, index=pd.Index(index, name="feature"),
                            columns=[FACTOR_LABELS[f] for f in self._factor_names])

    def _factor_gradients(self, module, Xs):
        device = next(module.parameters()).device
        module.eval()
        x = torch.as_tensor(Xs, dtype=torch.float32, device=device).requires_grad_()
        factors = module(x)["factors"]
        cols = []
        for name in self._factor_names:
            (grad,) = torch.autograd.grad(factors[name].pow(2).sum(), x, retain_graph=True)
            cols.append(grad.abs().mean(0).cpu().numpy())
        imp = np.stack(cols, axis=1).astype(np.float64)
        return imp / np.clip(imp.sum(axis=0, keepdims=True), 1e-12, None)

    def plot_factors(self, ax=None, top=None):
        """Heatmap of ``factor_importances_`` (features x factors); returns the Axes.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        top : int, optional
            Show only the ``top`` features by total importance.
        """
        from .metrics import _pyplot

        check_is_fitted(self, "factor_importances_")
        plt = _pyplot()
        imp = self.factor_importances_
        if top is not None:
            imp = imp.loc[imp.sum(axis=1).sort_values(ascending=False).index[:top]]
        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 0.25 * len(imp) + 1.5))
        im = ax.imshow(imp.to_numpy(), aspect="auto", cmap="viridis")
        ax.set_xticks(range(imp.shape[1]), imp.columns, rotation=30, ha="right")
        ax.set_yticks(range(len(imp)), imp.index)
        ax.set_title("How strongly each feature feeds each factor")
        ax.figure.colorbar(im, ax=ax, label="share of the factor's input gradient")
        return ax


class DRCFRRegressor(_DisentangledMixin, _BaseCausalEstimator):
    """DR-CFR: instrumental (Gamma), confounding (Delta) and adjustment (Upsilon) factors
    (Hassanpour and Greiner, ICLR 2020).

    Propensity head on (Gamma, Delta); one outcome head per arm on (Delta, Upsilon). Loss:
    importance-weighted factual loss (CFR-ISW weights from the learned propensity) +
    ``propensity_weight * CE`` + ``balance_weight * D(Upsilon, t)``.

    Parameters
    ----------
    balance_penalty : str, class or Penalty instance
        Dependence measure between the adjustment factor and the treatment.
    balance_weight : float
    propensity_weight : float
    importance_weighting : bool
        Weight the factual loss by 1 + [P(t)/(1-P(t))] [(1-pi(t|x))/pi(t|x)] (normalized to
        mean 1 in each batch, learned propensity clipped to [0.02, 0.98]).{common}
{attrs}
    factor_importances_ : DataFrame
        Features x (instrumental, confounding, adjustment): each factor's mean absolute input
        gradient per feature, each column summing to 1.
    """

    def __init__(self, *, balance_penalty="mmd", balance_weight=1.0, propensity_weight=1.0,
                 importance_weighting=False, rep_units=100, rep_layers=2, head_units=100,
                 head_layers=2, activation="elu", dropout=0.0, learning_rate=3e-4,
                 weight_decay=1e-4, batch_size=128,
                 epoch_size=10_000, max_epochs=500, validation_fraction=0.2,
                 patience=40, outcome="continuous", control=None, device="auto",
                 random_state=None, n_ensemble=1, bootstrap=False, verbose=0, callbacks=None,
                 **kwargs):
        _assign(self, locals())

    def _architecture(self):
        return {"factors": self._factor_names, "outcome_inputs": ("delta", "upsilon"),
                "propensity_inputs": ("gamma", "delta")}

    def _loss_config(self):
        return {"propensity_weight": self.propensity_weight,
                "importance_weighting": bool(self.importance_weighting)}

    def _penalty_terms(self):
        return [("balance", "upsilon", "t", self.balance_weight, self.balance_penalty,
                 "balance")]


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

    Parameters
    ----------
    mi_penalty : str, class or Penalty instance
        Estimator of the mutual information between factor pairs (see
        :data:`causalmim.penalties.PENALTIES`); its constructor parameters are routed as
        ``critic__<name>`` (e.g. ``critic__hidden=64``).
    mi_weight : float
        Weight of the summed pairwise MI estimates.
    critic_lr : float
        Learning rate of the critics' own Adam optimizer.
    critic_steps : int
        Critic updates per network update.
    trunk_units, trunk_layers : int
        The shared trunk (0 layers: factor networks read X directly).
    balance_penalty : str, class or Penalty instance
        Dependence measure between the adjustment factor and the treatment; its constructor
        parameters are routed as ``balance__<name>``.
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

    def __init__(self, *, mi_penalty="vclub_s", mi_weight=0.001, critic_lr=1e-3, critic_steps=1,
                 trunk_units=100, trunk_layers=1, balance_penalty="mmd", balance_weight=1.0,
                 propensity_weight=1.0, importance_weighting=False, rep_units=100,
                 rep_layers=2, head_units=100, head_layers=2, activation="elu", dropout=0.1,
                 learning_rate=3e-4, weight_decay=1e-4, batch_size=128,
                 epoch_size=10_000, max_epochs=500,
                 validation_fraction=0.2, patience=40, outcome="continuous", control=None,
                 device="auto", random_state=None, n_ensemble=1, bootstrap=False, verbose=0,
                 callbacks=None, **kwargs):
        _assign(self, locals())

    def _architecture(self):
        return dict(super()._architecture(), trunk_units=self.trunk_units,
                    trunk_layers=self.trunk_layers)

    def _loss_config(self):
        return dict(super()._loss_config(), critic_lr=self.critic_lr,
                    critic_steps=self.critic_steps)

    def _penalty_terms(self):
        pairs = [("gamma", "delta"), ("delta", "upsilon"), ("gamma", "upsilon")]
        return super()._penalty_terms() + [
            (f"mi_{a}_{b}", a, b, self.mi_weight, self.mi_penalty, "critic") for a, b in pairs]


_ESTIMATORS = (TARNetRegressor, CFRNetRegressor, DragonNetRegressor, DRCFRRegressor,
               CausalMIMRegressor)
for _cls in _ESTIMATORS:
    _cls.__doc__ = _cls.__doc__.format(common=_COMMON_DOC.rstrip(), attrs=_ATTRS_DOC.rstrip())


def load(path):
    """Load a causalmim estimator written by ``save(path)`` without unpickling code."""
    state = torch.load(os.fspath(path), weights_only=True, map_location="cpu")
    if state.get("format") == "causalmim-1":
        raise ValueError(f"{path} was written by causalmim 0.1, whose ensembles were separate "
                         "networks; refit the model and save it again.")
    if state.get("format") != "causalmim-2":
        raise ValueError(f"{path} is not a causalmim estimator file.")
    classes = {c.__name__: c for c in _ESTIMATORS}
    est = classes[state["class"]](**json.loads(state["params_json"]))
    est.classes_ = np.asarray(json.loads(state["classes_json"]))
    names = json.loads(state["feature_names_json"])
    if names is not None:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    est.x_mean_ = state["x_mean"].numpy()
    est.x_scale_ = state["x_scale"].numpy()
    est.n_features_in_ = len(est.x_mean_)
    est.y_mean_, est.y_scale_ = state["y_mean"], state["y_scale"]
    ate = state["train_ate"].numpy()
    est._train_ate_ = ate if ate.ndim else float(ate)
    shares = np.full(len(est.classes_), 1.0 / len(est.classes_))
    net = est._build_net(est.n_features_in_, shares)
    net.initialize()
    net.module_.load_state_dict(state["module"])
    net.critic_.load_state_dict(state["critic"])
    est.net_ = net
    est.history_ = net.history
    est._train_ate_members_ = state["train_ate_members"].numpy()
    est.best_epochs_ = state["best_epochs"].numpy()
    if "factor_importances" in state:
        index = names if names is not None else [f"x{i}" for i in range(est.n_features_in_)]
        est.factor_importances_ = pd.DataFrame(
            state["factor_importances"].numpy(), index=pd.Index(index, name="feature"),
            columns=[FACTOR_LABELS[f] for f in est._factor_names])
    return est

