"""A real PostgreSQL for the tests: Debian's binaries (`make test` installs the `postgresql`
package when missing), one server per test session in a temporary folder, listening on
127.0.0.1 only, and a fresh database for every test that asks for one.

Nothing here skips: if PostgreSQL cannot start, the tests that need it fail with the reason.
initdb refuses to run as root, so as root the server runs as the `postgres` user (the package
creates it) or else `nobody`, in a folder that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Enough for the multi-process tests (8 processes opening at once, several monitors, each
# with a small pool) with headroom.
MAX_CONNECTIONS = 300


@dataclass(frozen=True)
class PgServer:
    port: int
    user: str = "reenact"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]  # built here from our own names only

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _bin_dir() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        pytest.fail(
            "PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin): "
            "run `make postgresql` (Debian's `postgresql` package) or `make test`.",
            pytrace=False,
        )
    return found[-1].parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    """The unprivileged user to run the server as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    pytest.fail("No unprivileged user (postgres, nobody) to run PostgreSQL as.", pytrace=False)


def _command(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


def start_server(root: Path, *, durable: bool = False) -> PgServer:
    """initdb + pg_ctl start in `root` (which the server's user must be able to own).
    `durable`: with fsync, as a deployment runs it (the benchmarks); the tests' data is
    thrown away, so they do not wait for the disk."""
    bin_dir = _bin_dir()
    user = _run_as()
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    if user:
        entry = pwd.getpwnam(user)
        os.chmod(root, 0o700)
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    init = subprocess.run(
        _command(
            user,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "reenact",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode:
        pytest.fail(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}", pytrace=False)
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -c max_connections={MAX_CONNECTIONS}"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    pg_ctl = str(bin_dir / "pg_ctl")
    start = subprocess.run(
        _command(user, [pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"]),
        capture_output=True,
        text=True,
        check=False,
    )
    if start.returncode:
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else start.stderr
        pytest.fail(f"PostgreSQL did not start on 127.0.0.1:{port}: {detail}", pytrace=False)
    return PgServer(port=port)


def stop_server(root: Path) -> None:
    pg_ctl = str(_bin_dir() / "pg_ctl")
    subprocess.run(
        _command(_run_as(), [pg_ctl, "-D", str(root / "data"), "-m", "fast", "-w", "stop"]),
        capture_output=True,
        check=False,
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    root = Path(tempfile.mkdtemp(prefix="reenact-pg-"))
    try:
        yield start_server(root)
    finally:
        stop_server(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A new, empty database on the session's server; dropped after the test."""
    url = pg_server.new_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's URL on each engine it supports: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reenact.db'}"
    return str(request.getfixturevalue("pg_url"))
