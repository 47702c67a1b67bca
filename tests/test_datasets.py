"""Tests of causalmim.datasets: synthetic generators and benchmark loaders."""

import hashlib
import os
import urllib.error

import numpy as np
import pandas as pd
import pytest

from causalmim.datasets import (
    _home,
    get_data_home,
    iter_user_growth,
    load_hillstrom,
    load_ihdp,
    load_jobs,
    make_disentangled,
    make_user_growth,
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests never download: only file:// URLs may be opened."""
    real_urlopen = _home.urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        if not str(url).startswith("file:"):
            raise AssertionError(f"a test tried to download {url}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(_home.urllib.request, "urlopen", guarded)


def _link(src_home, dst_home, *relpaths):
    """Build a data home in tmp_path from symbolic links to the shared files (no copies)."""
    for rel in relpaths:
        dst = dst_home / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.join(src_home, rel), dst)
    return dst_home


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


# --------------------------------------------------------------------------- make_user_growth

UG_KEYS = ("X", "t", "y", "mu", "uplift", "propensity")


@pytest.fixture(scope="module")
def growth():
    # 70,000 rows cross the internal block boundary at 65,536
    return make_user_growth(n=70_000, n_arms=3, random_state=7, as_frame=False)


def _assert_same(a, b):
    for key in UG_KEYS:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


def test_user_growth_shapes_and_dtypes(growth):
    n = 70_000
    assert growth.X.shape == (n, 6) and growth.X.dtype == np.float32
    assert growth.feature_names == [
        "activity", "engagement", "tenure", "mobile", "noise_0", "noise_1"
    ]  # fmt: skip
    assert growth.t.shape == (n,) and growth.t.dtype == np.int8
    assert set(np.unique(growth.t)) == {0, 1, 2}
    assert growth.y.dtype == np.float32 and set(np.unique(growth.y)) == {0.0, 1.0}
    assert growth.mu.shape == (n, 3) and growth.propensity.shape == (n, 3)
    assert growth.uplift.shape == (n, 2)
    assert growth.treatment_names == ["control", "arm_1", "arm_2"]


def test_user_growth_ground_truth_is_consistent(growth):
    np.testing.assert_allclose(growth.uplift, growth.mu[:, 1:] - growth.mu[:, :1], atol=1e-6)
    np.testing.assert_allclose(growth.propensity.sum(axis=1), 1.0, atol=1e-5)
    assert growth.propensity.min() >= 0.1 / 3 - 1e-6  # exploration / n_arms
    assert ((growth.mu > 0) & (growth.mu < 1)).all()


@pytest.mark.parametrize("chunk_size", [1, 9_999, 65_536, 1_000_000], ids=lambda c: f"chunk{c}")
def test_user_growth_chunk_size_invariance(growth, chunk_size):
    n = 70_000 if chunk_size > 1 else 300
    data = make_user_growth(n=n, n_arms=3, random_state=7, as_frame=False, chunk_size=chunk_size)
    _assert_same(data, {key: growth[key][:n] for key in UG_KEYS})


def test_user_growth_iter_concatenates_to_make(growth):
    chunks = list(
        iter_user_growth(n=70_000, n_arms=3, random_state=7, chunk_size=30_000, as_frame=True)
    )
    assert [(c.start, c.stop) for c in chunks] == [(0, 30_000), (30_000, 60_000), (60_000, 70_000)]
    assert chunks[1].X.index[0] == 30_000
    whole = {key: np.concatenate([np.asarray(c[key]) for c in chunks]) for key in UG_KEYS}
    _assert_same(whole, growth)


def test_user_growth_deterministic_and_seeded():
    a = make_user_growth(n=5_000, random_state=1)
    b = make_user_growth(n=5_000, random_state=np.random.SeedSequence(1))
    _assert_same(a, b)
    c = make_user_growth(n=5_000, random_state=2)
    assert not np.array_equal(a.X.to_numpy(), c.X.to_numpy())
    assert isinstance(a.X, pd.DataFrame) and list(a.X.columns) == a.feature_names


def test_user_growth_campaign_properties():
    data = make_user_growth(n=50_000, random_state=0, as_frame=False)
    activity, t, y, uplift = data.X[:, 0], data.t, data.y, data.uplift[:, 0]
    assert data.mu[:, 0].mean() == pytest.approx(0.02, abs=0.002)  # calibrated base rate
    assert 0.0 < uplift.mean() < 0.02  # small uplift
    assert 0.05 < (uplift < 0).mean() < 0.25  # some users are hurt
    # confounded targeting: activity raises both the chance of treatment and of conversion
    assert np.corrcoef(activity, t)[0, 1] > 0.2
    assert np.corrcoef(activity, data.mu[:, 0])[0, 1] > 0.3
    naive = y[t == 1].mean() - y[t == 0].mean()
    assert naive > 1.5 * uplift.mean()


def test_user_growth_randomized_when_no_targeting():
    data = make_user_growth(n=20_000, targeting_strength=0.0, random_state=0, as_frame=False)
    np.testing.assert_allclose(data.propensity, 0.5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n must be"),
        ({"n_arms": 1}, "n_arms"),
        ({"base_rate": 0.0}, "base_rate"),
        ({"exploration": 1.5}, "exploration"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"random_state": "seed"}, "random_state"),
    ],
    ids=["n", "arms", "base-rate", "exploration", "chunk-size", "random-state"],
)
def test_user_growth_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_user_growth(**kwargs)
    with pytest.raises(ValueError, match=match):
        next(iter_user_growth(**kwargs))


# --------------------------------------------------------------------------- data home


def test_get_data_home_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("CAUSALMIM_DATA_HOME", str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert get_data_home() == tmp_path / "env"
    monkeypatch.delenv("CAUSALMIM_DATA_HOME")
    assert get_data_home() == tmp_path / "xdg" / "causalmim"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home() == tmp_path / "home" / ".cache" / "causalmim"
    assert not (tmp_path / "home").exists()  # nothing is created


def test_remote_files_table_is_complete():
    assert len(_home.REMOTE_FILES) == 1 + 50 + 1 + 3 + 1
    for rel, remote in _home.REMOTE_FILES.items():
        assert rel.split("/")[0] in {"ihdp", "jobs", "hillstrom"}
        assert len(remote.sha256) == 64 and int(remote.sha256, 16) >= 0, rel
        assert remote.urls and all(u.startswith(("http://", "https://")) for u in remote.urls)


def test_remote_checksums_match_the_shared_files(data_home):
    checked = 0
    for rel, remote in _home.REMOTE_FILES.items():
        path = os.path.join(data_home, rel)
        if os.path.isfile(path):
            assert _home._sha256(path) == remote.sha256, rel
            checked += 1
    assert checked == len(_home.REMOTE_FILES)


def _serve(tmp_path, monkeypatch, content):
    """Register a fake remote file served from a file:// URL."""
    src = tmp_path / "remote.txt"
    src.write_bytes(content)
    sha = hashlib.sha256(content).hexdigest()
    monkeypatch.setitem(_home.REMOTE_FILES, "fake/file.txt", _home.RemoteFile((src.as_uri(),), sha))
    return sha


def test_fetch_downloads_and_checks_sha256(tmp_path, monkeypatch):
    _serve(tmp_path, monkeypatch, b"hello")
    path = _home.fetch("fake/file.txt", tmp_path / "home")
    assert path == tmp_path / "home" / "fake" / "file.txt"
    assert path.read_bytes() == b"hello"
    assert os.listdir(path.parent) == ["file.txt"]  # no temporary file left


def test_fetch_rejects_wrong_checksum(tmp_path, monkeypatch):
    _serve(tmp_path, monkeypatch, b"hello")
    remote = _home.REMOTE_FILES["fake/file.txt"]
    monkeypatch.setitem(_home.REMOTE_FILES, "fake/file.txt", remote._replace(sha256="0" * 64))
    with pytest.raises(FileNotFoundError, match="checksum mismatch"):
        _home.fetch("fake/file.txt", tmp_path / "home")
    assert os.listdir(tmp_path / "home" / "fake") == []


@pytest.mark.parametrize(
    ("loader", "relpath"),
    [
        (load_hillstrom, "hillstrom/Kevin_Hillstrom"),
        (load_jobs, "jobs/lalonde/nsw_treated.txt"),
        (load_ihdp, "ihdp/ihdp_npci_1-100.test.npz"),
    ],
    ids=["hillstrom", "jobs", "ihdp"],
)
def test_offline_error_says_where_to_put_the_file(tmp_path, monkeypatch, loader, relpath):
    def offline(url, dest, sha256, timeout=60):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(_home, "_download", offline)
    with pytest.raises(FileNotFoundError) as info:
        loader(data_home=tmp_path)
    message = str(info.value)
    assert relpath in message
    assert str(tmp_path) in message
    assert "CAUSALMIM_DATA_HOME" in message
    assert "no network" in message


@pytest.mark.parametrize(
    "loader", [load_hillstrom, load_jobs, load_ihdp], ids=["hillstrom", "jobs", "ihdp"]
)
def test_download_if_missing_false(tmp_path, loader):
    with pytest.raises(FileNotFoundError, match="download_if_missing=False"):
        loader(data_home=tmp_path, download_if_missing=False)


# --------------------------------------------------------------------------- IHDP

IHDP_KEYS = ("x", "t", "yf", "ycf", "mu0", "mu1")


@pytest.fixture(scope="module")
def ihdp(data_home):
    return load_ihdp(data_home=data_home)


def test_ihdp_shapes(ihdp):
    assert [rep.replication for rep in ihdp] == list(range(1, 51))
    for rep in ihdp:
        assert rep.train.x.shape == (672, 25) and rep.test.x.shape == (75, 25)
        for key in IHDP_KEYS[1:]:
            assert rep.train[key].shape == (672,) and rep.test[key].shape == (75,)
        assert rep.train.t.dtype == np.int64 and set(np.unique(rep.train.t)) == {0, 1}
        assert len(rep.feature_names) == 25
    x = ihdp[0].train.x
    assert set(np.unique(x[:, 13])) == {1.0, 2.0}  # kept as distributed
    assert all(set(np.unique(x[:, j])) <= {0.0, 1.0} for j in range(6, 25) if j != 13)


def test_ihdp_train_and_test_do_not_overlap(ihdp):
    for rep in ihdp[:10]:
        rows = {np.r_[x, y].tobytes() for x, y in zip(rep.train.x, rep.train.yf, strict=True)}
        assert not any(
            np.r_[x, y].tobytes() in rows for x, y in zip(rep.test.x, rep.test.yf, strict=True)
        )


def test_ihdp_matches_official_test_file_and_noiseless_truth(ihdp, data_home):
    with np.load(os.path.join(data_home, "ihdp", "ihdp_npci_1-100.test.npz")) as npz:
        for rep in (ihdp[0], ihdp[-1]):
            i = rep.replication - 1
            np.testing.assert_array_equal(rep.test.x, npz["x"][:, :, i])
            np.testing.assert_array_equal(rep.test.mu1, npz["mu1"][:, i])
    tau = np.concatenate([rep.train.mu1 - rep.train.mu0 for rep in ihdp])
    assert 3.0 < tau.mean() < 5.0  # response surface B, ATE about 4


@pytest.mark.parametrize(
    ("replications", "expected"),
    [([3, 1], [3, 1]), (2, [2]), (range(49, 51), [49, 50]), ([5, 5], [5])],
    ids=["list-order-kept", "int", "range", "duplicates"],
)
def test_ihdp_replication_selection(data_home, replications, expected):
    assert [rep.replication for rep in load_ihdp(replications, data_home=data_home)] == expected


@pytest.mark.parametrize(
    ("replications", "match"),
    [
        ([51], r"51 not available .* available: 1-50.*official train file"),
        ([0], "integers >= 1"),
        (["1"], "integers >= 1"),
        ([], "empty"),
        (1.5, "iterable"),
    ],
    ids=["beyond-50", "zero", "string", "empty", "float"],
)
def test_ihdp_replication_errors(data_home, replications, match):
    with pytest.raises(ValueError, match=match):
        load_ihdp(replications, data_home=data_home)


def test_ihdp_csv_route_equals_reconstructed_file(ihdp, data_home, tmp_path):
    csv = [f"ihdp/csv/ihdp_npci_{i}.csv" for i in (1, 2, 7)]
    home = _link(data_home, tmp_path, "ihdp/ihdp_npci_1-100.test.npz", *csv)
    reps = load_ihdp(data_home=home, download_if_missing=False)
    assert [rep.replication for rep in reps] == [1, 2, 7]
    for rep in reps:
        ref = ihdp[rep.replication - 1]
        for part in ("train", "test"):
            for key in IHDP_KEYS:
                np.testing.assert_array_equal(rep[part][key], ref[part][key])
    with pytest.raises(ValueError, match="available: 1-2, 7. The CSV files"):
        load_ihdp([3], data_home=home, download_if_missing=False)


def test_ihdp_official_route_is_preferred(ihdp, data_home, tmp_path):
    """An (abridged) official train file takes precedence over the reconstructed one."""
    home = _link(data_home, tmp_path, "ihdp/ihdp_npci_1-100.test.npz",
                 "ihdp/ihdp_npci_1-50.train.reconstructed.npz")  # fmt: skip
    with np.load(os.path.join(data_home, "ihdp", "ihdp_npci_1-50.train.reconstructed.npz")) as z:
        np.savez(tmp_path / "ihdp" / "ihdp_npci_1-100.train.npz",
                 **{key: z[key][::-1, ..., :3] for key in IHDP_KEYS})  # fmt: skip
    reps = load_ihdp(data_home=home)
    assert [rep.replication for rep in reps] == [1, 2, 3]
    np.testing.assert_array_equal(reps[2].train.yf, ihdp[2].train.yf[::-1])


# --------------------------------------------------------------------------- Jobs


@pytest.fixture(scope="module")
def jobs(data_home):
    return load_jobs(data_home=data_home)


def _whole(split, key):
    return np.concatenate([split.train[key], split.test[key]])


def test_jobs_counts(jobs):
    assert len(jobs) == 10
    for split in jobs:
        assert split.source == "lalonde"
        assert split.train.x.shape == (2570, 8) and split.test.x.shape == (642, 8)
        t, e, yf = _whole(split, "t"), _whole(split, "e"), _whole(split, "yf")
        assert (t.size, t.sum(), e.sum()) == (3212, 297, 722)
        assert not np.any((t == 1) & (e == 0))  # the treated are all experimental
        assert set(np.unique(yf)) == {0.0, 1.0}
        # stratified: each group keeps its share in the test part
        assert (split.test.t.sum(), split.test.e.sum()) == (59, 59 + 85)
    assert jobs[0].feature_names == [
        "age", "educ", "black", "hispanic", "married", "nodegree", "re75", "u75"
    ]  # fmt: skip
    x = jobs[0].train.x
    np.testing.assert_array_equal(x[:, 7], x[:, 6] == 0)


def test_jobs_train_and_test_do_not_overlap(jobs):
    for split in jobs:
        assert np.intersect1d(split.train.index, split.test.index).size == 0
        np.testing.assert_array_equal(np.sort(_whole(split, "index")), np.arange(3212))
    assert not np.array_equal(jobs[0].test.index, jobs[1].test.index)


def test_jobs_experimental_att_matches_cfrnet_files(jobs, data_home):
    split = jobs[0]
    t, e, y = _whole(split, "t"), _whole(split, "e"), _whole(split, "yf")
    att = y[t == 1].mean() - y[(t == 0) & (e == 1)].mean()
    with np.load(os.path.join(data_home, "jobs", "jobs_DW_bin.new.10.test.npz")) as npz:
        assert att == pytest.approx(float(npz["ate"].ravel()[0]), abs=1e-4)


def test_jobs_splits_are_deterministic(jobs, data_home):
    again = load_jobs(data_home=data_home, n_splits=3)
    for a, b in zip(again, jobs[:3], strict=True):
        np.testing.assert_array_equal(a.test.index, b.test.index)
        np.testing.assert_array_equal(a.train.x, b.train.x)
    other = load_jobs(data_home=data_home, n_splits=1, random_state=1)
    assert not np.array_equal(other[0].test.index, jobs[0].test.index)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"source": "nope"}, ValueError, "source must be one of"),
        ({"n_splits": 0}, ValueError, "n_splits"),
        ({"test_size": 1.0}, ValueError, "test_size"),
        ({"source": "official"}, FileNotFoundError, "jobs_DW_bin.new.10.train.npz"),
    ],
    ids=["source", "n_splits", "test_size", "official-missing"],
)
def test_jobs_errors(data_home, kwargs, error, match):
    with pytest.raises(error, match=match):
        load_jobs(data_home=data_home, **kwargs)


def test_jobs_official_files_are_read_when_both_present(tmp_path):
    rng = np.random.default_rng(0)
    for part, n in (("train", 8), ("test", 2)):
        (tmp_path / "jobs").mkdir(exist_ok=True)
        np.savez(
            tmp_path / "jobs" / f"jobs_DW_bin.new.10.{part}.npz",
            x=rng.normal(size=(n, 17, 10)),
            t=rng.integers(0, 2, (n, 10)).astype(float),
            yf=rng.integers(0, 2, (n, 10)).astype(float),
            e=np.ones((n, 10)),
            I=np.tile(np.arange(n)[:, None], (1, 10)).astype(np.int32),
        )
    splits = load_jobs(data_home=tmp_path, n_splits=4)
    assert len(splits) == 4 and splits[0].source == "official"
    assert splits[3].train.x.shape == (8, 17) and splits[3].test.t.dtype == np.int64
    assert splits[0].feature_names[:2] == ["x0", "x1"]
    with pytest.raises(ValueError, match="10 splits"):
        load_jobs(data_home=tmp_path, n_splits=11)


# --------------------------------------------------------------------------- Hillstrom


@pytest.fixture(scope="module")
def hillstrom(data_home):
    return load_hillstrom(data_home=data_home)


def test_hillstrom_frame(hillstrom):
    frame = hillstrom.frame
    assert frame.shape == (64_000, 12)
    assert frame["segment"].value_counts().to_dict() == {
        "Womens E-Mail": 21_387, "Mens E-Mail": 21_307, "No E-Mail": 21_306
    }  # fmt: skip
    assert frame["visit"].mean() == pytest.approx(0.1468, abs=1e-4)
    assert frame["conversion"].mean() == pytest.approx(0.00903, abs=1e-5)
    assert frame["spend"].mean() == pytest.approx(1.0509, abs=1e-4)


def test_hillstrom_X_t_y(hillstrom):
    assert isinstance(hillstrom.X, pd.DataFrame) and hillstrom.X.shape == (64_000, 11)
    assert (hillstrom.X.dtypes == np.float64).all()
    assert "history_segment" not in hillstrom.feature_names
    assert hillstrom.X.filter(like="zip_code_").sum(axis=1).eq(1).all()
    assert hillstrom.t.value_counts().sort_index().tolist() == [21_306, 21_307, 21_387]
    assert hillstrom.treatment_names == ["No E-Mail", "Mens E-Mail", "Womens E-Mail"]
    np.testing.assert_array_equal(hillstrom.y, hillstrom.frame["visit"])


@pytest.mark.parametrize(
    ("treatment", "n", "n_treated"),
    [("any", 64_000, 42_694), ("mens", 42_613, 21_307), ("womens", 42_693, 21_387)],
    ids=["any", "mens", "womens"],
)
def test_hillstrom_binary_treatments(data_home, treatment, n, n_treated):
    data = load_hillstrom(data_home=data_home, treatment=treatment, outcome="spend", as_frame=False)
    assert isinstance(data.X, np.ndarray) and data.X.shape == (n, 11)
    assert data.t.sum() == n_treated and set(np.unique(data.t)) == {0, 1}
    np.testing.assert_array_equal(data.y, data.frame["spend"])
    assert data.treatment_names[0] == "No E-Mail"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"outcome": "revenue"}, "outcome must be"), ({"treatment": "both"}, "treatment must be")],
    ids=["outcome", "treatment"],
)
def test_hillstrom_errors(data_home, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_hillstrom(data_home=data_home, **kwargs)
