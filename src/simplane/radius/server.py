"""RADIUS authentication and accounting listeners (UDP, asyncio).

Each datagram is decoded with pyrad, checked (client secret, authenticators,
Message-Authenticator) and queued for a worker thread; each worker takes every request of its
kind that is waiting (up to `MAX_BATCH`), decides them in one transaction, and answers them only
after that transaction committed. Under load the batches grow, so one commit (and, for
Access-Requests, one hold of each Network's address lock) serves many requests; a lone request
is a batch of one. Should a batch fail, its requests are decided again one by one, each in its
own transaction, so one bad request never costs the others their answer. Retransmissions (same
source, identifier and authenticator) get the cached answer, or wait for the one being computed:
they never allocate or count twice.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pyrad import packet as rp
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from ..core.config import Settings
from ..core.db import Database, unit_of_work
from . import service
from .attributes import (
    MESSAGE_AUTHENTICATOR,
    ReceivedAttributes,
    access_reply,
    accounting_authentic,
    accounting_response,
    encode_value,
    load_dictionary,
    message_authenticator_ok,
    parse_access,
    parse_accounting,
)
from .clients import parse_clients, secret_for

log = logging.getLogger("simplane.radius")

DUPLICATE_WINDOW_SECONDS = 30.0
DUPLICATE_CACHE_SIZE = 50_000
# Requests decided in one transaction at most; and worker threads per kind. One: while it
# decides a batch the next one gathers, so batches grow with the load and their fixed costs
# (statements, planning, the commit) spread over more requests, and no second thread
# contends for the interpreter. Against two, on 20,000 SIMs with 64 requests outstanding
# and 2 processes: Access-Requests ~2,600 -> ~3,100 a second, accounting Starts, Interims
# and Stops each 15-20 % more, with less CPU per request in both serve and PostgreSQL. More
# processes (`serve --workers`) are the way to more parallel batches.
MAX_BATCH = 64
WORKERS_PER_KIND = 1


class _ReplyCache:
    def __init__(self) -> None:
        self._entries: OrderedDict[tuple, tuple[float, asyncio.Future[bytes | None]]] = OrderedDict()

    def get_or_start(self, key: tuple) -> tuple[asyncio.Future[bytes | None], bool]:
        now = time.monotonic()
        while self._entries:
            oldest_key, (stamp, _) = next(iter(self._entries.items()))
            if now - stamp < DUPLICATE_WINDOW_SECONDS and len(self._entries) < DUPLICATE_CACHE_SIZE:
                break
            self._entries.pop(oldest_key)
        if key in self._entries:
            return self._entries[key][1], False
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._entries[key] = (now, future)
        return future, True

    def forget(self, key: tuple, future: asyncio.Future[bytes | None]) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry[1] is future:
            del self._entries[key]


class _Batcher:
    """A queue of requests of one kind and the worker threads that decide them in batches."""

    def __init__(self, name: str, decide_many: Callable[[Sequence[Any]], Sequence[Any]],
                 decide_one: Callable[[Any], Any], workers: int) -> None:
        self.decide_many = decide_many
        self.decide_one = decide_one
        self.queue: deque[tuple[Any, asyncio.Future[Any]]] = deque()
        self.ready = threading.Condition()
        self.stopping = False
        self.threads = [threading.Thread(target=self._serve, name=f"radius-{name}-{i}",
                                         daemon=True) for i in range(workers)]

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        for thread in self.threads:
            thread.start()

    def submit(self, item: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = self.loop.create_future()
        with self.ready:
            self.queue.append((item, future))
            self.ready.notify()
        return future

    def stop(self) -> None:
        with self.ready:
            self.stopping = True
            self.ready.notify_all()
        for thread in self.threads:
            thread.join()

    def _serve(self) -> None:
        while True:
            with self.ready:
                while not self.queue and not self.stopping:
                    self.ready.wait()
                if not self.queue:
                    return
                batch = [self.queue.popleft() for _ in range(min(MAX_BATCH, len(self.queue)))]
            outcomes = self._decide([item for item, _ in batch])
            self.loop.call_soon_threadsafe(_settle, [f for _, f in batch], outcomes)

    def _decide(self, items: list[Any]) -> list[tuple[Any, BaseException | None]]:
        try:
            return [(result, None) for result in self.decide_many(items)]
        except Exception as exc:  # noqa: BLE001 - decided again one by one below
            if len(items) == 1:
                return [(None, exc)]
            log.warning("radius batch failed; deciding its requests one by one", exc_info=True)
        outcomes: list[tuple[Any, BaseException | None]] = []
        for item in items:
            try:
                outcomes.append((self.decide_one(item), None))
            except Exception as exc:  # noqa: BLE001 - one bad packet must not stop the others
                outcomes.append((None, exc))
        return outcomes


def _settle(futures: list[asyncio.Future[Any]],
            outcomes: list[tuple[Any, BaseException | None]]) -> None:
    for future, (result, error) in zip(futures, outcomes, strict=True):
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class RadiusServer:
    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.dictionary = load_dictionary()
        self.clients = parse_clients(settings.radius_clients)
        # Source address -> secret: a gateway sends from a few addresses, and matching each
        # datagram's source against the client networks again was a tenth of the listener's
        # time.
        self.secrets: dict[str, bytes | None] = {}
        self.authorizer = _Batcher("auth", self._authorize_many, self._authorize,
                                   WORKERS_PER_KIND)
        self.accountant = _Batcher("acct", self._account_many, self._account, WORKERS_PER_KIND)
        self.cache = _ReplyCache()
        self.connections = threading.local()
        self.opened: list[Connection] = []
        self.lock = threading.Lock()
        self.transports: list[asyncio.DatagramTransport] = []
        self.auth_port: int | None = None
        self.acct_port: int | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.authorizer.start(loop)
        self.accountant.start(loop)
        for kind in ("auth", "acct"):
            port = self.settings.radius_auth_port if kind == "auth" else self.settings.radius_acct_port
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            # Several `serve` processes share the ports; the kernel keeps one source on one
            # socket, so a NAS's retransmission reaches the process that has its answer.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.settings.radius_bind, port))
            transport, _ = await loop.create_datagram_endpoint(
                lambda kind=kind: _Protocol(self, kind), sock=sock)
            self.transports.append(transport)
            bound = sock.getsockname()[1]
            if kind == "auth":
                self.auth_port = bound
            else:
                self.acct_port = bound
        log.info("radius listening", extra={"bind": self.settings.radius_bind,
                                            "auth_port": self.auth_port,
                                            "acct_port": self.acct_port})

    async def stop(self) -> None:
        for transport in self.transports:
            transport.close()
        self.transports.clear()
        await asyncio.get_running_loop().run_in_executor(None, self._stop_workers)

    def _stop_workers(self) -> None:
        self.authorizer.stop()
        self.accountant.stop()
        with self.lock:
            for connection in self.opened:
                connection.close()
            self.opened.clear()

    async def handle(self, kind: str, data: bytes, address: tuple[str, int],
                     transport: asyncio.DatagramTransport) -> None:
        secret = self.secrets.get(address[0], b"")
        if secret == b"":
            secret = secret_for(self.clients, address[0])
            if len(self.secrets) < 4096:  # spoofed sources must not grow it without bound
                self.secrets[address[0]] = secret
        if secret is None or len(data) < 20:
            log.warning("radius datagram dropped", extra={"source": address[0],
                                                          "reason": "unknown client"})
            return
        key = (address, kind, data[1], data[4:20])
        future, first = self.cache.get_or_start(key)
        if first:
            try:
                reply = await self._answer(kind, data, address, secret)
            except Exception:  # noqa: BLE001 - one bad packet must not stop the listener
                log.exception("radius request failed", extra={"source": address[0]})
                reply = None
            future.set_result(reply)
            if reply is None:
                # Nothing was decided (dropped or failed): a forged copy or a transient database
                # error must not make the NAS's genuine retransmissions go unanswered.
                self.cache.forget(key, future)
        else:
            reply = await future
        if reply is not None:
            transport.sendto(reply, address)

    async def _answer(self, kind: str, data: bytes, address: tuple[str, int],
                      secret: bytes) -> bytes | None:
        # Read and answered without pyrad's Packet (see ReceivedAttributes): the same checks,
        # values and replies.
        attributes = ReceivedAttributes(self.dictionary, data)
        if kind == "auth":
            if data[0] != rp.AccessRequest or not self._message_authenticator_ok(
                    attributes, secret):
                return None
            parsed = parse_access(attributes, address[0])
            decision = await self.authorizer.submit(parsed)
            if decision is None:
                return None
            values = []
            if decision.accepted:
                values = [encode_value(self.dictionary, "Framed-IP-Address", decision.framed_ip),
                          encode_value(self.dictionary, "Acct-Interim-Interval",
                                       self.settings.radius_interim_interval)]
            values.append(encode_value(self.dictionary, "Reply-Message",
                                       decision.reply_message))
            return access_reply(attributes, secret,
                                rp.AccessAccept if decision.accepted else rp.AccessReject, values)
        if data[0] != rp.AccountingRequest or not accounting_authentic(attributes, secret):
            log.warning("radius accounting dropped", extra={"source": address[0],
                                                            "reason": "bad authenticator"})
            return None
        parsed = parse_accounting(attributes, address[0])
        if await self.accountant.submit(parsed) is None:
            return None
        return accounting_response(attributes, secret)

    def _message_authenticator_ok(self, request: ReceivedAttributes, secret: bytes) -> bool:
        if MESSAGE_AUTHENTICATOR in request:
            return message_authenticator_ok(request, secret)
        if self.settings.radius_require_message_authenticator:
            log.warning("access-request without Message-Authenticator dropped")
            return False
        return True

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """A transaction on the worker thread's own connection, kept from batch to batch: one
        taken from the pool would first be pinged, a round trip every batch waits for. A
        connection that broke is replaced at the next batch."""
        if not self.database.is_postgres:
            with self.database.transaction() as session:
                yield session
            return
        connection = getattr(self.connections, "connection", None)
        if connection is None or connection.invalidated or connection.closed:
            connection = self.connections.connection = self.database.engine.connect()
            with self.lock:
                self.opened.append(connection)
        with unit_of_work(Session(bind=connection, expire_on_commit=False,
                                  autoflush=True)) as session:
            yield session

    def _authorize_many(self, requests):  # type: ignore[no-untyped-def]
        with self._transaction() as session:
            return service.authorize_many(session, self.settings, requests)

    def _authorize(self, request):  # type: ignore[no-untyped-def]
        return self._authorize_many([request])[0]

    def _account_many(self, requests):  # type: ignore[no-untyped-def]
        # The Accounting-Responses leave only after this commit: a NAS that gets no answer
        # retransmits, and the cumulative counters make the retry count once.
        with self._transaction() as session:
            service.account_many(session, requests)
        return [True] * len(requests)

    def _account(self, request):  # type: ignore[no-untyped-def]
        return self._account_many([request])[0]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: RadiusServer, kind: str) -> None:
        self.server = server
        self.kind = kind
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        task = asyncio.ensure_future(self.server.handle(self.kind, data, addr, self.transport))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
