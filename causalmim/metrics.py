"""Metrics for individual treatment effect and uplift models.

Two families, with two argument conventions:

- **Against a known truth** (synthetic or semi-synthetic data such as IHDP), in scikit-learn's
  ``(y_true, y_pred)`` order: :func:`sqrt_pehe` and :func:`ate_error`. Lower is better.
- **From observed data** (a randomized sample), the model's prediction first, then the observed
  treatment and outcome: :func:`att_error` and :func:`policy_risk` (the Jobs protocol of
  Shalit et al. 2017; lower is better) and the uplift curves :func:`uplift_curve`,
  :func:`qini_curve` with their areas :func:`auuc` and :func:`qini_coefficient` (higher is
  better).

Every function accepts array-likes and :class:`pandas.Series` of one dimension (a single
column of shape ``(n, 1)``, or a one-column DataFrame, is flattened), and raises
:class:`ValueError` on a length mismatch, a missing or infinite value, or a treatment (or
sample flag) that is not coded 0/1.
"""

import numpy as np

from ._validation import _as_1d

__all__ = [
    "sqrt_pehe",
    "ate_error",
    "att_error",
    "policy_risk",
    "uplift_curve",
    "qini_curve",
    "auuc",
    "qini_coefficient",
    "plot_uplift_curve",
    "plot_qini_curve",
]


# --------------------------------------------------------------------------- validation


def _column(values, name):
    """Return ``values`` as a finite 1-D float array, or raise a ValueError naming it."""
    if values is None:
        raise ValueError(f"{name} is required, got None.")
    arr = _as_1d(values, name)
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if arr.size == 0:
        raise ValueError(f"{name} is empty.")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN ({int(np.isnan(arr).sum())} values).")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains infinite values.")
    return arr


def _binary(values, name):
    arr = _column(values, name)
    if not np.isin(arr, (0.0, 1.0)).all():
        found = np.unique(arr)[:5]
        raise ValueError(f"{name} must be coded 0/1, found values {found.tolist()}.")
    return arr.astype(bool)


def _check_lengths(**arrays):
    lengths = {name: arr.shape[0] for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"Inputs have different lengths: {detail}.")


def _check_observed(tau_hat, t, y, e=None):
    tau_hat = _column(tau_hat, "tau_hat")
    t = _binary(t, "t")
    y = _column(y, "y")
    if e is None:
        _check_lengths(tau_hat=tau_hat, t=t, y=y)
        return tau_hat, t, y
    e = _binary(e, "e")
    _check_lengths(tau_hat=tau_hat, t=t, y=y, e=e)
    if not e.any():
        raise ValueError("No unit has e == 1: the randomized sample is empty.")
    return tau_hat[e], t[e], y[e]


def _safe_mean(values):
    """Mean, or 0 for an empty selection (the convention of the CFRNet evaluation code)."""
    return float(values.mean()) if values.size else 0.0


# --------------------------------------------------------------------------- truth-based


def sqrt_pehe(tau_true, tau_hat):
    r"""Root of the precision in estimating heterogeneous effects (PEHE).

    .. math:: \sqrt{\mathrm{PEHE}} = \sqrt{\tfrac{1}{n} \sum_i (\hat\tau_i - \tau_i)^2}

    Parameters
    ----------
    tau_true : array-like of shape (n,)
        True individual effects, e.g. ``mu1 - mu0``.
    tau_hat : array-like of shape (n,)
        Estimated individual effects.

    Returns
    -------
    float
        The root mean squared error of the effect estimates (lower is better).

    Examples
    --------
    >>> from causalmim.metrics import sqrt_pehe
    >>> sqrt_pehe([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 8.0])
    2.0
    """
    tau_true = _column(tau_true, "tau_true")
    tau_hat = _column(tau_hat, "tau_hat")
    _check_lengths(tau_true=tau_true, tau_hat=tau_hat)
    return float(np.sqrt(np.mean((tau_hat - tau_true) ** 2)))


def ate_error(tau_true, tau_hat):
    r"""Absolute error of the average treatment effect, :math:`|\bar{\hat\tau} - \bar\tau|`.

    Parameters
    ----------
    tau_true : array-like of shape (n,)
        True individual effects.
    tau_hat : array-like of shape (n,)
        Estimated individual effects.

    Returns
    -------
    float
        ``abs(mean(tau_hat) - mean(tau_true))`` (lower is better).

    Examples
    --------
    >>> from causalmim.metrics import ate_error
    >>> ate_error([1.0, 3.0], [2.5, 2.5])
    0.5
    """
    tau_true = _column(tau_true, "tau_true")
    tau_hat = _column(tau_hat, "tau_hat")
    _check_lengths(tau_true=tau_true, tau_hat=tau_hat)
    return float(abs(tau_hat.mean() - tau_true.mean()))


# --------------------------------------------------------------------------- Jobs protocol


def att_error(tau_hat, t, y, e=None):
    r"""Error of the average effect on the treated against an experimental benchmark (Jobs).

    The true ATT is taken from the randomized units (``e == 1``):
    :math:`\mathrm{ATT} = \bar y_{t=1, e=1} - \bar y_{t=0, e=1}`, and the estimate is the mean of
    ``tau_hat`` over the treated randomized units,
    :math:`\widehat{\mathrm{ATT}} = \overline{\hat\tau}_{t=1, e=1}`. As in the CFRNet evaluation
    code (Shalit et al. 2017), the error is :math:`|\widehat{\mathrm{ATT}} - \mathrm{ATT}|`.

    Parameters
    ----------
    tau_hat : array-like of shape (n,)
        Estimated individual effects.
    t : array-like of shape (n,)
        Observed treatment, coded 0/1.
    y : array-like of shape (n,)
        Observed outcome.
    e : array-like of shape (n,), default=None
        1 for units of the randomized sample, 0 for the observational comparison units.
        None means every unit is randomized.

    Returns
    -------
    float
        The absolute ATT error (lower is better).

    Raises
    ------
    ValueError
        If the randomized sample has no treated or no control unit.

    Examples
    --------
    >>> from causalmim.metrics import att_error
    >>> att_error([0.3, 0.1, 0.0, 0.0], t=[1, 1, 0, 0], y=[1, 0, 0, 0])
    0.3
    """
    tau_hat, t, y = _check_observed(tau_hat, t, y, e)
    if t.all() or not t.any():
        raise ValueError("att_error needs treated and control units in the randomized sample.")
    att = y[t].mean() - y[~t].mean()
    return float(abs(tau_hat[t].mean() - att))


def policy_risk(tau_hat, t, y, e=None):
    r"""Policy risk of treating the units with a positive estimated effect (Jobs protocol).

    With the policy :math:`\pi(x) = 1[\hat\tau(x) > 0]`, evaluated on the randomized units
    (``e == 1``):

    .. math::
        R_{pol} = 1 - \big[P(\pi = 1)\, E(y \mid \pi = 1, t = 1)
                          + P(\pi = 0)\, E(y \mid \pi = 0, t = 0)\big]

    A conditional mean over an empty set counts as 0, as in the CFRNet evaluation code.
    The formula assumes an outcome where higher is better (e.g. employment, in [0, 1]).

    Parameters
    ----------
    tau_hat : array-like of shape (n,)
        Estimated individual effects.
    t : array-like of shape (n,)
        Observed treatment, coded 0/1.
    y : array-like of shape (n,)
        Observed outcome.
    e : array-like of shape (n,), default=None
        1 for units of the randomized sample; None means every unit is randomized.

    Returns
    -------
    float
        The policy risk (lower is better).

    Examples
    --------
    >>> from causalmim.metrics import policy_risk
    >>> policy_risk([1.0, 1.0, -1.0, -1.0], t=[1, 0, 0, 1], y=[1, 0, 1, 0])
    0.0
    """
    tau_hat, t, y = _check_observed(tau_hat, t, y, e)
    policy = tau_hat > 0
    p_treat = policy.mean()
    value = p_treat * _safe_mean(y[policy & t]) + (1.0 - p_treat) * _safe_mean(y[~policy & ~t])
    return float(1.0 - value)


# --------------------------------------------------------------------------- uplift curves


def _cumulative(uplift, t, y):
    """Cumulative counts and sums in decreasing order of ``uplift``, at the ends of tie blocks."""
    uplift = _column(uplift, "uplift")
    t = _binary(t, "t")
    y = _column(y, "y")
    _check_lengths(uplift=uplift, t=t, y=y)
    if t.all() or not t.any():
        raise ValueError("Uplift curves need treated (t == 1) and control (t == 0) units.")
    order = np.argsort(-uplift, kind="mergesort")
    uplift, t, y = uplift[order], t[order], y[order]
    # the last position of each block of equal scores: ties are targeted together
    ends = np.r_[np.flatnonzero(np.diff(uplift)), uplift.size - 1]
    n_t = np.r_[0, np.cumsum(t)[ends]]
    n_c = np.r_[0, np.cumsum(~t)[ends]]
    y_t = np.r_[0.0, np.cumsum(np.where(t, y, 0.0))[ends]]
    y_c = np.r_[0.0, np.cumsum(np.where(t, 0.0, y))[ends]]
    return n_t, n_c, y_t, y_c


def _ratio(num, den):
    out = np.zeros_like(num, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out


def uplift_curve(uplift, t, y):
    r"""Uplift (cumulative gain) curve of a ranking by predicted uplift.

    Units are sorted by decreasing ``uplift``; targeting the top :math:`k` of :math:`n` gives

    .. math::
        G(k) = \Big(\frac{Y_1(k)}{N_1(k)} - \frac{Y_0(k)}{N_0(k)}\Big) \frac{k}{n},

    where :math:`N_1(k)`, :math:`N_0(k)` count the treated and control units among the top
    :math:`k` and :math:`Y_1(k)`, :math:`Y_0(k)` sum their outcomes (a ratio with an empty arm
    counts as 0). :math:`G` is the estimated incremental outcome per unit of the whole
    population when the top fraction :math:`k/n` is treated; multiply by :math:`n` for totals.
    The curve starts at ``(0, 0)`` and ends at ``(1, ATE)``, with ATE the difference in means.

    Units with tied scores are targeted together: the curve only has points at the ends of
    blocks of equal scores (joined by straight lines when plotted or integrated), so it does
    not depend on the order of tied units. A constant score gives the straight random line.

    Parameters
    ----------
    uplift : array-like of shape (n,)
        Predicted uplift (higher means target first).
    t : array-like of shape (n,)
        Treatment of a randomized experiment, coded 0/1.
    y : array-like of shape (n,)
        Observed outcome.

    Returns
    -------
    fraction : ndarray of shape (m + 1,)
        Fraction of the population targeted, from 0 to 1 (one point per distinct score).
    gain : ndarray of shape (m + 1,)
        :math:`G(k)` at each point.

    See Also
    --------
    qini_curve, auuc, plot_uplift_curve
    """
    n_t, n_c, y_t, y_c = _cumulative(uplift, t, y)
    k = n_t + n_c
    n = k[-1]
    gain = (_ratio(y_t, n_t) - _ratio(y_c, n_c)) * k / n
    return k / n, gain


def qini_curve(uplift, t, y):
    r"""Qini curve of a ranking by predicted uplift (Radcliffe 2007).

    Units are sorted by decreasing ``uplift``; targeting the top :math:`k` gives

    .. math::
        Q(k) = \frac{1}{N_1}\Big(Y_1(k) - Y_0(k) \frac{N_1(k)}{N_0(k)}\Big),

    with the notation of :func:`uplift_curve` (the control term counts as 0 while
    :math:`N_0(k) = 0`) and :math:`N_1` the number of treated units. Dividing by :math:`N_1`
    makes :math:`Q` the incremental outcome per treated unit, so that the curve ends at
    ``(1, ATE)`` like the uplift curve; multiply by :math:`N_1` for the usual Qini counts.
    Ties are handled as in :func:`uplift_curve`.

    Parameters
    ----------
    uplift : array-like of shape (n,)
        Predicted uplift (higher means target first).
    t : array-like of shape (n,)
        Treatment of a randomized experiment, coded 0/1.
    y : array-like of shape (n,)
        Observed outcome.

    Returns
    -------
    fraction : ndarray of shape (m + 1,)
        Fraction of the population targeted, from 0 to 1.
    gain : ndarray of shape (m + 1,)
        :math:`Q(k)` at each point.

    See Also
    --------
    uplift_curve, qini_coefficient, plot_qini_curve
    """
    n_t, n_c, y_t, y_c = _cumulative(uplift, t, y)
    k = n_t + n_c
    gain = (y_t - _ratio(y_c * n_t, n_c)) / n_t[-1]
    return k / k[-1], gain


def _perfect_score(t, y):
    """The ideal ranking: treated units by decreasing outcome, then controls by increasing one."""
    t = _binary(t, "t")
    y = _column(y, "y")
    return np.where(t, y, -y)


def _area(fraction, gain):
    """Trapezoidal area under a curve given at increasing ``fraction``."""
    return float(np.sum(np.diff(fraction) * (gain[1:] + gain[:-1]) / 2.0))


def _normalized_area(curve, uplift, t, y):
    fraction, gain = curve(uplift, t, y)
    random = gain[-1] / 2.0  # area under the straight line from (0, 0) to (1, gain[-1])
    perfect = _area(*curve(_perfect_score(t, y), t, y)) - random
    if perfect <= 0:
        return float("nan")
    return (_area(fraction, gain) - random) / perfect


def auuc(uplift, t, y, *, normalize=False):
    r"""Area under the uplift curve.

    Parameters
    ----------
    uplift : array-like of shape (n,)
        Predicted uplift.
    t : array-like of shape (n,)
        Treatment of a randomized experiment, coded 0/1.
    y : array-like of shape (n,)
        Observed outcome.
    normalize : bool, default=False
        If False, return the trapezoidal area under :func:`uplift_curve` over the fraction
        targeted in [0, 1], in outcome units per unit of population; a random ranking scores
        about ATE / 2. If True, return
        :math:`(A_{model} - A_{random}) / (A_{perfect} - A_{random})`, where the random curve is
        the straight line to the curve's end point and the perfect curve ranks treated units by
        decreasing outcome, then control units by increasing outcome (as ``sklift``'s
        ``uplift_auc_score``); NaN when that denominator is not positive (e.g. constant ``y``).

    Returns
    -------
    float
        The area (higher is better).

    See Also
    --------
    uplift_curve, qini_coefficient
    """
    if normalize:
        return _normalized_area(uplift_curve, uplift, t, y)
    return _area(*uplift_curve(uplift, t, y))


def qini_coefficient(uplift, t, y, *, normalize=True):
    r"""Qini coefficient: the area between the model's Qini curve and the random one.

    With :math:`A_{model}` the trapezoidal area under :func:`qini_curve` over the fraction
    targeted in [0, 1], :math:`A_{random} = Q(n) / 2` the area under the straight line from
    ``(0, 0)`` to the curve's end point, and :math:`A_{perfect}` the area of the Qini curve of
    the ideal ranking (treated units by decreasing outcome, then control units by increasing
    outcome, i.e. score ``y`` for treated and ``-y`` for control units):

    - ``normalize=True`` (default) returns
      :math:`(A_{model} - A_{random}) / (A_{perfect} - A_{random})`: 1 for the ideal ranking,
      about 0 for a random one, negative for a ranking worse than random (the same value as
      ``sklift``'s ``qini_auc_score`` with ``negative_effect=True``). NaN when the denominator
      is not positive (e.g. constant ``y``).
    - ``normalize=False`` returns :math:`A_{model} - A_{random}`, in outcome units per treated
      unit (see :func:`qini_curve`).

    Parameters
    ----------
    uplift : array-like of shape (n,)
        Predicted uplift.
    t : array-like of shape (n,)
        Treatment of a randomized experiment, coded 0/1.
    y : array-like of shape (n,)
        Observed outcome.
    normalize : bool, default=True
        Divide by the perfect ranking's area above random.

    Returns
    -------
    float
        The Qini coefficient (higher is better).

    See Also
    --------
    qini_curve, auuc
    """
    if normalize:
        return _normalized_area(qini_curve, uplift, t, y)
    fraction, gain = qini_curve(uplift, t, y)
    return _area(fraction, gain) - gain[-1] / 2.0


# --------------------------------------------------------------------------- plots


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Plotting needs matplotlib; install it with `pip install causalmim[plot]`."
        ) from exc
    return plt


def _plot_curve(curve, ylabel, uplift, t, y, ax, label, random, perfect):
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots()
    fraction, gain = curve(uplift, t, y)
    ax.plot(fraction, gain, label=label)
    if perfect:
        ax.plot(*curve(_perfect_score(t, y), t, y), linestyle=":", color="gray", label="perfect")
    if random:
        ax.plot([0, 1], [0, gain[-1]], linestyle="--", color="black", label="random")
    ax.set_xlabel("fraction targeted")
    ax.set_ylabel(ylabel)
    ax.legend()
    return ax


_PLOT_CURVE_DOC = """Plot the {name} curve (see :func:`{func}`).

    Parameters
    ----------
    uplift, t, y : array-like of shape (n,)
        Predicted uplift, treatment (0/1) and outcome of a randomized experiment.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; a new figure is created when None.
    label : str, default="model"
        Legend label of the curve.
    random : bool, default=True
        Also draw the random-targeting line.
    perfect : bool, default=False
        Also draw the curve of the ideal ranking.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.

    Raises
    ------
    ImportError
        If matplotlib is not installed (``pip install causalmim[plot]``).
    """


def plot_uplift_curve(uplift, t, y, *, ax=None, label="model", random=True, perfect=False):
    return _plot_curve(
        uplift_curve, "incremental outcome per unit", uplift, t, y, ax, label, random, perfect
    )


def plot_qini_curve(uplift, t, y, *, ax=None, label="model", random=True, perfect=False):
    return _plot_curve(qini_curve, "incremental outcome per treated unit", uplift, t, y, ax,
                       label, random, perfect)


plot_uplift_curve.__doc__ = _PLOT_CURVE_DOC.format(name="uplift", func="uplift_curve")
plot_qini_curve.__doc__ = _PLOT_CURVE_DOC.format(name="Qini", func="qini_curve")
