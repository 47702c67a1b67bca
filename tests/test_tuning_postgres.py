"""Tuning across machines: a study shared through a real PostgreSQL server.

The module starts a throwaway server (``initdb`` + ``pg_ctl``; as the user ``nobody`` when the
tests run as root, since PostgreSQL refuses root) on 127.0.0.1 and a free port, gives each test
its own database, and runs the worker subprocesses of ``test_tuning`` against it. Where no
server can be found or installed (Debian's ``postgresql`` package, tried as root), or the
driver that SQLAlchemy uses for ``postgresql://`` URLs is missing, the tests are skipped with
the reason (shown by ``-ra``). The server's ``SELECT version()`` is listed at the end of the
run (see ``conftest.py``).
"""

import fcntl
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import sqlalchemy
from optuna.trial import TrialState
from test_tuning import _trials, _worker

INSTALL_TIMEOUT = 300  # seconds for apt-get, only where no PostgreSQL is installed
NEEDED = ("initdb", "pg_ctl", "postgres")


# --------------------------------------------------------------------------- the server
def _version_key(path):
    match = re.search(r"/postgresql/(\d+)(?:\.(\d+))?/", path)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else (0, 0)


def _find_bindir():
    """The folder with initdb, pg_ctl and postgres (PATH first, then Debian's layout)."""
    found = shutil.which("pg_ctl")
    if found:
        bindir = os.path.dirname(os.path.realpath(found))
        if all(os.access(os.path.join(bindir, name), os.X_OK) for name in NEEDED):
            return bindir
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if all(os.access(os.path.join(bindir, name), os.X_OK) for name in NEEDED):
            return bindir
    return None


def _install():
    """Install Debian's ``postgresql`` package (root only); returns None or why it failed."""
    if os.geteuid() != 0:
        return "not root, so the postgresql package cannot be installed"
    if not shutil.which("apt-get"):
        return "no apt-get to install the postgresql package with"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # pytest-xdist workers may both get here: one installs, the other waits and finds it
    lock_path = os.path.join(tempfile.gettempdir(), "causalmim-postgresql-install.lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _find_bindir():
            return None
        deadline = time.monotonic() + INSTALL_TIMEOUT
        last = ""
        for command in (["apt-get", "install", "-y", "-q", "postgresql"],
                        ["apt-get", "update", "-q"],
                        ["apt-get", "install", "-y", "-q", "postgresql"]):
            left = deadline - time.monotonic()
            if left <= 0:
                return f"apt-get did not install postgresql within {INSTALL_TIMEOUT} s"
            try:
                done = subprocess.run(command, env=env, capture_output=True, text=True,
                                      timeout=left)
            except subprocess.TimeoutExpired:
                return f"apt-get did not install postgresql within {INSTALL_TIMEOUT} s"
            last = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
            last = f"'{' '.join(command)}' exited with {done.returncode}: {last[0]}"
            if command[1] == "install" and done.returncode == 0 and _find_bindir():
                return None
        return f"apt-get could not install postgresql ({last})"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    """A PostgreSQL server of its own in a temporary folder (trust authentication)."""

    def __init__(self, bindir):
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        self.base = tempfile.mkdtemp(prefix="causalmim-pg-")
        self.data = os.path.join(self.base, "data")
        self.log = os.path.join(self.base, "server.log")
        self.port = None
        if self.as_root:  # the server runs as nobody: it must own its folder
            os.chmod(self.base, 0o755)
            shutil.chown(self.base, "nobody")

    def _run(self, *args, timeout=120):
        command = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "nobody", "--", *command]
        return subprocess.run(command, cwd=self.base, capture_output=True, text=True,
                              timeout=timeout)

    def _log_tail(self):
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return ""

    def start(self):
        done = self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
                         "-E", "UTF8", "--locale=C", "--no-sync")
        if done.returncode:
            raise RuntimeError(f"initdb failed:\n{done.stdout}{done.stderr}")
        for _ in range(5):  # another process may take the free port first
            self.port = _free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} "
                       "-c fsync=off -c synchronous_commit=off -c max_connections=200")
            done = self._run("pg_ctl", "-D", self.data, "-l", self.log, "-o", options,
                             "-w", "-t", "60", "start")
            if done.returncode == 0:
                return self
        raise RuntimeError(
            f"pg_ctl start failed:\n{done.stdout}{done.stderr}\n{self._log_tail()}")

    def stop(self):
        try:
            if os.path.exists(os.path.join(self.data, "postmaster.pid")):
                self._run("pg_ctl", "-D", self.data, "stop", "-m", "immediate", "-w",
                          timeout=60)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, dbname):
        # the README's form: SQLAlchemy picks its default PostgreSQL driver
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def sql(self, statement, dbname="postgres"):
        """Run one statement outside a transaction; returns the first row (or None)."""
        engine = sqlalchemy.create_engine(self.url(dbname), isolation_level="AUTOCOMMIT",
                                          poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect() as conn:
                result = conn.execute(sqlalchemy.text(statement))
                return result.first() if result.returns_rows else None
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def pg_server():
    """A running PostgreSQL server for this module (one per pytest-xdist worker)."""
    try:  # imports the driver that SQLAlchemy uses for postgresql:// URLs
        sqlalchemy.create_engine("postgresql://postgres@127.0.0.1/postgres").dispose()
    except ImportError as exc:
        pytest.skip(f"PostgreSQL test skipped: SQLAlchemy {sqlalchemy.__version__} has no "
                    f"driver for postgresql:// URLs ({exc}); pip install 'psycopg[binary]' "
                    "(SQLAlchemy >= 2.1) or psycopg2-binary (SQLAlchemy 2.0)")
    bindir = _find_bindir()
    if bindir is None:
        why = _install()
        bindir = _find_bindir()
        if bindir is None:
            pytest.skip(f"PostgreSQL test skipped: no PostgreSQL server binaries on PATH or "
                        f"in /usr/lib/postgresql/*/bin, and {why or 'none after installing'}")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("PostgreSQL test skipped: running as root without runuser, and the "
                    "server refuses to run as root")
    server = _Server(bindir)
    try:
        server.start()
        server.version = server.sql("SELECT version()")[0]
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server, request):
    """A database of its own on the server, as a SQLAlchemy URL; records the server version."""
    name = f"causalmim_{uuid.uuid4().hex[:12]}"
    pg_server.sql(f"CREATE DATABASE {name}")
    # listed at the end of the run by conftest.py (also under pytest-xdist)
    request.node.user_properties.append(("postgresql_server", pg_server.version))
    print(f"PostgreSQL server: {pg_server.version} (127.0.0.1:{pg_server.port}, "
          f"database {name})")
    return pg_server.url(name)


def _study_exists(url):
    """Whether a worker has created the tables and the study (read without creating them)."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:
            query = "SELECT 1 FROM studies WHERE study_name = 'shared'"
            return conn.execute(sqlalchemy.text(query)).first() is not None
    except sqlalchemy.exc.SQLAlchemyError:  # no tables yet
        return False
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- the tests
def test_two_workers_share_one_study_through_postgresql(pg_url, tmp_path):
    # each fit sleeps, so that neither worker finishes the budget before the other starts
    procs = [_worker(tmp_path, pg_url, n_trials=10, delay=0.4) for _ in range(2)]
    try:
        outs = [p.communicate(timeout=120)[0].decode() for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs
    trials = _trials(pg_url)
    numbers = sorted(tr.number for tr in trials)
    assert numbers == list(range(len(trials)))  # no lost or duplicated trial numbers
    assert len({tr._trial_id for tr in trials}) == len(trials)
    assert all(tr.state == TrialState.COMPLETE for tr in trials)
    # the budget is met; a trial already running when it is reached may finish (one worker more)
    assert 10 <= len(trials) <= 11
    workers = {tr.user_attrs["worker"] for tr in trials}
    assert len(workers) == 2  # both workers contributed
    assert len({tuple(sorted(tr.params.items())) for tr in trials}) == len(trials)


def test_killed_workers_trial_is_failed_and_retried_through_postgresql(pg_url, tmp_path):
    # each fit sleeps 2 s: the worker is killed in the middle of a trial; heartbeat every
    # second, a trial silent for 2 s is stale
    proc = _worker(tmp_path, pg_url, n_trials=3, delay=2.0, heartbeat=(1, 2))
    deadline = time.monotonic() + 60
    running = []
    try:
        while time.monotonic() < deadline and proc.poll() is None and not running:
            time.sleep(0.2)
            if _study_exists(pg_url):
                running = [tr for tr in _trials(pg_url) if tr.state == TrialState.RUNNING]
        time.sleep(1.5)  # at least one heartbeat written
    finally:
        proc.kill()  # SIGKILL: no cleanup in the worker
        out = proc.communicate()[0].decode()
    assert running, out
    killed = running[0].number
    left = {tr.number: tr.state for tr in _trials(pg_url)}
    assert left[killed] == TrialState.RUNNING  # left behind by the kill
    time.sleep(3)  # past the grace period
    again = _worker(tmp_path, pg_url, n_trials=3, delay=0.0, heartbeat=(1, 2))
    try:
        out = again.communicate(timeout=120)[0].decode()
    finally:
        again.kill()
    assert again.returncode == 0, out
    trials = {tr.number: tr for tr in _trials(pg_url)}
    assert sorted(trials) == list(range(len(trials)))
    assert trials[killed].state == TrialState.FAIL
    retried = [tr for tr in trials.values() if tr.system_attrs.get("failed_trial") == killed]
    assert len(retried) == 1 and retried[0].state == TrialState.COMPLETE
    assert retried[0].params == trials[killed].params
    assert retried[0].user_attrs["worker"] != trials[killed].user_attrs["worker"]
    assert not [tr for tr in trials.values() if tr.state == TrialState.RUNNING]
    assert len([tr for tr in trials.values() if tr.state == TrialState.COMPLETE]) == 3
