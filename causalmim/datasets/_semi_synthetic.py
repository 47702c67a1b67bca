"""Semi-synthetic benchmarks: real mixed-type covariates, simulated treatment and outcomes."""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._hillstrom import load_hillstrom
from ._jobs import load_jobs
from ._synthetic import _check_int, _check_real, _signed_weights

__all__ = ["make_semi_synthetic"]

SURFACES = ("linear", "step", "smooth", "mixed")
TABLES = ("hillstrom", "jobs")
# Hillstrom's customer covariates; history_segment is left out (a binning of history).
HILLSTROM_COLUMNS = ("recency", "history", "mens", "womens", "zip_code", "newbie", "channel")
_WINSOR = 3.0  # continuous columns are standardized, then clipped to [-3, 3]
_N_TREES = 8  # depth-2 trees in a "step" function


# --------------------------------------------------------------------------- covariate tables
def _hillstrom_table(data_home, download_if_missing):
    frame = load_hillstrom(data_home=data_home, download_if_missing=download_if_missing).frame
    return frame[list(HILLSTROM_COLUMNS)].copy()


def _jobs_table(data_home, download_if_missing):
    # all 3212 units of the raw LaLonde files, in their original order
    split = load_jobs(data_home=data_home, n_splits=1, source="lalonde",
                      download_if_missing=download_if_missing)[0]  # fmt: skip
    x = np.empty((split.train.x.shape[0] + split.test.x.shape[0], split.train.x.shape[1]))
    x[split.train.index], x[split.test.index] = split.train.x, split.test.x
    return pd.DataFrame(x, columns=split.feature_names)


def _clean_table(frame):
    """Numeric and boolean columns as float64, text columns as categoricals; check values."""
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise ValueError(f"covariates must have at least one row and one column; got shape "
                         f"{frame.shape}.")  # fmt: skip
    if not frame.columns.is_unique:
        dup = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise ValueError(f"covariates has duplicated column names {dup}; rename them.")
    missing = [str(c) for c in frame.columns if frame[c].isna().any()]
    if missing:
        raise ValueError(f"covariates has missing values in columns {missing}; impute or drop "
                         "them first.")  # fmt: skip
    out = {}
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            out[name] = col
        elif pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
            values = col.to_numpy(dtype=np.float64)
            if not np.isfinite(values).all():
                raise ValueError(f"covariates column {name!r} has infinite values.")
            out[name] = values
        elif pd.api.types.is_string_dtype(col.dtype) or col.dtype == object:
            out[name] = pd.Categorical(col.astype(str))
        else:
            raise ValueError(
                f"covariates column {name!r} has dtype {col.dtype}; use numeric, boolean, "
                "categorical or text columns (convert dates to numbers first)."
            )
    return pd.DataFrame(out)


def _covariate_table(covariates, data_home, download_if_missing):
    if isinstance(covariates, pd.DataFrame):
        return _clean_table(covariates.reset_index(drop=True)), "DataFrame"
    if isinstance(covariates, str) and covariates in TABLES:
        read = _hillstrom_table if covariates == "hillstrom" else _jobs_table
        return _clean_table(read(data_home, download_if_missing)), covariates
    raise ValueError(
        f"covariates must be one of {', '.join(map(repr, TABLES))} or a pandas DataFrame; "
        f"got {covariates!r}."
    )


def _one_hot(table):
    numeric = [c for c in table.columns if not isinstance(table[c].dtype, pd.CategoricalDtype)]
    categorical = [c for c in table.columns if c not in numeric]
    parts = [table[numeric]]
    if categorical:
        parts.append(pd.get_dummies(table[categorical], dtype=np.float64))
    return pd.concat(parts, axis=1)


# --------------------------------------------------------------------------- random functions
class _Design:
    """The table as the surfaces see it: continuous features and discrete (level) features.

    Numeric columns with more than two distinct values are continuous; they are standardized
    with the table's mean and standard deviation and clipped to ``[-3, 3]``. Categorical
    columns and numeric columns with at most two values (flags) are discrete: level codes.
    """

    def __init__(self, table):
        self.n = len(table)
        cont, self.codes, self.freqs = [], [], []
        for name in table.columns:
            col = table[name]
            if isinstance(col.dtype, pd.CategoricalDtype):
                codes, levels = col.cat.codes.to_numpy(), len(col.cat.categories)
            else:
                values = col.to_numpy()
                uniques, codes = np.unique(values, return_inverse=True)
                if uniques.size > 2:
                    z = (values - values.mean()) / values.std()
                    cont.append(np.clip(z, -_WINSOR, _WINSOR))
                    continue
                levels = uniques.size
            self.codes.append(np.asarray(codes, dtype=np.intp))
            self.freqs.append(np.bincount(codes, minlength=levels) / self.n)
        self.Z = np.column_stack(cont) if cont else np.empty((self.n, 0))
        self.p, self.k = self.Z.shape[1], len(self.codes)


def _standardize(v):
    v = v - v.mean()
    sd = v.std()
    return v / sd if sd > 1e-12 else v


def _shifts(design, rng):
    """Per-level values of every discrete column, centred on the table: sum_k g_k[c_k]."""
    values = []
    for codes, freq in zip(design.codes, design.freqs, strict=True):
        g = rng.standard_normal(freq.size)
        values.append((g - freq @ g)[codes])
    return sum(values, np.zeros(design.n))


def _linear(design, rng):
    return design.Z @ _signed_weights(rng, design.p) + _shifts(design, rng)


def _split(design, rng):
    """A random binary split: z_j > quantile, or level in a random subset of levels."""
    j = int(rng.integers(design.p + design.k))
    if j < design.p:
        z = design.Z[:, j]
        return z > np.quantile(z, rng.uniform(0.2, 0.8))
    freq = design.freqs[j - design.p]
    subset = rng.random(freq.size) < 0.5
    if freq.size > 1 and subset.all() == subset.any():  # keep both sides non-empty
        subset[rng.integers(freq.size)] ^= True
    return subset[design.codes[j - design.p]]


def _step(design, rng):
    out = _shifts(design, rng)
    for _ in range(_N_TREES):
        first, second = _split(design, rng), _split(design, rng)
        out = out + rng.standard_normal(4)[2 * first + second]
    return out


def _smooth_term(z, kind, omega, phase):
    if kind == 0:
        return np.sin(omega * z + phase)
    if kind == 1:
        return np.tanh(omega * z)
    if kind == 2:
        return np.exp(z / 2.0)
    if kind == 3:
        return z**2
    return z**3 / 3.0


def _smooth(design, rng):
    p, out = design.p, _shifts(design, rng)
    if p == 0:
        return out
    kinds = rng.integers(5, size=p)
    omega, phase = rng.uniform(1.0, 2.0, p), rng.uniform(0.0, 2.0 * np.pi, p)
    weights = _signed_weights(rng, p)
    for j in range(p):
        out = out + weights[j] * _smooth_term(design.Z[:, j], kinds[j], omega[j], phase[j])
    if p >= 2:  # p random pairwise products z_i z_j, i != j
        first = rng.integers(p, size=p)
        second = (first + rng.integers(1, p, size=p)) % p
        pair_w = 0.5 * _signed_weights(rng, p)
        out = out + (design.Z[:, first] * design.Z[:, second]) @ pair_w
    for codes, freq in zip(design.codes, design.freqs, strict=True):  # per-level slope on one z_j
        d = 0.5 * rng.standard_normal(freq.size)
        out = out + (d - freq @ d)[codes] * design.Z[:, rng.integers(p)]
    return out


_FAMILIES = {"linear": _linear, "step": _step, "smooth": _smooth}


def _draw(surface, design, rng):
    """One random function of the family, standardized on the table (mean 0, sd 1)."""
    if surface != "mixed":
        return _standardize(_FAMILIES[surface](design, rng))
    w = rng.dirichlet(np.ones(3))
    parts = [_standardize(_FAMILIES[name](design, rng)) for name in ("linear", "step", "smooth")]
    return _standardize(sum(np.sqrt(wi) * part for wi, part in zip(w, parts, strict=True)))


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# --------------------------------------------------------------------------- the generator
def make_semi_synthetic(
    n=4000,
    *,
    covariates="hillstrom",
    surface="mixed",
    effect_size=1.0,
    heterogeneity=0.5,
    confounding=1.0,
    overlap=0.05,
    noise=1.0,
    random_state=None,
    as_frame=True,
    data_home=None,
    download_if_missing=True,
):
    r"""Generate an ACIC-style semi-synthetic benchmark on real mixed-type covariates.

    As in the 2016 Atlantic Causal Inference Conference data challenge (Dorie, Hill, Shalit,
    Scott and Cervone, 2019, "Automated versus do-it-yourself methods for causal inference:
    lessons learned from a data analysis competition", *Statistical Science* 34(1)), the
    covariates are real (a random subsample of a real table, with its skewed, discrete and
    categorical columns) while the treatment and the potential outcomes are simulated, so the
    true effects are known. Each ``random_state`` draws a new *world* (the functions below)
    from the family chosen by ``surface``: a benchmark "on 10 surfaces" is 10 seeds.

    **The generating process.** Let :math:`x` be a row of the table of ``N`` rows. Numeric
    columns with more than two distinct values are *continuous*:
    :math:`z_j = \mathrm{clip}((x_j - m_j) / s_j, -3, 3)` with the table's mean :math:`m_j`
    and standard deviation :math:`s_j`. Categorical columns and numeric columns with at most
    two values (flags) are *discrete*, with level :math:`c_k(x)`. A random function :math:`f`
    is drawn from the family, then standardized to mean 0 and standard deviation 1 over the
    whole table (written :math:`\mathrm{std}[\cdot]`). Every family contains per-level shifts
    :math:`S(x) = \sum_k \gamma_k[c_k(x)]` with :math:`\gamma_{k,l} \sim N(0, 1)` centred on
    the table's level frequencies, so categorical columns always move the surfaces.

    - ``"linear"``: :math:`f = \sum_j \beta_j z_j + S(x)`, :math:`|\beta_j| \sim U(0.5, 1)`
      with random signs.
    - ``"step"`` (tree-like): :math:`f = S(x) + \sum_{m=1}^{8} v_m[2 a_m(x) + b_m(x)]`, eight
      depth-2 trees with leaf values :math:`v_m \sim N(0, I_4)`; each split :math:`a_m,
      b_m` is :math:`z_j > q` (:math:`q` the table's quantile at :math:`U(0.2, 0.8)`) or
      :math:`c_k \in L` (a random non-empty proper subset of levels), on a feature chosen
      uniformly among all continuous and discrete features (so splits interact).
    - ``"smooth"``: :math:`f = S(x) + \sum_j \beta_j g_j(z_j) + \sum_{r=1}^{p} \beta'_r
      z_{i_r} z_{j_r} + \sum_k \delta_k[c_k(x)]\, z_{j_k}`, each :math:`g_j` drawn from
      :math:`\sin(\omega z + \phi)`, :math:`\tanh(\omega z)`, :math:`\exp(z/2)`,
      :math:`z^2`, :math:`z^3/3` (:math:`\omega \sim U(1, 2)`, :math:`\phi \sim U(0,
      2\pi)`); :math:`p` random pairs :math:`i_r \ne j_r`, :math:`|\beta'_r| \sim U(0.25,
      0.5)`; per-level slopes :math:`\delta_{k,l} \sim N(0, 0.5^2)` (centred) on a random
      :math:`z_{j_k}`.
    - ``"mixed"``: :math:`f = \mathrm{std}[\sum_F \sqrt{w_F}\, \mathrm{std}[f_F]]` over the
      three families, with independent draws :math:`f_F` and weights :math:`w \sim
      \mathrm{Dirichlet}(1, 1, 1)`.

    With three independent draws :math:`f_0, h, f_e` from the family (in this order):

    - baseline :math:`\mu_0(x) = \mathrm{std}[f_0](x)` (mean 0, sd 1 over the table);
    - effect :math:`\tau(x) = a\,(1 + \eta\, \mathrm{std}[h](x))` with :math:`a` =
      ``effect_size`` and :math:`\eta` = ``heterogeneity``: mean :math:`a` and standard
      deviation :math:`|a|\eta` over the table; :math:`\mu_1 = \mu_0 + \tau`;
    - propensity :math:`e(x) = \varepsilon + (1 - 2\varepsilon)\,\sigma(\kappa\, g(x))`
      with :math:`g = \mathrm{std}[\mathrm{std}[f_0] + \mathrm{std}[f_e]]`, :math:`\kappa` =
      ``confounding``, :math:`\varepsilon` = ``overlap`` and :math:`\sigma` the logistic
      function. :math:`g` shares :math:`f_0` (correlation about 0.7 with :math:`\mu_0`), so
      units with a high baseline are treated more often and the naive difference in means
      overestimates the effect; :math:`\kappa = 0` is a randomized experiment
      (:math:`e = 0.5`), and :math:`e(x) \in [\varepsilon, 1 - \varepsilon]` always;
    - then ``n`` distinct rows are drawn uniformly without replacement,
      :math:`t \sim \mathrm{Bernoulli}(e(x))` and :math:`y = \mu_t(x) + \nu\,\epsilon`,
      :math:`\epsilon \sim N(0, 1)`, :math:`\nu` = ``noise``.

    The world is drawn before the rows and standardized on the whole table, so a seed's
    surfaces do not depend on ``n``: two samples of one seed agree on the rows they share.

    Parameters
    ----------
    n : int or None, default=4000
        Number of rows drawn (without replacement) from the covariate table; None takes all
        of them (in random order). Must not exceed the table (Hillstrom: 64,000; Jobs: 3212).
    covariates : {"hillstrom", "jobs"} or pandas.DataFrame, default="hillstrom"
        The real covariates. ``"hillstrom"``: the customers of
        :func:`~causalmim.datasets.load_hillstrom`, columns ``recency, history, mens, womens,
        zip_code, newbie, channel`` (``zip_code`` and ``channel`` categorical;
        ``history_segment`` is left out, a binning of ``history``). ``"jobs"``: the 3212 units
        of :func:`~causalmim.datasets.load_jobs` (``source="lalonde"``), columns ``age, educ,
        black, hispanic, married, nodegree, re75, u75`` (no categorical column; the flags are
        discrete features). A DataFrame: your own table (say a CRM or coupon table) with
        numeric, boolean, categorical or text columns (text becomes categorical) and no
        missing values.
    surface : {"linear", "step", "smooth", "mixed"}, default="mixed"
        Family of the baseline, effect and propensity functions (see above).
    effect_size : float, default=1.0
        Mean :math:`a` of :math:`\tau` over the table, in units of the baseline's standard
        deviation; 0 gives no effect at all.
    heterogeneity : float, default=0.5
        Standard deviation of :math:`\tau` relative to :math:`|a|` (its coefficient of
        variation); 0 gives a constant effect. Must be >= 0.
    confounding : float, default=1.0
        Standard deviation :math:`\kappa` of the propensity logit; 0 gives a randomized
        experiment. Must be >= 0.
    overlap : float, default=0.05
        Smallest propensity :math:`\varepsilon`, in ``[0, 0.5]``: every propensity lies in
        ``[overlap, 1 - overlap]`` (0.5 gives a randomized experiment).
    noise : float, default=1.0
        Standard deviation :math:`\nu` of the Gaussian outcome noise; must be >= 0.
    random_state : int, numpy.random.Generator, numpy.random.SeedSequence or None, default=None
        Seed of the world (the surfaces) and of the sample.
    as_frame : bool, default=True
        If True, ``X`` is a DataFrame that keeps the categorical columns as pandas
        categoricals and ``X_onehot`` a numeric DataFrame; otherwise both are the same
        float64 ndarray (one-hot).
    data_home : str or os.PathLike, default=None
        See :func:`~causalmim.datasets.get_data_home`.
    download_if_missing : bool, default=True
        Download a missing data file (checked against its SHA-256) instead of raising.

    Returns
    -------
    data : sklearn.utils.Bunch
        With fields

        - ``X``: covariates, shape ``(n, d)``: numeric columns as float64 and categorical
          columns as pandas categoricals with all the table's levels (feed it to a pipeline
          with a ``OneHotEncoder``); with ``as_frame=False``, the one-hot array;
        - ``X_onehot``: the numeric encoding the causalmim estimators take, float64: the
          numeric columns, then one 0/1 column per level of each categorical column (for
          Hillstrom, the columns of ``load_hillstrom().X``);
        - ``t``: binary treatment (int64), shape ``(n,)``; ``y``: observed outcome;
        - ``mu0``, ``mu1``: noiseless potential outcomes; ``tau``: true individual effect
          ``mu1 - mu0``; ``propensity``: true :math:`e(x)`; all shape ``(n,)``;
        - ``feature_names``: the columns of ``X``; ``onehot_feature_names``: those of
          ``X_onehot``; ``categorical_features``: the categorical columns of the table;
        - ``index``: the position of each row in the covariate table, shape ``(n,)``;
        - ``surface``: the family; ``covariates``: ``"hillstrom"``, ``"jobs"`` or
          ``"DataFrame"``.

    Raises
    ------
    ValueError
        If a parameter is out of range or the table unusable (the message says which).
    FileNotFoundError
        If the data file is missing and cannot be downloaded.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from causalmim.datasets import make_semi_synthetic
    >>> rng = np.random.default_rng(0)
    >>> table = pd.DataFrame({"spend": rng.gamma(2.0, 50.0, 500),
    ...                       "visits": rng.poisson(3, 500),
    ...                       "region": rng.choice(["north", "south", "west"], 500)})
    >>> data = make_semi_synthetic(200, covariates=table, surface="step", random_state=0)
    >>> data.X.dtypes.astype(str).tolist()
    ['float64', 'float64', 'category']
    >>> data.X_onehot.shape
    (200, 5)
    >>> bool(np.allclose(data.tau, data.mu1 - data.mu0))
    True
    >>> hill = make_semi_synthetic(covariates="hillstrom", random_state=0)  # doctest: +SKIP
    >>> hill.X.shape, hill.X_onehot.shape  # doctest: +SKIP
    ((4000, 7), (4000, 11))
    """
    if not (isinstance(surface, str) and surface in SURFACES):
        raise ValueError(
            f"surface must be one of {', '.join(map(repr, SURFACES))}; got {surface!r}."
        )
    effect_size = _check_real(effect_size, "effect_size")
    heterogeneity = _check_real(heterogeneity, "heterogeneity", low=0.0)
    confounding = _check_real(confounding, "confounding", low=0.0)
    if (
        isinstance(overlap, bool)
        or not isinstance(overlap, numbers.Real)
        or not (0.0 <= overlap <= 0.5)
    ):
        raise ValueError(
            f"overlap must be a number in [0, 0.5] (the smallest propensity; every propensity "
            f"is kept in [overlap, 1 - overlap]); got {overlap!r}. Use e.g. overlap=0.05."
        )
    if (
        isinstance(noise, bool)
        or not isinstance(noise, numbers.Real)
        or not (noise >= 0 and np.isfinite(noise))
    ):
        raise ValueError(
            f"noise is the standard deviation of the outcome noise and must be a finite "
            f"number >= 0; got {noise!r}. Use noise=0 for noiseless outcomes."
        )
    if n is not None:
        n = _check_int(n, "n", 1)
    try:
        rng = np.random.default_rng(random_state)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "random_state must be None, an int, a numpy Generator or SeedSequence; "
            f"got {random_state!r}."
        ) from exc
    table, source = _covariate_table(covariates, data_home, download_if_missing)
    size = len(table)
    if n is None:
        n = size
    elif n > size:
        raise ValueError(
            f"n={n} is larger than the covariate table ({source}: {size} rows); rows are "
            f"drawn without replacement, so pass n <= {size}, or n=None for all rows."
        )

    # The world, drawn and standardized on the whole table (independent of n).
    design = _Design(table)
    f0 = _draw(surface, design, rng)
    h = _draw(surface, design, rng)
    fe = _draw(surface, design, rng)
    logit = float(confounding) * _standardize(f0 + fe)
    e_all = overlap + (1.0 - 2.0 * overlap) * _sigmoid(logit)
    e_all = np.clip(e_all, overlap, 1.0 - overlap)  # only rounding: keep the bounds exact
    tau_all = effect_size * (1.0 + heterogeneity * h)

    # The sample.
    index = rng.choice(size, size=n, replace=False)
    mu0, tau, propensity = f0[index], tau_all[index], e_all[index]
    mu1 = mu0 + tau
    t = (rng.random(n) < propensity).astype(np.int64)
    y = np.where(t == 1, mu1, mu0) + float(noise) * rng.standard_normal(n)

    X = table.iloc[index].reset_index(drop=True)
    X_onehot = _one_hot(X)
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    onehot_names = list(X_onehot.columns)
    if as_frame:
        feature_names = list(X.columns)
    else:
        X = X_onehot = X_onehot.to_numpy(dtype=np.float64)
        feature_names = onehot_names
    return Bunch(
        X=X,
        X_onehot=X_onehot,
        t=t,
        y=y,
        mu0=mu0,
        mu1=mu1,
        tau=tau,
        propensity=propensity,
        feature_names=feature_names,
        onehot_feature_names=onehot_names,
        categorical_features=categorical,
        index=index.astype(np.int64),
        surface=surface,
        covariates=source,
    )
