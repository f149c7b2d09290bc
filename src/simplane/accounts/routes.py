from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from ..core.auth import Principal
from ..core.deps import DbSession, authorize, record_audit
from ..core.http import check_if_match, problem_responses, with_etag
from . import service
from .schemas import AccountOut, AccountPatch, ApnList, ApnOut

router = APIRouter(tags=["account"])
Reader = Annotated[Principal, Depends(authorize("account:read"))]
Admin = Annotated[Principal, Depends(authorize("account_settings:write"))]


@router.get("/account", response_model=AccountOut, responses=problem_responses())
def get_account(principal: Reader, session: DbSession, request: Request,
                response: Response) -> AccountOut:
    account = service.require_account(session, principal.account_id)
    out = service.account_view(session, request.app.state.settings, account)
    with_etag(response, out)
    return out


@router.patch("/account", response_model=AccountOut,
              responses=problem_responses("etag_mismatch"))
def patch_account(body: AccountPatch, principal: Admin, session: DbSession, request: Request,
                  response: Response) -> AccountOut:
    settings = request.app.state.settings
    account = service.require_account(session, principal.account_id, for_update=True)
    check_if_match(request, service.account_view(session, settings, account))
    service.rename_account(session, account, body.name)
    record_audit(request, account.id)
    out = service.account_view(session, settings, account)
    with_etag(response, out)
    return out


@router.get("/apns", response_model=ApnList, responses=problem_responses())
def list_apns(principal: Annotated[Principal, Depends(authorize("apns:read"))],
              request: Request) -> ApnList:
    apn = request.app.state.settings.apn
    return ApnList(items=[ApnOut(
        name=apn, description="The platform's shared APN; accounts are segregated behind it.")])
