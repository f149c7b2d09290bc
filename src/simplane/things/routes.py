from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from ..core.auth import Principal
from ..core.deps import DbSession, authorize, record_audit
from ..core.http import check_if_match, problem_responses, set_link_header, with_etag
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from ..models import Thing, ThingStateChange
from . import repository, service
from .schemas import (
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
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.get("/things", response_model=ThingList, responses=problem_responses())
def list_things(
    principal: Reader,
    session: DbSession,
    request: Request,
    response: Response,
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
) -> ThingList:
    service.validate_filters(iccid=iccid, imsi=imsi, imei=imei, ip_address=ip_address,
                             tags=tag or ())
    statement = repository.things_query(
        principal.account_id, state=state, things_group_id=things_group_id, tags=tag or (),
        iccid=iccid, imsi=imsi, imei=imei, ip_address=ip_address,
        connection_status=connection_status)
    page = paginate(session, statement, Thing.id, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return ThingList(items=service.views(session, principal.account_id, page.items),
                     next_cursor=page.next_cursor)


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
def get_thing(thing_id: str, principal: Reader, session: DbSession,
              response: Response) -> ThingOut:
    thing = service.require_thing(session, principal.account_id, thing_id)
    out = service.thing_view(session, principal.account_id, thing)
    with_etag(response, out)
    return out


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
