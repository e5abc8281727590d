"""A throwaway PostgreSQL cluster for the tests and benchmarks: `initdb` into a folder, a random loopback port and
a socket in that folder, stopped (by its pid) at the end. Debian's server binaries, never a mock.

    with Cluster(tmp_path / "pg") as cluster:
        url = cluster.url("bchooks")       # postgresql://bchooks@127.0.0.1:PORT/bchooks
        cluster.stop(); cluster.start()    # the server down and back, for fault tests

Run as root (CI), the cluster belongs to the `postgres` system user (initdb refuses root).
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def server_bindir():
    """The folder of Debian's PostgreSQL server programs (initdb, pg_ctl, postgres)."""
    for candidate in [shutil.which("pg_config")] + sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_config"),
                                                          reverse=True):
        if candidate:
            folder = subprocess.run([candidate, "--bindir"], capture_output=True, text=True).stdout.strip()
            if folder and os.path.exists(os.path.join(folder, "initdb")):
                return folder
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(folder, "initdb")):
            return folder
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(os.path.realpath(found))
    raise RuntimeError("PostgreSQL's server programs are not installed (Debian: apt-get install postgresql)")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    def __init__(self, folder, *, port=None, settings=()):
        self.folder = Path(folder)
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self.port = port or free_port()
        self.bindir = server_bindir()
        self.settings = ["fsync=on", "max_connections=200", *settings]
        self._as_user = []
        self.process_pid = None
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self.folder.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            for path in (self.folder, self.socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            parent = self.folder.parent
            while parent != parent.parent:  # the postgres user must be able to reach the folder
                mode = os.stat(parent).st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)
                parent = parent.parent
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale",
                  "--no-sync")

    def __repr__(self):
        return f"Cluster({str(self.folder)!r}, port={self.port})"

    def _run(self, program, *args, check=True):
        return subprocess.run([*self._as_user, os.path.join(self.bindir, program), *args], check=check,
                              capture_output=True, text=True, timeout=120)

    def start(self):
        options = " ".join([f"-p {self.port}", f"-k {self.socket_dir}", "-c listen_addresses=127.0.0.1",
                            *(f"-c {s}" for s in self.settings)])
        result = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options,
                           "-w", "-t", "60", "start", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {result.stderr}{self.log()[-2000:]}")
        self.process_pid = int((self.data / "postmaster.pid").read_text().split()[0])
        return self

    def stop(self, mode="fast"):
        if not (self.data / "postmaster.pid").exists():
            return
        result = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False)
        if result.returncode != 0 and self.process_pid:
            try:
                os.kill(self.process_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while self.process_pid and time.monotonic() < deadline:
            try:
                os.kill(self.process_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)

    def psql(self, sql, database="postgres"):
        result = self._run("psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres", "-d",
                           database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr}")
        return result.stdout.strip()

    def create_database(self, name, owner="bchooks"):
        """A new database `name` owned by the role `owner` (created if needed); its URL."""
        if not self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{owner}'"):
            self.psql(f"CREATE ROLE {owner} LOGIN")
        self.psql(f"CREATE DATABASE {name} OWNER {owner}")
        return self.url(name, owner)

    def url(self, database, user="bchooks"):
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def log(self):
        try:
            return (self.folder / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop("immediate")
