"""FastAPI dependencies shared by every router: the unit of work, the caller, the role check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Annotated, Any

import anyio
from fastapi import Depends, Request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..models import Credential, User
from .auth import Principal, Role, allows
from .db import Database
from .loops import PerLoop
from .reads import Reads, ReadTransaction
from .errors import forbidden, unauthorized
from .security import TokenClaims, TokenSigner


def get_database(request: Request) -> Database:
    return request.app.state.database


def reads_of(request: Request) -> Reads:
    return request.app.state.reads


class RequestSlots:
    """What a request holds while it has a session: one of `slots` per event loop (a serving
    process has one). A request holds its connection from its first query to its commit,
    across trips to the thread pool; the others wait here, on the event loop, in the order
    they came.

    Few slots (`SIMPLANE_REQUEST_CONCURRENCY`, default 2): a process runs its Python one
    thread at a time (the GIL), so ten requests in ten threads took as long as ten in turn,
    plus the threads' contention for the interpreter, and each waited for all the others. With
    2 slots instead of 10 (the connection pool's size, before), a served single-Thing read on
    PostgreSQL (2 processes, 32 connections) went from ~850 to ~1,130 requests/s and its p99
    from ~150 to ~45–55 ms, with a fifth less CPU per request; a page of 100 Things from ~470 to
    ~550 requests/s. A long request (a report) keeps one slot and the rest go on through the
    other."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._semaphores = PerLoop(lambda: asyncio.Semaphore(slots))

    def __call__(self) -> asyncio.Semaphore:
        return self._semaphores.get()


async def _session(request: Request) -> AsyncIterator[Session]:
    # Async, so that opening the session (no I/O: it connects on first use) and closing one
    # that never queried cost no trip to the thread pool; ending a transaction costs one.
    database: Database = request.app.state.database
    async with request.app.state.request_slots():
        session = database.session(read_only=request.method in ("GET", "HEAD"))
        try:
            yield session
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _finish(session, commit=False)
            raise
        # One commit per request, after the route returned and before the response leaves.
        await _finish(session, commit=True)


async def _finish(session: Session, *, commit: bool) -> None:
    if session.in_transaction():
        await anyio.to_thread.run_sync(_end, session, commit)
    else:
        session.close()


def _end(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


DbSession = Annotated[Session, Depends(_session, scope="function")]

_users, _credentials = User.__table__, Credential.__table__
# Every authenticated request runs this: built once (building and cache-keying a statement
# costs more than running it).
_CALLER = (select(_users.c.id, _users.c.role, _users.c.status, _users.c.account_id,
                  _users.c.tokens_valid_after)
           .join(_credentials, _credentials.c.user_id == _users.c.id)
           .where(_credentials.c.client_id == bindparam("client_id"),
                  _users.c.account_id == bindparam("account_id")))


def _claims(request: Request) -> TokenClaims:
    """The claims of the request's bearer token, checked without the database."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("an Authorization: Bearer <token> header is required")
    signer: TokenSigner = request.app.state.token_signer
    claims = signer.verify_once(request.scope, token.strip())
    if claims is None:
        raise unauthorized("the bearer token is malformed, expired or not signed by this server")
    if claims.kind != "user":
        raise forbidden("a network credential reaches only /v1/network/*")
    return claims


def _caller(request: Request, session: Session, claims: TokenClaims) -> Principal:
    """The token's credential and user, as they are now in the database."""
    row = session.execute(_CALLER, {"client_id": claims.client_id,
                                    "account_id": claims.account_id}).first()
    return _principal_of(request, claims, row)


def _principal_of(request: Request, claims: TokenClaims, row: Sequence[Any] | None) -> Principal:
    """The caller of a row of `_CALLER`, if its credential and user still let it in."""
    if row is None:
        raise unauthorized("the bearer token's credential has been revoked")
    user_id, role, status, account_id, tokens_valid_after = row
    if status != "ACTIVE":
        raise unauthorized("the bearer token's user is disabled")
    if tokens_valid_after is not None and claims.issued_at <= tokens_valid_after.timestamp():
        raise unauthorized("the bearer token was issued before its user was disabled")
    principal = Principal(account_id, user_id, Role(role), claims.client_id)
    request.state.principal = principal
    return principal


def _require(principal: Principal, permission: str) -> Principal:
    if not allows(principal.role, permission):
        raise forbidden(f"role {principal.role.value!r} may not perform {permission}")
    return principal


def _principal(request: Request, session: DbSession) -> Principal:
    return _caller(request, session, _claims(request))


CurrentPrincipal = Annotated[Principal, Depends(_principal)]


def authorize(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    # Async: a set lookup needs no trip to the thread pool.
    async def check(principal: CurrentPrincipal) -> Principal:
        return _require(principal, permission)

    return check


class Caller:
    """A caller whose token checked out and whose credential, user and role the route checks
    itself, first thing in its own read (`verify_read`, on the event loop, `core.reads`): the
    same SQL as `authorize`'s, in the same transaction as the rest of the read, and the same
    answers, without a session of its own."""

    def __init__(self, request: Request, claims: TokenClaims, permission: str) -> None:
        self.request = request
        self.claims = claims
        self.permission = permission

    async def verify_read(self, read: ReadTransaction) -> Principal:
        row = await read.first(_CALLER, {"client_id": self.claims.client_id,
                                         "account_id": self.claims.account_id})
        principal = _require(_principal_of(self.request, self.claims, row), self.permission)
        self.request.state.unverified_caller = None
        return principal

    def verify_alone(self) -> None:
        """The check, for a request refused before its route ran (in a thread)."""
        database: Database = self.request.app.state.database
        with database.transaction(read_only=True) as session:
            _require(_caller(self.request, session, self.claims), self.permission)


def unverified_caller(request: Request) -> Caller | None:
    """The caller of a route that failed validation before it could run `Caller.verify_read`.
    `authorize` answers 401/403 before a query parameter's 400: so must such a route."""
    return getattr(request.state, "unverified_caller", None)


def authorize_in_route(permission: str) -> Callable[[Request], Awaitable[Caller]]:
    """`authorize` for a route that calls `Caller.verify_read` before anything else."""

    async def check(request: Request) -> Caller:
        caller = Caller(request, _claims(request), permission)
        request.state.unverified_caller = caller
        return caller

    return check


def record_audit(request: Request, resource_id: str | None, changed: dict | None = None) -> None:
    """Tell the audit middleware which resource a write touched and which fields it set."""
    request.state.audit_resource_id = resource_id
    if changed is not None:
        request.state.audit_changed = changed


def _network_caller(request: Request, session: DbSession) -> str:
    """The client id of a platform-level network credential (SMSC, mediation)."""
    from ..models import NetworkCredential

    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("an Authorization: Bearer <token> header is required")
    claims = request.app.state.token_signer.verify(token.strip())
    if claims is None:
        raise unauthorized("the bearer token is malformed, expired or not signed by this server")
    if claims.kind != "network":
        raise forbidden("/v1/network/* needs a network credential, not a customer's")
    exists = session.scalar(select(NetworkCredential.id).where(
        NetworkCredential.client_id == claims.client_id))
    if exists is None:
        raise unauthorized("the bearer token's network credential has been revoked")
    request.state.network_client = claims.client_id
    return claims.client_id


NetworkCaller = Annotated[str, Depends(_network_caller)]
