"""The data home: where benchmark files live, and how missing ones are downloaded and checked."""

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import NamedTuple

__all__ = ["get_data_home", "REMOTE_FILES"]

logger = logging.getLogger(__name__)

ENV_VAR = "CAUSALMIM_DATA_HOME"


class RemoteFile(NamedTuple):
    """Where a benchmark file can be downloaded from, and its SHA-256 checksum."""

    urls: tuple
    sha256: str


_DRAGONNET = (
    "https://raw.githubusercontent.com/claudiashi57/dragonnet/"
    "2e51b2478854df389893bac85430bca5b70f5a26/dat/ihdp/csv"
)
_MYCAFFE = (
    "https://raw.githubusercontent.com/pmineiro/mycaffe/"
    "4251c42e227bde751760c040ea779d9052814e03/examples/crl"
)
_HILLSTROM_CSV = "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv"

_IHDP_CSV_SHA256 = (
    "2bdc8b94fdf2f669b1d3d49325fd9359d88418566545003867841312a1653411",
    "36db2f3d002250bc95e5214477718c939fbe7dfe8df573c4050d8b246d314042",
    "bd792ce0642468195b2c3f0cd4c521378d7d52d044f153e844d151a87e067518",
    "ac04602a2f052af1211347bcaff87f7bab356a4a7f42f8c6a81edede51549006",
    "8f9b3ef4b66e8f9dd240c9851233f4fb483c73c25b6d23c6459c666edb9cd691",
    "e05192794201c8a8fe1e4a88f12d3367d3d6b568eadb46365557661bff00712e",
    "246684bfc9e1258e5bdc59c3d1c13c0694a331d1f13026ff79f6c4605e6d3678",
    "6e88b890ee4ed6274b8ea4285500dd0865ab71e17010ee505f7e2a2d507c4511",
    "fe959d86a37be9278ef195fbf139b2b8af1b8246b3518208cd00b295d906a98f",
    "b9bce7e081f245b7689a3c2b5e4ed37162dca8cd596e0998b73ddc0ac92a4919",
    "877aab901d0f8cb772397b8571cc108d6be207e6623db91626487bff44cf2fbd",
    "7cfd1e04faf61ccefdb29e7dbd72bbbc40699d5ee45f6c3883acb9df8696c902",
    "47f03317fcdceab5dd6f744c40b9fd6f2b2630174dfefd9136c02bb6104aaeb3",
    "18fb8493c629192a1c745b54f1d804e4b1bc683926083f589c53919718078b5c",
    "8bba3f12aa5d886e4b0f8905305e55f653a9b86f49a1b230e8b3807d8ef4f509",
    "39a9103c2d46722c2b1dfe3c04ff20665dcab1ebbfe1368d2b45824c6ec99fdd",
    "9c76335fcd75a7abfcd1fa0a7be138ea9035f9b9f88ff85c451a0b758887aeac",
    "7dd08e1ffd86f24f77f33ba4c2ab4dd274662834abb7b43552bb68913532c7a6",
    "4e59786bef4620ae9d7ba8b98aed10c59b78d2539b59dd3da5fb129d78e07ef5",
    "09d6aa2a2e8814b6e42b150dc75ce6b3ff7214aa78e3102497acd7328dac5741",
    "75121901bdbc296898ca44965f66b73d27d90c81bef1140803b01222d4ff4c86",
    "85c04904bfdac213176208277076f505ee7709f66b233d00e871507d1232dff9",
    "377345ae83cedb4d9579f7cc1cc7a59f69674124068a67e207066179ad408b2f",
    "de5c59a039419711209a9c6eda5c78c9f01b2ae2dc90a921595e6553f58252d9",
    "9053caa10d044d3f1a88eddc36a4b3a7d05c70faf72f8733bf737154c074dc62",
    "20026afd7d4adaf29d682ffb1b634a3d59b5cf2eedf588fb4906741b47944e05",
    "19f38ef3fc315f7bde7c39bd004337cc62d818adc161fdcb489a53f71fbc4b09",
    "382a329007c9bcaecab9d0bbdbf4af194bcf897d3d0d1707226f348be53edfa1",
    "fd32cfb605175035942cf210a70eaa278c59fe228a00189e49c883ab50016c82",
    "4b03b9c361d4669161c366c0084d7e5bea704706db7157a325a26c7334c91733",
    "51dec3353c715d9f0d9977ab7a9a34db5eb958855264ab7dee70f35a943d603c",
    "b48d70e22fd09d7de5d5de5b5390e2665f2fa362460cb3c1059e6273122a891d",
    "e970a748ae8eecbbdb8bc0da7609a46856544cf2426c8ca39662f164a0694b5d",
    "06112f29eb48dc37a0cd2e2f9cd86e75960daad559d9fc2632f57882ca42bd22",
    "0c6ce4e0c44394dd76ec3c7449886268ec46130fd5938080d00f86d51f457d5d",
    "d5397770bdcfe7b0c7de15fb7aadb381a80928a4765198d7246d18f341da032f",
    "c3b0454acc65d0153422d098587d0ccc31fcdfd905b2e10b70445b137f327474",
    "c9bbe6e2b49f127d5d1a3eba677fc9c21e13028c6fb2c95806b2c4146652fd16",
    "42f421f74f1b80c8552c6c7ecb58815b23d76e6adbdb9c1d2c8f5910f81adeeb",
    "d2beb2569b6cfaee810b46541f9784b9275aed75e0540f4bc2c8c63c48baa3c1",
    "a456a61e671597eaea312e24693cdd26827b2a84702e805d70ef7ccc583b0ee0",
    "3c08bebb9c14ffa055885b603352a3fc55d4d48d9c4f492ad6fe217729cca587",
    "d434c4259803dd63e1b25462b3ba93a718e355f4df9c6fcad4f1e9419f24b4e7",
    "2ff1760a56b2cbb034e600f054b53c038b5e51398a08fcc1f455baf43c267238",
    "c2b97f60e5ef38711ca65c8e629426d8883094e3da0ba056c6f3890beec1a9c0",
    "518db06de13c497678510366c7fbde939e6e9eaa4eaefe02890de6689f91a4c4",
    "be191a4455865928197ec7d173b0fb30fdea4266c0ffe8270dd386e522d567f0",
    "731cba477da9bdd954cb8ac75566b233fc242034fbb700e8e8391142bc9f09b5",
    "0268f55995305df95adb997774cb9e04f9bc5b615f819b25b60bd2169667246c",
    "214f73b2945948b060ff2a789375aa0d1f67cddd19bf77ba656b7d0bd701f571",
)

#: Every file the loaders can download: path under the data home -> URLs (tried in order,
#: canonical source first, then a pinned mirror) and the SHA-256 the download must match.
#: Checksums are those recorded in the datasets' PROVENANCE files (see ``datasets/*.md``).
#: Files whose checksum is unknown (the official IHDP and Jobs *train* files) are not
#: downloaded: put them into the data home by hand to use them.
REMOTE_FILES = {
    "ihdp/ihdp_npci_1-100.test.npz": RemoteFile(
        (
            "http://www.fredjo.com/files/ihdp_npci_1-100.test.npz",
            "https://raw.githubusercontent.com/clinicalml/cfrnet/"
            "1313dc7216f70f2dd0d8931f019af2c46ef00e8a/data/ihdp_npci_1-100.test.npz",
        ),
        "a70a8acbcc4e8deb677cc9bf9e9dabeb17caaa37cdbb1d7ba06be7ffb929c41c",
    ),
    **{
        f"ihdp/csv/ihdp_npci_{i}.csv": RemoteFile(
            (f"{_DRAGONNET}/ihdp_npci_{i}.csv",), _IHDP_CSV_SHA256[i - 1]
        )
        for i in range(1, len(_IHDP_CSV_SHA256) + 1)
    },
    "jobs/jobs_DW_bin.new.10.test.npz": RemoteFile(
        ("http://www.fredjo.com/files/jobs_DW_bin.new.10.test.npz",),
        "11c198167ef322af50e48eb9d48857d6a76d8dea5eadfb2d60d4a82a6357e39f",
    ),
    "jobs/lalonde/nsw_treated.txt": RemoteFile(
        ("https://users.nber.org/~rdehejia/data/nsw_treated.txt", f"{_MYCAFFE}/nsw_treated.txt"),
        "ab65cd58de17a78b692e66e4d714219259ac180428f24c42ddbb928cfb1820fe",
    ),
    "jobs/lalonde/nsw_control.txt": RemoteFile(
        ("https://users.nber.org/~rdehejia/data/nsw_control.txt", f"{_MYCAFFE}/nsw_control.txt"),
        "8fd745ed2c3426bb77e34b395fb84d456d346ba545af58a65b4963160b0699fd",
    ),
    "jobs/lalonde/psid_controls.txt": RemoteFile(
        (
            "https://users.nber.org/~rdehejia/data/psid_controls.txt",
            f"{_MYCAFFE}/psid_controls.txt",
        ),
        "73ffcdd8feb7f965f8e1de9bfdb80a095542c7a95ce7f56b2e2b2a9716e858cc",
    ),
    f"hillstrom/{_HILLSTROM_CSV}": RemoteFile(
        (
            f"http://www.minethatdata.com/{_HILLSTROM_CSV}",
            "https://raw.githubusercontent.com/W-Tran/uplift-modelling/"
            f"0b9b1787a33a0f67bd66dda6910b08fa67c1564d/data/hillstrom/{_HILLSTROM_CSV}",
        ),
        "27bab8c5d3669f26ec08ebb50a0a78317542f29501156f2e2af6781fab4cd7e2",
    ),
}

#: Where the files without a known checksum come from (shown in error messages only).
MANUAL_SOURCES = {
    "ihdp/ihdp_npci_1-100.train.npz": "http://www.fredjo.com/files/ihdp_npci_1-100.train.npz",
    "jobs/jobs_DW_bin.new.10.train.npz": "http://www.fredjo.com/files/jobs_DW_bin.new.10.train.npz",
}


def get_data_home(data_home=None):
    """Return the folder where causalmim looks for (and downloads) benchmark data.

    The folder is, in order of precedence: ``data_home`` when given, the environment variable
    ``CAUSALMIM_DATA_HOME`` when set, else ``$XDG_CACHE_HOME/causalmim`` (``~/.cache/causalmim``
    when ``XDG_CACHE_HOME`` is unset). It holds one sub-folder per data set (``ihdp/``,
    ``jobs/``, ``hillstrom/``) laid out as the files are distributed (see ``datasets/*.md``).
    The folder is not created here; a download creates what it needs.

    Parameters
    ----------
    data_home : str or os.PathLike, default=None
        An explicit folder; ``~`` is expanded.

    Returns
    -------
    pathlib.Path
        The data home.
    """
    if data_home is None:
        data_home = os.environ.get(ENV_VAR) or None
    if data_home is None:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        data_home = os.path.join(cache, "causalmim")
    return Path(data_home).expanduser()


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url, dest, sha256, timeout=60):
    """Download ``url`` to ``dest`` atomically; OSError if it fails or the checksum differs."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as fh, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                fh.write(block)
        if digest.hexdigest() != sha256:
            raise OSError(f"checksum mismatch: got sha256 {digest.hexdigest()}, expected {sha256}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _missing_message(relpath, home, why):
    target = home / relpath
    if relpath in REMOTE_FILES:
        remote = REMOTE_FILES[relpath]
        source = f"Download it from {remote.urls[0]} (sha256 {remote.sha256})"
    elif relpath in MANUAL_SOURCES:
        source = f"Download it from {MANUAL_SOURCES[relpath]}"
    else:
        source = "Get it from the source listed in the dataset card"
    return (
        f"The data file '{relpath}' is missing from the causalmim data home '{home}' ({why}). "
        f"{source} and save it as '{target}', or point the environment variable {ENV_VAR} "
        "(or the data_home argument) to a folder that has it."
    )


def fetch(relpath, data_home=None, download_if_missing=True):
    """Return the path of ``relpath`` under the data home, downloading it when missing.

    Parameters
    ----------
    relpath : str
        Path relative to the data home, with forward slashes (a key of :data:`REMOTE_FILES`
        for downloads).
    data_home : str or os.PathLike, default=None
        See :func:`get_data_home`.
    download_if_missing : bool, default=True
        Download a missing file (checked against its SHA-256) instead of raising.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        If the file is missing and cannot be downloaded; the message says where to put it.
    """
    home = get_data_home(data_home)
    path = home / relpath
    if path.is_file():
        return path
    if not download_if_missing:
        raise FileNotFoundError(_missing_message(relpath, home, "download_if_missing=False"))
    if relpath not in REMOTE_FILES:
        raise FileNotFoundError(_missing_message(relpath, home, "no verified download source"))
    remote = REMOTE_FILES[relpath]
    errors = []
    for url in remote.urls:
        logger.info("Downloading %s to %s", url, path)
        try:
            _download(url, path, remote.sha256)
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, cut-offs
            logger.warning("Download of %s failed: %s", url, exc)
            errors.append(f"{url}: {exc}")
            continue
        return path
    raise FileNotFoundError(
        _missing_message(relpath, home, "download failed: " + "; ".join(errors))
    )
