"""The NAS side of RADIUS, as a packet gateway (GGSN/PGW) speaks it: Access-Requests and
Accounting-Requests sent over UDP with a timeout, each retransmitted byte for byte until
answered or given up, and a listener that answers the platform's Disconnect-Requests.

Used by `simplane emulate`; independent of the server module, so it exercises the server only
through the wire.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from .attributes import load_dictionary


@dataclass(frozen=True)
class Answer:
    """A verified reply (None when every transmission went unanswered) and how many times the
    request was sent."""

    reply: rp.Packet | None
    transmissions: int

    @property
    def code(self) -> int | None:
        return self.reply.code if self.reply is not None else None

    def first(self, name: str) -> object:
        if self.reply is None:
            return None
        try:
            values = self.reply[name]
        except KeyError:
            return None
        return values[0] if values else None


def resolve(host: str) -> tuple[int, str]:
    """The address family and address of `host` for UDP."""
    try:
        info = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    return info[0], str(info[4][0])


def local_address_towards(host: str, port: int) -> str:
    """The source address this machine uses to reach host:port: what the server sees as the
    NAS, and so the NAS-IP-Address to report (the platform sends Disconnect-Requests there)."""
    family, address = resolve(host)
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((address, port))  # UDP connect sends nothing; it only picks a route
        return str(probe.getsockname()[0])


class GatewayClient:
    """One NAS source port. Thread-safe: exchanges are serialised, which also keeps the
    identifiers of outstanding requests distinct."""

    def __init__(self, host: str, auth_port: int, acct_port: int, secret: bytes, *,
                 timeout: float = 2.0, retries: int = 3,
                 dictionary: Dictionary | None = None) -> None:
        self.family, self.address = resolve(host)
        self.auth_port = auth_port
        self.acct_port = acct_port
        self.secret = secret
        self.timeout = timeout
        self.retries = retries
        self.dictionary = dictionary or load_dictionary()
        self.sock = socket.socket(self.family, socket.SOCK_DGRAM)
        self.sock.bind(("::" if self.family == socket.AF_INET6 else "0.0.0.0", 0))
        self._lock = threading.Lock()

    def access_request(self, attributes: Mapping[str, object]) -> Answer:
        request = rp.AuthPacket(code=rp.AccessRequest, secret=self.secret, dict=self.dictionary)
        self._fill(request, attributes)
        # Always sent (BlastRADIUS, CVE-2024-3596); the server may be configured to require it.
        request.add_message_authenticator()
        return self._exchange(request, self.auth_port, enforce_message_authenticator=True)

    def accounting_request(self, attributes: Mapping[str, object]) -> Answer:
        request = rp.AcctPacket(code=rp.AccountingRequest, secret=self.secret,
                                dict=self.dictionary)
        self._fill(request, attributes)
        return self._exchange(request, self.acct_port)

    @staticmethod
    def _fill(request: rp.Packet, attributes: Mapping[str, object]) -> None:
        for name, value in attributes.items():
            if value is not None:
                request[name] = value

    def _exchange(self, request: rp.Packet, port: int, *,
                  enforce_message_authenticator: bool = False) -> Answer:
        # Encoded once: every retransmission is the identical datagram (same identifier and
        # authenticator), which is how the server recognises it and answers it only once.
        raw = request.RequestPacket()
        with self._lock:
            for attempt in range(1, self.retries + 2):
                self.sock.sendto(raw, (self.address, port))
                reply = self._await_reply(request, enforce_message_authenticator)
                if reply is not None:
                    return Answer(reply, attempt)
            return Answer(None, self.retries + 1)

    def _await_reply(self, request: rp.Packet, enforce_ma: bool) -> rp.Packet | None:
        deadline = time.monotonic() + self.timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                data, _ = self.sock.recvfrom(4096)
            except TimeoutError:
                return None
            except ConnectionRefusedError:  # an ICMP port unreachable from an earlier send
                continue
            # Late answers to earlier requests, and anything forged, are ignored.
            if len(data) < 20 or data[1] != request.id:
                continue
            try:
                reply = request.CreateReply(packet=data)
            except rp.PacketError:
                continue
            if request.VerifyReply(reply, data, enforce_ma=enforce_ma):
                return reply
        return None

    def close(self) -> None:
        self.sock.close()


class DisconnectListener:
    """Answers RFC 5176 Disconnect-Requests the way a gateway does: a request that verifies
    with the shared secret and names a session this gateway holds gets Disconnect-ACK and is
    handed to `on_disconnect(acct_session_id)` (which should then end the session with an
    Accounting Stop); one naming an unknown session gets Disconnect-NAK with Error-Cause 503
    (Session Context Not Found)."""

    def __init__(self, bind: str, port: int, secret: bytes,
                 on_disconnect: Callable[[str], bool], dictionary: Dictionary | None = None
                 ) -> None:
        family, address = resolve(bind)
        self.secret = secret
        self.on_disconnect = on_disconnect
        self.dictionary = dictionary or load_dictionary()
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((address, port))  # OSError when taken: the caller decides what to do
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="emulated-nas-dm")

    def start(self) -> DisconnectListener:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                request = rp.CoAPacket(packet=data, secret=self.secret, dict=self.dictionary)
            except rp.PacketError:
                continue
            if request.code != rp.DisconnectRequest or not request.VerifyCoARequest():
                continue
            if request.message_authenticator and not request.verify_message_authenticator():
                continue
            self.received += 1
            try:
                session_id = request["Acct-Session-Id"][0]
            except (KeyError, IndexError):
                session_id = None
            reply = request.CreateReply()
            if session_id is None or not self.on_disconnect(str(session_id)):
                reply.code = rp.DisconnectNAK
                reply["Error-Cause"] = 503
            else:
                reply.code = rp.DisconnectACK
            if request.message_authenticator:
                reply.add_message_authenticator()
            try:
                self.sock.sendto(reply.ReplyPacket(), source)
            except OSError:
                continue

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)
        self.sock.close()
