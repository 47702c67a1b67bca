"""Can the MI penalty make ParallelMIM's paths differ? Path conditioning against penalty weight.

``ParallelMIMRegressor(n_paths=4)`` with each ``path_conditioning`` (``"prefix"``: a learnable
vector concatenated to the trunk's output; ``"film"``: a learnable per-path scale and shift of
each trunk feature) at ``mi_weight`` 0, 0.001 (the default), 0.01, 0.1 and 1 (vCLUB-S between
every pair of paths), defaults otherwise, ``random_state=0``.

Development data only (no table reports these units elsewhere): the disentangled worlds
``make_disentangled(2000, random_state=s)`` for s = 50, 51 (first 1,500 units to train, the
rest to score) and IHDP-100 replications 6-10 (official 672 / 75 split). Columns, out of
sample: sqrt(PEHE), eps_ATE, the distance correlation between the paths' representations on
the scored rows (mean over pairs; 1: one path a similarity transform of another, 0:
independent) and the spread of the effect over the paths (``effect_std``, mean over rows).

Rows already computed are kept in ``<out>/path_diversity.partial.jsonl`` and skipped on a
rerun with the same ``--out``; ``--from-cache`` writes the report from them without fitting.

Usage::

    python benchmarks/path_diversity.py --jobs 2
"""

import json
import sys
import time
from pathlib import Path

import _common as C
import numpy as np

CONDITIONINGS = ("prefix", "film")
WEIGHTS = (0.0, 0.001, 0.01, 0.1, 1.0)
WORLDS = (50, 51)
REPS = (6, 7, 8, 9, 10)


def _data(kind, unit, data_home):
    if kind == "ihdp":
        from causalmim.datasets import load_ihdp

        (rep,) = load_ihdp(replications=[unit], data_home=data_home)
        tr, te = rep.train, rep.test
        return tr.x, tr.t, tr.yf, te.x, te.mu1 - te.mu0
    from causalmim.datasets import make_disentangled

    d = make_disentangled(2000, random_state=unit)
    return d.X.iloc[:1500], d.t[:1500], d.y[:1500], d.X.iloc[1500:], d.tau[1500:]


def run_one(task):
    from parallel import path_mi

    from causalmim import ParallelMIMRegressor
    from causalmim.metrics import sqrt_pehe

    cond, weight, kind, unit, max_epochs, data_home = task
    X, t, y, X_test, tau = _data(kind, unit, data_home)
    params = dict(n_paths=4, path_conditioning=cond, mi_weight=weight, random_state=0)
    if max_epochs is not None:
        params["max_epochs"] = max_epochs
    est = ParallelMIMRegressor(**params)
    started = time.perf_counter()
    est.fit(X, t, y)
    seconds = time.perf_counter() - started
    tau_hat = np.asarray(est.predict(X_test), dtype=float)
    _, dcor = path_mi(est, X_test)
    return {"cond": cond, "w": weight, "kind": kind, "unit": unit,
            "pehe": sqrt_pehe(tau, tau_hat),
            "ate": abs(float(np.mean(tau) - np.mean(tau_hat))), "dcor": dcor,
            "spread": float(np.mean(est.effect_std(X_test))), "seconds": seconds,
            "epochs": len(est.history_)}


def _table(rows, kind):
    out = []
    for cond in CONDITIONINGS:
        for w in WEIGHTS:
            mine = [r for r in rows if (r["cond"], r["w"], r["kind"]) == (cond, w, kind)]
            if not mine:
                continue
            pehe = [r["pehe"] for r in mine]
            out.append([cond, f"{w:g}", C.fmt(*C.mean_se(pehe)), C.fmt(np.median(pehe)),
                        C.fmt(*C.mean_se([r["ate"] for r in mine])),
                        C.fmt(*C.mean_se([r["dcor"] for r in mine]), digits=3),
                        C.fmt(*C.mean_se([r["spread"] for r in mine])),
                        C.fmt(np.median([r["seconds"] for r in mine]), digits=1),
                        str(len(mine))])
    return out


def main(argv=None):
    p = C.parser(__doc__.splitlines()[0], default_jobs=2, omit=("--models",))
    p.add_argument("--from-cache", action="store_true",
                   help="run no fit: write the report from the rows cached in --out")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: world 50 and replication 6, weights 0 and 0.01")
    args = p.parse_args(argv)
    worlds, reps, weights = (WORLDS[:1], REPS[:1], (0.0, 0.01)) if args.quick else (
        WORLDS, REPS, WEIGHTS)
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / "path_diversity.partial.jsonl"
    cached = {}
    if partial.is_file():
        for line in partial.read_text().splitlines():
            r = json.loads(line)
            cached[(r["cond"], r["w"], r["kind"], r["unit"])] = r
    units = [("world", s) for s in worlds] + [("ihdp", r) for r in reps]
    tasks = [(c, w, kind, u, args.max_epochs, args.data_home)
             for kind, u in units for c in CONDITIONINGS for w in weights
             if (c, w, kind, u) not in cached and not args.from_cache]
    fresh = C.parallel_map(run_one, tasks, jobs=args.jobs, desc="fits",
                           progress=not args.no_progress, on_result=C.appender(partial))
    rows = [r for r in {**cached, **{(r["cond"], r["w"], r["kind"], r["unit"]): r
                                     for r in fresh}}.values()
            if r["w"] in weights and r["unit"] in (worlds if r["kind"] == "world" else reps)]
    header = ["conditioning", "mi_weight", "√PEHE out", "median", "ε_ATE out",
              "dCor between paths", "effect spread over paths", "median fit s", "fits"]
    sections = [
        C.trial_note(args),
        "## Protocol\n\n" + "\n\n".join(__doc__.split("\n\n")[1:3]),
        f"## Disentangled worlds {', '.join(map(str, worlds))}\n\n"
        + C.markdown_table(header, _table(rows, "world")),
        f"## IHDP-100, replications {', '.join(map(str, reps))}\n\n"
        + C.markdown_table(header, _table(rows, "ihdp")),
    ]
    env = C.environment(started)
    stem = "path_diversity_quick" if args.quick else "path_diversity"
    md, js = C.write_results(out, stem, "ParallelMIM: path conditioning and the "
                             "MI penalty", [s for s in sections if s], {"rows": rows}, env)
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
