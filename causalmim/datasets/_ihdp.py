"""IHDP-100 (Hill 2011; the CFRNet files of Shalit et al. 2017)."""

import numbers

import numpy as np
from sklearn.utils import Bunch

from ._home import MANUAL_SOURCES, fetch, get_data_home

__all__ = ["load_ihdp"]

TEST = "ihdp/ihdp_npci_1-100.test.npz"
TRAIN = "ihdp/ihdp_npci_1-100.train.npz"
RECONSTRUCTED = "ihdp/ihdp_npci_1-50.train.reconstructed.npz"
CSV = "ihdp/csv/ihdp_npci_{}.csv"
N_CSV = 50  # replications published as full CSV files
KEYS = ("x", "t", "yf", "ycf", "mu0", "mu1")
CSV_COLUMNS = ("t", "yf", "ycf", "mu0", "mu1")  # then x1..x25
FEATURE_NAMES = tuple(f"x{j}" for j in range(1, 26))


def _read_npz(path):
    """Read the six arrays of an IHDP npz file once (replications on the last axis)."""
    with np.load(path) as npz:
        return {key: npz[key] for key in KEYS}


def _n_replications(arrays):
    return arrays["t"].shape[-1]


def _replication(arrays, i):
    """One replication (1-based) as a Bunch of contiguous arrays, treatment as int64."""
    out = Bunch(**{key: np.ascontiguousarray(arrays[key][..., i - 1]) for key in KEYS})
    out.t = out.t.astype(np.int64)
    return out


def _ranges(indices):
    """Format integers compactly: [1, 2, 3, 7] -> '1-3, 7'."""
    indices = sorted(set(indices))
    if not indices:
        return "none"
    parts = []
    start = prev = indices[0]
    for cur in [*indices[1:], None]:
        if cur is None or cur != prev + 1:
            parts.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = cur
        prev = cur
    return ", ".join(parts)


def _check_replications(replications):
    if replications is None:
        return None
    if isinstance(replications, numbers.Integral):
        replications = [replications]
    try:
        requested = list(replications)
    except TypeError:
        raise ValueError(
            f"replications must be None or an iterable of 1-based integers, got {replications!r}."
        ) from None
    for i in requested:
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or i < 1:
            raise ValueError(f"IHDP replications are integers >= 1, got {i!r}.")
    if not requested:
        raise ValueError("replications is empty.")
    return [int(i) for i in dict.fromkeys(requested)]


def _select(requested, available, home, limit):
    """The requested replications, or all ``available``; ValueError naming what is missing."""
    available = sorted(available)
    if requested is None:
        return available
    missing = [i for i in requested if i not in set(available)]
    if not missing:
        return requested
    hint = ""
    if any(i <= limit for i in missing):
        hint += (
            f" The CSV files {CSV.format('{i}')} for i in 1-{N_CSV} give the train split of "
            "replications 1-50 (downloaded when download_if_missing=True)."
        )
    if any(i > limit for i in missing):
        hint += (
            f" Replications beyond {limit} need the official train file: download "
            f"{MANUAL_SOURCES[TRAIN]} into '{home / 'ihdp'}'."
        )
    raise ValueError(
        f"IHDP replication(s) {_ranges(missing)} not available in the data home '{home}'; "
        f"available: {_ranges(available)}.{hint}"
    )


def _split_csv(path, test, i):
    """Split the full CSV of replication ``i`` into (train, test) against the official test rows."""
    full = np.loadtxt(path, delimiter=",", dtype=np.float64)
    if full.ndim != 2 or full.shape[1] != len(CSV_COLUMNS) + len(FEATURE_NAMES):
        raise ValueError(f"{path} does not have the 30 IHDP columns (shape {full.shape}).")
    test_rows = np.column_stack(
        [test[key][:, i - 1] for key in CSV_COLUMNS] + [test["x"][..., i - 1]]
    )
    test_keys = {row.tobytes() for row in test_rows}
    is_test = np.fromiter((row.tobytes() in test_keys for row in full), bool, len(full))
    if is_test.sum() != len(test_rows):
        raise ValueError(
            f"{path}: {int(is_test.sum())} rows match the {len(test_rows)} rows of the official "
            f"test split of replication {i}; the file is not IHDP-100 replication {i}."
        )
    rows = full[~is_test]
    train = {key: rows[:, j] for j, key in enumerate(CSV_COLUMNS)}
    train["x"] = rows[:, len(CSV_COLUMNS) :]
    return _replication({k: v[..., None] for k, v in train.items()}, 1)


def load_ihdp(replications=None, *, data_home=None, download_if_missing=True):
    """Load replications of the IHDP-100 benchmark with their official train/test splits.

    Each replication has 747 units with 25 covariates (columns 0-5 continuous, 6-24 binary;
    column 13 is coded {1, 2} as in the original files), a binary treatment, the factual and
    counterfactual outcomes and the noiseless potential outcomes ``mu0``, ``mu1`` of response
    surface B of Hill (2011). The split is the CFRNet one: 672 train and 75 test units.

    Files are read from the data home (see :func:`get_data_home`), first found first:

    1. the official ``ihdp/ihdp_npci_1-100.train.npz`` and ``ihdp_npci_1-100.test.npz``
       (replications 1-100);
    2. the official test file and ``ihdp/ihdp_npci_1-50.train.reconstructed.npz`` (1-50);
    3. the official test file and the full per-replication files ``ihdp/csv/ihdp_npci_{i}.csv``
       (1-50): the rows that equal a row of the official test split are the test units, the
       other rows, in file order, the train units.

    Routes 2 and 3 give the same values as route 1; only the order of train rows may differ.
    When nothing is found, route 3's files are downloaded and checked against their SHA-256.

    Parameters
    ----------
    replications : int, iterable of int or None, default=None
        1-based replication indices; None loads every replication with both a train and a test
        split in the data home (1-50 with the shared data, 1-100 with the official train file).
    data_home : str or os.PathLike, default=None
        See :func:`get_data_home`.
    download_if_missing : bool, default=True
        Download missing files (IHDP test npz and CSVs) instead of raising.

    Returns
    -------
    list of sklearn.utils.Bunch
        One per replication, in the requested order, each with ``replication`` (int),
        ``feature_names`` (the 25 names ``x1``..``x25``) and ``train`` and ``test`` Bunches of
        numpy arrays ``x`` (n, 25) float64, ``t`` (n,) int64, ``yf``, ``ycf``, ``mu0``,
        ``mu1`` (n,) float64. The true individual effect is ``mu1 - mu0``.

    Raises
    ------
    ValueError
        If a requested replication is not available (the message lists those that are).
    FileNotFoundError
        If the files are missing and cannot be downloaded (the message says where to put them).

    Examples
    --------
    >>> from causalmim.datasets import load_ihdp
    >>> rep = load_ihdp(replications=[1])[0]  # doctest: +SKIP
    >>> rep.train.x.shape, rep.test.x.shape  # doctest: +SKIP
    ((672, 25), (75, 25))
    """
    requested = _check_replications(replications)
    home = get_data_home(data_home)
    have = {rel: (home / rel).is_file() for rel in (TEST, TRAIN, RECONSTRUCTED)}

    for train_file in (TRAIN, RECONSTRUCTED):
        if have[TEST] and have[train_file]:
            test, train = _read_npz(home / TEST), _read_npz(home / train_file)
            n = min(_n_replications(test), _n_replications(train))
            chosen = _select(requested, range(1, n + 1), home, limit=n)
            return [
                Bunch(
                    replication=i,
                    train=_replication(train, i),
                    test=_replication(test, i),
                    feature_names=list(FEATURE_NAMES),
                )
                for i in chosen
            ]

    # Route 3: official test split + full CSVs.
    test = _read_npz(fetch(TEST, home, download_if_missing))
    n_test = _n_replications(test)
    candidates = range(1, min(N_CSV, n_test) + 1)
    if download_if_missing:
        available = list(candidates)
    else:
        available = [i for i in candidates if (home / CSV.format(i)).is_file()]
        if not available:
            raise FileNotFoundError(
                f"No IHDP train split in the data home '{home}' (download_if_missing=False): put "
                f"the official {TRAIN} ({MANUAL_SOURCES[TRAIN]}) or the files {CSV.format('{i}')} "
                f"for i in 1-{N_CSV} there, or set CAUSALMIM_DATA_HOME to a folder that has them."
            )
    chosen = _select(requested, available, home, limit=len(candidates))
    out = []
    for i in chosen:
        train = _split_csv(fetch(CSV.format(i), home, download_if_missing), test, i)
        out.append(
            Bunch(
                replication=i,
                train=train,
                test=_replication(test, i),
                feature_names=list(FEATURE_NAMES),
            )
        )
    return out
