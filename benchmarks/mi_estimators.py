"""Mutual-information estimators of causalmim.penalties on jointly Gaussian data.

Data: ``a, b`` in R^d with per-coordinate correlation ``rho``, ``b = rho a + sqrt(1 - rho^2) e``;
the true mutual information is ``-(d/2) log(1 - rho^2)`` nats, and CLUB's own population value
(its value with the exact conditional q(b|a)) is ``d rho^2 / (1 - rho^2)``.

Protocol, for each d in {1, 5, 20}, rho in {0, 0.5, 0.8, 0.9} and each of 10 seeds: draw a
training sample of 2048 rows and fit every critic on it with :func:`fit_critic`'s defaults (20 %
held out for early stopping; the MI lower bounds on minibatches of 256, with 10 % held out and
at most 1000 steps), then evaluate every estimator on one fresh batch of 512 rows. The CLUB
family (CLUB, vCLUB-S, L1Out) shares one fitted q(b|a); IWCLUB fits its own q with random
per-sample weights w ~ U(0.5, 1.5) (independent of the data, so its target population is the
sampling one and it should match CLUB) and is evaluated with fresh weights of the same law. The
closed-form measures are reported on the same batches: HSIC and distance correlation between
``a`` and ``b``; MMD and Wasserstein between the groups of ``a`` defined by ``t = 1[b_1 > 0]``.
Then the CPU time of one forward + backward pass (to the inputs and the critic) at batch 512 is
measured per estimator (median of repeats, one thread).

Usage::

    python benchmarks/mi_estimators.py             # full grid, 10 seeds, 2 processes
    python benchmarks/mi_estimators.py --quick     # d in {1, 5}, 2 seeds
    python benchmarks/mi_estimators.py --jobs 1 --out /tmp

Writes ``mi_estimators.md`` (``mi_estimators_quick.md`` with ``--quick``) into ``--out``
(default ``benchmarks/results``).
"""

from __future__ import annotations

import math
import statistics
import sys
import time

import _common as C

# Lower-bound critics: minibatches of 256, 10 % held out (their validation pass is O(n^2)).
LB_FIT = {"batch_size": 256, "validation_fraction": 0.1, "n_steps": 1000}
# Estimator table (benchmarks as data): name -> (registry name, constructor params, fit params).
MI_ESTIMATORS = {
    "club": ("club", {}, {}),
    "vclub_s": ("vclub_s", {}, {}),
    "l1out": ("l1out", {}, {}),
    "iwclub": ("iwclub", {}, {}),
    "mine": ("mine", {}, LB_FIT),
    "nwj": ("nwj", {}, LB_FIT),
    "infonce": ("infonce", {}, LB_FIT),
}
SHARED_Q = ("club", "vclub_s", "l1out")  # one fitted q(b|a) for these
CLOSED_CONTINUOUS = ("hsic", "dcor")
CLOSED_GROUPS = ("mmd_linear", "mmd_rbf", "wasserstein")
TIMED = (*MI_ESTIMATORS, *CLOSED_CONTINUOUS, *CLOSED_GROUPS)

DIMS = (1, 5, 20)
RHOS = (0.0, 0.5, 0.8, 0.9)
SEEDS = 10
BATCH = 512
N_TRAIN = 2048
TIME_DIMS = (5, 20)
TIME_REPEATS = 15


def true_mi(d, rho):
    return -0.5 * d * math.log(1.0 - rho**2)


def club_population(d, rho):
    return d * rho**2 / (1.0 - rho**2)


def make_data(n, d, rho, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g)
    b = rho * a + math.sqrt(1.0 - rho**2) * torch.randn(n, d, generator=g)
    return a, b


def make_estimator(name, **extra):
    from causalmim.penalties import get_penalty

    registry_name, params, _ = MI_ESTIMATORS.get(name, (name, {}, {}))
    return get_penalty(registry_name, **params, **extra)


def _seed(d, rho, seed):
    return 100_000 * seed + 1_000 * d + int(round(100 * rho))


def run_cell(task):
    """All estimators on one (d, rho, seed): fit critics on a training sample, evaluate fresh."""
    import torch

    from causalmim.penalties import fit_critic

    d, rho, seed = task
    base = _seed(d, rho, seed)
    a_tr, b_tr = make_data(N_TRAIN, d, rho, base)
    a_ev, b_ev = make_data(BATCH, d, rho, base + 1)
    t_ev = (b_ev[:, 0] > 0).long()
    out = {}
    with torch.random.fork_rng():
        torch.manual_seed(base)
        q = make_estimator("club")
        fit_critic(q, a_tr, b_tr)
        for name in SHARED_Q:
            est = make_estimator(name)
            est.build(a_ev, b_ev)
            est.load_state_dict(q.state_dict())
            with torch.no_grad():
                out[name] = float(est(a_ev, b_ev))
        iw = make_estimator("iwclub")
        w_tr = torch.empty(N_TRAIN).uniform_(0.5, 1.5)
        fit_critic(iw, a_tr, b_tr, weights=w_tr)
        with torch.no_grad():
            out["iwclub"] = float(iw(a_ev, b_ev, weights=torch.empty(BATCH).uniform_(0.5, 1.5)))
        for name in ("mine", "nwj", "infonce"):
            est = make_estimator(name)
            fit_critic(est, a_tr, b_tr, **MI_ESTIMATORS[name][2])
            with torch.no_grad():
                out[name] = float(est(a_ev, b_ev))
        with torch.no_grad():
            for name in CLOSED_CONTINUOUS:
                out[name] = float(make_estimator(name)(a_ev, b_ev))
            for name in CLOSED_GROUPS:
                out[name] = float(make_estimator(name)(a_ev, t_ev))
    return {"d": d, "rho": rho, "seed": seed, "values": out}


def time_estimator(task):
    """Median CPU seconds of one forward + backward at batch 512 (critic built beforehand)."""
    name, d = task
    a, b = make_data(BATCH, d, 0.5, 12345)
    if name in CLOSED_GROUPS:
        b = (b[:, 0] > 0).long()
    est = make_estimator(name)
    est.build(a, b)
    times = []
    for k in range(TIME_REPEATS + 2):
        a_ = a.clone().requires_grad_(True)
        b_ = b.clone().requires_grad_(True) if b.is_floating_point() else b
        start = time.process_time()
        est.zero_grad(set_to_none=True)
        est(a_, b_).backward()
        elapsed = time.process_time() - start
        if k >= 2:  # warm-up
            times.append(elapsed)
    return {"name": name, "d": d, "ms": 1000.0 * statistics.median(times)}


# ----------------------------------------------------------------------------- report


def _stats(rows, name, d, rho):
    vals = [r["values"][name] for r in rows if r["d"] == d and r["rho"] == rho]
    mean = statistics.fmean(vals)
    std = statistics.stdev(vals) if len(vals) > 1 else float("nan")
    return mean, std


def mi_table(rows, dims):
    header = ["d", "rho", "true MI", "CLUB pop.", *MI_ESTIMATORS]
    lines = []
    for d in dims:
        for rho in RHOS:
            cells = [str(d), f"{rho:g}", f"{true_mi(d, rho):.2f}", f"{club_population(d, rho):.2f}"]
            cells += [C.fmt(*_stats(rows, n, d, rho)) for n in MI_ESTIMATORS]
            lines.append(cells)
    return C.markdown_table(header, lines)


def closed_table(rows, dims):
    header = ["d", "rho", *CLOSED_CONTINUOUS, *(f"{n} (t)" for n in CLOSED_GROUPS)]
    lines = []
    for d in dims:
        for rho in RHOS:
            cells = [str(d), f"{rho:g}"]
            cells += [C.fmt(*_stats(rows, n, d, rho), digits=3) for n in CLOSED_CONTINUOUS]
            cells += [C.fmt(*_stats(rows, n, d, rho), digits=3) for n in CLOSED_GROUPS]
            lines.append(cells)
    return C.markdown_table(header, lines)


def time_table(timings):
    by = {(t["name"], t["d"]): t["ms"] for t in timings}
    header = ["estimator", *(f"d={d} (ms)" for d in TIME_DIMS)]
    lines = [[n, *(f"{by[n, d]:.2f}" for d in TIME_DIMS)] for n in TIMED]
    return C.markdown_table(header, lines)


def reading(rows, dims, timings):
    """A short reading of the tables, with the figures computed from them."""

    def mean(name, d, rho):
        return _stats(rows, name, d, rho)[0]

    def rel(name, d, rho):
        return mean(name, d, rho) / club_population(d, rho) - 1.0

    cells = [(d, rho) for d in dims for rho in RHOS if rho > 0]
    dev = {n: max(abs(rel(n, d, r)) for d, r in cells) for n in ("club", "vclub_s", "iwclub")}
    dev_big = {n: max(abs(rel(n, d, r)) for d, r in cells if d > 1) for n in ("club", "vclub_s")}
    key = (5, 0.8) if 5 in dims else cells[0]
    c_m, c_s = _stats(rows, "club", *key)
    v_m, v_s = _stats(rows, "vclub_s", *key)
    spread = statistics.fmean(
        _stats(rows, "vclub_s", d, r)[1] / max(_stats(rows, "club", d, r)[1], 1e-12)
        for d, r in cells
    )
    ratio = {r: club_population(1, r) / true_mi(1, r) for r in RHOS if r > 0}
    below = [
        (n, d, r)
        for n in ("club", "vclub_s", "l1out", "iwclub")
        for d in dims
        for r in RHOS
        if mean(n, d, r) < true_mi(d, r) - 0.05
    ]
    above = [
        (n, d, r)
        for n in ("mine", "nwj", "infonce")
        for d in dims
        for r in RHOS
        if mean(n, d, r) > true_mi(d, r) + 0.05
    ]
    l1 = [mean("l1out", d, r) / true_mi(d, r) for d, r in cells]
    hi, lo = max(dims), min(dims)
    lb_hi = {n: mean(n, hi, 0.9) for n in ("mine", "nwj", "infonce")}
    lb_lo = {n: mean(n, lo, 0.9) / true_mi(lo, 0.9) for n in lb_hi}
    zero = max(abs(mean(n, d, 0.0)) for n in MI_ESTIMATORS for d in dims)
    ms = {t["name"]: t["ms"] for t in timings if t["d"] == max(TIME_DIMS)}
    order = sorted(ms, key=ms.get)
    out = [
        "- **CLUB is tight to its own population value d rho^2/(1 - rho^2), not to the MI.** "
        f"Averaged over seeds, CLUB is within {100 * dev['club']:.1f} % of it in every cell "
        f"with rho > 0 ({100 * dev_big['club']:.1f} % over d >= 5), vCLUB-S within "
        f"{100 * dev['vclub_s']:.1f} % ({100 * dev_big['vclub_s']:.1f} % over d >= 5) and "
        "IWCLUB with random weights within "
        f"{100 * dev['iwclub']:.1f} %. At d = {key[0]}, rho = {key[1]}: CLUB {c_m:.2f} ± "
        f"{c_s:.2f} and vCLUB-S {v_m:.2f} ± {v_s:.2f} against the population value "
        f"{club_population(*key):.2f} (true MI {true_mi(*key):.2f}). vCLUB-S has the same "
        f"mean with on average {spread:.1f}x CLUB's spread (one sampled negative per row).",
        "- **As upper bounds of the MI, CLUB and vCLUB-S are loose**, increasingly with rho: "
        "their population value over the MI is "
        + ", ".join(f"{v:.1f}x at rho = {r:g}" for r, v in ratio.items())
        + " (whatever d). **L1Out is the tightest upper bound**: its mean over the MI ranges "
        f"from {min(l1):.2f} to {max(l1):.2f} over the cells with rho > 0.",
        "- **Upper bounds below the MI (by more than 0.05 nats):** "
        + (
            ", ".join(
                f"{n} at d={d}, rho={r:g} ({mean(n, d, r) - true_mi(d, r):+.2f})"
                for n, d, r in below
            )
            or "none"
        )
        + (
            " (L1Out is a bound only for the exact q; with a q fitted on finite data, "
            "the estimation noise of its d x d coefficients makes the leave-one-out "
            "mixture term too large on fresh rows)"
            if any(n == "l1out" for n, _, _ in below)
            else ""
        )
        + "; **lower bounds above it:** "
        + (", ".join(f"{n} at d={d}, rho={r:g}" for n, d, r in above) or "none")
        + ".",
        "- **The lower bounds (MINE, NWJ, InfoNCE) are tight at small MI and loose at large "
        f"MI.** At d = {lo}, rho = 0.9 they reach "
        + ", ".join(f"{n} {100 * v:.0f} %" for n, v in lb_lo.items())
        + f" of the MI; at d = {hi}, rho = 0.9 (MI {true_mi(hi, 0.9):.1f} nats) only "
        + ", ".join(f"{n} {v:.2f}" for n, v in lb_hi.items())
        + f" nats. InfoNCE cannot exceed log {BATCH} = {math.log(BATCH):.2f}; MINE and NWJ "
        "are not capped, but need exponentially many samples at large MI, and their critic is "
        "soft-clipped to |T| < 10 for stability.",
        f"- **Independence:** every MI estimator's mean at rho = 0 is within {zero:.3f} nats of 0.",
        "- **Closed-form measures** (second table) are not in nats: HSIC and distance "
        "correlation grow with rho (HSIC's scale shrinks with d under the median heuristic); "
        "the group measures compare ``a`` across the two arms ``t = 1[b_1 > 0]``, so they see "
        "only the dependence carried by b's first coordinate.",
        f"- **Cost at batch {BATCH}, d = {max(TIME_DIMS)}:** from "
        + ", ".join(f"{n} {ms[n]:.1f} ms" for n in order[:3])
        + " to "
        + ", ".join(f"{n} {ms[n]:.1f} ms" for n in order[-3:])
        + " per forward + backward; CLUB and vCLUB-S are O(n), L1Out, the lower bounds and "
        "the kernel measures O(n^2), the Sinkhorn divergence three OT solves per pair of groups.",
    ]
    return "\n".join(out)


def main(argv=None):
    parser = C.parser(__doc__.split("\n")[0], default_jobs=2,
                      omit=("--models", "--seed", "--data-home", "--no-progress",
                            "--max-epochs"))
    parser.add_argument("--quick", action="store_true", help="d in {1, 5}, 2 seeds")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    dims = (1, 5) if args.quick else DIMS
    seeds = 2 if args.quick else SEEDS
    tasks = [(d, rho, s) for s in range(seeds) for d in dims for rho in RHOS]
    # Biggest cells first, so that the pool ends evenly.
    tasks.sort(key=lambda t: (-t[0], -t[1]))
    rows = C.parallel_map(run_cell, tasks, jobs=args.jobs, progress=False)
    fit_wall = time.perf_counter() - started
    timings = C.parallel_map(time_estimator, [(n, d) for n in TIMED for d in TIME_DIMS],
                             jobs=1, progress=False)

    env = C.environment(started)
    sections = [
        "## Protocol\n\nF" + __doc__.split("Protocol, f")[1].split("\n\nUsage")[0].strip(),
        f"## MI estimators (nats): mean ± std over {seeds} seeds, one batch of {BATCH}\n\n"
        "`true MI` = -(d/2) log(1 - rho^2); `CLUB pop.` = d rho^2 / (1 - rho^2), CLUB's "
        "value with the exact q(b|a). Upper bounds: club, vclub_s, l1out, iwclub; lower "
        "bounds: mine, nwj, infonce.\n\n" + mi_table(rows, dims),
        "## Reading\n\n" + reading(rows, dims, timings),
        f"## Closed-form measures: mean ± std over {seeds} seeds\n\n"
        "hsic (biased, RBF, median heuristic) and dcor (bias-corrected dCor^2) between a "
        "and b; mmd_linear, mmd_rbf (squared MMD) and wasserstein (Sinkhorn divergence, "
        "p = 2, epsilon = 0.5 x mean cost) between a | t = 0 and a | t = 1, "
        "t = 1[b_1 > 0].\n\n" + closed_table(rows, dims),
        f"## CPU time of one forward + backward at batch {BATCH}\n\n"
        f"Median of {TIME_REPEATS} repeats after 2 warm-up passes, one thread, "
        "`time.process_time`; backward to the inputs and the critic's parameters (critic "
        "fitting time not included). rho = 0.5.\n\n" + time_table(timings),
    ]
    path, _ = C.write_results(
        args.out, "mi_estimators_quick" if args.quick else "mi_estimators",
        "Mutual-information estimators on jointly Gaussian data", sections, None, env,
        [f"- Worker processes: {args.jobs}; estimates: {fit_wall:.0f} s wall"])
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
