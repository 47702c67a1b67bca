"""Optuna plumbing of :func:`causalmim.tuning.tune`: storages with a heartbeat, samplers by
name, and the data checks run before the first trial."""

from __future__ import annotations

import time
import warnings

import numpy as np
import optuna

from ._validation import check_features, check_treatment_outcome, split_two_column_target

# RDB storages: a heartbeat marks the trials of a killed worker as failed after the grace
# period (checked whenever a worker starts a trial).
_HEARTBEAT_INTERVAL = 60
_GRACE_PERIOD = 180
# A trial failed that way runs again once, with the same parameters, in the next worker.
_MAX_RETRY = 1



def _retry_stale_trials():
    """The RDBStorage argument that reruns a killed worker's trial once (Optuna >= 5 renamed
    it; the older name still works there with a FutureWarning)."""
    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):
        return {"heartbeat_stale_trial_callback":
                optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=_MAX_RETRY)}
    return {"failed_trial_callback": optuna.storages.RetryFailedTrialCallback(
        max_retry=_MAX_RETRY)}


def _describe_url(url):
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for the message
        return "<unparsable URL>"


def _open_storage(storage):
    """An Optuna storage for ``storage`` (None: in memory), or a ValueError saying why not."""
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str) or not storage:
        raise ValueError(
            "storage must be None (in memory), a database URL such as 'sqlite:///study.db' or "
            f"'postgresql://user:password@host/db', or an optuna storage; got {storage!r}"
        )
    engine_kwargs = {}
    if storage.startswith("sqlite"):
        # wait for the lock instead of failing when several workers write at once
        engine_kwargs = {"connect_args": {"timeout": 60}}
    last = None
    for attempt in range(3):  # workers that start together may race to create the tables
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    storage,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=_HEARTBEAT_INTERVAL,
                    grace_period=_GRACE_PERIOD,
                    **_retry_stale_trials(),
                )
        except ImportError as exc:
            raise ValueError(
                f"cannot open the Optuna storage {_describe_url(storage)!r}: a database driver "
                f"is missing ({exc})"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises many kinds; re-raised below
            last = exc
            time.sleep(0.1 * (attempt + 1))
    raise ValueError(
        f"cannot open the Optuna storage {_describe_url(storage)!r} (is the URL right, the "
        f"folder or server reachable, the database created?): {type(last).__name__}: {last}"
    ) from last


def _check_data(X, t, y):
    """The checks of the estimators' ``fit`` (finite numeric X, t and y of matching lengths,
    two arms), run once before the first trial; returns ``t``, ``y`` and the target ``[t, y]``.
    """
    if y is None:
        t, y = split_two_column_target(t)
    n = len(X) if hasattr(X, "__len__") else np.asarray(X).shape[0]
    t_len = len(t) if hasattr(t, "__len__") else None
    y_len = len(y) if hasattr(y, "__len__") else None
    if t_len != n or y_len != n:
        raise ValueError(
            f"X, t and y must have the same number of rows; got {n}, {t_len} and {y_len}"
        )
    check_features(X, min_samples=2)
    t, y = check_treatment_outcome(t, y, n)
    if t.dtype.kind in "biuf":
        ty = np.column_stack([t, y])
    else:  # arm labels of any type: an object array keeps them
        ty = np.empty((n, 2), dtype=object)
        ty[:, 0], ty[:, 1] = t, y
    return t, y, ty


#: Samplers by name for ``tune(sampler=...)``; each is built with the tuning seed.
SAMPLERS = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "cmaes": optuna.samplers.CmaEsSampler,
    "qmc": optuna.samplers.QMCSampler,
}


def _make_sampler(sampler, seed):
    """An Optuna sampler from a name of :data:`SAMPLERS` (seeded), an instance or None (TPE)."""
    if sampler is None:
        sampler = "tpe"
    if isinstance(sampler, str):
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; use one of {sorted(SAMPLERS)} or an "
                             "optuna.samplers.BaseSampler instance")
        if sampler == "cmaes":
            try:
                import cmaes  # noqa: F401
            except ImportError as exc:
                raise ValueError("sampler='cmaes' needs the cmaes package: pip install cmaes "
                                 "(or causalmim[tuning])") from exc
        with warnings.catch_warnings():  # QMC is "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return SAMPLERS[sampler](seed=seed)
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, an optuna sampler or None; "
                     f"got {sampler!r}")
