"""Tests of causalmim.metrics on hand-computable examples."""

import sys

import numpy as np
import pandas as pd
import pytest

from causalmim.metrics import (
    ate_error,
    att_error,
    auuc,
    plot_qini_curve,
    plot_uplift_curve,
    policy_risk,
    qini_coefficient,
    qini_curve,
    sqrt_pehe,
    uplift_curve,
)

# A four-unit randomized sample, already ranked by the model.
UPLIFT = np.array([3.0, 2.0, 1.0, 0.0])
T = np.array([1, 0, 1, 0])
Y = np.array([1.0, 0.0, 0.0, 1.0])


# --------------------------------------------------------------------------- truth-based


def test_sqrt_pehe_and_ate_error_by_hand():
    tau = np.array([1.0, 2.0, 3.0, 4.0])
    assert sqrt_pehe(tau, tau) == 0.0
    assert sqrt_pehe(tau, [1.0, 2.0, 3.0, 8.0]) == pytest.approx(2.0)
    assert sqrt_pehe(tau, np.full(4, tau.mean())) == pytest.approx(np.std(tau))
    assert ate_error(tau, tau + 0.5) == pytest.approx(0.5)
    assert ate_error(tau, tau[::-1]) == pytest.approx(0.0)  # ATE right, PEHE wrong
    assert ate_error(tau, tau - 2.0) == pytest.approx(2.0)


def test_metrics_accept_series_and_columns():
    tau = pd.Series([1.0, 2.0, 3.0], index=[10, 20, 30])
    assert sqrt_pehe(tau, np.array([[1.0], [2.0], [6.0]])) == pytest.approx(np.sqrt(3.0))
    assert ate_error(tau, pd.Series([2.0, 2.0, 2.0])) == pytest.approx(0.0)
    assert isinstance(sqrt_pehe(tau, tau), float)
    assert sqrt_pehe(tau.to_frame(), tau) == 0.0


# --------------------------------------------------------------------------- Jobs protocol


def test_att_error_by_hand():
    # ATT = mean(y | t=1) - mean(y | t=0) = 0.5 - 0; ATT_hat = mean(tau_hat | t=1) = 0.2
    assert att_error([0.3, 0.1, 0.0, 0.0], T[[0, 2, 1, 3]], [1, 0, 0, 0]) == pytest.approx(0.3)


def test_att_error_uses_randomized_controls_only():
    tau_hat = [0.5, 0.5, 9.0, 9.0]
    t = [1, 0, 0, 0]
    y = [1.0, 0.0, 1.0, 1.0]
    e = [1, 1, 0, 0]
    # on e == 1: ATT = 1 - 0 = 1, ATT_hat = 0.5 (the e == 0 controls are ignored)
    assert att_error(tau_hat, t, y, e) == pytest.approx(0.5)
    # without e, all controls count: ATT = 1 - 2/3
    assert att_error(tau_hat, t, y) == pytest.approx(abs(0.5 - 1 / 3))


def test_policy_risk_by_hand():
    # pi = [1, 1, 0, 0]; E(y | pi=1, t=1) = 1 (unit 0); E(y | pi=0, t=0) = 1 (unit 2)
    assert policy_risk([1.0, 1.0, -1.0, -1.0], [1, 0, 0, 1], [1, 0, 1, 0]) == 0.0
    # pi = [1, 0, 0, 0]: 1 - [1/4 * 1 + 3/4 * mean(y[1], y[2])] = 1 - [0.25 + 0.75 * 0.5]
    assert policy_risk([1.0, -1.0, -1.0, -1.0], [1, 0, 0, 1], [1, 0, 1, 0]) == pytest.approx(0.375)


def test_policy_risk_empty_cells_count_as_zero_and_e_filters():
    # treat nobody: P(pi=0) = 1, E(y | pi=0, t=0) = 0.5
    assert policy_risk([-1.0] * 4, [1, 0, 0, 1], [1, 0, 1, 0]) == pytest.approx(0.5)
    # units with e == 0 are dropped before anything is computed
    tau_hat = [1.0, 1.0, -1.0, -1.0, 5.0, 5.0]
    t = [1, 0, 0, 1, 0, 0]
    y = [1, 0, 1, 0, 0, 0]
    assert policy_risk(tau_hat, t, y, e=[1, 1, 1, 1, 0, 0]) == 0.0


# --------------------------------------------------------------------------- uplift curves


def test_uplift_curve_by_hand():
    fraction, gain = uplift_curve(UPLIFT, T, Y)
    np.testing.assert_allclose(fraction, [0, 0.25, 0.5, 0.75, 1.0])
    # (rate_t(k) - rate_c(k)) * k / n
    np.testing.assert_allclose(gain, [0, 0.25, 0.5, 0.375, 0.0])
    assert auuc(UPLIFT, T, Y) == pytest.approx(0.25 * (0.125 + 0.375 + 0.4375 + 0.1875))


def test_qini_curve_by_hand():
    fraction, gain = qini_curve(UPLIFT, T, Y)
    np.testing.assert_allclose(fraction, [0, 0.25, 0.5, 0.75, 1.0])
    # (Y_t(k) - Y_c(k) N_t(k) / N_c(k)) / N_t
    np.testing.assert_allclose(gain, [0, 0.5, 0.5, 0.5, 0.0])
    assert qini_coefficient(UPLIFT, T, Y, normalize=False) == pytest.approx(0.375)
    # this ranking is the ideal one (treated responder first, control responder last)
    assert qini_coefficient(UPLIFT, T, Y) == pytest.approx(1.0)
    assert qini_coefficient(-UPLIFT, T, Y) < 0


@pytest.mark.parametrize("curve", [uplift_curve, qini_curve], ids=["uplift", "qini"])
def test_curves_end_at_difference_in_means(curve):
    rng = np.random.default_rng(0)
    t = rng.integers(0, 2, 500)
    y = rng.normal(size=500) + t
    fraction, gain = curve(rng.normal(size=500), t, y)
    assert fraction[0] == 0 and fraction[-1] == 1
    assert gain[0] == 0
    assert gain[-1] == pytest.approx(y[t == 1].mean() - y[t == 0].mean())


@pytest.mark.parametrize("curve", [uplift_curve, qini_curve], ids=["uplift", "qini"])
def test_constant_score_is_the_random_line(curve):
    fraction, gain = curve(np.zeros(4), T, Y + [0, 0, 1, 0])
    np.testing.assert_allclose(fraction, [0, 1])
    np.testing.assert_allclose(gain, [0, 1.0 - 0.5])


@pytest.mark.parametrize("score", [qini_coefficient, auuc], ids=["qini_coefficient", "auuc"])
def test_ties_do_not_depend_on_row_order(score):
    rng = np.random.default_rng(1)
    uplift = rng.integers(0, 4, 200).astype(float)  # many ties
    t = rng.integers(0, 2, 200)
    y = rng.integers(0, 2, 200).astype(float)
    perm = rng.permutation(200)
    assert score(uplift, t, y) == pytest.approx(score(uplift[perm], t[perm], y[perm]))
    np.testing.assert_allclose(
        qini_curve(uplift, t, y)[1], qini_curve(uplift[perm], t[perm], y[perm])[1]
    )


def test_rankings_good_random_bad():
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.normal(size=n)
    t = rng.integers(0, 2, n)
    true_uplift = 0.1 * x
    y = (rng.random(n) < 0.3 + t * true_uplift).astype(float)
    good = qini_coefficient(true_uplift, t, y)
    assert good > 0.1
    assert abs(qini_coefficient(rng.normal(size=n), t, y)) < 0.05
    assert qini_coefficient(-true_uplift, t, y) < -0.1
    assert auuc(true_uplift, t, y) > auuc(-true_uplift, t, y)
    assert auuc(true_uplift, t, y, normalize=True) > 0.1
    assert qini_coefficient(np.where(t, y, -y), t, y) == pytest.approx(1.0)


def test_normalized_scores_nan_for_constant_outcome():
    assert np.isnan(qini_coefficient(UPLIFT, T, np.zeros(4)))
    assert np.isnan(auuc(UPLIFT, T, np.zeros(4), normalize=True))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("func", "args", "match"),
    [
        (sqrt_pehe, ([1.0, 2.0], [1.0]), "different lengths"),
        (ate_error, ([1.0, np.nan], [1.0, 2.0]), "tau_true contains NaN"),
        (sqrt_pehe, ([1.0, 2.0], [1.0, np.inf]), "infinite"),
        (sqrt_pehe, (np.ones((2, 2)), np.ones((2, 2))), "tau_true must be 1-D"),
        (sqrt_pehe, ([], []), "empty"),
        (sqrt_pehe, (["a", "b"], [1.0, 2.0]), "numeric"),
        (policy_risk, ([1.0, 1.0], [1, 2], [0, 1]), "t must be coded 0/1"),
        (policy_risk, ([1.0, 1.0], [1, 0], [0, 1], [0, 0]), "e == 1"),
        (policy_risk, ([1.0, 1.0], [1, 0], [0, 1, 1]), "different lengths"),
        (att_error, ([1.0, 1.0], [1, 1], [0, 1]), "treated and control"),
        (qini_curve, (UPLIFT, np.ones(4), Y), "treated .* and control"),
        (uplift_curve, (UPLIFT, T, [0, 1, np.nan, 1]), "y contains NaN"),
        (auuc, (UPLIFT[:3], T, Y), "different lengths"),
    ],
    ids=[
        "length", "nan", "inf", "2d", "empty", "strings", "t-not-binary", "no-randomized",
        "policy-length", "att-one-arm", "curve-one-arm", "curve-nan", "auuc-length",
    ],
)  # fmt: skip
def test_validation_errors(func, args, match):
    with pytest.raises(ValueError, match=match):
        func(*args)


# --------------------------------------------------------------------------- plots


@pytest.mark.parametrize("plot", [plot_uplift_curve, plot_qini_curve], ids=["uplift", "qini"])
def test_plots_return_axes(plot):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = plot(UPLIFT, T, Y, perfect=True)
    assert len(ax.get_lines()) == 3
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [0, 0.25, 0.5, 0.75, 1.0])
    _, ax2 = plt.subplots()
    assert plot(UPLIFT, T, Y, ax=ax2, random=False) is ax2
    assert len(ax2.get_lines()) == 1
    plt.close("all")


def test_plot_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install causalmim\[plot\]"):
        plot_qini_curve(UPLIFT, T, Y)
