"""Fair representations: what ``sensitive=`` buys and costs, weight by weight.

Two data sets, each model fitted on the training rows only and scored on held-out rows:

- *proxy world*: ``s`` in {0, 1} with unbalanced groups (a minority share of ``--shares``:
  20% and 5% by default), hidden behind two proxy features (``x0 = 1.5 s + noise``,
  ``x1 = s + noise``) among six; the true effect differs by group (``tau = 1 + x2 + 0.5 s``),
  so removing ``s`` has a price in accuracy. 2,000 units, the first 1,500 to train; seeds
  ``0 .. --seeds - 1``.
- *Jobs* (LaLonde NSW + PSID, ``source="lalonde"``): ``s = black``, removed from X, so only its
  proxies (earnings, education, ...) carry it; the first ``--splits`` official-protocol splits;
  policy risk on the randomized test units.

Model: ``CausalMIMRegressor`` with defaults, except the critic of the penalties
(``critic_lr=1e-2, critic_steps=5``: with the default ``1e-3`` and one step per batch the
fairness critic lags and the term does little, measured by the ``iwclub, default critic`` rows).
For ``fairness_weight`` in ``--weights`` and penalties ``iwclub`` (importance weights toward
equal group shares), ``club`` (the same bound without weights) and ``hsic``; held-out figures
from ``fairness_report``: ``mi`` (CLUB critic fitted after the fact on half of the held-out
rows, evaluated on the other half), ``cate_gap`` (largest difference of the groups' mean
predicted effects; the true gap beside it), ``policy_gap`` (difference of the groups' treated
shares under ``tau_hat > 0``).

Does the importance weighting matter? Under each table, ``iwclub`` against ``club`` at the
same weight, unit by unit (world or split): the mean difference of each figure, in how many
units ``iwclub`` is lower, and a two-sided sign test.

Usage::

    python benchmarks/fairness.py            # 3 seeds per share, 3 Jobs splits, 2 processes
    python benchmarks/fairness.py --quick    # smoke test: writes fairness_quick.*
    python benchmarks/fairness.py --cache fits.jsonl   # resumable; --from-cache: tables only
"""

import time

import _common as C
import numpy as np

WEIGHTS = (0.0, 0.1, 1.0, 10.0)
PENALTIES = ("iwclub", "club", "hsic")
FAST_CRITIC = {"critic_lr": 1e-2, "critic_steps": 5}
SHARES = (0.2, 0.05)
QUICK = {"seeds": 1, "splits": 1, "weights": (0.0, 1.0), "n": 600, "shares": (0.2,)}


def proxy_world(seed, n=2000, share=0.2):
    rng = np.random.default_rng(seed)
    s = (rng.random(n) < share).astype(int)
    X = rng.normal(size=(n, 6))
    X[:, 0] += 1.5 * s
    X[:, 1] += 1.0 * s
    logits = 0.5 * X[:, 3]
    t = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(int)
    tau = 1.0 + X[:, 2] + 0.5 * s
    y = X[:, 3] + 0.5 * X[:, 4] + t * tau + 0.5 * rng.normal(size=n)
    return X, t, y, s, tau


def configs(weights):
    out = [("none", 0.0, "iwclub", FAST_CRITIC)]
    for penalty in PENALTIES:
        for w in weights:
            if w > 0:
                out.append((penalty, w, penalty, FAST_CRITIC))
    out.append(("iwclub, default critic", 1.0, "iwclub", {}))
    return out


def run_one(task):
    from causalmim import CausalMIMRegressor
    from causalmim.metrics import policy_risk, sqrt_pehe

    data, unit, label, weight, penalty, critic, seed, max_epochs, n, share = task
    row = {"data": data, "unit": unit, "config": label, "weight": weight, "penalty": penalty,
           "share": share}
    params = dict(fairness_weight=weight, fairness_penalty=penalty, random_state=seed,
                  **critic)
    if max_epochs is not None:
        params["max_epochs"] = max_epochs
    est = CausalMIMRegressor(**params)
    if data == "proxy":
        X, t, y, s, tau = proxy_world(unit, n=n, share=share)
        tr, te = slice(0, int(0.75 * n)), slice(int(0.75 * n), None)
        start = time.perf_counter()
        est.fit(X[tr], t[tr], y[tr], sensitive=s[tr])
        row["seconds"] = time.perf_counter() - start
        report = est.fairness_report(X[te], s[te], tau=tau[te])
        row["sqrt_pehe"] = sqrt_pehe(tau[te], est.predict(X[te]))
    else:
        from causalmim.datasets import load_jobs

        split = load_jobs(source="lalonde", n_splits=unit + 1)[unit]
        names = list(split.feature_names)
        keep = [i for i, f in enumerate(names) if f != "black"]
        col = names.index("black")
        a, b = split.train, split.test
        est.set_params(outcome="binary")
        start = time.perf_counter()
        est.fit(a.x[:, keep], a.t, a.yf, sensitive=a.x[:, col].astype(int))
        row["seconds"] = time.perf_counter() - start
        report = est.fairness_report(b.x[:, keep], b.x[:, col].astype(int))
        tau_hat = np.asarray(est.predict(b.x[:, keep]))
        e = b.e == 1
        row["policy_risk"] = policy_risk(tau_hat[e], b.t[e], b.yf[e])
    row.update(report.to_dict())
    return row


KEYS = {"proxy": ("mi", "sqrt_pehe", "cate_gap", "true_cate_gap", "policy_gap", "seconds"),
        "jobs": ("mi", "policy_risk", "cate_gap", "policy_gap", "seconds")}


def _ok(rows, data, share=None):
    return [r for r in rows if r["data"] == data and r.get("error") is None
            and (data != "proxy" or r["share"] == share)]


def table(rows, order):
    """One line per (config, weight) of ``order`` over ``rows`` (one data set's)."""
    keys = KEYS[rows[0]["data"]] if rows else ()
    lines = []
    for label, weight in order:
        sel = [r for r in rows if r["config"] == label and r["weight"] == weight]
        if not sel:
            continue
        cells = [C.fmt(*C.mean_se([r.get(k) for r in sel]), digits=3) for k in keys]
        lines.append([label, f"{weight:g}", *cells, str(len(sel))])
    return C.markdown_table(["penalty", "fairness_weight", *keys, "runs"], lines)


def weighting(rows, weights):
    """Sentences: ``iwclub`` against ``club`` at each weight, unit by unit (:func:`C.paired`)."""
    out = []
    for w in weights:
        iw = {r["unit"]: r for r in rows if r["config"] == "iwclub" and r["weight"] == w}
        pl = {r["unit"]: r for r in rows if r["config"] == "club" and r["weight"] == w}
        parts = []
        for key in ("mi", "cate_gap", "policy_gap", "sqrt_pehe", "policy_risk"):
            d = C.paired({u: r.get(key) for u, r in iw.items()},
                         {u: r.get(key) for u, r in pl.items()})
            if d is not None:
                parts.append(f"{key} {C.fmt(d.mean, d.se, digits=3)} (lower in {d.lower} of "
                             f"{d.n}, p = {d.p:.2g})")
        if parts:
            out.append(f"- weight {w:g}, `iwclub` minus `club`: " + "; ".join(parts) + ".")
    return "\n".join(out)


def plot(rows, shares, path):
    plt = C.pyplot()
    fig, axes = plt.subplots(1, len(shares), figsize=(5.5 * len(shares), 4), squeeze=False)
    for ax, share in zip(axes[0], shares, strict=True):
        ok = _ok(rows, "proxy", share)
        for label in PENALTIES:
            sel = [r for r in ok if r["config"] in (label, "none")]
            weights = sorted({r["weight"] for r in sel})
            xs = [np.mean([r["mi"] for r in sel if r["weight"] == w]) for w in weights]
            ys = [np.mean([r["sqrt_pehe"] for r in sel if r["weight"] == w]) for w in weights]
            ax.plot(xs, ys, marker="o", label=label)
            for x, y, w in zip(xs, ys, weights, strict=True):
                ax.annotate(f"{w:g}", (x, y), fontsize=7, textcoords="offset points",
                            xytext=(3, 3))
        ax.set_xlabel("held-out MI(representation; s), nats (CLUB)")
        ax.set_ylabel("held-out sqrt(PEHE)")
        ax.set_title(f"Proxy world, minority {share:.0%}: fairness weight trade-off",
                     fontsize=9)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = C.parser(__doc__.splitlines()[0], default_jobs=2, omit=("--models",))
    C.add_cache_option(p)
    p.add_argument("--seeds", type=int, default=3, help="proxy worlds 0..SEEDS-1 per share")
    p.add_argument("--shares", type=float, nargs="+", default=list(SHARES),
                   help="the minority group's share in the proxy worlds")
    p.add_argument("--splits", type=int, default=3, help="Jobs splits 0..SPLITS-1")
    p.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS))
    p.add_argument("--quick", action="store_true", help="smoke test: writes fairness_quick.*")
    args = p.parse_args(argv)
    n = QUICK["n"] if args.quick else 2000
    seeds = QUICK["seeds"] if args.quick else args.seeds
    splits = QUICK["splits"] if args.quick else args.splits
    weights = QUICK["weights"] if args.quick else tuple(args.weights)
    shares = QUICK["shares"] if args.quick else tuple(args.shares)
    bad = [x for x in shares if not 0 < x < 0.5]
    if bad:
        p.error(f"--shares are the minority's share, between 0 and 0.5; got {bad}")
    if args.quick and args.max_epochs is None:
        args.max_epochs = 3
    if args.data_home:
        import os

        os.environ["CAUSALMIM_DATA_HOME"] = str(args.data_home)
    grid = configs(weights)
    tasks = [("proxy", s, *cfg, args.seed + s, args.max_epochs, n, share)
             for share in shares for s in range(seeds) for cfg in grid]
    tasks += [("jobs", s, *cfg, args.seed + s, args.max_epochs, n, None)
              for s in range(splits) for cfg in grid]
    started = time.perf_counter()
    rows = _run(tasks, args)
    env = C.environment(started)
    order = [(label, w) for label, w, _, _ in grid]
    positive = [w for w in weights if w > 0]
    stem = "fairness_quick" if args.quick else "fairness"
    plot_name = f"{stem}_tradeoff.png"
    args.out.mkdir(parents=True, exist_ok=True)
    plot(rows, shares, args.out / plot_name)
    failures = [r for r in rows if r.get("error")]
    sections = ["## Protocol\n\n" + __doc__.split("\n\n", 1)[1].split("Usage::")[0].strip()]
    for share in shares:
        ok = _ok(rows, "proxy", share)
        sections.append(
            f"## Proxy world, groups {share:.0%} / {1 - share:.0%} ({seeds} seeds, {n} units)"
            f"\n\n{table(ok, order)}\n\n{weighting(ok, positive)}")
    sections[-1] += f"\n\n![trade-off]({plot_name})"
    ok = _ok(rows, "jobs")
    sections.append(f"## Jobs, s = black ({splits} splits)\n\n{table(ok, order)}\n\n"
                    f"{weighting(ok, positive)}")
    if failures:
        sections.append("## Failures\n\n" + "\n".join(
            f"- {r['data']} {r['unit']} {r['config']} {r['weight']}: {r['error']}"
            for r in failures))
    note = C.trial_note(args)
    if note:
        sections.insert(0, f"**{note}**")
    md, js = C.write_results(args.out, stem, "Fair representations: the weight trade-off",
                             sections, {"rows": rows}, env)
    print(f"wrote {md} and {js} in {env['wall_seconds']} s")


def _key(data, unit, config, weight, share):
    return data, unit, config, float(weight), share


def _run(tasks, args):
    """The rows of ``tasks``, through the row cache of ``--cache FILE`` (:func:`C.run_cached`)."""
    keys = [_key(t[0], t[1], t[2], t[3], t[-1]) for t in tasks]
    return C.run_cached(run_guarded, tasks, keys,
                        lambda row: _key(row["data"], row["unit"], row["config"], row["weight"],
                                         row.get("share")),
                        args, "fairness fits")


def run_guarded(task):
    """``run_one`` with its failure recorded in the row instead of stopping the run."""
    value, error = C.guarded(run_one, task)
    if error is None:
        return value
    data, unit, label, weight, penalty = task[:5]
    return {"data": data, "unit": unit, "config": label, "weight": weight, "penalty": penalty,
            "share": task[-1], "error": error}


if __name__ == "__main__":
    main()
