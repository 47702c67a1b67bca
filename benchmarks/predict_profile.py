"""Where prediction time goes: rows per second on 1,000,000 user-growth rows, by operation.

``speed.py`` measures prediction at 200-270 thousand rows per second for every neural model,
against a target of 500,000 (issue #9). This script says why, in one run, one thread:

* rows/s of ``predict`` on ``--rows`` rows of ``make_user_growth`` (best of 3), for TARNet,
  CausalMIM with its defaults, and the same CausalMIM with ``activation="relu"`` (the one
  change of arithmetic that needs no exponential); the weights come from a one-epoch fit
  on 20,000 rows: prediction costs the same whatever the weights;
* the share of ``predict``'s time per operation (``torch.profiler``, self time);
* the throughput of the kernels themselves on tensors of the shape prediction uses (members
  x 2,048 rows x 50 units): nanoseconds per element of the activations and of an exponential,
  and the batched matrix product's GFLOP/s;
* a floor: the matrix products and activations of one CausalMIM prediction, counted from the
  network's layers, at those kernel speeds, give the most rows per second this CPU can reach
  with one thread and this architecture, whatever the code around them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
import numpy as np  # noqa: E402

TARGET_ROWS_PER_S = 500_000
CHUNK = 2048  # causalmim._engine.EVAL_CHUNK["cpu"]
MODELS = {
    "TARNet": ("TARNetRegressor", {}),
    "CausalMIM (defaults)": ("CausalMIMRegressor", {}),
    "CausalMIM, activation='relu'": ("CausalMIMRegressor", {"activation": "relu"}),
}


def _bench(fn, repeats, warmup=10):
    """Seconds per call of ``fn``: the mean of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def kernels(members=2, units=50, repeats=300):
    """ns per element of the elementwise kernels and GFLOP/s of baddbmm on (members, CHUNK,
    units) tensors."""
    import torch
    import torch.nn.functional as F

    x = torch.randn(members, CHUNK, units)
    w = torch.randn(members, units, units)
    b = torch.randn(members, 1, units)
    n = x.numel()
    ops = {"elu": lambda: F.elu(x), "relu": lambda: F.relu(x), "exp": lambda: torch.exp(x),
           "expm1": lambda: torch.expm1(x), "tanh": lambda: torch.tanh(x),
           "sigmoid": lambda: torch.sigmoid(x), "mul": lambda: x * 1.5}
    out = {f"{k} ns/element": _bench(f, repeats) * 1e9 / n for k, f in ops.items()}
    seconds = _bench(lambda: torch.baddbmm(b, x, w), repeats)
    out["baddbmm GFLOP/s"] = 2.0 * members * CHUNK * units * units / seconds / 1e9
    return out


def layer_counts(model):
    """Multiply-adds and activation outputs per row of one prediction (outcome heads of every
    arm, the factors they read, the trunk; no propensity head), from the fitted network."""
    from causalmim._nn import MemberLinear

    net = model.net_.module_
    m = net.n_members
    macs = acts = 0

    def mlp(block, copies):
        nonlocal macs, acts
        layers = list(block.net)
        for i, layer in enumerate(layers):
            if isinstance(layer, MemberLinear):
                macs += copies * layer.in_features * layer.out_features
                if i + 1 < len(layers) and not isinstance(layers[i + 1], MemberLinear):
                    acts += copies * layer.out_features

    if net.trunk is not None:
        mlp(net.trunk, m)
    mlp(net.factors, m * len(net.outcome_inputs))
    mlp(net.outcome_heads, m * net.n_arms)
    return macs, acts


def profile_predict(model, X):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.predict(X)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:6]
    return {e.key: e.self_cpu_time_total / total for e in top}


def main(argv=None):
    p = C.parser(__doc__.splitlines()[0], omit=("--jobs", "--models"))
    p.add_argument("--rows", type=int, default=1_000_000)
    args = p.parse_args(argv)
    C.single_thread()
    import causalmim
    from causalmim.datasets import make_user_growth

    started = time.perf_counter()
    data = make_user_growth(n=args.rows, random_state=args.seed, as_frame=False)
    X = np.asarray(data.X, dtype=np.float32)
    t, y = data.t, data.y
    rows, profiles, counts = [], {}, {}
    kern = kernels()
    for name, (cls, params) in MODELS.items():
        model = getattr(causalmim, cls)(outcome="binary", random_state=args.seed, max_epochs=1,
                                        epoch_size=2000, **params)
        model.fit(X[:20_000], t[:20_000], y[:20_000])
        # One untimed call (allocator and lazy initialization), then the best of three: a
        # million-row predict is seconds long, so more warm-up buys nothing but wall time.
        seconds = [_bench(lambda m=model: m.predict(X), 1, warmup=int(i == 0))
                   for i in range(3)]
        rate = args.rows / min(seconds)
        profiles[name] = profile_predict(model, X)
        row = {"model": name, "rows_per_s": rate, "predict_seconds": min(seconds)}
        if cls == "CausalMIMRegressor":
            macs, acts = layer_counts(model)
            act = "relu" if params.get("activation") == "relu" else "elu"
            floor_s = (2.0 * macs / (kern["baddbmm GFLOP/s"] * 1e9)
                       + acts * kern[f"{act} ns/element"] * 1e-9)
            row.update(macs_per_row=macs, activations_per_row=acts,
                       floor_rows_per_s=1.0 / floor_s,
                       activation_share_of_floor=acts * kern[f"{act} ns/element"] * 1e-9
                       / floor_s)
            counts[name] = (macs, acts)
        rows.append(row)

    table = [[r["model"], f"{r['rows_per_s']:,.0f}" + (" ✓" if r["rows_per_s"]
                                                       >= TARGET_ROWS_PER_S else " ✗"),
              f"{r['macs_per_row']:,}" if "macs_per_row" in r else "–",
              f"{r['activations_per_row']:,}" if "activations_per_row" in r else "–",
              f"{r['floor_rows_per_s']:,.0f}" if "floor_rows_per_s" in r else "–",
              C.fmt(r["activation_share_of_floor"]) if "activation_share_of_floor" in r
              else "–",
              "; ".join(f"{k} {v:.0%}" for k, v in list(profiles[r["model"]].items())[:4])]
             for r in rows]
    header = ["model", f"predict rows/s (≥ {TARGET_ROWS_PER_S:,})", "multiply-adds / row",
              "activations / row", "floor rows/s (kernels only)", "activations' share of floor",
              "predict time by operation (self time, top 4)"]
    kern_table = [[k, C.fmt(v, digits=2)] for k, v in kern.items()]
    sections = [
        C.trial_note(args),
        "## Protocol\n\n" + "\n".join(__doc__.split("\n")[2:]).strip(),
        "## Prediction\n\n" + C.markdown_table(header, table)
        + f"\n\n{args.rows:,} rows, one thread; ✓ / ✗: the target of 500,000 rows/s met / "
        "missed. Floor: multiply-adds x 2 / (baddbmm GFLOP/s) + activations x (ns / element) "
        "of the kernels below; it leaves out every other operation (copies, bias broadcasts, "
        "the conversion of the output), so it is an upper bound on rows/s.",
        f"## Kernels on ({2} members x {CHUNK:,} rows x 50 units)\n\n"
        + C.markdown_table(["kernel", "value"], kern_table),
    ]
    env = C.environment(started)
    C.write_results(args.out, "predict_profile", "Where prediction time goes",
                    [s for s in sections if s],
                    {"rows": rows, "profiles": profiles, "kernels": kern,
                     "rows_predicted": args.rows}, env)
    for r in rows:
        print(f"{r['model']}: {r['rows_per_s']:,.0f} rows/s"
              + (f" (floor {r['floor_rows_per_s']:,.0f})" if "floor_rows_per_s" in r else ""))
    print(kern)


if __name__ == "__main__":
    main()
