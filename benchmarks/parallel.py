"""Parallel paths against ensembles: accuracy, fit time and the MI between paths.

Models on the same splits: ``ParallelMIMRegressor`` with K = 2, 4 and 8 paths (defaults
otherwise), ``ParallelMIM-K4, mi_weight=0`` (the same network without the penalty), CausalMIM
with ``n_ensemble=K`` (K members trained together, each with 100-unit layers as wide as the
paths' trunk, representations and heads, so that K paths and K members compare layer for layer),
TARNet and CausalMIM with defaults.

Data: IHDP-100 replications ``1 .. --reps`` (official 672 / 75 split, out-of-sample
sqrt(PEHE) and eps_ATE), the disentangled worlds ``make_disentangled(2000, random_state=s)``
for ``s < --seeds`` (first 1,500 units to train, the rest to score) and, with
``--growth-n``, one user-growth campaign (``make_user_growth``, binary conversions, first 70%
to train). Every model of a unit gets the same ``random_state``: ``--seed`` plus the IHDP
replication, plus 1000 + s for world s, plus 2000 for the campaign.

For the parallel models, the MI between paths: for every pair of paths, a CLUB critic fitted
after the fact on half of the held-out rows and evaluated on the other half, averaged over the
pairs, and their distance correlation. CLUB is an upper bound whose
Gaussian critic predicts one path from the other: when the paths are almost the same function
of the input (distance correlation near 1), the critic's variance collapses and the estimate
runs into the thousands of nats or more. Such a figure says "practically one representation",
not a quantity to compare digit by digit; the distance correlation is the readable column.

Under each table: whether the penalty lowers the MI between paths (ParallelMIM-K4 against the
same network at ``mi_weight=0``, unit by unit, with a two-sided sign test), and each K-path
model against the K-member ensemble of CausalMIM (mean sqrt(PEHE) and the units where the
paths are better). Models run on fewer units (``--models`` runs added later) are compared on
the units they share.

Usage::

    python benchmarks/parallel.py                       # 50 IHDP reps, 10 worlds, 2 processes
    python benchmarks/parallel.py --reps 10 --seeds 3   # a smaller run
    python benchmarks/parallel.py --quick               # smoke test: writes parallel_quick.*
"""

import time

import _common as C
import numpy as np

MODELS = ("ParallelMIM-K2", "ParallelMIM-K4", "ParallelMIM-K8", "ParallelMIM-K4-mi0",
          "CausalMIM-ens2", "CausalMIM-ens4", "CausalMIM-ens8", "TARNet", "CausalMIM")
QUICK = {"reps": 1, "seeds": 1, "models": ("ParallelMIM-K2", "ParallelMIM-K4-mi0",
                                           "CausalMIM-ens2", "TARNet")}
#: CausalMIM-ensK's layers, as wide as ParallelMIMRegressor's defaults (layer for layer).
MEMBER_WIDTHS = {"trunk_units": 100, "rep_units": 100, "head_units": 100}
KEYS = ("pehe_out", "ate_out", "path_mi", "path_dcor", "seconds")


def make(name, seed, max_epochs, outcome="continuous"):
    from causalmim import CausalMIMRegressor, ParallelMIMRegressor, TARNetRegressor

    params = dict(random_state=seed, outcome=outcome)
    if max_epochs is not None:
        params["max_epochs"] = max_epochs
    if name.startswith("ParallelMIM"):
        k = int(name.split("-K")[1].split("-")[0])
        extra = {"mi_weight": 0.0} if name.endswith("mi0") else {}
        return ParallelMIMRegressor(n_paths=k, **params, **extra)
    if name.startswith("CausalMIM-ens"):
        return CausalMIMRegressor(n_ensemble=int(name.split("ens")[1]), **MEMBER_WIDTHS, **params)
    return {"TARNet": TARNetRegressor, "CausalMIM": CausalMIMRegressor}[name](**params)


def path_mi(est, X, seed=0):
    """Mean over path pairs of a CLUB estimate of MI(Z_k; Z_l) on held-out rows (nats), and
    of their distance correlation (0: independent, 1: one a similarity transform of the
    other); see :func:`causalmim._inspection.pair_dependence`."""
    from itertools import combinations

    from causalmim._inspection import pair_dependence

    factors = est._network_output(X)["factors"]
    dep = pair_dependence(factors, list(combinations(factors, 2)), seed)
    return (float(np.mean([mi for mi, _ in dep.values()])),
            float(np.mean([dcor for _, dcor in dep.values()])))


def unit_id(unit):
    """A unit's offset of ``--seed`` (its random_state), distinct across the data sets: IHDP
    replication r -> r, world s -> 1000 + s, the user-growth campaign -> 2000."""
    data, number = unit
    return {"ihdp": number, "worlds": 1000 + number, "growth": 2000}[data]


def run_one(task):
    from causalmim.metrics import ate_error, sqrt_pehe

    name, (data, unit), seed, max_epochs = task
    row = {"model": name, "data": data, "unit": unit, "random_state": seed}
    outcome = "binary" if data == "growth" else "continuous"
    if data == "ihdp":
        from causalmim.datasets import load_ihdp

        rep = load_ihdp(replications=[unit])[0]
        train = (rep.train.x, rep.train.t, rep.train.yf)
        X_test, tau = rep.test.x, rep.test.mu1 - rep.test.mu0
    else:
        if data == "worlds":
            from causalmim.datasets import make_disentangled

            d = make_disentangled(n=2000, random_state=unit)
            cut = 1500
        else:
            from causalmim.datasets import make_user_growth

            d = make_user_growth(n=unit, random_state=0)
            cut = int(0.7 * unit)
        X = np.asarray(d.X, dtype=float)
        truth = d.tau if data == "worlds" else d.uplift
        t, y = np.asarray(d.t), np.asarray(d.y, dtype=float)
        tau_all = np.asarray(truth, dtype=float).reshape(len(y), -1)[:, 0]
        train = (X[:cut], t[:cut], y[:cut])
        X_test, tau = X[cut:], tau_all[cut:]
    est = make(name, seed, max_epochs, outcome)
    value, error = C.guarded(C.fit_effects, est, train, [X_test])
    if error is not None:
        row["error"] = error
        return row
    (tau_hat,), seconds = value
    row.update(pehe_out=sqrt_pehe(tau, tau_hat), ate_out=ate_error(tau, tau_hat),
               seconds=seconds)
    if name.startswith("ParallelMIM"):
        row["path_mi"], row["path_dcor"] = path_mi(est, X_test[:4000], seed)
    return row


def _fmt_mi(mean, se):
    """CLUB between near-identical paths runs into the thousands of nats: scientific there."""
    if mean is not None and np.isfinite(mean) and abs(mean) >= 1000:
        return f"{mean:.1e}" + (f" ± {se:.1e}" if se is not None and np.isfinite(se) else "")
    return C.fmt(mean, se, digits=3)


def _by_unit(rows, data, model):
    return {r["unit"]: r for r in rows
            if r["data"] == data and r["model"] == model and not r.get("error")}


def comparisons(rows, data, models):
    """Plain sentences under a table: the penalty's effect on the MI between paths, and each
    K-path model against the K-member ensemble, unit by unit on the units both ran."""
    out = []
    pen, free = _by_unit(rows, data, "ParallelMIM-K4"), _by_unit(rows, data, "ParallelMIM-K4-mi0")
    for key, what in (("path_dcor", "distance correlation"), ("path_mi", "CLUB MI")):
        a, b = ({u: r[key] for u, r in pen.items()}, {u: r[key] for u, r in free.items()})
        d = C.paired(a, b)
        if d is None:
            break
        shared = [u for u in a if u in b]
        verdict = ("the penalty lowers it" if d.lower > d.n / 2 and d.p < 0.05 else
                   "the penalty does **not** lower it" if d.lower <= d.n / 2 else
                   "no clear difference")
        out.append(
            f"- Penalty (ParallelMIM-K4 against K4-mi0), {what} between paths: median "
            f"{np.median([a[u] for u in shared]):.3g} against "
            f"{np.median([b[u] for u in shared]):.3g}, lower with the penalty on "
            f"{d.lower} of {d.n} units (sign test p = {d.p:.2g}): {verdict}.")
    for k in (2, 4, 8):
        paths, ens = (_by_unit(rows, data, f"ParallelMIM-K{k}"),
                      _by_unit(rows, data, f"CausalMIM-ens{k}"))
        shared = sorted(set(paths) & set(ens))
        if not shared or f"ParallelMIM-K{k}" not in models:
            continue
        a = np.array([paths[u]["pehe_out"] for u in shared])
        b = np.array([ens[u]["pehe_out"] for u in shared])
        sa = np.array([paths[u]["seconds"] for u in shared])
        sb = np.array([ens[u]["seconds"] for u in shared])
        f = 4 if data == "growth" else 3  # conversion-probability units, as in the table
        out.append(
            f"- ParallelMIM-K{k} against CausalMIM-ens{k} on {len(shared)} shared units: "
            f"√PEHE {a.mean():.{f}f} against {b.mean():.{f}f} (median {np.median(a):.{f}f} "
            f"against {np.median(b):.{f}f}), lower on {int(np.sum(a < b))} of {len(shared)}; "
            f"median fit time {np.median(sa):.1f} s against {np.median(sb):.1f} s.")
    return "\n".join(out)


def _table(rows, data, models):
    lines = []
    digits = 4 if data == "growth" else 3  # conversion-probability units
    for m in models:
        sel = [r for r in rows if r["data"] == data and r["model"] == m and not r.get("error")]
        if not sel:
            continue
        cells = [C.fmt(*C.mean_se([r.get(k) for r in sel]), digits=digits) for k in KEYS[:2]]
        cells.insert(1, f"{np.median([r['pehe_out'] for r in sel]):.{digits}f}")
        cells += [_fmt_mi(*C.mean_se([r.get("path_mi") for r in sel])),
                  C.fmt(*C.mean_se([r.get("path_dcor") for r in sel]), digits=3)]
        med = np.median([r["seconds"] for r in sel])
        lines.append([m, *cells, f"{med:.1f}", str(len(sel))])
    header = ["model", "√PEHE out", "√PEHE out, median", "ε_ATE out",
              "MI between paths (CLUB, nats)",
              "distance correlation between paths", "median fit s", "runs"]
    return C.markdown_table(header, lines)


def _units_text(units):
    units = sorted(units)
    return (", ".join(str(u) for u in units) if len(units) <= 12
            else f"{units[0]}-{units[-1]} ({len(units)} units)")


def section(rows, data, title, models):
    """The table of one data set; when some models ran on fewer units, a second table on the
    units every model ran; then :func:`comparisons`."""
    text = f"## {title}\n\n" + _table(rows, data, models)
    units = {m: set(u) for m in models if (u := _by_unit(rows, data, m))}
    if len({frozenset(u) for u in units.values()}) > 1:
        common = set.intersection(*units.values())
        most = max(map(len, units.values()))
        few = [m for m, u in units.items() if len(u) < most]
        text += (f"\n\n{', '.join(few)} ran on fewer units. On the {len(common)} "
                 f"units every model ran ({_units_text(common)}):\n\n"
                 + _table([r for r in rows if r["data"] != data or r["unit"] in common],
                          data, models))
    extra = comparisons(rows, data, models)
    return text + ("\n\n" + extra if extra else "")


def ratios(rows, data):
    """Median over units of the per-unit fit-time ratio ParallelMIM-K4 / CausalMIM."""
    out = []
    for unit in sorted({r["unit"] for r in rows if r["data"] == data}):
        by = {r["model"]: r for r in rows if r["data"] == data and r["unit"] == unit
              and not r.get("error")}
        if "ParallelMIM-K4" in by and "CausalMIM" in by:
            out.append(by["ParallelMIM-K4"]["seconds"] / by["CausalMIM"]["seconds"])
    return float(np.median(out)) if out else None


def main(argv=None):
    p = C.parser(__doc__.splitlines()[0], default_jobs=2)
    C.add_cache_option(p)
    p.add_argument("--reps", type=int, default=50, help="IHDP replications 1..REPS (0: none)")
    p.add_argument("--seeds", type=int, default=10, help="disentangled worlds 0..SEEDS-1")
    p.add_argument("--growth-n", type=int, default=0, help="user-growth rows (0: none)")
    p.add_argument("--quick", action="store_true", help="smoke test: writes parallel_quick.*")
    args = p.parse_args(argv)
    if args.data_home:
        import os

        os.environ["CAUSALMIM_DATA_HOME"] = str(args.data_home)
    models = tuple(args.models or (QUICK["models"] if args.quick else MODELS))
    reps = QUICK["reps"] if args.quick else args.reps
    seeds = QUICK["seeds"] if args.quick else args.seeds
    if args.quick and args.max_epochs is None:
        args.max_epochs = 3
    units = ([("ihdp", r) for r in range(1, reps + 1)] + [("worlds", s) for s in range(seeds)]
             + ([("growth", args.growth_n)] if args.growth_n else []))
    started = time.perf_counter()
    rows = C.run_models(run_one, units, models, args, unit_id=unit_id, desc="parallel fits")
    env = C.environment(started)
    sections = ["## Protocol\n\n" + __doc__.split("\n\n", 1)[1].split("Usage::")[0].strip()]
    note = C.trial_note(args)
    if note:
        sections.insert(0, f"**{note}**")
    for data, title in (("ihdp", f"IHDP-100, replications 1-{reps}"),
                        ("worlds", f"Disentangled worlds, seeds 0-{seeds - 1}"),
                        ("growth", f"User growth, {args.growth_n} rows")):
        if any(r["data"] == data for r in rows):
            r = ratios(rows, data)
            sections.append(section(rows, data, title, models) + (
                f"\n\nFit time ParallelMIM-K4 / CausalMIM (median over units): {r:.2f} "
                f"(target ≤ 1.5) {'✓' if r <= 1.5 else '✗'}" if r is not None else ""))
    failures = [r for r in rows if r.get("error")]
    if failures:
        sections.append("## Failures\n\n" + "\n".join(
            f"- {r['data']} {r['unit']} {r['model']}: {r['error']}" for r in failures))
    stem = "parallel_quick" if args.quick else "parallel"
    md, js = C.write_results(args.out, stem, "Parallel paths against ensembles", sections,
                             {"rows": rows}, env)
    print(f"wrote {md} and {js} in {env['wall_seconds']} s")


if __name__ == "__main__":
    main()
