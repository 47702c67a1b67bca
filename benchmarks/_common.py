"""Shared code of the benchmark scripts: the model table, fitting, timing, parallel runs, results.

Every benchmark script picks models by name from :data:`ALL_MODELS` (one entry per
configuration, CATENets' ``ALL_MODELS`` pattern), fits them on splits that it builds itself and
writes a Markdown and a JSON file stamped by :func:`environment` (command, versions, commit,
date, CPU). Models only ever see the training part of a split; the causalmim estimators carve
their own validation split for early stopping out of it, the EconML estimators cross-fit their
nuisances inside it.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures as cf
import datetime
import json
import math
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

# GradientBoosting nuisances of the EconML peers: small and seeded.
GB_PARAMS = {"n_estimators": 100, "max_depth": 3}


# ----------------------------------------------------------------------------- the model table


def _causalmim(cls_name, **params):
    def factory(outcome="continuous", random_state=0):
        import causalmim

        return getattr(causalmim, cls_name)(outcome=outcome, random_state=random_state,
                                            **params)

    but = "".join(f", {k}={v!r}" for k, v in params.items())
    factory.__doc__ = f"causalmim.{cls_name} with default settings{but}."
    return factory


def _gb_regressor(random_state):
    from sklearn.ensemble import GradientBoostingRegressor

    return GradientBoostingRegressor(**GB_PARAMS, random_state=random_state)


def _gb_classifier(random_state):
    from sklearn.ensemble import GradientBoostingClassifier

    return GradientBoostingClassifier(**GB_PARAMS, random_state=random_state)


def causal_forest(outcome="continuous", random_state=0):
    """EconML CausalForestDML (defaults) with gradient-boosting nuisances, one process."""
    from econml.dml import CausalForestDML

    binary = outcome == "binary"
    model_y = _gb_classifier(random_state) if binary else _gb_regressor(random_state)
    return CausalForestDML(model_y=model_y, model_t=_gb_classifier(random_state),
                           discrete_treatment=True, discrete_outcome=binary, n_jobs=1,
                           random_state=random_state)


def dr_learner(outcome="continuous", random_state=0):
    """EconML DRLearner (default linear final stage) with gradient-boosting nuisances."""
    from econml.dr import DRLearner

    binary = outcome == "binary"
    model_regression = _gb_classifier(random_state) if binary else _gb_regressor(random_state)
    return DRLearner(model_propensity=_gb_classifier(random_state),
                     model_regression=model_regression, discrete_outcome=binary,
                     random_state=random_state)


def x_learner(outcome="continuous", random_state=0):
    """EconML XLearner with gradient-boosting outcome, effect and propensity models.

    Meta-learners call ``predict`` of their outcome models, so a 0/1 outcome is fitted by a
    regressor (its predictions are probabilities).
    """
    from econml.metalearners import XLearner

    return XLearner(models=_gb_regressor(random_state),
                    propensity_model=_gb_classifier(random_state))


def t_learner(outcome="continuous", random_state=0):
    """EconML TLearner with gradient-boosting outcome models (regressors, see XLearner)."""
    from econml.metalearners import TLearner

    return TLearner(models=_gb_regressor(random_state))


#: name -> factory(outcome={"continuous", "binary"}, random_state=int) -> unfitted estimator.
ALL_MODELS = {
    "TARNet": _causalmim("TARNetRegressor"),
    "CFRNet": _causalmim("CFRNetRegressor"),
    "DragonNet": _causalmim("DragonNetRegressor"),
    "DR-CFR": _causalmim("DRCFRRegressor"),
    "CausalMIM": _causalmim("CausalMIMRegressor"),
    "CausalMIM-ens5": _causalmim("CausalMIMRegressor", n_ensemble=5),
    "CausalMIM-ema": _causalmim("CausalMIMRegressor", ema_decay=0.98, patience=20),
    "CausalMIM-p20": _causalmim("CausalMIMRegressor", patience=20),
    "CausalForestDML": causal_forest,
    "XLearner": x_learner,
    "DRLearner": dr_learner,
    "TLearner": t_learner,
}
ECONML_MODELS = ("CausalForestDML", "XLearner", "DRLearner", "TLearner")
CAUSALMIM_MODELS = tuple(m for m in ALL_MODELS if m not in ECONML_MODELS)
#: Non-default configurations: run by name (``--models``) or by scripts that list them.
VARIANTS = ("CausalMIM-ens5", "CausalMIM-ema", "CausalMIM-p20")
DEFAULT_MODELS = tuple(m for m in ALL_MODELS if m not in VARIANTS)

MODEL_NOTES = (
    "causalmim estimators: default settings (early stopping on a validation split carved from "
    "the training part). EconML peers: GradientBoosting nuisances "
    f"({', '.join(f'{k}={v}' for k, v in GB_PARAMS.items())}, fixed random_state), everything "
    "else at EconML's defaults (DRLearner's final stage is linear; CausalForestDML with "
    "discrete_treatment=True, n_jobs=1); for a 0/1 outcome, CausalForestDML and DRLearner use "
    "classifiers with discrete_outcome=True, the meta-learners regressors."
)


def model_notes(models):
    """:data:`MODEL_NOTES`, plus a line on each non-default variant among ``models``."""
    extra = {"CausalMIM-ens5": " CausalMIM-ens5 is CausalMIM with `n_ensemble=5` (one network "
             "with five members, predictions averaged): a non-default row.",
             "CausalMIM-ema": " CausalMIM-ema is CausalMIM with `ema_decay=0.98, patience=20` "
             "(an average of the weights over the training steps, validated and kept by the "
             "early stopping, which waits 20 epochs instead of 50): a non-default row.",
             "CausalMIM-p20": " CausalMIM-p20 is CausalMIM with `patience=20` alone: a "
             "non-default row."}
    return MODEL_NOTES + "".join(extra[m] for m in models if m in extra)


def _estimator_class(name):
    """The causalmim estimator class called ``name`` (e.g. ``"TARNetRegressor"``), or None."""
    from sklearn.base import BaseEstimator

    import causalmim

    cls = getattr(causalmim, name, None) if name in getattr(causalmim, "__all__", ()) else None
    return cls if isinstance(cls, type) and issubclass(cls, BaseEstimator) else None


def make_model(name, outcome="continuous", random_state=0, max_epochs=None):
    """Build the model ``name``: a key of :data:`ALL_MODELS`, or the class name of a causalmim
    estimator (e.g. ``"TARNetRegressor"``, default settings, for scripts that pick one by class).

    ``max_epochs`` caps the training of the causalmim estimators (smoke tests, or a script's
    own fixed budget).
    """
    base, params = split_model_name(name)
    if base in ALL_MODELS:
        factory = ALL_MODELS[base]
    elif _estimator_class(base) is not None:
        factory = _causalmim(base)
    else:
        raise ValueError(f"Unknown model {name!r}; valid models are {', '.join(ALL_MODELS)}, "
                         "or the class name of a causalmim estimator, each optionally "
                         "followed by ':param=value,...'.")
    model = factory(outcome=outcome, random_state=random_state)
    if params:
        if not is_causalmim(model):
            raise ValueError(f"{name!r}: parameters after ':' are for causalmim models only.")
        model.set_params(**params)
    if max_epochs is not None and is_causalmim(model):
        model.set_params(max_epochs=int(max_epochs))
    return model


def split_model_name(name):
    """``"CausalMIM:ema_decay=0.98,patience=20"`` -> ``("CausalMIM", {"ema_decay": 0.98,
    "patience": 20})``: a model of the table with some settings changed, for development runs
    (values are Python literals without commas: the settings are split at commas)."""
    base, sep, rest = name.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):  # rest is "" without a ':'
        key, eq, value = item.partition("=")
        try:
            if not (eq and key.strip().isidentifier()):
                raise ValueError
            params[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise ValueError(f"{name!r}: write the settings as 'Model:param=value,...' with "
                             f"Python literals as values; cannot read {item!r}.") from None
    if sep and not params:
        raise ValueError(f"{name!r}: no settings after ':'.")
    return base, params


def is_causalmim(model):
    return type(model).__module__.startswith("causalmim")


def fit(model, X, t, y):
    """Fit on training data: causalmim ``fit(X, t, y)``, EconML ``fit(Y, T, X=X)``."""
    if is_causalmim(model):
        return model.fit(X, t, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EconML's chatter about co-linearity, inference etc.
        return model.fit(y, t, X=X)


def effects(model, X):
    """Effects of each treated arm against control: shape (n,) for two arms, (n, K-1) else."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.asarray(model.const_marginal_effect(X), dtype=np.float64)
    out = out.reshape(len(out), -1)  # EconML: (n, d_t) or (n, d_y, d_t)
    return out[:, 0] if out.shape[1] == 1 else out


def fit_effects(model, train, evals):
    """Fit on ``train = (X, t, y)`` and predict effects on each array of ``evals``.

    Returns the list of effect arrays and the wall time in seconds of fit plus predictions.
    """
    start = time.perf_counter()
    fit(model, *train)
    out = [effects(model, X) for X in evals]
    return out, time.perf_counter() - start


def scored_run(ids, name, outcome, seed, max_epochs, train, evals, score, keys):
    """One benchmark run, failures recorded: the result row of model ``name`` on one split.

    Builds the model (:func:`make_model`), fits it on ``train = (X, t, y)`` and predicts the
    effects on each array of ``evals`` (:func:`fit_effects`); ``score(*effects)`` returns the
    dict of results. The row is ``{"model", **ids, "random_state", **results, "seconds",
    "error"}``; when any step fails, ``keys`` (the names of the results) and ``seconds`` are
    None and ``error`` says why (:func:`guarded_row`).
    """
    def work():
        model = make_model(name, outcome, seed, max_epochs)
        effects_, seconds = fit_effects(model, train, evals)
        return {**score(*effects_), "seconds": seconds}

    row = {"model": name, **ids, "random_state": seed}
    return guarded_row(row, work, (*keys, "seconds"))


def check_models(names):
    try:
        unknown = [n for n in names if split_model_name(n)[0] not in ALL_MODELS]
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if unknown:
        raise SystemExit(f"error: unknown model(s) {', '.join(unknown)}; valid models are "
                         f"{', '.join(ALL_MODELS)}.")
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------- command line


#: The options :func:`parser` adds, in order: flag -> (add_argument keywords).
SHARED_OPTIONS = {
    "--models": dict(nargs="+", metavar="NAME", default=None,
                     help=f"models to run, among: {', '.join(ALL_MODELS)}; None: the script's "
                          "set"),
    "--jobs": dict(type=int, default=1,
                   help="worker processes (each runs one fit at a time, on one thread)"),
    "--seed": dict(type=int, default=0, help="base random_state of the models"),
    "--out": dict(type=Path, default=RESULTS,
                  help="folder for the results files (trial runs: a temporary folder)"),
    "--data-home": dict(default=None,
                        help="data folder; None: $CAUSALMIM_DATA_HOME, else ~/.cache/causalmim"),
    "--no-progress": dict(action="store_true", help="no progress bar"),
    # Smoke tests only: cap the causalmim estimators' epochs. Results then are not benchmarks.
    "--max-epochs": dict(type=int, default=None, help=argparse.SUPPRESS),
}


def parser(description, default_jobs=1, omit=()):
    """Argument parser with the options every script shares (:data:`SHARED_OPTIONS`).

    ``omit``: shared flags the script does not take (e.g. ``("--models",)`` for a script with
    a fixed estimator); a script changes a shared default with ``set_defaults``.
    """
    unknown = set(omit) - set(SHARED_OPTIONS)
    if unknown:
        raise ValueError(f"not shared options: {', '.join(sorted(unknown))}")
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for flag, kwargs in SHARED_OPTIONS.items():
        if flag not in omit:
            p.add_argument(flag, **kwargs)
    if "--jobs" not in omit:
        p.set_defaults(jobs=default_jobs)
    return p


def trial_note(args):
    if args.max_epochs is None:
        return None
    return (f"TRIAL RUN: causalmim estimators capped at max_epochs={args.max_epochs} "
            "(smoke test); these are not benchmark figures.")


# ----------------------------------------------------------------------------- parallel runs


def single_thread():
    """One thread per process: small networks and trees run best with processes in parallel."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import torch

    torch.set_num_threads(1)
    # Import lazily loaded modules now, so that the first timed fit does not pay for them.
    import econml.dml  # noqa: F401
    import econml.dr  # noqa: F401
    import econml.metalearners  # noqa: F401
    import sklearn.ensemble  # noqa: F401

    import causalmim.penalties  # noqa: F401

    warnings.filterwarnings("ignore", module="econml")
    warnings.filterwarnings("ignore", module="sklearn")


def _tracked(fn, index, task):
    return index, fn(task)


def parallel_map(fn, tasks, jobs=1, desc=None, progress=True, on_result=None):
    """``[fn(task) for task in tasks]`` in ``jobs`` single-threaded processes, with a progress bar.

    ``fn`` must be a module-level function (it is pickled by reference). Results come back in
    the order of ``tasks``; ``on_result(value)``, if given, is called in this process as each
    one arrives (e.g. to save it).
    """
    from tqdm.auto import tqdm

    tasks = list(tasks)
    results = [None] * len(tasks)
    bar = tqdm(total=len(tasks), desc=desc, disable=not progress, dynamic_ncols=True,
               file=sys.stderr)
    if jobs <= 1 or len(tasks) <= 1:
        single_thread()
        for i, task in enumerate(tasks):
            results[i] = fn(task)
            if on_result is not None:
                on_result(results[i])
            bar.update()
        bar.close()
        return results
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"  # inherited by the workers before they import torch
    context = multiprocessing.get_context("spawn")  # safe with torch (and CUDA) in workers
    with cf.ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context,
                                initializer=single_thread) as pool:
        futures = [pool.submit(_tracked, fn, i, task) for i, task in enumerate(tasks)]
        for future in cf.as_completed(futures):
            i, value = future.result()
            results[i] = value
            if on_result is not None:
                on_result(value)
            bar.update()
    bar.close()
    return results


def appender(path):
    """``on_result`` for :func:`parallel_map` that appends each row to the JSON-lines file
    ``path`` as it arrives (the row cache of a resumable run)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)

    def append(row):
        with open(path, "a") as f:
            f.write(json.dumps(_jsonable(row)) + "\n")
    return append


def add_cache_option(p):
    """Add ``--cache FILE`` to a parser whose script runs :func:`run_models`."""
    p.add_argument("--cache", type=Path, default=None,
                   help="JSON-lines file of finished fits: each new row is appended as it "
                        "arrives, and fits already in it without an error are not rerun (to "
                        "resume an interrupted run; use it only with the same code and options)")
    p.add_argument("--from-cache", action="store_true",
                   help="with --cache: run no fit, write the tables from the cached rows of "
                        "the requested models and units (fits not in the cache are left out)")


def run_models(fn, units, models, args, unit_id, desc=None):
    """Rows of ``fn((name, unit, args.seed + unit_id(unit), args.max_epochs))`` for every unit
    (replication, split...) and every model name, models varying fastest.

    Runs in ``args.jobs`` processes (:func:`parallel_map`), with a progress bar unless
    ``args.no_progress``: the options of :func:`parser`. With ``args.cache`` (see
    :func:`add_cache_option`), rows are keyed by model and ``random_state``: cached rows are
    reused and new rows appended.
    """
    tasks = [(name, unit, args.seed + unit_id(unit), args.max_epochs)
             for unit in units for name in models]
    keys = [(name, seed) for name, _, seed, _ in tasks]
    cached = getattr(args, "cache", None) is not None
    if cached and len(set(keys)) != len(keys):
        raise ValueError("--cache needs one random_state per unit (unit_id gives two units "
                         "the same one), so that a cached row is found by model and seed.")
    rows = run_cached(fn, tasks, keys, lambda row: (row["model"], row["random_state"]), args,
                      desc)
    if cached and any("random_state" not in row for row in rows):
        raise ValueError("--cache needs the rows of fn to carry their random_state.")
    return rows


def run_cached(fn, tasks, keys, row_key, args, desc=None, load=None):
    """The rows of ``fn`` over ``tasks``, through the row cache ``args.cache`` when it is set.

    ``keys`` holds one key per task and ``row_key(row)`` gives a row's key: cached rows
    without an error are reused (after ``load(row)``, which may restore what JSON flattened),
    new rows appended. With ``args.from_cache`` no fit runs: the cached rows of ``tasks``.
    Without a cache, every task runs (:func:`parallel_map`).
    """
    cache, from_cache = getattr(args, "cache", None), getattr(args, "from_cache", False)
    if cache is None:
        if from_cache:
            raise ValueError("--from-cache needs --cache FILE (the rows to write the tables "
                             "from).")
        return parallel_map(fn, tasks, jobs=args.jobs, desc=desc, progress=not args.no_progress)
    cached = read_cache(cache, row_key)
    if load is not None:
        for row in cached.values():
            load(row)
    if from_cache:
        rows = [cached[key] for key in keys if key in cached]
        print(f"{len(rows)} of {len(tasks)} fits from {cache}, no fit run", file=sys.stderr)
        return rows
    return run_missing(fn, tasks, keys, cached, args, desc)


def read_cache(path, key):
    """The rows without an error in the JSON-lines cache ``path``, by ``key(row)``."""
    cached = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("error") is None:
                cached[key(row)] = row
    return cached


def run_missing(fn, tasks, keys, cached, args, desc=None):
    """Run the ``tasks`` whose key (``keys``, one per task) is not in ``cached``, appending
    each new row to ``args.cache``. Returns every task's row in task order."""
    todo = [(task, key) for task, key in zip(tasks, keys, strict=True) if key not in cached]
    print(f"{len(todo)} fits to run, {len(tasks) - len(todo)} from {args.cache}",
          file=sys.stderr)
    fresh = parallel_map(fn, [task for task, _ in todo], jobs=args.jobs, desc=desc,
                         progress=not args.no_progress, on_result=appender(args.cache))
    done = dict(zip((key for _, key in todo), fresh, strict=True))  # fresh is in task order
    return [cached.get(key) or done[key] for key in keys]


def guarded(fn, *args):
    """Run ``fn(*args)``; return ``(value, None)`` or ``(None, "ExcType: message")``."""
    try:
        return fn(*args), None
    except Exception as exc:  # noqa: BLE001 - a benchmark records failures and goes on
        return None, f"{type(exc).__name__}: {exc}"


def guarded_row(row, fn, keys):
    """Complete the result ``row`` (a dict) with the dict that ``fn()`` returns.

    When ``fn`` fails, each of ``keys`` (the results it would have given) is set to None
    instead. ``row["error"]`` is None or ``"ExcType: message"`` (see :func:`guarded`).
    """
    value, error = guarded(fn)
    row.update(value or dict.fromkeys(keys))
    row["error"] = error
    return row


# ----------------------------------------------------------------------------- statistics


def mean_se(values):
    """Mean and standard error (ddof=1) of the finite values; NaN when there are none."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else math.nan
    return float(v.mean()), se


class Paired(NamedTuple):
    """``a - b`` over the units both have: see :func:`paired`."""

    n: int
    mean: float
    se: float
    lower: int  #: units where ``a < b``
    p: float  #: two-sided sign test of ``lower`` among the units that differ

    def text(self, digits=3):
        """``"mean ± se (lower/n)"``."""
        return f"{fmt(self.mean, self.se, digits=digits)} ({self.lower}/{self.n})"


def paired(a, b, units=None):
    """Unit-by-unit comparison of two results keyed by unit (dicts ``unit -> value``).

    Over the units both have (and, if given, that are in ``units``): the mean and standard
    error of ``a[u] - b[u]``, the number of units where ``a`` is lower, and a two-sided sign
    test of that count among the units that differ (ties count as not lower). None when no
    unit is shared.
    """
    from scipy.stats import binomtest

    shared = [u for u in a if u in b and (units is None or u in units)]
    shared = [u for u in shared if a[u] is not None and b[u] is not None
              and np.isfinite(a[u]) and np.isfinite(b[u])]
    if not shared:
        return None
    diff = np.array([a[u] - b[u] for u in shared], dtype=np.float64)
    lower, untied = int(np.sum(diff < 0)), int(np.sum(diff != 0))
    p = float(binomtest(lower, untied).pvalue) if untied else 1.0
    return Paired(len(shared), *mean_se(diff), lower, p)


def fmt(mean, se=None, digits=2):
    if mean is None or not np.isfinite(mean):
        return "–"
    if se is None or not np.isfinite(se):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {se:.{digits}f}"


def values_by_model(rows, key, models):
    """``{model: [row[key] for each of its rows]}``, for the plots (failed runs give None)."""
    return {m: [r[key] for r in rows if r["model"] == m] for m in models}


def summarize(rows, keys, digits=2):
    """Per model: ``{key: (mean, se)}``, ``n`` (successful runs) and the median wall time."""
    out = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        ok = [r for r in rows if r["model"] == model and r.get("error") is None]
        stats = {k: mean_se([r[k] for r in ok]) for k in keys}
        seconds = [r["seconds"] for r in ok]
        out[model] = {
            "n": len(ok),
            "failed": sum(r["model"] == model and r.get("error") is not None for r in rows),
            "median_seconds": float(np.median(seconds)) if seconds else math.nan,
            **{k: {"mean": m, "se": s} for k, (m, s) in stats.items()},
        }
    return out


def runs_cell(stats):
    """Table cell of successful runs, with the failures: ``"5"`` or ``"4 (1 failed)"``."""
    return f"{stats['n']}" + (f" ({stats['failed']} failed)" if stats["failed"] else "")


def summary_table(summary, models, keys, digits=2):
    """Rows ``**model** | mean ± se of each key | median seconds | runs`` from :func:`summarize`.

    ``digits``: decimals of the figures, one number or ``{key: digits}`` (2 for keys not in it).
    """
    def places(key):
        return digits.get(key, 2) if isinstance(digits, dict) else digits

    return [[f"**{m}**",
             *(fmt(summary[m][k]["mean"], summary[m][k]["se"], places(k)) for k in keys),
             fmt(summary[m]["median_seconds"], digits=1), runs_cell(summary[m])]
            for m in models if m in summary]  # a model without rows (--from-cache) is left out


def published_row(name, source, values):
    """A published figure as a row of :func:`summary_table`: ``*name* (source) | values | – | –``
    (``None``: not reported)."""
    return [f"*{name}* ({source})", *(fmt(v) for v in values), "–", "–"]


def failure_sections(rows, where):
    """``[section]`` listing ``- <where(row)>: <error>`` per failed row, or ``[]`` if none."""
    failed = [r for r in rows if r.get("error")]
    if not failed:
        return []
    return ["## Failures\n\n" + "\n".join(f"- {where(r)}: {r['error']}" for r in failed)]


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- provenance


def _git(*args):
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=10, check=True)
        return out.stdout.rstrip()
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu():
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    return {"model": name, "cpus": os.cpu_count(), "usable_cpus": usable}


def _versions():
    out = {"python": platform.python_version()}
    for pkg in ("causalmim", "torch", "skorch", "econml", "scikit-learn", "numpy", "pandas",
                "scipy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _code_state():
    """HEAD and the uncommitted changes to the code, as they are now."""
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "causalmim",
                 "benchmarks")
    return ((_git("rev-parse", "HEAD") or "").strip() or None,
            sorted(line[3:] for line in dirty.splitlines()) if dirty else [])


# The code a run uses is the code at its start: record it when the script imports this module,
# not when the results are written (a commit made during a long run must not be credited).
_START_COMMIT, _START_CHANGES = _code_state()


def environment(started=None):
    """Command, versions, commit and uncommitted changes at the start, date, CPU (and GPU)."""
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:  # pragma: no cover
        pass
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": now.isoformat(timespec="seconds"),
        "wall_seconds": None if started is None else round(time.perf_counter() - started, 1),
        "commit": _START_COMMIT,
        "uncommitted_changes": _START_CHANGES,
        "versions": _versions(),
        "platform": platform.platform(),
        "cpu": _cpu(),
        "gpu": gpu,
        "threads_per_process": 1,
    }


def environment_markdown(env):
    v = env["versions"]
    cpu = env["cpu"]
    changes = env["uncommitted_changes"]
    lines = [
        f"- Command: `{env['command']}`",
        f"- Date (UTC): {env['date']}; total wall time: {env['wall_seconds']} s",
        f"- Commit: `{env['commit']}`"
        + (f" with uncommitted changes in {', '.join(f'`{c}`' for c in changes)}"
           if changes else ""),
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val),
        f"- Machine: {cpu['model']} ({cpu['usable_cpus']} usable of {cpu['cpus']} CPUs), "
        f"{env['platform']}; GPU: {env['gpu'] or 'none'}; one thread per process",
    ]
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path, obj):
    """Write ``obj`` as JSON (arrays as lists, NaN and infinities as null); return ``path``."""
    path = Path(path)
    path.write_text(json.dumps(_jsonable(obj), indent=1, allow_nan=False) + "\n")
    return path


def write_results(out_dir, stem, title, sections, payload, env, provenance=()):
    """Write ``<stem>.md`` (title, provenance, sections) and ``<stem>.json``; return both paths.

    ``provenance``: extra Markdown list items placed under those of :func:`environment`.
    ``payload=None`` writes the Markdown file only (the JSON path returned is then None).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", "", environment_markdown(env), *provenance, ""]
    for section in sections:
        md += [section.rstrip(), ""]
    md_path = out_dir / f"{stem}.md"
    md_path.write_text("\n".join(md))
    if payload is None:
        return md_path, None
    return md_path, write_json(out_dir / f"{stem}.json", {"environment": env, **payload})


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def strip_plot(values, ylabel, title, path, log=False):
    """Box plot with the individual points per model (``values``: name -> list of floats).

    Written to ``path`` (its folder made if need be); returns ``path``.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    names = list(values)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 1.5), 4.0))
    data = [np.asarray([v for v in values[n] if v is not None and np.isfinite(v)])
            for n in names]
    ax.boxplot(data, showfliers=False, widths=0.6)
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):
        ax.plot(i + rng.uniform(-0.15, 0.15, d.size), d, "o", ms=3, alpha=0.6, color="C0")
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
