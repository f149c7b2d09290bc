"""M2M SMS: validation and encoding, MT submission, MO arrival, and the status lifecycle.

MT: QUEUED -> SENT -> DELIVERED | FAILED | EXPIRED. MO: RECEIVED (or REJECTED when the Thing
may not use SMS). Every status change is an `sms.status_changed` event; segments are counted
per Thing per day (MT when the message leaves the platform, MO when it arrives) for billing.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..core.errors import AppError, FieldError, not_found, precondition, validation_error
from ..core.ids import new_id
from ..events import service as events
from ..models import SmsMessage, Thing, utcnow
from ..radius.service import add_daily
from . import encoding as enc
from .schemas import SmsOut


def _invalid(exc: enc.EncodingError) -> AppError:
    return validation_error(str(exc), [FieldError(exc.field, str(exc))])


def encode(text: str | None, data_base64: str | None, requested: str) -> tuple[enc.Encoded, str | None, str | None]:
    try:
        if text is not None:
            return enc.encode_text(text, requested), text, None
        try:
            data = base64.b64decode(data_base64 or "", validate=True)
        except (binascii.Error, ValueError):
            raise enc.EncodingError(f"data_base64 is not valid base64: {data_base64[:40]!r}",
                                    "data_base64") from None
        return enc.encode_binary(data), None, data_base64
    except enc.EncodingError as exc:
        raise _invalid(exc) from None


def view(message: SmsMessage) -> SmsOut:
    return SmsOut.model_validate(message, from_attributes=True)


def _set_status(session: Session, message: SmsMessage, status: str, now: datetime,
                error: str | None = None) -> None:
    previous = message.status
    message.status = status
    message.updated_at = now
    if error:
        message.error = error
    events.emit(session, message.account_id, "sms.status_changed", thing_id=message.thing_id,
                data={"sms_id": message.id, "direction": message.direction, "from": previous,
                      "to": status, "error": error}, occurred_at=now)


def submit_mt(session: Session, thing: Thing, *, text: str | None, data_base64: str | None,
              requested: str, validity_seconds: int) -> SmsMessage:
    encoded, text, data_base64 = encode(text, data_base64, requested)
    if thing.state != "ACTIVE" or not thing.service_sms:
        raise precondition("sms_not_allowed", f"Thing {thing.id} is {thing.state} with SMS "
                           f"{'enabled' if thing.service_sms else 'disabled'}; only an ACTIVE "
                           "Thing with services.sms may receive SMS")
    now = utcnow()
    message = SmsMessage(
        id=new_id("sms"), account_id=thing.account_id, thing_id=thing.id, direction="MT",
        status="QUEUED", encoding=encoded.encoding, text=text, data_base64=data_base64,
        segments=encoded.segments, validity_seconds=validity_seconds,
        expires_at=now + timedelta(seconds=validity_seconds), created_at=now, updated_at=now)
    session.add(message)
    session.flush()
    events.emit(session, thing.account_id, "sms.status_changed", thing_id=thing.id,
                data={"sms_id": message.id, "direction": "MT", "from": None, "to": "QUEUED"},
                occurred_at=now)
    return message


def receive_mo(session: Session, *, imsi: str, text: str | None, data_base64: str | None,
               requested: str) -> SmsMessage:
    encoded, text, data_base64 = encode(text, data_base64, requested)
    thing = session.scalar(select(Thing).where(Thing.imsi == imsi))
    if thing is None:
        raise not_found("SIM with IMSI", imsi)
    now = utcnow()
    allowed = thing.state == "ACTIVE" and thing.service_sms
    message = SmsMessage(
        id=new_id("sms"), account_id=thing.account_id, thing_id=thing.id, direction="MO",
        status="RECEIVED" if allowed else "REJECTED", encoding=encoded.encoding, text=text,
        data_base64=data_base64, segments=encoded.segments, created_at=now, updated_at=now,
        error=None if allowed else "sms_not_allowed")
    session.add(message)
    session.flush()
    if allowed:
        events.emit(session, thing.account_id, "sms.received", thing_id=thing.id,
                    data={"sms_id": message.id, "encoding": encoded.encoding,
                          "segments": encoded.segments}, occurred_at=now)
        add_daily(session, thing.account_id, thing.id, now, sms_mo=encoded.segments)
    else:
        events.emit(session, thing.account_id, "sms.status_changed", thing_id=thing.id,
                    data={"sms_id": message.id, "direction": "MO", "from": None,
                          "to": "REJECTED", "error": "sms_not_allowed"}, occurred_at=now)
    return message


def mark_sent(session: Session, message: SmsMessage, now: datetime) -> None:
    message.sent_at = now
    _set_status(session, message, "SENT", now)
    add_daily(session, message.account_id, message.thing_id, now, sms_mt=message.segments)


def mark_delivered(session: Session, message: SmsMessage, now: datetime) -> None:
    message.delivered_at = now
    _set_status(session, message, "DELIVERED", now)


def mark_failed(session: Session, message: SmsMessage, now: datetime, error: str) -> None:
    _set_status(session, message, "FAILED", now, error)


def mark_expired(session: Session, message: SmsMessage, now: datetime) -> None:
    _set_status(session, message, "EXPIRED", now, "validity period ended before delivery")


def require_message(session: Session, account_id: str, sms_id: str) -> SmsMessage:
    message = session.scalar(select(SmsMessage).where(SmsMessage.account_id == account_id,
                                                      SmsMessage.id == sms_id))
    if message is None:
        raise not_found("SMS", sms_id)
    return message


def messages_query(account_id: str, *, thing_id: str | None, direction: str | None,
                   status: str | None) -> Select[tuple[SmsMessage]]:
    statement = select(SmsMessage).where(SmsMessage.account_id == account_id)
    for column, value in ((SmsMessage.thing_id, thing_id), (SmsMessage.direction, direction),
                          (SmsMessage.status, status)):
        if value is not None:
            statement = statement.where(column == value)
    return statement
