from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from ..core.auth import Principal
from ..core.deps import DbSession, authorize
from ..core.http import Rfc3339, problem_responses, set_link_header
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from ..models import Event
from . import service
from .schemas import EventList, EventOut

router = APIRouter(tags=["events"])
EventType = Literal[service.EVENT_TYPES]  # type: ignore[valid-type]


@router.get("/events", response_model=EventList, responses=problem_responses())
def list_events(
    principal: Annotated[Principal, Depends(authorize("events:read"))],
    session: DbSession,
    request: Request,
    response: Response,
    type: EventType | None = None,  # noqa: A002 - the spec names the filter `type`
    thing_id: str | None = None,
    since: Rfc3339 | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> EventList:
    statement = service.events_query(principal.account_id, event_type=type, thing_id=thing_id,
                                     since=since)  # type: ignore[arg-type]
    page = paginate(session, statement, Event.id, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return EventList(items=[EventOut.model_validate(e, from_attributes=True) for e in page.items],
                     next_cursor=page.next_cursor)
