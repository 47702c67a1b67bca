"""Tests for causalmim.tuning: Optuna studies scored by observed-data criteria."""

import doctest
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from sklearn.base import BaseEstimator
from sklearn.linear_model import Ridge

import causalmim.tuning as tuning_module
from causalmim.model_selection import FactualScorer, get_criterion
from causalmim.tuning import SEARCH_SPACES, TuningResult, get_search_space, tune

optuna.logging.set_verbosity(optuna.logging.WARNING)

ROOT = Path(__file__).resolve().parents[1]
ALPHA = {"alpha": ("float", 1e-3, 1e3, {"log": True})}


# --------------------------------------------------------------------------- a test double
class RidgeTLearner(BaseEstimator):
    """A T-learner on Ridge with the causalmim estimator contract; ``delay`` slows each fit."""

    fits = 0

    def __init__(self, alpha=1.0, control=None, delay=0.0):
        self.alpha = alpha
        self.control = control
        self.delay = delay

    def fit(self, X, t, y=None, sample_weight=None):
        type(self).fits += 1
        if y is None:
            ty = np.asarray(t, dtype=float)
            t, y = ty[:, 0], ty[:, 1]
        X, t = np.asarray(X, dtype=float), np.asarray(t)
        if self.delay:
            time.sleep(self.delay)
        self.classes_ = np.unique(t)
        self.models_ = [Ridge(alpha=self.alpha).fit(X[t == c], y[t == c]) for c in self.classes_]
        return self

    def predict_outcomes(self, X):
        return np.column_stack([m.predict(np.asarray(X, dtype=float)) for m in self.models_])

    def predict(self, X):
        mu = self.predict_outcomes(X)
        return mu[:, 1] - mu[:, 0]

    def score(self, X, ty):
        return FactualScorer()(self, X, ty)


def make_data(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 4))
    t = rng.binomial(1, 1 / (1 + np.exp(-X[:, 0])))
    y = X[:, 0] + X[:, 1] + t * (1 + X[:, 2]) + 0.5 * rng.normal(size=n)
    return X, t, y


@pytest.fixture(scope="module")
def data():
    return make_data()


def quick(**kwargs):
    """Common small settings for tune."""
    defaults = dict(
        criterion="factual",
        search_space=ALPHA,
        n_trials=4,
        cv=2,
        show_progress=False,
        random_state=0,
    )
    defaults.update(kwargs)
    return defaults


# --------------------------------------------------------------------------- basics
def test_tune_returns_refitted_best_and_study(data):
    X, t, y = data
    result = tune(RidgeTLearner(), X, t, y, **quick(n_trials=6))
    assert isinstance(result, TuningResult)
    best, study = result
    assert len(study.trials) == 6
    assert best.alpha == pytest.approx(study.best_params["alpha"])
    assert result.best_params == study.best_params
    assert result.best_score == study.best_value
    assert hasattr(best, "models_")  # refitted
    trial = study.best_trial
    assert len(trial.user_attrs["fold_scores"]) == 2
    assert trial.value == pytest.approx(np.mean(trial.user_attrs["fold_scores"]))


@pytest.mark.parametrize("criterion", ["factual", "r_loss", "dr", "nn_pehe"])
def test_each_criterion_prefers_light_regularization(data, criterion):
    X, t, y = data
    space = {"alpha": ("categorical", [0.01, 1e5])}
    best, study = tune(RidgeTLearner(), X, t, y, **quick(criterion=criterion, search_space=space))
    assert best.alpha == 0.01


def test_two_column_target_and_custom_scorer(data):
    X, t, y = data
    calls = []

    def scorer(estimator, X_val, ty_val):
        calls.append(ty_val.shape)
        return -FactualScorer().loss(estimator, X_val, ty_val)

    best, study = tune(RidgeTLearner(), X, np.column_stack([t, y]), **quick(criterion=scorer))
    assert calls and all(shape[1] == 2 for shape in calls)
    assert study.user_attrs["causalmim:criterion"] == "scorer"


def test_dataframe_string_arms_and_threads(data):
    import pandas as pd

    X, t, y = data
    Xdf = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    arms = np.where(t == 1, "treated", "control")
    best, study = tune(RidgeTLearner(), Xdf, arms, y, **quick(criterion="nn_pehe", n_jobs=2))
    assert len(study.trials) == 4
    assert list(best.classes_) == ["control", "treated"]


def test_random_state_reproducible(data):
    X, t, y = data
    a = tune(RidgeTLearner(), X, t, y, **quick(refit=False)).study
    b = tune(RidgeTLearner(), X, t, y, **quick(refit=False)).study
    assert [tr.params for tr in a.trials] == [tr.params for tr in b.trials]
    assert [tr.value for tr in a.trials] == [tr.value for tr in b.trials]


def test_progress_bar(data, capsys):
    X, t, y = data
    tune(RidgeTLearner(), X, t, y, **quick(n_trials=2, show_progress=True, refit=False))
    assert "2/2" in capsys.readouterr().err


def test_timeout_stops_the_study(data):
    X, t, y = data
    start = time.monotonic()
    _, study = tune(RidgeTLearner(delay=0.05), X, t, y, **quick(n_trials=None, timeout=0.5))
    assert time.monotonic() - start < 5
    assert 1 <= len(study.trials) < 50


def test_default_criterion_is_the_benchmarks_pick():
    import inspect

    assert tuning_module.DEFAULT_CRITERION == "nn_pehe"  # benchmarks/results/tuning.md
    assert inspect.signature(tune).parameters["criterion"].default == "nn_pehe"


def test_default_search_spaces_are_data():
    for name, space in SEARCH_SPACES.items():
        for param, spec in space.items():
            assert isinstance(spec, tuple) and spec[0] in ("float", "int", "categorical"), name
            tuning_module._to_distribution(param, spec)


def test_no_default_space_for_unknown_estimator():
    with pytest.raises(ValueError, match="no default search space for RidgeTLearner"):
        get_search_space(RidgeTLearner())


def test_distributions_and_tuple_forms():
    space = get_search_space(
        RidgeTLearner(),
        {
            "alpha": optuna.distributions.FloatDistribution(0.1, 1.0),
            "delay": ("float", 0.0, 0.01, {"step": 0.005}),
            "control": ("categorical", [None]),
        },
    )
    assert space["delay"] == optuna.distributions.FloatDistribution(0.0, 0.01, step=0.005)
    assert isinstance(space["alpha"], optuna.distributions.FloatDistribution)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"criterion": "pehe"}, r"unknown criterion 'pehe'.*r_loss"),
        ({"search_space": {"alfa": ("float", 0.1, 1.0)}}, r"does not have: \['alfa'\]"),
        ({"search_space": {"alpha": ("float", 1.0)}}, r"search space entry 'alpha'"),
        ({"search_space": {"alpha": ("normal", 0, 1)}}, r"unknown kind 'normal'"),
        ({"search_space": {"alpha": ("float", -1.0, 1.0, {"log": True})}}, r"'alpha'"),
        ({"search_space": {}}, r"non-empty dict"),
        ({"storage": "sqlite:////no/such/folder/study.db"}, r"cannot open the Optuna storage"),
        ({"storage": "postgresql://me:secret@127.0.0.1:1/db"}, r"cannot open the Optuna storage"),
        ({"storage": "nonsense://"}, r"cannot open the Optuna storage"),
        ({"n_trials": 0}, r"n_trials must be"),
        ({"n_trials": None}, r"give n_trials or timeout"),
        ({"cv": 1}, r"cv must be at least 2"),
        ({"pruning": "yes"}, r"pruning must be"),
    ],
    ids=[
        "criterion",
        "unknown-param",
        "short-spec",
        "unknown-kind",
        "bad-log-range",
        "empty-space",
        "sqlite-folder",
        "postgres-unreachable",
        "bad-url",
        "zero-trials",
        "no-budget",
        "cv",
        "pruning",
    ],
)
def test_bad_input_fails_before_any_trial(data, kwargs, match):
    X, t, y = data
    RidgeTLearner.fits = 0
    with pytest.raises(ValueError, match=match) as info:
        tune(RidgeTLearner(), X, t, y, **quick(**kwargs))
    assert RidgeTLearner.fits == 0
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("bad, match", [
    ("X_nan", "X contains 1 non-finite"), ("y_nan", "y contains 1 non-finite"),
    ("X_text", "must be numeric"), ("t_one_row_short", "same number of rows")])
def test_bad_data_fails_before_any_trial(data, bad, match):
    X, t, y = (np.array(a, dtype=float) for a in data)
    if bad == "X_nan":
        X[5, 1] = np.nan
    elif bad == "y_nan":
        y[7] = np.nan
    elif bad == "X_text":
        X = np.full(X.shape, "a")
    else:
        t = t[:-1]
    RidgeTLearner.fits = 0
    with pytest.raises(ValueError, match=match):
        tune(RidgeTLearner(), X, t, y, **quick())
    assert RidgeTLearner.fits == 0


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes", "qmc"])
def test_samplers_by_name(data, name):
    X, t, y = data
    _, study = tune(RidgeTLearner(), X, t, y, **quick(sampler=name, n_trials=3, refit=False))
    expected = tuning_module.SAMPLERS[name]
    assert type(study.sampler) is expected
    assert len(study.trials) == 3


def test_unknown_sampler_fails_before_any_trial(data):
    X, t, y = data
    RidgeTLearner.fits = 0
    with pytest.raises(ValueError, match="unknown sampler 'tpee'"):
        tune(RidgeTLearner(), X, t, y, **quick(sampler="tpee"))
    with pytest.raises(ValueError, match="sampler must be one of"):
        tune(RidgeTLearner(), X, t, y, **quick(sampler=3))
    assert RidgeTLearner.fits == 0


def test_mismatched_data_and_single_arm(data):
    X, t, y = data
    with pytest.raises(ValueError, match="same number of rows"):
        tune(RidgeTLearner(), X, t[:-1], y, **quick())
    with pytest.raises(ValueError, match="single treatment arm"):
        tune(RidgeTLearner(), X, np.zeros_like(t), y, **quick())
    with pytest.raises(ValueError, match="two-column target"):
        tune(RidgeTLearner(), X, y, **quick())


def test_existing_study_with_other_settings_is_refused(data, tmp_path):
    X, t, y = data
    url = f"sqlite:///{tmp_path / 'study.db'}"
    tune(RidgeTLearner(), X, t, y, **quick(storage=url, study_name="s", n_trials=2, refit=False))
    RidgeTLearner.fits = 0
    with pytest.raises(ValueError, match="created with criterion 'factual'"):
        tune(RidgeTLearner(), X, t, y, **quick(storage=url, study_name="s", criterion="dr"))
    with pytest.raises(ValueError, match="created with search_space"):
        space = {"alpha": ("float", 1e-2, 1.0)}
        tune(RidgeTLearner(), X, t, y, **quick(storage=url, study_name="s", search_space=space))
    assert RidgeTLearner.fits == 0


# --------------------------------------------------------------------------- storage
def test_sqlite_study_continues_to_the_budget(data, tmp_path):
    X, t, y = data
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = tune(RidgeTLearner(), X, t, y, **quick(storage=url, n_trials=3, refit=False)).study
    assert first.study_name == "causalmim-RidgeTLearner-factual"
    kept = [(tr.number, tr.params, tr.value) for tr in first.trials]
    best, study = tune(RidgeTLearner(), X, t, y, **quick(storage=url, n_trials=5))
    assert [(tr.number, tr.params, tr.value) for tr in study.trials[:3]] == kept
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 5
    # the resumed run does not replay the first run's candidates
    assert study.trials[3].params != study.trials[0].params
    # already at the budget: nothing runs, the best is refitted
    RidgeTLearner.fits = 0
    best, study = tune(RidgeTLearner(), X, t, y, **quick(storage=url, n_trials=5))
    assert len(study.trials) == 5 and RidgeTLearner.fits == 1


WORKER = textwrap.dedent(
    """
    import sys
    import optuna
    sys.path.insert(0, {tests!r})
    from test_tuning import ALPHA, RidgeTLearner, make_data
    from causalmim.tuning import tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import causalmim._tuning_support as support
    url, n_trials, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if len(sys.argv) > 4:  # short heartbeat and grace period (seconds) for the kill test
        support._HEARTBEAT_INTERVAL, support._GRACE_PERIOD = int(sys.argv[4]), int(sys.argv[5])
    X, t, y = make_data()
    tune(RidgeTLearner(delay=delay), X, t, y, criterion="factual", search_space=ALPHA,
         n_trials=n_trials, cv=2, storage=url, study_name="shared", show_progress=False,
         refit=False)
    """
)


def _worker(tmp_path, url, n_trials, delay, heartbeat=()):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(ROOT / "tests")))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, str(script), url, str(n_trials), str(delay), *map(str, heartbeat)],
        cwd=str(tmp_path),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _trials(url):
    storage = optuna.storages.RDBStorage(url)
    study = optuna.load_study(study_name="shared", storage=storage)
    return study.get_trials(deepcopy=False)


def test_killed_run_resumes_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    proc = _worker(tmp_path, url, n_trials=8, delay=0.25)
    deadline = time.monotonic() + 60
    done = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            if (tmp_path / "study.db").exists():
                try:
                    done = [tr for tr in _trials(url) if tr.state == TrialState.COMPLETE]
                except Exception:  # noqa: BLE001 - the study may not exist yet
                    continue
                if len(done) >= 3:
                    break
    finally:
        proc.kill()  # SIGKILL: no cleanup in the worker
        out = proc.communicate()[0].decode()
    assert len(done) >= 3, out
    before = {tr.number: (tr.params, tr.value) for tr in _trials(url) if tr.state.is_finished()}
    assert 3 <= len(before) < 8

    again = _worker(tmp_path, url, n_trials=8, delay=0.0)
    out = again.communicate(timeout=120)[0].decode()
    assert again.returncode == 0, out
    trials = _trials(url)
    numbers = [tr.number for tr in trials]
    assert len(numbers) == len(set(numbers))
    complete = [tr for tr in trials if tr.state == TrialState.COMPLETE]
    assert len(complete) == 8
    after = {tr.number: (tr.params, tr.value) for tr in trials}
    assert all(after[k] == v for k, v in before.items())  # every earlier finished trial kept


def test_killed_workers_trial_is_failed_by_the_heartbeat_and_retried(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    # each fit sleeps 2 s: the worker is killed in the middle of a trial
    proc = _worker(tmp_path, url, n_trials=3, delay=2.0, heartbeat=(1, 2))
    deadline = time.monotonic() + 60
    running = []
    try:
        while time.monotonic() < deadline and proc.poll() is None and not running:
            time.sleep(0.2)
            if (tmp_path / "study.db").exists():
                try:
                    running = [tr for tr in _trials(url) if tr.state == TrialState.RUNNING]
                except Exception:  # noqa: BLE001 - the study may not exist yet
                    continue
        time.sleep(1.5)  # at least one heartbeat written
    finally:
        proc.kill()
        out = proc.communicate()[0].decode()
    assert running, out
    killed = running[0].number
    time.sleep(3)  # past the grace period
    again = _worker(tmp_path, url, n_trials=3, delay=0.0, heartbeat=(1, 2))
    out = again.communicate(timeout=120)[0].decode()
    assert again.returncode == 0, out
    trials = {tr.number: tr for tr in _trials(url)}
    assert trials[killed].state == TrialState.FAIL
    retried = [tr for tr in trials.values()
               if tr.system_attrs.get("failed_trial") == killed]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == trials[killed].params
    assert not [tr for tr in trials.values() if tr.state == TrialState.RUNNING]


def test_two_workers_share_one_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    # each fit sleeps, so that neither worker finishes the budget before the other starts
    procs = [_worker(tmp_path, url, n_trials=10, delay=0.3) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    trials = _trials(url)
    numbers = sorted(tr.number for tr in trials)
    assert numbers == list(range(len(trials)))  # no lost or duplicated trial numbers
    assert all(tr.state == TrialState.COMPLETE for tr in trials)
    # the budget is met; a trial already running when it is reached may finish (one worker more)
    assert 10 <= len(trials) <= 11
    workers = {tr.user_attrs["worker"] for tr in trials}
    assert len(workers) == 2
    assert len({json.dumps(tr.params) for tr in trials}) == len(trials)


# --------------------------------------------------------------------------- real estimators
def tiny_tarnet(**kwargs):
    from causalmim import TARNetRegressor

    params = dict(max_epochs=3, rep_units=8, head_units=8, batch_size=64, random_state=0)
    params.update(kwargs)
    return TARNetRegressor(**params)


def test_default_spaces_match_the_estimators():
    import causalmim

    for name in SEARCH_SPACES:
        estimator = getattr(causalmim, name)()
        assert set(get_search_space(estimator)) == set(SEARCH_SPACES[name])


def test_pruning_callback_reports_epochs_and_prunes(data):
    X, t, y = data
    space = {"learning_rate": ("float", 1e-3, 1e-2, {"log": True})}
    # default pruner: per-epoch validation losses of the first fold are recorded
    best, study = tune(tiny_tarnet(), X, t, y, **quick(search_space=space, n_trials=2))
    assert all(tr.state == TrialState.COMPLETE for tr in study.trials)
    assert all(sorted(tr.intermediate_values) == [0, 1, 2] for tr in study.trials)
    assert best.predict(X).shape == (len(X),)
    assert best.get_params()["callbacks"] is None  # the refit carries no pruning callback
    # a pruner that prunes any positive loss: every trial stops at its first epoch
    pruner = optuna.pruners.ThresholdPruner(upper=0.0)
    _, study = tune(
        tiny_tarnet(), X, t, y, **quick(search_space=space, n_trials=2, pruning=pruner, refit=False)
    )
    assert [tr.state for tr in study.trials] == [TrialState.PRUNED] * 2
    assert all(list(tr.intermediate_values) == [0] for tr in study.trials)
    with pytest.raises(RuntimeError, match="no trial .* completed"):
        tune(tiny_tarnet(), X, t, y, **quick(search_space=space, n_trials=1, pruning=pruner))
    # no pruning: nothing is reported
    _, study = tune(
        tiny_tarnet(), X, t, y, **quick(search_space=space, n_trials=1, pruning=False, refit=False)
    )
    assert study.trials[0].intermediate_values == {}


def test_default_search_space_with_real_estimator(data):
    X, t, y = data
    best, study = tune(tiny_tarnet(), X, t, y, **quick(search_space=None, n_trials=2))
    assert set(study.best_params) == set(SEARCH_SPACES["TARNetRegressor"])
    assert best.predict_outcomes(X).shape == (len(X), 2)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")  # optuna.terminator, used inside
def test_optuna_search_cv(data):
    from optuna_integration import OptunaSearchCV

    X, t, y = data
    estimator = tiny_tarnet()
    space = get_search_space(estimator, {"learning_rate": ("float", 1e-3, 1e-2, {"log": True})})
    search = OptunaSearchCV(
        estimator,
        space,
        scoring=get_criterion("r_loss", n_folds=2, random_state=0),
        cv=2,
        n_trials=2,
        random_state=0,
    )
    search.fit(X, np.column_stack([t, y]))
    assert len(search.study_.trials) == 2
    assert np.isfinite(search.best_score_) and search.best_score_ < 0
    assert search.best_estimator_.predict(X).shape == (len(X),)


# --------------------------------------------------------------------------- doctests
def test_doctests():
    failures, _ = doctest.testmod(tuning_module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
