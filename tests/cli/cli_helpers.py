"""Helpers for driving `simplane` in-process (CliRunner) and as a real process."""

from __future__ import annotations

import http.client
import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from typer.testing import Result

SIMPLANE = Path(sys.executable).with_name("simplane")


def cli_env(database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "SIMPLANE_DATABASE_URL": database_url,
        "SIMPLANE_DATA_DIR": str(data_dir),
        # Accounts made here take a /24, not a /16: the shared test database's IP space
        # (10.64.0.0/10) holds only 64 /16s for the whole session.
        "SIMPLANE_ACCOUNT_ALLOCATION_PREFIX": "24",
    }


def one_line_error(result: Result) -> str:
    """The single error line of a failed command (and proof there was nothing else)."""
    assert result.exit_code != 0, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return lines[0]


def create_account_json(cli: Callable[..., Result], *args: str) -> dict[str, str]:
    result = cli("accounts", "create", "--name", f"CLI {secrets.token_hex(3)}",
                 "--admin-email", f"cli-{secrets.token_hex(6)}@example.com", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def token(base_url: str, client_id: str, client_secret: str) -> str:
    response = httpx.post(f"{base_url}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, client_secret))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def inherited_env() -> dict[str, str]:
    """This environment without SIMPLANE_* settings: each test states the ones it means."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SIMPLANE_")}


class Process:
    """`simplane ...` as a real child process in its own session; stdout read line by line."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.popen = subprocess.Popen(
            [str(SIMPLANE), *args], stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**inherited_env(), "PYTHONUNBUFFERED": "1", **env}, start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stderr(self) -> str:
        return self.log_path.read_text(errors="replace")

    def read_until(self, predicate: Callable[[str], bool], *, within: float = 60) -> list[str]:
        """Stdout lines up to and including the first one the predicate accepts."""
        seen: list[str] = []
        deadline = time.monotonic() + within
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such line yet: {seen}\n{self.stderr()}") from None
            if line is None:
                raise AssertionError(f"exited {self.popen.wait()}: {seen}\n{self.stderr()}")
            seen.append(line)
            if predicate(line):
                return seen

    def wait_ready(self, base_url: str, *, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(f"exited {self.popen.returncode}\n{self.stderr()}")
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{base_url} never became ready\n{self.stderr()}")

    def terminate(self) -> None:
        """SIGTERM, as a service manager stops it, and proof that it shut down gracefully.

        uvicorn re-raises the signal once shut down, so a single process ends "killed" by
        SIGTERM (which service managers count as clean); the multi-worker parent exits 0.
        """
        self.popen.send_signal(signal.SIGTERM)
        try:
            code = self.popen.wait(timeout=30)
        finally:
            self.kill()
        assert code in (0, -signal.SIGTERM), f"exit {code}\n{self.stderr()}"
        assert "Finished server process" in self.stderr(), self.stderr()

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        self._log.close()




def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], object], what: str, within: float = 20) -> object:
    """Poll until `condition()` is truthy: what the emulator and the server do in the
    background."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def child_pids(parent: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry))
    return found


def serving_pid(connection: http.client.HTTPConnection, server_port: int,
                candidates: set[int]) -> int:
    """Which process holds the server end of this (still open) loopback connection."""
    client_port = connection.sock.getsockname()[1]
    inode = None
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if (local, remote) == (server_port, client_port):
            inode = fields[9]
    assert inode is not None, "the server end of the connection is not in /proc/net/tcp"
    for pid in candidates:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no process of {candidates} holds socket {inode}")


class LossyUdpProxy:
    """Between a NAS and a RADIUS server: drops the first copy of every datagram and forwards
    the retransmissions, so each exchange succeeds only if the NAS retries with the same
    bytes. One proxy port per server port."""

    def __init__(self, *server_ports: int) -> None:
        import select as _select

        self._select = _select
        self.copies: dict[bytes, int] = {}
        self._pairs = []  # (listening socket, upstream socket, server port)
        self._client: dict[int, tuple[str, int]] = {}
        for server_port in server_ports:
            front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            front.bind(("127.0.0.1", 0))
            back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            back.bind(("127.0.0.1", 0))
            self._pairs.append((front, back, server_port))
        self.ports = [front.getsockname()[1] for front, _, _ in self._pairs]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sockets = [s for front, back, _ in self._pairs for s in (front, back)]
        while not self._stop.is_set():
            readable, _, _ = self._select.select(sockets, [], [], 0.1)
            for sock in readable:
                data, source = sock.recvfrom(4096)
                for index, (front, back, server_port) in enumerate(self._pairs):
                    if sock is front:
                        self.copies[data] = self.copies.get(data, 0) + 1
                        if self.copies[data] > 1:
                            self._client[index] = source
                            back.sendto(data, ("127.0.0.1", server_port))
                    elif sock is back and index in self._client:
                        front.sendto(data, self._client[index])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for front, back, _ in self._pairs:
            front.close()
            back.close()
