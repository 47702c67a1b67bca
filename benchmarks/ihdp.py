"""IHDP-100 benchmark: within- and out-of-sample sqrt(PEHE) and eps_ATE over the replications.

Protocol (Shalit et al. 2017): each model is fitted on
the 672 training units of a replication (the causalmim estimators carve their early-stopping
split out of them) and scored on the same units (within-sample) and on the 75 test units
(out-of-sample) against the noiseless effect ``mu1 - mu0``. Outcomes are not rescaled.

Usage::

    python benchmarks/ihdp.py                      # every available replication, every model
    python benchmarks/ihdp.py --quick              # `make bench`: 3 replications, 6 models
    python benchmarks/ihdp.py --reps 10 --models TARNet CausalMIM --jobs 2 --out my_results

Writes ``ihdp.md``, ``ihdp.json`` and ``ihdp_pehe.png`` (``ihdp_quick.*`` with ``--quick``)
into ``--out`` (default ``benchmarks/results``).
"""

import sys
import time

import _common as C
import numpy as np

from causalmim.datasets import load_ihdp
from causalmim.metrics import ate_error, sqrt_pehe

QUICK_REPS = 3
QUICK_MODELS = ("TARNet", "DragonNet", "DR-CFR", "CausalMIM", "CausalForestDML", "TLearner")

# Published figures (within-sample, out-of-sample); None: not reported. Each paper's own
# replications and settings, not rerun here.
PUBLISHED = [
    ("BART", "Shalit et al. 2017", (2.1, 2.3), (None, None)),
    ("Causal forest", "Shalit et al. 2017", (3.8, 3.8), (None, None)),
    ("TARNet", "Shalit et al. 2017", (0.88, 0.95), (0.26, 0.28)),
    ("CFR-MMD", "Shalit et al. 2017", (0.73, 0.78), (None, None)),
    ("CFR-Wass", "Shalit et al. 2017", (0.71, 0.76), (0.25, 0.27)),
    ("DragonNet", "Shi et al. 2019", (None, None), (None, 0.21)),
    ("DragonNet + targeted reg.", "Shi et al. 2019", (None, None), (None, 0.20)),
]
METRICS = ("pehe_in", "pehe_out", "ate_in", "ate_out")
#: Replications 1..DEV_REPS are development data (defaults may be chosen on them).
DEV_REPS = 10


def run_one(task):
    """Fit one model on one replication's train split; score within and out of sample."""
    name, rep, seed, max_epochs = task
    true_in, true_out = rep.train.mu1 - rep.train.mu0, rep.test.mu1 - rep.test.mu0

    def score(tau_in, tau_out):
        return {
            "pehe_in": sqrt_pehe(true_in, tau_in), "pehe_out": sqrt_pehe(true_out, tau_out),
            "ate_in": ate_error(true_in, tau_in), "ate_out": ate_error(true_out, tau_out),
        }

    return C.scored_run({"replication": rep.replication}, name, "continuous", seed, max_epochs,
                        (rep.train.x, rep.train.t, rep.train.yf), [rep.train.x, rep.test.x],
                        score, METRICS)


def report(rows, summary, args, reps, models, env, note):
    header = ["Model", "√PEHE within", "√PEHE out", "ε_ATE within", "ε_ATE out",
              "median s / rep", "runs"]
    table = C.summary_table(summary, models, METRICS)
    table += [C.published_row(name, source, (*pehe, *ate))
              for name, source, pehe, ate in PUBLISHED]
    sections = [
        *([f"> **{note}**"] if note else []),
        "## Protocol\n\n"
        f"IHDP-100, replications {_ranges([r.replication for r in reps])} ({len(reps)} in all), "
        "the official train (672 units) / test (75 units) splits. Each model is fitted on the "
        "train split only; within-sample scores are on the train split, out-of-sample scores on "
        "the test split, against the noiseless effect mu1 - mu0; outcomes are not rescaled. "
        "sqrt(PEHE) = sqrt(mean((tau_hat - tau)^2)), eps_ATE = |mean(tau_hat) - mean(tau)|. "
        f"Mean ± standard error over replications; random_state = {args.seed} + replication. "
        "Wall time: fit plus predictions, one thread, median over replications. "
        + C.model_notes(models),
        "## Results\n\n" + C.markdown_table(header, table) + "\n\n"
        "Rows in italics are published figures (each paper's own replications and "
        "implementation, not rerun here); BART and causal forest from Shalit et al. (2017), "
        "table 1.\n\n"
        f"![Out-of-sample sqrt(PEHE) per replication]({args.plot_name})",
        *split_section(rows, models),
    ]
    return sections + C.failure_sections(
        rows, lambda r: f"{r['model']}, replication {r['replication']}")


def split_section(rows, models, dev=DEV_REPS):
    """Out-of-sample medians, and the means on the development replications (1-``dev``, where
    defaults may be chosen) apart from the others (reported data only)."""
    ok = [r for r in rows if r.get("error") is None]
    reported = sorted({r["replication"] for r in ok if r["replication"] > dev})
    if not reported:
        return []
    table = []
    for m in models:
        mine = [r for r in ok if r["model"] == m]
        dev_rows = [r for r in mine if r["replication"] <= dev]
        rep_rows = [r for r in mine if r["replication"] > dev]
        table.append([f"**{m}**", C.fmt(np.median([r["pehe_out"] for r in mine]))
                      if mine else "–",
                      C.fmt(*C.mean_se([r["pehe_out"] for r in dev_rows])),
                      C.fmt(*C.mean_se([r["pehe_out"] for r in rep_rows])),
                      C.fmt(np.median([r["pehe_out"] for r in rep_rows])) if rep_rows else "–",
                      C.fmt(*C.mean_se([r["ate_out"] for r in rep_rows]))])
    header = ["Model", "√PEHE out, median", f"√PEHE out, reps 1-{dev}",
              f"√PEHE out, reps {_ranges(reported)}", f"median, reps {_ranges(reported)}",
              f"ε_ATE out, reps {_ranges(reported)}"]
    return ["## Development and reported replications\n\n"
            f"Defaults of the causalmim models may be chosen on replications 1-{dev} "
            "(development data, see `defaults.md`); the other replications never enter a "
            "choice. Out of sample, mean ± standard error unless a median.\n\n"
            + C.markdown_table(header, table)]


def _ranges(values):
    values = sorted(values)
    parts, start = [], None
    for i, v in enumerate(values):
        start = v if start is None else start
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(f"{start}-{v}" if v > start else f"{v}")
            start = None
    return ", ".join(parts)


def main(argv=None):
    p = C.parser(__doc__.splitlines()[0])
    C.add_cache_option(p)
    p.add_argument("--reps", type=int, default=None,
                   help="number of replications, the first ones (default: every available)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK_REPS} replications, models {', '.join(QUICK_MODELS)}, 2 jobs "
                        "unless given; writes ihdp_quick.*")
    args = p.parse_args(argv)
    started = time.perf_counter()
    if args.quick:
        args.reps = args.reps or QUICK_REPS
        args.models = args.models or list(QUICK_MODELS)
        if "--jobs" not in (argv if argv is not None else sys.argv[1:]):
            args.jobs = 2
    models = C.check_models(args.models or list(C.ALL_MODELS))
    stem = "ihdp_quick" if args.quick else "ihdp"
    args.plot_name = f"{stem}_pehe.png"

    reps = load_ihdp(data_home=args.data_home)
    if args.reps is not None:
        if not 1 <= args.reps <= len(reps):
            p.error(f"--reps must be in 1..{len(reps)} (available replications)")
        reps = reps[: args.reps]
    rows = C.run_models(run_one, reps, models, args, lambda rep: rep.replication, "IHDP fits")
    summary = C.summarize(rows, METRICS)
    env = C.environment(started)
    note = C.trial_note(args)

    per_rep = C.values_by_model(rows, "pehe_out", models)
    finite = [v for vals in per_rep.values() for v in vals if v is not None]
    C.strip_plot(per_rep, "out-of-sample √PEHE", f"IHDP, {len(reps)} replications"
                 + (" (TRIAL)" if note else ""), args.out / args.plot_name,
                 log=bool(finite) and max(finite) > 20 * min(finite))
    payload = {
        "benchmark": "IHDP-100", "trial": note, "replications": [r.replication for r in reps],
        "models": models, "summary": summary,
        "published": [{"model": n, "source": s, "pehe_in": p_[0], "pehe_out": p_[1],
                       "ate_in": a[0], "ate_out": a[1]} for n, s, p_, a in PUBLISHED],
        "runs": rows,
    }
    md, js = C.write_results(args.out, stem, "IHDP-100 benchmark", report(
        rows, summary, args, reps, models, env, note), payload, env)
    print(f"wrote {md}, {js} and {args.out / args.plot_name} in {env['wall_seconds']} s")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
