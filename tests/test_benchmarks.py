"""Smoke tests of the benchmark scripts: tiny settings, results in a temporary folder."""

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load_common():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("_common", BENCHMARKS / "_common.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


common = _load_common()


@pytest.mark.parametrize("outcome", ["continuous", "binary"])
@pytest.mark.parametrize("name", list(common.ALL_MODELS))
def test_model_table_builds_every_model(name, outcome):
    pytest.importorskip("econml")
    model = common.make_model(name, outcome, random_state=3, max_epochs=2)
    if common.is_causalmim(model):
        assert model.get_params()["max_epochs"] == 2
        assert model.get_params()["outcome"] == outcome


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ValueError, match="TARNet"):
        common.make_model("NoSuchNet")


def test_mean_se_skips_missing_values():
    mean, se = common.mean_se([1.0, 3.0, None, float("nan")])
    assert mean == 2.0 and se == pytest.approx(1.0)
    assert all(math.isnan(v) for v in common.mean_se([None]))


def _run(script, tmp_path, data_home, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1", CAUSALMIM_DATA_HOME=str(data_home))
    cmd = [sys.executable, str(BENCHMARKS / script), "--out", str(tmp_path), "--data-home",
           str(data_home), "--max-epochs", "2", "--no-progress", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _check_files(tmp_path, stem, pngs):
    md = (tmp_path / f"{stem}.md").read_text()
    assert "TRIAL RUN" in md and "Commit:" in md and "Versions:" in md
    result = json.loads((tmp_path / f"{stem}.json").read_text())
    env = result["environment"]
    for key in ("command", "date", "commit", "versions", "cpu"):
        assert key in env
    assert env["versions"]["torch"]
    for png in pngs:
        assert (tmp_path / png).stat().st_size > 1000
    return md, result


@pytest.mark.slow
def test_ihdp_script(tmp_path, data_home):
    # two fits in two worker processes: exercises the process pool too
    _run("ihdp.py", tmp_path, data_home, "--reps", "1", "--models", "TARNet", "TLearner",
         "--jobs", "2")
    md, result = _check_files(tmp_path, "ihdp", ["ihdp_pehe.png"])
    assert result["replications"] == [1]
    for model in ("TARNet", "TLearner"):
        summary = result["summary"][model]
        assert summary["n"] == 1 and summary["failed"] == 0
        assert np.isfinite(summary["pehe_out"]["mean"]) and summary["median_seconds"] > 0
    assert "CFR-Wass" in md  # published reference rows
    assert {r["model"] for r in result["runs"]} == {"TARNet", "TLearner"}


@pytest.mark.slow
def test_jobs_script(tmp_path, data_home):
    _run("jobs.py", tmp_path, data_home, "--splits", "1", "--models", "DragonNet", "TLearner")
    _, result = _check_files(tmp_path, "jobs", ["jobs_policy_risk.png"])
    for model in ("DragonNet", "TLearner"):
        summary = result["summary"][model]
        assert 0 <= summary["rpol_out"]["mean"] <= 1
        assert summary["att_out"]["mean"] >= 0


@pytest.mark.slow
def test_uplift_script(tmp_path, data_home):
    _run("uplift.py", tmp_path, data_home, "--reps", "1", "--train-size", "600",
         "--ug-train", "1500", "--ug-test", "2000", "--models", "TARNet", "TLearner")
    _, result = _check_files(tmp_path, "uplift",
                             ["uplift_hillstrom_qini.png", "uplift_user_growth.png"])
    hill = result["suites"]["hillstrom"]
    assert hill["train_size"] == 600 and hill["test_size"] == 32_000
    assert np.isfinite(hill["summary"]["TARNet"]["qini_2"]["mean"])
    growth = result["suites"]["user_growth"]["summary"]["TLearner"]
    assert growth["pehe"]["mean"] > 0 and growth["oracle_share"]["mean"] <= 1


def test_oracle_share_is_one_for_the_truth_and_zero_for_a_constant():
    spec = importlib.util.spec_from_file_location("uplift_bench", BENCHMARKS / "uplift.py")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        uplift = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(uplift)
    finally:
        sys.path.remove(str(BENCHMARKS))
    tau = np.random.default_rng(0).normal(0.01, 0.02, 500)
    assert uplift.oracle_share(tau, tau) == pytest.approx(1.0)
    assert uplift.oracle_share(np.zeros_like(tau), tau) == pytest.approx(0.0, abs=1e-12)
    assert uplift.oracle_share(-tau, tau) < 0


@pytest.mark.slow
def test_disentangled_script(tmp_path, data_home):
    _run("disentangled.py", tmp_path, data_home, "--seeds", "1", "--jobs", "1")
    md, result = _check_files(tmp_path, "disentangled", [])
    assert {r["model"] for r in result["rows"]} == {"TARNet", "CausalMIM"}
    mim = next(r for r in result["rows"] if r["model"] == "CausalMIM")
    assert set(mim["factor_ok"]) == {"instrumental", "confounding", "adjustment"}
    assert "Paired CausalMIM minus TARNet" in md
