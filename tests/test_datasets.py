"""Tests of causalmim.datasets: synthetic generators and benchmark loaders."""

import numpy as np
import pandas as pd
import pytest

from causalmim.datasets import make_disentangled

# --------------------------------------------------------------------------- make_disentangled


def test_make_disentangled_shapes_and_names():
    data = make_disentangled(
        n=300, n_instrumental=2, n_confounding=3, n_adjustment=4, n_noise=1, random_state=0
    )
    assert isinstance(data.X, pd.DataFrame)
    assert data.X.shape == (300, 10)
    assert list(data.X.columns) == [
        "inst_0", "inst_1", "conf_0", "conf_1", "conf_2",
        "adj_0", "adj_1", "adj_2", "adj_3", "noise_0",
    ]  # fmt: skip
    assert list(data.blocks) == (
        ["instrumental"] * 2 + ["confounding"] * 3 + ["adjustment"] * 4 + ["noise"]
    )
    for key in ("t", "y", "mu0", "mu1", "tau", "propensity"):
        assert data[key].shape == (300,), key
    assert set(np.unique(data.t)) <= {0, 1}
    np.testing.assert_array_equal(data.tau, data.mu1 - data.mu0)
    np.testing.assert_allclose(data.y - np.where(data.t == 1, data.mu1, data.mu0), 0, atol=6)


def test_make_disentangled_as_frame_false():
    data = make_disentangled(n=50, random_state=0, as_frame=False)
    assert isinstance(data.X, np.ndarray)
    frame = make_disentangled(n=50, random_state=0)
    np.testing.assert_array_equal(data.X, frame.X.to_numpy())


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_make_disentangled_deterministic(seed):
    a = make_disentangled(n=200, random_state=seed)
    b = make_disentangled(n=200, random_state=seed)
    for key in ("t", "y", "mu0", "mu1", "propensity"):
        np.testing.assert_array_equal(a[key], b[key])
    pd.testing.assert_frame_equal(a.X, b.X)
    c = make_disentangled(n=200, random_state=seed + 10)
    assert not np.allclose(a.y, c.y)


def test_make_disentangled_overlap_and_heterogeneity():
    data = make_disentangled(n=20_000, random_state=0)
    assert data.propensity.min() >= 0.05 and data.propensity.max() <= 0.95
    assert 0.3 < data.t.mean() < 0.7
    # tau has mean ~effect_mean, std ~effect_std: predicting the ATE is far from the truth
    assert data.tau.mean() == pytest.approx(2.0, abs=0.1)
    assert data.tau.std() == pytest.approx(1.5, abs=0.1)
    assert 0 < (data.tau < 0).mean() < 0.2


def test_make_disentangled_blocks_have_their_roles():
    """Instruments/noise do not move the outcome; adjustment/noise do not move the propensity."""
    data = make_disentangled(n=20_000, random_state=3, as_frame=False)
    X, blocks = data.X, data.blocks
    logit = np.log(data.propensity / (1 - data.propensity))
    inner = (data.propensity > 0.05) & (data.propensity < 0.95)

    def r2(target, cols, rows=slice(None)):
        A = np.column_stack([np.ones(X[rows].shape[0]), X[rows][:, cols]])
        res = target[rows] - A @ np.linalg.lstsq(A, target[rows], rcond=None)[0]
        return 1 - res.var() / target[rows].var()

    # the unclipped logit is exactly linear in instrumental + confounding features
    assert r2(logit, np.isin(blocks, ["instrumental", "confounding"]), inner) > 0.999
    assert r2(logit, np.isin(blocks, ["adjustment", "noise"]), inner) < 0.01
    for target in (data.mu0, data.tau):
        assert r2(target, np.isin(blocks, ["instrumental", "noise"])) < 0.01
        assert r2(target, blocks == "confounding") > 0.05
        assert r2(target, blocks == "adjustment") > 0.05


def test_make_disentangled_confounding_biases_naive_estimate():
    data = make_disentangled(n=20_000, random_state=0)
    naive = data.y[data.t == 1].mean() - data.y[data.t == 0].mean()
    assert naive - data.tau.mean() > 0.2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be"),
        ({"n_noise": -1}, "n_noise"),
        ({"n_confounding": 0, "n_adjustment": 0}, "at least 1"),
        ({"propensity_clip": 0.5}, "propensity_clip"),
        ({"effect_std": -1.0}, "effect_std"),
        ({"noise_std": float("nan")}, "noise_std"),
    ],
    ids=["n0", "negative-block", "no-outcome-features", "clip", "effect-std", "nan-noise"],
)
def test_make_disentangled_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_disentangled(**kwargs)


def test_make_disentangled_randomized_and_constant_effect():
    data = make_disentangled(
        n=100, propensity_strength=0.0, effect_std=0.0, n_instrumental=0, random_state=0
    )
    np.testing.assert_allclose(data.propensity, 0.5)
    np.testing.assert_allclose(data.tau, 2.0)
