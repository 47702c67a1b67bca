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
    from causalmim.metrics import sqrt_pehe
    from causalmim.model_selection import get_criterion

    start = time.perf_counter()
    rep = load_ihdp([index], data_home=args["data_home"], download_if_missing=False)[0]
    train, test = rep.train, rep.test
    X, t, y = train.x, train.t, train.yf
    tau_train, tau_test = train.mu1 - train.mu0, test.mu1 - test.mu0  # for the report only
    ty = np.column_stack([t, y])
    seed = args["seed"] + index
    base = _common.make_model(args["estimator"], random_state=seed,
                              max_epochs=args["max_epochs"])
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
            true_pehe[c, f] = sqrt_pehe(tau_train[va], est.predict(X[va])) ** 2

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
                sqrt_pehe(tau_test, est.predict(test.x)),
                sqrt_pehe(tau_train, est.predict(X)),
            )
        out, within = refits[c]
        results[method] = {"out": out, "in": within, "candidate": c}
    default = clone(base).fit(X, t, y)
    results["default"] = {
        "out": sqrt_pehe(tau_test, default.predict(test.x)),
        "in": sqrt_pehe(tau_train, default.predict(X)),
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
NOTES = [
    "Replication 9 has effects an order of magnitude larger than the others (defaults: "
    "sqrt(PEHE) 9.5 against 0.7-1.4); it decides the plain mean of sqrt(PEHE), where `factual` "
    "happened to pick the oracle's candidate. The recommendation therefore rests on per-"
    "replication, scale-free comparisons (ratio to the defaults, rank among the criteria, rank "
    "correlation with the truth). This choice of statistic was made after seeing the plain "
    "means, which is why both are shown.",
    "Every criterion improves on the defaults (ratios 0.72-0.77, i.e. 23-28 % lower error; the "
    "oracle reaches 0.72): at this budget, tuning matters more than which criterion selects, "
    "and the differences between the criteria are within noise.",
    "`nn_pehe` ranks the candidates best (Spearman 0.87 ± 0.05 against 0.66 for `factual`, 0.78 "
    "for `dr`, 0.52 for `r_loss`), picks the oracle's candidate most often (7 of 10) and needs no "
    "nuisance model. Its assumptions (smooth outcome surfaces; close neighbours in the other arm, "
    "in standardized covariates) suit IHDP (25 covariates, moderate overlap) and weaken with many "
    "irrelevant covariates or poor overlap; there, `dr` (second-best ranking) is the one to try.",
    "The held-out folds have about 224 units (about 19 % treated), so the nuisance models of "
    "`r_loss` and `dr` are fitted on about 180 units per cross-fitting fold; with so little data "
    "their noise limits both criteria.",
    "Random search keeps the candidates the same for every criterion; `tune` uses TPE and "
    "pruning, which change which candidates are visited, not how a criterion ranks them. "
    "TARNet was chosen for cost (median fit of a candidate: about 4-5 s here; CFRNet with the "
    "Wasserstein penalty takes about 30 s).",
]


def report(rows, args, env):
    from scipy.stats import rankdata

    ok = [r for r in rows if r.get("error") is None]
    n = len(ok)
    out = {m: np.asarray([r["results"][m]["out"] for r in ok]) for m in METHODS}
    within = {m: np.asarray([r["results"][m]["in"] for r in ok]) for m in METHODS}
    rho = {m: np.asarray([r["spearman"][m] for r in ok]) for m in CRITERIA}
    # scale-free, paired per replication: IHDP replications differ in effect scale by an order
    # of magnitude, so a plain mean of sqrt(PEHE) is led by one or two replications
    ratio = {m: out[m] / out["default"] for m in METHODS}
    ranks = np.array([rankdata([out[m][i] for m in CRITERIA]) for i in range(n)])
    mean_rank = dict(zip(CRITERIA, ranks.mean(axis=0), strict=True))
    oracle_match = {
        m: sum(r["results"][m]["candidate"] == r["results"]["oracle"]["candidate"] for r in ok)
        for m in CRITERIA
    }

    def ms(values, digits=2):
        return _common.fmt(*_common.mean_se(values), digits=digits)

    table = []
    for m in METHODS:
        crit = m in CRITERIA
        row = [f"`{m}`" if crit else m, ms(out[m]), ms(within[m])]
        if m == "default":
            row += ["1", "–", "–", "–", "–"]
        else:
            wins = int(np.sum(out[m] < out["default"]))
            row += [
                ms(ratio[m], 3),
                f"{wins}/{n}",
                f"{mean_rank[m]:.2f}" if crit else "–",
                ms(rho[m]) if crit else "–",
                f"{oracle_match[m]}/{n}" if crit else "–",
            ]
        table.append(row)
    header = [
        "selection",
        "sqrt(PEHE) out-of-sample",
        "sqrt(PEHE) within-sample",
        "out-of-sample ratio to default",
        "better than default",
        "mean rank among criteria",
        "Spearman with true held-out PEHE",
        "same pick as oracle",
    ]

    # the pick: the lowest mean ratio to the defaults (paired, scale-free)
    ranked = sorted(CRITERIA, key=lambda m: _common.mean_se(ratio[m])[0])
    best, second = ranked[0], ranked[1]
    diff, diff_se = _common.mean_se(ratio[best] - ratio[second])
    rho_diff, rho_diff_se = _common.mean_se(rho[best] - rho[second])
    conclusive = np.isfinite(diff_se) and diff + 2 * diff_se < 0
    by_rho = max(CRITERIA, key=lambda m: _common.mean_se(rho[m])[0])
    by_mean = min(CRITERIA, key=lambda m: _common.mean_se(out[m])[0])
    lines = [
        f"- Lowest mean out-of-sample ratio to the defaults (paired, scale-free): `{best}` "
        f"({ms(ratio[best], 3)}); next `{second}` ({ms(ratio[second], 3)}); paired "
        f"difference {_common.fmt(diff, diff_se, 3)}.",
        f"- Highest rank correlation with the true held-out PEHE of the candidates: `{by_rho}` "
        f"({ms(rho[by_rho])}); `{best}` minus `{second}`: {_common.fmt(rho_diff, rho_diff_se)}.",
        f"- Lowest plain mean of out-of-sample sqrt(PEHE): `{by_mean}` ({ms(out[by_mean])}).",
    ]
    if conclusive:
        lines.append(
            f"- The ratio of `{best}` is lower than that of `{second}` by more than two "
            f"standard errors: the benchmark recommends `{best}`."
        )
    else:
        lines.append(
            f"- The ratios of `{best}` and `{second}` are within two standard errors: "
            "**inconclusive** at this budget and number of replications. Best-supported: "
            f"`{best}` (lowest ratio to the defaults"
            + (", and the best ranking of the candidates)." if by_rho == best else ").")
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
        f"validation split; random_state = replication). Budget: {args['candidates']} "
        "candidates drawn by Optuna's `RandomSampler` from "
        f"`SEARCH_SPACES['{args['estimator']}']`, each scored by {args['cv']}-fold "
        "cross-validation (stratified by arm) on the training split; every criterion selects "
        "among the same candidates and fold fits, the nuisance models of `r_loss` and `dr` "
        "(random forest outcome, logistic propensity) cross-fitted on each held-out fold "
        "(5 folds). The selected candidate is refitted on the whole training split. `oracle` "
        "selects with the true held-out-fold PEHE: a reference for a perfect criterion, not a "
        "method. The true effects are used for the report only.\n\n"
        "Figures: mean ± standard error over replications. 'ratio to default': per "
        "replication, the out-of-sample sqrt(PEHE) of the pick divided by that of the defaults "
        "(below 1: better). 'mean rank': rank of the criterion's out-of-sample sqrt(PEHE) among "
        "the four criteria per replication (1 best, ties averaged). 'Spearman': rank correlation "
        "between the criterion's mean cross-validated score and minus the true held-out-fold "
        "PEHE over the candidates (1: ranks the candidates perfectly).",
        "## Results\n\n" + _common.markdown_table(header, table),
        "## Recommendation\n\n" + "\n".join(lines),
        "## Out-of-sample sqrt(PEHE) per replication\n\n"
        + _common.markdown_table(per_rep[0], per_rep[1:]),
    ]
    if NOTES:
        sections.insert(3, "## Notes\n\n" + "\n".join(f"- {note}" for note in NOTES))
    sections += _common.failure_sections(rows, lambda r: f"replication {r['replication']}")
    if args["max_epochs"] != 300:
        sections.insert(
            0,
            f"**TRIAL RUN** (max_epochs={args['max_epochs']}): not benchmark figures.",
        )
    return sections


def main(argv=None):
    p = _common.parser(__doc__.splitlines()[0], default_jobs=2, omit=("--models",))
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
    p.set_defaults(max_epochs=300)  # the suite's budget; smoke tests lower it
    ns = p.parse_args(argv)
    args = {
        "estimator": ns.estimator,
        "candidates": ns.candidates,
        "cv": ns.cv,
        "seed": ns.seed,
        "data_home": ns.data_home,
        "max_epochs": ns.max_epochs,
    }
    provenance = []
    if ns.report_only is not None:
        saved = json.loads(ns.report_only.read_text())
        rows, args, env = saved["rows"], saved["args"], saved["environment"]
        rendered = _common.environment()
        provenance.append(
            f"- Report rendered from the saved rows with `{rendered['command']}` on "
            f"{rendered['date']} (commit `{rendered['commit']}`); the fits are those of the "
            "command above"
        )
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
            _common.write_json(ns.save_rows, {"rows": rows, "args": args, "environment": env})
    path, _ = _common.write_results(
        ns.out,
        "tuning",
        "Tuning: which model-selection criterion?",
        report(rows, args, env),
        None,
        env,
        provenance,
    )
    print(path)
    for r in rows:
        if r.get("error"):
            print(f"replication {r['replication']} failed: {r['error']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
