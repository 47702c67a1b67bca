"""Property tests of fit/predict over generated inputs (hypothesis).

The contract: for any input, ``fit`` either succeeds, and then ``predict`` and ``ate`` are
finite with the right shape, or it raises a ValueError or TypeError whose message says
something. Any other exception, an empty message or a NaN prediction is a failure.

The example budget is fixed and the search derandomized, so that CI runs the same examples
every time and stays within its time limit (about 20 s on 2 cores).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from causalmim import CausalMIMRegressor, TARNetRegressor, UnstableTrainingWarning

TINY = dict(rep_units=2, rep_layers=1, head_units=2, head_layers=0, max_epochs=1,
            batch_size=16, patience=1, random_state=0, device="cpu")
BUDGET = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, 1e300, -1e300, 1e30, 5e-324]


def _check(fit_and_predict):
    """Run; the only acceptable exceptions are ValueError/TypeError with a message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnstableTrainingWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            out = fit_and_predict()
        except (ValueError, TypeError) as exc:
            assert str(exc).strip(), f"{type(exc).__name__} without a message"
            event(f"refused: {type(exc).__name__}")
            return None
    event("fitted")
    return out


def _fit_predict(est, X, t, y):
    def run():
        est.fit(X, t, y)
        pred = np.asarray(est.predict(X), dtype=float)
        assert pred.shape[0] == len(X)
        assert np.isfinite(pred).all(), "a fitted model predicted a non-finite effect"
        assert np.all(np.isfinite(est.ate()))
        return pred
    return run


CORRUPTIONS = ["special_in_X", "special_in_y", "short_y", "one_arm", "continuous_t",
               "mixed_labels", "string_labels", "bool_labels", "int8_X", "bool_X", "float32_X",
               "object_X", "duplicate_columns", "huge_X", "tiny_X", "huge_y", "few_rows",
               "no_columns", "dataframe", "rare_arm", "three_arms"]


@st.composite
def datasets(draw):
    """A valid data set with 0-3 corruptions applied; returns (X, t, y, corruptions)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    n, p = draw(st.integers(8, 40)), draw(st.integers(1, 4))
    X = rng.normal(size=(n, p))
    t = rng.integers(0, 2, n)
    t[:2] = [0, 1]
    y = X[:, 0] + t + rng.normal(size=n)
    applied = draw(st.lists(st.sampled_from(CORRUPTIONS), max_size=3, unique=True))
    for c in applied:
        n = len(X)
        if c == "special_in_X":
            X = np.asarray(X, dtype=np.float64).copy()
            X[draw(st.integers(0, n - 1)), 0] = draw(st.sampled_from(SPECIAL))
        elif c == "special_in_y":
            y = y.copy()
            y[draw(st.integers(0, len(y) - 1))] = draw(st.sampled_from(SPECIAL))
        elif c == "short_y":
            y = y[:-1]
        elif c == "one_arm":
            t = np.zeros(len(t), dtype=int)
        elif c == "continuous_t":
            t = rng.random(len(t))
        elif c == "mixed_labels":
            t = np.array([[0, "a", 1.5][k % 3] for k in range(len(t))], dtype=object)
        elif c == "string_labels":
            t = np.where(np.asarray(t, dtype=object) == t[0], "push", "control")
        elif c == "bool_labels":
            t = np.asarray(t) == np.asarray(t)[0]
        elif c == "int8_X":
            X = np.clip(np.asarray(X, dtype=float) * 10, -100, 100).astype(np.int8)
        elif c == "bool_X":
            X = np.asarray(X, dtype=float) > 0
        elif c == "float32_X":
            X = np.asarray(X, dtype=np.float32)
        elif c == "object_X":
            X = np.asarray(X).astype(object)
            X[0, 0] = draw(st.sampled_from(["1.5", "abc", None, {"a": 1}]))
        elif c == "duplicate_columns":
            X = np.column_stack([X, np.asarray(X)[:, :1]])
        elif c == "huge_X":
            X = np.asarray(X, dtype=float) * draw(st.sampled_from([1e30, 1e150, 1e300]))
        elif c == "tiny_X":
            X = np.asarray(X, dtype=float) * draw(st.sampled_from([1e-30, 1e-300, 0.0]))
        elif c == "huge_y":
            y = y * draw(st.sampled_from([1e30, 1e150, 1e300]))
        elif c == "few_rows":
            k = draw(st.integers(0, 4))
            X, t, y = np.asarray(X)[:k], np.asarray(t)[:k], y[:k]
        elif c == "no_columns":
            X = np.asarray(X)[:, :0]
        elif c == "dataframe":
            X = pd.DataFrame(np.asarray(X), columns=[f"c{k}" for k in range(np.shape(X)[1])])
        elif c == "rare_arm" and len(t):
            t = np.asarray(t, dtype=object).copy()
            t[-1] = "rare"
        elif c == "three_arms":
            t = np.asarray(t, dtype=object).copy()
            t[::3] = 2
    return X, t, y, applied


@BUDGET
@given(data=datasets())
def test_fit_predict_never_fails_uncleanly(data):
    X, t, y, applied = data
    _check(_fit_predict(TARNetRegressor(**TINY), X, t, y))


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(scale=st.sampled_from([1e-12, 1e-3, 1.0, 1e3, 1e12, 1e100]),
       seed=st.integers(0, 1000), duplicate=st.booleans())
def test_valid_data_at_any_scale_fits_and_predicts_finite(scale, seed, duplicate):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 3)) * scale
    if duplicate:
        X = np.column_stack([X, X[:, 0]])
    t = rng.integers(0, 2, 40)
    t[:2] = [0, 1]
    y = (X[:, 0] / scale + t + rng.normal(size=40)) * scale
    pred = _check(_fit_predict(CausalMIMRegressor(**TINY, trunk_units=2,
                                                  mi_penalty_params={"hidden": 2}), X, t, y))
    assert pred is not None, "valid data were refused"


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_prediction_input_is_checked_like_fit_input(bad):
    rng = np.random.default_rng(0)
    X, t, y = rng.normal(size=(30, 2)), np.arange(30) % 2, rng.normal(size=30)
    est = TARNetRegressor(**TINY).fit(X, t, y)
    X[0, 0] = bad
    with pytest.raises(ValueError, match="non-finite"):
        est.predict(X)
