"""A real Redis server on a loopback port, for the cache e2e test.

Debian's `redis-server` (7.x; `scripts/install-redis.sh` installs it) runs as
a subprocess with no persistence (`save ""`, `appendonly no`), so a restart
comes back empty, as a cache that lost its pod would. It can be stopped and
started again on the same port, as a Redis whose pod is rescheduled behind its
Service; `close()` always terminates it. Its config file (which holds the
password) and its log stay in the folder given, pytest's temporary one.

A missing `redis-server` skips the tests that need it, except under
`CI=true`, where it is a failure: CI must not go green by testing nothing.
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import time
from pathlib import Path

from ports import free_port

from . import processes

INSTALL_HINT = "install it with `scripts/install-redis.sh` (Debian's redis-server package)"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


def binary() -> Path:
    """The `redis-server` on PATH; skips the test without one (fails it under CI=true)."""
    found = shutil.which("redis-server")
    if found is None:
        hint = f"redis-server is not on PATH: {INSTALL_HINT}"
        processes.missing(hint)
    return Path(found)


class RedisError(Exception):
    """Redis answered a command with an error reply (`-ERR ...`)."""


class RedisServer:
    """One `redis-server` process on 127.0.0.1, that can be stopped and started on the same port."""

    def __init__(self, redis_server: Path, workdir: Path, *, password: str | None = None) -> None:
        self.binary = redis_server
        self.workdir = workdir
        self.password = password
        self.host = "127.0.0.1"
        self.port = free_port()
        self.log = workdir / "redis.log"
        self.conf = workdir / "redis.conf"
        lines = [
            f"port {self.port}",
            f"bind {self.host}",
            'save ""',
            "appendonly no",
            f"dir {workdir}",
            f"logfile {self.log}",
            "daemonize no",
        ]
        if password is not None:
            lines.append(f"requirepass {password}")
        # The password is in this file, not on the command line for `ps` to show.
        self.conf.touch(mode=0o600)
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start it (on the port it had before, if any) and wait until it answers."""
        assert not self.running, "redis-server is already running"
        self.proc = subprocess.Popen(
            [str(self.binary), str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
        )
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(
                    f"redis-server exited with {code} at start; its log:\n{processes.tail(self.log, 20)}"
                )
            try:
                if self.command("PING") == "PONG":
                    return
            except (OSError, RedisError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL); the port refuses connections afterwards."""
        proc, self.proc = self.proc, None
        if proc is not None:
            processes.stop(proc, STOP_TIMEOUT_S)

    def close(self) -> None:
        self.stop()

    def command(self, *args: str, timeout: float = 2.0) -> object:
        """Send one command (after AUTH when there is a password) and return the decoded reply."""
        with (
            socket.create_connection((self.host, self.port), timeout=timeout) as sock,
            sock.makefile("rb") as f,
        ):
            if self.password is not None:
                sock.sendall(_encode("AUTH", self.password))
                _reply(f)
            sock.sendall(_encode(*args))
            return _reply(f)


def _encode(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        data = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _reply(f: io.BufferedReader) -> object:
    """One RESP2 reply: simple string, error, integer, bulk string or array."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise OSError(f"connection closed mid-reply: {line!r}")
    kind, body = line[:1], line[1:-2].decode()
    if kind == b"+":
        return body
    if kind == b"-":
        raise RedisError(body)
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        data = f.read(size + 2)
        return data[:-2].decode()
    if kind == b"*":
        count = int(body)
        return None if count < 0 else [_reply(f) for _ in range(count)]
    raise OSError(f"not a RESP reply: {line!r}")
