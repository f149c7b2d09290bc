from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from ..core.auth import Principal
from ..core.deps import CurrentPrincipal, DbSession, authorize, record_audit
from ..core.http import check_if_match, problem_responses, set_link_header, with_etag
from ..core.paging import DEFAULT_LIMIT, MAX_LIMIT, paginate
from ..models import AuditEntry, Credential, User
from . import repository, service
from .schemas import (
    AuditEntryOut,
    AuditList,
    CredentialCreate,
    CredentialCreated,
    CredentialList,
    CredentialOut,
    MeOut,
    OAuthError,
    TokenOut,
    UserCreate,
    UserList,
    UserOut,
    UserPatch,
)

router = APIRouter()
Admin = Annotated[Principal, Depends(authorize("users:write"))]
AuditReader = Annotated[Principal, Depends(authorize("audit:read"))]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

_TOKEN_FORM = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object",
            "required": ["grant_type"],
            "properties": {
                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                "client_id": {"type": "string"},
                "client_secret": {"type": "string"},
            },
        }}},
    }
}


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="simplane"'} if status == 401 else {}
    headers["Cache-Control"] = "no-store"
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers=headers)


@router.post(
    "/oauth2/token",
    tags=["auth"],
    response_model=TokenOut,
    openapi_extra=_TOKEN_FORM,
    responses={
        400: {"model": OAuthError, "description": "RFC 6749 error: invalid_request or "
              "unsupported_grant_type"},
        401: {"model": OAuthError, "description": "RFC 6749 error: invalid_client"},
        **{k: v for k, v in problem_responses(authenticated=False).items() if k in (429, 500)},
    },
    summary="OAuth 2.0 client credentials grant (RFC 6749 §4.4)",
)
async def issue_token(request: Request, session: DbSession) -> Response:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        return _oauth_error(400, "invalid_request",
                            "the body must be application/x-www-form-urlencoded")
    form = await request.form()
    grant_type = form.get("grant_type")
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return _oauth_error(401, "invalid_client", "the Basic credentials are malformed")
        basic_id, _, basic_secret = decoded.partition(":")
        client_id, client_secret = unquote(basic_id), unquote(basic_secret)
    if grant_type is None:
        return _oauth_error(400, "invalid_request", "grant_type is required")
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type",
                            f"grant_type {grant_type!r} is not supported; use client_credentials")
    if not isinstance(client_id, str) or not isinstance(client_secret, str) or not client_id:
        return _oauth_error(401, "invalid_client", "client_id and client_secret are required")
    settings = request.app.state.settings
    if client_id.startswith("net_"):
        import anyio

        if not await anyio.to_thread.run_sync(service.authenticate_network_client, session,
                                              client_id, client_secret):
            return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
        token = request.app.state.token_signer.issue(client_id, "", settings.token_ttl_seconds,
                                                     kind="network")
        return JSONResponse(
            TokenOut(access_token=token, expires_in=settings.token_ttl_seconds).model_dump(),
            headers={"Cache-Control": "no-store"})
    credential = await _authenticate(request, session, client_id, client_secret)
    if credential is None:
        return _oauth_error(401, "invalid_client", "unknown client or wrong secret")
    token = request.app.state.token_signer.issue(credential.client_id, credential.account_id,
                                                 settings.token_ttl_seconds)
    return JSONResponse(
        TokenOut(access_token=token, expires_in=settings.token_ttl_seconds).model_dump(),
        headers={"Cache-Control": "no-store"},
    )


async def _authenticate(request: Request, session, client_id: str, secret: str):  # type: ignore[no-untyped-def]
    import anyio

    # argon2 verification takes tens of milliseconds: keep it off the event loop.
    return await anyio.to_thread.run_sync(service.authenticate_client, session, client_id, secret)


def _user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


@router.get("/me", tags=["users"], response_model=MeOut, responses=problem_responses())
def me(principal: CurrentPrincipal, session: DbSession, response: Response) -> MeOut:
    user = service.require_user(session, principal.account_id, principal.user_id)
    from ..accounts.service import require_account

    account = require_account(session, principal.account_id)
    out = MeOut(user=_user_out(user), role=principal.role.value,
                account={"id": account.id, "name": account.name}, client_id=principal.client_id)
    with_etag(response, out)
    return out


@router.get("/users", tags=["users"], response_model=UserList, responses=problem_responses())
def list_users(principal: Admin, session: DbSession, request: Request, response: Response,
               limit: Limit = DEFAULT_LIMIT, cursor: str | None = None) -> UserList:
    page = paginate(session, repository.users_query(principal.account_id), User.id, limit=limit,
                    cursor=cursor)
    set_link_header(request, response, page)
    return UserList(items=[_user_out(u) for u in page.items], next_cursor=page.next_cursor)


@router.post("/users", tags=["users"], status_code=201, response_model=UserOut,
             responses=problem_responses("email_taken"))
def create_user(body: UserCreate, principal: Admin, session: DbSession,
                response: Response) -> UserOut:
    user = service.create_user(session, principal.account_id, email=body.email, name=body.name,
                               role=body.role)
    response.headers["Location"] = f"/v1/users/{user.id}"
    out = _user_out(user)
    with_etag(response, out)
    return out


@router.get("/users/{user_id}", tags=["users"], response_model=UserOut,
            responses=problem_responses())
def get_user(user_id: str, principal: Admin, session: DbSession, response: Response) -> UserOut:
    out = _user_out(service.require_user(session, principal.account_id, user_id))
    with_etag(response, out)
    return out


@router.patch("/users/{user_id}", tags=["users"], response_model=UserOut,
              responses=problem_responses("etag_mismatch", "last_admin"))
def patch_user(user_id: str, body: UserPatch, principal: Admin, session: DbSession,
               request: Request, response: Response) -> UserOut:
    user = service.require_user(session, principal.account_id, user_id, for_update=True)
    check_if_match(request, _user_out(user))
    service.update_user(session, principal.account_id, user, name=body.name, role=body.role,
                        status=body.status)
    record_audit(request, user.id)
    out = _user_out(user)
    with_etag(response, out)
    return out


@router.delete("/users/{user_id}", tags=["users"], status_code=204,
               responses=problem_responses("etag_mismatch", "last_admin"))
def delete_user(user_id: str, principal: Admin, session: DbSession, request: Request) -> Response:
    user = service.require_user(session, principal.account_id, user_id, for_update=True)
    check_if_match(request, _user_out(user))
    service.delete_user(session, principal.account_id, user)
    record_audit(request, user_id)
    return Response(status_code=204)


def _credential_out(credential: Credential) -> CredentialOut:
    return CredentialOut.model_validate(credential, from_attributes=True)


@router.get("/users/{user_id}/credentials", tags=["users"], response_model=CredentialList,
            responses=problem_responses())
def list_credentials(user_id: str, principal: Admin, session: DbSession, request: Request,
                     response: Response, limit: Limit = DEFAULT_LIMIT,
                     cursor: str | None = None) -> CredentialList:
    service.require_user(session, principal.account_id, user_id)
    page = paginate(session, repository.credentials_query(principal.account_id, user_id),
                    Credential.id, limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return CredentialList(items=[_credential_out(c) for c in page.items],
                          next_cursor=page.next_cursor)


@router.post("/users/{user_id}/credentials", tags=["users"], status_code=201,
             response_model=CredentialCreated, responses=problem_responses())
def create_credential(user_id: str, principal: Admin, session: DbSession, request: Request,
                      response: Response, body: CredentialCreate | None = None) -> CredentialCreated:
    user = service.require_user(session, principal.account_id, user_id)
    credential, secret = service.create_credential(session, principal.account_id, user,
                                                   body.name if body else "")
    record_audit(request, credential.id, {"name": credential.name, "client_id": credential.client_id})
    response.headers["Location"] = f"/v1/users/{user_id}/credentials/{credential.client_id}"
    response.headers["Cache-Control"] = "no-store"
    out = CredentialCreated(**_credential_out(credential).model_dump(), client_secret=secret)
    with_etag(response, out)
    return out


@router.delete("/users/{user_id}/credentials/{client_id}", tags=["users"], status_code=204,
               responses=problem_responses())
def delete_credential(user_id: str, client_id: str, principal: Admin, session: DbSession,
                      request: Request) -> Response:
    user = service.require_user(session, principal.account_id, user_id)
    service.delete_credential(session, principal.account_id, user, client_id)
    record_audit(request, user_id, {"client_id": client_id})
    return Response(status_code=204)


@router.get("/audit-log", tags=["users"], response_model=AuditList, responses=problem_responses())
def audit_log(principal: AuditReader, session: DbSession, request: Request, response: Response,
              limit: Limit = DEFAULT_LIMIT, cursor: str | None = None) -> AuditList:
    page = paginate(session, repository.audit_query(principal.account_id), AuditEntry.id,
                    limit=limit, cursor=cursor)
    set_link_header(request, response, page)
    return AuditList(items=[AuditEntryOut.model_validate(e, from_attributes=True)
                            for e in page.items], next_cursor=page.next_cursor)
