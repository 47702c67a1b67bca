"""Common tests over every estimator with tiny settings (imblearn/tests/test_common.py style)."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from causalmim import (
    CausalMIMRegressor,
    CFRNetRegressor,
    DragonNetRegressor,
    DRCFRRegressor,
    ParallelMIMRegressor,
    TARNetRegressor,
    load,
)
from causalmim.datasets import make_disentangled

TINY = dict(rep_units=8, rep_layers=1, head_units=8, head_layers=1, max_epochs=3,
            batch_size=64, patience=2, random_state=0, device="cpu")
# Per-estimator extras that keep the tiny fits fast; deviations from the common settings.
INIT_PARAMS = {
    TARNetRegressor: {},
    CFRNetRegressor: {"balance_penalty_params": {"n_iter": 5}},
    DragonNetRegressor: {"targeted_regularization": True},
    DRCFRRegressor: {},
    CausalMIMRegressor: {"trunk_units": 8, "mi_penalty_params": {"hidden": 8}},
    ParallelMIMRegressor: {"n_paths": 2, "trunk_units": 8, "mi_penalty_params": {"hidden": 8}},
}
ESTIMATORS = list(INIT_PARAMS)
IDS = [cls.__name__ for cls in ESTIMATORS]


def make(cls, **overrides):
    return cls(**{**TINY, **INIT_PARAMS[cls], **overrides})


@pytest.fixture(scope="module")
def data():
    d = make_disentangled(n=240, n_instrumental=2, n_confounding=2, n_adjustment=2, n_noise=1,
                          random_state=0)
    return d


@pytest.fixture(scope="module")
def fitted(data):
    return {cls: make(cls).fit(data.X, data.t, data.y) for cls in ESTIMATORS}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_fit_predict_shapes(cls, fitted, data):
    est = fitted[cls]
    X = data.X.to_numpy()
    n = len(X)
    assert est.predict(X).shape == (n,)
    assert est.predict_outcomes(X).shape == (n, 2)
    assert est.effect(X).shape == (n,)
    assert est.const_marginal_effect(X).shape == (n,)
    np.testing.assert_allclose(est.effect(X, T0=0, T1=1), est.predict(X))
    np.testing.assert_allclose(est.effect(X, T0=1, T1=0), -est.predict(X))
    po = est.predict_outcomes(X)
    np.testing.assert_allclose(est.predict(X), po[:, 1] - po[:, 0])
    assert isinstance(est.ate(), float)
    assert est.ate(X) == pytest.approx(est.predict(X).mean())
    assert est.n_features_in_ == X.shape[1]
    assert list(est.classes_) == [0, 1]
    assert np.isfinite(est.score(X, np.column_stack([data.t, data.y])))
    assert est.score(X, data.t, data.y) == est.score(X, np.column_stack([data.t, data.y]))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_pandas_in_and_out(cls, fitted, data):
    est = fitted[cls]
    assert list(est.feature_names_in_) == list(data.X.columns)
    pred = est.predict(data.X)
    assert isinstance(pred, pd.Series) and pred.index.equals(data.X.index)
    po = est.predict_outcomes(data.X)
    assert isinstance(po, pd.DataFrame) and list(po.columns) == [0, 1]
    with pytest.raises(ValueError, match="feature names"):
        est.predict(data.X[data.X.columns[::-1]])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_clone_and_params(cls):
    est = make(cls)
    params = est.get_params()
    cloned = clone(est)
    assert cloned.get_params() == params
    est.set_params(learning_rate=0.5)
    assert est.get_params()["learning_rate"] == 0.5
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(not_a_parameter=1)
    with pytest.raises(TypeError, match="not_a_parameter"):
        cls(not_a_parameter=1)
    repr(est)


def test_routed_penalty_params_reach_the_penalty(data):
    est = make(CausalMIMRegressor, mi_penalty_params={"hidden": 5})
    assert est.get_params()["mi_penalty_params"] == {"hidden": 5}
    assert clone(est).get_params()["mi_penalty_params"] == {"hidden": 5}
    est.set_params(mi_penalty__hidden=6, mi_penalty__lr_scale=1.0)
    assert est.mi_penalty_params == {"hidden": 6, "lr_scale": 1.0}
    est.set_params(mi_penalty_params={"hidden": 6})
    est.fit(data.X, data.t, data.y)
    critic = est.net_.critic_["mi_gamma_delta__mi_delta_upsilon__mi_gamma_upsilon"]  # one, batched
    assert critic.get_params()["hidden"] == 6
    with pytest.raises(ValueError, match="mi_penalty__"):
        make(CausalMIMRegressor).set_params(mip__hidden=3)
    with pytest.raises(ValueError, match="routed penalty parameters: fairness_penalty__<param>"):
        TARNetRegressor().set_params(mi_penalty__hidden=3)
    with pytest.raises(TypeError):
        TARNetRegressor(critic__hidden=3)  # no **kwargs in __init__ (scikit-learn's rule)


def test_old_route_prefixes_warn_and_still_work():
    est = CausalMIMRegressor()
    with pytest.warns(FutureWarning, match="renamed mi_penalty__hidden"):
        est.set_params(critic__hidden=7)
    with pytest.warns(FutureWarning, match="renamed balance_penalty__epsilon"):
        est.set_params(balance__epsilon=0.2)
    assert est.mi_penalty_params == {"hidden": 7}
    assert est.balance_penalty_params == {"epsilon": 0.2}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_same_seed_same_predictions(cls, data, fitted):
    X = data.X.to_numpy()
    first = fitted[cls].predict(X)
    for _ in range(2):
        again = make(cls).fit(data.X, data.t, data.y).predict(X)
        np.testing.assert_array_equal(first, again)
    other = make(cls, random_state=1).fit(data.X, data.t, data.y).predict(X)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_pickle_and_save_load_round_trip(cls, fitted, data, tmp_path):
    est = fitted[cls]
    X = data.X
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    path = tmp_path / "model.pt"
    est.save(path)
    loaded = load(path)
    assert type(loaded) is cls
    assert loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    assert loaded.ate() == pytest.approx(est.ate())
    if hasattr(est, "factor_importances_"):
        pd.testing.assert_frame_equal(loaded.factor_importances_, est.factor_importances_)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True])
def test_ensemble_size_must_be_a_positive_integer(bad, data):
    with pytest.raises(ValueError, match="'n_ensemble' parameter of TARNetRegressor must be"):
        make(TARNetRegressor, n_ensemble=bad).fit(data.X, data.t, data.y)


def test_save_refuses_object_parameters(data, tmp_path):
    from causalmim.penalties import get_penalty

    est = make(CFRNetRegressor, balance_penalty=get_penalty("mmd"), balance_penalty_params=None)
    est.fit(data.X, data.t, data.y)
    with pytest.raises(ValueError, match="plain parameters"):
        est.save(tmp_path / "x.pt")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_scikit_learn_tools_with_two_column_target(cls, data):
    X = data.X.to_numpy()
    ty = np.column_stack([data.t, data.y])
    pipe = make_pipeline(StandardScaler(), make(cls))
    pipe.fit(X, ty)
    assert pipe.predict(X).shape == (len(X),)
    scores = cross_val_score(make(cls), X, ty, cv=KFold(2, shuffle=True, random_state=0))
    assert scores.shape == (2,) and np.isfinite(scores).all()
    grid = GridSearchCV(make(cls), {"learning_rate": [1e-3, 1e-2]}, cv=2).fit(X, ty)
    assert grid.best_params_["learning_rate"] in (1e-3, 1e-2)
    assert grid.predict(X).shape == (len(X),)
    ty_frame = pd.DataFrame({"t": data.t, "y": data.y})
    assert make(cls).fit(data.X, ty_frame).predict(data.X).shape == (len(X),)


# Targeted regularization is defined for two arms and a continuous outcome only.
_TWO_ARM_ONLY_OFF = {DragonNetRegressor: {"targeted_regularization": False}}


def test_targeted_regularization_needs_two_arms_and_continuous_outcome(data):
    with pytest.raises(ValueError, match="two arms"):
        make(DragonNetRegressor).fit(data.X, np.array(["a", "b", "c"] * 80), data.y)
    with pytest.raises(ValueError, match="two arms"):
        make(DragonNetRegressor, outcome="binary").fit(data.X, data.t, data.y > 0)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_multi_arm_string_labels(cls, data):
    rng = np.random.default_rng(0)
    t = rng.choice(["push", "coupon", "none"], size=len(data.y))
    est = make(cls, control="none", **_TWO_ARM_ONLY_OFF.get(cls, {})).fit(data.X, t, data.y)
    assert list(est.classes_) == ["none", "coupon", "push"]
    X = data.X.to_numpy()
    assert est.predict(X).shape == (len(X), 2)
    assert est.predict_outcomes(X).shape == (len(X), 3)
    po = est.predict_outcomes(X)
    np.testing.assert_allclose(est.effect(X, T0="coupon", T1="push"), po[:, 2] - po[:, 1])
    with pytest.raises(ValueError, match="not an arm"):
        est.effect(X, T0="none", T1="sms")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_binary_outcome(cls, data):
    y = (data.y > np.median(data.y)).astype(int)
    est = make(cls, outcome="binary", **_TWO_ARM_ONLY_OFF.get(cls, {})).fit(data.X, data.t, y)
    po = est.predict_outcomes(data.X.to_numpy())
    assert ((po >= 0) & (po <= 1)).all()
    eff = est.predict(data.X.to_numpy())
    assert ((eff >= -1) & (eff <= 1)).all()
    with pytest.raises(ValueError, match="binary"):
        make(cls, outcome="binary").fit(data.X, data.t, data.y)


def _bad_inputs(data):
    X, t, y = data.X.to_numpy(), data.t.copy(), data.y.copy()
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    y_nan = y.copy()
    y_nan[5] = np.nan
    t_nan = t.astype(float)
    t_nan[2] = np.nan
    t_one = np.zeros_like(t)
    t_lonely = np.zeros_like(t)
    t_lonely[0] = 1
    X_text = data.X.assign(city="Paris")
    return [
        ("nan_X", (X_nan, t, y), "NaN"),
        ("inf_X", (X_inf, t, y), "inf"),
        ("nan_y", (X, t, y_nan), "NaN"),
        ("nan_t", (X, t_nan, y), "NaN"),
        ("short_t", (X, t[:-1], y), "rows"),
        ("short_y", (X, t, y[:-3]), "rows"),
        ("one_arm", (X, t_one, y), "single arm"),
        ("lonely_arm", (X, t_lonely, y), "at least 2 units"),
        ("text_column", (X_text, t, y), "non-numeric"),
        ("1d_X", (X[:, 0], t, y), "2-D"),
        ("three_column_target", (X, np.column_stack([t, y, y]), None), "two columns"),
    ]


BAD_IDS = [case[0] for case in _bad_inputs(make_disentangled(n=10, random_state=0))]


@pytest.mark.parametrize("case", BAD_IDS)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_bad_input_raises_clear_error(cls, case, data):
    _, args, match = next(c for c in _bad_inputs(data) if c[0] == case)
    with pytest.raises(ValueError, match=match):
        make(cls).fit(*args)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_bad_input_at_predict(cls, fitted, data):
    est = fitted[cls]
    X = data.X.to_numpy()
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :-1])
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.predict(X_nan)
    with pytest.raises(ValueError, match="not an arm"):
        est.effect(X, T0=0, T1=7)


def test_unfitted_raises(data):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        TARNetRegressor().predict(data.X)


@pytest.mark.parametrize("cls", [DRCFRRegressor, CausalMIMRegressor],
                         ids=["DRCFRRegressor", "CausalMIMRegressor"])
def test_factor_importances_and_plot(cls, fitted, data):
    import matplotlib

    matplotlib.use("Agg")
    imp = fitted[cls].factor_importances_
    assert list(imp.columns) == ["instrumental", "confounding", "adjustment"]
    assert list(imp.index) == list(data.X.columns)
    np.testing.assert_allclose(imp.sum(axis=0), 1.0)
    assert (imp.to_numpy() >= 0).all()
    ax = fitted[cls].plot_factors()
    assert ax.get_title()


def test_sample_weight_changes_the_fit(data):
    w = np.where(data.t == 1, 5.0, 1.0)
    a = make(TARNetRegressor).fit(data.X, data.t, data.y).predict(data.X)
    b = make(TARNetRegressor).fit(data.X, data.t, data.y, sample_weight=w).predict(data.X)
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match="non-negative"):
        make(TARNetRegressor).fit(data.X, data.t, data.y, sample_weight=-w)


def test_econml_tools_accept_our_estimators(fitted, data):
    econml = pytest.importorskip("econml", reason="econml extra: pip install causalmim[econml]")
    from econml.cate_interpreter import SingleTreeCateInterpreter
    from econml.score import RScorer
    from sklearn.linear_model import LinearRegression, LogisticRegression

    X = data.X.to_numpy()
    scorer = RScorer(model_y=LinearRegression(), model_t=LogisticRegression(),
                     discrete_treatment=True, cv=2, random_state=0)
    scorer.fit(y=data.y, T=data.t, X=X)
    scores = [scorer.score(fitted[cls]) for cls in ESTIMATORS]
    assert np.isfinite(scores).all()
    best, _ = scorer.best_model([fitted[cls] for cls in ESTIMATORS])
    assert type(best) in ESTIMATORS
    interp = SingleTreeCateInterpreter(max_depth=2).interpret(fitted[TARNetRegressor], X)
    assert interp.tree_model_.get_depth() <= 2
    assert econml.__version__


# --------------------------------------------------------------------------- accuracy (slow)
SMALL = dict(rep_units=64, head_units=64, max_epochs=200, random_state=0, device="cpu")
ACCURACY_EXTRA = {CFRNetRegressor: {"balance_penalty_params": {"n_iter": 20}},
                  CausalMIMRegressor: {"trunk_units": 64}}


@pytest.fixture(scope="module")
def world():
    d = make_disentangled(n=2500, random_state=11)
    return d, np.arange(1500), np.arange(1500, 2500)


@pytest.mark.slow
@pytest.mark.parametrize("cls", ESTIMATORS, ids=IDS)
def test_every_model_beats_the_constant_true_ate(cls, world):
    d, tr, te = world
    est = cls(**SMALL, **ACCURACY_EXTRA.get(cls, {})).fit(d.X.iloc[tr], d.t[tr], d.y[tr])
    pehe = np.sqrt(np.mean((np.asarray(est.predict(d.X.iloc[te])) - d.tau[te]) ** 2))
    constant = np.sqrt(np.mean((d.tau[te].mean() - d.tau[te]) ** 2))
    assert pehe < 0.75 * constant, (pehe, constant)


@pytest.mark.slow
def test_causalmim_with_defaults_wins_on_the_development_worlds():
    # Issue #13: keeps the flagship's win on the disentangled worlds from regressing. The
    # development worlds 0-2 (those the defaults were chosen on), protocol of
    # benchmarks/ablation.py: n=3000, the first 2000 rows to train, every model at its
    # defaults with random_state=0. Measured when written (torch 2.13 CPU): CausalMIM 0.592,
    # 0.595, 0.601 (mean 0.596); TARNet 0.696, 0.600, 0.591 (0.629); DR-CFR 0.764, 0.757,
    # 0.639 (0.720).
    pehe = {cls: [] for cls in (CausalMIMRegressor, TARNetRegressor, DRCFRRegressor)}
    for seed in range(3):
        d = make_disentangled(n=3000, random_state=seed)
        train, test = slice(0, 2000), slice(2000, None)
        for cls, scores in pehe.items():
            est = cls(random_state=0).fit(d.X.iloc[train], d.t[train], d.y[train])
            tau_hat = np.asarray(est.predict(d.X.iloc[test]))
            scores.append(np.sqrt(np.mean((tau_hat - d.tau[test]) ** 2)))
    mean = {cls.__name__: float(np.mean(v)) for cls, v in pehe.items()}
    assert mean["CausalMIMRegressor"] < 0.97 * mean["TARNetRegressor"], mean
    assert mean["CausalMIMRegressor"] < 0.90 * mean["DRCFRRegressor"], mean


def test_factor_dependence_reports_each_pair(fitted, data):
    dep = fitted[CausalMIMRegressor].factor_dependence(data.X)
    assert list(dep.index) == ["instrumental-confounding", "confounding-adjustment",
                               "instrumental-adjustment"]
    assert list(dep.columns) == ["mi", "dcor"]
    assert np.isfinite(dep.to_numpy()).all()
    assert ((dep["dcor"] >= 0) & (dep["dcor"] <= 1)).all()
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        CausalMIMRegressor().factor_dependence(data.X)


@pytest.mark.parametrize("seed", [0, 1])
def test_mi_penalty_lowers_the_held_out_dependence_between_factors(seed):
    d = make_disentangled(n=1200, random_state=seed)
    train, test = slice(0, 800), slice(800, None)
    settings = dict(rep_units=16, rep_layers=1, head_units=16, head_layers=1, trunk_units=16,
                    max_epochs=40, patience=40, random_state=seed)
    dcor = {}
    for weight in (0.0, 0.01):
        est = CausalMIMRegressor(mi_weight=weight, **settings)
        est.fit(d.X.iloc[train], d.t[train], d.y[train])
        dcor[weight] = est.factor_dependence(d.X.iloc[test])["dcor"].mean()
    assert dcor[0.01] < 0.8 * dcor[0.0], dcor  # measured: 0.61 -> 0.37, 0.57 -> 0.39


def test_linear_skip_adds_a_trained_linear_path(data, tmp_path):
    est = make(CausalMIMRegressor, linear_skip=True).fit(data.X, data.t, data.y)
    skip = est.net_.module_.skip
    assert est.n_ensemble == 2  # the default
    assert skip.weight.shape == (2 * 2, data.X.shape[1], 1)  # two members x two arms
    before = est.predict(data.X)
    est.save(tmp_path / "skip.pt")
    np.testing.assert_allclose(load(tmp_path / "skip.pt").predict(data.X), before, rtol=1e-6)
    with torch.no_grad():
        skip.weight.mul_(3.0)
    assert not np.allclose(est.predict(data.X), before)
    assert make(CausalMIMRegressor).fit(data.X, data.t, data.y).net_.module_.skip is None

