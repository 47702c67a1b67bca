"""Hillstrom MineThatData e-mail campaign (2008): a randomized three-arm uplift benchmark."""

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._home import _HILLSTROM_CSV, fetch, get_data_home

__all__ = ["load_hillstrom"]

CSV = f"hillstrom/{_HILLSTROM_CSV}"
ARMS = ("No E-Mail", "Mens E-Mail", "Womens E-Mail")
OUTCOMES = ("visit", "conversion", "spend")
COVARIATES = ("recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie",
              "channel")  # fmt: skip
CATEGORICAL = ("zip_code", "channel")
# binary problems: (arms kept, arms coded as treated)
TREATMENTS = {
    "multi": (ARMS, None),
    "any": (ARMS, ARMS[1:]),
    "mens": (ARMS[:2], ARMS[1:2]),
    "womens": (ARMS[::2], ARMS[2:]),
}


def _read(path):
    frame = pd.read_csv(path)
    expected = set(COVARIATES) | {"segment"} | set(OUTCOMES)
    if set(frame.columns) != expected:
        raise ValueError(
            f"{path} does not have the Hillstrom columns; got {list(frame.columns)}, "
            f"expected {sorted(expected)}."
        )
    unknown = set(frame["segment"].unique()) - set(ARMS)
    if unknown:
        raise ValueError(f"{path}: unknown segment values {sorted(unknown)}.")
    frame["segment"] = pd.Categorical(frame["segment"], categories=list(ARMS))
    for name in CATEGORICAL:
        frame[name] = pd.Categorical(frame[name], categories=sorted(frame[name].unique()))
    return frame


def load_hillstrom(
    *, data_home=None, outcome="visit", treatment="multi", as_frame=True, download_if_missing=True
):
    """Load the Hillstrom MineThatData e-mail experiment (64,000 customers, 3 arms).

    Customers who bought in the last twelve months were randomized to a Mens merchandise
    e-mail, a Womens merchandise e-mail, or no e-mail, and followed for two weeks
    (Hillstrom 2008). Score uplift models with :func:`causalmim.metrics.qini_coefficient` and
    :func:`causalmim.metrics.auuc`.

    Parameters
    ----------
    data_home : str or os.PathLike, default=None
        See :func:`get_data_home`.
    outcome : {"visit", "conversion", "spend"}, default="visit"
        The outcome returned as ``y`` (all three stay in ``frame``).
    treatment : {"multi", "any", "mens", "womens"}, default="multi"
        How ``t`` is coded. ``"multi"``: all customers, ``t`` = 0 (No E-Mail), 1 (Mens E-Mail)
        or 2 (Womens E-Mail). ``"any"``: all customers, ``t`` = 1 for either e-mail.
        ``"mens"`` / ``"womens"``: only the customers of that arm (``t = 1``) and of the
        No E-Mail arm (``t = 0``), a binary randomized uplift problem.
    as_frame : bool, default=True
        If True, ``X`` is a DataFrame and ``t``, ``y`` are Series; otherwise ndarrays.
    download_if_missing : bool, default=True
        Download the CSV (checked against its SHA-256) when it is missing instead of raising.

    Returns
    -------
    data : sklearn.utils.Bunch
        With fields

        - ``frame``: the selected rows of the original table, a DataFrame with the covariates
          ``recency, history_segment, history, mens, womens, zip_code, newbie, channel``, the
          arm ``segment`` (categorical: "No E-Mail", "Mens E-Mail", "Womens E-Mail") and the
          outcomes ``visit``, ``conversion`` (0/1) and ``spend`` (USD);
        - ``X``: numeric covariates (float64): ``recency, history, mens, womens, newbie`` and
          one-hot columns of ``zip_code`` and ``channel``. ``history_segment`` is left out
          because it is a binning of ``history``;
        - ``t``: treatment (int64) coded as ``treatment`` says; ``y``: the chosen outcome
          (float64);
        - ``feature_names``: the columns of ``X``; ``treatment_names``: the arm of each
          value of ``t``; ``outcome``: the name of ``y``.

    Examples
    --------
    >>> from causalmim.datasets import load_hillstrom
    >>> data = load_hillstrom(treatment="mens", outcome="visit")  # doctest: +SKIP
    >>> data.X.shape  # doctest: +SKIP
    (42613, 11)
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}; got {outcome!r}.")
    if treatment not in TREATMENTS:
        raise ValueError(f"treatment must be one of {', '.join(TREATMENTS)}; got {treatment!r}.")
    frame = _read(fetch(CSV, get_data_home(data_home), download_if_missing))

    kept, treated = TREATMENTS[treatment]
    if len(kept) < len(ARMS):
        frame = frame.loc[frame["segment"].isin(kept)].reset_index(drop=True)
        frame["segment"] = frame["segment"].cat.remove_unused_categories()
    arm = frame["segment"].cat.codes.to_numpy()
    if treated is None:
        t = arm.astype(np.int64)
        treatment_names = list(kept)
    else:
        t = frame["segment"].isin(treated).to_numpy().astype(np.int64)
        treatment_names = [kept[0], " or ".join(treated)]

    numeric = frame[["recency", "history", "mens", "womens", "newbie"]].astype(np.float64)
    dummies = pd.get_dummies(frame[list(CATEGORICAL)], dtype=np.float64)
    X = pd.concat([numeric, dummies], axis=1)
    y = frame[outcome].astype(np.float64)
    feature_names = list(X.columns)
    if as_frame:
        t = pd.Series(t, name="t", index=frame.index)
        y = y.rename(outcome)
    else:
        X, y = X.to_numpy(), y.to_numpy()
    return Bunch(
        frame=frame,
        X=X,
        t=t,
        y=y,
        feature_names=feature_names,
        treatment_names=treatment_names,
        outcome=outcome,
    )
