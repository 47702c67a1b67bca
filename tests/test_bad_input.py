"""Bad input, one row per case: what goes in, the error type that must come out, and a fragment
of the message that tells the user what is wrong and how to fix it."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from causalmim import (
    CausalMIMRegressor,
    CFRNetRegressor,
    DragonNetRegressor,
    TARNetRegressor,
    TrainingDivergedError,
    load,
)
from causalmim.datasets import make_disentangled
from causalmim.penalties import get_penalty

TINY = dict(rep_units=4, rep_layers=1, head_units=4, head_layers=0, max_epochs=2,
            batch_size=32, patience=1, random_state=0, device="cpu")
D = make_disentangled(n=120, n_instrumental=2, n_confounding=2, n_adjustment=2, random_state=0)
X, T, Y = np.asarray(D.X), np.asarray(D.t), np.asarray(D.y)


def _nan_at(a, idx):
    a = a.astype(float).copy()
    a[idx] = np.nan
    return a


def _inf_at(a, idx):
    a = a.astype(float).copy()
    a[idx] = np.inf
    return a


def fit(est=None, X=X, t=T, y=Y, **kw):
    est = est if est is not None else TARNetRegressor(**TINY)
    return lambda: est.fit(X, t, y, **kw)


def params(cls=TARNetRegressor, **p):
    return fit(cls(**{**TINY, **p}))


def _fitted():
    return TARNetRegressor(**TINY).fit(X, T, Y)


FITTED = None


def fitted():
    global FITTED
    if FITTED is None:
        FITTED = _fitted()
    return FITTED


def _load(tmp, content):
    path = tmp / "file.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    return lambda: load(path)


# (id, thunk factory taking tmp_path, expected type, message fragment)
CASES = [
    # ------------------------------------------------------------- X
    ("X NaN", lambda _: fit(X=_nan_at(X, (3, 1))), ValueError, "non-finite value"),
    ("X inf", lambda _: fit(X=_inf_at(X, (0, 0))), ValueError, "inf at index (0, 0)"),
    ("X 1-D", lambda _: fit(X=X[:, 0]), ValueError, "X.reshape(-1, 1)"),
    ("X 3-D", lambda _: fit(X=X[:, :, None]), ValueError, "must be 2-D"),
    ("X empty columns", lambda _: fit(X=X[:, :0]), ValueError, "0 feature(s)"),
    ("X strings", lambda _: fit(X=np.full(X.shape, "a")), ValueError, "must be numeric"),
    ("X object column", lambda _: fit(X=pd.DataFrame({"a": ["x"] * len(T), "b": Y})),
     ValueError, "non-numeric columns ['a']"),
    ("X sparse", lambda _: fit(X=sp.csr_matrix(X)), TypeError, "toarray()"),
    ("X rows differ from t", lambda _: fit(X=X[:-1]), ValueError, "t has 120"),
    ("X overflowing", lambda _: fit(X=np.where(np.arange(X.shape[1]) == 0, 1e308, X)),
     ValueError, "too large to standardize"),
    # ------------------------------------------------------------- t
    ("t one arm", lambda _: fit(t=np.zeros_like(T)), ValueError, "single arm"),
    ("t NaN", lambda _: fit(t=_nan_at(T, 4)), ValueError, "non-finite"),
    ("t None label", lambda _: fit(t=np.array([None] + ["a", "b"] * 59 + ["a"], dtype=object)),
     ValueError, "missing values"),
    ("t continuous", lambda _: fit(t=np.random.default_rng(0).random(len(T))), ValueError,
     "Continuous treatments"),
    ("t rare arm", lambda _: fit(t=np.r_[T[:-1], 7]), ValueError, "at least 2 units"),
    ("t 2-D", lambda _: fit(t=np.c_[T, T, T]), ValueError, "must be 1-D"),
    ("t wrong length", lambda _: fit(t=T[:-2]), ValueError, "t has 118"),
    ("control unknown", lambda _: params(control="placebo"), ValueError,
     "control='placebo' is not an arm"),
    # ------------------------------------------------------------- y
    ("y NaN", lambda _: fit(y=_nan_at(Y, 2)), ValueError, "y contains 1 non-finite"),
    ("y strings", lambda _: fit(y=np.full(len(Y), "a")), ValueError, "y must be numeric"),
    ("y binary not 0/1", lambda _: params(outcome="binary"), ValueError, "y in {0, 1}"),
    ("y wrong length", lambda _: fit(y=Y[:-1]), ValueError, "y has 119"),
    ("no target", lambda _: lambda: TARNetRegressor(**TINY).fit(X), ValueError,
     "fit needs the treatment and the outcome"),
    ("X one row", lambda _: fit(X=X[:1], t=T[:1], y=Y[:1]), ValueError, "minimum of 2"),
    ("X complex", lambda _: fit(X=X + 1j), ValueError, "Complex data not supported"),
    ("ty three columns", lambda _: lambda: TARNetRegressor(**TINY).fit(X, np.c_[T, Y, Y]),
     ValueError, "two-column target [t, y]"),
    ("sample_weight negative", lambda _: fit(sample_weight=-np.ones(len(Y))), ValueError,
     "non-negative"),
    ("sample_weight length", lambda _: fit(sample_weight=np.ones(3)), ValueError,
     "sample_weight has 3"),
    ("too few rows for validation", lambda _: fit(X=X[:5], t=np.array([0, 1, 0, 1, 0]),
                                                  y=Y[:5]), ValueError, "validation_fraction"),
    # ------------------------------------------------------------- parameters
    ("patience 0", lambda _: params(patience=0), ValueError, "'patience' parameter"),
    ("patience -5", lambda _: params(patience=-5), ValueError, "range [1, inf)"),
    ("head_layers -1", lambda _: params(head_layers=-1), ValueError, "'head_layers' parameter"),
    ("learning_rate str", lambda _: params(learning_rate="fast"), TypeError,
     "'learning_rate' parameter"),
    ("learning_rate 0", lambda _: params(learning_rate=0.0), ValueError, "range (0.0, inf)"),
    ("dropout 1", lambda _: params(dropout=1.0), ValueError, "'dropout' parameter"),
    ("activation unknown", lambda _: params(activation="swish"), ValueError,
     "'activation' parameter"),
    ("outcome unknown", lambda _: params(outcome="count"), ValueError, "'outcome' parameter"),
    ("validation_fraction 1", lambda _: params(validation_fraction=1.0), ValueError,
     "'validation_fraction' parameter"),
    ("n_ensemble bool", lambda _: params(n_ensemble=True), ValueError, "not a bool"),
    ("bootstrap one member", lambda _: params(bootstrap=True), ValueError,
     "at least 2 members"),
    ("penalty unknown", lambda _: params(CFRNetRegressor, balance_penalty="wass"), ValueError,
     "'balance_penalty' parameter"),
    ("penalty params not dict", lambda _: params(CausalMIMRegressor, mi_penalty_params=64),
     TypeError, "'mi_penalty_params' parameter"),
    ("penalty param unknown",
     lambda _: params(CausalMIMRegressor, trunk_units=4, mi_penalty_params={"hiden": 4}),
     TypeError, "hiden"),
    ("targeted two arms only",
     lambda _: fit(DragonNetRegressor(**TINY, targeted_regularization=True),
                   t=np.arange(len(T)) % 3), ValueError, "targeted_regularization needs"),
    ("unknown parameter in set_params",
     lambda _: lambda: TARNetRegressor().set_params(rep_unit=3), ValueError,
     "Invalid parameter 'rep_unit'"),
    ("unknown route", lambda _: lambda: CausalMIMRegressor().set_params(critc__hidden=3),
     ValueError, "mi_penalty__<param>"),
    # ------------------------------------------------------------- devices
    ("device gpu", lambda _: params(device="gpu"), ValueError, "Devices available here"),
    ("device cuda without GPU", lambda _: params(device="cuda:7"), ValueError,
     "Devices available here"),
    ("device tpu", lambda _: params(device="xla"), ValueError, "'cpu', 'cuda' or 'mps'"),
    ("load device", lambda tmp: (fitted().save(tmp / "m.pt"),
                                 lambda: load(tmp / "m.pt", device="gpu"))[1],
     ValueError, "not a device name"),
    # ------------------------------------------------------------- training
    ("divergence", lambda _: params(learning_rate=1e9, max_epochs=5), TrainingDivergedError,
     "learning_rate=1000000000.0"),
    # ------------------------------------------------------------- prediction
    ("predict before fit", lambda _: lambda: TARNetRegressor().predict(X), ValueError,
     "not fitted"),
    ("predict wrong columns", lambda _: lambda: fitted().predict(X[:, :3]), ValueError,
     f"is expecting {X.shape[1]} features"),
    ("predict NaN", lambda _: lambda: fitted().predict(_nan_at(X, (0, 0))), ValueError,
     "non-finite"),
    ("effect unknown arm", lambda _: lambda: fitted().effect(X, T1="zz"), ValueError,
     "T1='zz' is not an arm"),
    ("interval without bootstrap", lambda _: lambda: fitted().ate_interval(), ValueError,
     "bootstrap=True"),
    ("interval alpha", lambda _: lambda: fitted().effect_interval(X, alpha=2), ValueError,
     "alpha must be"),
    # ------------------------------------------------------------- files
    ("load junk bytes", lambda tmp: _load(tmp, b"junk" * 100), ValueError,
     "not a causalmim estimator file"),
    ("load other dict", lambda tmp: _load(tmp, {101: 1}), ValueError,
     "not a causalmim estimator file"),
    ("load list", lambda tmp: _load(tmp, [1, 2]), ValueError, "not a causalmim estimator file"),
    ("load unknown class",
     lambda tmp: (fitted().save(tmp / "m.pt"),
                  torch.save({**torch.load(tmp / "m.pt", weights_only=True), "class": "Foo"},
                             tmp / "m.pt"),
                  lambda: load(tmp / "m.pt"))[2], ValueError, "does not know"),
    ("save object params", lambda tmp: lambda: CFRNetRegressor(
        **TINY, balance_penalty=get_penalty("mmd")).fit(X, T, Y).save(tmp / "x.pt"), ValueError,
     "plain parameters only"),
]


@pytest.mark.parametrize("case, error, fragment", [(c[1], c[2], c[3]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input(case, error, fragment, tmp_path):
    thunk = case(tmp_path)
    with pytest.raises(error) as info:
        thunk()
    assert fragment in str(info.value), str(info.value)


def test_the_table_is_long_enough():
    assert len(CASES) >= 40
