"""A synthetic user-growth campaign: rare conversions, small uplift, confounded targeting.

Large samples are generated in fixed internal blocks of rows, each seeded from its own child of
one :class:`numpy.random.SeedSequence`, so the data only depend on ``random_state`` and not on
how many rows are computed at a time (``chunk_size``).
"""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._synthetic import _check_int, _check_real

__all__ = ["make_user_growth", "iter_user_growth"]

_BLOCK = 1 << 16  # rows per independently seeded block: part of the data's definition
_CALIBRATION_SEED = 20080320  # fixed sample on which the intercept is calibrated
_BASE = {"activity": 0.8, "engagement": 0.4, "tenure": -0.1, "mobile": 0.2}
_N_UNIFORM = 4  # mobile, tenure, arm, conversion


def _root_seed(random_state):
    """A SeedSequence from None, an int, a SeedSequence or a Generator."""
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    if random_state is None or (
        isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool)
    ):
        return np.random.SeedSequence(random_state)
    raise ValueError(
        "random_state must be None, an int, a numpy SeedSequence or Generator, "
        f"got {random_state!r}."
    )


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for any z


class _World:
    """The campaign's fixed structural equations; draws come in from seeded blocks."""

    def __init__(self, n_arms, base_rate, uplift, targeting_strength, treat_share, exploration,
                 n_noise, root):  # fmt: skip
        self.n_arms = n_arms
        self.uplift = uplift
        self.targeting_strength = targeting_strength
        self.exploration = exploration
        self.n_noise = n_noise
        self.root = root
        self.n_gauss = 2 + n_noise  # activity, engagement, noise_*
        self.feature_names = ["activity", "engagement", "tenure", "mobile"] + [
            f"noise_{j}" for j in range(n_noise)
        ]
        # each treatment arm gets its own direction of heterogeneity
        angles = np.pi * np.arange(n_arms - 1) / max(n_arms - 1, 1)
        self.cos, self.sin = np.cos(angles), np.sin(angles)
        # at average activity, P(control) = 1 - treat_share, arms equally likely
        self.arm_intercept = np.log(treat_share / (1 - treat_share) / (n_arms - 1))
        self.intercept = self._calibrate(base_rate)
        self._cached = (None, None)

    # ---------------------------------------------------------------- draws
    def _block(self, b):
        if self._cached[0] != b:
            seed = np.random.SeedSequence(self.root.entropy, spawn_key=(*self.root.spawn_key, b))
            rng = np.random.default_rng(seed)
            gauss = rng.standard_normal((_BLOCK, self.n_gauss))
            unif = rng.random((_BLOCK, _N_UNIFORM))
            self._cached = (b, (gauss, unif))
        return self._cached[1]

    def _draws(self, start, stop):
        gauss = np.empty((stop - start, self.n_gauss))
        unif = np.empty((stop - start, _N_UNIFORM))
        for b in range(start // _BLOCK, (stop - 1) // _BLOCK + 1):
            lo, hi = max(start, b * _BLOCK), min(stop, (b + 1) * _BLOCK)
            g, u = self._block(b)
            gauss[lo - start : hi - start] = g[lo - b * _BLOCK : hi - b * _BLOCK]
            unif[lo - start : hi - start] = u[lo - b * _BLOCK : hi - b * _BLOCK]
        return gauss, unif

    # ---------------------------------------------------------------- equations
    @staticmethod
    def _covariates(gauss, unif):
        activity = gauss[:, 0]
        engagement = 0.5 * activity + np.sqrt(0.75) * gauss[:, 1]
        tenure = -2.0 * np.log1p(-unif[:, 1])  # exponential, mean 2 years
        mobile = (unif[:, 0] < 0.6).astype(np.float64)
        return activity, engagement, tenure, mobile

    @staticmethod
    def _base_logit(activity, engagement, tenure, mobile):
        return (
            _BASE["activity"] * activity
            + _BASE["engagement"] * engagement
            + _BASE["tenure"] * (tenure - 2.0) / 2.0
            + _BASE["mobile"] * (mobile - 0.6)
        )

    def _calibrate(self, base_rate):
        """Intercept giving a population control conversion rate of ``base_rate``."""
        rng = np.random.default_rng(_CALIBRATION_SEED)
        gauss, unif = rng.standard_normal((1 << 16, 2)), rng.random((1 << 16, _N_UNIFORM))
        lin = self._base_logit(*self._covariates(gauss, unif))
        lo, hi = -30.0, 30.0
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if _sigmoid(mid + lin).mean() < base_rate else (lo, mid)
        return (lo + hi) / 2

    def fill(self, start, stop, out):
        """Write rows ``[start, stop)`` into the arrays of ``out`` (sliced from 0)."""
        gauss, unif = self._draws(start, stop)
        activity, engagement, tenure, mobile = self._covariates(gauss, unif)
        X = out["X"]
        for j, col in enumerate((activity, engagement, tenure, mobile)):
            X[:, j] = col
        X[:, 4:] = gauss[:, 2:]

        base = self.intercept + self._base_logit(activity, engagement, tenure, mobile)
        mu = out["mu"]
        mu[:, 0] = p0 = _sigmoid(base)
        for k in range(1, self.n_arms):
            h = (
                self.cos[k - 1] * engagement
                + self.sin[k - 1] * (mobile - 0.6) / np.sqrt(0.24)
                - 0.5 * activity
            )
            pk = _sigmoid(base + self.uplift * (1.0 + h))
            mu[:, k] = pk
            out["uplift"][:, k - 1] = pk - p0

        # logged policy: more active users are targeted more, with uniform exploration
        logits = np.zeros((stop - start, self.n_arms))
        logits[:, 1:] = (self.arm_intercept + self.targeting_strength * activity)[:, None]
        logits -= logits.max(axis=1, keepdims=True)
        policy = np.exp(logits)
        policy /= policy.sum(axis=1, keepdims=True)
        policy = (1.0 - self.exploration) * policy + self.exploration / self.n_arms
        out["propensity"][:] = policy

        cumulative = np.cumsum(policy, axis=1)[:, :-1]
        t = (unif[:, 2:3] >= cumulative).sum(axis=1)
        out["t"][:] = t
        p_t = np.take_along_axis(mu, t[:, None], axis=1)[:, 0]
        out["y"][:] = unif[:, 3] < p_t


def _setup(n, n_arms, base_rate, uplift, targeting_strength, treat_share, exploration, n_noise,
           chunk_size, random_state):  # fmt: skip
    n = _check_int(n, "n", 1)
    n_arms = _check_int(n_arms, "n_arms", 2)
    if n_arms > 127:
        raise ValueError(f"n_arms must be at most 127, got {n_arms}.")
    base_rate = _check_real(base_rate, "base_rate", 0.0, 1.0, low_open=True, high_open=True)
    uplift = _check_real(uplift, "uplift")
    targeting_strength = _check_real(targeting_strength, "targeting_strength")
    treat_share = _check_real(treat_share, "treat_share", 0.0, 1.0, low_open=True, high_open=True)
    exploration = _check_real(exploration, "exploration", 0.0, 1.0)
    n_noise = _check_int(n_noise, "n_noise", 0)
    chunk_size = _check_int(chunk_size, "chunk_size", 1)
    world = _World(n_arms, base_rate, uplift, targeting_strength, treat_share, exploration,
                   n_noise, _root_seed(random_state))  # fmt: skip
    return n, chunk_size, world


def _allocate(n, world):
    d, k = len(world.feature_names), world.n_arms
    return {
        # column-major, so that each feature is contiguous and a DataFrame can wrap it
        "X": np.empty((n, d), np.float32, order="F"),
        "t": np.empty(n, np.int8),
        "y": np.empty(n, np.float32),
        "mu": np.empty((n, k), np.float32),
        "uplift": np.empty((n, k - 1), np.float32),
        "propensity": np.empty((n, k), np.float32),
    }


def _bunch(arrays, world, as_frame, start):
    out = Bunch(**arrays)
    out.feature_names = list(world.feature_names)
    out.treatment_names = ["control"] + [f"arm_{k}" for k in range(1, world.n_arms)]
    if as_frame:
        index = pd.RangeIndex(start, start + len(out.t))
        out.X = pd.DataFrame(out.X, columns=out.feature_names, index=index, copy=False)
    return out


_PARAMS_DOC = """n_arms : int, default=2
        Number of arms including control (arm 0); at most 127.
    base_rate : float, default=0.02
        Population conversion rate under control, in (0, 1). The intercept of the baseline
        log-odds is calibrated numerically to give it.
    uplift : float, default=0.3
        Average log-odds lift of a treatment arm. The lift of arm ``k`` is
        ``uplift * (1 + h_k(x))`` with ``h_k`` of mean 0 and standard deviation 0.87 (arm 1)
        to 1.12, so some users have a negative effect (about 12% for arm 1, up to 27% for
        other arms).
    targeting_strength : float, default=1.0
        Slope of the logged policy's log-odds of treating a user in ``activity``;
        0 gives a randomized campaign.
    treat_share : float, default=0.5
        Probability of being treated (any arm) for a user of average activity, before
        exploration.
    exploration : float, default=0.1
        The logged policy mixes in uniform random arms with this weight, so each arm has
        probability at least ``exploration / n_arms`` (overlap).
    n_noise : int, default=2
        Number of irrelevant standard normal covariates ``noise_0, ...``."""

_SEED_DOC = """random_state : int, SeedSequence, Generator or None, default=None
        Seed. Rows are drawn in fixed blocks of 65,536 rows, block ``b`` from the child
        ``SeedSequence(entropy, spawn_key=(b,))``: the same seed gives the same rows whatever
        ``chunk_size``, and a smaller ``n`` gives a prefix of a larger one.
    as_frame : bool, default=True
        If True, ``X`` is a :class:`pandas.DataFrame` (wrapping the array without a copy)."""

_WORLD_DOC = r"""The covariates are ``activity`` (standardized log-activity, :math:`N(0, 1)`),
    ``engagement`` (:math:`N(0, 1)`, correlation 0.5 with activity), ``tenure`` (years,
    exponential with mean 2), ``mobile`` (Bernoulli(0.6)) and ``n_noise`` noise columns.

    - Baseline log-odds: :math:`b(x) = c + 0.8\,\mathrm{activity} + 0.4\,\mathrm{engagement}
      - 0.1 (\mathrm{tenure} - 2)/2 + 0.2 (\mathrm{mobile} - 0.6)`, with :math:`c` calibrated so
      that the mean of :math:`\mu_0 = \sigma(b)` is ``base_rate``.
    - Arm :math:`k \ge 1`: :math:`\mu_k = \sigma(b + \mathrm{uplift}\,(1 + h_k))` with
      :math:`h_k = \cos\theta_k\,\mathrm{engagement} + \sin\theta_k\,(\mathrm{mobile} - 0.6)
      / \sqrt{0.24} - 0.5\,\mathrm{activity}` and :math:`\theta_k = \pi (k - 1)/(K - 1)`:
      in log-odds, the most active users, the most likely to convert anyway, gain least.
    - Logged policy: control has log-odds 0 and each arm
      :math:`\log(s / (1 - s) / (K - 1)) + \mathrm{targeting\_strength} \cdot \mathrm{activity}`
      (:math:`s` = ``treat_share``), softmax, then mixed with the uniform distribution with
      weight ``exploration``. ``activity`` raises both targeting and conversion: a confounder.
    - :math:`t` drawn from the policy, :math:`y \sim \mathrm{Bernoulli}(\mu_t)`."""


def make_user_growth(
    n=100_000,
    n_arms=2,
    base_rate=0.02,
    *,
    uplift=0.3,
    targeting_strength=1.0,
    treat_share=0.5,
    exploration=0.1,
    n_noise=2,
    chunk_size=1_000_000,
    random_state=None,
    as_frame=True,
):
    """Generate a synthetic user-growth campaign with known uplift.

    {world}

    The output arrays are allocated once and filled ``chunk_size`` rows at a time, so
    ``n = 10_000_000`` takes about 0.5 GB of output for the defaults (float32 where possible)
    plus working memory proportional to ``chunk_size`` (about 0.3 GB for a million rows).
    See :func:`iter_user_growth` to stream the same rows chunk by chunk instead.

    Parameters
    ----------
    n : int, default=100_000
        Number of users.
    {params}
    chunk_size : int, default=1_000_000
        Rows computed at a time (working memory); does not change the data.
    {seed}

    Returns
    -------
    data : sklearn.utils.Bunch
        With fields

        - ``X``: covariates, shape ``(n, 4 + n_noise)``, float32;
        - ``t``: logged arm, shape ``(n,)``, int8 (0 = control);
        - ``y``: conversion, shape ``(n,)``, float32 in {{0, 1}};
        - ``mu``: true conversion probability under each arm, shape ``(n, n_arms)``, float32;
        - ``uplift``: true uplift of each treatment arm over control, ``mu[:, k] - mu[:, 0]``,
          shape ``(n, n_arms - 1)``, float32 (use ``uplift[:, 0]`` with two arms);
        - ``propensity``: probability of each arm under the logged policy, shape
          ``(n, n_arms)``, float32;
        - ``feature_names``, ``treatment_names``.

    Examples
    --------
    >>> from causalmim.datasets import make_user_growth
    >>> data = make_user_growth(n=20_000, random_state=0)
    >>> data.X.shape, data.mu.shape, data.uplift.shape
    ((20000, 6), (20000, 2), (20000, 1))
    >>> bool(0.015 < data.mu[:, 0].mean() < 0.025)
    True
    """
    n, chunk_size, world = _setup(n, n_arms, base_rate, uplift, targeting_strength, treat_share,
                                  exploration, n_noise, chunk_size, random_state)  # fmt: skip
    arrays = _allocate(n, world)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        world.fill(start, stop, {key: arr[start:stop] for key, arr in arrays.items()})
    return _bunch(arrays, world, as_frame, 0)


def iter_user_growth(
    n=100_000,
    n_arms=2,
    base_rate=0.02,
    *,
    uplift=0.3,
    targeting_strength=1.0,
    treat_share=0.5,
    exploration=0.1,
    n_noise=2,
    chunk_size=1_000_000,
    random_state=None,
    as_frame=True,
):
    """Stream the campaign of :func:`make_user_growth` in chunks of rows.

    Concatenating the chunks gives exactly ``make_user_growth`` with the same arguments.

    Parameters
    ----------
    n : int, default=100_000
        Number of users in all.
    {params}
    chunk_size : int, default=1_000_000
        Rows per chunk (the last one may be shorter); does not change the data.
    {seed}

    Yields
    ------
    chunk : sklearn.utils.Bunch
        The fields of :func:`make_user_growth` for rows ``chunk.start`` to ``chunk.stop``
        (with ``as_frame=True`` the DataFrame index holds the row numbers), plus ``start`` and
        ``stop``.
    """
    n, chunk_size, world = _setup(n, n_arms, base_rate, uplift, targeting_strength, treat_share,
                                  exploration, n_noise, chunk_size, random_state)  # fmt: skip
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        arrays = _allocate(stop - start, world)
        world.fill(start, stop, arrays)
        chunk = _bunch(arrays, world, as_frame, start)
        chunk.start, chunk.stop = start, stop
        yield chunk


make_user_growth.__doc__ = make_user_growth.__doc__.format(
    world=_WORLD_DOC, params=_PARAMS_DOC, seed=_SEED_DOC
)
iter_user_growth.__doc__ = iter_user_growth.__doc__.format(params=_PARAMS_DOC, seed=_SEED_DOC)
