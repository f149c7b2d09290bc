from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from ..core.auth import Principal
from ..core.deps import DbSession, NetworkCaller, authorize, record_audit
from ..core.errors import precondition
from ..core.http import problem_responses, set_link_header, with_etag
from ..core.problem import PROBLEM_JSON
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from ..models import SmsMessage
from ..things.service import require_thing
from . import service
from .schemas import NetworkSmsIn, SmsList, SmsOut, SmsSend, SmsStatus

router = APIRouter(tags=["sms"])
network_router = APIRouter(tags=["network"])
Reader = Annotated[Principal, Depends(authorize("sms:read"))]
Writer = Annotated[Principal, Depends(authorize("sms:write"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post("/things/{thing_id}/sms", status_code=202, response_model=SmsOut,
             responses=problem_responses("sms_not_allowed"))
def send_sms(thing_id: str, body: SmsSend, principal: Writer, session: DbSession,
             request: Request, response: Response) -> SmsOut:
    thing = require_thing(session, principal.account_id, thing_id, for_update=True)
    message = service.submit_mt(session, thing, text=body.text, data_base64=body.data_base64,
                                requested=body.encoding, validity_seconds=body.validity_seconds)
    record_audit(request, message.id, {"thing_id": thing_id, "encoding": message.encoding,
                                       "segments": message.segments})
    response.headers["Location"] = f"/v1/sms/{message.id}"
    return with_etag(response, service.view(message))  # type: ignore[return-value]


def _list(principal: Principal, session, request: Request, response: Response,  # type: ignore[no-untyped-def]
          thing_id: str | None, direction: str | None, status: str | None, limit: int,
          cursor: str | None) -> SmsList:
    statement = service.messages_query(principal.account_id, thing_id=thing_id,
                                       direction=direction, status=status)
    page = paginate(session, statement, SmsMessage.id, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return SmsList(items=[service.view(m) for m in page.items], next_cursor=page.next_cursor)


@router.get("/sms", response_model=SmsList, responses=problem_responses())
def list_sms(principal: Reader, session: DbSession, request: Request, response: Response,
             thing_id: str | None = None, direction: Literal["MT", "MO"] | None = None,
             status: SmsStatus | None = None, limit: Limit = DEFAULT_LIMIT,
             cursor: str | None = None) -> SmsList:
    return _list(principal, session, request, response, thing_id, direction, status, limit,
                 cursor)


@router.get("/sms/{sms_id}", response_model=SmsOut, responses=problem_responses())
def get_sms(sms_id: str, principal: Reader, session: DbSession, response: Response) -> SmsOut:
    return with_etag(response, service.view(  # type: ignore[return-value]
        service.require_message(session, principal.account_id, sms_id)))


@router.get("/things/{thing_id}/sms", response_model=SmsList, responses=problem_responses())
def list_thing_sms(thing_id: str, principal: Reader, session: DbSession, request: Request,
                   response: Response, direction: Literal["MT", "MO"] | None = None,
                   status: SmsStatus | None = None, limit: Limit = DEFAULT_LIMIT,
                   cursor: str | None = None) -> SmsList:
    require_thing(session, principal.account_id, thing_id)
    return _list(principal, session, request, response, thing_id, direction, status, limit,
                 cursor)


@network_router.post("/network/sms", status_code=201, response_model=SmsOut,
                     responses=problem_responses("sms_not_allowed"))
def network_sms(body: NetworkSmsIn, caller: NetworkCaller, session: DbSession,
                response: Response) -> SmsOut:
    """An MO message (or an SMSC's receipt) entering from the network side."""
    message = service.receive_mo(session, imsi=body.imsi, text=body.text,
                                 data_base64=body.data_base64, requested=body.encoding)
    if message.status == "REJECTED":
        # Refused, yet recorded: answer the problem without raising, so the request's one
        # commit still stores the rejected message.
        error = precondition("sms_not_allowed", f"the SIM with IMSI {body.imsi} may not send "
                             "SMS (not ACTIVE, or services.sms is off)")
        return JSONResponse(error.body(), status_code=412, media_type=PROBLEM_JSON)  # type: ignore[return-value]
    response.headers["Location"] = f"/v1/sms/{message.id}"
    return service.view(message)
