from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from ..core.auth import Principal
from ..core.deps import (
    Caller,
    DbSession,
    authorize,
    authorize_in_route,
    reads_of,
    record_audit,
)
from ..core.fastlane import Lane
from ..core.http import (
    check_if_match,
    json_response,
    problem_responses,
    set_link_header,
    with_etag,
)
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, page_of, paginate

from ..core.errors import bad_field
from ..models import DataSession, ImeiObservation, ThingStateChange, utcnow
from . import repository, service
from .schemas import (
    DisconnectAccepted,
    DisconnectInfo,
    ImeiChangeOut,
    ImeiHistoryList,
    SessionList,
    SessionOut,
    UsageDay,
    UsageOut,
    ConnectionStatus,
    StateChangeList,
    StateChangeOut,
    ThingList,
    ThingOut,
    ThingPatch,
    ThingState,
)

router = APIRouter(tags=["things"])
Reader = Annotated[Principal, Depends(authorize("things:read"))]
Writer = Annotated[Principal, Depends(authorize("things:write"))]
# The two hottest reads check their caller themselves, in their own transaction (`Caller`).
ReaderInRoute = Annotated[Caller, Depends(authorize_in_route("things:read"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/things", response_model=ThingList, responses=problem_responses())
async def list_things(
    caller: ReaderInRoute,
    request: Request,
    state: ThingState | None = None,
    things_group_id: str | None = None,
    tag: Annotated[list[str] | None, Query(description="Repeatable: Things with all tags")] = None,
    iccid: str | None = None,
    imsi: str | None = None,
    imei: str | None = None,
    ip_address: str | None = None,
    connection_status: ConnectionStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Response:
    async with reads_of(request).transaction() as read:
        principal = await caller.verify_read(read)
        service.validate_filters(iccid=iccid, imsi=imsi, imei=imei, ip_address=ip_address,
                                 tags=tag or ())
        rows = await repository.thing_rows(
            read, principal.account_id, tags=tag or (), filters={
                "state": state, "things_group_id": things_group_id, "iccid": iccid,
                "imsi": imsi, "imei": imei, "ip_address": ip_address,
                "connection_status": connection_status},
            after=decode_cursor(cursor) if cursor else None, fetch=limit + 1)
    page = page_of(rows, limit, repository.thing_id_of_row)
    response = json_response(service.list_json(page))
    set_link_header(request, response, page)
    return response


_PLAIN_LIMIT = re.compile(r"[1-9][0-9]{0,3}")  # ASCII digits, no sign, space or leading zero


def _plain_page(query: Mapping[str, str]) -> dict[str, Any] | None:
    """The fast lane's arguments of a list of Things asked by page alone (`limit`, `cursor`);
    a filter, or a value FastAPI would have to refuse, is FastAPI's."""
    if not query.keys() <= {"limit", "cursor"}:
        return None
    arguments: dict[str, Any] = {}
    if "limit" in query:
        if not _PLAIN_LIMIT.fullmatch(query["limit"]) or int(query["limit"]) > MAX_LIMIT:
            return None
        arguments["limit"] = int(query["limit"])
    if "cursor" in query:
        if not query["cursor"]:
            return None
        arguments["cursor"] = query["cursor"]
    return arguments


@router.get(
    "/things/lookup",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "Found; Location names the Thing"}, **problem_responses()},
)
def lookup_thing(principal: Reader, session: DbSession, iccid: str | None = None,
                 imsi: str | None = None, imei: str | None = None,
                 ip_address: str | None = None) -> RedirectResponse:
    thing = service.lookup(session, principal.account_id, iccid=iccid, imsi=imsi, imei=imei,
                           ip_address=ip_address)
    return RedirectResponse(f"/v1/things/{thing.id}", status_code=302)


@router.get("/things/{thing_id}", response_model=ThingOut, responses=problem_responses())
async def get_thing(thing_id: str, caller: ReaderInRoute, request: Request) -> Response:
    async with reads_of(request).transaction() as read:
        principal = await caller.verify_read(read)
        body = await service.read_thing_json(read, principal.account_id, thing_id)
    return json_response(body, etag=True)


@router.patch(
    "/things/{thing_id}",
    response_model=ThingOut,
    responses=problem_responses("etag_mismatch", "invalid_state_transition", "ip_locked",
                                "unknown_reference", "ip_in_use", "pool_exhausted", "in_use"),
)
def patch_thing(thing_id: str, body: ThingPatch, principal: Writer, session: DbSession,
                request: Request, response: Response) -> ThingOut:
    thing = service.require_thing(session, principal.account_id, thing_id, for_update=True)
    check_if_match(request, service.thing_view(session, principal.account_id, thing))
    service.patch_thing(session, thing, body, service.Actor.of(principal))
    record_audit(request, thing.id, body.model_dump(exclude_unset=True))
    out = service.thing_view(session, principal.account_id, thing)
    with_etag(response, out)
    return out


@router.get("/things/{thing_id}/state-history", response_model=StateChangeList,
            responses=problem_responses())
def state_history(thing_id: str, principal: Reader, session: DbSession, request: Request,
                  response: Response, limit: Limit = DEFAULT_LIMIT,
                  cursor: str | None = None) -> StateChangeList:
    service.require_thing(session, principal.account_id, thing_id)
    page = paginate(session, repository.state_history_query(principal.account_id, thing_id),
                    ThingStateChange.id, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return StateChangeList(
        items=[StateChangeOut.model_validate(c, from_attributes=True) for c in page.items],
        next_cursor=page.next_cursor)


# --- what the network reported --------------------------------------------------------------

def _session_out(record) -> SessionOut:  # type: ignore[no-untyped-def]
    return SessionOut(
        id=record.id, status=record.status, nas_address=record.nas_address,
        acct_session_id=record.acct_session_id, ip_address=record.framed_ip, rat=record.rat,
        operator=record.operator, country=record.country, started_at=record.started_at,
        last_update_at=record.last_update_at, ended_at=record.ended_at,
        bytes_up=record.bytes_up, bytes_down=record.bytes_down,
        terminate_cause=record.terminate_cause,
        disconnect=DisconnectInfo(status=record.disconnect_status,
                                  reason=record.disconnect_reason,
                                  attempts=record.disconnect_attempts, at=record.disconnect_at))


@router.get("/things/{thing_id}/sessions", response_model=SessionList,
            responses=problem_responses())
def list_sessions(thing_id: str, principal: Reader, session: DbSession, request: Request,
                  response: Response, status: Literal["OPEN", "CLOSED"] | None = None,
                  limit: Limit = DEFAULT_LIMIT, cursor: str | None = None) -> SessionList:
    service.require_thing(session, principal.account_id, thing_id)
    page = paginate(session, repository.sessions_query(principal.account_id, thing_id, status),
                    DataSession.id, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return SessionList(items=[_session_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/things/{thing_id}/usage", response_model=UsageOut, response_model_by_alias=True,
            responses=problem_responses())
def usage(thing_id: str, principal: Reader, session: DbSession,
          from_: Annotated[date | None, Query(alias="from")] = None,
          to: date | None = None) -> UsageOut:
    service.require_thing(session, principal.account_id, thing_id)
    end = to or utcnow().date()
    start = from_ or end - timedelta(days=29)
    if start > end:
        raise bad_field("from", f"{start} is after to={end}")
    if (end - start).days > 366:
        raise bad_field("from", f"the range {start}..{end} is longer than 366 days")
    rows = repository.daily_usage(session, principal.account_id, thing_id, start, end)
    return UsageOut(thing_id=thing_id, from_=start, to=end, items=[
        UsageDay(date=r.day, bytes_up=r.bytes_up, bytes_down=r.bytes_down, sms_mt=r.sms_mt,
                 sms_mo=r.sms_mo) for r in rows])


@router.get("/things/{thing_id}/imei-history", response_model=ImeiHistoryList,
            responses=problem_responses())
def imei_history(thing_id: str, principal: Reader, session: DbSession, request: Request,
                 response: Response, limit: Limit = DEFAULT_LIMIT,
                 cursor: str | None = None) -> ImeiHistoryList:
    service.require_thing(session, principal.account_id, thing_id)
    page = paginate(session, repository.imei_history_query(principal.account_id, thing_id),
                    ImeiObservation.id, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return ImeiHistoryList(items=[ImeiChangeOut.model_validate(r, from_attributes=True)
                                  for r in page.items], next_cursor=page.next_cursor)


@router.post("/things/{thing_id}/disconnect", status_code=202, response_model=DisconnectAccepted,
             responses=problem_responses("not_attached"))
def disconnect(thing_id: str, principal: Writer, session: DbSession, request: Request,
               response: Response) -> DisconnectAccepted:
    thing = service.require_thing(session, principal.account_id, thing_id, for_update=True)
    ids = service.disconnect(session, thing)
    record_audit(request, thing.id)
    response.headers["Location"] = f"/v1/things/{thing.id}/sessions?status=OPEN"
    return DisconnectAccepted(thing_id=thing.id, session_ids=ids)


# The two hottest reads, served without FastAPI's routing and dependency solving when asked
# plainly (`core.fastlane`).
FAST_LANES = (Lane(get_thing), Lane(list_things, _plain_page))
