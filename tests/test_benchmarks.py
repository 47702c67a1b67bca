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


def test_paired_compares_on_shared_finite_units_only():
    a = {1: 1.0, 2: 2.0, 3: 5.0, 4: float("nan"), 5: 0.0}
    b = {1: 2.0, 2: 3.0, 3: 4.0, 4: 1.0}
    d = common.paired(a, b)
    assert (d.n, d.lower) == (3, 2)  # units 1-3: unit 4 is NaN, unit 5 is not in b
    assert d.mean == pytest.approx(-1 / 3)
    assert d.p == pytest.approx(1.0)  # 2 of 3 is no evidence
    assert d.text(digits=2).endswith("(2/3)")
    assert common.paired(a, b, units={3}).lower == 0
    assert common.paired(a, {9: 1.0}) is None
    many = common.paired({u: 0.0 for u in range(20)}, {u: 1.0 for u in range(20)})
    assert many.lower == 20 and many.p < 1e-5
    tied = common.paired({u: 0.0 for u in range(6)}, {u: float(u > 0) for u in range(6)})
    assert (tied.lower, tied.n) == (5, 6) and tied.p == pytest.approx(0.0625)  # 5 of 5 untied


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
def test_ihdp_script_resumes_from_its_cache_and_splits_the_reported_reps(tmp_path, data_home):
    cache = tmp_path / "fits.jsonl"
    first = _run("ihdp.py", tmp_path, data_home, "--reps", "11", "--models", "TLearner",
                 "--cache", str(cache))
    assert "11 fits to run, 0 from" in first.stderr
    assert len(cache.read_text().splitlines()) == 11
    again = _run("ihdp.py", tmp_path, data_home, "--reps", "11", "--models", "TLearner",
                 "--cache", str(cache))
    assert "0 fits to run, 11 from" in again.stderr
    assert len(cache.read_text().splitlines()) == 11
    result = json.loads((tmp_path / "ihdp.json").read_text())
    assert [r["replication"] for r in result["runs"]] == list(range(1, 12))
    md = (tmp_path / "ihdp.md").read_text()
    assert "## Development and reported replications" in md
    assert "√PEHE out, reps 11 |" in md
    rep11 = result["runs"][-1]
    assert f"| {rep11['pehe_out']:.2f} |" in md.split("## Development")[1]
    # a cache in a folder that does not exist yet; --from-cache leaves uncached models out
    nested = tmp_path / "new" / "fits.jsonl"
    _run("ihdp.py", tmp_path, data_home, "--reps", "1", "--models", "TLearner", "--cache",
         str(nested))
    only = _run("ihdp.py", tmp_path, data_home, "--reps", "1", "--models", "TLearner",
                "TARNet", "--cache", str(nested), "--from-cache")
    assert "1 of 2 fits from" in only.stderr
    md = (tmp_path / "ihdp.md").read_text()
    assert "**TLearner**" in md and "**TARNet**" not in md


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
    cache = tmp_path / "fits.jsonl"
    small = ("--reps", "1", "--train-size", "600", "--ug-train", "1500", "--ug-test", "2000")
    first = _run("uplift.py", tmp_path, data_home, *small, "--models", "TARNet", "TLearner",
                 "--cache", str(cache))
    assert "4 fits to run, 0 from" in first.stderr  # 2 suites x 2 models x 1 repetition
    _, result = _check_files(tmp_path, "uplift",
                             ["uplift_hillstrom_qini.png", "uplift_user_growth.png"])
    hill = result["suites"]["hillstrom"]
    assert hill["train_size"] == 600 and hill["test_size"] == 32_000
    assert np.isfinite(hill["summary"]["TARNet"]["qini_2"]["mean"])
    growth = result["suites"]["user_growth"]["summary"]["TLearner"]
    assert growth["pehe"]["mean"] > 0 and growth["oracle_share"]["mean"] <= 1
    # resumed: the cached fits (and the effects the plots need) are reused, one model added
    (tmp_path / "uplift_user_growth.png").unlink()
    again = _run("uplift.py", tmp_path, data_home, *small, "--models", "TARNet", "TLearner",
                 "XLearner", "--cache", str(cache))
    assert "2 fits to run, 4 from" in again.stderr
    assert (tmp_path / "uplift_user_growth.png").is_file()
    resumed = json.loads((tmp_path / "uplift.json").read_text())
    assert resumed["suites"]["hillstrom"]["summary"]["TARNet"] == hill["summary"]["TARNet"]
    assert set(resumed["suites"]["user_growth"]["summary"]) == {"TARNet", "TLearner",
                                                                "XLearner"}
    only = _run("uplift.py", tmp_path, data_home, *small, "--models", "TLearner", "DRLearner",
                "--cache", str(cache), "--from-cache")
    assert "2 of 4 fits from" in only.stderr


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


@pytest.mark.slow
def test_interval_coverage_script(tmp_path, data_home):
    # --quick: 3 small synthetic worlds and 2 IHDP replications, CausalMIM with 4 bootstrap
    # members and the two EconML peers, in two worker processes
    cache = tmp_path / "fits.jsonl"
    _run("interval_coverage.py", tmp_path, data_home, "--quick", "--cache", str(cache))
    md, result = _check_files(tmp_path, "coverage_quick", [])
    assert len(cache.read_text().splitlines()) == 15
    # resumed with more members: only CausalMIM's fits are new (the key holds the members)
    proc = _run("interval_coverage.py", tmp_path, data_home, "--quick", "--members", "3",
                "--cache", str(cache), "--stem", "again")
    assert "5 fits to run, 10 from" in proc.stderr
    again = json.loads((tmp_path / "again.json").read_text())
    assert {r["members"] for r in again["runs"] if r["model"] == "CausalMIM"} == {3}
    models = ["CausalMIM", "CausalForestDML", "DRLearner"]
    assert result["models"] == models and result["members"] == 4
    assert result["worlds"] == {"synthetic": [0, 1, 2], "ihdp": [1, 2]}
    assert len(result["runs"]) == (3 + 2) * len(models)
    assert all(r["error"] is None for r in result["runs"])
    for suite in ("synthetic", "ihdp"):
        for model in models:
            s = result["summary"][suite][model]
            assert s["n"] == (3 if suite == "synthetic" else 2) and s["failed"] == 0
            assert 0 <= s["ate_covered"]["mean"] <= 1 and 0 <= s["cate_coverage"]["mean"] <= 1
            assert s["ate_width"]["mean"] > 0 and s["cate_width"]["mean"] > 0
            assert s["pehe"]["mean"] > 0
    for run in result["runs"]:
        assert run["ate_lower"] <= run["ate_upper"] and run["inverted_bounds"] == 0
        assert run["nonfinite_bounds"] == 0
    # the ATE target is the sample ATE of the training units (the first 70% of a world)
    from causalmim.datasets import make_disentangled

    world = make_disentangled(n=400, random_state=0)
    first = next(r for r in result["runs"] if r["suite"] == "synthetic" and r["world"] == 0)
    assert first["n_train"] == 280 and first["n_test"] == 120
    assert first["ate_true"] == pytest.approx(world.tau[:280].mean())
    assert "CausalMIM (bootstrap, M=4)" in md and "Target: ATE coverage between 0.90" in md
    assert "## IHDP-100" in md and "## Disentangled synthetic worlds" in md


@pytest.mark.slow
def test_speed_script(tmp_path, data_home):
    # --quick: IHDP replication 1 (one fit per model), user growth at 2,000 rows, each growth
    # fit in its own spawned process
    _run("speed.py", tmp_path, data_home, "--quick")
    md, result = _check_files(tmp_path, "speed_quick", [])
    assert result["causalmim_defaults"]["n_ensemble"] >= 1
    ihdp = result["ihdp"]
    assert ihdp["replication"] == 1 and ihdp["repeats"] == 1
    assert ihdp["models"] == ["TARNet", "CausalMIM-ens1", "CausalMIM-ens5", "CausalMIM",
                              "CausalMIM-1x100"]
    assert all(r["error"] is None and r["epochs"] == 2 for r in ihdp["runs"])
    assert ihdp["summary"]["CausalMIM-ens5"]["params"]["n_ensemble"] == 5
    assert ihdp["summary"]["CausalMIM-1x100"]["params"]["trunk_units"] == 100
    assert [(r["name"], r["target"]) for r in ihdp["ratios"]] == [
        ("CausalMIM default / TARNet single network", 1.5),
        ("CausalMIM ens5 / CausalMIM ens1", 2.0),
        ("CausalMIM default / one network of 100-unit layers (the earlier default)", 2.0)]
    for r in ihdp["ratios"]:
        assert r["ratio"] > 0 and r["numerator_pehe_out"] > 0
        assert f"**{r['name']}**" in md
    growth = result["user_growth"]["runs"]
    assert [(r["model"], r["n"]) for r in growth] == [("TARNet", 2000), ("CausalMIM", 2000)]
    for r in growth:
        assert r["error"] is None and r["epochs"] == 2
        assert 0 < r["rss_before_fit_gb"] <= r["peak_rss_gb"] and r["rows_per_s"] > 0
        assert r["pehe_in"] > 0 and r["pehe_out"] > 0
    assert "peak RSS GB (≤ 3)" in md and "predict rows/s (≥ 500,000)" in md


@pytest.mark.slow
def test_predict_profile_script(tmp_path, data_home):
    _run("predict_profile.py", tmp_path, data_home, "--rows", "3000")
    md, result = _check_files(tmp_path, "predict_profile", [])
    rows = {r["model"]: r for r in result["rows"]}
    assert list(rows) == ["TARNet", "CausalMIM (defaults)", "CausalMIM, activation='relu'"]
    # Counted by hand from the defaults (two members, 6 features, 50-unit layers, two arms):
    # trunk 6*50 + 50*50, the two factors the heads read 2 * (50*50 + 50*50), the heads
    # 2 * (100*50 + 50*50 + 50); activations 100 + 200 + 200, per member.
    per_member = 6 * 50 + 50 * 50 + 2 * (2 * 50 * 50) + 2 * (100 * 50 + 50 * 50 + 50)
    for name in ("CausalMIM (defaults)", "CausalMIM, activation='relu'"):
        assert rows[name]["macs_per_row"] == 2 * per_member
        assert rows[name]["activations_per_row"] == 2 * 500
        assert rows[name]["floor_rows_per_s"] > 0
    assert all(r["rows_per_s"] > 0 for r in rows.values())
    assert result["kernels"]["elu ns/element"] > 0
    assert "predict rows/s (≥ 500,000)" in md


@pytest.mark.slow
def test_tuning_script(tmp_path, data_home):
    _run("tuning.py", tmp_path, data_home, "--replications", "1", "--candidates", "2",
         "--cv", "2", "--jobs", "1")
    md = (tmp_path / "tuning.md").read_text()
    assert "TRIAL RUN" in md and "Commit:" in md and "## Results" in md
    for row in ("| default |", "| `factual` |", "| `r_loss` |", "| `dr` |", "| `nn_pehe` |",
                "| oracle |"):
        assert row in md, md  # one row per selection criterion


@pytest.mark.slow
def test_mi_estimators_script(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(BENCHMARKS / "mi_estimators.py"), "--quick", "--jobs", "1",
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = (tmp_path / "mi_estimators_quick.md").read_text()
    assert "Commit:" in md and "| d | rho | true MI |" in md
    assert sum(line.startswith("| 1 | ") for line in md.splitlines()) >= 2


@pytest.mark.slow
def test_bp_script(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, str(BENCHMARKS / "bp.py"), "--quick", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = next(tmp_path.glob("bp*.md")).read_text()
    assert "Commit:" in md and "MIME" in md
    assert list(tmp_path.glob("bp*.png"))


@pytest.mark.slow
def test_fairness_script(tmp_path, data_home):
    cache = tmp_path / "fits.jsonl"
    _run("fairness.py", tmp_path, data_home, "--quick", "--jobs", "1", "--cache", str(cache))
    first = (tmp_path / "fairness_quick.md").read_text()
    assert len(cache.read_text().splitlines()) == 10  # 5 configs x (1 world + 1 split)
    proc = _run("fairness.py", tmp_path, data_home, "--quick", "--jobs", "1",
                "--cache", str(cache))
    assert "0 fits to run, 10 from" in proc.stderr
    second = (tmp_path / "fairness_quick.md").read_text()
    assert first.split("## Protocol")[1] == second.split("## Protocol")[1]
    md, result = _check_files(tmp_path, "fairness_quick", ["fairness_quick_tradeoff.png"])
    rows = result["rows"]
    assert not [r for r in rows if r.get("error")]
    assert {r["data"] for r in rows} == {"proxy", "jobs"}
    assert {r["config"] for r in rows} == {"none", "iwclub", "club", "hsic",
                                           "iwclub, default critic"}
    assert all(np.isfinite(r["mi"]) for r in rows)
    assert "## Jobs, s = black" in md
    assert {r["share"] for r in rows if r["data"] == "proxy"} == {0.2}
    assert md.count("`iwclub` minus `club`") == 2  # the proxy world and Jobs


@pytest.mark.slow
def test_parallel_script(tmp_path, data_home):
    cache = tmp_path / "fits.jsonl"
    args = ("--quick", "--jobs", "1", "--growth-n", "1000", "--cache", str(cache))
    _run("parallel.py", tmp_path, data_home, *args)
    md, result = _check_files(tmp_path, "parallel_quick", [])
    rows = result["rows"]
    # 4 models x (IHDP rep 1, world 0, the campaign): one cached row each, no key shared
    assert len(cache.read_text().splitlines()) == 12
    assert len({(r["model"], r["random_state"]) for r in rows}) == 12
    proc = _run("parallel.py", tmp_path, data_home, *args)
    assert "0 fits to run, 12 from" in proc.stderr
    assert json.loads((tmp_path / "parallel_quick.json").read_text())["rows"] == rows
    # --from-cache writes the tables from the cached rows only: CausalMIM was never fitted
    proc = _run("parallel.py", tmp_path, data_home, *args, "--from-cache", "--models",
                "ParallelMIM-K2", "CausalMIM")
    assert "3 of 6 fits from" in proc.stderr
    rows = json.loads((tmp_path / "parallel_quick.json").read_text())["rows"]
    assert {r["model"] for r in rows} == {"ParallelMIM-K2"} and len(rows) == 3
    assert len(cache.read_text().splitlines()) == 12
    assert not [r for r in rows if r.get("error")]
    assert {r["data"] for r in rows} == {"ihdp", "worlds", "growth"}
    for r in rows:
        assert r["pehe_out"] > 0 and r["seconds"] > 0
        if r["model"].startswith("ParallelMIM"):
            assert 0 <= r["path_dcor"] <= 1 and np.isfinite(r["path_mi"])
    assert "Fit time ParallelMIM-K4 / CausalMIM" not in md  # neither model in --quick


@pytest.mark.slow
def test_ablation_script_and_its_resume(tmp_path, data_home):
    args = ("--variants", "mi0", "vclub_s-0.01", "--reps", "11", "--seeds", "1", "--jobs", "1")
    _run("ablation.py", tmp_path, data_home, *args)
    md, result = _check_files(tmp_path, "ablation", [])
    rows = result["rows"]
    assert len(rows) == 2 * 12
    assert {r["variant"] for r in rows} == {"mi0", "vclub_s-0.01"}
    for r in rows:
        assert r["pehe"] > 0 and 0 <= r["dcor"] <= 1
        assert (r["mi"] is None) == (r["kind"] == "ihdp")
    world = next(r for r in rows if r["kind"] == "world")
    assert set(world["factor_ok"]) == {"instrumental", "confounding", "adjustment"}
    assert "reps 1-10 / 11-50" in md
    # a rerun with the same --out reuses every row
    proc = _run("ablation.py", tmp_path, data_home, *args)
    assert "fits to run" not in proc.stderr
    assert json.loads((tmp_path / "ablation.json").read_text())["rows"] == rows


@pytest.mark.slow
def test_semi_synthetic_script(tmp_path, data_home):
    _run("semi_synthetic.py", tmp_path, data_home, "--seeds", "2", "--jobs", "1",
         "--models", "TARNet", "XLearner")
    md, result = _check_files(tmp_path, "semi_synthetic", [])
    rows = result["rows"]
    assert not [r for r in rows if r.get("error")]
    assert {(r["model"], r["surface"]) for r in rows} == {
        (m, f) for m in ("TARNet", "XLearner") for f in ("linear", "step")}
    assert all(r["pehe"] > 0 for r in rows)
    assert "Lowest sqrt(PEHE) per surface" in md and "| step |" in md


@pytest.mark.slow
def test_path_diversity_script(tmp_path, data_home):
    _run("path_diversity.py", tmp_path, data_home, "--quick", "--jobs", "1")
    md, result = _check_files(tmp_path, "path_diversity_quick", [])
    rows = result["rows"]
    assert {(r["cond"], r["w"], r["kind"]) for r in rows} == {
        (c, w, k) for c in ("prefix", "film") for w in (0.0, 0.01) for k in ("world", "ihdp")}
    assert all(0 <= r["dcor"] <= 1 and r["spread"] >= 0 for r in rows)
    assert "## Disentangled worlds 50" in md and "## IHDP-100, replications 6" in md
    # resumes: a second run fits nothing and reports the same rows
    _run("path_diversity.py", tmp_path, data_home, "--quick", "--jobs", "1")
    again = json.loads((tmp_path / "path_diversity_quick.json").read_text())["rows"]
    assert again == rows


def _load_benchmark(name):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_parallel_tables_compare_on_shared_units_and_say_what_the_penalty_did():
    par = _load_benchmark("parallel")
    rows = []
    for unit in range(1, 9):  # K4 and its mi0 twin on units 1-8, the K8 pair on 1-2 only
        rows += [
            {"model": "ParallelMIM-K4", "data": "ihdp", "unit": unit, "pehe_out": 1.0,
             "ate_out": 0.1, "seconds": 2.0, "path_mi": 5e5, "path_dcor": 0.99},
            {"model": "ParallelMIM-K4-mi0", "data": "ihdp", "unit": unit, "pehe_out": 1.1,
             "ate_out": 0.1, "seconds": 1.0, "path_mi": 7e5, "path_dcor": 0.995},
            {"model": "CausalMIM-ens4", "data": "ihdp", "unit": unit,
             "pehe_out": 0.9 if unit != 4 else 1.2, "ate_out": 0.1, "seconds": 8.0},
        ]
    for unit in (1, 2):
        rows += [{"model": "ParallelMIM-K8", "data": "ihdp", "unit": unit, "pehe_out": 2.0,
                  "ate_out": 0.2, "seconds": 5.0, "path_mi": 3.0, "path_dcor": 0.5},
                 {"model": "CausalMIM-ens8", "data": "ihdp", "unit": unit, "pehe_out": 1.0,
                  "ate_out": 0.2, "seconds": 9.0}]
    models = ("ParallelMIM-K4", "ParallelMIM-K8", "ParallelMIM-K4-mi0", "CausalMIM-ens4",
              "CausalMIM-ens8")
    text = par.section(rows, "ihdp", "IHDP", models)
    assert "5.0e+05" in text  # an exploded CLUB estimate is printed as what it is
    assert "ParallelMIM-K8, CausalMIM-ens8 ran on fewer units" in text
    assert "On the 2 units every model ran (1, 2)" in text
    assert text.count("| ParallelMIM-K4 |") == 2  # the full table and the shared-units one
    assert "distance correlation between paths: median 0.99 against 0.995, lower with " \
        "the penalty on 8 of 8 units (sign test p = 0.0078): the penalty lowers it." in text
    assert "ParallelMIM-K4 against CausalMIM-ens4 on 8 shared units" in text
    assert "lower on 1 of 8" in text
    assert "ParallelMIM-K8 against CausalMIM-ens8 on 2 shared units" in text
    rows = [dict(r, path_dcor=1.0) if r["model"] == "ParallelMIM-K4" else r for r in rows]
    assert "the penalty does **not** lower it" in par.section(rows, "ihdp", "IHDP", models)
    few = [r for r in rows if r["unit"] <= 3]  # 3 of 3 lower: too few units to call it
    assert "(sign test p = 0.25): no clear difference" in par.section(few, "ihdp", "IHDP",
                                                                       models)


def test_model_name_with_settings_changes_only_those():
    model = common.make_model("CausalMIM:ema_decay=0.98,patience=20", "binary", random_state=4)
    default = common.make_model("CausalMIM", "binary", random_state=4).get_params()
    changed = {k for k, v in model.get_params().items() if v != default[k]}
    assert changed == {"ema_decay", "patience"}
    assert model.get_params()["ema_decay"] == 0.98 and model.get_params()["patience"] == 20
    assert common.check_models(["CausalMIM:dropout=0.0", "TARNet"]) == [
        "CausalMIM:dropout=0.0", "TARNet"]


@pytest.mark.parametrize("name, match", [
    ("CausalMIM:", "no settings"),
    ("CausalMIM:dropout", "cannot read 'dropout'"),
    ("CausalMIM:dropout=high", "cannot read 'dropout=high'"),
    ("CausalMIM:no_such=1", "no_such"),
    ("XLearner:alpha=1", "causalmim models only"),
])
def test_model_name_with_bad_settings_says_what_is_wrong(name, match):
    pytest.importorskip("econml")
    with pytest.raises(ValueError, match=match):
        common.make_model(name)


def test_every_named_variant_has_a_note():
    notes = common.model_notes(list(common.VARIANTS))
    assert all(v in notes for v in common.VARIANTS)


def test_check_models_exits_with_the_reason_for_bad_settings():
    with pytest.raises(SystemExit, match="cannot read 'dropout'"):
        common.check_models(["CausalMIM:dropout"])
