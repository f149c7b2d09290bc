"""Pure-ASGI middleware for the cross-cutting behaviour of every route.

Outermost first: request id, logs and metrics; rate limits; idempotent replay of POSTs; the
audit log of writes; the error boundary that turns unhandled exceptions into problem+json.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import time
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError, OperationalError

from ..models import AuditEntry, Credential, IdempotencyRecord, NetworkCredential, User, utcnow
from .accesslog import ACCESS_LOG
from .config import Settings
from .db import Database
from .errors import AppError, bad_field, precondition
from .http import route_template
from .httpmetrics import HTTP_METRICS
from .ids import new_id
from .problem import send_problem
from .ratelimit import RateLimiter
from .security import TokenClaims, TokenSigner

log = logging.getLogger("simplane.http")

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_ID_SEGMENT = re.compile(r"^[a-z]{2,5}_[0-9A-Z]{29}$")
_SECRET_FIELD = re.compile(r"secret|psk|password|token", re.IGNORECASE)
# A client's own request id is kept when it is short printable ASCII (it goes into logs).
_OFFERED_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,64}$")
# Headers a replayed response repeats; others (Date, RateLimit-*, X-Request-Id) are fresh.
_REPLAYED_HEADERS = {"content-type", "location", "etag", "link"}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def bearer_claims(scope: dict[str, Any], signer: TokenSigner) -> TokenClaims | None:
    header = _header(scope, b"authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return signer.verify_once(scope, token.strip())


async def _read_body(receive) -> bytes:  # type: ignore[no-untyped-def]
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay_receive(body: bytes):  # type: ignore[no-untyped-def]
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


# A request id names a request in logs; it guards nothing, so it need not come from the
# operating system's generator (secrets.token_hex: a system call and ~2 us a request). 96 bits
# of a generator seeded from it, per process, reseeded in a forked child.
_request_ids = random.Random()
os.register_at_fork(after_in_child=_request_ids.seed)


class RequestContextMiddleware:
    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = _header(scope, b"x-request-id")
        request_id = (offered if offered and _OFFERED_REQUEST_ID.match(offered)
                      else f"req_{_request_ids.getrandbits(96):024x}")
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_with_id(message) -> None:  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await _guarded(self.app, scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope) or "unmatched"
            HTTP_METRICS.observe(scope["method"], route, status_holder["status"], elapsed)
            ACCESS_LOG.request(request_id, scope["method"], scope["path"],
                               status_holder["status"], round(elapsed * 1000, 2))


def unexpected_error(exc: BaseException) -> AppError:
    """The problem an unhandled exception answers: never its message, traceback or SQL."""
    if isinstance(exc, OperationalError):
        return AppError("the database is unavailable; retry shortly", 503,
                        "service_unavailable", "Service unavailable", headers={"Retry-After": "5"})
    return AppError("an unexpected error occurred; the request id names it in logs", 500,
                    "internal_error", "Internal error")


async def _guarded(app, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    # Starlette answers unhandled exceptions outside every middleware, so that response would
    # lack X-Request-Id and RateLimit-* and the audit log would miss it; answer here instead.
    started = False

    async def tracking_send(message) -> None:  # type: ignore[no-untyped-def]
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, receive, tracking_send)
    except Exception as exc:
        if started:
            raise
        error = unexpected_error(exc)
        log.error("unhandled error" if error.status == 500 else "database unavailable",
                  exc_info=exc, extra={"request_id": scope.get("state", {}).get("request_id")})
        await send_problem(send, error)


class ErrorMiddleware:
    """Innermost: turns an exception no handler took into a problem response."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _guarded(self.app, scope, receive, send)


class RateLimitMiddleware:
    """A token bucket per API credential; the token endpoint per client id and source address."""

    def __init__(self, app, limiter: RateLimiter, settings: Settings, signer: TokenSigner) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.limiter = limiter
        self.settings = settings
        self.signer = signer

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        source = (scope.get("client") or ("unknown", 0))[0]
        if scope["path"] == "/v1/oauth2/token":
            body = await _read_body(receive)
            receive = _replay_receive(body)
            per_minute = self.settings.token_rate_limit_per_minute
            rate, burst = per_minute / 60.0, per_minute
            keys = [f"token-ip:{source}"]
            client_id = _token_client_id(scope, body)
            if client_id:
                keys.append(f"token-client:{client_id}")
        else:
            rate, burst = self.settings.rate_limit_per_second, self.settings.rate_limit_burst
            claims = bearer_claims(scope, self.signer)
            keys = [f"cred:{claims.client_id}" if claims else f"anon:{source}"]
        try:
            if self.limiter.blocking:
                decisions = [await anyio.to_thread.run_sync(self.limiter.hit, key, rate, burst)
                             for key in keys]
            else:  # a dictionary update under a lock: no trip to the thread pool
                decisions = [self.limiter.hit(key, rate, burst) for key in keys]
        except Exception:  # noqa: BLE001 - e.g. Redis unreachable
            # Rate limiting protects the service; it must not take it down. Fail open, loudly.
            log.warning("rate limiter unavailable; request let through", exc_info=True)
            await self.app(scope, receive, send)
            return
        decision = (decisions[0] if len(decisions) == 1
                    else min(decisions, key=lambda d: (d.allowed, d.remaining)))
        # As bytes, ready for the server: every API response carries them.
        limit_headers = ((b"ratelimit-limit", b"%d" % decision.limit),
                         (b"ratelimit-remaining", b"%d" % decision.remaining),
                         (b"ratelimit-reset", b"%d" % decision.reset_seconds))
        if not decision.allowed:
            error = AppError(
                f"rate limit of {rate:g} requests/s (burst {burst}) exceeded; "
                f"retry after {decision.retry_after} s",
                429, "rate_limited", "Too many requests",
                headers={"Retry-After": str(decision.retry_after)},
            )
            await send_problem(send, error, {name.decode(): value.decode()
                                             for name, value in limit_headers})
            return

        async def send_with_headers(message) -> None:  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *limit_headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _token_client_id(scope: dict[str, Any], body: bytes) -> str | None:
    import base64
    from urllib.parse import parse_qs

    header = _header(scope, b"authorization") or ""
    if header.lower().startswith("basic "):
        try:
            return base64.b64decode(header[6:]).decode().partition(":")[0] or None
        except ValueError:
            return None
    values = parse_qs(body.decode("latin-1")).get("client_id")
    return values[0] if values else None


class IdempotencyMiddleware:
    """Replays the first response to a POST with the same Idempotency-Key and body (24 h)."""

    def __init__(self, app, database: Database, signer: TokenSigner, ttl_seconds: int) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.database = database
        self.signer = signer
        self.ttl = timedelta(seconds=ttl_seconds)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = _header(scope, b"idempotency-key")
        claims = bearer_claims(scope, self.signer)
        if key is None or claims is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255:
            error = bad_field("Idempotency-Key", f"must be 1 to 255 characters, got {len(key)}")
            await send_problem(send, error)
            return
        body = await _read_body(receive)
        fingerprint = hashlib.sha256(
            scope["path"].encode() + b"\n" + scope.get("query_string", b"") + b"\n" + body
        ).hexdigest()
        stored = await anyio.to_thread.run_sync(self._lookup, claims, key)
        if stored is not None:
            if stored.request_hash != fingerprint:
                await send_problem(send, precondition(
                    "idempotency_key_reused",
                    f"Idempotency-Key {key!r} was already used with a different request",
                ))
                return
            await self._replay(send, stored)
            return

        captured: dict[str, Any] = {"status": 0, "headers": [], "body": []}

        async def capture(message) -> None:  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
                # Stored before the last byte leaves: a retry sent on receipt must find it.
                if not message.get("more_body") and self._is_outcome(scope, captured):
                    await self._store_safely(claims, key, fingerprint, captured)
            await send(message)

        await self.app(scope, _replay_receive(body), capture)

    @staticmethod
    def _is_outcome(scope: dict[str, Any], captured: dict[str, Any]) -> bool:
        # Server errors, throttling and refused tokens are not outcomes: a retry must run.
        status = captured["status"]
        return (bool(status) and status < 500 and status != 429
                and (scope.get("state", {}).get("principal") is not None
                     or scope.get("state", {}).get("network_client") is not None))

    async def _store_safely(self, claims: TokenClaims, key: str, fingerprint: str,
                            captured: dict) -> None:
        try:
            await anyio.to_thread.run_sync(self._store, claims, key, fingerprint, captured)
        except Exception:  # noqa: BLE001 - the work is done; answering it matters more
            log.exception("could not store the idempotent response for key %r", key)

    def _lookup(self, claims: TokenClaims, key: str) -> IdempotencyRecord | None:
        # Only for a credential that still exists and whose user is active: a revoked token
        # must answer 401, not a replay.
        fresh = (IdempotencyRecord.client_id == claims.client_id, IdempotencyRecord.key == key,
                 IdempotencyRecord.created_at > utcnow() - self.ttl)
        with self.database.transaction(read_only=True) as session:
            if claims.kind == "network":
                return session.scalar(
                    select(IdempotencyRecord)
                    .join(NetworkCredential,
                          NetworkCredential.client_id == IdempotencyRecord.client_id)
                    .where(IdempotencyRecord.account_id.is_(None), *fresh))
            return session.scalar(
                select(IdempotencyRecord)
                .join(Credential, Credential.client_id == IdempotencyRecord.client_id)
                .join(User, User.id == Credential.user_id)
                .where(User.status == "ACTIVE",
                       IdempotencyRecord.account_id == claims.account_id, *fresh))

    def _store(self, claims: TokenClaims, key: str, fingerprint: str, captured: dict) -> None:
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in captured["headers"] if k.decode("latin-1").lower() in _REPLAYED_HEADERS
        }
        try:
            with self.database.transaction() as session:
                session.execute(delete(IdempotencyRecord).where(
                    IdempotencyRecord.client_id == claims.client_id,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.created_at <= utcnow() - self.ttl,
                ))
                session.add(IdempotencyRecord(
                    client_id=claims.client_id, key=key, account_id=claims.account_id or None,
                    request_hash=fingerprint, status_code=captured["status"], headers=headers,
                    body=_replay_body(b"".join(captured["body"])),
                    created_at=utcnow(),
                ))
        except IntegrityError:
            pass  # a concurrent request with the same key stored its outcome first

    async def _replay(self, send, stored: IdempotencyRecord) -> None:  # type: ignore[no-untyped-def]
        body = stored.body.encode()
        headers = [(k.lower().encode(), v.encode()) for k, v in stored.headers.items()]
        headers += [(b"content-length", str(len(body)).encode()), (b"idempotent-replayed", b"true")]
        await send({"type": "http.response.start", "status": stored.status_code,
                    "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _replay_body(body: bytes) -> str:
    """The response body kept for replay. A secret is shown once and only its hash is stored
    (api.md §2), so a replay names the same resource with its secret fields masked."""
    text = body.decode("utf-8", "replace")
    if not _SECRET_FIELD.search(text):
        return text
    try:
        document = json.loads(text)
    except ValueError:
        return text
    masked = _mask(document)
    return text if masked == document else json.dumps(masked, separators=(",", ":"))


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if _SECRET_FIELD.search(k) else _mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


class AuditMiddleware:
    """One audit entry for every authenticated write, whatever its outcome."""

    def __init__(self, app, database: Database) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.database = database

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        captured: dict[str, Any] = {"status": 0, "body": []}

        async def capture(message) -> None:  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
            elif message["type"] == "http.response.body":
                if captured["status"] == 201:
                    captured["body"].append(message.get("body", b""))
                # Written before the last byte leaves, so a client that reads the audit log
                # right after its write finds the entry.
                if not message.get("more_body"):
                    await self._record(scope, body, captured)
            await send(message)

        await self.app(scope, _replay_receive(body), capture)

    async def _record(self, scope, body: bytes, captured: dict) -> None:  # type: ignore[no-untyped-def]
        state = scope.get("state", {})
        principal = state.get("principal")
        if principal is None:
            return
        try:
            await anyio.to_thread.run_sync(self._write, scope, state, principal, body, captured)
        except Exception:  # noqa: BLE001 - the write itself is done; still answer it
            log.exception("could not write the audit entry",
                          extra={"request_id": state.get("request_id")})

    def _write(self, scope, state, principal, body: bytes, captured: dict) -> None:  # type: ignore[no-untyped-def]
        changed = state.get("audit_changed")
        if changed is None:
            try:
                changed = json.loads(body) if body else {}
            except ValueError:
                changed = {}
            if not isinstance(changed, dict):
                changed = {"body": changed}
        resource_id = state.get("audit_resource_id")
        if resource_id is None and captured["status"] == 201:
            try:
                resource_id = json.loads(b"".join(captured["body"])).get("id")
            except (ValueError, AttributeError):
                resource_id = None
        if resource_id is None:
            ids = [s for s in scope["path"].split("/") if _ID_SEGMENT.match(s)]
            resource_id = ids[-1] if ids else None
        with self.database.transaction() as session:
            session.add(AuditEntry(
                id=new_id("audit"), account_id=principal.account_id,
                actor_user_id=principal.user_id, client_id=principal.client_id,
                method=scope["method"], path=scope["path"], resource_id=resource_id,
                changed_fields=_mask(changed), status=captured["status"],
                request_id=state.get("request_id", ""),
            ))
