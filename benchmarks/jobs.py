"""Jobs benchmark: policy risk R_pol and eps_ATT on the randomized units, over 80/20 splits.

Protocol (Shalit et al. 2017): LaLonde's NSW experiment
(722 randomized units, ``e = 1``) plus 2490 PSID controls (``e = 0``), outcome employment in 1978.
Each model is fitted on the training part of a split (all its units, randomized or not; the
causalmim estimators carve their early-stopping split out of it) and scored on the randomized
units only, within-sample (training part) and out-of-sample (test part).

Usage::

    python benchmarks/jobs.py                       # 10 splits, every model
    python benchmarks/jobs.py --splits 3 --models TARNet CausalMIM --jobs 2 --out my_results

Writes ``jobs.md``, ``jobs.json`` and ``jobs_policy_risk.png`` into ``--out``.
"""

import sys
import time

import _common as C

from causalmim.datasets import load_jobs
from causalmim.metrics import att_error, policy_risk

# Published figures (within-sample, out-of-sample), Shalit et al. 2017, table 1: their 17
# covariates and splits (the official CFRNet files), not rerun here.
PUBLISHED = [("CFR-Wass", "Shalit et al. 2017", (0.17, 0.21), (0.04, 0.09))]
METRICS = ("rpol_in", "rpol_out", "att_in", "att_out")


def run_one(task):
    """Fit one model on one split's training part; score on its randomized units."""
    name, split, seed, max_epochs = task
    tr, te = split.train, split.test

    def score(tau_in, tau_out):
        return {
            "rpol_in": policy_risk(tau_in, tr.t, tr.yf, tr.e),
            "rpol_out": policy_risk(tau_out, te.t, te.yf, te.e),
            "att_in": att_error(tau_in, tr.t, tr.yf, tr.e),
            "att_out": att_error(tau_out, te.t, te.yf, te.e),
        }

    return C.scored_run({"split": split.split}, name, "binary", seed, max_epochs,
                        (tr.x, tr.t, tr.yf), [tr.x, te.x], score, METRICS)


def report(rows, summary, args, splits, models, note):
    header = ["Model", "R_pol within", "R_pol out", "ε_ATT within", "ε_ATT out",
              "median s / split", "runs"]
    table = C.summary_table(summary, models, METRICS)
    table += [C.published_row(name, source, (*rpol, *att))
              for name, source, rpol, att in PUBLISHED]
    first = splits[0]
    n_e = int(first.train.e.sum() + first.test.e.sum())
    covariates = ", ".join(first.feature_names)
    sections = [
        *([f"> **{note}**"] if note else []),
        "## Protocol\n\n"
        f"Jobs ({first.source} files: {len(first.train.t) + len(first.test.t)} units, {n_e} "
        f"randomized), {len(splits)} train/test splits of `load_jobs` (seeded, 80/20, "
        f"stratified on treated / NSW control / PSID control); covariates: {covariates}. "
        "Each model is fitted on the training part only, with the binary outcome "
        "(causalmim: `outcome=\"binary\"`, effects are differences of probabilities). Scores "
        "on the randomized units (e = 1) of the training part (within) and the test part "
        "(out): R_pol = 1 - [P(pi=1) E(y | pi=1, t=1) + P(pi=0) E(y | pi=0, t=0)] with "
        "pi(x) = 1[tau_hat(x) > 0]; eps_ATT = |mean of tau_hat over treated randomized units - "
        "(mean(y | t=1, e=1) - mean(y | t=0, e=1))|. "
        f"Mean ± standard error over splits; random_state = {args.seed} + split. "
        "Wall time: fit plus predictions, one thread, median over splits. "
        + C.model_notes(models),
        "## Results\n\n" + C.markdown_table(header, table) + "\n\n"
        "The row in italics is the published figure (Shalit et al. 2017, table 1), obtained "
        "on the official CFRNet files (17 covariates, their splits), not rerun here"
        + ("; the covariates here differ (see Protocol), so it is a rough reference only."
           if first.source != "official" else ".") + "\n\n"
        f"![Out-of-sample policy risk per split]({args.plot_name})",
    ]
    return sections + C.failure_sections(rows, lambda r: f"{r['model']}, split {r['split']}")


def main(argv=None):
    p = C.parser(__doc__.splitlines()[0])
    C.add_cache_option(p)
    p.add_argument("--splits", type=int, default=10, help="number of train/test splits")
    p.add_argument("--source", choices=("auto", "official", "lalonde"), default="auto",
                   help="Jobs files, see causalmim.datasets.load_jobs")
    args = p.parse_args(argv)
    started = time.perf_counter()
    models = C.check_models(args.models or list(C.DEFAULT_MODELS))
    args.plot_name = "jobs_policy_risk.png"

    splits = load_jobs(data_home=args.data_home, n_splits=args.splits, source=args.source)
    rows = C.run_models(run_one, splits, models, args, lambda s: s.split, "Jobs fits")
    summary = C.summarize(rows, METRICS)
    env = C.environment(started)
    note = C.trial_note(args)

    C.strip_plot(C.values_by_model(rows, "rpol_out", models), "out-of-sample policy risk",
                 f"Jobs, {len(splits)} splits" + (" (TRIAL)" if note else ""),
                 args.out / args.plot_name)
    payload = {
        "benchmark": "Jobs", "trial": note, "source": splits[0].source,
        "feature_names": splits[0].feature_names, "splits": [s.split for s in splits],
        "models": models, "summary": summary,
        "published": [{"model": n, "source": s, "rpol_in": r[0], "rpol_out": r[1],
                       "att_in": a[0], "att_out": a[1]} for n, s, r, a in PUBLISHED],
        "runs": rows,
    }
    md, js = C.write_results(args.out, "jobs", "Jobs benchmark", report(
        rows, summary, args, splits, models, note), payload, env)
    print(f"wrote {md}, {js} and {args.out / args.plot_name} in {env['wall_seconds']} s")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
