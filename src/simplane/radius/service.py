"""The AAA decisions of the APN: who may attach, with which address, and what they used.

Pure database work on plain values: the UDP server (server.py) parses packets into
`attributes.AccessRequest` / `AccountingRequest`, calls these in a worker thread inside one
transaction, and answers only after the commit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..core.config import Settings
from ..core.db import Rows, advisory_lock, is_postgres, upsert, write_rows
from ..core.ids import new_id
from ..events import service as events
from ..models import (
    ImeiObservation,
    Thing,
    ThingsGroup,
    UsageCycle,
    UsageDaily,
    UsageRecord,
    utcnow,
)
from ..networks import leases
from ..webhooks.service import enabled_webhooks_column, remember_subscribers
from . import repository
from .attributes import RAT_LABELS, RAT_NAMES, SERVED_MCC, AccessRequest, AccountingRequest, imei_of
from .repository import Row

DECISIONS = Counter("simplane_radius_decisions_total", "Access-Request decisions", ["result"])
ACCOUNTING = Counter("simplane_radius_accounting_total", "Accounting-Requests", ["status"])

REASON_TEXT = {
    "unknown_sim": "no SIM with this IMSI",
    "apn_mismatch": "the APN is not the platform's",
    "not_active": "the SIM is not ACTIVE",
    "data_disabled": "data service is disabled for this SIM",
    "roaming_not_allowed": "the serving network is outside the coverage (NL, BE, LU)",
    "rat_not_supported": "the radio access technology is not served",
    "imei_mismatch": "the device IMEI differs from the locked IMEI",
    "pool_exhausted": "no address is free in the Network's IP pools",
}


@dataclass(frozen=True)
class Decision:
    accepted: bool
    reason: str | None = None
    framed_ip: str | None = None
    thing_id: str | None = None

    @property
    def reply_message(self) -> str:
        return "accepted" if self.accepted else f"{self.reason}: {REASON_TEXT[self.reason or '']}"


def _rat_name(rat_type: int | None) -> str | None:
    return RAT_NAMES.get(rat_type) if rat_type is not None else None


def _country(mcc_mnc: str | None) -> str | None:
    return SERVED_MCC.get(mcc_mnc[:3]) if mcc_mnc else None


def _reject(session: Session, thing: Thing | None, reason: str, request: AccessRequest,
            **data: object) -> Decision:
    DECISIONS.labels(reason).inc()
    if thing is not None:
        events.emit(session, thing.account_id, "thing.attach_rejected", thing_id=thing.id,
                    data={"reason": reason, "imsi": request.imsi, "nas": request.nas_address,
                          "operator": request.sgsn_mcc_mnc, "rat_type": request.rat_type,
                          **data})
    return Decision(False, reason, thing_id=thing.id if thing else None)


class _Inserts:
    """Rows a batch only adds (IMEI observations, usage records), written by one executemany
    per table at its end instead of as ORM objects: nothing in the batch reads them back."""

    _KEY = "simplane.radius.inserts"

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rows: dict[type, list[dict]] = {}

    def __enter__(self) -> _Inserts:
        self.session.info[self._KEY] = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.session.info.pop(self._KEY, None)

    def shares(self) -> list[Rows]:
        """The rows for `write_rows`; none are left afterwards."""
        shares = [Rows(model.__table__, rows) for model, rows in self.rows.items()]
        self.rows.clear()
        return shares


def _insert_later(session: Session, model: type, row: dict) -> None:
    session.info[_Inserts._KEY].rows.setdefault(model, []).append(row)


def _observe_imei(session: Session, thing: Thing | Row, imei: str, imeisv: str | None,
                  operator: str | None, rat: str | None) -> None:
    """Record a new IMEI in the history and raise thing.imei_changed."""
    if imei == thing.imei:
        return
    now = utcnow()
    _insert_later(session, ImeiObservation, {
        "id": new_id("imei"), "account_id": thing.account_id, "thing_id": thing.id,
        "imei": imei, "imeisv": imeisv, "previous_imei": thing.imei, "observed_at": now,
        "operator": operator, "rat": rat})
    events.emit(session, thing.account_id, "thing.imei_changed", thing_id=thing.id,
                data={"previous_imei": thing.imei, "imei": imei, "imeisv": imeisv,
                      "operator": operator, "country": _country(operator)}, occurred_at=now)
    thing.imei = imei
    thing.updated_at = now


def authorize(session: Session, settings: Settings, request: AccessRequest) -> Decision:
    return authorize_many(session, settings, [request])[0]


def authorize_many(session: Session, settings: Settings,
                   requests: Sequence[AccessRequest]) -> list[Decision]:
    """Decide Access-Requests that arrived together, in one transaction, with the answers they
    would get one after the other: their Things are read and locked by one query, and each
    Network hands out its addresses under one lock (`leases.allocate_dynamic_many`); their
    events are written by one statement at the end."""
    with events.EventBuffer(session) as buffer, _Inserts(session) as inserts:
        decisions = _authorize_many(session, settings, requests)
        session.flush()  # whatever the allocation left to the unit of work, before the rows
        write_rows(session.connection(), [*inserts.shares(), *buffer.shares()])
    return decisions


def _authorize_many(session: Session, settings: Settings,
                    requests: Sequence[AccessRequest]) -> list[Decision]:
    imsis = {r.imsi for r in requests if r.imsi}
    things: dict[str, Thing] = {}
    networks: dict[str, str] = {}
    if imsis:
        postgres = is_postgres(session)
        for thing, network_id, *subscribed in session.execute(
                _THINGS_OF_IMSIS_WITH_WEBHOOKS if postgres else _THINGS_OF_IMSIS,
                {"imsis": list(imsis)}):
            things[thing.imsi] = thing
            networks[thing.things_group_id] = network_id
            if subscribed:
                remember_subscribers(session, thing.account_id, subscribed[0])
    imeis = {thing.id: thing.imei for thing in things.values()}
    decisions: list[Decision | None] = []
    admitted: list[tuple[int, Thing]] = []
    with session.no_autoflush:  # the checks read nothing the batch changes
        for index, request in enumerate(requests):
            thing = things.get(request.imsi) if request.imsi else None
            decision = _check(session, settings, request, thing)
            if decision is None:
                assert thing is not None
                admitted.append((index, thing))
            decisions.append(decision)
    _write_imeis(session, [t for t in things.values() if t.imei != imeis[t.id]])
    waiting: dict[str, list[tuple[int, Thing]]] = {}
    for index, thing in admitted:
        waiting.setdefault(networks[thing.things_group_id], []).append((index, thing))
    for network_id in sorted(waiting):  # the same order in every batch
        batch = waiting[network_id]
        assignments = leases.allocate_dynamic_many(session, [t for _, t in batch], network_id)
        for (index, thing), assignment in zip(batch, assignments, strict=True):
            if assignment is None:
                events.emit(session, thing.account_id, "ip_pool.exhausted", thing_id=thing.id,
                            data={"network_id": network_id})
                decisions[index] = _reject(session, thing, "pool_exhausted", requests[index],
                                           network_id=network_id)
                continue
            DECISIONS.labels("accepted").inc()
            address = str(ipaddress.IPv4Address(assignment.address))
            decisions[index] = Decision(True, None, address, thing.id)
    assert all(d is not None for d in decisions)
    return decisions  # type: ignore[return-value]


# In id order, as every batch locks them: two batches never wait on each other crosswise.
# Their Networks come along.
_THINGS_OF_IMSIS = (
    select(Thing, ThingsGroup.network_id)
    .join(ThingsGroup, (ThingsGroup.account_id == Thing.account_id)
          & (ThingsGroup.id == Thing.things_group_id))
    .where(Thing.imsi.in_(bindparam("imsis", expanding=True)))
    .order_by(Thing.id).with_for_update(of=Thing))
# On PostgreSQL with the account's enabled webhooks: the events the batch raises (a new IMEI,
# an exhausted pool) need no query of their own for their outbox rows.
_THINGS_OF_IMSIS_WITH_WEBHOOKS = _THINGS_OF_IMSIS.add_columns(
    enabled_webhooks_column(Thing.account_id))


def _write_imeis(session: Session, things: Sequence[Thing]) -> None:
    """The new IMEIs of these Things written by one statement and left out of the unit of work
    (its flush cost more than the rows). Now, where the flush before the allocation wrote
    them: the allocation sets the Things' updated_at after them."""
    if not things:
        return
    write_rows(session.connection(), [Rows(Thing.__table__, [
        {"id": t.id, "imei": t.imei, "updated_at": t.updated_at} for t in things],
        keys=("id",), update=True)])
    for thing in things:
        set_committed_value(thing, "imei", thing.imei)
        set_committed_value(thing, "updated_at", thing.updated_at)


def _check(session: Session, settings: Settings, request: AccessRequest,
           thing: Thing | None) -> Decision | None:
    """The rejection this request gets before any address is looked at, or None: admitted
    (a new IMEI is recorded on the way)."""
    if thing is None:
        return _reject(session, None, "unknown_sim", request)
    if (request.called_station_id or "").strip().lower() != settings.apn.lower():
        return _reject(session, thing, "apn_mismatch", request,
                       apn=request.called_station_id)
    if thing.state != "ACTIVE":
        return _reject(session, thing, "not_active", request, state=thing.state)
    if not thing.service_data:
        return _reject(session, thing, "data_disabled", request)
    if _country(request.sgsn_mcc_mnc) is None:
        return _reject(session, thing, "roaming_not_allowed", request)
    if request.rat_type not in RAT_NAMES:
        return _reject(session, thing, "rat_not_supported", request,
                       rat=RAT_LABELS.get(request.rat_type or -1, str(request.rat_type)))
    imei = imei_of(request.imeisv)
    if imei is not None and thing.imei is not None and imei != thing.imei and thing.imei_lock:
        return _reject(session, thing, "imei_mismatch", request, imei=imei,
                       locked_imei=thing.imei)
    if imei is not None:
        _observe_imei(session, thing, imei, request.imeisv, request.sgsn_mcc_mnc,
                      _rat_name(request.rat_type))
    return None


# --- accounting ----------------------------------------------------------------------------

START, STOP, INTERIM, ACCOUNTING_ON, ACCOUNTING_OFF = 1, 2, 3, 7, 8
STATUS_NAMES = {START: "start", STOP: "stop", INTERIM: "interim", ACCOUNTING_ON: "on",
                ACCOUNTING_OFF: "off"}
TERMINATE_CAUSES = {1: "user_request", 2: "lost_carrier", 3: "lost_service", 4: "idle_timeout",
                    5: "session_timeout", 6: "admin_reset", 7: "admin_reboot", 10: "nas_request",
                    11: "nas_reboot", 15: "service_unavailable"}


def account(session: Session, request: AccountingRequest) -> None:
    """Apply one Accounting-Request. Idempotent: counters are cumulative per session, so a
    retransmitted or duplicated record adds nothing."""
    account_many(session, [request])


def account_many(session: Session, requests: Sequence[AccountingRequest]) -> None:
    """Apply Accounting-Requests that arrived together, in order, in one transaction: the
    outcome of applying them one after the other, with their sessions, Things and leases read
    and locked by a few queries as plain rows (`repository`), changed in memory, and written
    back by one statement each, the day roll-ups by one statement."""
    with events.EventBuffer(session) as buffer, _Inserts(session) as inserts:
        batch = _Batch(session, requests)
        for request in requests:
            _account_one(batch, request)
        write_rows(batch.connection, [*batch.changes(), *batch.usage.shares(),
                                      *inserts.shares(), *buffer.shares()])


def _account_one(batch: _Batch, request: AccountingRequest) -> None:
    ACCOUNTING.labels(STATUS_NAMES.get(request.status_type, "other")).inc()
    now = utcnow()
    if request.status_type in (ACCOUNTING_ON, ACCOUNTING_OFF):
        _close_all_of_nas(batch, request.nas_address, request.event_time or now)
        return
    key = _key(request)
    if key is None:
        return
    record = batch.sessions.get(key)
    if record is None:
        thing = batch.things_by_imsi.get(request.imsi) if request.imsi else None
        if thing is None:
            return  # not ours: acknowledged so the NAS stops retransmitting, and dropped
        record = batch.sessions[key] = _open(batch, thing, request, now)
    else:
        thing = batch.thing(record.thing_id)
    when = request.event_time or now
    _count(batch, thing, record, request, when)
    if request.status_type == STOP and record.status == "OPEN":
        _close(batch, thing, record, when, TERMINATE_CAUSES.get(
            request.terminate_cause or 0, str(request.terminate_cause or "stop")))
    elif request.status_type == START and record.status == "OPEN":
        record.last_update_at = max(record.last_update_at, when)


def _key(request: AccountingRequest) -> tuple[str, str] | None:
    if request.status_type not in (START, STOP, INTERIM) or not request.acct_session_id:
        return None
    return request.nas_address, request.acct_session_id


class _Batch:
    """What a batch of Accounting-Requests reads, read (and locked) once for all of them, as
    rows (`repository.Row`: a Thing's row carries its Network) that the requests change in
    memory and `write` writes back."""

    def __init__(self, session: Session, requests: Sequence[AccountingRequest]) -> None:
        self.session = session
        self.connection = session.connection()
        self.sessions: dict[tuple[str, str], Row] = {}
        # Sessions the requests do not name (those an Accounting-On closes).
        self.other_sessions: list[Row] = []
        self.things_by_id: dict[str, Row] = {}
        self.things_by_imsi: dict[str, Row] = {}
        self.usage = _DailyUsage(session)
        self._leases: dict[tuple[str, str], Row] = {}
        self._lease_things: set[str] = set()
        keys = {key for key in map(_key, requests) if key is not None}
        if not keys:
            return
        imsis = {r.imsi for r in requests if r.imsi and _key(r) is not None}
        # The Things' rows first, then their sessions': the order of the API's changes (a
        # PATCH locks the Thing, then marks its sessions for disconnection), so that the two
        # never deadlock on PostgreSQL. The Things are those the records name and those of
        # their known sessions. A batch that may count usage takes the usage writers' shared
        # lock in the same statement (`_DailyUsage`); one of Starts only does not, so that a
        # usage import, which holds it exclusively for minutes, never holds up attaches.
        from ..billing.closing import CLOSE_LOCK

        counts = any(r.status_type in (INTERIM, STOP) for r in requests)
        things = repository.things_of_records(
            self.connection, imsis, keys, shared_lock=CLOSE_LOCK if counts else None)
        self._add_things(things)
        # The statement takes the lock with its first row (SQLite needs none).
        self.usage.locked = counts and bool(things) and is_postgres(session)
        # Read locked, after the Things: another copy of a Start (a retransmission with a new
        # Acct-Delay-Time) may have opened its session while this one waited for the Thing.
        self.sessions = {(r.nas_address, r.acct_session_id): r
                         for r in repository.sessions_of_records(self.connection, keys)}
        # What opening and closing sessions read, read now, for all of them at once.
        if self.things_by_id and (keys - self.sessions.keys() or any(
                r.status_type in (START, STOP) for r in requests)):
            self._read_leases(set(self.things_by_id))

    def _add_things(self, things: Sequence[Row]) -> None:
        for thing in things:
            self.things_by_id[thing.id] = thing
            self.things_by_imsi[thing.imsi] = thing
            subscribed = getattr(thing, "webhooks", None)  # read with the Thing on PostgreSQL
            if subscribed is not None:
                remember_subscribers(self.session, thing.account_id, subscribed)

    def thing(self, thing_id: str) -> Row:
        if thing_id not in self.things_by_id:
            self.lock_things({thing_id})
        return self.things_by_id[thing_id]

    def lock_things(self, thing_ids: set[str]) -> None:
        """Read and lock those of these Things the batch does not hold yet (a session opened
        by another batch while this one waited, or one Accounting-On closes)."""
        missing = thing_ids - self.things_by_id.keys()
        if missing:
            self._add_things(repository.things_by_id(self.connection, missing))

    def lease(self, network_id: str, thing: Row) -> Row | None:
        """The Thing's lease on the Network, locked."""
        if thing.id not in self._lease_things:
            self._read_leases({thing.id})
        return self._leases.get((network_id, thing.id))

    def _read_leases(self, thing_ids: set[str]) -> None:
        for lease in repository.leases_of_things(self.connection, thing_ids):
            self._leases[(lease.network_id, lease.thing_id)] = lease
        self._lease_things |= thing_ids

    def changes(self) -> list[Rows]:
        """What the requests changed in the rows read, for `write_rows`."""
        return repository.changes(self.things_by_id.values(),
                                  [*self.sessions.values(), *self.other_sessions],
                                  self._leases.values(), utcnow())


def _open(batch: _Batch, thing: Row, request: AccountingRequest, now: datetime) -> Row:
    when = request.event_time or now
    network_id = thing.network_id
    rat = _rat_name(request.rat_type)
    record = repository.new_session({
        "id": new_id("session"), "account_id": thing.account_id, "thing_id": thing.id,
        "network_id": network_id, "nas_address": request.nas_address,
        "nas_identifier": request.nas_identifier, "acct_session_id": request.acct_session_id,
        "framed_ip": request.framed_ip or thing.ip_address, "imsi": thing.imsi, "rat": rat,
        "operator": request.sgsn_mcc_mnc, "country": _country(request.sgsn_mcc_mnc),
        "status": "OPEN", "started_at": when, "last_update_at": when, "ended_at": None,
        "bytes_up": 0, "bytes_down": 0, "terminate_cause": None, "disconnect_status": None,
        "disconnect_reason": None, "disconnect_attempts": 0, "disconnect_at": None})
    # A session holds its dynamic lease: no expiry clock while it is open.
    lease = batch.lease(network_id, thing)
    if lease is not None and lease.kind == leases.DYNAMIC:
        lease.expires_at = None
    thing.connection_status = "ATTACHED"
    thing.connection_since = when
    thing.connection_rat = record.rat
    thing.connection_country = record.country
    thing.connection_operator = record.operator
    thing.connection_session_id = record.id
    thing.updated_at = now
    events.emit(batch.session, thing.account_id, "thing.attached", thing_id=thing.id,
                data={"session_id": record.id, "ip_address": record.framed_ip,
                      "rat": record.rat, "operator": record.operator, "country": record.country,
                      "nas": record.nas_address}, occurred_at=when)
    if request.imeisv:
        imei = imei_of(request.imeisv)
        if imei:
            _observe_imei(batch.session, thing, imei, request.imeisv, request.sgsn_mcc_mnc,
                          record.rat)
    return record


def _count(batch: _Batch, thing: Row, record: Row, request: AccountingRequest,
           when: datetime) -> None:
    # Acct-Input is what the NAS received from the device: the Thing's upload.
    up = request.input_octets - record.bytes_up
    down = request.output_octets - record.bytes_down
    if up < 0 or down < 0:
        return  # an older record arriving late: its counters are already included
    if up == 0 and down == 0:
        return
    late = batch.usage.add(thing.account_id, thing.id, when, bytes_up=up, bytes_down=down)
    record.bytes_up = request.input_octets
    record.bytes_down = request.output_octets
    record.last_update_at = max(record.last_update_at, when)
    _insert_later(batch.session, UsageRecord, {
        "id": new_id("usage"), "account_id": thing.account_id, "thing_id": thing.id,
        "session_id": record.id, "recorded_at": when, "bytes_up": up, "bytes_down": down,
        "late": late})


class _DailyUsage:
    """`add_daily` for a batch: the closing lock taken once, each day's attribution looked up
    once, and the increments summed per Thing and day into one upsert at the end (nothing in
    the batch reads the roll-ups)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.locked = False
        self.days: dict[tuple[str, date], tuple[date, bool]] = {}
        self.rows: dict[tuple[str, date], dict] = {}

    def add(self, account_id: str, thing_id: str, when: datetime, *, bytes_up: int,
            bytes_down: int) -> bool:
        from ..billing.closing import CLOSE_LOCK
        from ..billing.service import attribution_day

        if not self.locked:
            # Shared with every other usage writer, exclusive for the closer: usage never
            # lands in a cycle while it is being frozen.
            advisory_lock(self.session, CLOSE_LOCK, shared=True)
            self.locked = True
        attribution = self.days.get((account_id, when.date()))
        if attribution is None:
            counted, late = attribution_day(self.session, account_id, when)
            attribution = self.days[(account_id, when.date())] = (counted.date(), late)
        day, late = attribution
        row = self.rows.setdefault((thing_id, day), {
            "thing_id": thing_id, "day": day, "account_id": account_id, "bytes_up": 0,
            "bytes_down": 0, "sms_mt": 0, "sms_mo": 0})
        row["bytes_up"] += bytes_up
        row["bytes_down"] += bytes_down
        return late

    def write(self) -> None:
        write_rows(self.session.connection(), self.shares())

    def shares(self) -> list[Rows]:
        """The day and cycle increments, for `write_rows`; none are left afterwards."""
        from ..billing import rollups

        if not self.rows:
            return []
        rows = [self.rows[k] for k in sorted(self.rows)]
        self.rows.clear()
        return [Rows(UsageDaily.__table__, rows, keys=("thing_id", "day"),
                     increment=rollups.COUNTERS),
                Rows(UsageCycle.__table__, rollups.cycle_rows(rows), keys=("period", "thing_id"),
                     increment=rollups.COUNTERS)]


def add_daily(session: Session, account_id: str, thing_id: str, when: datetime, *,
              bytes_up: int = 0, bytes_down: int = 0, sms_mt: int = 0, sms_mo: int = 0) -> bool:
    """Add usage to the Thing's day; True when it was late (its cycle already CLOSED, so it
    counts today, in the open cycle)."""
    from ..billing import rollups
    from ..billing.closing import CLOSE_LOCK
    from ..billing.service import attribution_day

    # Shared with every other usage writer, exclusive for the closer: usage never lands in a
    # cycle while it is being frozen.
    advisory_lock(session, CLOSE_LOCK, shared=True)
    when, late = attribution_day(session, account_id, when)
    row = {"thing_id": thing_id, "day": when.date(), "account_id": account_id,
           "bytes_up": bytes_up, "bytes_down": bytes_down, "sms_mt": sms_mt, "sms_mo": sms_mo}
    upsert(session, UsageDaily, row, keys=("thing_id", "day"), increment=rollups.COUNTERS)
    rollups.add_days(session, [row])
    return late


def _close(batch: _Batch, thing: Row, record: Row, when: datetime, cause: str) -> None:
    record.status = "CLOSED"
    record.ended_at = when
    record.terminate_cause = cause
    if thing.connection_session_id == record.id:
        thing.connection_status = "DETACHED"
        thing.connection_since = when
        thing.connection_session_id = None
        thing.updated_at = utcnow()
    _start_lease_clock(batch, thing, record.network_id)
    events.emit(batch.session, thing.account_id, "thing.detached", thing_id=thing.id,
                data={"session_id": record.id, "cause": cause, "bytes_up": record.bytes_up,
                      "bytes_down": record.bytes_down}, occurred_at=when)


def _start_lease_clock(batch: _Batch, thing: Row, network_id: str | None) -> None:
    if network_id is None:
        return
    lease = batch.lease(network_id, thing)
    if lease is None or lease.kind != leases.DYNAMIC:
        return
    lease.expires_at = utcnow() + timedelta(seconds=lease.lease_seconds)


def _close_all_of_nas(batch: _Batch, nas_address: str, when: datetime) -> None:
    # Sessions opened or closed earlier in the batch.
    write_rows(batch.connection, batch.changes())
    records = repository.open_sessions_of_nas(batch.connection, nas_address)
    batch.lock_things({r.thing_id for r in records})
    for row in records:
        # The batch's own row where it holds one: a later record of the session sees it closed.
        record = batch.sessions.get((row.nas_address, row.acct_session_id))
        if record is None:
            record = row
            batch.other_sessions.append(row)
        thing = batch.things_by_id.get(record.thing_id)
        if thing is not None:
            _close(batch, thing, record, when, "nas_reboot")


def group_network(session: Session, thing: Thing) -> str:
    return session.scalar(select(ThingsGroup.network_id).where(  # type: ignore[return-value]
        ThingsGroup.id == thing.things_group_id))
