"""Calibration of 95% intervals: ATE and CATE coverage of bootstrap CausalMIM and EconML peers.

Two suites, each model fitted once per world on its training units only:

- *synthetic*: ``make_disentangled(n, random_state=seed)`` for seeds ``first_seed, ...``; the
  first 70% of the units (rounded) are the training units, the rest the test units (the units
  are i.i.d., so the order is random).
- *IHDP*: replications 1, 2, ... of IHDP-100 with the official 672 train / 75 test split, as in
  ``benchmarks/ihdp.py``; outcomes are not rescaled.

In both suites the CATE intervals are scored on the test units against the noiseless effect
``mu1 - mu0`` of each unit, the ATE interval on the training units against their true *sample*
ATE, the mean of ``mu1 - mu0`` over the training units (the quantity ``ate_interval`` of a
fitted model on its training data speaks about).

Models: ``CausalMIM`` is ``CausalMIMRegressor(bootstrap=True, n_ensemble=M, random_state=s)``
(``M`` = ``--members``), with ``effect``/``effect_interval`` on the test units and
``ate()``/``ate_interval()`` (no X: its training data). ``CausalForestDML`` and ``DRLearner`` are
the EconML peers of ``_common`` (GradientBoosting nuisances) with their default inference:
``effect_interval(X_test)`` and ``ate(X_train)``/``ate_interval(X_train)``. The model seed is
``--seed`` plus the world's seed (synthetic) or replication number (IHDP).

Usage::

    python benchmarks/interval_coverage.py          # 50 worlds + 50 IHDP replications, 3 models
    python benchmarks/interval_coverage.py --quick  # smoke test: writes coverage_quick.*
    python benchmarks/interval_coverage.py --seeds 10 --skip-ihdp --models CausalMIM --members 10

Writes ``coverage.md`` and ``coverage.json`` (``coverage_quick.*`` with ``--quick``) into
``--out`` (default ``benchmarks/results``).
"""

# Not named coverage.py: the benchmark scripts run with benchmarks/ first on sys.path, and numba
# (imported by EconML) runs `import coverage`, which would then find such a file instead of the
# coverage package and break every script that uses EconML.

import math
import sys
import time
import warnings

import _common as C
import numpy as np

ALPHA = 0.05
Z = 1.959963984540054  # standard normal quantile at 1 - ALPHA / 2
TARGET = (0.90, 0.99)  # acceptable share of 95% ATE intervals covering the sample ATE
TRAIN_FRACTION = 0.7
MODELS = ("CausalMIM", "CausalForestDML", "DRLearner")
SUITES = {"synthetic": "Disentangled synthetic worlds", "ihdp": "IHDP-100"}
QUICK = {"seeds": 3, "n": 400, "reps": 2, "max_epochs": 5, "members": 4, "jobs": 2}

# Per-run values averaged over worlds (mean ± standard error) in the summary.
KEYS = ("ate_covered", "ate_width", "ate_abs_error", "ate_sq_error", "ate_claimed_var",
        "cate_coverage", "cate_width", "pehe", "pehe_to_width", "cate_mse",
        "cate_claimed_var", "cate_missed_var")


# ----------------------------------------------------------------------------- one fit


def make_model(name, seed, members, max_epochs):
    if name == "CausalMIM":
        import causalmim

        model = causalmim.CausalMIMRegressor(outcome="continuous", bootstrap=True,
                                             n_ensemble=members, random_state=seed)
        if max_epochs is not None:
            model.set_params(max_epochs=int(max_epochs))
        return model
    return C.make_model(name, "continuous", seed)


def _array(values):
    return np.asarray(values, dtype=np.float64).reshape(-1)


def _scalar(value):
    out = np.asarray(value, dtype=np.float64).reshape(-1)
    if out.size != 1:
        raise ValueError(f"expected one number for the ATE, got shape {np.shape(value)}")
    return float(out[0])


def fit_and_intervals(name, model, train, X_test):
    """Fit on ``train = (X, t, y)``; point estimates and 95% intervals of CATE (test) and ATE.

    Returns ``(tau_hat, lower, upper)`` on the test units and ``(ate_hat, ate_lower,
    ate_upper)`` on the training units.
    """
    X_train, t_train, y_train = train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "CausalMIM":
            model.fit(X_train, t_train, y_train)
            tau = model.effect(X_test)
            lower, upper = model.effect_interval(X_test, alpha=ALPHA)
            ate = model.ate()
            ate_lower, ate_upper = model.ate_interval(alpha=ALPHA)
        else:
            C.fit(model, X_train, t_train, y_train)
            tau = C.effects(model, X_test)
            lower, upper = model.effect_interval(X_test, alpha=ALPHA)
            ate = model.ate(X_train)
            ate_lower, ate_upper = model.ate_interval(X_train, alpha=ALPHA)
    cate = tuple(_array(v) for v in (tau, lower, upper))
    n = len(X_test)
    if any(v.shape != (n,) for v in cate):
        raise ValueError(f"CATE and its bounds must have shape ({n},), got "
                         f"{[v.shape for v in cate]}")
    return cate, tuple(_scalar(v) for v in (ate, ate_lower, ate_upper))


def score(cate, ate, tau_test, tau_train):
    """Coverage, widths, errors and the split of the squared error of one fit."""
    tau_hat, lower, upper = cate
    ate_hat, ate_lower, ate_upper = ate
    ate_true = float(np.mean(tau_train))
    width = upper - lower
    err2 = (tau_hat - tau_test) ** 2
    claimed = (width / (2 * Z)) ** 2  # the variance a normal 95% interval of this width claims
    pehe = float(np.sqrt(err2.mean()))
    ate_width = ate_upper - ate_lower
    return {
        "ate_true": ate_true, "ate_hat": ate_hat, "ate_lower": ate_lower,
        "ate_upper": ate_upper,
        "ate_covered": float(ate_lower <= ate_true <= ate_upper),
        "ate_width": ate_width,
        "ate_abs_error": abs(ate_hat - ate_true),
        "ate_sq_error": (ate_hat - ate_true) ** 2,
        "ate_claimed_var": (ate_width / (2 * Z)) ** 2,
        "cate_coverage": float(np.mean((lower <= tau_test) & (tau_test <= upper))),
        "cate_width": float(width.mean()),
        "pehe": pehe,
        "pehe_to_width": pehe / float(width.mean()) if width.mean() > 0 else math.nan,
        "cate_mse": float(err2.mean()),
        "cate_claimed_var": float(claimed.mean()),
        "cate_missed_var": float(err2.mean() - claimed.mean()),
        "nonfinite_bounds": int(np.sum(~np.isfinite(lower) | ~np.isfinite(upper))),
        "inverted_bounds": int(np.sum(lower > upper)),
    }


def _world(task):
    """``(train, X_test, tau_test, tau_train)`` of a task's world: ``train = (X, t, y)``."""
    if task["suite"] == "synthetic":
        from causalmim.datasets import make_disentangled

        d = make_disentangled(n=task["n"], random_state=task["world"], as_frame=False)
        k = int(round(TRAIN_FRACTION * task["n"]))
        tr, te = slice(0, k), slice(k, None)
        return ((d.X[tr], d.t[tr], d.y[tr]), d.X[te], d.tau[te], d.tau[tr])
    rep = task["rep"]
    return ((rep.train.x, rep.train.t, rep.train.yf), rep.test.x,
            rep.test.mu1 - rep.test.mu0, rep.train.mu1 - rep.train.mu0)


def _identity(task):
    """The fields of a task's row that say which fit it is (CausalMIM's members included)."""
    row = {"suite": task["suite"], "world": task["world"], "model": task["model"],
           "random_state": task["seed"]}
    if task["model"] == "CausalMIM":
        row["members"] = task["members"]
    return row


def _row_key(row):
    """A row's key in the row cache (``--cache``); a task's is that of its :func:`_identity`."""
    return row["suite"], row["world"], row["model"], row["random_state"], row.get("members")


def run_one(task):
    """Fit one model on one world and score its intervals; failures are recorded, not raised."""
    name = task["model"]
    row = _identity(task)

    def work():
        train, X_test, tau_test, tau_train = _world(task)
        model = make_model(name, task["seed"], task["members"], task["max_epochs"])
        start = time.perf_counter()
        cate, ate = fit_and_intervals(name, model, train, X_test)
        seconds = time.perf_counter() - start
        return {"n_train": len(tau_train), "n_test": len(tau_test),
                **score(cate, ate, tau_test, tau_train), "seconds": seconds}

    value, error = C.guarded(work)
    row.update(value or {"seconds": None, **{k: None for k in KEYS}})
    row["error"] = error
    return row


# ----------------------------------------------------------------------------- summary


def binomial_se(p, n):
    return math.sqrt(p * (1 - p) / n) if n > 0 and np.isfinite(p) else math.nan


def summarize(rows):
    """Per suite and model: :func:`_common.summarize` plus the binomial SE of ATE coverage."""
    out = {}
    for suite in dict.fromkeys(r["suite"] for r in rows):
        out[suite] = C.summarize([r for r in rows if r["suite"] == suite], KEYS)
        for s in out[suite].values():
            p = s["ate_covered"]["mean"]
            s["ate_covered"]["se"] = binomial_se(p, s["n"])  # binomial, not the sample SD
            s["ate_in_target"] = bool(np.isfinite(p) and TARGET[0] <= p <= TARGET[1])
            mse, claimed = s["cate_mse"]["mean"], s["cate_claimed_var"]["mean"]
            s["cate_claimed_share"] = claimed / mse if mse and np.isfinite(mse) else math.nan
    return out


def _runs(s):
    return f"{s['n']}" + (f" ({s['failed']} failed)" if s["failed"] else "")


def suite_section(suite, summary, models, worlds, args):
    f3 = lambda k, s: C.fmt(s[k]["mean"], s[k]["se"], digits=3)  # noqa: E731
    main, split = [], []
    for name in models:
        if name not in summary:
            continue
        s = summary[name]
        p = s["ate_covered"]["mean"]
        ok = "–" if not np.isfinite(p) else ("yes" if s["ate_in_target"] else "**no**")
        main.append([f"**{label(name, args)}**", f3("ate_covered", s), ok,
                     f3("ate_width", s), f3("ate_abs_error", s), f3("cate_coverage", s),
                     f3("cate_width", s), f3("pehe", s), f3("pehe_to_width", s), _runs(s)])
        share = s["cate_claimed_share"]
        split.append([f"**{label(name, args)}**", f3("cate_mse", s), f3("cate_claimed_var", s),
                      f3("cate_missed_var", s), C.fmt(share, digits=2),
                      f3("ate_sq_error", s), f3("ate_claimed_var", s)])
    head = ["Model", "ATE coverage", "in target", "ATE width", "ε_ATE", "CATE coverage",
            "CATE width", "√PEHE", "√PEHE / CATE width", "runs"]
    head2 = ["Model", "CATE MSE", "claimed: mean (half-width/1.96)²", "missed: MSE − claimed",
             "claimed / MSE", "ATE sq. error", "ATE claimed (half-width/1.96)²"]
    return (f"## {SUITES[suite]}\n\n{worlds}\n\n" + C.markdown_table(head, main)
            + "\n\nBias is not variance: the squared error of the point estimates split into the "
            "part the 95% intervals claim and the part they miss (means over worlds; "
            "claimed / MSE is the ratio of those means, 1 for intervals as wide as the errors "
            "are large, below 1 when bias the intervals do not see dominates).\n\n"
            + C.markdown_table(head2, split))


def causalmim_params(args):
    extra = "" if args.max_epochs is None else f", max_epochs={args.max_epochs}"
    return f"bootstrap=True, n_ensemble={args.members}{extra}"


def label(name, args):
    return f"CausalMIM (bootstrap, M={args.members})" if name == "CausalMIM" else name


def report(rows, summary, args, models, worlds, note):
    lo, hi = TARGET
    counts = [len({r["world"] for r in rows if r["suite"] == s}) for s in summary]
    n_hint = ", ".join(f"{SUITES[s]} {k}" for s, k in zip(summary, counts, strict=True))
    protocol = (
        "## Protocol\n\n" + __doc__.split("\n\n", 1)[1].split("\nUsage::")[0].strip() + "\n\n"
        f"Nominal level 95% (alpha = {ALPHA}). Per (suite, model), over worlds ({n_hint}): "
        "*ATE coverage* is the share of ATE intervals that contain the true sample ATE of the "
        "training units, ± its binomial standard error sqrt(p(1 - p)/n); *CATE coverage* is the "
        "share of test units whose true effect lies in their interval, averaged over worlds; "
        "widths are upper minus lower bound (CATE: mean over test units); √PEHE = "
        "sqrt(mean((tau_hat - tau)²)) over the test units; √PEHE / CATE width is about "
        f"1/(2·1.96) = {1 / (2 * Z):.3f} for intervals centred on the estimate whose width "
        "matches normal errors. ε_ATE = |ATE estimate - sample ATE|. Other columns: mean ± "
        f"standard error over worlds. CausalMIM runs with `{causalmim_params(args)}`, otherwise "
        "its defaults. "
        "EconML's `ate_interval(X)` is its conservative population interval (root mean square "
        "of the pointwise standard errors for the forest). " + C.model_notes(
            [m for m in models if m != "CausalMIM"])
        + f"\n\n**Target: ATE coverage between {lo:.2f} and {hi:.2f}** (binomial standard "
        "error of the share at a true 0.95: "
        + ", ".join(f"{binomial_se(0.95, k):.3f} with {k} worlds" for k in sorted(set(counts)))
        + ").")
    sections = [*([f"> **{note}**"] if note else []), protocol]
    sections += [suite_section(s, summary[s], models, worlds[s], args) for s in summary]
    failures = [r for r in rows if r["error"]]
    if failures:
        sections.append("## Failures\n\n" + "\n".join(
            f"- {r['model']}, {SUITES[r['suite']]} world {r['world']}: {_short(r['error'])}"
            for r in failures))
    return sections


def _short(error, limit=240):
    """First line of an error message, cut to ``limit`` characters (the JSON has it whole)."""
    line = error.splitlines()[0] if error else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# ----------------------------------------------------------------------------- main


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = C.parser(__doc__.splitlines()[0], default_jobs=2)
    for action in p._actions:  # the shared help lists every model; this script runs three
        if action.dest == "models":
            action.help = f"models to run, among: {', '.join(MODELS)}; None: all three"
    p.add_argument("--seeds", type=int, default=50, help="number of synthetic worlds")
    p.add_argument("--first-seed", type=int, default=0, help="seed of the first synthetic world")
    p.add_argument("--n", type=int, default=2000,
                   help=f"units per synthetic world ({100 * TRAIN_FRACTION:.0f}%% train, "
                        "the rest test)")
    p.add_argument("--reps", type=int, default=50, help="IHDP replications 1..REPS")
    p.add_argument("--members", type=int, default=20,
                   help="bootstrap members (n_ensemble) of CausalMIM")
    p.add_argument("--skip-ihdp", action="store_true", help="synthetic worlds only")
    p.add_argument("--stem", default=None,
                   help="name of the results files (default coverage, or coverage_quick)")
    p.add_argument("--skip-synthetic", action="store_true", help="IHDP only")
    C.add_cache_option(p)
    p.add_argument("--quick", action="store_true",
                   help=f"smoke test: {QUICK['seeds']} worlds of n={QUICK['n']}, "
                        f"{QUICK['reps']} IHDP replications, max_epochs={QUICK['max_epochs']}, "
                        f"{QUICK['members']} members, {QUICK['jobs']} jobs, unless given; "
                        "writes coverage_quick.*")
    args = p.parse_args(argv)
    started = time.perf_counter()
    if args.quick:
        given = {a.split("=")[0] for a in argv}
        for key in ("seeds", "n", "reps", "members", "jobs"):
            if f"--{key}" not in given:
                setattr(args, key, QUICK[key])
        if args.max_epochs is None:
            args.max_epochs = QUICK["max_epochs"]
    models = list(dict.fromkeys(args.models or MODELS))
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; this benchmark runs {', '.join(MODELS)}")
    if args.skip_ihdp and args.skip_synthetic:
        p.error("--skip-ihdp and --skip-synthetic leave nothing to run")
    for key in ("seeds", "n", "reps", "members"):
        if getattr(args, key) < 1:
            p.error(f"--{key} must be at least 1")

    tasks, worlds = [], {}
    common = {"members": args.members, "max_epochs": args.max_epochs}
    if not args.skip_synthetic:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        k = int(round(TRAIN_FRACTION * args.n))
        worlds["synthetic"] = (f"`make_disentangled(n={args.n}, random_state=seed)`, seeds "
                               f"{seeds[0]}-{seeds[-1]}; {k} training units (ATE), "
                               f"{args.n - k} test units (CATE).")
        tasks += [{"suite": "synthetic", "world": s, "n": args.n, "model": m,
                   "seed": args.seed + s, **common} for s in seeds for m in models]
    if not args.skip_ihdp:
        from causalmim.datasets import load_ihdp

        try:
            reps = load_ihdp(replications=range(1, args.reps + 1), data_home=args.data_home)
        except (ValueError, FileNotFoundError) as exc:
            p.error(f"IHDP: {exc}")
        worlds["ihdp"] = (f"Replications 1-{args.reps}; {len(reps[0].train.t)} training units "
                          f"(ATE), {len(reps[0].test.t)} test units (CATE).")
        tasks += [{"suite": "ihdp", "world": r.replication, "rep": r, "model": m,
                   "seed": args.seed + r.replication, **common} for r in reps for m in models]

    rows = C.run_cached(run_one, tasks, [_row_key(_identity(t)) for t in tasks], _row_key, args,
                        desc="coverage fits")
    summary = summarize(rows)
    env = C.environment(started)
    note = C.trial_note(args)
    stem = args.stem or ("coverage_quick" if args.quick else "coverage")
    payload = {
        "benchmark": "coverage of 95% intervals", "trial": note, "alpha": ALPHA,
        "target_ate_coverage": list(TARGET), "models": models, "members": args.members,
        "max_epochs": args.max_epochs, "train_fraction": TRAIN_FRACTION,
        "synthetic_n": None if args.skip_synthetic else args.n,
        "worlds": {s: sorted({r["world"] for r in rows if r["suite"] == s}) for s in worlds},
        "summary": summary, "runs": rows,
    }
    md, js = C.write_results(args.out, stem, "Calibration of 95% intervals",
                             report(rows, summary, args, models, worlds, note), payload, env)
    print(f"wrote {md} and {js} in {env['wall_seconds']} s")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
