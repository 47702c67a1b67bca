"""Tests for causalmim.model_selection: observed-data criteria as scikit-learn scorers."""

import doctest
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

import causalmim.model_selection as ms
from causalmim.model_selection import (
    CRITERIA,
    DRScorer,
    FactualScorer,
    NNPEHEScorer,
    RLossScorer,
    get_criterion,
)

NAMES = sorted(CRITERIA)
EFFECT_NAMES = ["dr", "nn_pehe", "r_loss"]


# --------------------------------------------------------------------------- test doubles
def _split(t, y):
    if y is None:
        ty = np.asarray(t, dtype=float)
        return ty[:, 0], ty[:, 1]
    return np.asarray(t), np.asarray(y, dtype=float)


class RidgeTLearner(BaseEstimator):
    """A T-learner on Ridge with the causalmim estimator contract (two-column target)."""

    def __init__(self, alpha=1.0, control=None):
        self.alpha = alpha
        self.control = control

    def fit(self, X, t, y=None, sample_weight=None):
        t, y = _split(t, y)
        X = np.asarray(X, dtype=float)
        self.classes_ = np.unique(t)
        self.models_ = [Ridge(alpha=self.alpha).fit(X[t == c], y[t == c]) for c in self.classes_]
        return self

    def predict_outcomes(self, X):
        X = np.asarray(X, dtype=float)
        return np.column_stack([m.predict(X) for m in self.models_])

    def predict(self, X):
        mu = self.predict_outcomes(X)
        c = 0 if self.control is None else list(self.classes_).index(self.control)
        return mu[:, 1 - c] - mu[:, c]

    def score(self, X, ty):
        return -FactualScorer().loss(self, X, ty)


class FixedOutcomes(BaseEstimator):
    """Predicts given outcome functions (a list, one per arm); fit does nothing."""

    def __init__(self, functions=None, classes=(0, 1)):
        self.functions = functions
        self.classes = classes

    def fit(self, X, ty):
        self.classes_ = np.asarray(self.classes)
        return self

    def predict_outcomes(self, X):
        X = np.asarray(X, dtype=float)
        return np.column_stack([f(X) for f in self.functions])


class EffectOnly(BaseEstimator):
    """Exposes only predict(X) (the CATE), like an EconML CATE estimator."""

    def __init__(self, tau=None):
        self.tau = tau

    def predict(self, X):
        return self.tau(np.asarray(X, dtype=float))


class TrueRegressor(RegressorMixin, BaseEstimator):
    """A 'nuisance model' that returns a known function; counts its fits."""

    fits = 0

    def __init__(self, fn=None):
        self.fn = fn

    def fit(self, X, y):
        type(self).fits += 1
        return self

    def predict(self, X):
        return self.fn(X)


class TrueClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, fn=None):
        self.fn = fn

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = self.fn(X)
        return np.column_stack([1 - p, p])


# --------------------------------------------------------------------------- data
def mu0(X):
    return X[:, 0] + X[:, 1]


def tau(X):
    return 1.0 + 2.0 * X[:, 2]


def propensity(X):
    return 1.0 / (1.0 + np.exp(-X[:, 0]))


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    n = 600
    X = rng.normal(size=(n, 5))
    t = rng.binomial(1, propensity(X))
    y = mu0(X) + t * tau(X) + 0.5 * rng.normal(size=n)
    return X, t, y, np.column_stack([t, y])


def oracle():
    return FixedOutcomes([mu0, lambda X: mu0(X) + tau(X)]).fit(None, None)


def constant_effect():
    return FixedOutcomes([mu0, lambda X: mu0(X) + 1.0]).fit(None, None)


def wrong_effect():
    return FixedOutcomes([mu0, lambda X: mu0(X) - tau(X)]).fit(None, None)


def cheap(name):
    """A criterion with fast nuisance models (the defaults are tested in the ranking test)."""
    if name in ("r_loss", "dr"):
        return get_criterion(name, outcome_model=LinearRegression(), n_folds=3, random_state=0)
    return get_criterion(name)


# --------------------------------------------------------------------------- ranking
@pytest.mark.parametrize("name", NAMES)
def test_criterion_ranks_truth_first(data, name):
    X, _, _, ty = data
    scorer = (
        get_criterion(name, random_state=0) if name in ("r_loss", "dr") else get_criterion(name)
    )
    good, middle, bad = (scorer(m, X, ty) for m in (oracle(), constant_effect(), wrong_effect()))
    assert good > middle > bad
    assert scorer.loss(oracle(), X, ty) == pytest.approx(-good)


@pytest.mark.parametrize("name", NAMES)
def test_scorer_in_cross_val_score_and_grid_search(data, name):
    X, _, _, ty = data
    scoring = cheap(name)
    scores = cross_val_score(
        RidgeTLearner(), X, ty, scoring=scoring, cv=KFold(3, shuffle=True, random_state=0)
    )
    assert scores.shape == (3,) and np.all(np.isfinite(scores)) and np.all(scores <= 0)
    search = GridSearchCV(RidgeTLearner(), {"alpha": [0.1, 1e4]}, scoring=scoring, cv=3).fit(X, ty)
    assert search.best_params_ == {"alpha": 0.1}


def test_dataframe_target_and_features(data):
    X, t, y, ty = data
    Xdf = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    tydf = pd.DataFrame({"t": t, "y": y})
    model = RidgeTLearner().fit(X, ty)
    for name in NAMES:
        scorer = cheap(name)
        assert scorer(model, Xdf, tydf) == pytest.approx(scorer(model, X, ty))


# --------------------------------------------------------------------------- exact formulas
def test_r_loss_formula_with_known_nuisances(data):
    X, t, y, ty = data
    m = mu0(X) + propensity(X) * tau(X)
    scorer = RLossScorer(
        TrueRegressor(lambda Z: mu0(Z) + propensity(Z) * tau(Z)), TrueClassifier(propensity)
    )
    model = constant_effect()
    expected = np.mean(((y - m) - (t - propensity(X)) * 1.0) ** 2)
    assert scorer.loss(model, X, ty) == pytest.approx(expected)


class ChoosingRegressor(RegressorMixin, BaseEstimator):
    """A 'nuisance model' that picks, among known functions, the one closest to the data."""

    def __init__(self, functions=None):
        self.functions = functions

    def fit(self, X, y):
        errors = [np.mean((f(X) - y) ** 2) for f in self.functions]
        self.fn_ = self.functions[int(np.argmin(errors))]
        return self

    def predict(self, X):
        return self.fn_(X)


def test_dr_formula_with_known_nuisances(data):
    X, t, y, ty = data
    mu1 = mu0(X) + tau(X)
    e = np.clip(propensity(X), 0.1, 0.9)
    outcome = ChoosingRegressor([mu0, lambda Z: mu0(Z) + tau(Z)])
    scorer = DRScorer(outcome, TrueClassifier(propensity), clip=0.1)
    phi = mu1 - mu0(X) + t * (y - mu1) / e - (1 - t) * (y - mu0(X)) / (1 - e)
    model = constant_effect()
    assert scorer.loss(model, X, ty) == pytest.approx(np.mean((phi - 1.0) ** 2))


def test_nn_pehe_imputation_by_hand():
    X = np.array([[0.0], [1.0], [0.1], [1.2], [5.0]])
    t = np.array([1, 1, 0, 0, 0])
    y = np.array([3.0, 5.0, 1.0, 2.0, 9.0])
    model = FixedOutcomes([lambda Z: np.zeros(len(Z)), lambda Z: np.zeros(len(Z))]).fit(None, None)
    # treated 0 -> control x=0.1 (y=1): 2; treated 1 -> control 1.2 (y=2): 3
    # control 0.1 -> treated 0 (y=3): 2; control 1.2 -> treated 1 (5): 3; control 5 -> treated 1: -4
    expected = np.mean(np.array([2.0, 3.0, 2.0, 3.0, -4.0]) ** 2)
    loss = NNPEHEScorer(scale=False).loss(model, X, np.column_stack([t, y]))
    assert loss == pytest.approx(expected)


def test_factual_loss_by_hand(data):
    X, t, y, ty = data
    model = RidgeTLearner().fit(X, ty)
    mu = model.predict_outcomes(X)
    expected = np.mean((y - mu[np.arange(len(y)), t]) ** 2)
    assert FactualScorer().loss(model, X, ty) == pytest.approx(expected)


def test_sample_weight(data):
    X, _, _, ty = data
    model = RidgeTLearner().fit(X, ty)
    for name in NAMES:
        scorer = cheap(name)
        assert scorer(model, X, ty, sample_weight=np.ones(len(X))) == pytest.approx(
            scorer(model, X, ty)
        )


# --------------------------------------------------------------------------- arms and contracts
@pytest.mark.parametrize("name", EFFECT_NAMES)
def test_effect_only_estimator_matches_outcomes(data, name):
    X, _, _, ty = data
    scorer = cheap(name)
    assert scorer(EffectOnly(tau), X, ty) == pytest.approx(scorer(oracle(), X, ty))


def test_factual_needs_predict_outcomes(data):
    X, _, _, ty = data
    with pytest.raises(TypeError, match="predict_outcomes"):
        FactualScorer()(EffectOnly(tau), X, ty)


@pytest.mark.parametrize("name", EFFECT_NAMES)
def test_control_parameter_is_respected(data, name):
    X, _, _, ty = data
    scorer = cheap(name)
    reference = scorer.loss(oracle(), X, ty)
    # with control = 1 the effect is mu0 - mu1; the losses are symmetric in the arms (exactly
    # for nn_pehe; up to the cross-fitting folds, drawn for the flipped indicator, otherwise)
    rel = 1e-9 if name == "nn_pehe" else 0.2
    flipped = oracle()
    flipped.control = 1
    assert scorer.loss(flipped, X, ty) == pytest.approx(reference, rel=rel)
    effect_only = EffectOnly(lambda Z: -tau(Z))
    effect_only.control = 1
    assert scorer.loss(effect_only, X, ty) == pytest.approx(scorer.loss(flipped, X, ty))
    wrong = wrong_effect()
    wrong.control = 1
    assert scorer.loss(wrong, X, ty) > scorer.loss(flipped, X, ty)
    with pytest.raises(ValueError, match="control arm 7"):
        effect_only.control = 7
        scorer.loss(effect_only, X, ty)


@pytest.mark.parametrize("name", EFFECT_NAMES)
def test_three_arms_average_pairs_against_control(name):
    rng = np.random.RandomState(1)
    n = 600
    X = rng.normal(size=(n, 4))
    t = rng.randint(0, 3, size=n)
    taus = [lambda Z: 0 * Z[:, 0], tau, lambda Z: -1.0 + Z[:, 3]]
    y = mu0(X) + np.choose(t, [f(X) for f in taus]) + 0.3 * rng.normal(size=n)
    ty = np.column_stack([t, y])
    truth = FixedOutcomes([lambda Z, f=f: mu0(Z) + f(Z) for f in taus], classes=(0, 1, 2))
    truth.fit(None, None)
    scorer = cheap(name)
    loss = scorer.loss(truth, X, ty)
    # the average of the two pairwise binary losses on the units of each pair
    pair_losses = []
    for k in (1, 2):
        mask = (t == 0) | (t == k)
        pair = FixedOutcomes([lambda Z: mu0(Z), lambda Z, k=k: mu0(Z) + taus[k](Z)]).fit(None, None)
        pair_losses.append(scorer.loss(pair, X[mask], np.column_stack([(t[mask] == k), y[mask]])))
    assert loss == pytest.approx(np.mean(pair_losses))
    wrong = FixedOutcomes([lambda Z: mu0(Z)] * 3, classes=(0, 1, 2)).fit(None, None)
    assert scorer.loss(wrong, X, ty) > loss


# --------------------------------------------------------------------------- errors
def test_get_criterion_unknown_name_lists_valid():
    with pytest.raises(ValueError, match=r"unknown criterion 'pehe'.*dr.*factual.*nn_pehe.*r_loss"):
        get_criterion("pehe")


def test_get_criterion_passes_callables_and_rejects_others():
    def custom(estimator, X, ty):
        return 0.0

    assert get_criterion(custom) is custom
    with pytest.raises(ValueError, match="callable"):
        get_criterion(3)
    with pytest.raises(ValueError, match="parameters"):
        get_criterion(custom, n_folds=2)


@pytest.mark.parametrize("name", NAMES)
def test_bad_targets(data, name):
    X, t, y, ty = data
    scorer = get_criterion(name)
    model = oracle()
    with pytest.raises(ValueError, match="two columns"):
        scorer(model, X, y)
    with pytest.raises(ValueError, match="not among"):
        scorer(model, X, np.column_stack([t + 5, y]))


@pytest.mark.parametrize("name", EFFECT_NAMES)
def test_single_arm_data_is_an_error(data, name):
    X, _, y, _ = data
    with pytest.raises(ValueError, match="arm"):
        get_criterion(name)(oracle(), X[:50], np.column_stack([np.zeros(50), y[:50]]))


def test_nuisance_cross_fitting_needs_two_units_per_arm(data):
    X, _, y, _ = data
    t = np.zeros(40)
    t[0] = 1
    with pytest.raises(ValueError, match="at least two units in each arm"):
        RLossScorer()(oracle(), X[:40], np.column_stack([t, y[:40]]))


# --------------------------------------------------------------------------- cache, pickling
def test_nuisances_are_fitted_once_per_data(data):
    X, _, _, ty = data
    TrueRegressor.fits = 0
    scorer = RLossScorer(TrueRegressor(mu0), TrueClassifier(propensity), n_folds=3)
    scorer(oracle(), X, ty)
    assert TrueRegressor.fits == 3
    scorer(constant_effect(), X, ty)
    assert TrueRegressor.fits == 3  # cached
    scorer(constant_effect(), X[:300], ty[:300])
    assert TrueRegressor.fits == 6  # new data, new nuisances


def test_random_state_makes_nuisances_reproducible(data):
    X, _, _, ty = data
    model = RidgeTLearner().fit(X, ty)
    a = DRScorer(n_folds=2, random_state=3).loss(model, X, ty)
    b = DRScorer(n_folds=2, random_state=3).loss(model, X, ty)
    assert a == b


def test_scorer_pickles_without_cache(data):
    X, _, _, ty = data
    scorer = RLossScorer(LinearRegression(), n_folds=2, random_state=0)
    value = scorer(oracle(), X, ty)
    copy = pickle.loads(pickle.dumps(scorer))
    assert not copy.__dict__.get("_cache")
    assert copy(oracle(), X, ty) == pytest.approx(value)


def test_doctests():
    failures, _ = doctest.testmod(ms, optionflags=doctest.ELLIPSIS)
    assert failures == 0
