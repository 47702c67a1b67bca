"""``save``/``load``: one file of tensors, numbers and strings, read without unpickling code."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted
from skorch.history import History

from ._inspection import FACTOR_LABELS
from ._validation import check_device

FORMAT = "causalmim-2"
_REQUIRED = ("class", "params_json", "classes_json", "feature_names_json", "x_mean", "x_scale",
             "y_mean", "y_scale", "train_ate", "train_ate_members", "best_epochs", "module",
             "critic")

#: Every public estimator class by name; filled by ``_BaseCausalEstimator.__init_subclass__``.
REGISTRY = {}


def _plain(value):
    """JSON fallback for numpy scalars and arrays in the history."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def save_estimator(est, path):
    """Write a fitted estimator to ``path`` (see ``_BaseCausalEstimator.save``)."""
    check_is_fitted(est, "net_")
    params = est.get_params(deep=False)
    bad = {k: type(v).__name__ for k, v in params.items()
           if not isinstance(v, (str, int, float, bool, type(None), dict))
           or (isinstance(v, dict) and not _json_ok(v))}
    if bad:
        raise ValueError(f"save() stores plain parameters only; these are objects: {bad}. "
                         "Use pickle/joblib for estimators with object parameters.")
    state = {
        "format": FORMAT,
        "class": type(est).__name__,
        "params_json": json.dumps(params),
        "classes_json": json.dumps(est.classes_.tolist()),
        "feature_names_json": json.dumps(
            None if not hasattr(est, "feature_names_in_") else list(est.feature_names_in_)),
        "history_json": json.dumps(list(est.history_), default=_plain),
        "sensitive_json": json.dumps(
            [getattr(est, "sensitive_kind_", None),
             None if getattr(est, "sensitive_groups_", None) is None
             else np.asarray(est.sensitive_groups_).tolist()], default=_plain),
        "x_mean": torch.as_tensor(est.x_mean_), "x_scale": torch.as_tensor(est.x_scale_),
        "y_mean": float(est.y_mean_), "y_scale": float(est.y_scale_),
        "train_ate": torch.as_tensor(np.asarray(est._train_ate_, dtype=np.float64)),
        "train_ate_members": torch.as_tensor(np.asarray(est._train_ate_members_,
                                                        dtype=np.float64)),
        "best_epochs": torch.as_tensor(np.asarray(est.best_epochs_, dtype=np.int64)),
        "module": {k: v.cpu() for k, v in est.net_.module_.state_dict().items()},
        "critic": {k: v.cpu() for k, v in est.net_.critic_.state_dict().items()},
    }
    if hasattr(est, "factor_importances_"):
        state["factor_importances"] = torch.tensor(est.factor_importances_.to_numpy())
    torch.save(state, os.fspath(path))


def _json_ok(value):
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True


def _read(path):
    try:
        state = torch.load(os.fspath(path), weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises several types for files it cannot read
        raise ValueError(f"{path} is not a causalmim estimator file: torch.load could not read "
                         f"it ({type(exc).__name__}: {str(exc)[:200]}).") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a causalmim estimator file.")
    if state.get("format") == "causalmim-1":
        raise ValueError(f"{path} was written by causalmim 0.1, whose ensembles were separate "
                         "networks; refit the model and save it again.")
    missing = [k for k in _REQUIRED if k not in state]
    if state.get("format") != FORMAT or missing:
        raise ValueError(f"{path} is not a causalmim estimator file"
                         + (f" (missing {missing})." if state.get("format") == FORMAT else "."))
    if state["class"] not in REGISTRY:
        raise ValueError(f"{path} holds a {state['class']!r}, which this version of causalmim "
                         f"does not know; known estimators: {sorted(REGISTRY)}.")
    return state


def load(path, device=None):
    """Load a causalmim estimator written by ``save(path)`` without unpickling code.

    Parameters
    ----------
    path : str or path-like
    device : str, optional
        Where to put the network: ``None`` (default) loads it on the CPU, whatever device it
        was trained on, so a model fitted on a GPU machine loads anywhere; ``"auto"``,
        ``"cuda"``, ... as in the estimators. The estimator's ``device`` parameter is set to
        the device used.
    """
    state = _read(path)
    device = check_device("cpu" if device is None else device)
    params = json.loads(state["params_json"])
    params["device"] = device
    # Files written before 0.2 hold routed parameters as critic__x / balance__x keys.
    routed = {k: params.pop(k) for k in list(params) if "__" in k}
    est = REGISTRY[state["class"]](**params)
    if routed:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            est.set_params(**routed)
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
    kind, groups = json.loads(state.get("sensitive_json", "[null, null]"))
    est.sensitive_kind_ = kind
    est.sensitive_groups_ = None if groups is None else np.asarray(groups)
    shares = np.full(len(est.classes_), 1.0 / len(est.classes_))
    net = est._build_net(est.n_features_in_, shares)
    net.initialize()
    net.module_.load_state_dict(state["module"])
    net.critic_.load_state_dict(state["critic"])
    net.history = History(json.loads(state.get("history_json", "[]")))
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
