"""Dependence penalties: mutual-information bounds, kernel measures and IPMs.

Every penalty is a :class:`torch.nn.Module` with one interface for a dependence measure
``D(a, b)`` between a batch of representations ``a`` of shape ``(n, dim_a)`` and either a second
float batch ``b`` of shape ``(n, dim_b)`` or a vector of group labels ``b`` of shape ``(n,)``
(treatment arms: an integer or bool tensor, or a float tensor holding the integers ``0..K-1``):

- ``forward(a, b)`` returns a differentiable scalar estimate (in nats for the MI estimators);
  gradients reach ``a``, a float ``b`` and the critic's parameters;
- ``learning_loss(a, b)`` returns the loss that the penalty's own critic minimizes, or ``None``
  for the closed-form measures (HSIC, distance correlation, MMD, Wasserstein).

In model training the caller alternates: one step of the critic's optimizer on
``learning_loss(a.detach(), b.detach())``, then the model minimizes ``forward(a, b)``.
:func:`fit_critic` fits a critic against fixed samples.

Penalties are registered by name in :data:`PENALTIES`; :func:`get_penalty` builds one from a name,
a class or an instance.

===============  ============================  =====  =========================================
name             class                         bound  critic
===============  ============================  =====  =========================================
``club``         :class:`CLUB`                 upper  q(b|a): diagonal Gaussian, or categorical
``vclub_s``      :class:`VCLUBSample`          upper  as CLUB; one sampled negative per row
``l1out``        :class:`L1Out`                upper  as CLUB
``iwclub``       :class:`IWCLUB`               upper  as CLUB; per-sample weights
``mine``         :class:`MINE`                 lower  separable T(a, b) = f(a).g(b) + u(a) + v(b)
``nwj``          :class:`NWJ`                  lower  as MINE
``infonce``      :class:`InfoNCE`              lower  as MINE
``hsic``         :class:`HSIC`                 none   closed form (RBF kernels)
``dcor``         :class:`DistanceCorrelation`  none   closed form (squared, bias-corrected)
``mmd``          :class:`MMD`                  none   closed form, between label groups
``mmd_linear``   :class:`LinearMMD`            none   ``MMD(kernel="linear")``
``mmd_rbf``      :class:`RBFMMD`               none   ``MMD(kernel="rbf")``
``wasserstein``  :class:`Wasserstein`          none   Sinkhorn divergence, between label groups
===============  ============================  =====  =========================================

Group measures (MMD, Wasserstein) need a label vector ``b``; with K groups they average the
measure over all pairs of groups present in the batch. HSIC and distance correlation one-hot
encode labels; the CLUB family fits a categorical q(b|a) for labels; the MI lower bounds one-hot
encode them.

References
----------
Cheng, Hao, Dai, Liu, Gan, Carin. CLUB: A Contrastive Log-ratio Upper Bound of Mutual
Information. ICML 2020 (CLUB, vCLUB-S, L1Out; the reference code ``mi_estimators.py``).
Wang, Cheng, Henao. Toward Fairness in Text Generation via Mutual Information Minimization
based on Importance Sampling. AISTATS 2023 (importance-weighted CLUB).
Belghazi et al. MINE: Mutual Information Neural Estimation. ICML 2018.
Nguyen, Wainwright, Jordan. Estimating divergence functionals and the likelihood ratio by convex
risk minimization. IEEE Trans. Inf. Theory 2010 (NWJ).
van den Oord, Li, Vinyals. Representation Learning with Contrastive Predictive Coding. 2018
(InfoNCE).
Gretton et al. Measuring Statistical Dependence with Hilbert-Schmidt Norms. ALT 2005 (HSIC).
Szekely, Rizzo, Bakirov. Measuring and testing dependence by correlation of distances. Ann.
Statist. 2007 (distance correlation).
Gretton et al. A Kernel Two-Sample Test. JMLR 2012 (MMD).
Feydy et al. Interpolating between Optimal Transport and MMD using Sinkhorn Divergences.
AISTATS 2019 (debiased Sinkhorn divergence).
"""

from __future__ import annotations

import inspect
import itertools
import math
import numbers

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "CLUB",
    "HSIC",
    "IWCLUB",
    "L1Out",
    "MINE",
    "MMD",
    "NWJ",
    "PENALTIES",
    "DistanceCorrelation",
    "InfoNCE",
    "LinearMMD",
    "Penalty",
    "RBFMMD",
    "VCLUBSample",
    "Wasserstein",
    "fit_critic",
    "get_penalty",
]

_COMMON_PARAMS = """dim_a : int, optional
        Number of columns of ``a``. When the sizes of the inputs are given, a critic's parameters
        are built in ``__init__`` (so an optimizer can be built right after construction);
        otherwise they are built lazily on the first call, from the inputs. Inputs of other sizes
        raise a ValueError.
    dim_b : int, optional
        Number of columns of a float ``b`` (a continuous second variable). Give ``dim_b`` or
        ``n_classes``, not both.
    n_classes : int, optional
        Number of groups when ``b`` is a label vector (labels ``0..n_classes-1``). Inferred
        lazily as ``max(label) + 1`` on the first call when not given."""


def _doc(cls):
    """Insert the shared parameter paragraphs into a class docstring."""
    if cls.__doc__:
        cls.__doc__ = cls.__doc__.replace("%(common_params)s", _COMMON_PARAMS)
    return cls


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _as_tensor(x, name):
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(x)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{name} must be a torch.Tensor or an array-like of numbers; got {type(x).__name__}."
        ) from exc


def _check_a(a):
    a = _as_tensor(a, "a")
    if a.ndim != 2:
        raise ValueError(
            f"a must be a 2-D tensor of shape (n_samples, dim_a); got {a.ndim} dimension(s) "
            f"with shape {tuple(a.shape)}. Reshape a single feature with a.reshape(-1, 1)."
        )
    if not torch.is_floating_point(a):
        a = a.to(torch.get_default_dtype())
    if a.shape[0] < 2:
        raise ValueError(
            f"a dependence measure needs a batch of at least 2 samples; got {a.shape[0]}. "
            "Use a larger batch."
        )
    if not torch.isfinite(a).all():
        raise ValueError(
            "a contains NaN or infinite values; check the representation (e.g. a diverging "
            "network or a missing-value placeholder) before computing the penalty."
        )
    return a


def _check_weights(weights, n, ref):
    """Return per-sample weights as a 1-D tensor normalized to sum 1."""
    w = _as_tensor(weights, "weights")
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(
            f"weights must be a 1-D tensor with one weight per sample ({n}); got shape "
            f"{tuple(w.shape)}."
        )
    w = w.to(device=ref.device, dtype=ref.dtype)
    if not torch.isfinite(w).all():
        raise ValueError("weights contain NaN or infinite values; pass finite weights.")
    if (w < 0).any():
        raise ValueError("weights must be non-negative; got a negative weight.")
    total = w.sum()
    if total <= 0:
        raise ValueError("weights sum to 0; pass at least one positive weight.")
    return w / total


class _Inputs:
    """Validated inputs: ``a`` (n, d_a) float; ``b`` (n, d_b) float or ``labels`` (n,) long."""

    __slots__ = ("a", "b", "labels")

    def __init__(self, a, b, labels):
        self.a = a
        self.b = b
        self.labels = labels

    @property
    def is_labels(self):
        return self.labels is not None


def _validate(a, b):
    """Check ``a`` and ``b`` and split ``b`` into a float batch or a label vector."""
    a = _check_a(a)
    b = _as_tensor(b, "b")
    n = a.shape[0]
    if b.ndim not in (1, 2):
        raise ValueError(
            f"b must be a 2-D float tensor of shape (n_samples, dim_b) or a 1-D vector of group "
            f"labels of shape (n_samples,); got {b.ndim} dimension(s) with shape "
            f"{tuple(b.shape)}."
        )
    if b.shape[0] != n:
        raise ValueError(
            f"a and b must have the same number of samples (rows); got {n} and {b.shape[0]}. "
            "Pass matching batches."
        )
    if b.ndim == 2:
        if not torch.is_floating_point(b):
            b = b.to(a.dtype)
        if not torch.isfinite(b).all():
            raise ValueError(
                "b contains NaN or infinite values; pass finite values (impute or drop the "
                "rows first)."
            )
        if b.device != a.device:
            b = b.to(a.device)
        return _Inputs(a, b, None)
    # 1-D: group labels.
    if b.dtype == torch.bool:
        labels = b.long()
    elif torch.is_floating_point(b):
        if not torch.isfinite(b).all():
            raise ValueError(
                "b contains NaN or infinite values; a 1-D b must hold group labels 0..K-1."
            )
        if not torch.equal(b, torch.round(b)):
            raise ValueError(
                "a 1-D b is read as a vector of group labels 0..K-1, but it holds non-integer "
                "values. Pass a continuous variable as a 2-D tensor of shape (n_samples, 1), "
                "e.g. b.reshape(-1, 1)."
            )
        labels = b.long()
    elif b.is_complex():
        raise ValueError("b must be real-valued; got a complex tensor.")
    else:
        labels = b.long()
    if (labels < 0).any():
        raise ValueError(
            "group labels must be the integers 0..K-1; got a negative label. Encode the groups "
            "first (e.g. with sklearn.preprocessing.LabelEncoder)."
        )
    labels = labels.to(a.device)
    if torch.unique(labels).numel() < 2:
        raise ValueError(
            "the label vector b holds a single group; a dependence measure between a and group "
            "labels needs at least two groups in the batch. Use larger or stratified batches."
        )
    return _Inputs(a, None, labels)


# --------------------------------------------------------------------------------------------
# Kernels and distances
# --------------------------------------------------------------------------------------------


def _sq_dists(x, y=None):
    """Squared Euclidean distances between the rows of x and y (x with itself by default)."""
    y = x if y is None else y
    x2 = (x * x).sum(1, keepdim=True)
    y2 = (y * y).sum(1, keepdim=True)
    d2 = x2 + y2.T - 2.0 * (x @ y.T)
    return d2.clamp_min(0.0)


def _median_sq_dist(d2):
    """Median of the non-zero off-diagonal squared distances (detached); 1.0 if there is none."""
    with torch.no_grad():
        n = d2.shape[0]
        iu = torch.triu_indices(n, n, offset=1, device=d2.device)
        vals = d2[iu[0], iu[1]]
        vals = vals[vals > 0]
        if vals.numel() == 0:
            return torch.ones((), dtype=d2.dtype, device=d2.device)
        return vals.median()


def _rbf_gram(x, bandwidth=None):
    """RBF Gram matrix exp(-|x_i - x_j|^2 / (2 sigma^2)), sigma = median distance by default."""
    d2 = _sq_dists(x)
    if bandwidth is None:
        sigma2 = _median_sq_dist(d2)
    else:
        sigma2 = torch.as_tensor(float(bandwidth) ** 2, dtype=x.dtype, device=x.device)
    return torch.exp(-d2 / (2.0 * sigma2))


def _one_hot(labels, n_classes, dtype):
    return F.one_hot(labels, n_classes).to(dtype)


# --------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------


@_doc
class Penalty(nn.Module):
    """Base class of the dependence penalties.

    Subclasses set the class attributes ``bound`` (``"upper"``, ``"lower"`` or ``"none"``) and
    ``_critic`` (whether the measure has a trainable critic), and implement ``_forward`` (and
    ``_learning_loss`` and ``_build`` for critic-based measures). The public methods validate
    the inputs and call these private hooks.

    Parameters
    ----------
    %(common_params)s
    """

    bound = "none"
    _critic = False
    #: defaults of :func:`fit_critic` for this penalty's critic
    _fit_defaults = {"lr": 5e-3, "patience": 50}
    #: whether the measure accepts a float 2-D ``b`` (False: group-based, labels only)
    _accepts_continuous = True

    def __init__(self, dim_a=None, dim_b=None, n_classes=None):
        super().__init__()
        self.dim_a = dim_a
        self.dim_b = dim_b
        self.n_classes = n_classes
        for name, value in (("dim_a", dim_a), ("dim_b", dim_b), ("n_classes", n_classes)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1
            ):
                raise ValueError(f"{name} must be a positive int or None; got {value!r}.")
        if n_classes is not None and n_classes < 2:
            raise ValueError(f"n_classes must be at least 2; got {n_classes}.")
        if dim_b is not None and n_classes is not None:
            raise ValueError(
                "give dim_b (a continuous b) or n_classes (a label vector b), not both."
            )
        # Fitted state (scikit-learn style trailing underscore).
        self.dim_a_ = None if dim_a is None else int(dim_a)
        self.dim_b_ = None if dim_b is None else int(dim_b)
        self.n_classes_ = None if n_classes is None else int(n_classes)
        self.built_ = False

    # -- introspection --------------------------------------------------------------------

    @property
    def has_critic(self):
        """bool: whether the measure has a trainable critic (and a ``learning_loss``)."""
        return type(self)._critic

    @classmethod
    def _get_param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )

    def get_params(self, deep=False):
        """Constructor arguments of this penalty, as a dict (scikit-learn style)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())

    # -- public API -------------------------------------------------------------------------

    def forward(self, a, b):
        """Estimate the dependence between ``a`` and ``b``.

        Parameters
        ----------
        a : torch.Tensor of shape (n_samples, dim_a)
            A batch of representations.
        b : torch.Tensor of shape (n_samples, dim_b) or (n_samples,)
            A second float batch, or a vector of group labels ``0..K-1``.

        Returns
        -------
        torch.Tensor
            A differentiable scalar.
        """
        x = self._prepare(a, b)
        return self._forward(x)

    def learning_loss(self, a, b):
        """The critic's loss to minimize, or None for a closed-form measure.

        Parameters
        ----------
        a : torch.Tensor of shape (n_samples, dim_a)
            A batch of representations (detach it when fitting the critic alone).
        b : torch.Tensor of shape (n_samples, dim_b) or (n_samples,)
            A second float batch, or a vector of group labels.

        Returns
        -------
        torch.Tensor or None
        """
        x = self._prepare(a, b)
        if not self.has_critic:
            return None
        return self._learning_loss(x)

    def build(self, a, b):
        """Build the critic's parameters for inputs like ``(a, b)`` if not built yet.

        Returns
        -------
        self
        """
        self._prepare(a, b)
        return self

    # -- validation and lazy building -----------------------------------------------------

    def _prepare(self, a, b):
        x = _validate(a, b)
        if not self._accepts_continuous and not x.is_labels:
            raise ValueError(
                f"{type(self).__name__} compares the groups of a that a label vector b defines; "
                f"b must be a 1-D vector of group labels 0..K-1, got a 2-D float b of shape "
                f"{tuple(x.b.shape)}."
            )
        d_a = x.a.shape[1]
        if self.dim_a_ is not None and d_a != self.dim_a_:
            raise ValueError(
                f"a has {d_a} columns but this {type(self).__name__} was built for "
                f"dim_a={self.dim_a_}. Pass inputs of the built size or build a new penalty."
            )
        if x.is_labels:
            if self.dim_b_ is not None and self.has_critic:
                raise ValueError(
                    f"b is a label vector but this {type(self).__name__} was built for a "
                    f"continuous b with dim_b={self.dim_b_}; pass a 2-D float b or build a new "
                    "penalty with n_classes."
                )
            k = int(x.labels.max().item()) + 1
            if self.n_classes_ is not None and k > self.n_classes_:
                raise ValueError(
                    f"b holds label {k - 1} but this {type(self).__name__} was built for "
                    f"n_classes={self.n_classes_} (labels 0..{self.n_classes_ - 1}). Pass "
                    "n_classes=K (the number of groups) at construction."
                )
        else:
            if self.n_classes_ is not None and self.has_critic:
                raise ValueError(
                    f"b is a 2-D float tensor but this {type(self).__name__} was built for a "
                    f"label vector with n_classes={self.n_classes_}; pass a 1-D label vector or "
                    "build a new penalty with dim_b."
                )
            d_b = x.b.shape[1]
            if self.dim_b_ is not None and d_b != self.dim_b_:
                raise ValueError(
                    f"b has {d_b} columns but this {type(self).__name__} was built for "
                    f"dim_b={self.dim_b_}. Pass inputs of the built size or build a new penalty."
                )
        if not self.built_ and self.has_critic:
            self.dim_a_ = d_a
            if x.is_labels:
                if self.n_classes_ is None:
                    self.n_classes_ = max(int(x.labels.max().item()) + 1, 2)
            elif self.dim_b_ is None:
                self.dim_b_ = x.b.shape[1]
            self._build()
            self.to(device=x.a.device, dtype=x.a.dtype)
            self.built_ = True
        if self.has_critic:
            p = next(self.parameters(), None)
            if p is not None and (x.a.dtype != p.dtype):
                x.a = x.a.to(p.dtype)
                if x.b is not None:
                    x.b = x.b.to(p.dtype)
        return x

    def _maybe_build_now(self):
        """Build the critic in ``__init__`` when the sizes are known."""
        if not self.has_critic:
            return
        if self.dim_a is not None and (self.dim_b is not None or self.n_classes is not None):
            self._build()
            self.built_ = True

    # -- hooks ----------------------------------------------------------------------------

    def _build(self):  # pragma: no cover - overridden by critic-based penalties
        pass

    def _forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _learning_loss(self, x):  # pragma: no cover - overridden by critic-based penalties
        return None


def _mlp(d_in, hidden, d_out):
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


class _LinearPlusMLP(nn.Module):
    """``Linear(x) + MLP(x)``; the MLP's output layer starts at zero (a linear model at init)."""

    def __init__(self, d_in, hidden, d_out):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.mlp = _mlp(d_in, hidden, d_out)
        self.reset_mlp_output()

    def reset_mlp_output(self):
        with torch.no_grad():
            self.mlp[2].weight.zero_()
            self.mlp[2].bias.zero_()

    def forward(self, x):
        return self.linear(x) + self.mlp(x)


class _GaussianQ(nn.Module):
    """Diagonal Gaussian q(b|a): mean and log-variance are small networks of ``a``.

    ``mean(a) = Linear(a) + MLP(a)``; ``logvar(a) = c + logvar_range * tanh(MLP(a))``, softly
    bounded to ``[-max_logvar, max_logvar]``. Both MLPs start with a zero output layer.
    """

    def __init__(self, d_a, d_b, hidden, logvar_range, max_logvar):
        super().__init__()
        self.mean = _LinearPlusMLP(d_a, hidden, d_b)
        self.logvar_bias = nn.Parameter(torch.zeros(d_b))
        self.logvar_mlp = _mlp(d_a, hidden, d_b)
        with torch.no_grad():
            self.logvar_mlp[2].weight.zero_()
            self.logvar_mlp[2].bias.zero_()
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
        best = None
        for lam in [0.0] + [base * 10.0**k for k in torch.arange(-6.0, 3.01, 0.25).tolist()]:
            shrink = s2 / (s2 + lam) if lam > 0 else (s2 > 1e-12 * base).to(dt)
            fitted = u @ (shrink[:, None] * uty)
            rss = ((yc - fitted) ** 2).sum()
            dof = 1.0 - (float(shrink.sum()) + 1.0) / n_eff
            if dof <= 0:
                continue
            gcv = float(rss) / dof**2
            if best is None or gcv < best[0]:
                best = (gcv, lam, shrink, dof, fitted)
        if best is None:  # fewer rows than coefficients: no usable fit
            coef_w = torch.zeros(a.shape[1], b.shape[1], dtype=dt, device=a.device)
            dof, resid = 1.0, yc
        else:
            _, lam, shrink, dof, fitted = best
            if lam > 0 and ridge_fraction != 1.0:
                lam = lam * ridge_fraction
                shrink = s2 / (s2 + lam) if lam > 0 else (s2 > 1e-12 * base).to(dt)
                fitted = u @ (shrink[:, None] * uty)
                dof = 1.0 - (float(shrink.sum()) + 1.0) / n_eff
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
        self.logvar_mlp[2].weight.zero_()
        self.logvar_mlp[2].bias.zero_()


# --------------------------------------------------------------------------------------------
# CLUB family: variational q(b | a)
# --------------------------------------------------------------------------------------------


@_doc
class CLUB(Penalty):
    """Contrastive log-ratio upper bound (CLUB) of the mutual information I(a; b).

    ``forward`` returns ``E_p(a,b)[log q(b|a)] - E_p(a) E_p(b)[log q(b|a)]``, the average over
    all ``n^2`` pairs of the batch for the second term (computed in O(n) for a Gaussian q); it
    is an upper bound of I(a; b) when q is close to the true conditional p(b|a) (Cheng et al.,
    ICML 2020). ``learning_loss`` is ``-mean_i log q(b_i|a_i)``, the negative log-likelihood of
    the matched pairs (with all constants).

    For a float ``b``, q(b|a) is a diagonal Gaussian whose mean and log-variance are small
    networks of ``a``, as in the reference code: the mean is ``Linear(a) + MLP(a)`` and the
    log-variance ``c + logvar_range * tanh(MLP(a))`` (a learned per-coordinate constant plus a
    bounded heteroscedastic part; the reference bounds it with ``tanh`` too), softly bounded to
    ``[-max_logvar, max_logvar]``. The MLPs have one hidden layer of width ``hidden`` and start
    with a zero output layer, so q starts as a linear-Gaussian model (the exact family for
    jointly Gaussian data) that :func:`fit_critic` can initialize by least squares. For a label
    vector ``b``, q(b|a) is categorical: a softmax over ``n_classes`` logits
    ``Linear(a) + MLP(a)``. In the estimate, the Gaussian constants and the log-variance cancel
    between the two terms, as in the reference code.

    For jointly Gaussian ``(a, b)`` with per-coordinate correlation ``rho`` and a well-fitted q,
    the value is ``d rho^2 / (1 - rho^2)``, above the true ``-(d/2) log(1 - rho^2)``.

    Parameters
    ----------
    %(common_params)s
    hidden : int, default=64
        Width of the critic's hidden layers.
    logvar_range : float, default=1.0
        Range of the heteroscedastic part of the Gaussian log-variance; 0 makes q's variance a
        constant (homoscedastic), the least prone to overfit small samples.
    max_logvar : float, default=10.0
        Soft bound on the Gaussian log-variance (``max_logvar * tanh(raw / max_logvar)``).

    Attributes
    ----------
    dim_a_, dim_b_, n_classes_ : int or None
        Sizes the critic was built for.

    Examples
    --------
    >>> import torch
    >>> from causalmim.penalties import CLUB, fit_critic
    >>> g = torch.Generator().manual_seed(0)
    >>> a = torch.randn(512, 3, generator=g)
    >>> b = 0.8 * a + 0.6 * torch.randn(512, 3, generator=g)
    >>> club = CLUB(dim_a=3, dim_b=3)
    >>> losses = fit_critic(club, a, b)
    >>> 4.0 < club(a, b).item() < 6.5  # population value 3 * 0.64 / 0.36 = 5.33
    True
    """

    bound = "upper"
    _critic = True

    def __init__(
        self,
        dim_a=None,
        dim_b=None,
        n_classes=None,
        hidden=64,
        logvar_range=1.0,
        max_logvar=10.0,
    ):
        super().__init__(dim_a=dim_a, dim_b=dim_b, n_classes=n_classes)
        self.hidden = hidden
        self.logvar_range = logvar_range
        self.max_logvar = max_logvar
        self._maybe_build_now()

    # q(b | a) --------------------------------------------------------------------------

    def _build(self):
        if self.n_classes_ is not None:
            self.q = _LinearPlusMLP(self.dim_a_, self.hidden, self.n_classes_)
        else:
            self.q = _GaussianQ(
                self.dim_a_, self.dim_b_, self.hidden, self.logvar_range, self.max_logvar
            )

    def _mu_logvar(self, a):
        return self.q(a)

    def _init_critic(self, x, weights=None, ridge_fraction=0.25):
        """Initialize the Gaussian q by ridge least squares (used by :func:`fit_critic`)."""
        if isinstance(self.q, _GaussianQ):
            self.q.init_least_squares(x.a, x.b, weights, ridge_fraction)

    def _log_softmax(self, a):
        return F.log_softmax(self.q(a), dim=1)

    def _positive(self, x):
        """log q(b_i | a_i) up to the terms that cancel in the estimate, per sample."""
        if x.is_labels:
            return self._log_softmax(x.a).gather(1, x.labels[:, None])[:, 0]
        mu, logvar = self._mu_logvar(x.a)
        return (-((mu - x.b) ** 2) / (2.0 * logvar.exp())).sum(1)

    def _negative_all(self, x):
        """Mean over j of log q(b_j | a_i) (same dropped terms), per sample i, in O(n)."""
        if x.is_labels:
            logp = self._log_softmax(x.a)
            freq = torch.bincount(x.labels, minlength=logp.shape[1]).to(logp.dtype)
            freq = freq / freq.sum()
            return logp @ freq
        mu, logvar = self._mu_logvar(x.a)
        b = x.b
        # mean_j (b_j - mu_i)^2 = mean(b^2) - 2 mu_i mean(b) + mu_i^2, per coordinate.
        sq = (b * b).mean(0) - 2.0 * mu * b.mean(0) + mu * mu
        return (-sq / (2.0 * logvar.exp())).sum(1)

    def _log_likelihood(self, x):
        """Full log q(b_i | a_i), per sample."""
        if x.is_labels:
            return self._log_softmax(x.a).gather(1, x.labels[:, None])[:, 0]
        mu, logvar = self._mu_logvar(x.a)
        ll = -0.5 * (((mu - x.b) ** 2) / logvar.exp() + logvar + math.log(2.0 * math.pi))
        return ll.sum(1)

    # estimate ---------------------------------------------------------------------------

    def _forward(self, x):
        return (self._positive(x) - self._negative_all(x)).mean()

    def _learning_loss(self, x):
        return -self._log_likelihood(x).mean()


@_doc
class VCLUBSample(CLUB):
    """Sampled CLUB (vCLUB-S): CLUB with one random negative per sample, O(n).

    ``forward`` returns ``mean_i [log q(b_i|a_i) - log q(b_k'_i|a_i)]`` with ``k'`` a random
    permutation of the batch drawn from torch's global random generator (control it with
    ``torch.manual_seed`` inside ``torch.random.fork_rng``). It is an unbiased but noisy estimate
    of :class:`CLUB`'s value. The critic and its ``learning_loss`` are those of :class:`CLUB`.

    Parameters
    ----------
    %(common_params)s
    hidden : int, default=64
        Width of the critic's hidden layers.
    logvar_range : float, default=1.0
        Range of the heteroscedastic part of the Gaussian log-variance (see :class:`CLUB`).
    max_logvar : float, default=10.0
        Soft bound on the Gaussian log-variance.
    """

    def _forward(self, x):
        n = x.a.shape[0]
        perm = torch.randperm(n, device=x.a.device)
        if x.is_labels:
            logp = self._log_softmax(x.a)
            pos = logp.gather(1, x.labels[:, None])[:, 0]
            neg = logp.gather(1, x.labels[perm][:, None])[:, 0]
            return (pos - neg).mean()
        mu, logvar = self._mu_logvar(x.a)
        inv = 1.0 / (2.0 * logvar.exp())
        pos = (-((mu - x.b) ** 2) * inv).sum(1)
        neg = (-((mu - x.b[perm]) ** 2) * inv).sum(1)
        return (pos - neg).mean()


@_doc
class L1Out(CLUB):
    """Leave-one-out variational upper bound (L1Out) of the mutual information.

    ``forward`` returns
    ``mean_i [log q(b_i|a_i) - log (1/(n-1)) sum_{j != i} q(b_i|a_j)]`` (computed in O(n^2)),
    with the same variational q(b|a) and ``learning_loss`` as :class:`CLUB` (Cheng et al.,
    ICML 2020, after Poole et al., ICML 2019).

    Parameters
    ----------
    %(common_params)s
    hidden : int, default=64
        Width of the critic's hidden layers.
    logvar_range : float, default=1.0
        Range of the heteroscedastic part of the Gaussian log-variance (see :class:`CLUB`).
    max_logvar : float, default=10.0
        Soft bound on the Gaussian log-variance.
    """

    def _pair_loglik(self, x):
        """Matrix M[i, j] = log q(b_i | a_j) (full, with constants)."""
        if x.is_labels:
            logp = self._log_softmax(x.a)  # (n, K): logp[j, k] = log q(k | a_j)
            return logp[:, x.labels].T
        mu, logvar = self._mu_logvar(x.a)
        inv = torch.exp(-logvar)  # (n, d)
        b = x.b
        # sum_d (b_i - mu_j)^2 / var_j = b^2 @ inv^T - 2 b @ (mu inv)^T + sum_d mu_j^2 inv_j
        quad = (b * b) @ inv.T - 2.0 * b @ (mu * inv).T + (mu * mu * inv).sum(1)[None, :]
        const = logvar.sum(1)[None, :] + b.shape[1] * math.log(2.0 * math.pi)
        return -0.5 * (quad + const)

    def _forward(self, x):
        m = self._pair_loglik(x)
        n = m.shape[0]
        pos = torch.diagonal(m)
        eye = torch.eye(n, dtype=torch.bool, device=m.device)
        neg = torch.logsumexp(m.masked_fill(eye, float("-inf")), dim=1) - math.log(n - 1)
        return (pos - neg).mean()


@_doc
class IWCLUB(CLUB):
    """Importance-weighted CLUB (Wang, Cheng, Henao, AISTATS 2023).

    With per-sample weights ``w_i`` (normalized here to sum to 1), ``forward`` returns
    ``sum_i w_i [log q(b_i|a_i) - (1/n) sum_j log q(b_j|a_i)]`` and ``learning_loss`` returns
    ``-sum_i w_i log q(b_i|a_i)``: the CLUB estimate and q's fit under the target distribution
    that the weights define (e.g. a reweighted population). Without weights it equals
    :class:`CLUB`.

    Parameters
    ----------
    %(common_params)s
    hidden : int, default=64
        Width of the critic's hidden layers.
    logvar_range : float, default=1.0
        Range of the heteroscedastic part of the Gaussian log-variance (see :class:`CLUB`).
    max_logvar : float, default=10.0
        Soft bound on the Gaussian log-variance.
    """

    def forward(self, a, b, weights=None):
        """Weighted CLUB estimate.

        Parameters
        ----------
        a : torch.Tensor of shape (n_samples, dim_a)
        b : torch.Tensor of shape (n_samples, dim_b) or (n_samples,)
        weights : torch.Tensor of shape (n_samples,), optional
            Non-negative per-sample weights; normalized to sum 1. None means uniform.

        Returns
        -------
        torch.Tensor
            A differentiable scalar.
        """
        x = self._prepare(a, b)
        terms = self._positive(x) - self._negative_all(x)
        if weights is None:
            return terms.mean()
        w = _check_weights(weights, terms.shape[0], terms)
        return (w * terms).sum()

    def learning_loss(self, a, b, weights=None):
        """Weighted negative log-likelihood of q on the matched pairs.

        Parameters
        ----------
        a : torch.Tensor of shape (n_samples, dim_a)
        b : torch.Tensor of shape (n_samples, dim_b) or (n_samples,)
        weights : torch.Tensor of shape (n_samples,), optional
            Non-negative per-sample weights; normalized to sum 1. None means uniform.

        Returns
        -------
        torch.Tensor
        """
        x = self._prepare(a, b)
        ll = self._log_likelihood(x)
        if weights is None:
            return -ll.mean()
        w = _check_weights(weights, ll.shape[0], ll)
        return -(w * ll).sum()


# --------------------------------------------------------------------------------------------
# Lower bounds: critic T(a, b) on the concatenation
# --------------------------------------------------------------------------------------------


class _SeparableCritic(nn.Module):
    """Critic ``T(a, b) = f(a) . g(b) + u(a) + v(b)`` with f, u and g, v small MLPs.

    A separable critic (Poole et al., ICML 2019) gives all ``n^2`` pair scores with one matrix
    product, O(n^2 hidden) instead of the O(n^2 hidden (d_a + d_b)) of a critic on the
    concatenation ``[a; b]``.
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


class _LowerBound(Penalty):
    """Shared code of the MI lower bounds (a separable critic T(a, b))."""

    bound = "lower"
    _critic = True
    _fit_defaults = {"lr": 1e-3, "patience": 100}

    def __init__(self, dim_a=None, dim_b=None, n_classes=None, hidden=64, clip=10.0):
        super().__init__(dim_a=dim_a, dim_b=dim_b, n_classes=n_classes)
        self.hidden = hidden
        self.clip = clip
        self._maybe_build_now()

    def _build(self):
        d_b = self.n_classes_ if self.n_classes_ is not None else self.dim_b_
        self.critic = _SeparableCritic(self.dim_a_, d_b, self.hidden, self.clip)

    def _b(self, x):
        if x.is_labels:
            return _one_hot(x.labels, self.n_classes_, x.a.dtype)
        return x.b

    def _forward(self, x):
        return self._estimate(self.critic.pairs(x.a, self._b(x)))

    def _learning_loss(self, x):
        return -self._forward(x)

    @staticmethod
    def _offdiag(t):
        n = t.shape[0]
        return t[~torch.eye(n, dtype=torch.bool, device=t.device)]


_LB_NOTE = """The critic is separable, ``T(a, b) = f(a) . g(b) + u(a) + v(b)`` with one-hidden-layer
    MLPs (Poole et al., ICML 2019), so all pairs of a batch cost one matrix product; the
    product-of-marginals term uses the ``n(n-1)`` off-diagonal pairs. Labels (a 1-D ``b``) are
    one-hot encoded over ``n_classes``. ``learning_loss`` is minus the estimate (the critic
    maximizes the bound). A lower bound: use it to monitor, not as a minimization penalty on its
    own."""


@_doc
class MINE(_LowerBound):
    """MINE: the Donsker-Varadhan lower bound of the mutual information (Belghazi et al., 2018).

    ``forward`` returns ``E_p(a,b)[T] - log E_p(a)p(b)[exp T]``.

    %(lb_note)s

    Parameters
    ----------
    %(common_params)s
    hidden : int, default=64
        Width of the critic's hidden layer.
    """

    def _estimate(self, t):
        joint = torch.diagonal(t).mean()
        marg = self._offdiag(t)
        return joint - (torch.logsumexp(marg, 0) - math.log(marg.numel()))


@_doc
class NWJ(_LowerBound):
    """NWJ (f-divergence / MINE-f) lower bound of the mutual information (Nguyen et al., 2010).

    ``forward`` returns ``E_p(a,b)[T] - E_p(a)p(b)[exp(T - 1)]``.

    %(lb_note)s

    Parameters
    ----------
    %(common_params)s
    hidden : int, default=64
        Width of the critic's hidden layer.
    """

    def _estimate(self, t):
        joint = torch.diagonal(t).mean()
        return joint - torch.exp(self._offdiag(t) - 1.0).mean()


@_doc
class InfoNCE(_LowerBound):
    """InfoNCE lower bound of the mutual information (van den Oord et al., 2018).

    ``forward`` returns ``mean_i [T(a_i, b_i) - log (1/n) sum_j exp T(a_i, b_j)]`` over all
    ``n^2`` pairs; it cannot exceed ``log n``. ``learning_loss`` is minus the same quantity.
    %(lb_note)s

    Parameters
    ----------
    %(common_params)s
    hidden : int, default=64
        Width of the critic's hidden layer.
    """

    def _estimate(self, t):
        n = t.shape[0]
        return (torch.diagonal(t) - torch.logsumexp(t, dim=1)).mean() + math.log(n)


for _cls in (MINE, NWJ, InfoNCE):
    _cls.__doc__ = _cls.__doc__.replace("%(lb_note)s", _LB_NOTE)


# --------------------------------------------------------------------------------------------
# Closed-form dependence measures
# --------------------------------------------------------------------------------------------


def _b_features(x, n_classes):
    if x.is_labels:
        k = max(int(x.labels.max().item()) + 1, n_classes or 0)
        return _one_hot(x.labels, k, x.a.dtype)
    return x.b


@_doc
class HSIC(Penalty):
    """Hilbert-Schmidt independence criterion with RBF kernels.

    The default is the biased (V-statistic) estimator of Gretton et al. (2005),
    ``HSIC_b = tr(K H L H) / (n - 1)^2`` with ``H`` the centering matrix; it is non-negative,
    with a small positive bias (order ``1/n``) on independent samples. ``unbiased=True`` gives
    the unbiased estimator of Song et al. (JMLR 2012), centred at 0 on independent samples (it can
    be slightly negative; needs ``n >= 4``).

    Both kernels are ``exp(-|x - x'|^2 / (2 sigma^2))``; by default ``sigma`` is the median
    heuristic, the median of the non-zero pairwise distances of the batch, computed without
    gradient. A label vector ``b`` is one-hot encoded first.

    Parameters
    ----------
    %(common_params)s
    bandwidth : float, optional
        Fixed kernel bandwidth ``sigma`` for both variables; None uses the median heuristic.
    unbiased : bool, default=False
        Use the unbiased estimator.
    """

    def __init__(self, dim_a=None, dim_b=None, n_classes=None, bandwidth=None, unbiased=False):
        super().__init__(dim_a=dim_a, dim_b=dim_b, n_classes=n_classes)
        self.bandwidth = bandwidth
        self.unbiased = unbiased

    def _forward(self, x):
        k = _rbf_gram(x.a, self.bandwidth)
        l_ = _rbf_gram(_b_features(x, self.n_classes), self.bandwidth)
        n = k.shape[0]
        if not self.unbiased:
            kc = k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()
            return (kc * l_).sum() / (n - 1) ** 2
        if n < 4:
            raise ValueError(f"the unbiased HSIC needs at least 4 samples; got {n}.")
        eye = torch.eye(n, dtype=torch.bool, device=k.device)
        kt = k.masked_fill(eye, 0.0)
        lt = l_.masked_fill(eye, 0.0)
        term1 = (kt * lt).sum()
        term2 = kt.sum() * lt.sum() / ((n - 1) * (n - 2))
        term3 = 2.0 * (kt.sum(0) * lt.sum(0)).sum() / (n - 2)
        return (term1 + term2 - term3) / (n * (n - 3))


@_doc
class DistanceCorrelation(Penalty):
    """Squared distance correlation of Szekely, Rizzo and Bakirov (2007).

    ``forward`` returns the squared distance correlation ``dCor^2(a, b)``, 0 in the population
    iff ``a`` and ``b`` are independent (with finite first moments), computed from the
    Euclidean distance matrices of the batch. By default it is the bias-corrected estimator of
    Szekely and Rizzo (J. Multivariate Anal. 2013; Ann. Statist. 2014), built on U-centred
    distance matrices: nearly unbiased, so near 0 on independent samples even in high
    dimension, and slightly negative at times (needs ``n >= 4``). ``bias_corrected=False``
    gives the classic V-statistic (double-centred matrices), in [0, 1] but with a positive bias
    that grows with the dimension (about 0.13 for two independent 20-dimensional samples of
    512). A label vector ``b`` is one-hot encoded first.

    Parameters
    ----------
    %(common_params)s
    bias_corrected : bool, default=True
        Use the bias-corrected (U-centred) estimator.
    eps : float, default=1e-9
        Floor on squared distances and variances (keeps gradients and ratios finite).
    """

    def __init__(self, dim_a=None, dim_b=None, n_classes=None, bias_corrected=True, eps=1e-9):
        super().__init__(dim_a=dim_a, dim_b=dim_b, n_classes=n_classes)
        self.bias_corrected = bias_corrected
        self.eps = eps

    def _centred(self, x):
        d = torch.sqrt(_sq_dists(x).clamp_min(self.eps))
        n = d.shape[0]
        eye = torch.eye(n, dtype=torch.bool, device=d.device)
        d = d.masked_fill(eye, 0.0)
        if not self.bias_corrected:
            return d - d.mean(0, keepdim=True) - d.mean(1, keepdim=True) + d.mean()
        u = (
            d
            - d.sum(0, keepdim=True) / (n - 2)
            - d.sum(1, keepdim=True) / (n - 2)
            + d.sum() / ((n - 1) * (n - 2))
        )
        return u.masked_fill(eye, 0.0)

    def _forward(self, x):
        n = x.a.shape[0]
        if self.bias_corrected and n < 4:
            raise ValueError(
                f"the bias-corrected distance correlation needs at least 4 samples; got {n}. "
                "Use a larger batch or bias_corrected=False."
            )
        aa = self._centred(x.a)
        bb = self._centred(_b_features(x, self.n_classes))
        # Inner products (the U-statistic's 1/(n(n-3)) factor cancels in the ratio).
        cov = (aa * bb).sum()
        var = (aa * aa).sum() * (bb * bb).sum()
        if var <= self.eps:
            return x.a.sum() * 0.0
        return cov / torch.sqrt(var)


def _group_index(labels):
    """The groups present in the batch, as a list of index tensors (sorted by label)."""
    groups = torch.unique(labels)
    return [torch.nonzero(labels == g, as_tuple=True)[0] for g in groups]


_GROUPS_NOTE = """``b`` must be a label vector (2 or K groups). With K groups, the measure is the
    average over all ``K(K-1)/2`` pairs of groups present in the batch (groups absent from the
    batch are skipped)."""


@_doc
class MMD(Penalty):
    """Squared maximum mean discrepancy between the groups of ``a`` that labels ``b`` define.

    For two groups, ``forward`` returns ``MMD^2(a | b=0, a | b=1)``, an integral probability
    metric (the distribution of ``a`` differs across groups iff ``a`` depends on ``b``).

    %(groups_note)s

    ``kernel="linear"`` gives ``|mean(a | b=k) - mean(a | b=l)|^2`` (the biased estimator of the
    linear-kernel MMD^2). ``kernel="rbf"`` uses ``exp(-|x - x'|^2 / (2 sigma^2))`` with ``sigma``
    the median pairwise distance of the whole batch (computed without gradient) unless
    ``bandwidth`` is given. The default estimator is the biased V-statistic (non-negative; small
    positive bias on identical groups); ``unbiased=True`` drops the within-group diagonal terms
    (the U-statistic of Gretton et al. 2012; needs 2 samples per group).

    Parameters
    ----------
    %(common_params)s
    kernel : {"rbf", "linear"}, default="rbf"
        The kernel.
    bandwidth : float, optional
        Fixed RBF bandwidth ``sigma``; None uses the median heuristic.
    unbiased : bool, default=False
        Use the unbiased estimator.
    """

    _accepts_continuous = False

    def __init__(
        self, dim_a=None, dim_b=None, n_classes=None, kernel="rbf", bandwidth=None, unbiased=False
    ):
        super().__init__(dim_a=dim_a, dim_b=dim_b, n_classes=n_classes)
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.unbiased = unbiased
        if kernel not in ("rbf", "linear"):
            raise ValueError(f"kernel must be 'rbf' or 'linear'; got {kernel!r}.")

    def _forward(self, x):
        a = x.a
        groups = _group_index(x.labels)
        if self.kernel == "linear" and not self.unbiased:
            means = torch.stack([a[idx].mean(0) for idx in groups])
            d2 = _sq_dists(means)
            vals = [d2[k, m] for k, m in itertools.combinations(range(len(groups)), 2)]
            return torch.stack(vals).mean()
        if self.kernel == "linear":
            gram = a @ a.T
        else:
            gram = _rbf_gram(a, self.bandwidth)
        if self.unbiased and min(idx.numel() for idx in groups) < 2:
            raise ValueError(
                "the unbiased MMD needs at least 2 samples in every group of the batch; use "
                "larger or stratified batches, or unbiased=False."
            )
        n_g = len(groups)
        within = []
        for idx in groups:
            blk = gram[idx][:, idx]
            m = idx.numel()
            if self.unbiased:
                within.append((blk.sum() - torch.diagonal(blk).sum()) / (m * (m - 1)))
            else:
                within.append(blk.mean())
        vals = []
        for k, m in itertools.combinations(range(n_g), 2):
            cross = gram[groups[k]][:, groups[m]].mean()
            vals.append(within[k] + within[m] - 2.0 * cross)
        return torch.stack(vals).mean()


class LinearMMD(MMD):
    """Linear-kernel MMD: ``MMD(kernel="linear")`` (see :class:`MMD`)."""

    def __init__(self, dim_a=None, dim_b=None, n_classes=None, unbiased=False):
        super().__init__(
            dim_a=dim_a, dim_b=dim_b, n_classes=n_classes, kernel="linear", unbiased=unbiased
        )


class RBFMMD(MMD):
    """RBF-kernel MMD with the median heuristic: ``MMD(kernel="rbf")`` (see :class:`MMD`)."""

    def __init__(self, dim_a=None, dim_b=None, n_classes=None, bandwidth=None, unbiased=False):
        super().__init__(
            dim_a=dim_a,
            dim_b=dim_b,
            n_classes=n_classes,
            kernel="rbf",
            bandwidth=bandwidth,
            unbiased=unbiased,
        )


def _sinkhorn_cost(x, y, p):
    d2 = _sq_dists(x, y)
    if p == 2:
        return d2
    return torch.sqrt(d2.clamp_min(1e-12))


def _entropic_ot(c, eps, n_iter, tol):
    """Entropic OT value between uniform measures, by log-domain Sinkhorn with eps-scaling.

    The iterations run without gradient (stopping early once the potentials move by less than
    ``tol * eps``); one last update of the potentials with gradient gives a value whose gradient
    with respect to the cost is the transport plan (the envelope theorem), as in geomloss.
    """
    n, m = c.shape
    log_a = torch.full((n,), -math.log(n), dtype=c.dtype, device=c.device)
    log_b = torch.full((m,), -math.log(m), dtype=c.dtype, device=c.device)
    with torch.no_grad():
        cd = c.detach()
        # eps-scaling: start at the cost's scale and halve eps down to the target.
        e0 = max(float(cd.max()), float(eps))
        n_anneal = max(int(math.ceil(math.log(e0 / eps) / math.log(2.0))), 0)
        f = torch.zeros(n, dtype=c.dtype, device=c.device)
        g = torch.zeros(m, dtype=c.dtype, device=c.device)
        for k in range(n_anneal + max(int(n_iter), 1)):
            e = e0 / 2.0**k if k < n_anneal else eps
            f_next = -e * torch.logsumexp(log_b[None, :] + (g[None, :] - cd) / e, dim=1)
            g_next = -e * torch.logsumexp(log_a[:, None] + (f_next[:, None] - cd) / e, dim=0)
            moved = max(float((f_next - f).abs().max()), float((g_next - g).abs().max()))
            f, g = f_next, g_next
            if k >= n_anneal and moved < tol * eps:
                break
    f_new = -eps * torch.logsumexp(log_b[None, :] + (g[None, :] - c) / eps, dim=1)
    g_new = -eps * torch.logsumexp(log_a[:, None] + (f[:, None] - c) / eps, dim=0)
    # <a, f> + <b, g> at the fixed point; each half carries half of the plan's gradient.
    return 0.5 * (f_new.mean() + g.mean()) + 0.5 * (f.mean() + g_new.mean())


@_doc
class Wasserstein(Penalty):
    """Entropic Wasserstein distance (Sinkhorn) between the groups of ``a`` that labels define.

    For two groups, ``forward`` returns the entropy-regularized optimal-transport cost
    ``OT_eps(a | b=0, a | b=1)`` with the cost ``|x - y|^p``, solved by log-domain Sinkhorn
    iterations (with eps-scaling). With ``debias=True`` (default) it returns the Sinkhorn
    divergence ``OT_eps(x, y) - (OT_eps(x, x) + OT_eps(y, y)) / 2`` (Feydy et al., 2019), which is
    non-negative and near 0 for identical groups (the raw entropic cost is not, and in high
    dimension even the exact OT between two samples of one distribution is far from 0). The
    entropic regularization is ``epsilon`` times the mean pairwise cost of the batch (computed
    without gradient), so the measure scales as ``scale^p`` with the scale of ``a``. With
    ``p=2``, small ``epsilon`` approaches the squared 2-Wasserstein distance and large
    ``epsilon`` the squared distance between the group means (the linear MMD); the default
    ``epsilon=0.5`` sits in between and stays near 0 for identical groups up to
    ``dim_a`` = 20 with 256 samples per group, where a smaller ``epsilon`` does not.

    %(groups_note)s

    Parameters
    ----------
    %(common_params)s
    epsilon : float, default=0.5
        Entropic regularization, relative to the mean pairwise cost of the batch.
    n_iter : int, default=100
        Maximum number of Sinkhorn iterations at the target epsilon (after the eps-scaling
        ones).
    p : {1, 2}, default=2
        Exponent of the ground cost ``|x - y|^p``.
    debias : bool, default=True
        Return the Sinkhorn divergence instead of the raw entropic OT cost.
    tol : float, default=1e-4
        Stop the iterations once the dual potentials move by less than ``tol * eps``.
    """

    _accepts_continuous = False

    def __init__(
        self,
        dim_a=None,
        dim_b=None,
        n_classes=None,
        epsilon=0.5,
        n_iter=100,
        p=2,
        debias=True,
        tol=1e-4,
    ):
        super().__init__(dim_a=dim_a, dim_b=dim_b, n_classes=n_classes)
        self.epsilon = epsilon
        self.n_iter = n_iter
        self.tol = tol
        self.p = p
        self.debias = debias
        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2; got {p!r}.")
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive; got {epsilon!r}.")

    def _forward(self, x):
        a = x.a
        groups = _group_index(x.labels)
        with torch.no_grad():
            scale = _sinkhorn_cost(a, a, self.p).mean().clamp_min(1e-12)
        eps = float(self.epsilon * scale)
        vals = []
        for k, m in itertools.combinations(range(len(groups)), 2):
            xk, xl = a[groups[k]], a[groups[m]]
            ot = _entropic_ot(_sinkhorn_cost(xk, xl, self.p), eps, self.n_iter, self.tol)
            if self.debias:
                ot_k = _entropic_ot(_sinkhorn_cost(xk, xk, self.p), eps, self.n_iter, self.tol)
                ot_l = _entropic_ot(_sinkhorn_cost(xl, xl, self.p), eps, self.n_iter, self.tol)
                ot = ot - 0.5 * (ot_k + ot_l)
            vals.append(ot)
        return torch.stack(vals).mean()


for _cls in (MMD, Wasserstein):
    _cls.__doc__ = _cls.__doc__.replace("%(groups_note)s", _GROUPS_NOTE)


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

#: Registry of the penalties by name.
PENALTIES = {
    "club": CLUB,
    "vclub_s": VCLUBSample,
    "l1out": L1Out,
    "iwclub": IWCLUB,
    "mine": MINE,
    "nwj": NWJ,
    "infonce": InfoNCE,
    "hsic": HSIC,
    "dcor": DistanceCorrelation,
    "mmd": MMD,
    "mmd_linear": LinearMMD,
    "mmd_rbf": RBFMMD,
    "wasserstein": Wasserstein,
}


def get_penalty(name_or_instance, **params):
    """Build a penalty from a registry name, a class or an instance.

    Parameters
    ----------
    name_or_instance : str, Penalty subclass or Penalty
        A name in :data:`PENALTIES` (case-insensitive), a :class:`Penalty` subclass, or an
        instance, which is returned as is.
    **params
        Constructor arguments (e.g. ``dim_a``, ``dim_b``, ``hidden``). Not allowed with an
        instance.

    Returns
    -------
    Penalty

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones), or for params given with an
        instance.
    TypeError
        For anything that is not a name, a Penalty subclass or an instance.

    Examples
    --------
    >>> import torch
    >>> from causalmim.penalties import get_penalty
    >>> mmd = get_penalty("mmd", kernel="linear")
    >>> a = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    >>> t = torch.tensor([0, 0, 1, 1])
    >>> round(mmd(a, t).item(), 4)
    4.0
    >>> club = get_penalty("club", dim_a=3, dim_b=2, hidden=16)
    >>> club.bound, club.has_critic, sum(p.numel() for p in club.parameters()) > 0
    ('upper', True, True)
    >>> get_penalty(club) is club
    True
    >>> get_penalty("nope")
    Traceback (most recent call last):
    ...
    ValueError: unknown penalty 'nope'; valid names are: club, dcor, hsic, infonce, iwclub, \
l1out, mine, mmd, mmd_linear, mmd_rbf, nwj, vclub_s, wasserstein.
    """
    if isinstance(name_or_instance, Penalty):
        if params:
            raise ValueError(
                f"got a {type(name_or_instance).__name__} instance together with parameters "
                f"{sorted(params)}; set them on the instance, or pass a name or a class."
            )
        return name_or_instance
    if isinstance(name_or_instance, type) and issubclass(name_or_instance, Penalty):
        return name_or_instance(**params)
    if isinstance(name_or_instance, str):
        key = name_or_instance.lower()
        if key not in PENALTIES:
            raise ValueError(
                f"unknown penalty {name_or_instance!r}; valid names are: "
                f"{', '.join(sorted(PENALTIES))}."
            )
        return PENALTIES[key](**params)
    raise TypeError(
        "a penalty must be a name in PENALTIES, a Penalty subclass or a Penalty instance; got "
        f"{type(name_or_instance).__name__}."
    )


# --------------------------------------------------------------------------------------------
# Fitting a critic against fixed samples
# --------------------------------------------------------------------------------------------


def _n_groups_ok(b):
    return b.ndim != 1 or torch.unique(b).numel() >= 2


def fit_critic(
    penalty,
    a,
    b,
    n_steps=2000,
    lr=None,
    batch_size=None,
    weights=None,
    *,
    validation_fraction=0.2,
    patience=None,
    min_delta=3e-3,
    init_least_squares=True,
    ridge_fraction=0.25,
):
    """Fit a penalty's critic against fixed samples with Adam.

    Minimizes ``penalty.learning_loss`` on ``(a, b)`` (detached), full batch or on random
    minibatches. A critic fitted for long on a fixed sample overfits it (a flexible q shrinks
    its variance and inflates CLUB, a lower-bound critic inflates MINE), so by default a random
    ``validation_fraction`` of the rows is held out: the critic's validation loss (the
    ``learning_loss``, or minus the estimate for the MI lower bounds) is tracked at every step,
    training stops after ``patience`` steps without improvement, and the best state is
    restored. For the Gaussian q of the CLUB family, the linear-Gaussian part is first set to
    a ridge least-squares fit of ``b`` on the training rows (``init_least_squares``), so that
    the gradient steps only have to learn what is not linear. For a closed-form measure this is
    a no-op that returns ``[]``.

    All randomness (the split, minibatches, sampled negatives) comes from torch's global random
    generator.

    Parameters
    ----------
    penalty : Penalty
        The penalty whose critic is fitted (built from the data if it is not built yet).
    a : torch.Tensor of shape (n_samples, dim_a)
    b : torch.Tensor of shape (n_samples, dim_b) or (n_samples,)
    n_steps : int, default=2000
        Maximum number of optimizer steps.
    lr : float, optional
        Adam's learning rate; None uses the penalty's default (5e-3 for the CLUB family, 1e-3
        for the MI lower bounds).
    batch_size : int, optional
        Minibatch size; None uses all the training rows at every step.
    weights : torch.Tensor of shape (n_samples,), optional
        Per-sample weights, only for penalties whose ``learning_loss`` takes ``weights``
        (:class:`IWCLUB`).
    validation_fraction : float, default=0.2
        Fraction of the rows held out for early stopping; 0 trains on all rows for ``n_steps``.
    patience : int, optional
        Steps without improvement of the validation loss before stopping; None uses the
        penalty's default (50 for the CLUB family, 100 for the MI lower bounds).
    min_delta : float, default=3e-3
        Smallest decrease of the validation loss, relative to ``max(|best|, 1)``, that counts
        as an improvement (a guard against selecting a state that fits the validation rows by
        chance).
    init_least_squares : bool, default=True
        Initialize a Gaussian q's linear part by ridge least squares (CLUB family only); this
        resets the critic. Pass False to continue from the current critic.
    ridge_fraction : float, default=0.25
        The initialization's ridge penalty, as a fraction of the one chosen by generalized
        cross-validation (0: ordinary least squares). The GCV penalty shrinks coefficients that
        carry only noise to 0 (so CLUB stays near 0 on independent samples even for large
        ``dim_a``), but also real ones, which biases CLUB down by the same factor; a quarter
        of it keeps that bias to a few percent.

    Returns
    -------
    list of float
        The critic's training loss at every step.
    """
    if not isinstance(penalty, Penalty):
        raise TypeError(f"penalty must be a Penalty; got {type(penalty).__name__}.")
    if not penalty.has_critic:
        return []
    lr = penalty._fit_defaults["lr"] if lr is None else lr
    patience = penalty._fit_defaults["patience"] if patience is None else patience
    takes_weights = "weights" in inspect.signature(penalty.learning_loss).parameters
    if weights is not None and not takes_weights:
        raise ValueError(
            f"{type(penalty).__name__}.learning_loss takes no weights; use IWCLUB ('iwclub') "
            "for per-sample weights."
        )
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1); got {validation_fraction}.")
    if batch_size is not None and batch_size < 2:
        raise ValueError(f"batch_size must be at least 2 or None; got {batch_size}.")
    a = _as_tensor(a, "a").detach()
    b = _as_tensor(b, "b").detach()
    _validate(a, b)
    penalty.build(a, b)
    n = a.shape[0]
    if weights is not None:
        weights = _as_tensor(weights, "weights").detach()
        weights = _check_weights(weights, n, a if torch.is_floating_point(a) else a.float())

    # Train / validation split.
    n_val = int(round(validation_fraction * n))
    train_idx = val_idx = None
    if validation_fraction > 0 and n_val >= 2 and n - n_val >= 2:
        perm = torch.randperm(n, device=a.device)
        val_idx, train_idx = perm[:n_val], perm[n_val:]
        if not (_n_groups_ok(b[val_idx]) and _n_groups_ok(b[train_idx])):
            val_idx = train_idx = None
    if train_idx is None:
        ta, tb, tw = a, b, weights
    else:
        ta, tb = a[train_idx], b[train_idx]
        tw = None if weights is None else weights[train_idx]
    n_train = ta.shape[0]

    def loss_on(xa, xb, xw, validation=False):
        if validation and penalty.bound == "lower":
            return -penalty(xa, xb)
        if takes_weights:
            return penalty.learning_loss(xa, xb, weights=xw)
        return penalty.learning_loss(xa, xb)

    if init_least_squares and hasattr(penalty, "_init_critic"):
        penalty._init_critic(penalty._prepare(ta, tb), tw, ridge_fraction)

    best, best_state, since = math.inf, None, 0

    def check_validation():
        nonlocal best, best_state, since
        with torch.no_grad():
            vw = None if weights is None else weights[val_idx]
            v = float(loss_on(a[val_idx], b[val_idx], vw, validation=True))
        if best == math.inf or v < best - min_delta * max(abs(best), 1.0):
            best, since = v, 0
            best_state = {k: t.detach().clone() for k, t in penalty.state_dict().items()}
            return False
        since += 1
        return since > patience

    if val_idx is not None:
        check_validation()
    opt = torch.optim.Adam(penalty.parameters(), lr=lr)
    losses = []
    for _ in range(int(n_steps)):
        if batch_size is None or batch_size >= n_train:
            ab, bb, wb = ta, tb, tw
        else:
            idx = torch.randperm(n_train, device=a.device)[:batch_size]
            ab, bb = ta[idx], tb[idx]
            wb = None if tw is None else tw[idx]
            if not _n_groups_ok(bb):
                continue
        opt.zero_grad()
        loss = loss_on(ab, bb, wb)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if val_idx is not None and check_validation():
            break
    if best_state is not None:
        penalty.load_state_dict(best_state)
    return losses
