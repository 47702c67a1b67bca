"""Issue #12, item by item: divergence, devices, API seams, conformance and the house."""

import contextlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone, is_regressor
from sklearn.model_selection import GridSearchCV

import causalmim
from causalmim import (
    CausalMIMRegressor,
    CFRNetRegressor,
    DRCFRRegressor,
    TARNetRegressor,
    TrainingDivergedError,
    UnstableTrainingWarning,
    load,
)
from causalmim.datasets import make_disentangled

TINY = dict(rep_units=8, rep_layers=1, head_units=8, head_layers=1, max_epochs=3,
            batch_size=64, patience=2, random_state=0, device="cpu")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    return make_disentangled(n=240, n_instrumental=2, n_confounding=2, n_adjustment=2,
                             random_state=0)


# ------------------------------------------------------------------ 1. divergence
def test_non_finite_loss_stops_with_the_epoch_and_the_learning_rate(data):
    est = TARNetRegressor(**dict(TINY, learning_rate=1e9, max_epochs=10))
    with pytest.raises(TrainingDivergedError, match=r"in epoch \d+.*learning_rate=1000000000"):
        est.fit(data.X, data.t, data.y)
    assert not hasattr(est, "net_")  # no half-fitted model to predict from
    assert issubclass(TrainingDivergedError, ValueError)


def test_exploding_finite_loss_warns(data):
    est = TARNetRegressor(**dict(TINY, learning_rate=100.0, max_epochs=3))
    with pytest.warns(UnstableTrainingWarning, match="training is unstable"):
        est.fit(data.X, data.t, data.y)
    assert np.isfinite(est.predict(data.X)).all()


@pytest.mark.parametrize("n_ensemble", [1, 2])
def test_a_dominant_penalty_warns_about_its_weight_not_the_learning_rate(data, n_ensemble):
    # with two members, one member's negative estimates (critic error, clamped at 0 in the
    # loss) must not cancel the other's in the share of the loss the warning attributes
    est = CausalMIMRegressor(**dict(TINY, max_epochs=3), trunk_units=8, mi_weight=1e5,
                             mi_penalty_params={"hidden": 8}, n_ensemble=n_ensemble)
    with pytest.warns(UnstableTrainingWarning, match=r"penalty terms make up \d+% of it "
                                                     r"\(mi_weight [0-9.e+]+.*Lower that weight"):
        est.fit(data.X, data.t, data.y)


def test_sane_training_does_not_warn(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnstableTrainingWarning)
        TARNetRegressor(**TINY).fit(data.X, data.t, data.y)


def test_non_finite_predictions_after_fit_raise(data, monkeypatch):
    # A network whose loss stays finite but whose outputs overflow in float64 on the original
    # scale: the check after fit catches it.
    est = TARNetRegressor(**TINY)
    original = TARNetRegressor._member_outcomes

    def overflowing(self, Xs):
        out = original(self, Xs)
        out[0, 0, 0] = np.inf
        return out

    monkeypatch.setattr(TARNetRegressor, "_member_outcomes", overflowing)
    with pytest.raises(TrainingDivergedError, match="non-finite predictions"):
        est.fit(data.X, data.t, data.y)


# ------------------------------------------------------------------ 2. devices
def test_device_is_checked_before_any_data_work(data):
    X = np.full((10, 3), np.nan)  # bad data too: the device error comes first
    with pytest.raises(ValueError, match="Devices available here"):
        TARNetRegressor(device="cuda:3").fit(X, np.arange(10) % 2, np.zeros(10))


def test_a_gpu_saved_model_loads_on_the_cpu(data, tmp_path):
    est = TARNetRegressor(**TINY).fit(data.X, data.t, data.y)
    path = tmp_path / "m.pt"
    est.save(path)
    # Make the file look as if it came from a GPU fit: the stored device parameter is "cuda".
    state = torch.load(path, weights_only=True)
    params = json.loads(state["params_json"])
    params["device"] = "cuda"
    state["params_json"] = json.dumps(params)
    torch.save(state, path)
    loaded = load(path)
    assert loaded.device == "cpu"
    np.testing.assert_array_equal(loaded.predict(data.X), est.predict(data.X))
    with pytest.raises(ValueError, match="Devices available here"):
        load(path, device="cuda:5")


# ------------------------------------------------------------------ 3-5. API seams
def test_fit_with_the_two_column_target_by_keyword(data):
    ty = np.column_stack([data.t, data.y])
    a = TARNetRegressor(**TINY).fit(data.X, y=ty).predict(data.X)
    b = TARNetRegressor(**TINY).fit(data.X, data.t, data.y).predict(data.X)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(TARNetRegressor(**TINY).fit(data.X, ty).score(data.X, y=ty))


def test_pandas_in_pandas_out_for_effect_and_predict(data):
    est = TARNetRegressor(**TINY).fit(data.X, data.t, data.y)
    X = data.X.set_index(pd.RangeIndex(100, 100 + len(data.X)))
    for out in (est.effect(X), est.predict(X)):
        assert isinstance(out, pd.Series)
        assert out.index.equals(X.index)
    assert isinstance(est.effect(X.to_numpy()), np.ndarray)


def test_history_survives_save_and_load(data, tmp_path):
    est = CausalMIMRegressor(**TINY, trunk_units=8).fit(data.X, data.t, data.y)
    est.save(tmp_path / "m.pt")
    loaded = load(tmp_path / "m.pt")
    assert len(loaded.history_) == len(est.history_) > 0
    assert loaded.history_[:, "train_loss"] == pytest.approx(est.history_[:, "train_loss"])
    assert loaded.history_[-1, "valid_losses"] == pytest.approx(est.history_[-1, "valid_losses"])


def test_verbose_log_has_no_terminal_colour_codes(data):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        TARNetRegressor(**dict(TINY, verbose=1)).fit(data.X, data.t, data.y)
    log = buf.getvalue()
    assert "train_loss" in log and "valid_loss" in log
    assert "\x1b[" not in log
    # a best-epoch value, which skorch colours, comes out plain when stdout is not a terminal
    from causalmim._engine import _PrintLog

    row = {"valid_loss": 0.5, "valid_loss_best": True}
    with contextlib.redirect_stdout(io.StringIO()):
        assert _PrintLog().format_row(row, "valid_loss", color="\x1b[32m") == "0.5000"


# ------------------------------------------------------------------ 4. conformance
@pytest.mark.parametrize("cls", [TARNetRegressor, CFRNetRegressor, DRCFRRegressor,
                                 CausalMIMRegressor, causalmim.ParallelMIMRegressor])
def test_regressor_tags_and_no_kwargs(cls):
    import inspect

    assert is_regressor(cls())
    kinds = {p.kind for p in inspect.signature(cls.__init__).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds
    assert set(cls._parameter_constraints) == set(cls._get_param_names())


def test_routed_penalty_parameters_in_grid_search(data):
    ty = np.column_stack([data.t, data.y])
    grid = GridSearchCV(CausalMIMRegressor(**TINY, trunk_units=8),
                        {"mi_penalty__hidden": [4, 6]}, cv=2).fit(data.X, ty)
    assert grid.best_params_["mi_penalty__hidden"] in (4, 6)
    assert grid.best_estimator_.mi_penalty_params["hidden"] in (4, 6)
    assert clone(grid.best_estimator_).mi_penalty_params == grid.best_estimator_.mi_penalty_params


# ------------------------------------------------------------------ 8. the house
def test_no_module_of_the_package_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "causalmim").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 600}
    assert not long, long


def test_a_new_preset_registers_itself_for_load(data, tmp_path):
    class _Hidden(TARNetRegressor):  # private names do not register
        pass

    class TinyTARNet(TARNetRegressor):
        """A preset declared in user code.

        Parameters
        ----------{common}
        """

    assert "{common}" not in TinyTARNet.__doc__ and "rep_units" in TinyTARNet.__doc__
    from causalmim import _persistence

    assert "_Hidden" not in _persistence.REGISTRY
    est = TinyTARNet(**TINY).fit(data.X, data.t, data.y)
    est.save(tmp_path / "m.pt")
    assert type(load(tmp_path / "m.pt")) is TinyTARNet
    del _persistence.REGISTRY["TinyTARNet"]


def test_public_api_is_unchanged():
    for name in ("CausalMIMRegressor", "CFRNetRegressor", "DRCFRRegressor",
                 "DragonNetRegressor", "TARNetRegressor", "load"):
        assert getattr(causalmim, name) is getattr(causalmim.estimators, name)
