"""Input validation shared by every estimator (one module, as ``sklearn.utils.validation``).

Public methods validate here and then call private hooks; nothing is silently dropped or coerced.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import DataConversionWarning

__all__ = [
    "check_arms",
    "check_device",
    "check_features",
    "check_treatment_outcome",
    "check_sample_weight",
    "check_validation_split",
    "index_arms",
    "split_two_column_target",
]

# A float treatment with more distinct non-integer values than this is taken for a dose.
_MAX_FLOAT_ARMS = 10


def continuous_values(values):
    """The distinct non-integer values of a float column when there are more than
    ``_MAX_FLOAT_ARMS`` of them (a continuous column, not labels), else None."""
    if values.dtype.kind != "f":
        return None
    fractional = np.unique(values[values != np.round(values)])
    return fractional if len(fractional) > _MAX_FLOAT_ARMS else None


def _preview(values, limit=5):
    """``[a, b, c, ...] (N in all)`` for messages about many values."""
    values = list(values)
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}] ({len(values)} in all)"


def _is_frame(X):
    return isinstance(X, pd.DataFrame)


def check_features(X, *, n_features=None, feature_names=None, name="X", min_samples=1,
                   estimator_name="the estimator"):
    """Validate a covariate matrix and return it as a 2-D float64 array.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_features)
    n_features : int, optional
        The number of columns seen in ``fit``; a different count raises.
    feature_names : array of str, optional
        The column names seen in ``fit`` (DataFrames only); a different order raises.
    name : str
        The argument's name for error messages.
    min_samples : int
        Fewer rows raise (``fit`` needs 2: units in two arms).
    estimator_name : str
        The estimator's name for error messages.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    names : ndarray of str or None
        The column names when ``X`` is a DataFrame.
    """
    names = None
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"{name} is a sparse matrix ({type(X).__name__}); causalmim needs dense input. "
            f"Convert it with {name}.toarray() (or keep fewer columns first).")
    if _is_frame(X):
        names = np.asarray([str(c) for c in X.columns], dtype=object)
        bad = [str(c) for c, dt in X.dtypes.items() if not (
            pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt))]
        if bad:
            raise ValueError(
                f"{name} has non-numeric columns {bad}. Encode them first, e.g. with "
                "pandas.get_dummies or sklearn.preprocessing.OneHotEncoder in a Pipeline.")
        arr = X.to_numpy(dtype=np.float64)
    else:
        arr = np.asarray(X)
        _check_not_complex(arr, name)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                       or arr.dtype == bool):
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise type(exc)(
                    f"{name} must be numeric; got dtype {arr.dtype} ({exc}). Encode categorical "
                    "columns first (pandas.get_dummies or OneHotEncoder).") from exc
        arr = arr.astype(np.float64, copy=False)
    if arr.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features); got a 1-D array of length "
            f"{arr.shape[0]}. Reshape your data with {name}.reshape(-1, 1) for a single feature "
            f"or {name}.reshape(1, -1) for a single sample.")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got shape {arr.shape}.")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: 0 feature(s) (shape={arr.shape}) while a minimum "
                         "of 1 is required.")
    if arr.shape[0] < min_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} sample(s) (shape={arr.shape}) while a minimum of "
            f"{min_samples} is required"
            + (": effect estimation needs units in two arms." if min_samples > 1 else "."))
    _check_finite(arr, name)
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} features, but {estimator_name} is expecting "
            f"{n_features} features as input (the columns seen in fit).")
    if feature_names is not None and names is not None and not np.array_equal(
            names, feature_names):
        raise ValueError(
            f"The feature names of {name} differ from those seen in fit: expected "
            f"{list(feature_names)}, got {list(names)}. Pass the same columns in the same order.")
    return arr, names


def _check_not_complex(arr, name):
    if np.iscomplexobj(arr):
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}. Pass real "
                         "numbers (e.g. the real part, or the modulus and the angle as columns).")


def _check_finite(arr, name):
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(arr[tuple(idx)]) else "inf"
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) ({kind} at index "
            f"{tuple(int(i) for i in idx)}). Impute or drop them before fitting, e.g. with "
            "sklearn.impute.SimpleImputer in a Pipeline.")


def _as_1d(v, name):
    if isinstance(v, (pd.Series, pd.Index)):
        v = v.to_numpy()
    elif _is_frame(v):
        if v.shape[1] != 1:
            raise ValueError(f"{name} must be 1-D; got a DataFrame with {v.shape[1]} columns.")
        v = v.iloc[:, 0].to_numpy()
    arr = np.asarray(v)
    if arr.ndim == 2 and arr.shape[1] == 1:
        warnings.warn(f"A column-vector {name} was passed when a 1d array was expected; it is "
                      "used as its single column. Pass a 1-D array, e.g. with ravel().",
                      DataConversionWarning, stacklevel=4)
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,); got shape {arr.shape}.")
    return arr


def split_two_column_target(ty):
    """Split a two-column target ``[t, y]`` (array or DataFrame) into ``t`` and ``y``.

    scikit-learn tools (``Pipeline``, ``GridSearchCV``, ``cross_val_score``) pass one target;
    causalmim estimators accept ``fit(X, ty)`` with the treatment in the first column and the
    outcome in the second.
    """
    if _is_frame(ty):
        if ty.shape[1] != 2:
            raise ValueError(
                f"A single target must be the two-column target [t, y] (two columns, the "
                f"treatment first); got {ty.shape[1]} columns. "
                "Call fit(X, t, y), or pass ty with the treatment first and the outcome second.")
        return ty.iloc[:, 0].to_numpy(), ty.iloc[:, 1].to_numpy()
    arr = np.asarray(ty)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(
            f"A single target must be the two-column target [t, y] (two columns, the treatment "
            f"first); got shape {arr.shape}. "
            "Call fit(X, t, y), or pass ty = np.column_stack([t, y]).")
    return arr[:, 0], arr[:, 1]


def check_treatment_outcome(t, y, n_samples, *, binary_outcome=False):
    """Validate treatment labels and outcomes for ``n_samples`` rows.

    Returns the treatment labels (1-D, original dtype) and the outcome as float64.
    """
    t = _as_1d(t, "t")
    if len(t) != n_samples:
        raise ValueError(f"X has {n_samples} rows but t has {len(t)}; they must match.")
    if t.dtype.kind in "fc":
        _check_finite(t.astype(np.float64), "t")
    elif t.dtype == object and pd.isna(t).any():
        raise ValueError("t contains missing values (None/NaN); every unit needs an arm label.")
    if y is None:
        return t, None
    y = _as_1d(y, "y")
    _check_not_complex(y, "y")
    if len(y) != n_samples:
        raise ValueError(f"X has {n_samples} rows but y has {len(y)}; they must match.")
    try:
        y = y.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y must be numeric; got dtype {y.dtype}.") from exc
    _check_finite(y, "y")
    if binary_outcome and not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(
            "outcome='binary' needs y in {0, 1}; got other values. Use outcome='continuous' "
            "for real-valued outcomes.")
    return t, y


def check_arms(t, control=None, *, min_units=2):
    """Return the sorted arm labels (control first) and the integer arm index of each row."""
    fractional = continuous_values(t)
    if fractional is not None:
        raise ValueError(
            f"t looks continuous: {_preview(fractional)} distinct non-integer values. "
            "Continuous treatments (doses, prices) are not supported yet; pass discrete arm "
            "labels, e.g. t > threshold for two arms or pandas.cut(t, bins) for a few.")
    classes = np.unique(t)
    if len(classes) < 2:
        raise ValueError(
            f"t has a single arm ({classes.tolist()}); effect estimation needs at least two "
            "arms (treated and control units).")
    if control is not None:
        if control not in classes:
            raise ValueError(f"control={control!r} is not an arm of t; arms are "
                             f"{classes.tolist()}.")
        classes = np.concatenate([[c for c in classes if c == control],
                                  [c for c in classes if c != control]])
    index = index_arms(t, classes)
    counts = np.bincount(index, minlength=len(classes))
    small = [(classes[k].item() if hasattr(classes[k], "item") else classes[k], int(n))
             for k, n in enumerate(counts) if n < min_units]
    if small:
        shown = f"{small[:5]}{' and more' if len(small) > 5 else ''}"
        raise ValueError(
            f"Each arm needs at least {min_units} units; {len(small)} arm(s) have too few: "
            f"{shown} (label, units). Merge or drop the rare arms before fitting.")
    return classes, index


def check_sample_weight(sample_weight, n_samples):
    """Validate per-sample weights (non-negative, finite, not all zero)."""
    if sample_weight is None:
        return np.ones(n_samples)
    w = _as_1d(sample_weight, "sample_weight").astype(np.float64)
    if len(w) != n_samples:
        raise ValueError(f"X has {n_samples} rows but sample_weight has {len(w)}.")
    _check_finite(w, "sample_weight")
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError("sample_weight must be non-negative and not all zero.")
    return w


def index_arms(labels, classes, name="t"):
    """The index in ``classes`` of each arm label (the one arm indexer of the package).

    Labels that are not in ``classes`` raise a ValueError that names them and the arms:
    ``T1='zz' is not an arm seen in fit`` for one label, the first few otherwise.
    """
    labels, classes = np.asarray(labels), np.asarray(classes)
    index = np.full(labels.shape, -1, dtype=np.int64)
    for k, c in enumerate(classes):
        index[labels == c] = k
    if (index < 0).any():
        unknown = pd.unique(labels[index < 0].ravel())
        arms = classes.tolist()
        if labels.size == 1:
            label = unknown[0].item() if isinstance(unknown[0], np.generic) else unknown[0]
            raise ValueError(f"{name}={label!r} is not an arm seen in fit; arms are {arms}.")
        raise ValueError(f"{name} has values that are not arms seen in fit (not among the "
                         f"estimator's arms {arms}): {_preview(unknown)}.")
    return index


def check_validation_split(t_index, n_arms, validation_fraction):
    """Check that a stratified ``validation_fraction`` split leaves every arm a row on both
    sides (scikit-learn's own message speaks of ``test_size``, not of our parameter)."""
    n = len(t_index)
    if validation_fraction <= 0:
        return
    n_valid = int(np.ceil(validation_fraction * n))
    if n_valid < n_arms or n - n_valid < n_arms:
        raise ValueError(
            f"validation_fraction={validation_fraction} of {n} rows gives {n_valid} validation "
            f"and {n - n_valid} training rows, but each of the {n_arms} arms needs at least "
            "one of each. Pass more rows, change validation_fraction, or set "
            "validation_fraction=0 (no early stopping).")


def check_device(device):
    """Resolve ``device`` ("auto", "cpu", "cuda", "cuda:N", "mps" or a torch.device) to a
    device string, or raise a ValueError that lists the devices this machine has."""
    import torch

    if isinstance(device, str) and device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    available = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        available.append("mps")
    hint = (f"Devices available here: {available}. Use device='auto' to take the GPU when "
            "there is one.")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a device name torch knows. {hint}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch build has no CUDA support" if torch.version.cuda is None
                   else "torch finds no CUDA GPU")
            raise ValueError(f"device={device!r} needs a CUDA GPU, but {why}. {hint}")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} does not exist on this machine. {hint}")
    elif dev.type == "mps":
        if "mps" not in available:
            raise ValueError(f"device={device!r} is not available on this machine. {hint}")
    elif dev.type != "cpu":
        raise ValueError(f"device={device!r}: causalmim trains on 'cpu', 'cuda' or 'mps'. "
                         f"{hint}")
    return str(dev)
