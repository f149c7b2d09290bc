from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse

from ..core.auth import Principal
from ..core.deps import DbSession, authorize
from ..core.errors import FieldError, validation_error
from ..core.http import problem_responses, set_link_header
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from ..groups.service import require_group
from ..models import utcnow
from ..things.service import require_thing
from . import rating, service
from .cycles import period_of
from .schemas import CurrentTariff, ReportOut

router = APIRouter(tags=["billing"])
Reader = Annotated[Principal, Depends(authorize("billing:read"))]

_CSV = {"text/csv": {"schema": {"type": "string"},
                     "example": service.CSV_HEADER + "thg_...,8931...,grp_...,1.00,0,0.00,0,0,0.00,1.00"}}


@router.get("/billing/tariff", response_model=CurrentTariff, responses=problem_responses())
def get_tariff(principal: Reader, session: DbSession) -> CurrentTariff:
    return service.current_tariff(session, principal.account_id)


@router.get(
    "/billing/reports",
    response_model=ReportOut,
    responses={200: {"content": _CSV, "description": "The report; `Accept: text/csv` streams "
                     "every line as CSV (no paging)"}, **problem_responses()},
)
def get_report(
    principal: Reader,
    session: DbSession,
    request: Request,
    response: Response,
    period: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                 description="Billing cycle, YYYY-MM")],
    thing_id: str | None = None,
    things_group_id: str | None = None,
    tag: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: str | None = None,
):  # type: ignore[no-untyped-def]
    given = [name for name, value in (("thing_id", thing_id), ("things_group_id", things_group_id),
                                      ("tag", tag)) if value is not None]
    if len(given) > 1:
        raise validation_error("give at most one of thing_id, things_group_id or tag",
                               [FieldError(name, "only one scope is allowed") for name in given])
    if thing_id is not None:
        require_thing(session, principal.account_id, thing_id)
    if things_group_id is not None:
        require_group(session, principal.account_id, things_group_id)
    scope = rating.Scope(thing_id, things_group_id, tag)
    if "text/csv" in request.headers.get("accept", ""):
        # Stream from a session of its own: the request's unit of work ends when this returns.
        database = request.app.state.database
        service.check_report(session, principal.account_id, period)  # before the 200 starts

        def chunks():  # type: ignore[no-untyped-def]
            with database.transaction(read_only=True) as stream_session:
                yield from service.csv_chunks(stream_session, principal.account_id, period,
                                              scope)

        filename = f"simplane-{period}.csv"
        return StreamingResponse(chunks(), media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    out = service.report(session, service.ReportRequest(principal.account_id, period, scope,
                                                        limit, cursor))
    set_link_header(request, response, Page(out.lines.items, out.lines.next_cursor))
    return out


@router.get("/billing/reports/current", status_code=302, response_class=RedirectResponse,
            responses={302: {"description": "Found; Location names the open cycle's report"},
                       **problem_responses()})
def current_report(principal: Reader) -> RedirectResponse:
    return RedirectResponse(f"/v1/billing/reports?period={period_of(utcnow())}", status_code=302)
