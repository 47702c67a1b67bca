"""Synthetic worlds with known potential outcomes."""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

__all__ = ["make_disentangled"]

BLOCKS = ("instrumental", "confounding", "adjustment", "noise")
_PREFIX = {"instrumental": "inst", "confounding": "conf", "adjustment": "adj", "noise": "noise"}


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_real(value, name, low=None, high=None, low_open=False, high_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}.")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}.")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}.")
    return float(value)


def _signed_weights(rng, size):
    """Weights with magnitude in [0.5, 1] and a random sign: every feature really matters."""
    return rng.uniform(0.5, 1.0, size) * rng.choice([-1.0, 1.0], size)


def _unit(v):
    return v / np.linalg.norm(v)


def make_disentangled(
    n=2000,
    n_instrumental=5,
    n_confounding=5,
    n_adjustment=5,
    n_noise=5,
    *,
    effect_mean=2.0,
    effect_std=1.5,
    propensity_strength=1.5,
    propensity_clip=0.05,
    noise_std=1.0,
    random_state=None,
    as_frame=True,
):
    r"""Generate a world whose covariates split into the four blocks of disentangled ITE models.

    The covariates are independent standard normal variables in four blocks:

    - *instrumental* features drive the treatment only,
    - *confounding* features drive both the treatment and the outcome,
    - *adjustment* features drive the outcome only,
    - *noise* features drive nothing.

    Let :math:`Z` be the confounding and adjustment features together and :math:`p` its width.
    Every weight vector below is drawn once per ``random_state`` with entries of magnitude in
    ``[0.5, 1]`` and random signs, then normalised to unit length, so each projection
    :math:`Z w` is standard normal.

    - Propensity: :math:`e(x) = \mathrm{clip}(\sigma(s \cdot [x_{inst}, x_{conf}] a),
      c, 1 - c)` with ``s = propensity_strength`` and ``c = propensity_clip``. The confounding
      part of ``a`` shares its signs with the baseline weights ``b`` below, so treated units
      have a higher baseline outcome and the naive difference in means is biased.
    - Baseline: :math:`\mu_0(x) = Z b + \cos(2 Z b')`.
    - Effect: :math:`\tau(x) = m + s_\tau (u + (v^2 - 1)/\sqrt{2})/\sqrt{2}` with
      :math:`u = Z g`, :math:`v = Z g'` and :math:`g' \perp g` (when :math:`p \ge 2`), so
      :math:`\tau` has mean ``effect_mean`` and standard deviation ``effect_std`` in the
      population, and is non-linear (skewed) in :math:`Z`.
    - :math:`\mu_1 = \mu_0 + \tau`, :math:`t \sim \mathrm{Bernoulli}(e(x))`,
      :math:`y = \mu_t(x) + \varepsilon` with :math:`\varepsilon \sim N(0, \mathrm{noise\_std}^2)`.

    Predicting the true average effect for everybody has a :math:`\sqrt{\mathrm{PEHE}}` of about
    ``effect_std``; a good model does clearly better on the default settings.

    Parameters
    ----------
    n : int, default=2000
        Number of units.
    n_instrumental, n_confounding, n_adjustment, n_noise : int, default=5
        Width of each covariate block. ``n_confounding + n_adjustment`` must be at least 1.
    effect_mean : float, default=2.0
        Population mean of the treatment effect :math:`\tau(x)`.
    effect_std : float, default=1.5
        Population standard deviation of :math:`\tau(x)`; 0 gives a constant effect.
    propensity_strength : float, default=1.5
        Scale of the propensity logit (standard deviation of the logit before clipping);
        0 gives a randomized experiment with :math:`e(x) = 0.5`.
    propensity_clip : float, default=0.05
        Propensities are clipped to ``[propensity_clip, 1 - propensity_clip]`` to keep overlap.
        Must lie in ``[0, 0.5)``.
    noise_std : float, default=1.0
        Standard deviation of the Gaussian outcome noise.
    random_state : int, numpy.random.Generator, numpy.random.SeedSequence or None, default=None
        Seed of the world (weights) and of the sample.
    as_frame : bool, default=True
        If True, ``X`` is a :class:`pandas.DataFrame` with named columns; otherwise an ndarray.

    Returns
    -------
    data : sklearn.utils.Bunch
        With fields

        - ``X``: covariates, shape ``(n, d)``, columns ``inst_0, ..., conf_0, ..., adj_0, ...,
          noise_0, ...`` in that block order;
        - ``t``: binary treatment (int64), shape ``(n,)``;
        - ``y``: observed outcome, shape ``(n,)``;
        - ``mu0``, ``mu1``: noiseless potential outcomes, shape ``(n,)``;
        - ``tau``: true individual effect ``mu1 - mu0``, shape ``(n,)``;
        - ``propensity``: true (clipped) propensity :math:`e(x)`, shape ``(n,)``;
        - ``blocks``: block label of each column of ``X`` (``"instrumental"``,
          ``"confounding"``, ``"adjustment"`` or ``"noise"``), shape ``(d,)``;
        - ``feature_names``: the column names, shape ``(d,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from causalmim.datasets import make_disentangled
    >>> data = make_disentangled(n=500, random_state=0)
    >>> data.X.shape
    (500, 20)
    >>> list(data.X.columns[:6])
    ['inst_0', 'inst_1', 'inst_2', 'inst_3', 'inst_4', 'conf_0']
    >>> sorted(set(data.blocks))
    ['adjustment', 'confounding', 'instrumental', 'noise']
    >>> bool(np.allclose(data.tau, data.mu1 - data.mu0))
    True
    >>> bool(np.all((data.propensity >= 0.05) & (data.propensity <= 0.95)))
    True
    """
    n = _check_int(n, "n", 1)
    sizes = {
        "instrumental": _check_int(n_instrumental, "n_instrumental", 0),
        "confounding": _check_int(n_confounding, "n_confounding", 0),
        "adjustment": _check_int(n_adjustment, "n_adjustment", 0),
        "noise": _check_int(n_noise, "n_noise", 0),
    }
    if sizes["confounding"] + sizes["adjustment"] < 1:
        raise ValueError(
            "n_confounding + n_adjustment must be at least 1: the outcome needs a feature."
        )
    effect_mean = _check_real(effect_mean, "effect_mean")
    effect_std = _check_real(effect_std, "effect_std", low=0.0)
    propensity_strength = _check_real(propensity_strength, "propensity_strength", low=0.0)
    propensity_clip = _check_real(propensity_clip, "propensity_clip", 0.0, 0.5, high_open=True)
    noise_std = _check_real(noise_std, "noise_std", low=0.0)

    rng = np.random.default_rng(random_state)
    d_i, d_c, d_a = sizes["instrumental"], sizes["confounding"], sizes["adjustment"]
    p = d_c + d_a

    # The world: weights first (so they do not depend on n), then the sample.
    b = _unit(_signed_weights(rng, p))  # baseline, linear part
    b2 = _unit(_signed_weights(rng, p))  # baseline, non-linear part
    g = _unit(_signed_weights(rng, p))  # effect, linear part
    g2 = _signed_weights(rng, p)  # effect, quadratic part, made orthogonal to g
    if p >= 2:
        g2 = g2 - (g2 @ g) * g
    g2 = _unit(g2)
    a = np.concatenate([_signed_weights(rng, d_i), np.abs(_signed_weights(rng, d_c))])
    a[d_i:] *= np.sign(b[:d_c])  # confounders push t and y the same way
    if a.size:
        a = _unit(a)

    d = sum(sizes.values())
    X = rng.standard_normal((n, d))
    XE = X[:, : d_i + d_c]  # instrumental + confounding
    Z = X[:, d_i : d_i + p]  # confounding + adjustment

    logit = propensity_strength * (XE @ a) if a.size else np.zeros(n)
    propensity = np.clip(1.0 / (1.0 + np.exp(-logit)), propensity_clip, 1.0 - propensity_clip)
    t = (rng.random(n) < propensity).astype(np.int64)

    mu0 = Z @ b + np.cos(2.0 * (Z @ b2))
    u, v = Z @ g, Z @ g2
    h = u if p == 1 else (u + (v**2 - 1.0) / np.sqrt(2.0)) / np.sqrt(2.0)
    mu1 = mu0 + (effect_mean + effect_std * h)
    tau = mu1 - mu0
    y = np.where(t == 1, mu1, mu0) + noise_std * rng.standard_normal(n)

    feature_names = np.array(
        [f"{_PREFIX[blk]}_{j}" for blk in BLOCKS for j in range(sizes[blk])], dtype=object
    )
    blocks = np.array([blk for blk in BLOCKS for _ in range(sizes[blk])], dtype=object)
    if as_frame:
        X = pd.DataFrame(X, columns=list(feature_names))
    return Bunch(
        X=X,
        t=t,
        y=y,
        mu0=mu0,
        mu1=mu1,
        tau=tau,
        propensity=propensity,
        blocks=blocks,
        feature_names=feature_names,
    )
