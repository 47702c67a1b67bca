"""Doubly robust (AIPW) average effects from a model's own outcome and propensity heads."""

from __future__ import annotations

import numpy as np
import torch

from ._validation import check_treatment_outcome, index_arms

#: Propensities are clipped to [CLIP, 1 - CLIP] before they are inverted.
PROPENSITY_CLIP = 0.01


class DoublyRobustMixin:
    """``ate(method="aipw")`` for networks with a propensity head."""

    def _propensity(self, Xs):
        """The propensity head's class probabilities (n, K), averaged over the members."""
        module = self.net_.module_
        if getattr(module, "propensity_head", None) is None:
            raise ValueError(
                f"{type(self).__name__} has no propensity head, so it cannot compute a doubly "
                "robust ATE; use method='plugin', or a model with one (DRCFRRegressor, "
                "CausalMIMRegressor, DragonNetRegressor).")
        logits = self._module_output(Xs)["propensity"]
        return torch.softmax(logits.double(), dim=2).mean(0).cpu().numpy()

    def _aipw_ate(self, X, t, y, T0, T1, clip=PROPENSITY_CLIP):
        """AIPW: mean of ``mu1 - mu0 + 1[t=T1] (y - mu1) / e1 - 1[t=T0] (y - mu0) / e0``."""
        if t is None or y is None:
            raise ValueError("method='aipw' needs the observed arms and outcomes of the rows "
                             "of X: ate(X, t=t, y=y, method='aipw').")
        Xs = self._standardize(X)
        t, y = check_treatment_outcome(t, y, Xs.shape[0])
        idx = index_arms(t, self.classes_)
        n = Xs.shape[0]
        i0, i1 = (np.broadcast_to(i, n) for i in self._arm_indices(T0, T1, n))
        rows = np.arange(n)
        mu = self._forward(Xs)
        e = np.clip(self._propensity(Xs), clip, 1.0 - clip)
        y = np.asarray(y, dtype=float)
        psi = (mu[rows, i1] - mu[rows, i0]
               + (idx == i1) * (y - mu[rows, i1]) / e[rows, i1]
               - (idx == i0) * (y - mu[rows, i0]) / e[rows, i0])
        return float(np.mean(psi))
