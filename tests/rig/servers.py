"""Throw-away PostgreSQL primary + streaming replica and Redis for the test suite.

Started when the environment names no servers (``DATABASE_URL``, ``REPLICA_URL``,
``REDIS_URL``), stopped when the test run ends. PostgreSQL refuses to run as
root, so as root its commands run as the ``postgres`` OS user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DEBIAN_PACKAGES = {"postgres": "postgresql", "redis": "redis-server"}


class RigError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bindir() -> Path:
    """Newest PostgreSQL server binaries: ``PG_BINDIR``, Debian's layout, or PATH."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RigError(
        "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) were not found. "
        f"Install the Debian package '{DEBIAN_PACKAGES['postgres']}', set PG_BINDIR, or set "
        "DATABASE_URL and REPLICA_URL to existing servers."
    )


def _wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RigError(f"{what} did not accept connections on port {port} within {timeout}s")


@dataclass
class PostgresPair:
    """A primary and its streaming replica, each in a data directory under ``base``."""

    base: Path
    primary_port: int = field(default_factory=free_port)
    replica_port: int = field(default_factory=free_port)
    bindir: Path = field(default_factory=postgres_bindir)
    user: str | None = None  # OS user the servers run as (postgres when we are root)

    def __post_init__(self) -> None:
        if os.geteuid() == 0:
            self.user = "postgres"
            try:
                entry = pwd.getpwnam(self.user)
            except KeyError as exc:
                raise RigError(
                    "Running as root, but there is no 'postgres' OS user to run PostgreSQL as. "
                    f"Install the Debian package '{DEBIAN_PACKAGES['postgres']}' or run as a "
                    "normal user."
                ) from exc
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self.primary_dir = self.base / "primary"
        self.replica_dir = self.base / "replica"

    def _run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.base, check=False)
        if check and proc.returncode != 0:
            raise RigError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def _pg_ctl(self, datadir: Path, action: str, *extra: str) -> None:
        # a loaded machine can take well over 30 s to replay WAL on a replica restart
        log = datadir.with_suffix(".log")
        pg_ctl = self.bindir / "pg_ctl"
        self._run(pg_ctl, "-D", datadir, "-l", log, "-w", "-t", "120", action, *extra)

    def start(self) -> None:
        self._run(
            self.bindir / "initdb", "-D", self.primary_dir, "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-instructions",
        )  # fmt: skip
        conf = (
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.primary_port}\n"
            f"unix_socket_directories = '{self.base}'\n"
            "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
            "fsync = off\nfull_page_writes = off\n"
            "max_connections = 200\nshared_buffers = 64MB\n"
            "wal_receiver_status_interval = 1s\n"
        )
        self._append(self.primary_dir / "postgresql.conf", conf)
        self._append(
            self.primary_dir / "pg_hba.conf", "host replication postgres 127.0.0.1/32 trust\n"
        )
        self._pg_ctl(self.primary_dir, "start")
        self._run(
            self.bindir / "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port),
            "-U", "postgres", "-D", self.replica_dir, "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        self._append(self.replica_dir / "postgresql.conf", f"port = {self.replica_port}\n")
        self.start_replica()

    def _append(self, path: Path, text: str) -> None:
        # the file belongs to the server's user; appending as root keeps its owner
        with open(path, "a") as fh:
            fh.write(text)

    def start_replica(self) -> None:
        self._pg_ctl(self.replica_dir, "start")
        _wait_port(self.replica_port, 30, "the replica")

    def stop_replica(self, mode: str = "immediate") -> None:
        self._pg_ctl(self.replica_dir, "stop", "-m", mode)

    def replica_pid(self) -> int:
        return int((self.replica_dir / "postmaster.pid").read_text().split()[0])

    def freeze_replica(self) -> None:
        """SIGSTOP the replica's postmaster: new connections hang (a blackholed host)."""
        os.kill(self.replica_pid(), signal.SIGSTOP)

    def thaw_replica(self) -> None:
        os.kill(self.replica_pid(), signal.SIGCONT)

    def stop(self) -> None:
        for datadir in (self.replica_dir, self.primary_dir):
            pid_file = datadir / "postmaster.pid"
            if pid_file.exists():
                with contextlib.suppress(OSError, ValueError):  # a frozen server cannot stop
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGCONT)
                self._pg_ctl(datadir, "stop", "-m", "immediate")

    @property
    def primary_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.primary_port}/scalekit"

    @property
    def replica_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.replica_port}/scalekit"


@dataclass
class RedisServer:
    """A ``redis-server`` on a free port with no persistence."""

    base: Path
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(self.binary):
            raise RigError(
                f"redis-server was not found. Install the Debian package "
                f"'{DEBIAN_PACKAGES['redis']}' or set REDIS_URL to an existing server."
            )
        self.pidfile = self.base / f"redis-{self.port}.pid"

    def start(self) -> None:
        subprocess.run(
            [
                self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--daemonize", "yes",
                "--pidfile", str(self.pidfile), "--dir", str(self.base),
                "--logfile", str(self.base / f"redis-{self.port}.log"),
                "--unixsocket", str(self.socket), "--unixsocketperm", "700",
            ],
            check=True,
        )  # fmt: skip
        _wait_port(self.port, 10, "redis-server")

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        self.pidfile.unlink(missing_ok=True)

    def freeze(self) -> None:
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGCONT)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket(self) -> Path:
        """The same server's unix socket (the benchmarks compare both transports)."""
        return self.base / f"redis-{self.port}.sock"

    @property
    def socket_url(self) -> str:
        return f"unix://{self.socket}?db=0"


@dataclass
class Rig:
    """The servers this run started (``None`` where the environment named one)."""

    base: Path | None = None
    postgres: PostgresPair | None = None
    redis: RedisServer | None = None

    @classmethod
    def from_environment(cls) -> Rig:
        """Start what the environment does not name; export the URLs for the settings."""
        rig = cls()
        have_db = bool(os.environ.get("DATABASE_URL"))
        have_replica = bool(os.environ.get("REPLICA_URL"))
        if have_db != have_replica:
            raise RigError(
                "Set DATABASE_URL and REPLICA_URL together (the replica must stream from that "
                "primary), or unset both to let the tests start a throw-away pair."
            )
        need_pg = not have_db
        need_redis = not os.environ.get("REDIS_URL")
        if need_pg or need_redis:
            rig.base = Path(tempfile.mkdtemp(prefix="scalekit-rig-"))
        try:
            if need_pg:
                assert rig.base is not None
                rig.postgres = PostgresPair(rig.base)
                rig.postgres.start()
                os.environ["DATABASE_URL"] = rig.postgres.primary_url
                os.environ["REPLICA_URL"] = rig.postgres.replica_url
            if need_redis:
                assert rig.base is not None
                rig.redis = RedisServer(rig.base)
                rig.redis.start()
                os.environ["REDIS_URL"] = rig.redis.url
                os.environ["REDIS_SOCKET_URL"] = rig.redis.socket_url
        except BaseException:
            rig.stop()
            raise
        return rig

    def stop(self) -> None:
        try:
            if self.postgres:
                self.postgres.stop()
            if self.redis:
                self.redis.stop()
        finally:
            if self.base and not os.environ.get("SCALEKIT_KEEP_RIG"):
                shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
