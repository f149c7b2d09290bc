"""The server is killed (SIGKILL) between accounting packets: after a restart on the same ports,
the NAS's retransmission is answered and usage is neither lost nor doubled."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import simplane
from radius_helpers import (
    SECRET,
    UdpClient,
    accounting_attributes,
    decode_reply,
    encode_accounting,
    events_of,
    free_udp_port,
    new_session_id,
    pyrad_values,
    sessions_of,
)
from pyrad import packet as rp

SOURCE = Path(simplane.__file__).resolve().parents[1]


class ServeProcess:
    """`uvicorn --factory simplane.app:app_from_environment`, configured like `simplane serve`
    by SIMPLANE_* variables, as a process of its own that can be killed."""

    def __init__(self, env: dict[str, str], http_port: int, log: Path) -> None:
        self.env = env
        self.http_port = http_port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "simplane.app:app_from_environment",
                 "--host", "127.0.0.1", "--port", str(self.http_port), "--log-level", "warning"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        # uvicorn serves HTTP only after the lifespan started the RADIUS listeners.
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1).is_success:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start:\n" + self.log.read_text()
            time.sleep(0.1)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL: no shutdown, no flushing, nothing graceful
            self.process.wait(10)


@pytest.fixture
def serve_process(backend, radius, tmp_path) -> Iterator[tuple[ServeProcess, int]]:  # type: ignore[no-untyped-def]
    acct_port = free_udp_port()
    env = {
        "PATH": "/usr/bin:/bin", "PYTHONPATH": str(SOURCE),
        "SIMPLANE_DATABASE_URL": backend.url, "SIMPLANE_DATA_DIR": str(tmp_path),
        "SIMPLANE_SECRET_KEY": "crash-test-" + backend.name,
        "SIMPLANE_RADIUS_ENABLED": "true", "SIMPLANE_RADIUS_BIND": "127.0.0.1",
        "SIMPLANE_RADIUS_AUTH_PORT": str(free_udp_port()),
        "SIMPLANE_RADIUS_ACCT_PORT": str(acct_port),
        "SIMPLANE_RADIUS_CLIENTS": f"127.0.0.0/8={SECRET}",
        "SIMPLANE_RADIUS_DISCONNECT_PORT": str(radius.nas.port),
        "SIMPLANE_LOG_LEVEL": "WARNING",
    }
    process = ServeProcess(env, free_udp_port(), tmp_path / "serve.log")
    try:
        yield process, acct_port
    finally:
        process.kill()


def test_usage_survives_a_kill_between_accounting_packets(
        serve_process, tenant, active_things):  # type: ignore[no-untyped-def]
    server, acct_port = serve_process
    (thing,) = active_things(1)
    session_id = new_session_id()

    def packet(status: str, up: int, down: int) -> rp.AcctPacket:
        return encode_accounting(pyrad_values(accounting_attributes(
            thing["imsi"], status, session_id,
            **{"Acct-Input-Octets": up, "Acct-Output-Octets": down})))

    start, first, second = packet("Start", 0, 0), packet("Interim-Update", 1000, 2000), \
        packet("Interim-Update", 5000, 9000)
    raw = {name: p.RequestPacket() for name, p in
           (("start", start), ("first", first), ("second", second))}

    server.start()
    with UdpClient() as nas:
        for name, request in (("start", start), ("first", first)):
            answer = nas.exchange(raw[name], acct_port)
            assert answer is not None, name
            assert decode_reply(request, answer).code == rp.AccountingResponse

        server.kill()
        assert nas.exchange(raw["second"], acct_port, timeout=0.5) is None

        server.start()
        # The NAS retransmits the unanswered Interim, the identical bytes: now answered.
        answer = nas.exchange(raw["second"], acct_port)
        assert answer is not None
        assert decode_reply(second, answer).code == rp.AccountingResponse
        # Copies that arrive late (the Start and the first Interim, whose answers the NAS may
        # have lost in the crash) and another retransmission of the second add nothing.
        for name, request in (("start", start), ("first", first), ("second", second)):
            late = nas.exchange(raw[name], acct_port)
            assert late is not None, name
            assert decode_reply(request, late).code == rp.AccountingResponse

    (record,) = sessions_of(tenant.admin, thing["id"])
    assert (record["status"], record["bytes_up"], record["bytes_down"]) == ("OPEN", 5000, 9000)
    days = tenant.admin.get(f"/v1/things/{thing['id']}/usage").json()["items"]
    assert [(d["bytes_up"], d["bytes_down"]) for d in days] == [(5000, 9000)], days
    assert len(events_of(tenant.admin, thing["id"], "thing.attached")) == 1
