"""GPU check: every estimator on ``device="cuda"``, host syncs per step, IHDP with members.

Run once on a machine with a GPU:  ``python benchmarks/gpu_check.py [--reps N]``. It

1. fits each estimator on the same synthetic world on the CPU and on the GPU and prints the wall
   time and sqrt(PEHE) of each and where the weights and the critics ended up;
2. counts the host synchronizations of a CausalMIM fit with 5 members
   (``torch.cuda.set_sync_debug_mode``): the engine syncs once per epoch (the epoch's losses,
   the members' validation losses), never inside a training step;
3. fits CausalMIM with ``n_ensemble=1`` and ``n_ensemble=5`` on every available IHDP replication
   (up to 100) on the GPU and reports the time per fit and the out-of-sample sqrt(PEHE).

Results go to ``benchmarks/results/gpu_check.md`` (and ``.json``) with the card's name. Exit code
1 when CUDA is absent or a check fails.
"""

from __future__ import annotations

import sys
import time
import warnings

import _common as C
import numpy as np
import torch

import causalmim
from causalmim.datasets import load_ihdp, make_disentangled
from causalmim.metrics import sqrt_pehe

MODELS = ["TARNetRegressor", "CFRNetRegressor", "DragonNetRegressor", "DRCFRRegressor",
          "CausalMIMRegressor"]


def devices_check():
    data = make_disentangled(n=3000, random_state=0)
    train, test = slice(0, 2000), slice(2000, None)
    X, t, y, tau = data.X.to_numpy(), data.t, data.y, data.tau
    rows, failed = [], False
    for name in MODELS:
        row = {"model": name}
        for device in ("cpu", "cuda"):
            est = getattr(causalmim, name)(device=device, random_state=0)
            start = time.perf_counter()
            est.fit(X[train], t[train], y[train])
            row[f"{device}_s"] = time.perf_counter() - start
            row[f"{device}_pehe"] = sqrt_pehe(tau[test], est.predict(X[test]))
        where = {p.device.type for p in est.net_.module_.parameters()}
        where |= {p.device.type for p in est.net_.critic_.parameters()}
        row["ok"] = bool(where == {"cuda"} and np.isfinite(row["cuda_pehe"]))
        failed |= not row["ok"]
        rows.append(row)
    return rows, failed


def sync_check():
    data = make_disentangled(n=3000, random_state=0)
    est = causalmim.CausalMIMRegressor(device="cuda", n_ensemble=5, max_epochs=5,
                                       random_state=0)
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(data.X, data.t, data.y)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    steps = sum(h["train_batch_count"] for h in est.history_)
    return {"syncs": syncs, "steps": steps, "epochs": len(est.history_),
            "ok": bool(syncs < steps)}


def ihdp_run(reps, data_home):
    rows = []
    for rep in load_ihdp(data_home=data_home)[:reps]:
        true_out = rep.test.mu1 - rep.test.mu0
        for members in (1, 5):
            est = causalmim.CausalMIMRegressor(device="cuda", n_ensemble=members,
                                               random_state=rep.replication)
            start = time.perf_counter()
            est.fit(rep.train.x, rep.train.t, rep.train.yf)
            seconds = time.perf_counter() - start
            rows.append({"replication": rep.replication, "n_ensemble": members,
                         "seconds": seconds, "epochs": len(est.history_),
                         "pehe_out": sqrt_pehe(true_out, est.predict(rep.test.x))})
    return rows


def main(argv=None):
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=100, help="IHDP replications (the first ones)")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("CUDA is not available: nothing to check.")
        return 1
    started = time.perf_counter()
    torch.set_num_threads(1)
    card = torch.cuda.get_device_name(0)
    devices, failed = devices_check()
    sync = sync_check()
    ihdp = ihdp_run(args.reps, args.data_home)
    env = C.environment(started)
    lines = [f"GPU: **{card}**, torch {torch.__version__}.", "",
             C.markdown_table(["model", "cpu s", "cuda s", "√PEHE cpu", "√PEHE cuda", "ok"],
                              [[r["model"], f"{r['cpu_s']:.1f}", f"{r['cuda_s']:.1f}",
                                f"{r['cpu_pehe']:.3f}", f"{r['cuda_pehe']:.3f}", r["ok"]]
                               for r in devices]), "",
             f"Host synchronizations in a 5-member CausalMIM fit: {sync['syncs']} over "
             f"{sync['steps']} training steps and {sync['epochs']} epochs.", ""]
    for members in (1, 5):
        sel = [r for r in ihdp if r["n_ensemble"] == members]
        lines.append(
            f"IHDP, {len(sel)} replications, CausalMIM n_ensemble={members}: median "
            f"{np.median([r['seconds'] for r in sel]):.1f} s per fit, total "
            f"{sum(r['seconds'] for r in sel):.0f} s; out-of-sample √PEHE mean "
            f"{np.mean([r['pehe_out'] for r in sel]):.2f}, median "
            f"{np.median([r['pehe_out'] for r in sel]):.2f}.")
    md, _ = C.write_results(args.out, "gpu_check", "GPU check", ["\n".join(lines)],
                            {"card": card, "devices": devices, "sync": sync, "ihdp": ihdp}, env)
    print("\n".join(lines))
    print(f"wrote {md}")
    return 1 if failed or not sync["ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
