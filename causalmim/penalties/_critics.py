"""Critic networks: the variational q(b|a) of the CLUB family and the lower bounds' T(a, b)."""

from __future__ import annotations

import torch
from torch import nn


def _mlp(d_in, hidden, d_out):
    """One-hidden-layer ReLU network ``d_in -> hidden -> d_out``."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


@torch.no_grad()
def _zero_output(mlp):
    """Set the output layer of an :func:`_mlp` to zero (the network then outputs 0)."""
    mlp[-1].weight.zero_()
    mlp[-1].bias.zero_()


class _LinearPlusMLP(nn.Module):
    """``Linear(x) + MLP(x)``; the MLP's output layer starts at zero (a linear model at init)."""

    def __init__(self, d_in, hidden, d_out):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.mlp = _mlp(d_in, hidden, d_out)
        self.reset_mlp_output()

    def reset_mlp_output(self):
        _zero_output(self.mlp)

    def forward(self, x):
        return self.linear(x) + self.mlp(x)


class _GaussianQ(nn.Module):
    """Diagonal Gaussian q(b|a): mean and log-variance are small networks of ``a``.

    ``mean(a) = Linear(a) + MLP(a)``; ``logvar(a) = c + logvar_range * tanh(MLP(a))`` (just
    ``c`` when ``logvar_range <= 0``), softly bounded to ``[-max_logvar, max_logvar]``. Both
    MLPs start with a zero output layer.
    """

    def __init__(self, d_a, d_b, hidden, logvar_range, max_logvar):
        super().__init__()
        self.mean = _LinearPlusMLP(d_a, hidden, d_b)
        self.logvar_bias = nn.Parameter(torch.zeros(d_b))
        self.logvar_mlp = _mlp(d_a, hidden, d_b)
        _zero_output(self.logvar_mlp)
        self.logvar_range = float(logvar_range)
        self.max_logvar = float(max_logvar)

    def forward(self, a):
        raw = self.logvar_bias
        if self.logvar_range > 0:
            raw = raw + self.logvar_range * torch.tanh(self.logvar_mlp(a))
        else:
            raw = raw.expand(a.shape[0], -1)
        m = self.max_logvar
        return self.mean(a), m * torch.tanh(raw / m)

    @torch.no_grad()
    def init_least_squares(self, a, b, weights=None, ridge_fraction=0.25):
        """Set the linear-Gaussian part to a (weighted) ridge fit of b on a.

        The ridge penalty (one for all outputs, intercept not penalized) is
        ``ridge_fraction`` times the one that generalized cross-validation selects, so that
        coefficients that carry only noise (b independent of a, or few rows for the dimension)
        shrink towards 0. The full GCV penalty is prediction-optimal, but it also shrinks
        real coefficients by a factor c, and CLUB's estimate by the same factor; a fraction of
        it keeps most of the first effect and little of the second. The variance is the
        residual variance corrected for the fit's effective degrees of freedom.
        """
        n = a.shape[0]
        dt = torch.float64  # small solves; double precision for the SVD
        a64, b64 = a.to(dt), b.to(dt)
        if weights is None:
            w = torch.full((n,), 1.0 / n, dtype=dt, device=a.device)
        else:
            w = weights.to(dt) / weights.sum()
        n_eff = 1.0 / float((w * w).sum())
        a_mean, b_mean = w @ a64, w @ b64
        sw = w.sqrt()[:, None]
        xc, yc = (a64 - a_mean) * sw, (b64 - b_mean) * sw
        u, sv, vt = torch.linalg.svd(xc, full_matrices=False)
        uty = u.T @ yc
        s2 = sv * sv
        base = float(s2.mean()) if s2.numel() else 1.0

        def ridge(lam):
            """Shrinkage factors, fitted values and residual degrees of freedom (a fraction)."""
            shrink = s2 / (s2 + lam) if lam > 0 else (s2 > 1e-12 * base).to(dt)
            fitted = u @ (shrink[:, None] * uty)
            return shrink, fitted, 1.0 - (float(shrink.sum()) + 1.0) / n_eff

        best = None
        for lam in [0.0] + [base * 10.0**k for k in torch.arange(-6.0, 3.01, 0.25).tolist()]:
            shrink, fitted, dof = ridge(lam)
            if dof <= 0:
                continue
            gcv = float(((yc - fitted) ** 2).sum()) / dof**2
            if best is None or gcv < best[0]:
                best = (gcv, lam, shrink, dof, fitted)
        if best is None:  # fewer rows than coefficients: no usable fit
            coef_w = torch.zeros(a.shape[1], b.shape[1], dtype=dt, device=a.device)
            dof, resid = 1.0, yc
        else:
            _, lam, shrink, dof, fitted = best
            if lam > 0 and ridge_fraction != 1.0:
                lam = lam * ridge_fraction
                shrink, fitted, dof = ridge(lam)
            inv = (
                torch.where(sv > 0, sv / (s2 + lam), torch.zeros_like(sv))
                if lam > 0
                else (torch.where(shrink > 0, 1.0 / sv.clamp_min(1e-300), torch.zeros_like(sv)))
            )
            coef_w = vt.T @ (inv[:, None] * uty)
            resid = yc - fitted
        self.mean.linear.weight.copy_(coef_w.T.to(a.dtype))
        self.mean.linear.bias.copy_((b_mean - a_mean @ coef_w).to(a.dtype))
        self.mean.reset_mlp_output()
        # Residual variance corrected for the degrees of freedom of the fit.
        resid_var = ((resid**2).sum(0) / dof).clamp_min(1e-8)
        m = self.max_logvar
        target = resid_var.log().clamp(-0.99 * m, 0.99 * m)
        self.logvar_bias.copy_((m * torch.atanh(target / m)).to(a.dtype))
        _zero_output(self.logvar_mlp)


class _SeparableCritic(nn.Module):
    """Critic ``T(a, b) = f(a) . g(b) + u(a) + v(b)``.

    ``[f(a), u(a)]`` is one small MLP of ``a`` with ``hidden + 1`` outputs, ``[g(b), v(b)]`` one
    of ``b``. A separable critic (Poole et al., ICML 2019) gives all ``n^2`` pair scores with one
    matrix product, O(n^2 hidden) instead of the O(n^2 hidden (d_a + d_b)) of a critic on the
    concatenation ``[a; b]``. Unless ``clip`` is None, the scores are softly bounded to
    ``[-clip, clip]`` by ``clip * tanh(T / clip)``.
    """

    def __init__(self, d_a, d_b, hidden, clip):
        super().__init__()
        self.f = _mlp(d_a, hidden, hidden + 1)
        self.g = _mlp(d_b, hidden, hidden + 1)
        self.clip = clip

    def pairs(self, a, b):
        """Matrix ``T[i, j] = T(a_i, b_j)``."""
        fa, ga = self.f(a), self.g(b)
        t = fa[:, :-1] @ ga[:, :-1].T + fa[:, -1:] + ga[:, -1][None, :]
        if self.clip is not None:
            t = self.clip * torch.tanh(t / self.clip)
        return t
