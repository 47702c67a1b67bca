"""Inspection of fitted models: which features feed which factor, and a plot of it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

FACTOR_LABELS = {"gamma": "instrumental", "delta": "confounding", "upsilon": "adjustment"}


def pair_dependence(factors, pairs, random_state=0):
    """Held-out dependence between pairs of representations, measured after the fact.

    ``factors``: name -> (M, n, d) tensor (the network's output); ``pairs``: (a, b) names.
    The representations are standardized as the training penalties see them and the rows
    split at random in halves. For each pair and member: a CLUB estimate of the mutual
    information from a critic fitted on the first half and evaluated on the second (nats),
    and the distance correlation on the second half. Returns ``{(a, b): (mi, dcor)}``, means
    over the members.
    """
    from ._engine import _standardize
    from .penalties import get_penalty, held_out_estimate

    z = {k: _standardize(v).cpu() for k, v in factors.items()}
    n = next(iter(z.values())).shape[1]
    order = np.random.default_rng(random_state).permutation(n)
    fit_rows, eval_rows = order[:n // 2], order[n // 2:]
    out = {}
    with torch.random.fork_rng():
        torch.manual_seed(random_state)
        for a, b in pairs:
            mi, dcor = [], []
            for m in range(z[a].shape[0]):
                za, zb = z[a][m], z[b][m]
                critic = get_penalty("club", dim_a=za.shape[1], dim_b=zb.shape[1])
                mi.append(held_out_estimate(critic, za, zb, fit_rows, eval_rows))
                with torch.no_grad():
                    dcor.append(float(get_penalty("dcor")(za[eval_rows], zb[eval_rows])))
            out[(a, b)] = (float(np.mean(mi)), float(np.mean(dcor)))
    return out


class DisentangledMixin:
    """Factor importances for models with instrumental/confounding/adjustment factors."""

    _factor_names = ("gamma", "delta", "upsilon")

    def _factor_importances(self, Xs, max_rows=2000):
        """Mean absolute input gradient of each factor's norm (summed over the members), per
        feature; columns sum to 1."""
        imp = self._factor_gradients(self.net_.module_, Xs[:max_rows])
        index = (self.feature_names_in_ if hasattr(self, "feature_names_in_")
                 else [f"x{i}" for i in range(Xs.shape[1])])
        return pd.DataFrame(imp, index=pd.Index(index, name="feature"),
                            columns=[FACTOR_LABELS[f] for f in self._factor_names])

    def _factor_gradients(self, module, Xs):
        device = next(module.parameters()).device
        module.eval()
        x = torch.as_tensor(Xs, dtype=torch.float32, device=device).requires_grad_()
        factors = module(x)["factors"]
        cols = []
        for name in self._factor_names:
            (grad,) = torch.autograd.grad(factors[name].pow(2).sum(), x, retain_graph=True)
            cols.append(grad.abs().mean(0).cpu().numpy())
        imp = np.stack(cols, axis=1).astype(np.float64)
        return imp / np.clip(imp.sum(axis=0, keepdims=True), 1e-12, None)

    def factor_dependence(self, X, *, random_state=0):
        """How dependent the learned factors are on the rows ``X``, measured after the fact.

        For each pair of factors (instrumental-confounding, confounding-adjustment,
        instrumental-adjustment) and each member: a CLUB estimate of the mutual information
        from a critic trained on half of the rows and evaluated on the other half (nats; an
        upper bound up to the critic's fit, so near 0 or below means no dependence the critic
        can find), and the distance correlation on the evaluation half (no critic; 0 for
        independent factors, 1 when one is a similarity transform of the other). The factors
        are standardized as the training penalties see them. Use held-out rows: the penalty
        saw the training rows.

        Returns
        -------
        pandas.DataFrame
            One row per factor pair, columns ``mi`` and ``dcor`` (means over the members).
        """
        check_is_fitted(self, "net_")
        factors = self._network_output(X)["factors"]
        pairs = (("gamma", "delta"), ("delta", "upsilon"), ("gamma", "upsilon"))
        dep = pair_dependence(factors, pairs, random_state)
        rows = {f"{FACTOR_LABELS[a]}-{FACTOR_LABELS[b]}": {"mi": mi, "dcor": dcor}
                for (a, b), (mi, dcor) in dep.items()}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("pair")

    def plot_factors(self, ax=None, top=None):
        """Heatmap of ``factor_importances_`` (features x factors); returns the Axes.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        top : int, optional
            Show only the ``top`` features by total importance.
        """
        from .metrics import _pyplot

        check_is_fitted(self, "factor_importances_")
        plt = _pyplot()
        imp = self.factor_importances_
        if top is not None:
            imp = imp.loc[imp.sum(axis=1).sort_values(ascending=False).index[:top]]
        if ax is None:
            _, ax = plt.subplots(figsize=(4.5, 0.25 * len(imp) + 1.5))
        im = ax.imshow(imp.to_numpy(), aspect="auto", cmap="viridis")
        ax.set_xticks(range(imp.shape[1]), imp.columns, rotation=30, ha="right")
        ax.set_yticks(range(len(imp)), imp.index)
        ax.set_title("How strongly each feature feeds each factor")
        ax.figure.colorbar(im, ax=ax, label="share of the factor's input gradient")
        return ax

