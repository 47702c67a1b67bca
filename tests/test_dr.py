"""ate(method="aipw"): the doubly robust ATE from the model's own heads."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from causalmim import CausalMIMRegressor, DragonNetRegressor, TARNetRegressor
from causalmim.datasets import make_disentangled

SMALL = dict(rep_units=16, rep_layers=1, head_units=16, head_layers=1, trunk_units=16)


@pytest.fixture(scope="module")
def world():
    return make_disentangled(n=1500, random_state=0)


@pytest.fixture(scope="module")
def short_fit(world):
    # three epochs: the outcome heads are far from the truth, so the plug-in ATE is biased
    return CausalMIMRegressor(**SMALL, max_epochs=3, random_state=0).fit(
        world.X, world.t, world.y)


def test_aipw_corrects_a_biased_plugin_ate(world, short_fit):
    true = world.tau.mean()
    plugin = short_fit.ate(world.X)
    aipw = short_fit.ate(world.X, t=world.t, y=world.y, method="aipw")
    assert isinstance(aipw, float)
    assert abs(aipw - true) < 0.5 * abs(plugin - true), (true, plugin, aipw)


def test_aipw_is_the_documented_formula(world, short_fit):
    est = short_fit
    mu = np.asarray(est.predict_outcomes(world.X))
    logits = est._network_output(world.X)["propensity"].numpy()
    e = np.clip(softmax(logits.astype(float), axis=2).mean(0), 0.01, 0.99)
    t, y = world.t, world.y
    psi = (mu[:, 1] - mu[:, 0] + (t == 1) * (y - mu[:, 1]) / e[:, 1]
           - (t == 0) * (y - mu[:, 0]) / e[:, 0])
    got = est.ate(world.X, t=pd.Series(t), y=y, method="aipw")
    np.testing.assert_allclose(got, psi.mean(), rtol=1e-5)
    # T0/T1 swapped: the opposite effect
    np.testing.assert_allclose(est.ate(world.X, 1, 0, t=t, y=y, method="aipw"), -got, rtol=1e-6)


def test_aipw_takes_one_label_per_row_like_effect(world, short_fit):
    X, t, y = world.X, world.t, world.y
    n = len(X)
    scalar = short_fit.ate(X, T0=0, T1=1, t=t, y=y, method="aipw")
    rows = short_fit.ate(X, T0=np.zeros(n, int), T1=np.ones(n, int), t=t, y=y, method="aipw")
    np.testing.assert_allclose(rows, scalar, rtol=1e-12)
    # half the rows swapped: their terms change sign
    swap = np.arange(n) % 2 == 0
    mixed = short_fit.ate(X, T0=np.where(swap, 1, 0), T1=np.where(swap, 0, 1), t=t, y=y,
                          method="aipw")
    assert abs(mixed) < abs(scalar)
    with pytest.raises(ValueError, match="T1 must be one label or one label per row"):
        short_fit.ate(X, T1=np.ones(3, int), t=t, y=y, method="aipw")


def test_aipw_works_for_dragonnet(world):
    est = DragonNetRegressor(rep_units=16, rep_layers=1, head_units=16, head_layers=1,
                             max_epochs=2, random_state=0).fit(world.X, world.t, world.y)
    assert np.isfinite(est.ate(world.X, t=world.t, y=world.y, method="aipw"))


def test_aipw_errors(world, short_fit):
    with pytest.raises(ValueError, match="needs the observed arms and outcomes"):
        short_fit.ate(world.X, method="aipw")
    with pytest.raises(ValueError, match="needs X, t and y"):
        short_fit.ate(method="aipw")
    with pytest.raises(ValueError, match="method must be 'plugin' or 'aipw'"):
        short_fit.ate(world.X, method="tmle")
    with pytest.raises(ValueError, match="T1='zz' is not an arm"):
        short_fit.ate(world.X, T1="zz", t=world.t, y=world.y, method="aipw")
    with pytest.raises(ValueError, match="length|rows|samples"):
        short_fit.ate(world.X, t=world.t[:10], y=world.y[:10], method="aipw")
    tarnet = TARNetRegressor(rep_units=8, rep_layers=1, head_units=8, head_layers=1,
                             max_epochs=1).fit(world.X, world.t, world.y)
    with pytest.raises(ValueError, match="has no propensity head"):
        tarnet.ate(world.X, t=world.t, y=world.y, method="aipw")
