"""Uplift benchmarks: Hillstrom (Qini, AUUC per arm) and a synthetic user-growth campaign.

- **Hillstrom** (MineThatData 2008, randomized, 3 arms, control "No E-Mail"): per repetition a
  seeded 50/50 split stratified by arm; the models are fitted on a stratified subsample of the
  training half (``--train-size``; the causalmim estimators at their defaults would take hours
  on the full 32,000 units of 2 CPUs) and score the whole held-out half. For each treated arm,
  the units of that arm and of control are ranked by the predicted effect of the arm against
  control: Qini coefficient (normalized, as ``sklift``'s ``qini_auc_score``) and AUUC (area
  under the uplift curve, outcome units; a random ranking scores about ATE / 2).
- **User growth** (``causalmim.datasets.make_user_growth``: confounded logged policy, rare
  conversions, known uplift): the models are fitted on the first ``--ug-train`` users of a
  campaign and score the next ``--ug-test`` users against the truth: sqrt(PEHE), and the area
  above random under the uplift curve computed with the true uplift (noiseless) for the
  model's ranking, as a share of the oracle ranking's (by the true uplift): 1 is the oracle,
  0 random.

Usage::

    python benchmarks/uplift.py                    # both suites, every model
    python benchmarks/uplift.py --suite hillstrom --reps 2 --models TARNet XLearner --jobs 2

Writes ``uplift.md``, ``uplift.json``, ``uplift_hillstrom_qini.png`` and
``uplift_user_growth.png`` into ``--out``.
"""

import sys
import time

import _common as C
import numpy as np
from sklearn.model_selection import train_test_split

from causalmim.datasets import load_hillstrom, make_user_growth
from causalmim.metrics import ate_error, auuc, plot_qini_curve, qini_coefficient, sqrt_pehe

SUITES = ("hillstrom", "user_growth")
HILLSTROM_METRICS = ("qini_1", "auuc_1", "qini_2", "auuc_2")
UG_METRICS = ("pehe", "oracle_share", "ate_error")


# ----------------------------------------------------------------------------- Hillstrom


def hillstrom_splits(data, reps, train_size, seed):
    """Seeded 50/50 splits stratified by arm; the training half subsampled to ``train_size``."""
    out = []
    for r in range(reps):
        idx = np.arange(len(data.t))
        train, test = train_test_split(idx, test_size=0.5, stratify=data.t,
                                       random_state=seed + r)
        if train_size is not None and train_size < len(train):
            train, _ = train_test_split(train, train_size=train_size, stratify=data.t[train],
                                        random_state=seed + r)
        out.append({"rep": r, "train": np.sort(train), "test": np.sort(test)})
    return out


def run_hillstrom(task):
    name, rep, (Xtr, ttr, ytr), (Xte, tte, yte), seed, max_epochs, keep = task

    def score(tau):
        tau = tau.reshape(len(Xte), -1)
        out = {}
        for k in (1, 2):
            mask = (tte == 0) | (tte == k)
            u, t, y = tau[mask, k - 1], (tte[mask] == k).astype(int), yte[mask]
            out[f"qini_{k}"] = qini_coefficient(u, t, y)
            out[f"auuc_{k}"] = auuc(u, t, y)
        if keep:
            out["_tau"] = tau
        return out

    return C.scored_run({"suite": "hillstrom", "rep": rep}, name, "binary", seed, max_epochs,
                        (Xtr, ttr, ytr), [Xte], score, HILLSTROM_METRICS)


def hillstrom_plot(rows, data, split, path, note):
    plt = C.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    tte, yte = data.t[split["test"]], data.y[split["test"]]
    for k, ax in zip((1, 2), axes, strict=True):
        mask = (tte == 0) | (tte == k)
        t, y = (tte[mask] == k).astype(int), yte[mask]
        first = True
        for r in rows:
            if r.get("_tau") is None:
                continue
            plot_qini_curve(r["_tau"][mask, k - 1], t, y, ax=ax, label=r["model"],
                            random=first)
            first = False
        ax.set_title(f"{data.treatment_names[k]} vs {data.treatment_names[0]}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Hillstrom ({data.outcome}), Qini curves on the held-out half, repetition 0"
                 + (" (TRIAL)" if note else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- user growth


def true_gain_curve(score, uplift):
    """Uplift curve with the true uplift: fraction targeted, mean gain per user of the whole.

    Users with tied scores are targeted together (one point per block of equal scores), so a
    constant score gives the straight random line.
    """
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(-score, kind="mergesort")
    n = len(order)
    ends = np.r_[np.flatnonzero(np.diff(score[order])), n - 1]
    cumulative = np.cumsum(np.asarray(uplift, dtype=np.float64)[order])[ends]
    return np.r_[0, ends + 1] / n, np.r_[0.0, cumulative] / n


def _area_above_random(score, uplift):
    fraction, gain = true_gain_curve(score, uplift)
    area = float(np.sum(np.diff(fraction) * (gain[1:] + gain[:-1]) / 2.0))
    return area - gain[-1] / 2.0


def oracle_share(score, uplift):
    """Area above random of the true-uplift curve of ``score``, over the oracle's."""
    return _area_above_random(score, uplift) / _area_above_random(uplift, uplift)


def run_user_growth(task):
    name, rep, (Xtr, ttr, ytr), (Xte, tau_te), seed, max_epochs, keep = task

    def score(tau):
        out = {"pehe": sqrt_pehe(tau_te, tau), "oracle_share": oracle_share(tau, tau_te),
               "ate_error": ate_error(tau_te, tau)}
        if keep:
            out["_tau"] = tau
        return out

    return C.scored_run({"suite": "user_growth", "rep": rep}, name, "binary", seed,
                        max_epochs, (Xtr, ttr, ytr), [Xte], score, UG_METRICS)


def user_growth_plot(rows, tau_true, path, note):
    plt = C.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for r in rows:
        if r.get("_tau") is not None:
            ax.plot(*true_gain_curve(r["_tau"], tau_true), label=r["model"], lw=1.2)
    ax.plot(*true_gain_curve(tau_true, tau_true), "k--", label="oracle", lw=1.2)
    ax.plot([0, 1], [0, float(np.mean(tau_true))], "k:", label="random", lw=1)
    ax.set_xlabel("fraction of users targeted")
    ax.set_ylabel("true incremental conversions per user")
    ax.set_title("User growth, uplift curves with the true uplift, campaign 0"
                 + (" (TRIAL)" if note else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- report


def hillstrom_section(rows, summary, models, data, args, random_scores):
    arms = data.treatment_names
    header = ["Model", f"Qini {arms[1]}", f"AUUC {arms[1]}", f"Qini {arms[2]}",
              f"AUUC {arms[2]}", "median s / fit", "runs"]
    digits = {k: 3 if k.startswith("qini") else 4 for k in HILLSTROM_METRICS}
    table = C.summary_table(summary, models, HILLSTROM_METRICS, digits)
    table.append(["*random (constant score)*",
                  *(C.fmt(*C.mean_se(random_scores[k]), digits=digits[k])
                    for k in HILLSTROM_METRICS), "–", "–"])
    n_train = len(args.hillstrom_splits[0]["train"])
    n_test = len(args.hillstrom_splits[0]["test"])
    return (
        "## Hillstrom\n\n"
        f"Hillstrom e-mail experiment, outcome `{data.outcome}`, 3 arms ({', '.join(arms)}; "
        f"control {arms[0]}), {len(data.t)} customers. {args.reps} repetitions: a seeded "
        "50/50 split stratified by arm (seed = "
        f"{args.seed} + repetition); **the models are fitted on a stratified subsample of "
        f"{n_train} units of the training half** (to keep the causalmim estimators, at their "
        f"default settings, affordable on 2 CPUs) and scored on the whole held-out half "
        f"({n_test} units). Per treated arm, the units of that arm and of control are ranked "
        "by the predicted effect of the arm against control (randomized data: no "
        "confounding). Qini: the normalized Qini coefficient (model area above random over "
        "the ideal ranking's; `causalmim.metrics.qini_coefficient`). AUUC: area under the "
        "uplift curve (`causalmim.metrics.auuc`, outcome units; a random ranking scores about "
        "ATE / 2). Higher is better. Mean ± standard error over repetitions.\n\n"
        + C.markdown_table(header, table)
        + f"\n\n![Hillstrom Qini curves]({args.hillstrom_plot})"
    )


def user_growth_section(summary, models, args):
    header = ["Model", "√PEHE", "AUUC share of oracle", "ε_ATE", "median s / fit", "runs"]
    table = C.summary_table(summary, models, UG_METRICS, {"pehe": 4, "ate_error": 4})
    table.append(["*oracle (true uplift)*", "0", "1", "0", "–", "–"])
    return (
        "## User growth (synthetic)\n\n"
        f"`make_user_growth(n={args.ug_train + args.ug_test}, random_state={args.seed} + "
        "campaign)` at its other defaults (2 arms, control conversion rate 2%, average "
        "log-odds lift 0.3, logged policy confounded by activity with 10% exploration). "
        f"{args.reps} campaigns; the models are fitted on the first {args.ug_train} users "
        f"(logged, confounded data) and scored on the next {args.ug_test} against the true "
        "uplift: √PEHE and ε_ATE in conversion-probability units; AUUC share of oracle = "
        "(area under the uplift curve computed with the true uplift, above random) for the "
        "model's ranking over the same for the ranking by the true uplift (1: oracle, "
        "0: random, negative: worse than random). Mean ± standard error over campaigns.\n\n"
        + C.markdown_table(header, table)
        + f"\n\n![User-growth uplift curves]({args.ug_plot})"
    )


def main(argv=None):
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--suite", nargs="+", choices=SUITES, default=list(SUITES))
    p.add_argument("--reps", type=int, default=5,
                   help="repetitions (Hillstrom splits, user-growth campaigns)")
    p.add_argument("--outcome", choices=("visit", "conversion"), default="visit",
                   help="Hillstrom outcome")
    p.add_argument("--train-size", type=int, default=10_000,
                   help="Hillstrom: training units subsampled from the training half")
    p.add_argument("--ug-train", type=int, default=20_000, help="user growth: training users")
    p.add_argument("--ug-test", type=int, default=100_000, help="user growth: test users")
    C.add_cache_option(p)
    args = p.parse_args(argv)
    started = time.perf_counter()
    models = C.check_models(args.models or list(C.DEFAULT_MODELS))
    args.hillstrom_plot, args.ug_plot = "uplift_hillstrom_qini.png", "uplift_user_growth.png"
    note = C.trial_note(args)
    args.out.mkdir(parents=True, exist_ok=True)

    tasks, fns = [], []
    if "hillstrom" in args.suite:
        data = load_hillstrom(data_home=args.data_home, outcome=args.outcome, as_frame=False)
        args.hillstrom_splits = hillstrom_splits(data, args.reps, args.train_size, args.seed)
        for s in args.hillstrom_splits:
            tr, te = s["train"], s["test"]
            for name in models:
                tasks.append((name, s["rep"], (data.X[tr], data.t[tr], data.y[tr]),
                              (data.X[te], data.t[te], data.y[te]), args.seed + s["rep"],
                              args.max_epochs, s["rep"] == 0))
                fns.append(run_hillstrom)
    if "user_growth" in args.suite:
        campaigns = []
        for r in range(args.reps):
            g = make_user_growth(n=args.ug_train + args.ug_test, random_state=args.seed + r,
                                 as_frame=False)
            X, t, y = g.X.astype(np.float64), g.t.astype(np.int64), g.y.astype(np.float64)
            n = args.ug_train
            campaigns.append(g.uplift[n:, 0].astype(np.float64))
            for name in models:
                tasks.append((name, r, (X[:n], t[:n], y[:n]), (X[n:], campaigns[-1]),
                              args.seed + r, args.max_epochs, r == 0))
                fns.append(run_user_growth)

    rows = run_tasks(list(zip(fns, tasks, strict=True)), args)
    env = C.environment(started)

    sections = [f"> **{note}**"] if note else []
    sections.append("## Models\n\n" + C.model_notes(models) + " Wall time: fit plus "
                    "predictions on "
                    "the test units, one thread, median over repetitions.")
    payload = {"benchmark": "uplift", "trial": note, "models": models, "suites": {}}
    if "hillstrom" in args.suite:
        h_rows = [r for r in rows if r["suite"] == "hillstrom"]
        summary = C.summarize(h_rows, HILLSTROM_METRICS)
        random_scores = _hillstrom_random(data, args.hillstrom_splits)
        hillstrom_plot([r for r in h_rows if r["rep"] == 0], data, args.hillstrom_splits[0],
                       args.out / args.hillstrom_plot, note)
        sections.append(hillstrom_section(h_rows, summary, models, data, args, random_scores))
        payload["suites"]["hillstrom"] = {
            "outcome": args.outcome, "train_size": args.train_size,
            "test_size": len(args.hillstrom_splits[0]["test"]),
            "arms": data.treatment_names, "summary": summary, "random": random_scores,
            "runs": _public(h_rows)}
    if "user_growth" in args.suite:
        u_rows = [r for r in rows if r["suite"] == "user_growth"]
        summary = C.summarize(u_rows, UG_METRICS)
        user_growth_plot([r for r in u_rows if r["rep"] == 0], campaigns[0],
                         args.out / args.ug_plot, note)
        sections.append(user_growth_section(summary, models, args))
        payload["suites"]["user_growth"] = {
            "n_train": args.ug_train, "n_test": args.ug_test, "summary": summary,
            "runs": _public(u_rows)}
    sections += C.failure_sections(
        rows, lambda r: f"{r['suite']}, {r['model']}, repetition {r['rep']}")
    md, js = C.write_results(args.out, "uplift", "Uplift benchmarks", sections, payload, env)
    print(f"wrote {md}, {js} and the plots in {env['wall_seconds']} s")
    return 1 if any(r["error"] for r in rows) else 0


def run_tasks(items, args):
    """The rows of ``items`` (``(run_hillstrom or run_user_growth, task)`` pairs).

    With ``--cache FILE`` (:func:`C.run_cached`) a row is keyed by suite, model, repetition and
    random_state (a cache belongs to one set of the other options), and the effects kept for
    the plots (repetition 0) are stored with it.
    """
    suite = {run_hillstrom: "hillstrom", run_user_growth: "user_growth"}
    keys = [(suite[fn], task[0], task[1], task[4]) for fn, task in items]
    return C.run_cached(_dispatch, items, keys,
                        lambda r: (r["suite"], r["model"], r["rep"], r["random_state"]), args,
                        "uplift fits", load=_restore_effects)


def _restore_effects(row):
    if row.get("_tau") is not None:  # stored as nested lists
        row["_tau"] = np.asarray(row["_tau"], dtype=np.float64)


def _dispatch(fn_task):
    fn, task = fn_task
    return fn(task)


def _public(rows):
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def _hillstrom_random(data, splits):
    """Scores of a constant ranking (the random baseline) on each held-out half."""
    out = {k: [] for k in HILLSTROM_METRICS}
    for s in splits:
        tte, yte = data.t[s["test"]], data.y[s["test"]]
        for k in (1, 2):
            mask = (tte == 0) | (tte == k)
            u, t, y = np.zeros(mask.sum()), (tte[mask] == k).astype(int), yte[mask]
            out[f"qini_{k}"].append(qini_coefficient(u, t, y))
            out[f"auuc_{k}"].append(auuc(u, t, y))
    return out


if __name__ == "__main__":
    sys.exit(main())
