"""Hyper-parameter tuning with Optuna, scored by observed-data criteria.

:func:`tune` runs an Optuna study over a search space, scoring each candidate by cross-validation
with a criterion of :mod:`causalmim.model_selection` (none of which looks at a counterfactual
outcome), prunes poor trials from their per-epoch validation loss, and refits the best candidate
on all the data.

**Search spaces are data**: a dict mapping a parameter name to either an Optuna distribution or
a tuple

* ``("float", low, high)`` or ``("float", low, high, {"log": True})`` (or ``{"step": s}``),
* ``("int", low, high)`` or ``("int", low, high, {"log": True})`` (or ``{"step": s}``),
* ``("categorical", [choice, ...])``.

:data:`SEARCH_SPACES` holds the defaults, keyed by estimator class name; :func:`get_search_space`
turns a space into Optuna distributions (which ``optuna_integration.OptunaSearchCV`` accepts as
``param_distributions``) after checking each name against the estimator's parameters.

**Storage.** By default a study lives in memory. With ``storage="sqlite:///study.db"`` (a file,
no server) it is saved as it runs: call :func:`tune` again with the same storage and study name
and it continues, keeping every finished trial, until the study holds ``n_trials`` finished
trials. Several worker processes can share one storage: start the same :func:`tune` call in each
(with ``random_state=None`` or a different ``random_state`` per worker, so that they do not
propose the same first candidates). For workers on several machines, use a database server that
they all reach, e.g. ``storage="postgresql://user:password@host:5432/dbname"`` (needs a
PostgreSQL driver: ``pip install "causalmim[postgres]"`` installs psycopg 3, which SQLAlchemy 2.1
uses for ``postgresql://``; with psycopg2, write ``postgresql+psycopg2://``; any SQLAlchemy URL
that Optuna's ``RDBStorage`` accepts works); SQLite is
for workers on one machine (one file, locked per write).

Examples
--------
>>> from causalmim.tuning import get_search_space, SEARCH_SPACES
>>> SEARCH_SPACES["CFRNetRegressor"]["balance_weight"]
('float', 0.001, 10.0, {'log': True})
"""

from __future__ import annotations

import logging
import math
import os
import socket
import zlib
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import _safe_indexing, check_random_state

from ._tuning_support import SAMPLERS, _check_data, _make_sampler, _open_storage
from .model_selection import CRITERIA, get_criterion

__all__ = [
    "SAMPLERS",
    "DEFAULT_CRITERION",
    "SEARCH_SPACES",
    "TuningResult",
    "get_search_space",
    "tune",
]

logger = logging.getLogger(__name__)

#: The criterion :func:`tune` uses by default: the nearest-neighbour PEHE, which ranked tuning
#: candidates closest to the true PEHE and gave the lowest error relative to the defaults on
#: IHDP (``benchmarks/tuning.py``, ``benchmarks/results/tuning.md``; the margin over the other
#: criteria is within noise). Prefer ``"dr"`` with many irrelevant covariates or poor overlap.
DEFAULT_CRITERION = "nn_pehe"

# ----------------------------------------------------------------------------- search spaces
_NETWORK = {
    "learning_rate": ("float", 1e-4, 1e-2, {"log": True}),
    "weight_decay": ("float", 1e-6, 1e-2, {"log": True}),
    "rep_units": ("int", 32, 256, {"log": True}),
    "rep_layers": ("int", 1, 3),
    "head_units": ("int", 16, 128, {"log": True}),
    "head_layers": ("int", 1, 3),
    "batch_size": ("categorical", [32, 64, 128]),
}
_BALANCE = {"balance_weight": ("float", 1e-3, 10.0, {"log": True})}
_PROPENSITY = {"propensity_weight": ("float", 0.1, 10.0, {"log": True})}

#: Default search spaces, keyed by estimator class name (a subclass uses its nearest ancestor's).
SEARCH_SPACES = {
    "TARNetRegressor": {**_NETWORK},
    "CFRNetRegressor": {**_NETWORK, **_BALANCE},
    "DragonNetRegressor": {
        **_NETWORK,
        **_PROPENSITY,
        "targeted_regularization": ("categorical", [False, True]),
        "targeted_weight": ("float", 0.01, 10.0, {"log": True}),
    },
    "DRCFRRegressor": {**_NETWORK, **_BALANCE, **_PROPENSITY},
    "CausalMIMRegressor": {
        **_NETWORK,
        **_BALANCE,
        **_PROPENSITY,
        "mi_weight": ("float", 1e-3, 1.0, {"log": True}),
    },
}

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_SPACE_FORMS = (
    '("float", low, high[, {"log": True} or {"step": s}]), '
    '("int", low, high[, {"log": True} or {"step": s}]), ("categorical", [choices]) '
    "or an optuna.distributions object"
)
def _to_distribution(name, spec):
    if isinstance(spec, BaseDistribution):
        return spec
    if not isinstance(spec, (tuple, list)) or not spec or not isinstance(spec[0], str):
        raise ValueError(f"search space entry {name!r}: {spec!r} is not one of {_SPACE_FORMS}")
    kind, args = spec[0].lower(), list(spec[1:])
    try:
        if kind == "categorical":
            if len(args) != 1 or not isinstance(args[0], (list, tuple)) or not args[0]:
                raise ValueError("expected ('categorical', [choice, ...])")
            return CategoricalDistribution(list(args[0]))
        if kind in ("float", "int"):
            options = args.pop() if args and isinstance(args[-1], Mapping) else {}
            if len(args) != 2:
                raise ValueError(f"expected ({kind!r}, low, high[, options])")
            unknown = set(options) - {"log", "step"}
            if unknown:
                raise ValueError(f"unknown options {sorted(unknown)} (valid: 'log', 'step')")
            if kind == "float":
                return FloatDistribution(float(args[0]), float(args[1]), **options)
            return IntDistribution(int(args[0]), int(args[1]), **options)
        raise ValueError(f"unknown kind {spec[0]!r} (valid: 'float', 'int', 'categorical')")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"search space entry {name!r}: {spec!r}: {exc}") from None


def _example_value(dist):
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[0]
    return dist.low


def get_search_space(estimator, search_space=None):
    """Return a search space as Optuna distributions, checked against ``estimator``.

    Parameters
    ----------
    estimator : estimator
        The estimator whose parameters are searched.
    search_space : dict, default=None
        ``{parameter: spec}`` with ``spec`` an Optuna distribution or a tuple (see the module
        docstring). ``None``: the default for the estimator's class from :data:`SEARCH_SPACES`.

    Returns
    -------
    dict of str to optuna.distributions.BaseDistribution
        Usable as ``param_distributions`` of ``optuna_integration.OptunaSearchCV``.

    Raises
    ------
    ValueError
        When there is no default space for the estimator, when an entry is malformed, or when a
        parameter is not one the estimator has (the message lists the valid ones).

    Examples
    --------
    >>> from sklearn.linear_model import Ridge
    >>> get_search_space(Ridge(), {"alpha": ("float", 1e-3, 1e3, {"log": True})})
    {'alpha': FloatDistribution(high=1000.0, log=True, low=0.001, step=None)}
    """
    if search_space is None:
        for cls in type(estimator).__mro__:
            if cls.__name__ in SEARCH_SPACES:
                search_space = SEARCH_SPACES[cls.__name__]
                break
        else:
            raise ValueError(
                f"there is no default search space for {type(estimator).__name__} (defaults "
                f"exist for {sorted(SEARCH_SPACES)}); pass search_space={{parameter: spec}}"
            )
    if not isinstance(search_space, Mapping) or not search_space:
        raise ValueError(
            f"search_space must be a non-empty dict {{parameter: spec}}; got {search_space!r}"
        )
    space = {str(name): _to_distribution(name, spec) for name, spec in search_space.items()}

    valid = estimator.get_params(deep=True)
    unknown = []
    for name, dist in space.items():
        if name in valid:
            continue
        # a routed component parameter (e.g. critic__hidden) that set_params accepts is valid
        try:
            clone(estimator).set_params(**{name: _example_value(dist)})
        except (ValueError, TypeError, AttributeError):
            unknown.append(name)
    if unknown:
        raise ValueError(
            f"the search space names parameters that {type(estimator).__name__} does not have: "
            f"{unknown}; valid parameters are {sorted(valid)}"
        )
    return space


def _suggest(trial, name, dist):
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, log=dist.log, step=dist.step)
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    raise ValueError(f"unsupported distribution for {name!r}: {dist!r}")  # pragma: no cover


# ----------------------------------------------------------------------------- storage
# ----------------------------------------------------------------------------- tuning
class TuningResult(NamedTuple):
    """What :func:`tune` returns; unpacks as ``best_estimator, study = tune(...)``.

    Attributes
    ----------
    best_estimator : estimator or None
        A clone of the estimator with the best parameters, refitted on all the data (None with
        ``refit=False``).
    study : optuna.study.Study
        The study: every trial, its parameters, criterion value (``value``: the mean over folds
        of the score, i.e. of minus the loss), per-fold scores (``user_attrs["fold_scores"]``)
        and, when pruning was possible, per-epoch validation losses of the first fold.
    """

    best_estimator: object
    study: optuna.study.Study

    @property
    def best_params(self):
        """The parameters of the best completed trial."""
        return self.study.best_params

    @property
    def best_score(self):
        """The best mean cross-validated score (minus the criterion's loss)."""
        return self.study.best_value


def _fit(estimator, X, t, y):
    return estimator.fit(X, t, y)


def _seed(random_state):
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return None if random_state is None else int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _criterion_name(scorer):
    for name, cls in CRITERIA.items():
        if type(scorer) is cls:
            return name
    return getattr(scorer, "__name__", type(scorer).__name__)


def tune(
    estimator,
    X,
    t,
    y=None,
    *,
    criterion=DEFAULT_CRITERION,
    search_space=None,
    n_trials=20,
    timeout=None,
    cv=3,
    storage=None,
    study_name=None,
    n_jobs=1,
    pruning=True,
    sampler=None,
    random_state=None,
    show_progress=True,
    refit=True,
    catch=(),
):
    """Tune an effect estimator's hyper-parameters with Optuna, without counterfactuals.

    Each trial draws parameters from ``search_space``, fits a clone of ``estimator`` on each
    cross-validation training fold and scores it on the held-out fold with ``criterion``
    (observed data only); the trial's value is the mean score. Poor trials are pruned from the
    per-epoch validation loss of their first fold. At the end the best parameters are refitted on
    all the data. Everything is checked (criterion, data, search space, storage, an existing
    study's settings) before the first trial runs.

    Parameters
    ----------
    estimator : estimator
        A causalmim estimator (or any estimator with ``fit(X, t, y)``, ``get_params`` and what the
        criterion needs, see :mod:`causalmim.model_selection`). It is not modified.
    X : array-like or DataFrame of shape (n_samples, n_features)
    t : array-like of shape (n_samples,), or (n_samples, 2) when ``y`` is None
        Arm labels, or the two-column target ``[t, y]``.
    y : array-like of shape (n_samples,), default=None
        Observed outcomes.
    criterion : str or callable, default=DEFAULT_CRITERION
        ``"nn_pehe"`` (the default, ``DEFAULT_CRITERION``: best supported by the IHDP tuning
        benchmark), ``"dr"``, ``"r_loss"``, ``"factual"``, or a scorer
        ``scorer(estimator, X, ty) -> float`` (higher is better). Each criterion's assumptions
        are in :mod:`causalmim.model_selection`. A named criterion with nuisance models is seeded
        from the study's fold seed, so that all workers of a study agree.
    search_space : dict, default=None
        ``{parameter: spec}`` (see the module docstring); default ``SEARCH_SPACES`` for the
        estimator's class.
    n_trials : int or None, default=20
        The budget: the number of finished (complete or pruned) trials the study must hold. It
        counts the trials of earlier runs and of other workers on the same storage, so a resumed
        study runs only what is missing. Trials that fail (an exception listed in ``catch``, a NaN
        score) do not count toward it but use up this call's share. With several workers, trials
        that are already running when the budget is reached still finish, so the study can end
        with up to (workers - 1) extra trials. None: no budget (needs ``timeout``).
    timeout : float, default=None
        Stop starting new trials after this many seconds (of this call).
    cv : int or cross-validation splitter, default=3
        An int: stratified (by arm) shuffled K-fold, seeded by ``random_state`` (or, with a
        storage and no ``random_state``, by the study name), so that the folds are the same for
        every run and worker of a study.
    storage : None, str or optuna.storages.BaseStorage, default=None
        None: in memory. A database URL saves the study as it runs and makes it resumable and
        shareable between workers: ``"sqlite:///study.db"`` (a file, one machine) or
        ``"postgresql://user:password@host/db"`` (a server, several machines). Workers send a
        heartbeat: the running trial of a worker that was killed is marked FAILED once it has
        been silent for 3 minutes (seen by the next trial any worker starts) and is run again
        once with the same parameters.
    study_name : str, default=None
        With a storage, the study to create or continue; default
        ``"causalmim-<EstimatorClass>-<criterion>"``.
    n_jobs : int, default=1
        Trials run in parallel threads in this process (see Optuna's ``Study.optimize``); for
        processes, start several workers on one storage.
    pruning : bool or optuna.pruners.BasePruner, default=True
        True: a ``MedianPruner(n_startup_trials=5, n_warmup_steps=10)`` fed, epoch by epoch, the
        internal validation loss (``"valid_loss"``, or ``"train_loss"`` with
        ``validation_fraction=0``) of each trial's first fold through
        ``optuna_integration.SkorchPruningCallback`` (added to the estimator's ``callbacks``).
        That loss includes the propensity cross-entropy of models with a propensity head, so it
        is a guide to prune clearly poor fits, not the selection criterion. False: no pruning.
        Estimators without a ``callbacks`` parameter are not pruned.
    sampler : {"tpe", "random", "cmaes", "qmc"}, optuna.samplers.BaseSampler or None
        A name builds that Optuna sampler seeded from ``random_state`` (offset by the number of
        trials the study already holds, so that a resumed run does not repeat earlier
        candidates); None is ``"tpe"``; an instance is used as it is.
    random_state : int, RandomState or None, default=None
        Seeds the folds, the sampler and the criterion's nuisance models. It does not change
        the estimator's own ``random_state``.
    show_progress : bool, default=True
        Show Optuna's progress bar (tqdm).
    refit : bool, default=True
        Refit the best parameters on all the data.
    catch : tuple of exception types, default=()
        Exceptions in a trial that mark it failed and let the study go on; others stop it.

    Returns
    -------
    TuningResult
        ``(best_estimator, study)``, also with ``best_params`` and ``best_score``.

    Raises
    ------
    ValueError
        Before any trial: an unknown criterion, malformed data, a search-space entry that is
        malformed or names a parameter the estimator lacks, a storage that cannot be opened, an
        existing study created with another estimator, criterion or search space.
    RuntimeError
        When ``refit`` and no trial of the study completed.

    Examples
    --------
    >>> from causalmim import CFRNetRegressor  # doctest: +SKIP
    >>> from causalmim.tuning import tune
    >>> best, study = tune(CFRNetRegressor(), X, t, y, n_trials=30,  # doctest: +SKIP
    ...                    storage="sqlite:///cfr.db", study_name="cfr-ihdp")
    >>> best.predict(X_test)  # doctest: +SKIP
    """
    # ---- everything is checked before the first trial
    seed = _seed(random_state)
    get_criterion(criterion)  # an unknown name: the ValueError lists the valid ones
    t_arr, y_arr, ty = _check_data(X, t, y)
    _make_sampler(sampler, 0)  # an unknown name fails here, before any trial
    arms, counts = np.unique(t_arr, return_counts=True)
    if len(arms) < 2:
        raise ValueError(f"the data hold a single treatment arm ({arms.tolist()})")
    if n_trials is None:
        if timeout is None:
            raise ValueError("give n_trials or timeout (or both)")
    elif not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive integer or None; got {n_trials!r}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be positive or None; got {timeout!r}")
    space = get_search_space(estimator, search_space)
    storage_obj = _open_storage(storage)
    persistent = storage_obj is not None
    crit_name = criterion if isinstance(criterion, str) else _criterion_name(criterion)
    if study_name is None and persistent:
        study_name = f"causalmim-{type(estimator).__name__}-{crit_name}"
    if seed is not None:
        fold_seed = seed
    elif persistent:
        fold_seed = zlib.crc32(study_name.encode())
    else:
        fold_seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    if isinstance(criterion, str):
        cls = CRITERIA[criterion]
        scorer = cls(random_state=fold_seed) if "random_state" in cls().get_params() else cls()
    else:
        scorer = get_criterion(criterion)
    if isinstance(cv, (int, np.integer)):
        if cv < 2:
            raise ValueError(f"cv must be at least 2; got {cv}")
        if counts.min() < cv:
            raise ValueError(
                f"cv={cv} folds stratified by arm need at least {cv} units in each arm; arm "
                f"{arms[np.argmin(counts)]!r} has {counts.min()}"
            )
        cv = StratifiedKFold(int(cv), shuffle=True, random_state=fold_seed % (2**32))
    splits = list(cv.split(np.zeros((len(t_arr), 1)), t_arr))

    params = estimator.get_params()
    if pruning is True:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=10)
    elif pruning is False or pruning is None:
        pruner = optuna.pruners.NopPruner()
    elif isinstance(pruning, optuna.pruners.BasePruner):
        pruner = pruning
    else:
        raise ValueError(f"pruning must be a bool or an optuna pruner; got {pruning!r}")
    prunable = not isinstance(pruner, optuna.pruners.NopPruner) and "callbacks" in params
    if not prunable and not isinstance(pruner, optuna.pruners.NopPruner):
        logger.info("%s has no callbacks parameter: trials are not pruned", type(estimator))
    monitor = "valid_loss" if params.get("validation_fraction", 0) else "train_loss"
    if prunable:
        from optuna_integration import SkorchPruningCallback

    settings = {
        "causalmim:estimator": type(estimator).__name__,
        "causalmim:criterion": crit_name,
        "causalmim:search_space": {
            k: optuna.distributions.distribution_to_json(v) for k, v in sorted(space.items())
        },
    }
    try:
        study = optuna.create_study(
            storage=storage_obj,
            study_name=study_name,
            direction="maximize",
            pruner=pruner,
            load_if_exists=True,
        )
    except Exception as exc:  # noqa: BLE001 - a storage error surfaces here at the latest
        raise ValueError(f"cannot create or load the study {study_name!r}: {exc}") from exc
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise ValueError(f"the study {study.study_name!r} in storage is not a maximization study")
    stored = study.user_attrs
    for key, value in settings.items():
        if key in stored and stored[key] != value:
            raise ValueError(
                f"the study {study.study_name!r} in storage was created with {key.split(':')[1]} "
                f"{stored[key]!r}, not {value!r}; use another study_name (or the same settings)"
            )
    for key, value in settings.items():
        if key not in stored:
            try:
                study.set_user_attr(key, value)
            except Exception:  # noqa: BLE001 - another worker may have set it meanwhile
                if study.user_attrs.get(key) != value:
                    raise

    finished = len(study.get_trials(deepcopy=False, states=_FINISHED))
    sampler_seed = seed
    if seed is not None and len(study.trials):
        sampler_seed = int(np.random.SeedSequence([seed, len(study.trials)]).generate_state(1)[0])
    study.sampler = _make_sampler(sampler, sampler_seed)
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial):
        values = {name: _suggest(trial, name, dist) for name, dist in space.items()}
        trial.set_user_attr("worker", worker)
        scores = []
        for fold, (train, test) in enumerate(splits):
            est = clone(estimator).set_params(**values)
            if prunable and fold == 0:
                callbacks = list(est.get_params()["callbacks"] or [])
                est.set_params(callbacks=[*callbacks, SkorchPruningCallback(trial, monitor)])
            _fit(est, _safe_indexing(X, train), t_arr[train], y_arr[train])
            scores.append(float(scorer(est, _safe_indexing(X, test), ty[test])))
        trial.set_user_attr("fold_scores", scores)
        value = float(np.mean(scores))
        return value if math.isfinite(value) else float("nan")

    # ---- the study
    if n_trials is not None and finished >= n_trials:
        logger.info("study %r already holds %d finished trials", study.study_name, finished)
    else:
        remaining = None if n_trials is None else int(n_trials) - finished
        callbacks = (
            []
            if n_trials is None
            else [optuna.study.MaxTrialsCallback(int(n_trials), states=_FINISHED)]
        )
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=timeout,
            n_jobs=n_jobs,
            catch=catch,
            callbacks=callbacks,
            show_progress_bar=bool(show_progress),
        )

    best = None
    if refit:
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            raise RuntimeError(
                f"no trial of the study {study.study_name!r} completed (all pruned or failed); "
                "nothing to refit"
            )
        best = clone(estimator).set_params(**study.best_params)
        _fit(best, X, t_arr, y_arr)
    return TuningResult(best, study)
