"""Ablation of CausalMIM's MI penalty: its weight and its estimator, against what it measures.

Every row is ``CausalMIMRegressor`` with its defaults except the MI penalty (``mi_weight``,
``mi_penalty``), trained with ``random_state=0``. Two kinds of data:

* IHDP-100 replications 1-50, official train/test splits (as ``benchmarks/ihdp.py``):
  out-of-sample sqrt(PEHE) and eps_ATE on the 75 test units; reps 1-10 are development data,
  reps 11-50 are reported separately;
* disentangled worlds ``make_disentangled(n=3000, random_state=seed)`` for seeds 100-109 (as
  ``benchmarks/disentangled.py``; seeds 0-9 are the development worlds): sqrt(PEHE) on the last
  1000 units, and whether each learned factor ranks its own block of covariates first
  (``factor_importances_``).

What the penalty achieves is measured after the fact with ``factor_dependence`` on the held-out
rows: the distance correlation between each pair of factors (no critic; 0 = independent), and
on the worlds (1000 held-out rows) a CLUB estimate of their mutual information from a critic
trained on half of the rows and evaluated on the other half. IHDP's 75 test rows are too few
for a 100-dimensional critic, so only the distance correlation is reported there.

``--dev`` runs the development sweep that chose the defaults instead: every variant of
:data:`VARIANTS` (the MI penalty's and further levers: a linear skip path, the trunk's depth,
critic settings, dropout, five members) on IHDP reps 1-10 and worlds 0-4 only, written to
``defaults.md``.

Usage::

    python benchmarks/ablation.py --jobs 2
    python benchmarks/ablation.py --dev --jobs 2     # the development sweep
    python benchmarks/ablation.py --variants mi0 vclub_s-0.01 --reps 3 --seeds 1   # a smoke run

Rows already computed are kept in ``<out>/ablation.partial.jsonl`` and skipped on a rerun with
the same ``--out``. Writes ``ablation.md`` and ``ablation.json`` into ``--out``.
"""

import json
import sys
import time
from pathlib import Path

import _common as C
import numpy as np

# The variants as they were run. The sweep that chose the defaults ran when CausalMIM's default
# was mi_weight=0.001, so every variant names its MI weight explicitly.
OLD = {"mi_weight": 0.001}
# Narrow layers and two trunk layers at mi_weight=0.01: the base of the member rounds (four to
# eight), which vary the members and one or two settings.
NARROW = {"mi_weight": 0.01, "trunk_layers": 2, "trunk_units": 50, "rep_units": 50,
          "head_units": 50}
VARIANTS = {
    "mi0": {"mi_weight": 0.0},
    "vclub_s-0.001": OLD,
    "vclub_s-0.01": {"mi_weight": 0.01},
    "vclub_s-0.1": {"mi_weight": 0.1},
    "vclub_s-1": {"mi_weight": 1.0},
    "dcor-0.1": {"mi_penalty": "dcor", "mi_weight": 0.1},
    "hsic-10": {"mi_penalty": "hsic", "mi_weight": 10.0},
    # Further levers, tried on the development data only (--dev).
    "linear_skip": {**OLD, "linear_skip": True},
    "trunk2": {**OLD, "trunk_layers": 2},
    "no-trunk": {**OLD, "trunk_layers": 0},
    "fast-critic": {**OLD, "critic_lr": 1e-2, "critic_steps": 5},
    "fast-critic-0.01": {"critic_lr": 1e-2, "critic_steps": 5, "mi_weight": 0.01},
    "dropout0": {**OLD, "dropout": 0.0},
    "ens5": {**OLD, "n_ensemble": 5},
    # Second round, tried on the development data against the default chosen by the first one
    # (mi_weight=0.01): a deeper trunk with it, and levers that cut the fit time.
    "trunk2-0.01": {"mi_weight": 0.01, "trunk_layers": 2},
    "narrow-0.01": {"mi_weight": 0.01, "trunk_units": 50, "rep_units": 50, "head_units": 50},
    "bs256-0.01": {"mi_weight": 0.01, "batch_size": 256},
    "lr1e-3-0.01": {"mi_weight": 0.01, "learning_rate": 1e-3},
    "patience20-0.01": {"mi_weight": 0.01, "patience": 20},
    # Third round: the two winners of the second round together.
    "trunk2-narrow-0.01": {"mi_weight": 0.01, "trunk_layers": 2, "trunk_units": 50,
                           "rep_units": 50, "head_units": 50},
    # The MI penalty's ablation at the default the third round chose.
    "trunk2-mi0": {"mi_weight": 0.0, "trunk_layers": 2},
    # Fourth round: can five narrow members cost what one full network costs?
    "ens5-narrow": {**NARROW, "n_ensemble": 5},
    # Fifth round: the critics' width. At the default width (64) each vCLUB-S critic has about
    # as many weights as a factor network, more than a narrow member's: narrower critics, and
    # with them a larger batch, to bring five narrow members near the cost of one network.
    "critic16-0.01": {"mi_weight": 0.01, "trunk_layers": 2, "mi_penalty_params": {"hidden": 16}},
    "ens5-narrow-c16": {**NARROW, "n_ensemble": 5, "mi_penalty_params": {"hidden": 16}},
    "ens5-narrow-c16-bs256": {**NARROW, "n_ensemble": 5, "mi_penalty_params": {"hidden": 16},
                              "batch_size": 256},
    # Sixth round: fewer narrow members, for an ensemble within two times the default's cost.
    "ens2-narrow": {**NARROW, "n_ensemble": 2},
    "ens3-narrow": {**NARROW, "n_ensemble": 3},
    # The MI penalty's ablation at the default the sixth round chose.
    "ens2-mi0": {**NARROW, "mi_weight": 0.0, "n_ensemble": 2},
    # Seventh round: weight averaging (an exponential moving average of the weights over the
    # steps, validated and kept by early stopping) on the default, at two horizons (about 50
    # and 200 steps).
    "ens2-ema98": {**NARROW, "n_ensemble": 2, "ema_decay": 0.98},
    "ens2-ema995": {**NARROW, "n_ensemble": 2, "ema_decay": 0.995},
    # Eighth round: the averaged weights kept improving for longer (seventh round); with a
    # shorter patience they might keep the gain at the default's time.
    "ens2-ema98-p20": {**NARROW, "n_ensemble": 2, "ema_decay": 0.98, "patience": 20},
    "ens2-ema995-p20": {**NARROW, "n_ensemble": 2, "ema_decay": 0.995, "patience": 20},
    # Tenth round: the balance penalty's weight (on the adjustment factor; default 1.0).
    "ens2-bal0": {**NARROW, "n_ensemble": 2, "balance_weight": 0.0},
    "ens2-bal01": {**NARROW, "n_ensemble": 2, "balance_weight": 0.1},
}
# The first two rounds ran when the trunk had one layer by default: they name it.
for _params in VARIANTS.values():
    _params.setdefault("trunk_layers", 1)
#: The variant that equals CausalMIMRegressor's defaults (chosen by the --dev sweep).
DEFAULT = "ens2-narrow"
ABLATION = ("mi0", "vclub_s-0.001", "vclub_s-0.01", "vclub_s-0.1", "vclub_s-1", "dcor-0.1",
            "hsic-10", "trunk2-mi0", "trunk2-0.01", "ens5-narrow", "ens2-mi0", "ens2-ema98-p20",
            "ens2-narrow")
FACTORS = ("instrumental", "confounding", "adjustment")
KEYS = ("pehe", "ate_err", "dcor", "mi", "seconds")


def _data(kind, unit, data_home):
    if kind == "ihdp":
        from causalmim.datasets import load_ihdp

        (rep,) = load_ihdp(replications=[unit], data_home=data_home)
        tr, te = rep.train, rep.test
        return (tr.x, tr.t, tr.yf), te.x, te.mu1 - te.mu0, None
    from causalmim.datasets import make_disentangled

    d = make_disentangled(n=3000, random_state=unit)
    train, test = slice(0, 2000), slice(2000, None)
    return (d.X.iloc[train], d.t[train], d.y[train]), d.X.iloc[test], d.tau[test], d.blocks


def run_one(task):
    from causalmim import CausalMIMRegressor
    from causalmim.metrics import sqrt_pehe

    variant, kind, unit, max_epochs, data_home = task
    (X, t, y), X_test, tau, blocks = _data(kind, unit, data_home)
    params = dict(VARIANTS[variant], random_state=0)
    if max_epochs is not None:
        params["max_epochs"] = max_epochs
    est = CausalMIMRegressor(**params)
    started = time.perf_counter()
    est.fit(X, t, y)
    seconds = time.perf_counter() - started
    tau_hat = np.asarray(est.predict(X_test), dtype=float)
    dep = est.factor_dependence(X_test)
    row = {"variant": variant, "kind": kind, "unit": unit, "seconds": seconds,
           "epochs": len(est.history_), "pehe": sqrt_pehe(tau, tau_hat),
           "ate_err": abs(float(np.mean(tau)) - float(np.mean(tau_hat))),
           "dcor": float(dep["dcor"].mean()), "dcor_pairs": dep["dcor"].to_dict(),
           "mi": float(dep["mi"].mean()) if kind == "world" else None,
           "train_mi": {k: float(v) for k, v in est.history_[-1].items()
                        if k.startswith("mi_")}}
    if blocks is not None:
        by_block = est.factor_importances_.groupby(blocks).mean()
        row["factor_ok"] = {f: bool(by_block[f].idxmax() == f) for f in FACTORS}
    return row


def _cached(path):
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            rows[(r["variant"], r["kind"], r["unit"])] = r
    return rows


def _mean(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return C.mean_se(vals) if vals else (float("nan"), float("nan"))


def without_penalty(v):
    """The variant that is ``v`` with ``mi_weight=0`` (its own network without the MI penalty:
    ``mi0`` for the one-layer trunk, ``trunk2-mi0`` for two layers, ``ens2-mi0`` for two
    members), or None."""
    want = {k: val for k, val in VARIANTS[v].items() if k != "mi_penalty"}
    want["mi_weight"] = 0.0
    return next((w for w, params in VARIANTS.items() if params == want), None)


def _paired(rows, v, kind, base, units=None):
    """:func:`C.paired` of the variant's sqrt(PEHE) against ``base``'s over the units both have
    (of ``units``, default all); None without a base or a shared unit."""
    if base is None or v == base:
        return None
    mine = {r["unit"]: r["pehe"] for r in rows if r["variant"] == v and r["kind"] == kind}
    ref = {r["unit"]: r["pehe"] for r in rows if r["variant"] == base and r["kind"] == kind}
    return C.paired(mine, ref, units)


def _text(paired):
    return "–" if paired is None else paired.text(digits=3)


def _against_default(rows, variants, reps_report):
    """One line per variant: its sqrt(PEHE) minus the default's, unit by unit."""
    lines = []
    for v in variants:
        ihdp, world = _paired(rows, v, "ihdp", DEFAULT), _paired(rows, v, "world", DEFAULT)
        if ihdp is not None and world is not None:
            report = _paired(rows, v, "ihdp", DEFAULT, set(reps_report))
            lines.append(f"- `{v}`: IHDP {ihdp.text()}, of which reps 11-50 {_text(report)}; "
                         f"worlds {world.text()}")
    if not lines:
        return ""
    return (f"√PEHE minus the default's (`{DEFAULT}`), mean ± standard error over the units "
            "both have (lower in / units):\n\n" + "\n".join(lines) + "\n")


def _table(rows, variants, reps_dev, reps_report, seeds):
    out = []
    for v in variants:
        ih = {r["unit"]: r for r in rows if r["variant"] == v and r["kind"] == "ihdp"}
        wo = [r for r in rows if r["variant"] == v and r["kind"] == "world"]
        dev = [ih[u] for u in reps_dev if u in ih]
        rep = [ih[u] for u in reps_report if u in ih]
        every = dev + rep
        ok = [b for r in wo for b in r["factor_ok"].values()]
        secs = [r["seconds"] for r in every]
        out.append([
            v, C.fmt(*_mean(wo, "mi"), digits=0) if wo else "–",
            C.fmt(*_mean(wo, "dcor"), digits=3) if wo else "–",
            C.fmt(*_mean(every, "dcor"), digits=3) if every else "–",
            (f"{np.mean([r['pehe'] for r in every]):.2f} / "
             f"{np.median([r['pehe'] for r in every]):.2f}") if every else "–",
            f"{np.mean([r['ate_err'] for r in every]):.3f}" if every else "–",
            (f"{np.mean([r['pehe'] for r in dev]):.2f} / "
             f"{np.mean([r['pehe'] for r in rep]):.2f}") if dev and rep else "–",
            C.fmt(*_mean(wo, "pehe"), digits=3) if wo else "–",
            _text(_paired(rows, v, "ihdp", without_penalty(v))),
            _text(_paired(rows, v, "world", without_penalty(v))),
            f"{sum(ok)}/{len(ok)}" if ok else "–",
            f"{np.median(secs):.1f}" if secs else "–",
            f"{len(every)} / {len(wo)}",
        ])
    return out


def main(argv=None):
    p = C.parser(__doc__.splitlines()[0], default_jobs=2, omit=("--models",))
    p.add_argument("--variants", nargs="+", default=None, choices=list(VARIANTS),
                   help="default: the ablation rows; with --dev: every variant")
    p.add_argument("--reps", type=int, default=None,
                   help="IHDP replications 1..reps (default 50; 10 with --dev)")
    p.add_argument("--seeds", type=int, default=None,
                   help="number of worlds (default 10; 5 with --dev)")
    p.add_argument("--dev", action="store_true",
                   help="development data only (IHDP reps 1-10, worlds 0-4): the sweep that "
                        "chooses the defaults; writes defaults.md")
    p.add_argument("--from-cache", action="store_true",
                   help="run no fit: write the tables from the rows cached in --out")
    args = p.parse_args(argv)
    if args.variants is None:
        args.variants = list(VARIANTS) if args.dev else list(ABLATION)
    if args.reps is None:
        args.reps = 10 if args.dev else 50
    if args.seeds is None:
        args.seeds = 5 if args.dev else 10
    if args.dev and args.reps > 10:
        p.error("--dev uses IHDP replications 1-10 at most (the others are reported data)")
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / "ablation.partial.jsonl"
    cached = _cached(partial)
    reps = list(range(1, args.reps + 1))
    first_seed = 0 if args.dev else 100
    seeds = list(range(first_seed, first_seed + args.seeds))
    units = [("world", s) for s in seeds] + [("ihdp", r) for r in reps]  # long fits first
    tasks = [(v, kind, u, args.max_epochs, args.data_home)
             for kind, u in units for v in args.variants if (v, kind, u) not in cached]
    if args.from_cache:
        tasks = []
    if tasks:
        print(f"{len(tasks)} fits to run ({len(cached)} cached in {partial})", file=sys.stderr)
    fresh = C.parallel_map(run_one, tasks, jobs=args.jobs, desc="fits",
                           progress=not args.no_progress, on_result=C.appender(partial))
    rows = [r for r in {**cached, **{(r["variant"], r["kind"], r["unit"]): r
                                     for r in fresh}}.values()
            if r["variant"] in args.variants and (
                (r["kind"] == "ihdp" and r["unit"] in reps)
                or (r["kind"] == "world" and r["unit"] in seeds))]
    reps_dev = [r for r in reps if r <= 10]
    reps_report = [r for r in reps if r > 10]
    table = _table(rows, args.variants, reps_dev, reps_report, seeds)
    header = ["variant", "worlds: held-out CLUB MI (nats)", "worlds: held-out dCor",
              "IHDP: held-out dCor", "IHDP √PEHE mean / median", "IHDP eps_ATE",
              "IHDP √PEHE mean reps 1-10 / 11-50", "worlds √PEHE",
              "IHDP √PEHE minus mi_weight=0's (lower in)",
              "worlds √PEHE minus mi_weight=0's (lower in)",
              "factor ranks correct",
              "IHDP median s / fit", "fits IHDP / worlds"]
    variants = "\n".join(
        f"- `{v}`: `CausalMIMRegressor("
        + ", ".join(f"{k}={val!r}" for k, val in VARIANTS[v].items()) + ")`"
        + (" (**the default**)" if v == DEFAULT else "")
        for v in args.variants)
    results = ("## Results\n\n" + variants + "\n\n"
               + C.markdown_table(header, table) + "\n\n"
               "Dependence columns: means over factor pairs and units (± standard error over "
               "units). √PEHE and eps_ATE: out of sample. \"minus mi_weight=0's\": the paired "
               "difference to the same network without the MI penalty (`mi0` for one trunk "
               "layer, `trunk2-mi0` for two, `ens2-mi0` for two members), mean ± standard "
               "error over the units both have, "
               "and in how many units the variant is lower.\n\n"
               + _against_default(rows, args.variants, reps_report))
    env = C.environment(started)
    sections = [C.trial_note(args), "## Protocol\n\n" + "\n\n".join(__doc__.split("\n\n")[1:4]),
                results]
    stem, title = (("defaults", "Choosing CausalMIM's defaults on development data")
                   if args.dev else ("ablation", "CausalMIM's MI penalty: ablation"))
    md, js = C.write_results(out, stem, title, [s for s in sections if s], {"rows": rows}, env)
    print(f"wrote {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
