"""Jobs (LaLonde 1986 NSW experiment + PSID comparison group; the CFRNet protocol)."""

import numbers

import numpy as np
from sklearn.utils import Bunch

from ._home import _missing_message, fetch, get_data_home

__all__ = ["load_jobs"]

NSW_TREATED = "jobs/lalonde/nsw_treated.txt"
NSW_CONTROL = "jobs/lalonde/nsw_control.txt"
PSID_CONTROLS = "jobs/lalonde/psid_controls.txt"
OFFICIAL_TRAIN = "jobs/jobs_DW_bin.new.10.train.npz"
OFFICIAL_TEST = "jobs/jobs_DW_bin.new.10.test.npz"

# Column layouts of the Dehejia-Wahba text files (whitespace separated, no header).
NSW_COLUMNS = ("treat", "age", "educ", "black", "hispanic", "married", "nodegree", "re75", "re78")
PSID_COLUMNS = (
    "treat", "age", "educ", "black", "hispanic", "married", "nodegree", "re74", "re75", "re78",
)  # fmt: skip
COMMON = ("age", "educ", "black", "hispanic", "married", "nodegree", "re75")
FEATURE_NAMES = (*COMMON, "u75")
SOURCES = ("auto", "official", "lalonde")


def _read_table(path, columns):
    table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if table.shape[1] != len(columns):
        raise ValueError(
            f"{path} has {table.shape[1]} columns, expected {len(columns)}: {', '.join(columns)}."
        )
    return {name: table[:, j] for j, name in enumerate(columns)}


def _lalonde_units(home, download_if_missing):
    """The 3212 Jobs units: NSW treated, NSW control, then PSID controls."""
    parts = [
        (_read_table(fetch(NSW_TREATED, home, download_if_missing), NSW_COLUMNS), 1),
        (_read_table(fetch(NSW_CONTROL, home, download_if_missing), NSW_COLUMNS), 1),
        (_read_table(fetch(PSID_CONTROLS, home, download_if_missing), PSID_COLUMNS), 0),
    ]
    x = np.vstack([np.column_stack([part[name] for name in COMMON]) for part, _ in parts])
    re75 = x[:, COMMON.index("re75")]
    x = np.column_stack([x, (re75 == 0).astype(np.float64)])
    t = np.concatenate([part["treat"] for part, _ in parts]).astype(np.int64)
    e = np.concatenate([np.full(len(part["treat"]), flag, np.int64) for part, flag in parts])
    yf = (np.concatenate([part["re78"] for part, _ in parts]) > 0).astype(np.float64)
    return x, t, yf, e


def _stratified_splits(strata, n_splits, test_size, random_state):
    """Seeded train/test index pairs; each stratum gets round(test_size * size) test units."""
    rng = np.random.default_rng(random_state)
    labels = np.unique(strata)
    for _ in range(n_splits):
        is_test = np.zeros(strata.size, bool)
        for label in labels:
            members = np.flatnonzero(strata == label)
            k = int(np.floor(test_size * members.size + 0.5))
            if members.size >= 2:
                k = min(max(k, 1), members.size - 1)
            is_test[rng.choice(members, size=k, replace=False)] = True
        yield np.flatnonzero(~is_test), np.flatnonzero(is_test)


def _part(x, t, yf, e, index):
    return Bunch(x=x[index], t=t[index], yf=yf[index], e=e[index], index=index)


def _official_splits(home, n_splits):
    arrays = {}
    for name, rel in (("train", OFFICIAL_TRAIN), ("test", OFFICIAL_TEST)):
        with np.load(home / rel) as npz:
            arrays[name] = {key: npz[key] for key in ("x", "t", "yf", "e", "I") if key in npz}
    available = min(arrays[name]["t"].shape[-1] for name in arrays)
    if n_splits > available:
        raise ValueError(f"The official Jobs files have {available} splits; n_splits={n_splits}.")
    d = arrays["train"]["x"].shape[1]
    feature_names = [f"x{j}" for j in range(d)]
    out = []
    for i in range(n_splits):
        parts = {}
        for name, arr in arrays.items():
            parts[name] = Bunch(
                x=np.ascontiguousarray(arr["x"][..., i]),
                t=arr["t"][:, i].astype(np.int64),
                yf=np.ascontiguousarray(arr["yf"][:, i], dtype=np.float64),
                e=arr["e"][:, i].astype(np.int64),
                index=arr["I"][:, i].astype(np.int64) if "I" in arr else None,
            )
        out.append(Bunch(split=i, feature_names=feature_names, source="official", **parts))
    return out


def load_jobs(
    *,
    data_home=None,
    n_splits=10,
    test_size=0.2,
    random_state=0,
    source="auto",
    download_if_missing=True,
):
    """Load the Jobs benchmark (Shalit et al. 2017) as train/test splits.

    The 3212 units are the 722 units of LaLonde's (1986) NSW experiment (297 treated,
    425 control; flag ``e = 1``) followed by the 2490 PSID comparison units (control,
    ``e = 0``), as distributed by Dehejia and Wahba. The outcome ``yf`` is employment in 1978
    (``re78 > 0``). Score models on ``e == 1`` units only, with
    :func:`causalmim.metrics.att_error` and :func:`causalmim.metrics.policy_risk`.

    Covariates (``source="lalonde"``): the seven covariates present in all three files,
    ``age, educ, black, hispanic, married, nodegree, re75`` (``re75``: 1975 earnings in USD,
    unscaled), plus ``u75 = 1[re75 == 0]``. Earnings in 1974 (``re74``) are left out because
    the full NSW files (722 units) do not have them; so the covariates differ from the 17
    (standardized) ones of the official CFRNet files. Continuous covariates are in their
    original units: scale them inside the model pipeline (fitted on the train part).

    Splits (``source="lalonde"``): ``n_splits`` random train/test splits, stratified on the
    three groups (treated, NSW control, PSID control): each group puts
    ``round(test_size * size)`` units in the test part (642 of 3212 for the default 0.2, as in
    the official files). Split ``i`` only depends on ``random_state`` and ``i``, not on
    ``n_splits``.

    Parameters
    ----------
    data_home : str or os.PathLike, default=None
        See :func:`get_data_home`.
    n_splits : int, default=10
        Number of splits.
    test_size : float, default=0.2
        Fraction of each group put in the test part, in (0, 1).
    random_state : int, numpy.random.Generator or None, default=0
        Seed of the splits; the default reproduces the same splits everywhere.
    source : {"auto", "official", "lalonde"}, default="auto"
        ``"official"`` reads the CFRNet files ``jobs/jobs_DW_bin.new.10.train.npz`` and
        ``jobs/jobs_DW_bin.new.10.test.npz`` (their 10 fixed splits, of which the first
        ``n_splits`` are returned; ``test_size`` and ``random_state`` are ignored; covariates
        are named ``x0``..``x16``). ``"lalonde"`` builds the protocol from the raw files in
        ``jobs/lalonde/``. ``"auto"`` uses the official files when both are present, else the
        raw ones.
    download_if_missing : bool, default=True
        Download missing raw files (checked against their SHA-256) instead of raising. The
        official train file has no published checksum and is never downloaded.

    Returns
    -------
    list of sklearn.utils.Bunch
        One per split, each with ``split`` (0-based index), ``feature_names``, ``source``
        (``"lalonde"`` or ``"official"``) and ``train``, ``test`` Bunches holding ``x``
        (n, d) float64, ``t`` (n,) int64, ``yf`` (n,) float64 in {0, 1}, ``e`` (n,) int64
        and ``index`` (n,) int64, the position of each unit among the 3212 (None when the
        official files do not say).

    Raises
    ------
    FileNotFoundError
        If files are missing and cannot be downloaded (the message says where to put them).

    Examples
    --------
    >>> from causalmim.datasets import load_jobs
    >>> split = load_jobs()[0]  # doctest: +SKIP
    >>> split.train.x.shape, split.test.x.shape  # doctest: +SKIP
    ((2570, 8), (642, 8))
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(map(repr, SOURCES))}, got {source!r}.")
    if isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral) or n_splits < 1:
        raise ValueError(f"n_splits must be an integer >= 1, got {n_splits!r}.")
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}.")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be a float in (0, 1), got {test_size!r}.")
    home = get_data_home(data_home)

    official = all((home / rel).is_file() for rel in (OFFICIAL_TRAIN, OFFICIAL_TEST))
    if source == "official" or (source == "auto" and official):
        if not official:
            missing = OFFICIAL_TRAIN if (home / OFFICIAL_TEST).is_file() else OFFICIAL_TEST
            raise FileNotFoundError(
                _missing_message(missing, home, "needed by source='official'")
                + " Or use source='lalonde' (built from the raw LaLonde files)."
            )
        return _official_splits(home, int(n_splits))

    x, t, yf, e = _lalonde_units(home, download_if_missing)
    strata = 2 * e + t  # 3: treated, 2: NSW control, 0: PSID control
    splits = _stratified_splits(strata, int(n_splits), float(test_size), random_state)
    return [
        Bunch(
            split=i,
            train=_part(x, t, yf, e, train),
            test=_part(x, t, yf, e, test),
            feature_names=list(FEATURE_NAMES),
            source="lalonde",
        )
        for i, (train, test) in enumerate(splits)
    ]
