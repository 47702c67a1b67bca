"""Check that every causalmim estimator trains and predicts with ``device="cuda"``.

Run once on a machine with a GPU:  ``python benchmarks/gpu_check.py``. It fits each estimator on
the same synthetic world on the CPU and on the GPU, and prints the wall time of each fit, the
sqrt(PEHE) of each, and where the weights and the critics ended up. Exit code 1 when CUDA is
absent or a check fails.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

import causalmim
from causalmim.datasets import make_disentangled
from causalmim.metrics import sqrt_pehe

MODELS = ["TARNetRegressor", "CFRNetRegressor", "DragonNetRegressor", "DRCFRRegressor",
          "CausalMIMRegressor"]


def main():
    if not torch.cuda.is_available():
        print("CUDA is not available: nothing to check.")
        return 1
    torch.set_num_threads(1)
    data = make_disentangled(n=3000, random_state=0)
    train, test = slice(0, 2000), slice(2000, None)
    X, t, y, tau = data.X.to_numpy(), data.t, data.y, data.tau
    print(f"GPU: {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    print(f"{'model':<22}{'cpu s':>8}{'cuda s':>8}{'pehe cpu':>10}{'pehe cuda':>10}  device")
    failed = False
    for name in MODELS:
        row = {}
        for device in ("cpu", "cuda"):
            est = getattr(causalmim, name)(device=device, random_state=0)
            start = time.perf_counter()
            est.fit(X[train], t[train], y[train])
            row[device] = (time.perf_counter() - start, sqrt_pehe(tau[test], est.predict(X[test])))
            if device == "cuda":
                where = {p.device.type for p in est.net_.module_.parameters()}
                where |= {p.device.type for p in est.net_.critic_.parameters()}
                ok = where == {"cuda"} and np.isfinite(est.predict(X[test])).all()
                failed |= not ok
        print(f"{name:<22}{row['cpu'][0]:>8.1f}{row['cuda'][0]:>8.1f}{row['cpu'][1]:>10.3f}"
              f"{row['cuda'][1]:>10.3f}  {sorted(where)}{'' if ok else '  FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
