"""`simplane emulate`: a packet gateway (GGSN/PGW) in front of an account's Things, speaking
real RADIUS to a running server.

Each event is one thing a gateway does for one device: an attach (Access-Request, then
Accounting Start with the granted address), an Interim-Update with grown cumulative counters, a
detach (Stop), or an MO SMS through `POST /v1/network/sms`. Devices sometimes come back in
another handset (a new IMEISV) or try a network outside the coverage. Disconnect-Requests from
the platform are answered and end the session with a Stop, as a gateway does.

The gateway's state is the server's: an open session of this NAS found in the database is
resumed (same Acct-Session-Id, counters continuing), so repeated runs never orphan sessions.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pyrad import packet as rp
from rich.live import Live
from rich.table import Table
from sqlalchemy import select

from ..accounts.service import require_account
from ..core.config import Settings
from ..core.db import Database
from ..models import DataSession, Thing
from ..radius.client import Answer, DisconnectListener, GatewayClient, local_address_towards
from ..radius.clients import parse_clients, secret_for
from .common import EXIT_USAGE, CliError, JsonFlag, err, open_database, out, print_json, state

log = logging.getLogger("simplane.emulator")

NAS_IDENTIFIER = "simplane-emulator"
CREDENTIAL_FILE = "emulator-network-credential.json"

# Serving networks (MCC+MNC) in the coverage, with how often a device is served there.
OPERATORS = {
    "20404": 20, "20408": 25, "20416": 15,  # NL: Vodafone, KPN, T-Mobile (Odido)
    "20601": 12, "20610": 8, "20620": 5,    # BE: Proximus, Orange, BASE
    "27001": 7, "27077": 4, "27099": 4,     # LU: POST, Tango, Orange
}
OUTSIDE_COVERAGE = ["26202", "20801", "23415"]  # DE, FR, GB: refused roaming_not_allowed
RAT_TYPES = {6: 55, 9: 25, 1: 10, 5: 4, 2: 6}  # EUTRAN, LTE-M, UTRAN, HSPA Evolution, GERAN
RAT_BY_NAME = {"4G": 6, "LTE-M": 9, "3G": 1, "2G": 2}  # the names sessions show, back to types
TACS = ["35349006", "86716005", "35290611", "35461110", "86037604", "35972709"]
TERMINATE_CAUSES = {1: 6, 4: 3, 2: 1}  # User-Request, Idle-Timeout, Lost-Carrier
ADMIN_RESET = 6  # the cause a gateway reports for a session ended by a Disconnect-Request

P_ROAM_OUTSIDE = 0.03
P_MOVE_NETWORK = 0.10
P_IMEI_SWAP = 0.06
P_SMS = 0.12
P_DETACH = 0.08
P_BURST = 0.02


@dataclass
class OpenSession:
    acct_session_id: str
    framed_ip: str | None
    bytes_up: int = 0
    bytes_down: int = 0
    started: float = field(default_factory=time.time)
    charging_id: int = 0
    operator: str | None = None
    rat: int | None = None


@dataclass
class Device:
    thing_id: str
    imsi: str
    imeisv: str
    operator: str
    rat: int
    session: OpenSession | None = None
    retry_at: float = 0.0
    attached_once: bool = False


@dataclass
class Summary:
    account_id: str
    things: int = 0
    events: int = 0
    access_requests: int = 0
    attaches: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    starts: int = 0
    interims: int = 0
    stops: int = 0
    disconnects: int = 0
    imei_swaps: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    sms_sent: int = 0
    sms_refused: Counter[str] = field(default_factory=Counter)
    sms_failed: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    resumed: int = 0
    attached: int = 0
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id, "things": self.things,
            "duration_seconds": round(self.seconds, 3), "events": self.events,
            "access_requests": self.access_requests, "attaches": self.attaches,
            "rejects": dict(sorted(self.rejects.items())),
            "accounting": {"start": self.starts, "interim": self.interims, "stop": self.stops},
            "disconnects": self.disconnects, "imei_swaps": self.imei_swaps,
            "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
            "sms": {"sent": self.sms_sent, "refused": dict(sorted(self.sms_refused.items())),
                    "failed": self.sms_failed},
            "retransmissions": self.retransmissions, "timeouts": self.timeouts,
            "resumed_sessions": self.resumed, "attached_at_end": self.attached,
        }


@dataclass
class ThingRow:
    id: str
    imsi: str
    imei: str | None
    session: OpenSession | None


def active_things(database: Database, account_id: str, limit: int,
                  nas_address: str) -> list[ThingRow]:
    """Up to `limit` ACTIVE Things of the account (oldest first), each with its open session
    when this NAS holds one."""
    with database.transaction(read_only=True) as session:
        require_account(session, account_id)
        things = session.execute(
            select(Thing.id, Thing.imsi, Thing.imei, Thing.connection_session_id)
            .where(Thing.account_id == account_id, Thing.state == "ACTIVE")
            .order_by(Thing.id).limit(limit)).all()
        session_ids = [t.connection_session_id for t in things if t.connection_session_id]
        open_sessions = {record.id: record for record in session.scalars(
            select(DataSession).where(DataSession.id.in_(session_ids),
                                      DataSession.status == "OPEN",
                                      DataSession.nas_address == nas_address))} \
            if session_ids else {}
        rows = []
        for thing in things:
            record = open_sessions.get(thing.connection_session_id or "")
            resumed = None if record is None else OpenSession(
                record.acct_session_id, record.framed_ip, record.bytes_up, record.bytes_down,
                record.started_at.timestamp(), operator=record.operator,
                rat=RAT_BY_NAME.get(record.rat or ""))
            rows.append(ThingRow(thing.id, thing.imsi, thing.imei, resumed))
        return rows


# --- MO SMS through the API -------------------------------------------------------------------

class SmsSender:
    """MO messages through `POST /v1/network/sms` with a network credential of the emulator's
    own, created on first use and kept (owner-readable) in the data folder."""

    def __init__(self, api_url: str, credential_path: Path,
                 create_credential: Callable[[], tuple[str, str]]) -> None:
        self.api_url = api_url.rstrip("/")
        self.credential_path = credential_path
        self.create_credential = create_credential
        self.http = httpx.Client(base_url=self.api_url, timeout=5.0)
        self.token: str | None = None
        self.paused_until = 0.0

    def _stored(self) -> tuple[str, str] | None:
        try:
            data = json.loads(self.credential_path.read_text())
            return str(data["client_id"]), str(data["client_secret"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store(self, client_id: str, client_secret: str) -> None:
        self.credential_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.credential_path.with_name(self.credential_path.name + ".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"client_id": client_id, "client_secret": client_secret}, handle)
        os.replace(temporary, self.credential_path)

    def _request_token(self, client_id: str, client_secret: str) -> str | None:
        response = self.http.post("/v1/oauth2/token", data={"grant_type": "client_credentials"},
                                  auth=(client_id, client_secret))
        return response.json()["access_token"] if response.status_code == 200 else None

    def _fresh_token(self) -> str:
        stored = self._stored()
        token = self._request_token(*stored) if stored else None
        if token is None:
            # None stored yet, or one of another database: a new one, kept for the next run.
            created = self.create_credential()
            self._store(*created)
            token = self._request_token(*created)
            if token is None:
                raise RuntimeError("the API refused the emulator's new network credential")
        return token

    def send(self, imsi: str, text: str) -> tuple[str, str | None]:
        """("sent", None), ("refused", code) or ("failed", why)."""
        if time.monotonic() < self.paused_until:
            return "failed", "paused"
        try:
            for attempt in (1, 2):
                if self.token is None:
                    self.token = self._fresh_token()
                response = self.http.post("/v1/network/sms", json={"imsi": imsi, "text": text},
                                          headers={"Authorization": f"Bearer {self.token}"})
                if response.status_code == 401 and attempt == 1:
                    self.token = None  # expired (or the server's key changed): once more
                    continue
                if response.is_success:
                    return "sent", None
                try:
                    code = str(response.json().get("code") or response.status_code)
                except ValueError:
                    code = str(response.status_code)
                return "refused", code
        except (httpx.HTTPError, RuntimeError, ValueError) as exc:
            # An API that is down must not stall the RADIUS side with timeouts at every event.
            self.paused_until = time.monotonic() + 30
            return "failed", str(exc)
        return "refused", "401"

    def close(self) -> None:
        self.http.close()


def sms_text(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return (f"t={rng.uniform(-5, 35):.1f}C h={rng.randrange(20, 95)}% "
                f"bat={rng.randrange(5, 100)}%")
    if kind == 1:
        return f"pos {rng.uniform(49.5, 53.5):.5f},{rng.uniform(3.4, 7.1):.5f} fix=3D"
    if kind == 2:
        return f"meter {rng.randrange(10_000, 99_999)}.{rng.randrange(10)} kWh"
    return rng.choice(["door open", "tamper alarm", "boot ok fw 2.4.1", "heartbeat"])


# --- the gateway -----------------------------------------------------------------------------

@dataclass
class EmulatorConfig:
    account_id: str
    things: int
    rate: float
    server_host: str
    auth_port: int
    acct_port: int
    secret: bytes
    timeout: float = 2.0
    retries: int = 3
    seed: int | None = None
    disconnect_port: int | None = None
    apn: str = "simplane.m2m"
    refresh_seconds: float = 15.0
    backoff: tuple[float, float] = (5.0, 15.0)


class Emulator:
    def __init__(self, config: EmulatorConfig, database: Database,
                 sms: SmsSender | None = None) -> None:
        self.config = config
        self.database = database
        self.sms = sms
        self.rng = random.Random(config.seed)
        self.nas_address = local_address_towards(config.server_host, config.auth_port)
        self.client = GatewayClient(config.server_host, config.auth_port, config.acct_port,
                                    config.secret, timeout=config.timeout,
                                    retries=config.retries)
        self.summary = Summary(config.account_id)
        self.devices: dict[str, Device] = {}
        self.stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # devices' sessions, shared with the Disconnect listener
        self._disconnects: list[str] = []
        self.listener: DisconnectListener | None = None
        self.listener_problem: str | None = None
        self.answered_once = False
        self._next_refresh = 0.0

    # -- lifecycle

    def open(self) -> Emulator:
        if self.config.disconnect_port:
            try:
                self.listener = DisconnectListener(
                    self.nas_address, self.config.disconnect_port, self.config.secret,
                    self._on_disconnect).start()
            except OSError as exc:
                self.listener_problem = (f"cannot answer Disconnect-Requests on "
                                         f"{self.nas_address}:{self.config.disconnect_port}: "
                                         f"{exc.strerror or exc}")
        self.refresh()
        return self

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        self.client.close()
        if self.sms is not None:
            self.sms.close()

    def refresh(self) -> None:
        """Follow the account: newly ACTIVE Things join (up to the limit); Things no longer
        ACTIVE leave once detached (until then their session is the gateway's to end)."""
        rows = active_things(self.database, self.config.account_id, self.config.things,
                             self.nas_address)
        wanted = {row.id for row in rows}
        with self._lock:
            for thing_id in [d for d, device in self.devices.items()
                             if d not in wanted and device.session is None]:
                del self.devices[thing_id]
            for row in rows:
                if row.id in self.devices or len(self.devices) >= self.config.things:
                    continue
                imeisv = (row.imei[:14] + f"{self.rng.randrange(100):02d}") if row.imei \
                    else self._new_imeisv()
                # A device's radio and usual network are its own, the same in every run.
                traits = random.Random(row.id)
                operator = (row.session and row.session.operator) or self._pick(OPERATORS, traits)
                rat = (row.session and row.session.rat) or self._pick(RAT_TYPES, traits)
                device = Device(row.id, row.imsi, imeisv, operator, rat, session=row.session,
                                attached_once=row.session is not None)
                if row.session is not None:
                    self.summary.resumed += 1
                self.devices[row.id] = device
            self.summary.things = len(self.devices)
        self._next_refresh = time.monotonic() + self.config.refresh_seconds

    def run(self, duration: float | None = None,
            on_event: Callable[[Summary], None] | None = None) -> Summary:
        """Events at about `rate` a second until `duration` passes or `stop` is set."""
        interval = 1.0 / self.config.rate
        deadline = None if duration is None else time.monotonic() + duration
        next_tick = time.monotonic()
        while not self.stop.is_set():
            self._handle_disconnects()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= self._next_refresh:
                self.refresh()
            wait = next_tick - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
                continue
            self.step()
            if on_event is not None:
                on_event(self.summary)
            # A slow answer delays the schedule, never makes up for it with a burst.
            next_tick = max(next_tick + interval, time.monotonic() - interval)
        self._handle_disconnects()
        self.summary.attached = sum(1 for d in self.devices.values() if d.session)
        self.summary.ended = time.monotonic()
        return self.summary

    def interrupt(self) -> None:
        self.stop.set()
        self._wake.set()

    def detach_all(self) -> None:
        for device in list(self.devices.values()):
            if device.session is not None:
                self._stop_session(device, 1)
        self.summary.attached = 0

    # -- events

    def step(self) -> None:
        now = time.monotonic()
        ready = [d for d in self.devices.values() if d.retry_at <= now]
        if not ready:
            return
        device = self.rng.choice(ready)
        self.summary.events += 1
        if device.session is None:
            self._attach(device)
            return
        roll = self.rng.random()
        if roll < P_DETACH:
            self._stop_session(device, self._pick(TERMINATE_CAUSES))
            # Off for a few of its own turns: mostly attached, whatever the rate.
            turn = len(self.devices) / self.config.rate
            device.retry_at = now + self.rng.uniform(0.5, 3.0) * turn
        elif roll < P_DETACH + P_SMS and self.sms is not None:
            self._send_sms(device)
        else:
            self._interim(device)

    def _attach(self, device: Device) -> None:
        previous_imeisv = None
        if device.attached_once and self.rng.random() < P_IMEI_SWAP:
            previous_imeisv, device.imeisv = device.imeisv, self._new_imeisv()
        if self.rng.random() < P_MOVE_NETWORK:
            device.operator = self._pick(OPERATORS)
        operator = device.operator
        if self.rng.random() < P_ROAM_OUTSIDE:
            operator = self.rng.choice(OUTSIDE_COVERAGE)
        self.summary.access_requests += 1
        answer = self._exchange(self.client.access_request, {
            "User-Name": device.imsi, "3GPP-IMSI": device.imsi,
            "Called-Station-Id": self.config.apn,
            "3GPP-SGSN-MCC-MNC": operator, "3GPP-IMSI-MCC-MNC": device.imsi[:5],
            "3GPP-RAT-Type": device.rat, "3GPP-IMEISV": device.imeisv.encode(),
            "NAS-IP-Address": self.nas_address, "NAS-Identifier": NAS_IDENTIFIER,
            "Service-Type": 2, "Framed-Protocol": 7,  # Framed, GPRS-PDP-Context
        })
        now = time.monotonic()
        if answer.reply is None:
            device.retry_at = now + self.rng.uniform(*self.config.backoff)
            return
        if answer.code != rp.AccessAccept:
            message = str(answer.first("Reply-Message") or "rejected")
            reason = message.split(":", 1)[0].strip() or "rejected"
            self.summary.rejects[reason] += 1
            if reason == "imei_mismatch" and previous_imeisv:
                # The SIM goes back into the handset it is locked to.
                device.imeisv = previous_imeisv
            if reason == "roaming_not_allowed":
                # Refused abroad, the device soon reselects a network of the coverage.
                device.retry_at = now + self.rng.uniform(0.2, 1.0)
            else:
                device.retry_at = now + self.rng.uniform(*self.config.backoff)
            return
        self.summary.attaches += 1
        if previous_imeisv:
            self.summary.imei_swaps += 1
        device.attached_once = True
        framed_ip = answer.first("Framed-IP-Address")
        opened = OpenSession(secrets.token_hex(8), str(framed_ip) if framed_ip else None,
                             charging_id=self.rng.getrandbits(31))
        with self._lock:
            device.session = opened
        self.summary.starts += 1
        self._accounting(device, "Start", opened)

    def _interim(self, device: Device) -> None:
        current = device.session
        assert current is not None
        up = self.rng.randrange(800, 40_000)
        down = self.rng.randrange(300, 20_000)
        if self.rng.random() < P_BURST:  # a firmware image or a log upload
            down += self.rng.randrange(1_000_000, 5_000_000)
        current.bytes_up += up
        current.bytes_down += down
        self.summary.bytes_up += up
        self.summary.bytes_down += down
        self.summary.interims += 1
        self._accounting(device, "Interim-Update", current)

    def _stop_session(self, device: Device, cause: int) -> None:
        with self._lock:
            current, device.session = device.session, None
        if current is None:
            return
        up, down = self.rng.randrange(0, 2_000), self.rng.randrange(0, 1_000)
        current.bytes_up += up
        current.bytes_down += down
        self.summary.bytes_up += up
        self.summary.bytes_down += down
        self.summary.stops += 1
        self._accounting(device, "Stop", current, {"Acct-Terminate-Cause": cause})

    def _accounting(self, device: Device, status: str, current: OpenSession,
                    extra: dict[str, object] | None = None) -> Answer:
        now = time.time()
        attributes: dict[str, object] = {
            "Acct-Status-Type": status, "Acct-Session-Id": current.acct_session_id,
            "User-Name": device.imsi, "3GPP-IMSI": device.imsi,
            "Called-Station-Id": self.config.apn, "Framed-IP-Address": current.framed_ip,
            "3GPP-SGSN-MCC-MNC": device.operator, "3GPP-RAT-Type": device.rat,
            "3GPP-IMEISV": device.imeisv.encode(), "3GPP-Charging-ID": current.charging_id,
            "NAS-IP-Address": self.nas_address, "NAS-Identifier": NAS_IDENTIFIER,
            "Event-Timestamp": int(now),
        }
        if status != "Start":
            attributes["Acct-Session-Time"] = max(0, int(now - current.started))
            # Cumulative for the session, split into 32-bit octets and gigawords (RFC 2869).
            attributes["Acct-Input-Octets"] = current.bytes_up % 2**32
            attributes["Acct-Input-Gigawords"] = current.bytes_up // 2**32
            attributes["Acct-Output-Octets"] = current.bytes_down % 2**32
            attributes["Acct-Output-Gigawords"] = current.bytes_down // 2**32
        attributes.update(extra or {})
        return self._exchange(self.client.accounting_request, attributes)

    def _send_sms(self, device: Device) -> None:
        assert self.sms is not None
        outcome, detail = self.sms.send(device.imsi, sms_text(self.rng))
        if outcome == "sent":
            self.summary.sms_sent += 1
        elif outcome == "refused":
            self.summary.sms_refused[detail or "refused"] += 1
        else:
            self.summary.sms_failed += 1
            log.warning("emulated MO SMS failed", extra={"reason": detail})

    def _exchange(self, send: Callable[[dict[str, object]], Answer],
                  attributes: dict[str, object]) -> Answer:
        answer = send(attributes)
        self.summary.retransmissions += answer.transmissions - 1
        if answer.reply is None:
            self.summary.timeouts += 1
            if not self.answered_once:
                raise NoAnswer(self.config)
        else:
            self.answered_once = True
        return answer

    # -- Disconnect-Requests (listener thread -> gateway loop)

    def _on_disconnect(self, acct_session_id: str) -> bool:
        with self._lock:
            held = any(d.session is not None and d.session.acct_session_id == acct_session_id
                       for d in self.devices.values())
            if held:
                self._disconnects.append(acct_session_id)
        if held:
            self._wake.set()
        return held

    def _handle_disconnects(self) -> None:
        with self._lock:
            pending, self._disconnects = self._disconnects, []
        for acct_session_id in pending:
            device = next((d for d in self.devices.values() if d.session is not None
                           and d.session.acct_session_id == acct_session_id), None)
            if device is None:
                continue
            self.summary.disconnects += 1
            self._stop_session(device, ADMIN_RESET)
            device.retry_at = time.monotonic() + self.rng.uniform(*self.config.backoff)

    # -- helpers

    def _pick(self, weights: dict[Any, int], rng: random.Random | None = None) -> Any:
        return (rng or self.rng).choices(list(weights), weights=list(weights.values()))[0]

    def _new_imeisv(self) -> str:
        # TAC + serial + software version: the server derives the IMEI's Luhn digit itself.
        return (self.rng.choice(TACS) + f"{self.rng.randrange(10**6):06d}"
                + f"{self.rng.randrange(100):02d}")


class NoAnswer(Exception):
    def __init__(self, config: EmulatorConfig) -> None:
        super().__init__(
            f"no answer from the RADIUS server at {config.server_host}:{config.auth_port} "
            f"after {config.retries + 1} tries: is `simplane serve` running there, is this "
            "machine one of its clients (SIMPLANE_RADIUS_CLIENTS) and is the secret the same?")


# --- output ----------------------------------------------------------------------------------

def _megabytes(count: int) -> str:
    return f"{count / 1_000_000:.2f} MB"


def summary_table(summary: Summary, title: str) -> Table:
    data = summary.as_json()
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rejects = ", ".join(f"{name} {count}" for name, count in data["rejects"].items()) or "none"
    refused = ", ".join(f"{name} {count}" for name, count in data["sms"]["refused"].items())
    rows = [
        ("Things", f"{summary.things} ({summary.attached} attached"
                   + (f", {summary.resumed} sessions resumed" if summary.resumed else "") + ")"),
        ("events", f"{summary.events} in {summary.seconds:.1f} s"),
        ("attaches", f"{summary.attaches} of {summary.access_requests} Access-Requests"),
        ("rejects", rejects),
        ("accounting", (f"{summary.starts} Start, {summary.interims} Interim-Update, "
                        f"{summary.stops} Stop")),
        ("disconnects", str(summary.disconnects)),
        ("IMEI swaps", str(summary.imei_swaps)),
        ("usage", f"{_megabytes(summary.bytes_up)} up, {_megabytes(summary.bytes_down)} down"),
        ("MO SMS", f"{summary.sms_sent} sent" + (f", refused: {refused}" if refused else "")
                   + (f", {summary.sms_failed} failed" if summary.sms_failed else "")),
        ("retries", f"{summary.retransmissions} retransmissions, {summary.timeouts} timeouts"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


@contextmanager
def interruptible(emulator: Emulator) -> Iterator[None]:
    """The first Ctrl-C (or SIGTERM) ends the run after the exchange in flight; a second one
    aborts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: object) -> None:
        if emulator.stop.is_set():
            raise KeyboardInterrupt
        emulator.interrupt()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def resolve_secret(settings: Settings, host: str, port: int, given: str | None) -> bytes:
    if given is not None:
        return given.encode()
    nas = local_address_towards(host, port)
    secret = secret_for(parse_clients(settings.radius_clients), nas)
    if secret is None:
        raise CliError(f"SIMPLANE_RADIUS_CLIENTS has no secret for this NAS address {nas}; "
                       "pass --secret", EXIT_USAGE)
    return secret


def network_credential_factory(database: Database, name: str) -> Callable[[], tuple[str, str]]:
    def create() -> tuple[str, str]:
        from ..users.service import create_network_credential

        with database.transaction() as session:
            return create_network_credential(session, name)

    return create


def register(app: typer.Typer) -> None:
    @app.command("emulate")
    def emulate(
        ctx: typer.Context,
        account_id: Annotated[str, typer.Option("--account", metavar="ID",
                                                help="The account whose Things attach.")],
        things: Annotated[int, typer.Option("--things", min=1, max=10_000, metavar="N",
                                            help="At most this many ACTIVE Things.")] = 10,
        rate: Annotated[float, typer.Option("--rate", min=0.1, max=1000, metavar="R",
                                            help="Events per second.")] = 5.0,
        duration: Annotated[float | None, typer.Option(
            "--duration", min=0.1, metavar="S",
            help="Seconds to run; default: until Ctrl-C.", show_default=False)] = None,
        server_host: Annotated[str | None, typer.Option(
            "--server-host", help="The RADIUS server; default: SIMPLANE_RADIUS_BIND "
                                  "(loopback for a wildcard bind).", show_default=False)] = None,
        auth_port: Annotated[int | None, typer.Option(
            "--auth-port", min=1, max=65535,
            help="Default: SIMPLANE_RADIUS_AUTH_PORT (1812).", show_default=False)] = None,
        acct_port: Annotated[int | None, typer.Option(
            "--acct-port", min=1, max=65535,
            help="Default: SIMPLANE_RADIUS_ACCT_PORT (1813).", show_default=False)] = None,
        secret: Annotated[str | None, typer.Option(
            "--secret", help="Shared secret; default: this NAS's in SIMPLANE_RADIUS_CLIENTS.",
            show_default=False)] = None,
        disconnect_port: Annotated[int | None, typer.Option(
            "--disconnect-port", min=0, max=65535,
            help="UDP port answering the platform's Disconnect-Requests; default: "
                 "SIMPLANE_RADIUS_DISCONNECT_PORT (3799); 0: none.", show_default=False)] = None,
        api_url: Annotated[str, typer.Option(
            "--api-url", help="Where MO SMS are posted (POST /v1/network/sms).")
        ] = "http://127.0.0.1:8080",
        sms: Annotated[bool, typer.Option("--sms/--no-sms", help="Send MO SMS.")] = True,
        timeout: Annotated[float, typer.Option("--timeout", min=0.05, max=30,
                                               help="Seconds before a retransmission.")] = 2.0,
        retries: Annotated[int, typer.Option("--retries", min=0, max=10,
                                             help="Retransmissions of an unanswered request.")
                           ] = 3,
        seed: Annotated[int | None, typer.Option("--seed", help="Repeatable randomness.",
                                                 show_default=False)] = None,
        detach_on_exit: Annotated[bool, typer.Option(
            "--detach-on-exit", help="Stop every open session before exiting (default: leave "
                                     "them open; the next run resumes them).")] = False,
        json_output: JsonFlag = False,
    ) -> None:
        """Act as a packet gateway over real RADIUS for an account's ACTIVE Things: attaches,
        interim usage, detaches, IMEI swaps, MO SMS. Ctrl-C stops and prints a summary."""
        settings = state(ctx).settings()
        host = server_host or {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
            settings.radius_bind, settings.radius_bind)
        auth = auth_port or settings.radius_auth_port
        acct = acct_port or settings.radius_acct_port
        shared = resolve_secret(settings, host, auth, secret)
        config = EmulatorConfig(
            account_id=account_id, things=things, rate=rate, server_host=host, auth_port=auth,
            acct_port=acct, secret=shared, timeout=timeout, retries=retries, seed=seed,
            apn=settings.apn, disconnect_port=settings.radius_disconnect_port
            if disconnect_port is None else disconnect_port)
        with open_database(settings) as database:
            sender = SmsSender(api_url, settings.data_dir / CREDENTIAL_FILE,
                               network_credential_factory(database, "simplane emulate")) \
                if sms else None
            emulator = Emulator(config, database, sender)
            try:
                emulator.open()
                if not emulator.devices:
                    raise CliError(f"account {account_id} has no ACTIVE Things to attach; "
                                   "activate some (PATCH /v1/things/{id} "
                                   "{\"state\": \"ACTIVE\"}) first")
                if emulator.listener_problem and not json_output:
                    err.print(f"warning: {emulator.listener_problem}", style="yellow")
                summary = _run(emulator, duration, live=not json_output)
                if detach_on_exit:
                    emulator.detach_all()
            except NoAnswer as exc:
                raise CliError(str(exc)) from None
            finally:
                emulator.close()
        if json_output:
            print_json(summary.as_json())
        else:
            out.print(summary_table(summary, f"simplane emulate: {account_id} via "
                                             f"{host}:{auth}/{acct}"))


def _run(emulator: Emulator, duration: float | None, *, live: bool) -> Summary:
    with interruptible(emulator):
        if not live or not err.is_terminal:
            return emulator.run(duration)
        title = "emulating (Ctrl-C stops)"
        view = Live(summary_table(emulator.summary, title), console=err, transient=True,
                    refresh_per_second=4)
        last = [0.0]

        def update(summary: Summary) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.25:
                summary.attached = sum(1 for d in emulator.devices.values() if d.session)
                view.update(summary_table(summary, title))
                last[0] = now

        with view:
            return emulator.run(duration, on_event=update)


# --- in the background of `simplane demo` ---------------------------------------------------

class BackgroundEmulator:
    """The emulator in a daemon thread: waits until the API answers /readyz, then runs until
    stopped; a failure (the database busy, the server restarting) is logged and retried."""

    def __init__(self, settings: Settings, database: Database, *, account_id: str,
                 api_url: str, rate: float, things: int = 100) -> None:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(
            settings.radius_bind, settings.radius_bind)
        self.settings = settings
        self.database = database
        self.api_url = api_url
        self.config = EmulatorConfig(
            account_id=account_id, things=things, rate=rate, server_host=host,
            auth_port=settings.radius_auth_port, acct_port=settings.radius_acct_port,
            secret=resolve_secret(settings, host, settings.radius_auth_port, None),
            apn=settings.apn, disconnect_port=settings.radius_disconnect_port)
        self.emulator: Emulator | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="emulator")

    def start(self) -> BackgroundEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.emulator is not None:
            self.emulator.interrupt()
        # Not longer: an exchange in flight with a server that is shutting down only times out.
        self._thread.join(2)

    def _ready(self) -> bool:
        while not self._stop.is_set():
            try:
                if httpx.get(f"{self.api_url}/readyz", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            self._stop.wait(0.2)
        return False

    def _run(self) -> None:
        if not self._ready():
            return
        while not self._stop.is_set():
            sender = SmsSender(self.api_url, self.settings.data_dir / CREDENTIAL_FILE,
                               network_credential_factory(self.database, "simplane demo"))
            emulator = Emulator(self.config, self.database, sender)
            # In-process, the server answers or is shutting down: never a reason to give up.
            emulator.answered_once = True
            self.emulator = emulator
            if self._stop.is_set():
                emulator.interrupt()
            try:
                emulator.open()
                if emulator.listener_problem:
                    log.warning(emulator.listener_problem)
                emulator.run(None)
            except Exception:  # noqa: BLE001 - the demo's server must outlive its emulator
                log.exception("emulator failed; restarting in 5 s")
                self._stop.wait(5)
            finally:
                emulator.close()
