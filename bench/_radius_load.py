"""The RADIUS load generator of bench_radius: a packet gateway's many outstanding requests.

Every datagram is encoded before the clock starts (pyrad, with its identifier, authenticator and
Message-Authenticator), so the timed part only sends, matches replies and checks them: the
generator costs the two systems under test as little CPU as it can, and the same for both.

Requests go out over `sockets` source ports (a gateway uses several), at most `window` of them
outstanding at once. An unanswered request is retransmitted byte for byte after `timeout`
seconds, `retries` times, then counted as a timeout. Each reply is matched to its request by
(socket, identifier) and its Response Authenticator is checked with the shared secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pyrad import packet as rp
from pyrad.dictionary import Dictionary

CODE_NAMES = {rp.AccessAccept: "Access-Accept", rp.AccessReject: "Access-Reject",
              rp.AccountingResponse: "Accounting-Response"}
FRAMED_IP_ADDRESS = 8


@dataclass
class Prepared:
    """Datagrams ready to send: datagram j goes out on socket j % sockets."""

    datagrams: list[bytes]
    sockets: int


def prepare(requests: Iterable[Mapping[str, object]], *, code: int, secret: bytes,
            dictionary: Dictionary, sockets: int) -> Prepared:
    datagrams = []
    for j, attributes in enumerate(requests):
        # Identifiers cycle per socket: a request only reuses an identifier of its socket 256
        # requests later, and the sender waits if that one is still outstanding.
        ident = (j // sockets) % 256
        if code == rp.AccessRequest:
            packet: rp.Packet = rp.AuthPacket(code=code, id=ident, secret=secret, dict=dictionary)
        else:
            packet = rp.AcctPacket(code=code, id=ident, secret=secret, dict=dictionary)
        for name, value in attributes.items():
            if value is not None:
                packet[name] = value
        if code == rp.AccessRequest:
            # Always sent (BlastRADIUS, CVE-2024-3596).
            packet.add_message_authenticator()
        datagrams.append(packet.RequestPacket())
    return Prepared(datagrams, sockets)


@dataclass
class Result:
    requests: int
    seconds: float
    codes: Counter = field(default_factory=Counter)
    timeouts: int = 0
    retransmissions: int = 0
    bad_replies: int = 0
    latencies: list[float] = field(default_factory=list)
    # The Framed-IP-Address of each Access-Accept, in request order (None otherwise).
    addresses: list[str | None] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict:
        return {"requests": self.requests, "seconds": round(self.seconds, 3),
                "per_second": round(self.rate, 1),
                "replies": {CODE_NAMES.get(c, str(c)): n for c, n in sorted(self.codes.items())},
                "timeouts": self.timeouts, "retransmissions": self.retransmissions,
                "bad_replies": self.bad_replies,
                "p50_ms": _ms(self.percentile(0.50)), "p99_ms": _ms(self.percentile(0.99))}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _framed_ip(reply: bytes) -> str | None:
    position = 20
    while position + 2 <= len(reply):
        kind, length = reply[position], reply[position + 1]
        if length < 2:
            return None
        if kind == FRAMED_IP_ADDRESS and length == 6:
            return str(ipaddress.IPv4Address(reply[position + 2:position + 6]))
        position += length
    return None


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, on_reply: Callable[[int, bytes], None], index: int) -> None:
        self.on_reply = on_reply
        self.index = index
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        self.on_reply(self.index, data)

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP port unreachable: the retransmission timer handles it


async def _send(host: str, port: int, secret: bytes, prepared: Prepared, *, window: int,
                timeout: float, retries: int, expect: int | None) -> Result:
    loop = asyncio.get_running_loop()
    datagrams = prepared.datagrams
    total = len(datagrams)
    result = Result(total, 0.0, addresses=[None] * total)
    pending: dict[tuple[int, int], list] = {}  # (socket, id) -> [j, first_sent, tries, timer]
    freed: dict[tuple[int, int], asyncio.Event] = {}
    slots = asyncio.Semaphore(window)
    finished = loop.create_future()
    done = 0

    def complete(key: tuple[int, int]) -> None:
        nonlocal done
        entry = pending.pop(key)
        entry[3].cancel()
        done += 1
        slots.release()
        waiter = freed.pop(key, None)
        if waiter is not None:
            waiter.set()
        if done == total and not finished.done():
            finished.set_result(None)

    def on_reply(index: int, data: bytes) -> None:
        if len(data) < 20:
            result.bad_replies += 1
            return
        key = (index, data[1])
        entry = pending.get(key)
        if entry is None:
            return  # a late answer to a retransmitted request already answered
        request = datagrams[entry[0]]
        expected = hashlib.md5(data[:4] + request[4:20] + data[20:] + secret).digest()
        if data[4:20] != expected:
            result.bad_replies += 1
            return
        result.latencies.append(time.perf_counter() - entry[1])
        result.codes[data[0]] += 1
        if expect is not None and data[0] == expect == rp.AccessAccept:
            result.addresses[entry[0]] = _framed_ip(data)
        complete(key)

    def on_timeout(key: tuple[int, int]) -> None:
        entry = pending.get(key)
        if entry is None:
            return
        if entry[2] > retries:
            result.timeouts += 1
            complete(key)
            return
        entry[2] += 1
        result.retransmissions += 1
        transports[key[0]].sendto(datagrams[entry[0]])
        entry[3] = loop.call_later(timeout, on_timeout, key)

    transports = []
    for index in range(prepared.sockets):
        transport, _ = await loop.create_datagram_endpoint(
            lambda index=index: _Socket(on_reply, index), remote_addr=(host, port))
        transports.append(transport)
    try:
        start = time.perf_counter()
        for j, datagram in enumerate(datagrams):
            await slots.acquire()
            key = (j % prepared.sockets, datagram[1])
            while key in pending:  # the identifier is still out on this socket: rare
                waiter = freed.setdefault(key, asyncio.Event())
                await waiter.wait()
            pending[key] = [j, time.perf_counter(), 1, loop.call_later(timeout, on_timeout, key)]
            transports[key[0]].sendto(datagram)
        if total:
            await finished
        result.seconds = time.perf_counter() - start
    finally:
        for transport in transports:
            transport.close()
    return result


def send(host: str, port: int, secret: bytes, prepared: Prepared, *, window: int = 64,
         timeout: float = 3.0, retries: int = 3, expect: int | None = None) -> Result:
    """Send every prepared datagram, `window` outstanding; returns when each was answered or
    given up."""
    return asyncio.run(_send(host, port, secret, prepared, window=window, timeout=timeout,
                             retries=retries, expect=expect))


def probe(host: str, port: int, secret: bytes, prepared: Prepared, *,
          deadline: float = 60.0) -> None:
    """Wait until a server answers every one of `prepared` (one per socket: with several
    processes sharing the port, each source reaches one of them)."""
    stop = time.monotonic() + deadline
    while True:
        # FreeRADIUS delays an Access-Reject by a second (reject_delay).
        result = send(host, port, secret, prepared, window=len(prepared.datagrams),
                      timeout=2.5, retries=0)
        if result.timeouts == 0 and not result.bad_replies:
            return
        if time.monotonic() > stop:
            raise RuntimeError(f"RADIUS on {host}:{port} did not answer within {deadline:.0f} s "
                               f"({result.summary()})")
        time.sleep(0.3)
