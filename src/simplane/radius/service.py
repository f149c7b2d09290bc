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
from sqlalchemy import insert, select, union
from sqlalchemy.orm import Session

from ..core.config import Settings
from ..core.db import advisory_lock, upsert
from ..core.ids import new_id
from ..events import service as events
from ..models import (
    DataSession,
    ImeiObservation,
    IpLease,
    IpPool,
    Thing,
    ThingsGroup,
    UsageDaily,
    UsageRecord,
    utcnow,
)
from ..networks import leases
from .attributes import RAT_LABELS, RAT_NAMES, SERVED_MCC, AccessRequest, AccountingRequest, imei_of

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

    def write(self) -> None:
        for model, rows in self.rows.items():
            self.session.execute(insert(model.__table__), rows)
        self.rows.clear()


def _insert_later(session: Session, model: type, row: dict) -> None:
    session.info[_Inserts._KEY].rows.setdefault(model, []).append(row)


def _observe_imei(session: Session, thing: Thing, imei: str, imeisv: str | None,
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
        inserts.write()
        buffer.write()
    return decisions


def _authorize_many(session: Session, settings: Settings,
                    requests: Sequence[AccessRequest]) -> list[Decision]:
    imsis = {r.imsi for r in requests if r.imsi}
    things: dict[str, Thing] = {}
    networks: dict[str, str] = {}
    if imsis:
        # In id order, as every batch locks them: two batches never wait on each other
        # crosswise. Their Networks come along.
        for thing, network_id in session.execute(
                select(Thing, ThingsGroup.network_id)
                .join(ThingsGroup, (ThingsGroup.account_id == Thing.account_id)
                      & (ThingsGroup.id == Thing.things_group_id))
                .where(Thing.imsi.in_(imsis)).order_by(Thing.id).with_for_update(of=Thing)):
            things[thing.imsi] = thing
            networks[thing.things_group_id] = network_id
    decisions: list[Decision | None] = []
    admitted: list[tuple[int, Thing]] = []
    with session.no_autoflush:  # one flush for the batch's events and IMEI records
        for index, request in enumerate(requests):
            thing = things.get(request.imsi) if request.imsi else None
            decision = _check(session, settings, request, thing)
            if decision is None:
                assert thing is not None
                admitted.append((index, thing))
            decisions.append(decision)
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
            address = str(ipaddress.IPv4Address(assignment.lease.address))
            decisions[index] = Decision(True, None, address, thing.id)
    assert all(d is not None for d in decisions)
    return decisions  # type: ignore[return-value]


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


def networks_of(session: Session, things: Sequence[Thing]) -> dict[str, str]:
    """The Network of each Things Group of these Things (one query)."""
    groups = {t.things_group_id for t in things}
    if not groups:
        return {}
    accounts = {t.account_id for t in things}
    return {group: network for group, network in session.execute(
        select(ThingsGroup.id, ThingsGroup.network_id).where(
            ThingsGroup.account_id.in_(accounts), ThingsGroup.id.in_(groups)))}


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
    and locked by a few queries and the day roll-ups written by one statement."""
    with events.EventBuffer(session) as buffer, _Inserts(session) as inserts:
        batch = _Batch(session, requests)
        # What the requests look up mid-batch never depends on the batch's own pending rows
        # (the one query that does, in `_close_all_of_nas`, flushes first): the changes go out
        # in one flush at the end instead of one per look-up.
        with session.no_autoflush:
            for request in requests:
                _account_one(session, batch, request)
        batch.usage.write()
        inserts.write()
        buffer.write()


def _account_one(session: Session, batch: _Batch, request: AccountingRequest) -> None:
    ACCOUNTING.labels(STATUS_NAMES.get(request.status_type, "other")).inc()
    now = utcnow()
    if request.status_type in (ACCOUNTING_ON, ACCOUNTING_OFF):
        _close_all_of_nas(session, batch, request.nas_address, request.event_time or now)
        return
    key = _key(request)
    if key is None:
        return
    record = batch.sessions.get(key)
    if record is None:
        thing = batch.things_by_imsi.get(request.imsi) if request.imsi else None
        if thing is None:
            return  # not ours: acknowledged so the NAS stops retransmitting, and dropped
        record = batch.sessions[key] = _open(session, batch, thing, request, now)
    else:
        thing = batch.thing(record.thing_id)
    when = request.event_time or now
    _count(batch, thing, record, request, when)
    if request.status_type == STOP and record.status == "OPEN":
        _close(session, batch, thing, record, when, TERMINATE_CAUSES.get(
            request.terminate_cause or 0, str(request.terminate_cause or "stop")))
    elif request.status_type == START and record.status == "OPEN":
        record.last_update_at = max(record.last_update_at, when)


def _key(request: AccountingRequest) -> tuple[str, str] | None:
    if request.status_type not in (START, STOP, INTERIM) or not request.acct_session_id:
        return None
    return request.nas_address, request.acct_session_id


class _Batch:
    """What a batch of Accounting-Requests reads, read (and locked) once for all of them."""

    def __init__(self, session: Session, requests: Sequence[AccountingRequest]) -> None:
        self.session = session
        self.sessions: dict[tuple[str, str], DataSession] = {}
        self.things_by_id: dict[str, Thing] = {}
        self.things_by_imsi: dict[str, Thing] = {}
        self.usage = _DailyUsage(session)
        self._leases: dict[tuple[str, str], IpLease] = {}
        self._lease_things: set[str] = set()
        self._networks: dict[str, str] = {}
        self._pools: dict[str, IpPool | None] = {}
        keys = {key for key in map(_key, requests) if key is not None}
        if not keys:
            return
        # Both columns as lists, which the unique index answers (a list of pairs would be
        # read as the NAS's every session); pairs that are not keys are left out below.
        sessions = (DataSession.nas_address.in_({nas for nas, _ in keys}),
                    DataSession.acct_session_id.in_({sid for _, sid in keys}))
        imsis = {r.imsi for r in requests if r.imsi and _key(r) is not None}
        # The Things' rows first, then their sessions': the order of the API's changes (a
        # PATCH locks the Thing, then marks its sessions for disconnection), so that the two
        # never deadlock on PostgreSQL; and in id order, as every batch locks them. The
        # Things are those the records name and those of their known sessions.
        named = union(select(Thing.id).where(Thing.imsi.in_(imsis)),
                      select(DataSession.thing_id).where(*sessions))
        for thing, network_id in session.execute(
                select(Thing, ThingsGroup.network_id)
                .join(ThingsGroup, (ThingsGroup.account_id == Thing.account_id)
                      & (ThingsGroup.id == Thing.things_group_id))
                .where(Thing.id.in_(named))
                .order_by(Thing.id).with_for_update(of=Thing)):
            self.things_by_id[thing.id] = thing
            self.things_by_imsi[thing.imsi] = thing
            self._networks[thing.things_group_id] = network_id
        # Read locked, after the Things: another copy of a Start (a retransmission with a new
        # Acct-Delay-Time) may have opened its session while this one waited for the Thing.
        self.sessions = {
            (r.nas_address, r.acct_session_id): r for r in session.scalars(
                select(DataSession).where(*sessions).with_for_update()
                .execution_options(populate_existing=True))
            if (r.nas_address, r.acct_session_id) in keys}
        # What opening and closing sessions read, read now: a query in the middle of the
        # batch would flush its pending changes one request at a time.
        if self.things_by_id and (keys - self.sessions.keys() or any(
                r.status_type in (START, STOP) for r in requests)):
            self._read_leases(set(self.things_by_id))

    def thing(self, thing_id: str) -> Thing:
        thing = self.things_by_id.get(thing_id)
        if thing is None:
            thing = self.session.get(Thing, thing_id, with_for_update=True)
            assert thing is not None
            self.things_by_id[thing_id] = thing
        return thing

    def network_of(self, thing: Thing) -> str:
        if thing.things_group_id not in self._networks:
            self._networks.update(networks_of(self.session, [thing, *self.things_by_id.values()]))
        return self._networks[thing.things_group_id]

    def pool(self, pool_id: str) -> IpPool | None:
        if pool_id not in self._pools:
            self._pools[pool_id] = self.session.get(IpPool, pool_id)
        return self._pools[pool_id]

    def lease(self, network_id: str, thing: Thing) -> IpLease | None:
        """The Thing's lease on the Network, locked."""
        if thing.id not in self._lease_things:
            self._read_leases({thing.id})
        return self._leases.get((network_id, thing.id))

    def _read_leases(self, thing_ids: set[str]) -> None:
        # The pools are held here with them: the session's identity map keeps only weak
        # references to clean objects, and reading a pool again per Stop would flush the
        # batch's pending changes every time.
        for lease, pool in self.session.execute(
                select(IpLease, IpPool).join(IpPool, IpPool.id == IpLease.pool_id)
                .where(IpLease.thing_id.in_(thing_ids)).with_for_update(of=IpLease)):
            self._leases[(lease.network_id, lease.thing_id)] = lease
            self._pools[pool.id] = pool
        self._lease_things |= thing_ids


def _open(session: Session, batch: _Batch, thing: Thing, request: AccountingRequest,
          now: datetime) -> DataSession:
    when = request.event_time or now
    network_id = batch.network_of(thing)
    record = DataSession(
        id=new_id("session"), account_id=thing.account_id, thing_id=thing.id,
        network_id=network_id, nas_address=request.nas_address,
        nas_identifier=request.nas_identifier, acct_session_id=request.acct_session_id,
        framed_ip=request.framed_ip or thing.ip_address, imsi=thing.imsi,
        rat=_rat_name(request.rat_type), operator=request.sgsn_mcc_mnc,
        country=_country(request.sgsn_mcc_mnc), status="OPEN", started_at=when,
        last_update_at=when, bytes_up=0, bytes_down=0)
    session.add(record)
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
    events.emit(session, thing.account_id, "thing.attached", thing_id=thing.id,
                data={"session_id": record.id, "ip_address": record.framed_ip,
                      "rat": record.rat, "operator": record.operator, "country": record.country,
                      "nas": record.nas_address}, occurred_at=when)
    if request.imeisv:
        imei = imei_of(request.imeisv)
        if imei:
            _observe_imei(session, thing, imei, request.imeisv, request.sgsn_mcc_mnc, record.rat)
    return record


def _count(batch: _Batch, thing: Thing, record: DataSession, request: AccountingRequest,
           when: datetime) -> None:
    # Acct-Input is what the NAS received from the device: the Thing's upload.
    up = request.input_octets - record.bytes_up
    down = request.output_octets - record.bytes_down
    if up < 0 or down < 0:
        return  # an older record arriving late: its counters are already included
    if up == 0 and down == 0:
        return
    # Before the record changes: a look-up here then flushes nothing of this request.
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
        from ..billing import rollups

        if self.rows:
            rows = [self.rows[k] for k in sorted(self.rows)]
            upsert(self.session, UsageDaily, rows, keys=("thing_id", "day"),
                   increment=rollups.COUNTERS)
            rollups.add_days(self.session, rows)
            self.rows.clear()


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


def _close(session: Session, batch: _Batch, thing: Thing, record: DataSession, when: datetime,
           cause: str) -> None:
    record.status = "CLOSED"
    record.ended_at = when
    record.terminate_cause = cause
    if thing.connection_session_id == record.id:
        thing.connection_status = "DETACHED"
        thing.connection_since = when
        thing.connection_session_id = None
        thing.updated_at = utcnow()
    _start_lease_clock(session, batch, thing, record.network_id)
    events.emit(session, thing.account_id, "thing.detached", thing_id=thing.id,
                data={"session_id": record.id, "cause": cause, "bytes_up": record.bytes_up,
                      "bytes_down": record.bytes_down}, occurred_at=when)


def _start_lease_clock(session: Session, batch: _Batch, thing: Thing,
                       network_id: str | None) -> None:
    if network_id is None:
        return
    lease = batch.lease(network_id, thing)
    if lease is None or lease.kind != leases.DYNAMIC:
        return
    pool = batch.pool(lease.pool_id)
    lease.expires_at = utcnow() + timedelta(seconds=pool.lease_seconds if pool else 86400)


def _close_all_of_nas(session: Session, batch: _Batch, nas_address: str, when: datetime) -> None:
    session.flush()  # sessions opened or closed earlier in the batch
    records = session.scalars(select(DataSession).where(
        DataSession.nas_address == nas_address, DataSession.status == "OPEN").with_for_update())
    for record in records:
        thing = session.get(Thing, record.thing_id, with_for_update=True)
        if thing is not None:
            batch.things_by_id.setdefault(thing.id, thing)
            _close(session, batch, thing, record, when, "nas_reboot")


def group_network(session: Session, thing: Thing) -> str:
    return session.scalar(select(ThingsGroup.network_id).where(  # type: ignore[return-value]
        ThingsGroup.id == thing.things_group_id))
