"""The AAA decisions of the APN: who may attach, with which address, and what they used.

Pure database work on plain values: the UDP server (server.py) parses packets into
`attributes.AccessRequest` / `AccountingRequest`, calls these in a worker thread inside one
transaction, and answers only after the commit.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import select, update
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


def _observe_imei(session: Session, thing: Thing, imei: str, imeisv: str | None,
                  operator: str | None, rat: str | None) -> None:
    """Record a new IMEI in the history and raise thing.imei_changed."""
    if imei == thing.imei:
        return
    now = utcnow()
    session.add(ImeiObservation(id=new_id("imei"), account_id=thing.account_id,
                                thing_id=thing.id, imei=imei, imeisv=imeisv,
                                previous_imei=thing.imei, observed_at=now, operator=operator,
                                rat=rat))
    events.emit(session, thing.account_id, "thing.imei_changed", thing_id=thing.id,
                data={"previous_imei": thing.imei, "imei": imei, "imeisv": imeisv,
                      "operator": operator, "country": _country(operator)}, occurred_at=now)
    thing.imei = imei
    thing.updated_at = now


def authorize(session: Session, settings: Settings, request: AccessRequest) -> Decision:
    thing = None
    if request.imsi:
        thing = session.scalar(select(Thing).where(Thing.imsi == request.imsi).with_for_update())
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
    network_id = leases.network_of_thing(session, thing)
    assignment = leases.allocate_dynamic(session, thing, network_id)
    if assignment is None:
        events.emit(session, thing.account_id, "ip_pool.exhausted", thing_id=thing.id,
                    data={"network_id": network_id})
        return _reject(session, thing, "pool_exhausted", request, network_id=network_id)
    DECISIONS.labels("accepted").inc()
    address = str(ipaddress.IPv4Address(assignment.lease.address))
    return Decision(True, None, address, thing.id)


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
    ACCOUNTING.labels(STATUS_NAMES.get(request.status_type, "other")).inc()
    now = utcnow()
    if request.status_type in (ACCOUNTING_ON, ACCOUNTING_OFF):
        _close_all_of_nas(session, request.nas_address, request.event_time or now)
        return
    if request.status_type not in (START, STOP, INTERIM) or not request.acct_session_id:
        return
    find = select(DataSession).where(DataSession.nas_address == request.nas_address,
                                     DataSession.acct_session_id == request.acct_session_id)
    record = session.scalar(find)
    if record is None:
        thing = session.scalar(select(Thing).where(Thing.imsi == request.imsi).with_for_update()
                               ) if request.imsi else None
        if thing is None:
            return  # not ours: acknowledged so the NAS stops retransmitting, and dropped
        # Another copy of this Start (a retransmission with a new Acct-Delay-Time) may have
        # opened the session while this one waited for the Thing's lock.
        record = session.scalar(find.with_for_update()) or _open(session, thing, request, now)
    else:
        # The Thing's row first, then its session's: the order of the API's changes (a PATCH
        # locks the Thing, then marks its sessions for disconnection), so that the two never
        # deadlock on PostgreSQL.
        thing = session.get(Thing, record.thing_id, with_for_update=True)
        assert thing is not None
        session.refresh(record, with_for_update=True)
    when = request.event_time or now
    _count(session, thing, record, request, when)
    if request.status_type == STOP and record.status == "OPEN":
        _close(session, thing, record, when, TERMINATE_CAUSES.get(
            request.terminate_cause or 0, str(request.terminate_cause or "stop")))
    elif request.status_type == START and record.status == "OPEN":
        record.last_update_at = max(record.last_update_at, when)


def _open(session: Session, thing: Thing, request: AccountingRequest, now: datetime) -> DataSession:
    when = request.event_time or now
    network_id = leases.network_of_thing(session, thing)
    record = DataSession(
        id=new_id("session"), account_id=thing.account_id, thing_id=thing.id,
        network_id=network_id, nas_address=request.nas_address,
        nas_identifier=request.nas_identifier, acct_session_id=request.acct_session_id,
        framed_ip=request.framed_ip or thing.ip_address, imsi=thing.imsi,
        rat=_rat_name(request.rat_type), operator=request.sgsn_mcc_mnc,
        country=_country(request.sgsn_mcc_mnc), status="OPEN", started_at=when,
        last_update_at=when, bytes_up=0, bytes_down=0)
    session.add(record)
    session.flush()
    # A session holds its dynamic lease: no expiry clock while it is open.
    session.execute(update(IpLease).where(IpLease.network_id == network_id,
                                          IpLease.thing_id == thing.id,
                                          IpLease.kind == leases.DYNAMIC)
                    .values(expires_at=None))
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


def _count(session: Session, thing: Thing, record: DataSession, request: AccountingRequest,
           when: datetime) -> None:
    # Acct-Input is what the NAS received from the device: the Thing's upload.
    up = request.input_octets - record.bytes_up
    down = request.output_octets - record.bytes_down
    if up < 0 or down < 0:
        return  # an older record arriving late: its counters are already included
    if up == 0 and down == 0:
        return
    record.bytes_up = request.input_octets
    record.bytes_down = request.output_octets
    record.last_update_at = max(record.last_update_at, when)
    late = add_daily(session, thing.account_id, thing.id, when, bytes_up=up, bytes_down=down)
    session.add(UsageRecord(id=new_id("usage"), account_id=thing.account_id, thing_id=thing.id,
                            session_id=record.id, recorded_at=when, bytes_up=up,
                            bytes_down=down, late=late))


def add_daily(session: Session, account_id: str, thing_id: str, when: datetime, *,
              bytes_up: int = 0, bytes_down: int = 0, sms_mt: int = 0, sms_mo: int = 0) -> bool:
    """Add usage to the Thing's day; True when it was late (its cycle already CLOSED, so it
    counts today, in the open cycle)."""
    from ..billing.closing import CLOSE_LOCK
    from ..billing.service import attribution_day

    # Shared with every other usage writer, exclusive for the closer: usage never lands in a
    # cycle while it is being frozen.
    advisory_lock(session, CLOSE_LOCK, shared=True)
    when, late = attribution_day(session, account_id, when)
    upsert(session, UsageDaily,
           {"thing_id": thing_id, "day": when.date(), "account_id": account_id,
            "bytes_up": bytes_up, "bytes_down": bytes_down, "sms_mt": sms_mt, "sms_mo": sms_mo},
           keys=("thing_id", "day"), increment=("bytes_up", "bytes_down", "sms_mt", "sms_mo"))
    return late


def _close(session: Session, thing: Thing, record: DataSession, when: datetime,
           cause: str) -> None:
    record.status = "CLOSED"
    record.ended_at = when
    record.terminate_cause = cause
    if thing.connection_session_id == record.id:
        thing.connection_status = "DETACHED"
        thing.connection_since = when
        thing.connection_session_id = None
        thing.updated_at = utcnow()
    _start_lease_clock(session, thing, record.network_id)
    events.emit(session, thing.account_id, "thing.detached", thing_id=thing.id,
                data={"session_id": record.id, "cause": cause, "bytes_up": record.bytes_up,
                      "bytes_down": record.bytes_down}, occurred_at=when)


def _start_lease_clock(session: Session, thing: Thing, network_id: str | None) -> None:
    if network_id is None:
        return
    lease = leases.current_lease(session, network_id, thing.id)
    if lease is None or lease.kind != leases.DYNAMIC:
        return
    pool = session.get(IpPool, lease.pool_id)
    lease.expires_at = utcnow() + timedelta(seconds=pool.lease_seconds if pool else 86400)


def _close_all_of_nas(session: Session, nas_address: str, when: datetime) -> None:
    records = session.scalars(select(DataSession).where(
        DataSession.nas_address == nas_address, DataSession.status == "OPEN").with_for_update())
    for record in records:
        thing = session.get(Thing, record.thing_id, with_for_update=True)
        if thing is not None:
            _close(session, thing, record, when, "nas_reboot")


def group_network(session: Session, thing: Thing) -> str:
    return session.scalar(select(ThingsGroup.network_id).where(  # type: ignore[return-value]
        ThingsGroup.id == thing.things_group_id))
