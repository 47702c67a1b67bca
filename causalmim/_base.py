"""The machinery every estimator shares: validate, build the network, train, predict.

Every estimator trains the same network (``causalmim._nn.CausalNetwork``) through the same
skorch engine (``causalmim._engine.CausalNet``); a preset (``causalmim.estimators``) declares
only its parts: which factors exist, which heads read which factors, which loss terms and
dependence penalties carry weight, and its parameters with their constraints.
"""

from __future__ import annotations

import copy
import logging
from numbers import Integral

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import ProgressBar
from torch import nn

from . import _persistence
from ._dr import DoublyRobustMixin
from ._engine import CausalNet, MemberEarlyStopping, eval_chunk, fused_adam_kwargs
from ._fairness import FairnessMixin
from ._members import LoopedPenalty
from ._nn import CausalNetwork
from ._params import ATTRS_DOC, COMMON_CONSTRAINTS, COMMON_DOC, DOC_BLOCKS, split_routed
from ._terms import TermGroup, fusable_groups
from ._validation import (
    check_arms,
    check_device,
    check_features,
    check_sample_weight,
    check_treatment_outcome,
    check_validation_split,
    index_arms,
    split_two_column_target,
)
from .exceptions import TrainingDivergedError

logger = logging.getLogger(__name__)


class _BaseCausalEstimator(DoublyRobustMixin, FairnessMixin, RegressorMixin, BaseEstimator):
    """Common fit/predict logic; subclasses declare their parts in ``_architecture``.

    A subclass whose name does not start with an underscore registers itself (``load`` finds
    it by name), and ``{common}``/``{attrs}`` in its docstring become the shared parameter and
    attribute docs.
    """

    _parameter_constraints: dict = dict(COMMON_CONSTRAINTS)
    #: The network class the preset's ``_architecture`` configures.
    _network = CausalNetwork

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__ and "{common}" in cls.__doc__:
            cls.__doc__ = cls.__doc__.format(common=COMMON_DOC.rstrip(), attrs=ATTRS_DOC.rstrip(),
                                             **DOC_BLOCKS)
        if not cls.__name__.startswith("_"):
            _persistence.REGISTRY[cls.__name__] = cls

    def __init__(self):  # pragma: no cover - subclasses define the signature
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.two_d_labels = True  # fit(X, ty) with ty = [t, y]
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------ routed parameters
    def set_params(self, **params):
        """Set parameters; ``<penalty>__<name>=value`` (e.g. ``mi_penalty__hidden=64``)
        updates the ``<penalty>_params`` dict."""
        plain, routed = split_routed(self, params)
        for prefix, values in routed.items():
            current = plain.get(f"{prefix}_params", getattr(self, f"{prefix}_params"))
            plain[f"{prefix}_params"] = {**(current or {}), **values}
        return super().set_params(**plain) if plain else self

    def _routed_params(self, prefix):
        return dict(getattr(self, f"{prefix}_params", None) or {})

    # ------------------------------------------------------------ architecture hooks
    def _architecture(self):
        """Keyword arguments of ``CausalNetwork`` beyond the shared sizes."""
        return {"factors": ("phi",), "outcome_inputs": ("phi",)}

    def _loss_config(self):
        """Keyword arguments of ``CausalNet`` for the loss terms."""
        return {}

    def _penalty_terms(self):
        """The model's dependence penalties: a list of :class:`causalmim._terms.PenaltyTerm`
        (the fairness term of ``sensitive=`` is added by the base class)."""
        return []

    # ------------------------------------------------------------ validation
    def _check_params(self):
        """Validate every parameter (``_parameter_constraints``) and their combinations."""
        self._validate_params()
        for name, constraints in self._parameter_constraints.items():
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) and any(
                    isinstance(c, Interval) and c.type is Integral for c in constraints):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be an int, not a "
                    f"bool. Got {value!r} instead.")
        if self.bootstrap and self.n_ensemble < 2:
            raise ValueError("bootstrap=True needs at least 2 members to measure a spread; "
                             f"got n_ensemble={self.n_ensemble}. Set n_ensemble=20, say.")
        self._device = check_device(self.device)

    @staticmethod
    def _treatment_and_outcome(t, y):
        """``(t, y)``, ``(ty, None)`` or ``(None, ty)`` (``fit(X, y=ty)``) -> ``(t, y)``."""
        if t is None and y is None:
            raise ValueError("This estimator requires y to be passed, but the target y is None: "
                             "fit needs the treatment and the outcome. Call fit(X, t, y), or "
                             "fit(X, ty) with ty = np.column_stack([t, y]).")
        if t is None:
            return split_two_column_target(y)
        if y is None:
            return split_two_column_target(t)
        return t, y

    def _validate_fit(self, X, t, y, sample_weight):
        t, y = self._treatment_and_outcome(t, y)
        X, names = check_features(X, min_samples=2)
        t, y = check_treatment_outcome(t, y, X.shape[0], binary_outcome=self.outcome == "binary")
        classes, t_index = check_arms(t, self.control)
        check_validation_split(t_index, len(classes), self.validation_fraction)
        w = check_sample_weight(sample_weight, X.shape[0])
        return X, names, classes, t_index, y, w

    @staticmethod
    def _check_scale(values, name):
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"{name} holds values too large to standardize (their mean or standard deviation "
                "overflows float64). Rescale the offending columns (e.g. a log transform) "
                "before fitting.")

    def _validate_X(self, X):
        check_is_fitted(self, "net_")
        X, _ = check_features(X, n_features=self.n_features_in_,
                              estimator_name=type(self).__name__,
                              feature_names=getattr(self, "feature_names_in_", None))
        return X

    # ------------------------------------------------------------ fit
    def fit(self, X, t=None, y=None, sample_weight=None, sensitive=None):
        """Fit the network on observational data.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric covariates (standardized inside the estimator).
        t : array-like of shape (n_samples,), or (n_samples, 2) when ``y`` is None
            Arm labels of any type (two or more arms). When ``y`` is None, ``t`` is the
            two-column target ``[t, y]`` that scikit-learn tools pass.
        y : array-like of shape (n_samples,), optional
            Observed outcome (float, or 0/1 with ``outcome="binary"``). ``fit(X, y=ty)``
            with the two-column target as ``y`` works too.
        sample_weight : array-like of shape (n_samples,), optional
        sensitive : array-like of shape (n_samples,), optional
            A sensitive attribute (group labels, or a continuous column) that the
            representation should not carry; used with ``fairness_weight > 0`` (see
            ``fairness_penalty``), never needed at prediction time.

        Returns
        -------
        self

        Raises
        ------
        TrainingDivergedError
            When the training loss or the fitted predictions are not finite (usually a
            too large ``learning_rate``).
        """
        self._check_params()
        X, names, classes, t_index, y, w = self._validate_fit(X, t, y, sample_weight)
        extra = self._sensitive_columns(sensitive, X.shape[0])
        self.classes_ = classes
        self.n_features_in_ = X.shape[1]
        if names is not None and all(isinstance(n, str) for n in names):
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        with np.errstate(over="ignore", invalid="ignore"):
            self.x_mean_ = X.mean(axis=0)
            self.x_scale_ = X.std(axis=0)
        self.x_scale_[self.x_scale_ == 0] = 1.0
        self._check_scale(np.concatenate([self.x_mean_, self.x_scale_]), "X")
        if self.outcome == "binary":
            self.y_mean_, self.y_scale_ = 0.0, 1.0
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                self.y_mean_ = float(np.average(y, weights=w))
                self.y_scale_ = float(np.sqrt(np.average((y - self.y_mean_) ** 2,
                                                         weights=w))) or 1.0
            self._check_scale([self.y_mean_, self.y_scale_], "y")
        Xs = (X - self.x_mean_) / self.x_scale_
        ys = (y - self.y_mean_) / self.y_scale_
        self._fit(Xs, t_index, ys, w / w.mean(), extra)
        with torch.no_grad():
            members = self._effects(self._member_outcomes(Xs))
        if not np.all(np.isfinite(members)):
            del self.net_
            raise TrainingDivergedError(
                "Training ended with non-finite predictions on the training data. The "
                f"learning rate (learning_rate={self.learning_rate}) is the most likely cause; "
                "try one 10 times smaller.")
        self._train_ate_members_ = members.mean(axis=1)
        self._train_ate_ = self._train_ate_members_.mean(axis=0)
        if hasattr(self, "_factor_importances"):
            self.factor_importances_ = self._factor_importances(Xs)
        return self

    def _build_net(self, n_features, arm_shares, early_stopping=False, shuffle_seed=0):
        n_arms, n_members = len(arm_shares), self.n_ensemble
        module = self._network(
            n_features, n_arms, rep_units=self.rep_units, rep_layers=self.rep_layers,
            head_units=self.head_units, head_layers=self.head_layers,
            activation=self.activation, dropout=self.dropout, n_members=n_members,
            **self._architecture())
        critics, groups = nn.ModuleDict(), []
        n_outcome_inputs = len(self._architecture()["outcome_inputs"])
        for candidate in fusable_groups(self._penalty_terms() + self._fairness_terms()):
            fused = None
            if len(candidate) > 1:  # one critic for the group, if the penalty is batched
                fused = self._member_critic(candidate[0], n_arms, n_outcome_inputs,
                                            n_members * len(candidate))
                if isinstance(fused, LoopedPenalty):
                    fused = None
            if fused is not None:
                group = TermGroup(candidate)
                critics[group.name] = fused
                groups.append(group)
                continue
            for term in candidate:
                group = TermGroup((term,))
                critics[group.name] = self._member_critic(term, n_arms, n_outcome_inputs,
                                                          n_members)
                groups.append(group)
        device = check_device(self.device)
        callbacks = []
        if self.verbose >= 2:
            callbacks.append(("progress", ProgressBar()))
        if early_stopping:
            callbacks.append(("early_stopping", MemberEarlyStopping(self.patience)))
        for i, cb in enumerate(self.callbacks or []):
            callbacks.append((f"user_{i}", cb))
        return CausalNet(
            module, critic=critics, penalty_terms=tuple(groups),
            criterion=nn.MSELoss, optimizer=torch.optim.Adam, lr=self.learning_rate,
            optimizer__weight_decay=self.weight_decay, batch_size=self.batch_size,
            **{f"optimizer__{k}": v for k, v in fused_adam_kwargs(device).items()},
            max_epochs=self.max_epochs, train_split=None, device=device,
            epoch_size=self.epoch_size, ema_decay=self.ema_decay,
            callbacks=callbacks, shuffle_seed=shuffle_seed,
            outcome=self.outcome, arm_shares=tuple(float(s) for s in arm_shares),
            verbose=self.verbose, critic_lr=self.critic_lr, critic_steps=self.critic_steps,
            **self._loss_config())

    def _member_critic(self, term, n_arms, n_outcome_inputs, n_members):
        """The critic of a :class:`~causalmim._terms.PenaltyTerm` for ``n_members`` members."""
        from . import penalties as _penalties
        from ._members import member_penalty

        dim_a = self.rep_units * (n_outcome_inputs if term.a == "outcome" else 1)
        dims = {"factor": {"dim_b": self.rep_units}, "arms": {"n_classes": n_arms},
                "continuous": {"dim_b": 1}}.get(term.partner)
        if dims is None:  # groups of a data column
            dims = {"n_classes": len(self.sensitive_groups_)}
        params = self._routed_params(term.route) if term.route else {}
        spec = term.penalty
        if isinstance(spec, (str, type)):
            def make():
                return _penalties.get_penalty(spec, dim_a=dim_a, **dims, **params)
        elif params:
            raise ValueError(f"{term.route}__* parameters need a penalty given by name, not "
                             "an instance; configure the instance directly.")
        else:  # an instance: each member trains its own copy
            def make():
                return copy.deepcopy(_penalties.get_penalty(spec))
        return member_penalty(make, n_members, dim_a, **dims)

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

    def _fit(self, Xs, t_index, ys, w, extra=None):
        n_arms = len(self.classes_)
        arm_shares = np.bincount(t_index, minlength=n_arms) / len(t_index)
        rng = check_random_state(self.random_state)
        max_seed = np.iinfo(np.int32).max
        torch_seed, shuffle_seed = int(rng.randint(max_seed)), int(rng.randint(max_seed))
        wm, vm = self._member_weights(t_index, w, rng)
        data = {"x": Xs.astype(np.float32), "t": t_index.astype(np.int64), "wm": wm, "vm": vm,
                **(extra or {})}
        device = check_device(self.device)
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

    def _network_output(self, X):
        """The network's whole output dict on ``X`` (evaluation mode, no gradient)."""
        return self._module_output(self._standardize(X))

    def _module_output(self, Xs):
        """:meth:`_network_output` on already standardized rows ``Xs``."""
        module = self.net_.module_
        device = next(module.parameters()).device
        was_training = module.training
        module.eval()
        with torch.no_grad():
            out = module(torch.as_tensor(Xs, dtype=torch.float32, device=device))
        module.train(was_training)
        return out

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

    def _arm_indices(self, T0, T1, n):
        """Column indices of arms ``T0`` (default control) and ``T1`` (default the first
        treated arm) for ``n`` rows: each of length 1 (one label) or n (a label per row)."""
        T0 = self.classes_[0] if T0 is None else T0
        T1 = self.classes_[1] if T1 is None else T1
        i0 = np.ravel(index_arms(np.ravel(T0) if np.ndim(T0) else T0, self.classes_, "T0"))
        i1 = np.ravel(index_arms(np.ravel(T1) if np.ndim(T1) else T1, self.classes_, "T1"))
        for name, idx in (("T0", i0), ("T1", i1)):
            if len(idx) not in (1, n):
                raise ValueError(f"{name} must be one label or one label per row of X.")
        return i0, i1

    def _member_effect(self, Xs, T0, T1):
        """Each member's effect of moving from ``T0`` to ``T1``: (M, n)."""
        out = self._member_outcomes(Xs)
        n = out.shape[1]
        i0, i1 = self._arm_indices(T0, T1, n)
        rows = np.arange(n)
        return out[:, rows, i1] - out[:, rows, i0]

    def effect(self, X, T0=None, T1=None):
        """Effect of moving from arm ``T0`` (default control) to ``T1`` (default the first
        treated arm); ``T0``/``T1`` are labels, or arrays of labels per row. Shape (n,), a
        Series when ``X`` is a DataFrame."""
        return self._wrap(X, self._member_effect(self._standardize(X), T0, T1).mean(axis=0))

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

    def ate(self, X=None, T0=None, T1=None, *, method="plugin", t=None, y=None):
        """Average effect over ``X`` (default: the training data).

        ``method="plugin"``: the mean predicted effect. ``method="aipw"``: the augmented
        inverse-propensity-weighted estimate from the model's own outcome and propensity heads,
        ``mean(mu1 - mu0 + 1[t=T1](y - mu1)/e1 - 1[t=T0](y - mu0)/e0)`` (propensities
        clipped to [0.01, 0.99]) on rows ``X`` with observed arms ``t`` and outcomes ``y``;
        it corrects the plug-in's bias with the residuals (models with a propensity head).
        """
        if method not in ("plugin", "aipw"):
            raise ValueError(f"method must be 'plugin' or 'aipw'; got {method!r}.")
        if method == "aipw":
            check_is_fitted(self, "net_")
            if X is None:
                raise ValueError("method='aipw' needs X, t and y: ate(X, t=t, y=y, "
                                 "method='aipw').")
            return self._aipw_ate(X, t, y, T0, T1)
        if X is None:
            check_is_fitted(self, "net_")
            if T0 is None and T1 is None:
                return self._train_ate_ if np.ndim(self._train_ate_) else float(self._train_ate_)
            raise ValueError("Pass X to compute the ATE between non-default arms.")
        return float(np.mean(self.effect(X, T0, T1)))

    def score(self, X, t=None, y=None, sample_weight=None):
        """R^2 of the factual predictions (higher is better). ``score(X, ty)``,
        ``score(X, y=ty)`` or ``score(X, t, y)``."""
        t, y = self._treatment_and_outcome(t, y)
        Xv = self._validate_X(X)
        t, y = check_treatment_outcome(t, y, Xv.shape[0])
        idx = index_arms(t, self.classes_)
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
        """Store parameters, weights and the training history in one file readable by
        :func:`load`.

        No pickle: the file holds tensors, numbers and strings only, read back with
        ``torch.load(weights_only=True)``.
        """
        _persistence.save_estimator(self, path)

    @classmethod
    def load(cls, path, device=None):
        """Load an estimator written by :meth:`save` (see :func:`causalmim.load`)."""
        return _persistence.load(path, device=device)
