"""Talking RADIUS to the server the way a packet gateway does: FreeRADIUS's `radclient` for
ordinary exchanges, pyrad over a raw UDP socket where the exact bytes matter (retransmissions,
TBCD IMEISV, forged authenticators), and a NAS that answers Disconnect-Requests."""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyrad import packet as rp

from simplane.radius.attributes import load_dictionary

SECRET = "testing123"
APN = "simplane.m2m"
DICTIONARY = load_dictionary()

_RECEIVED = re.compile(r"^Received (\S+) Id (\d+) ")
_ATTRIBUTE = re.compile(r"^\s+(\S+) = (.*)$")


@dataclass
class Reply:
    """One answer radclient printed: its code and attributes (values as radclient shows them)."""

    code: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        values = self.attributes.get(name)
        return values[0].strip('"') if values else None


@dataclass
class RadclientRun:
    returncode: int
    stdout: str
    stderr: str
    replies: list[Reply]

    @property
    def reply(self) -> Reply | None:
        return self.replies[0] if self.replies else None

    def __str__(self) -> str:
        return f"radclient rc={self.returncode}\n{self.stdout}\n{self.stderr}"


def parse_radclient(stdout: str) -> list[Reply]:
    replies: list[Reply] = []
    current: Reply | None = None
    for line in stdout.splitlines():
        received = _RECEIVED.match(line)
        if received:
            current = Reply(received.group(1))
            replies.append(current)
            continue
        if line.startswith(("Sent ", "(")) or not line.startswith(("\t", " ")):
            current = None
            continue
        attribute = _ATTRIBUTE.match(line)
        if current is not None and attribute:
            current.attributes.setdefault(attribute.group(1), []).append(attribute.group(2))
    return replies


def _format(attributes: dict[str, object]) -> str:
    lines = []
    for name, value in attributes.items():
        if isinstance(value, str) and not value.startswith("0x") and not value.isdigit():
            value = '"' + value.replace('"', '\\"') + '"'
        lines.append(f"{name} = {value}")
    return "\n".join(lines)


def radclient(port: int, kind: str, *requests: dict[str, object], secret: str = SECRET,
              retries: int = 1, timeout: float = 3, parallel: int = 1) -> RadclientRun:
    """Send one request (or several, `parallel` at a time) with radclient and parse the replies."""
    text = "\n\n".join(_format(r) for r in requests) + "\n"
    command = ["radclient", "-x", "-r", str(retries), "-t", str(timeout), "-p", str(parallel),
               f"127.0.0.1:{port}", kind, secret]
    done = subprocess.run(command, input=text, capture_output=True, text=True,
                          timeout=timeout * (retries + 1) * max(1, len(requests) // parallel) + 30)
    return RadclientRun(done.returncode, done.stdout, done.stderr, parse_radclient(done.stdout))


def access_attributes(imsi: str, **overrides: object) -> dict[str, object]:
    """An Access-Request as a PGW sends it for an LTE attach in the Netherlands."""
    attributes: dict[str, object] = {
        "User-Name": imsi, "3GPP-IMSI": imsi, "Called-Station-Id": APN,
        "3GPP-SGSN-MCC-MNC": "20408", "3GPP-RAT-Type": "EUTRAN",
        "NAS-IP-Address": "127.0.0.1", "Calling-Station-Id": "31600000000",
    }
    attributes.update(overrides)
    return {k: v for k, v in attributes.items() if v is not None}


def accounting_attributes(imsi: str, status: str, session_id: str, **overrides: object
                          ) -> dict[str, object]:
    attributes: dict[str, object] = {
        "User-Name": imsi, "3GPP-IMSI": imsi, "Acct-Status-Type": status,
        "Acct-Session-Id": session_id, "Called-Station-Id": APN,
        "3GPP-SGSN-MCC-MNC": "20408", "3GPP-RAT-Type": "EUTRAN",
        "NAS-IP-Address": "127.0.0.1",
    }
    attributes.update(overrides)
    return {k: v for k, v in attributes.items() if v is not None}


def new_session_id() -> str:
    return secrets.token_hex(8)


def free_udp_port() -> int:
    # The listeners are UDP: probe both protocols so neither is taken.
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


# --- pyrad on a raw socket ------------------------------------------------------------------

def encode_access(attributes: dict[str, object], *, secret: str = SECRET,
                  message_authenticator: bool = True) -> rp.AuthPacket:
    request = rp.AuthPacket(code=rp.AccessRequest, secret=secret.encode(), dict=DICTIONARY)
    for name, value in attributes.items():
        request[name] = value
    if message_authenticator:
        request.add_message_authenticator()
    return request


def encode_accounting(attributes: dict[str, object], *, secret: str = SECRET) -> rp.AcctPacket:
    request = rp.AcctPacket(code=rp.AccountingRequest, secret=secret.encode(), dict=DICTIONARY)
    for name, value in attributes.items():
        request[name] = value
    return request


def pyrad_values(attributes: dict[str, object]) -> dict[str, object]:
    """radclient spellings turned into what pyrad's encoder takes (named values as numbers)."""
    named = {"EUTRAN": 6, "GERAN": 2, "UTRAN": 1, "HSPA-Evolution": 5}
    status = {"Start": "Start", "Stop": "Stop", "Interim-Update": "Interim-Update"}
    out: dict[str, object] = {}
    for name, value in attributes.items():
        if name == "3GPP-RAT-Type" and isinstance(value, str):
            value = named[value]
        elif name == "3GPP-IMEISV" and isinstance(value, str):
            # pyrad would read a digit string for an octets attribute as a number
            value = bytes.fromhex(value[2:]) if value.startswith("0x") else value.encode()
        elif name == "Acct-Status-Type":
            value = status.get(str(value), value)
        out[name] = value
    return out


class UdpClient:
    """One NAS source port: sends raw datagrams and waits for the answer to each."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))

    def exchange(self, raw: bytes, port: int, timeout: float = 5.0) -> bytes | None:
        self.sock.settimeout(timeout)
        self.sock.sendto(raw, ("127.0.0.1", port))
        ident = raw[1]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data, _ = self.sock.recvfrom(4096)
            except TimeoutError:
                return None
            if data[1] == ident:
                return data

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> UdpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_reply(request: rp.Packet, data: bytes) -> rp.Packet:
    reply = request.CreateReply(packet=data)
    assert request.VerifyReply(reply, data), "reply authenticator does not verify"
    return reply


# --- a NAS that receives Disconnect-Requests ------------------------------------------------

@dataclass
class ReceivedDisconnect:
    packet: rp.CoAPacket
    source: tuple[str, int]
    authentic: bool

    def attribute(self, name: str) -> object:
        values = self.packet.get(name)
        return values[0] if values else None


class DisconnectNas:
    """Listens where the platform sends RFC 5176 requests, checks them with pyrad and answers
    Disconnect-ACK (or NAK, or nothing, per Acct-Session-Id)."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret.encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.received: list[ReceivedDisconnect] = []
        self.answer: dict[str, str] = {}  # Acct-Session-Id -> "ACK" | "NAK" | "NONE"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="test-nas")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            request = rp.CoAPacket(packet=data, secret=self.secret, dict=DICTIONARY)
            authentic = request.code == rp.DisconnectRequest and request.VerifyCoARequest() and (
                not request.message_authenticator or request.verify_message_authenticator())
            received = ReceivedDisconnect(request, source, authentic)
            with self._lock:
                self.received.append(received)
            session_id = received.attribute("Acct-Session-Id")
            answer = self.answer.get(str(session_id), "ACK")
            if not authentic or answer == "NONE":
                continue
            reply = request.CreateReply()
            if answer == "NAK":
                reply.code = rp.DisconnectNAK
            self.sock.sendto(reply.ReplyPacket(), source)

    def requests_for(self, acct_session_id: str) -> list[ReceivedDisconnect]:
        with self._lock:
            return [r for r in self.received if r.attribute("Acct-Session-Id") == acct_session_id]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def wait_for(condition: Callable[[], object], what: str, timeout: float = 10.0) -> object:
    """Poll until `condition()` is truthy (work the server does after answering)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def tbcd(digits: str) -> bytes:
    """Digits packed two to an octet, low nibble first, 0xF filler (3GPP TS 29.274 §8.10)."""
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1], 16) << 4 | int(digits[i], 16) for i in range(0, len(digits), 2))


def events_of(client, thing_id: str, event_type: str) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get("/v1/events", params={"type": event_type, "thing_id": thing_id})
    assert response.status_code == 200, response.text
    return response.json()["items"]


# --- the northbound side ----------------------------------------------------------------------

def second_network(client, prefix_length: int = 29) -> tuple[dict, dict, dict]:  # type: ignore[no-untyped-def]
    """A Network with one pool of its own and a Things Group on it: (network, pool, group)."""
    network = client.post("/v1/networks", json={"name": f"Second {secrets.token_hex(3)}"})
    assert network.status_code == 201, network.text
    network_id = network.json()["id"]
    pool = client.post(f"/v1/networks/{network_id}/ip-pools",
                       json={"prefix_length": prefix_length})
    assert pool.status_code == 201, pool.text
    group = client.post("/v1/things-groups", json={"name": f"On {network_id}",
                                                    "network_id": network_id})
    assert group.status_code == 201, group.text
    return network.json(), pool.json(), group.json()


def default_pool(client) -> dict:  # type: ignore[no-untyped-def]
    networks = client.get("/v1/networks").json()["items"]
    (network,) = [n for n in networks if n["is_default"]]
    return network["ip_pools"][0]


def patch_thing(client, thing_id: str, body: dict) -> dict:  # type: ignore[no-untyped-def]
    response = client.patch(f"/v1/things/{thing_id}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def get_thing(client, thing_id: str) -> dict:  # type: ignore[no-untyped-def]
    response = client.get(f"/v1/things/{thing_id}")
    assert response.status_code == 200, response.text
    return response.json()


def sessions_of(client, thing_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    response = client.get(f"/v1/things/{thing_id}/sessions")
    assert response.status_code == 200, response.text
    return response.json()["items"]


def metric(base_url: str, name: str, **labels: str) -> float:
    import httpx

    text = httpx.get(f"{base_url}/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and line.split("}")[0][len(name) + 1:] == wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0
