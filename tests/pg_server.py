"""A throw-away PostgreSQL server on loopback for tests (Debian's postgresql package).

initdb refuses to run as root, so as root the server runs as the `postgres` system user. Skips (with the
reason) when the binaries are missing: .ci/run installs them.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def find_pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """A server on loopback that a test may stop and start again (the database outlives a restart)."""

    def __init__(self) -> None:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL binaries not found (apt-get install postgresql)")
        self.bin = bin_dir
        self.as_user: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="zoo-pg-"))
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
        self.data, self.port = self.root / "data", _free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/zoo"

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self.as_user, *cmd], check=True, capture_output=True, text=True)

    def create(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()
        deadline = time.time() + 30
        while True:
            try:
                self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "zoo")
                break
            except subprocess.CalledProcessError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.root / "log"), "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every connection at once (what a server going away looks like to its clients)."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                           capture_output=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server, create database `zoo`, yield its SQLAlchemy URL, stop and delete it after."""
    with postgres_control() as server:
        yield server.url


@contextmanager
def postgres_control() -> Iterator[PgServer]:
    """Like postgres_server, yielding the server itself (stop() and start() it)."""
    server = PgServer()
    try:
        server.create()
        yield server
    finally:
        server.remove()
