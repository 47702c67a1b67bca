"""Fair representations: ``fit(X, t, y, sensitive=s)`` with a penalty on MI(representation; s).

After "Toward Fairness in Text Generation via Mutual Information Minimization based on
Importance Sampling" (Wang, Cheng and Henao, AISTATS 2023): the representation that the outcome
heads read is made independent of a sensitive attribute ``s`` by minimizing an importance-
sampled upper bound of the mutual information (importance-weighted CLUB, ``"iwclub"``), with
importance weights toward a reference distribution of ``s``; by default the reference gives
each group an equal share, so a small group counts as much as a large one.

Every estimator has the parameters ``fairness_penalty`` (default ``"iwclub"``),
``fairness_penalty_params`` and ``fairness_weight`` (default 0: off). ``s`` is needed in
``fit`` only, never at prediction time.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch

from ._terms import PenaltyTerm
from ._validation import _as_1d, _check_finite, _preview, continuous_values


def check_sensitive(s, n_samples):
    """Validate ``sensitive=``: returns ``(kind, groups, column)``.

    ``kind`` is ``"groups"`` (labels: ``groups`` holds them, ``column`` the index of each row's
    group) or ``"continuous"`` (a float column with more than 10 distinct non-integer values:
    ``groups`` is None, ``column`` the standardized values).
    """
    s = _as_1d(s, "sensitive")
    if len(s) != n_samples:
        raise ValueError(f"X has {n_samples} rows but sensitive has {len(s)}; they must match.")
    if s.dtype.kind in "fc":
        _check_finite(s.astype(np.float64), "sensitive")
    elif pd.isna(s).any():
        raise ValueError("sensitive contains missing values (None/NaN); every unit needs a "
                         "value of the sensitive attribute.")
    if continuous_values(s) is not None:
        sd = s.std()
        if sd == 0:
            raise ValueError("sensitive is constant; it carries no information to remove.")
        return "continuous", None, ((s - s.mean()) / sd).astype(np.float32)[:, None]
    groups, index = np.unique(s, return_inverse=True)
    if len(groups) < 2:
        raise ValueError(f"sensitive has a single group ({_preview(groups)}); fairness needs "
                         "at least two groups (or a continuous attribute).")
    return "groups", groups, index.astype(np.int64)


def reference_weights(index, n_groups):
    """Importance weights toward equal group shares: ``(1 / G) / share(group)``, mean 1."""
    shares = np.bincount(index, minlength=n_groups) / len(index)
    w = (1.0 / n_groups) / shares[index]
    return (w / w.mean()).astype(np.float32)


class FairnessMixin:
    """``sensitive=`` in ``fit``: the extra data columns, the penalty term and a report."""

    def _sensitive_columns(self, sensitive, n_samples):
        """Validate ``sensitive`` and return the per-row data columns it adds (``s``, and
        ``s_weight`` for groups); set ``sensitive_kind_`` and ``sensitive_groups_``."""
        self.sensitive_kind_, self.sensitive_groups_ = None, None
        if sensitive is None:
            return {}
        kind, groups, column = check_sensitive(sensitive, n_samples)
        self.sensitive_kind_, self.sensitive_groups_ = kind, groups
        if not self.fairness_weight:
            return {}  # off: the fit is the same as without ``sensitive``
        columns = {"s": column}
        if kind == "groups":
            columns["s_weight"] = reference_weights(column, len(groups))
        return columns

    def _fairness_terms(self):
        kind = getattr(self, "sensitive_kind_", None)
        if kind is None or not self.fairness_weight:
            return []
        weighted = kind == "groups" and self.fairness_penalty == "iwclub"
        return [PenaltyTerm("fairness", "outcome", "s", self.fairness_weight,
                            self.fairness_penalty, "fairness_penalty", partner=kind,
                            weights="s_weight" if weighted else None)]

    def representation(self, X):
        """The representation the outcome heads read, per member: (M, n, width), standardized
        as the penalties see it."""
        factors = self._network_output(X)["factors"]
        inputs = self.net_.module_.outcome_inputs
        return torch.cat([_standardize(factors[f]) for f in inputs], dim=-1).cpu()

    def fairness_report(self, X, sensitive, tau=None, *, random_state=0):
        """What the representation and the effects say about the groups of ``sensitive``.

        Parameters
        ----------
        X : array-like of shape (n, p)
            Held-out rows (not the training rows, whose representation the penalty saw).
        sensitive : array-like of shape (n,)
            The attribute on these rows (labels, or a continuous column).
        tau : array-like of shape (n,), optional
            The true effects, where known (simulations), for the true gap.
        random_state : int

        Returns
        -------
        pandas.Series
            * ``mi``: an estimate of MI(representation; s) in nats from a CLUB critic trained
              after the fact on half of the rows and evaluated on the other half (averaged
              over the members; an upper bound up to the critic's fit);
            * ``max_mi`` (groups only): the entropy H(s) of the groups' shares on these rows,
              in nats, the largest value the MI can take. CLUB is an upper bound and can
              exceed it (when the representation nearly determines ``s``, or a group has few
              rows): a warning then says so, and the MI is at most ``max_mi``;
            * ``cate_gap`` (and ``true_cate_gap`` with ``tau``): for groups, the largest
              difference between the groups' mean predicted effects; for a continuous ``s``,
              the correlation of the predicted effect with ``s``;
            * ``policy_gap``: for groups, the largest difference between the shares of each
              group that the policy ``tau_hat > 0`` treats.
        """
        from .penalties import get_penalty, held_out_estimate

        Xv = self._validate_X(X)
        kind, groups, column = check_sensitive(sensitive, Xv.shape[0])
        z = self.representation(X)
        rng = np.random.default_rng(random_state)
        order = rng.permutation(len(column))
        half = len(order) // 2
        fit_rows, eval_rows = order[:half], order[half:]
        b = torch.as_tensor(column)
        dims = {"n_classes": len(groups)} if kind == "groups" else {"dim_b": 1}
        estimates = []
        with torch.random.fork_rng():
            torch.manual_seed(random_state)
            for m in range(z.shape[0]):
                critic = get_penalty("club", dim_a=z.shape[2], **dims)
                estimates.append(held_out_estimate(critic, z[m], b, fit_rows, eval_rows))
        effect = np.asarray(self.effect(Xv), dtype=float)
        out = {"mi": float(np.mean(estimates))}
        if kind == "groups":
            shares = np.bincount(column, minlength=len(groups)) / len(column)
            shares = shares[shares > 0]
            out["max_mi"] = float(-(shares * np.log(shares)).sum())
            if out["mi"] > out["max_mi"]:
                warnings.warn(
                    f"The held-out CLUB estimate of MI(representation; s), {out['mi']:.3g} "
                    f"nats, exceeds H(s) = {out['max_mi']:.3g} nats, the most the MI can be "
                    "for these groups. CLUB is an upper bound, loose when the representation "
                    "nearly determines s or a group has few rows: read the MI as at most H(s), "
                    "or estimate it on more held-out rows.",
                    UserWarning, stacklevel=2)
            means = [effect[column == g].mean() for g in range(len(groups))]
            treated = [(effect[column == g] > 0).mean() for g in range(len(groups))]
            out["cate_gap"] = float(np.max(means) - np.min(means))
            out["policy_gap"] = float(np.max(treated) - np.min(treated))
            if tau is not None:
                tau = np.asarray(tau, dtype=float)
                true = [tau[column == g].mean() for g in range(len(groups))]
                out["true_cate_gap"] = float(np.max(true) - np.min(true))
        else:
            out["cate_gap"] = float(np.corrcoef(effect, column[:, 0])[0, 1])
            if tau is not None:
                out["true_cate_gap"] = float(np.corrcoef(np.asarray(tau, float),
                                                         column[:, 0])[0, 1])
        return pd.Series(out, name="fairness")


def _standardize(z, eps=1e-5):
    from ._engine import _standardize as standardize

    return standardize(z, eps)
