"""Tests of causalmim.datasets.make_semi_synthetic (ACIC-style semi-synthetic benchmarks)."""

import numpy as np
import pandas as pd
import pytest

from causalmim.datasets import _home, load_hillstrom, make_semi_synthetic

SURFACES = ("linear", "step", "smooth", "mixed")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never download."""

    def guarded(url, *args, **kwargs):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(_home.urllib.request, "urlopen", guarded)


@pytest.fixture(scope="module")
def table():
    """A small CRM-like table: skewed, count, flag, boolean, text and categorical columns."""
    rng = np.random.default_rng(42)
    n = 600
    return pd.DataFrame({
        "spend": rng.gamma(2.0, 50.0, n),
        "visits": rng.poisson(3.0, n),
        "age": rng.normal(40.0, 10.0, n),
        "member": rng.integers(0, 2, n),
        "app": rng.random(n) < 0.3,
        "region": rng.choice(["north", "south", "west"], n),
        "tier": pd.Categorical(rng.choice(["gold", "silver", "bronze", "none"], n)),
    })  # fmt: skip


@pytest.fixture(scope="module")
def hillstrom_frame(data_home):
    return load_hillstrom(data_home=data_home).frame


def _on_common_rows(a, b, field):
    """The values of ``field`` of two samples on the table rows they share."""
    common, ia, ib = np.intersect1d(a.index, b.index, return_indices=True)
    assert common.size >= 50
    return a[field][ia], b[field][ib]


# --------------------------------------------------------------------------- shapes and truth


def test_hillstrom_shapes_and_dtypes(data_home, hillstrom_frame):
    data = make_semi_synthetic(500, data_home=data_home, random_state=0)
    assert data.covariates == "hillstrom" and data.surface == "mixed"
    assert isinstance(data.X, pd.DataFrame) and data.X.shape == (500, 7)
    assert data.feature_names == list(data.X.columns) == [
        "recency", "history", "mens", "womens", "zip_code", "newbie", "channel"
    ]  # fmt: skip
    assert data.categorical_features == ["zip_code", "channel"]
    for name in data.feature_names:
        expected = "category" if name in data.categorical_features else "float64"
        assert str(data.X[name].dtype) == expected, name
    assert list(data.X["zip_code"].cat.categories) == ["Rural", "Surburban", "Urban"]
    # the one-hot frame has the columns of load_hillstrom().X
    assert data.onehot_feature_names == list(load_hillstrom(data_home=data_home).X.columns)
    assert data.X_onehot.shape == (500, 11) and (data.X_onehot.dtypes == np.float64).all()
    assert data.X_onehot.filter(like="channel_").sum(axis=1).eq(1).all()
    for key in ("t", "y", "mu0", "mu1", "tau", "propensity", "index"):
        assert isinstance(data[key], np.ndarray) and data[key].shape == (500,), key
    assert data.t.dtype == np.int64 and set(np.unique(data.t)) == {0, 1}
    assert data.y.dtype == np.float64
    # the rows are real, distinct rows of the table
    assert np.unique(data.index).size == 500 and data.index.max() < 64_000
    source = hillstrom_frame.iloc[data.index].reset_index(drop=True)
    np.testing.assert_allclose(data.X["history"], source["history"])
    assert (data.X["channel"].astype(str) == source["channel"].astype(str)).all()


def test_jobs_covariates(data_home):
    data = make_semi_synthetic(None, covariates="jobs", data_home=data_home, random_state=0)
    assert data.X.shape == (3212, 8) and data.covariates == "jobs"
    assert data.categorical_features == [] and data.X.equals(data.X_onehot)
    assert sorted(data.index) == list(range(3212))
    with pytest.raises(ValueError, match=r"larger than the covariate table \(jobs: 3212 rows\)"):
        make_semi_synthetic(covariates="jobs", data_home=data_home)


def test_user_table_and_as_frame_false(table):
    data = make_semi_synthetic(300, covariates=table, random_state=0)
    assert data.covariates == "DataFrame"
    assert data.categorical_features == ["region", "tier"]
    assert str(data.X["region"].dtype) == "category" and str(data.X["app"].dtype) == "float64"
    assert data.X_onehot.shape == (300, 5 + 3 + 4)
    arrays = make_semi_synthetic(300, covariates=table, random_state=0, as_frame=False)
    assert isinstance(arrays.X, np.ndarray) and arrays.X.dtype == np.float64
    np.testing.assert_array_equal(arrays.X, data.X_onehot.to_numpy())
    assert arrays.feature_names == data.onehot_feature_names
    np.testing.assert_array_equal(arrays.y, data.y)


@pytest.mark.parametrize("surface", SURFACES)
def test_truth_is_consistent_for_every_surface(table, surface):
    data = make_semi_synthetic(None, covariates=table, surface=surface, effect_size=2.0,
                               heterogeneity=0.3, noise=0.5, random_state=3)  # fmt: skip
    assert data.surface == surface
    np.testing.assert_allclose(data.tau, data.mu1 - data.mu0)
    residual = data.y - np.where(data.t == 1, data.mu1, data.mu0)
    assert np.std(residual) == pytest.approx(0.5, rel=0.15)
    # n=None takes the whole table, where the surfaces are standardized
    assert np.mean(data.mu0) == pytest.approx(0.0, abs=1e-9)
    assert np.std(data.mu0) == pytest.approx(1.0)
    assert np.mean(data.tau) == pytest.approx(2.0)
    assert np.std(data.tau) == pytest.approx(2.0 * 0.3)
    assert np.isfinite(data.propensity).all() and 0 < data.t.mean() < 1
    noiseless = make_semi_synthetic(200, covariates=table, surface=surface, noise=0.0,
                                    random_state=3)  # fmt: skip
    np.testing.assert_array_equal(
        noiseless.y, np.where(noiseless.t == 1, noiseless.mu1, noiseless.mu0)
    )


def test_constant_and_zero_effect(table):
    data = make_semi_synthetic(200, covariates=table, heterogeneity=0.0, effect_size=-1.5,
                               random_state=0)  # fmt: skip
    np.testing.assert_allclose(data.tau, -1.5)
    data = make_semi_synthetic(200, covariates=table, effect_size=0.0, random_state=0)
    np.testing.assert_allclose(data.tau, 0.0)


# --------------------------------------------------------------------------- seeds and surfaces


def test_same_seed_same_data_and_other_seeds_other_surfaces(table):
    a = make_semi_synthetic(400, covariates=table, random_state=7)
    b = make_semi_synthetic(400, covariates=table, random_state=7)
    for key in ("t", "y", "mu0", "mu1", "tau", "propensity", "index"):
        np.testing.assert_array_equal(a[key], b[key])
    pd.testing.assert_frame_equal(a.X, b.X)
    c = make_semi_synthetic(400, covariates=table, random_state=8)
    for field in ("mu0", "tau", "propensity"):
        x, y = _on_common_rows(a, c, field)
        assert not np.allclose(x, y), field
    # a Generator is accepted and reproducible too
    g1 = make_semi_synthetic(50, covariates=table, random_state=np.random.default_rng(1))
    g2 = make_semi_synthetic(50, covariates=table, random_state=np.random.default_rng(1))
    np.testing.assert_array_equal(g1.y, g2.y)


@pytest.mark.parametrize("surface", SURFACES)
def test_surfaces_do_not_depend_on_n(table, surface):
    small = make_semi_synthetic(100, covariates=table, surface=surface, random_state=5)
    full = make_semi_synthetic(None, covariates=table, surface=surface, random_state=5)
    order = np.argsort(full.index)
    for field in ("mu0", "tau", "propensity"):
        np.testing.assert_allclose(small[field], full[field][order][small.index])


def test_surface_families_differ(table):
    data = {s: make_semi_synthetic(None, covariates=table, surface=s, random_state=0)
            for s in SURFACES}  # fmt: skip
    values = [d.mu0[np.argsort(d.index)] for d in data.values()]
    for i in range(len(values)):
        for j in range(i):
            assert not np.allclose(values[i], values[j])
    # the linear family is exactly linear in the clipped standardized continuous columns and
    # the levels of the discrete ones (as the docstring says); the others are not
    z = table[["spend", "visits", "age"]].to_numpy(dtype=float)
    z = np.clip((z - z.mean(axis=0)) / z.std(axis=0), -3, 3)
    levels = pd.get_dummies(table[["member", "app", "region", "tier"]].astype(str), dtype=float)
    design = np.column_stack([z, levels.to_numpy()])
    for surface, d in data.items():
        mu0 = d.mu0[np.argsort(d.index)]
        fit = design @ np.linalg.lstsq(design, mu0, rcond=None)[0]
        r2 = 1 - np.var(mu0 - fit) / np.var(mu0)
        assert r2 > 1 - 1e-10 if surface == "linear" else r2 < 0.99, (surface, r2)


@pytest.mark.parametrize("surface", SURFACES)
def test_categorical_columns_move_the_outcome(table, surface):
    # three copies of the same rows that differ only in the category of "region"
    base = table.drop(columns="region").iloc[:100]
    copies = [base.assign(region=level) for level in ("north", "south", "west")]
    frame = pd.concat(copies, ignore_index=True)
    data = make_semi_synthetic(None, covariates=frame, surface=surface, random_state=0)
    order = np.argsort(data.index)
    for field in ("mu0", "tau"):
        values = data[field][order].reshape(3, 100)
        assert np.all(np.abs(values[0] - values[1]) > 1e-9), field
        assert np.all(np.abs(values[0] - values[2]) > 1e-9), field


# --------------------------------------------------------------------------- treatment assignment


def test_no_confounding_is_randomized(table):
    data = make_semi_synthetic(300, covariates=table, confounding=0.0, random_state=0)
    np.testing.assert_allclose(data.propensity, 0.5)
    data = make_semi_synthetic(300, covariates=table, confounding=3.0, overlap=0.5,
                               random_state=0)  # fmt: skip
    np.testing.assert_allclose(data.propensity, 0.5)


@pytest.mark.parametrize("surface", SURFACES)
def test_stronger_confounding_spreads_propensities(table, surface):
    spread = [
        make_semi_synthetic(None, covariates=table, surface=surface, confounding=k,
                            random_state=1).propensity.std()
        for k in (0.0, 0.5, 1.0, 2.0, 4.0)
    ]  # fmt: skip
    assert spread[0] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(spread) > 0), spread


def test_confounding_biases_the_naive_estimate(table):
    data = make_semi_synthetic(None, covariates=table, confounding=3.0, noise=0.0,
                               random_state=0)  # fmt: skip
    naive = data.y[data.t == 1].mean() - data.y[data.t == 0].mean()
    assert naive - data.tau.mean() > 0.3
    # units with a higher baseline are treated more often
    assert np.corrcoef(data.mu0, data.propensity)[0, 1] > 0.4


@pytest.mark.parametrize("overlap", [0.0, 0.05, 0.2])
def test_overlap_bounds(table, overlap):
    data = make_semi_synthetic(None, covariates=table, confounding=20.0, overlap=overlap,
                               random_state=2)  # fmt: skip
    assert data.propensity.min() >= overlap and data.propensity.max() <= 1 - overlap
    if overlap > 0:  # with such strong confounding the bounds are nearly reached
        assert data.propensity.min() < overlap + 0.01
        assert data.propensity.max() > 1 - overlap - 0.01


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"surface": "tree"}, r"surface must be one of 'linear', 'step', 'smooth', 'mixed'"),
        (
            {"n": 601},
            r"n=601 is larger than the covariate table \(DataFrame: 600 rows\).*"
            r"n <= 600, or n=None",
        ),
        ({"n": 0}, "n must be an integer >= 1"),
        ({"noise": -0.1}, r"noise .* must be a finite number >= 0; got -0.1\. Use noise=0"),
        ({"noise": float("nan")}, "noise"),
        ({"overlap": 0.6}, r"overlap must be a number in \[0, 0.5\].*got 0.6"),
        ({"overlap": -0.01}, r"overlap must be a number in \[0, 0.5\]"),
        ({"confounding": -1.0}, "confounding must be >= 0"),
        ({"heterogeneity": -0.5}, "heterogeneity must be >= 0"),
        ({"effect_size": float("inf")}, "effect_size must be a finite real number"),
        ({"covariates": "ihdp"}, r"covariates must be one of 'hillstrom', 'jobs' or a pandas"),
        ({"random_state": "seed"}, "random_state must be"),
    ],
    ids=[
        "surface",
        "n-too-large",
        "n0",
        "negative-noise",
        "nan-noise",
        "overlap-high",
        "overlap-negative",
        "confounding",
        "heterogeneity",
        "effect-size",
        "covariates",
        "random-state",
    ],  # fmt: skip
)
def test_bad_parameters(table, kwargs, match):
    kwargs = {"n": 100, "covariates": table, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_semi_synthetic(**kwargs)


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"a": [1.0, np.nan, 3.0]}), r"missing values in columns \['a'\]"),
        (pd.DataFrame({"a": [1.0, np.inf, 3.0]}), "column 'a' has infinite values"),
        (pd.DataFrame(index=range(3)), "at least one row and one column"),
        (pd.DataFrame({"d": pd.date_range("2024-01-01", periods=3)}), "column 'd' has dtype"),
        (pd.DataFrame([[1.0, 2.0]] * 3, columns=["a", "a"]), r"duplicated column names \['a'\]"),
    ],
    ids=["nan", "inf", "empty", "datetime", "duplicated"],
)
def test_bad_tables(frame, match):
    with pytest.raises(ValueError, match=match):
        make_semi_synthetic(2, covariates=frame)


def test_data_home_and_download_if_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_if_missing=False"):
        make_semi_synthetic(data_home=tmp_path, download_if_missing=False)
    with pytest.raises(FileNotFoundError, match="download_if_missing=False"):
        make_semi_synthetic(covariates="jobs", data_home=tmp_path, download_if_missing=False)
