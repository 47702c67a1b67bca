"""Which model-selection criterion should tuning use? IHDP, defaults against tuned models.

For each IHDP replication, on the training split only (672 units):

1. draw ``--candidates`` hyper-parameter settings of one estimator from its default search space
   (``causalmim.tuning.SEARCH_SPACES``) with Optuna's random sampler;
2. fit each candidate on each of ``--cv`` stratified folds and score it on the held-out fold with
   every criterion of ``causalmim.model_selection`` (observed data only: factual, r_loss, dr,
   nn_pehe), the nuisance models cross-fitted on the held-out fold, as ``tune`` does;
3. for each criterion, select the candidate with the best mean score and refit it on the whole
   training split; fit the estimator with its default settings too;
4. report out-of-sample (test split, 75 units) and within-sample sqrt(PEHE).

All criteria choose among the same candidates fitted on the same folds (random search, the same
fold fits), so the comparison isolates the selection criterion at a fixed budget. The true
effects are used for the report only: the test sqrt(PEHE) of each pick, the rank correlation of
each criterion with the true PEHE of the candidates on the held-out folds, and an ``oracle`` row
(the candidate with the lowest true held-out-fold PEHE, a reference for what a perfect criterion
would reach, never a method).

Run: ``python benchmarks/tuning.py`` (about 15-20 minutes on 2 cores); writes
``benchmarks/results/tuning.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

CRITERIA = ("factual", "r_loss", "dr", "nn_pehe")

#: The suite: one estimator, its default search space, a fixed budget.
SUITE = {
    "estimator": "TARNetRegressor",
    "candidates": 10,
    "cv": 3,
    "replications": 10,
}


def make_estimator(name, seed, **params):
    import causalmim

    return getattr(causalmim, name)(random_state=seed, **params)


def sqrt_pehe(tau_hat, tau):
    return float(np.sqrt(np.mean((np.asarray(tau_hat) - tau) ** 2)))


def draw_candidates(estimator, n, seed):
    """``n`` settings from the estimator's default search space, by Optuna's random sampler."""
    import optuna

    from causalmim.tuning import get_search_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_search_space(estimator)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask(space)
        out.append(dict(trial.params))
        study.tell(trial, 0.0)
    return out


def run_replication(task):
    """Everything for one replication; returns a dict of results (no exception escapes)."""
    index, args = task
    value, error = _common.guarded(_run_replication, index, args)
    if error is not None:
        return {"replication": index, "error": error}
    return value


def _run_replication(index, args):
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    from causalmim.datasets import load_ihdp
    from causalmim.model_selection import get_criterion

    start = time.perf_counter()
    rep = load_ihdp([index], data_home=args["data_home"], download_if_missing=False)[0]
    train, test = rep.train, rep.test
    X, t, y = train.x, train.t, train.yf
    tau_train, tau_test = train.mu1 - train.mu0, test.mu1 - test.mu0  # for the report only
    ty = np.column_stack([t, y])
    seed = args["seed"] + index
    base = make_estimator(args["estimator"], seed, max_epochs=args["max_epochs"])
    candidates = draw_candidates(base, args["candidates"], seed)
    scorers = {
        name: get_criterion(name, random_state=seed)
        if name in ("r_loss", "dr")
        else get_criterion(name)
        for name in CRITERIA
    }
    folds = list(StratifiedKFold(args["cv"], shuffle=True, random_state=seed).split(X, t))

    scores = {name: np.zeros((len(candidates), len(folds))) for name in CRITERIA}
    true_pehe = np.zeros((len(candidates), len(folds)))
    fit_seconds = []
    for c, params in enumerate(candidates):
        for f, (tr, va) in enumerate(folds):
            began = time.perf_counter()
            est = clone(base).set_params(**params).fit(X[tr], t[tr], y[tr])
            fit_seconds.append(time.perf_counter() - began)
            for name, scorer in scorers.items():
                scores[name][c, f] = scorer(est, X[va], ty[va])
            true_pehe[c, f] = sqrt_pehe(est.predict(X[va]), tau_train[va]) ** 2

    mean_scores = {name: np.nan_to_num(s.mean(axis=1), nan=-np.inf) for name, s in scores.items()}
    truth = true_pehe.mean(axis=1)
    picks = {name: int(np.argmax(s)) for name, s in mean_scores.items()}
    picks["oracle"] = int(np.argmin(truth))

    refits = {}
    results = {}
    for method, c in picks.items():
        if c not in refits:
            est = clone(base).set_params(**candidates[c]).fit(X, t, y)
            refits[c] = (
                sqrt_pehe(est.predict(test.x), tau_test),
                sqrt_pehe(est.predict(X), tau_train),
            )
        out, within = refits[c]
        results[method] = {"out": out, "in": within, "candidate": c}
    default = clone(base).fit(X, t, y)
    results["default"] = {
        "out": sqrt_pehe(default.predict(test.x), tau_test),
        "in": sqrt_pehe(default.predict(X), tau_train),
        "candidate": None,
    }
    spearman = {name: _spearman(mean_scores[name], -truth) for name in CRITERIA}
    return {
        "replication": index,
        "error": None,
        "results": results,
        "spearman": spearman,
        "candidates": candidates,
        "held_out_sqrt_pehe": np.sqrt(truth).tolist(),
        "median_fit_seconds": float(np.median(fit_seconds)),
        "seconds": time.perf_counter() - start,
    }


def _spearman(a, b):
    from scipy.stats import spearmanr

    rho = spearmanr(a, b).statistic  # a failed candidate's score is -inf: ranked last
    return float(rho) if np.isfinite(rho) else float("nan")


# ----------------------------------------------------------------------------- report
METHODS = ("default", *CRITERIA, "oracle")

#: Notes added to the report (reading of the figures; kept with the script so that a re-run keeps
#: them).
NOTES = []


def report(rows, args, env):
    ok = [r for r in rows if r.get("error") is None]
    failed = [r for r in rows if r.get("error") is not None]
    out = {m: [r["results"][m]["out"] for r in ok] for m in METHODS}
    within = {m: [r["results"][m]["in"] for r in ok] for m in METHODS}
    rho = {m: [r["spearman"][m] for r in ok] for m in CRITERIA}

    def paired(a, b):  # mean +- se of a - b over replications
        return _common.mean_se(np.asarray(out[a]) - np.asarray(out[b]))

    table = []
    for m in METHODS:
        row = [
            f"`{m}`" if m in CRITERIA else m,
            _common.fmt(*_common.mean_se(out[m])),
            _common.fmt(*_common.mean_se(within[m])),
        ]
        if m == "default":
            row += ["–", "–", "–"]
        else:
            d = paired(m, "default")
            wins = int(np.sum(np.asarray(out[m]) < np.asarray(out["default"])))
            row += [_common.fmt(*d), f"{wins}/{len(ok)}"]
            row += [_common.fmt(*_common.mean_se(rho[m])) if m in CRITERIA else "–"]
        table.append(row)
    header = [
        "selection",
        "sqrt(PEHE) out-of-sample",
        "sqrt(PEHE) within-sample",
        "minus default (paired)",
        "better than default",
        "Spearman with true held-out PEHE",
    ]

    # the pick: lowest mean out-of-sample sqrt(PEHE); ties (to 3 decimals) by the rank correlation
    def key(m):
        return (round(_common.mean_se(out[m])[0], 3), -_common.mean_se(rho[m])[0])

    ranked = sorted(CRITERIA, key=key)
    best, second = ranked[0], ranked[1]
    diff, diff_se = paired(best, second)
    vs_default, vs_default_se = paired(best, "default")
    conclusive = np.isfinite(diff_se) and diff + 2 * diff_se < 0
    by_rho = max(CRITERIA, key=lambda m: _common.mean_se(rho[m])[0])
    lines = [
        f"- Lowest mean out-of-sample sqrt(PEHE) among the criteria: `{best}` "
        f"({_common.fmt(*_common.mean_se(out[best]))}); next `{second}` "
        f"({_common.fmt(*_common.mean_se(out[second]))}), paired difference "
        f"{_common.fmt(diff, diff_se, 3)}.",
        f"- `{best}` against the defaults: paired difference "
        f"{_common.fmt(vs_default, vs_default_se, 3)}.",
        f"- Highest rank correlation with the true held-out PEHE of the candidates: `{by_rho}` "
        f"({_common.fmt(*_common.mean_se(rho[by_rho]))}).",
    ]
    if conclusive:
        lines.append(
            f"- The difference to `{second}` exceeds two standard errors: the "
            f"benchmark recommends `{best}`."
        )
    else:
        lines.append(
            f"- The difference between `{best}` and `{second}` is within two standard errors: "
            "**inconclusive** at this budget and number of replications. The best-supported "
            f"choice is `{best}` (lowest mean error"
            + (", and the best ranking of candidates)." if by_rho == best else ").")
        )
    from causalmim.tuning import DEFAULT_CRITERION

    lines.append(
        f"- `causalmim.tuning.DEFAULT_CRITERION` is `{DEFAULT_CRITERION}`"
        + (
            " (the benchmark's pick)."
            if DEFAULT_CRITERION == best
            else f" (not the benchmark's pick `{best}`; see the notes)."
        )
    )

    per_rep = [["replication", *METHODS]]
    for r in ok:
        per_rep.append([r["replication"], *(f"{r['results'][m]['out']:.3f}" for m in METHODS)])

    sections = [
        "## Setup\n\n"
        f"IHDP-100 replications {', '.join(str(r['replication']) for r in ok)} (official "
        "train/test splits; train 672, test 75 units). Estimator "
        f"`{args['estimator']}` (max_epochs={args['max_epochs']}, early stopping on its own "
        f"validation split). Budget: {args['candidates']} candidates drawn by Optuna's "
        f"`RandomSampler` from `SEARCH_SPACES['{args['estimator']}']`, each scored by "
        f"{args['cv']}-fold cross-validation (stratified by arm) on the training split; every "
        "criterion selects among the same candidates and fold fits, the nuisance models of "
        "`r_loss` and `dr` (random forest outcome, logistic propensity) cross-fitted on each "
        "held-out fold (5 folds). The selected candidate is refitted on the whole training split. "
        "`oracle` selects with the true held-out-fold PEHE: a reference for a perfect "
        "criterion, not a method. The true effects are used for the report only. Figures: mean "
        "± standard error over replications; 'minus default' is the paired difference "
        "(negative: better than the defaults).",
        "## Results\n\n" + _common.markdown_table(header, table),
        "## Recommendation\n\n" + "\n".join(lines),
        "## Out-of-sample sqrt(PEHE) per replication\n\n"
        + _common.markdown_table(per_rep[0], per_rep[1:]),
    ]
    if NOTES:
        sections.append("## Notes\n\n" + "\n".join(f"- {n}" for n in NOTES))
    if failed:
        sections.append(
            "## Failures\n\n"
            + "\n".join(f"- replication {r['replication']}: {r['error']}" for r in failed)
        )
    if args["max_epochs"] != 300:
        sections.insert(
            0, f"**TRIAL RUN** (max_epochs={args['max_epochs']}): not benchmark figures."
        )
    return sections


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--replications", type=int, default=SUITE["replications"], help="IHDP replications 1..N"
    )
    p.add_argument(
        "--candidates",
        type=int,
        default=SUITE["candidates"],
        help="hyper-parameter settings per replication (the budget)",
    )
    p.add_argument("--cv", type=int, default=SUITE["cv"], help="cross-validation folds")
    p.add_argument("--estimator", default=SUITE["estimator"], help="causalmim estimator class")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (one thread each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-home", default=None)
    p.add_argument("--out", type=Path, default=_common.RESULTS)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--save-rows",
        type=Path,
        default=None,
        help="also save the raw per-replication results (JSON) here",
    )
    p.add_argument(
        "--report-only",
        type=Path,
        default=None,
        help="rewrite the report from rows saved by --save-rows (no fitting)",
    )
    p.add_argument("--max-epochs", type=int, default=300, help=argparse.SUPPRESS)  # smoke tests
    ns = p.parse_args(argv)
    args = {
        "estimator": ns.estimator,
        "candidates": ns.candidates,
        "cv": ns.cv,
        "seed": ns.seed,
        "data_home": ns.data_home,
        "max_epochs": ns.max_epochs,
    }
    if ns.report_only is not None:
        saved = json.loads(ns.report_only.read_text())
        rows, args, env = saved["rows"], saved["args"], saved["environment"]
    else:
        started = time.perf_counter()
        tasks = [(i, args) for i in range(1, ns.replications + 1)]
        rows = _common.parallel_map(
            run_replication,
            tasks,
            jobs=ns.jobs,
            desc="IHDP replications",
            progress=not ns.no_progress,
        )
        env = _common.environment(started)
        if ns.save_rows is not None:
            payload = {"rows": rows, "args": args, "environment": env}
            ns.save_rows.write_text(json.dumps(_common._jsonable(payload), indent=1))
    sections = report(rows, args, env)
    ns.out.mkdir(parents=True, exist_ok=True)
    path = ns.out / "tuning.md"
    md = ["# Tuning: which model-selection criterion?", "", _common.environment_markdown(env), ""]
    md += [s.rstrip() + "\n" for s in sections]
    path.write_text("\n".join(md))
    print(path)
    for r in rows:
        if r.get("error"):
            print(f"replication {r['replication']} failed: {r['error']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
