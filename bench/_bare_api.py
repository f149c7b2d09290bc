"""The baseline of `bench_api_reads`: a bare ASGI app answering the two Thing reads.

It runs the SQL the product issues for the same request (captured from the product by
`bench_api_reads`, statement text and all, and handed over in the file named by
BARE_API_CONFIG), through the same driver (psycopg 3 / the stdlib sqlite3), from a pool of open
connections, and answers the same JSON bytes with the same ETag and Link headers. What it leaves
out is what the product adds on top: routing and validation, the ORM, Pydantic models, request
ids, metrics, logs, rate limits and the problem+json error layer.

Run it like the product, under uvicorn with the same number of workers:
`BARE_API_CONFIG=cfg.json python -m uvicorn bench._bare_api:app --workers 2`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import queue
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

# Every statement arrives as {"sql": text, "params": [[key, role], ...]}: a key is a name
# (psycopg's %(name)s) or a position (sqlite3's ?); a role says where the value comes from in this
# request: "client_id" / "account_id" (the token), "thing_id" (the path), "fetch" (limit + 1)
# or "literal:<json>".

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Config:
    def __init__(self, path: str) -> None:
        document = json.loads(open(path).read())
        self.url: str = document["dbapi_url"]
        self.postgres = self.url.startswith("postgresql")
        self.key = hashlib.sha256(b"simplane-token:" + document["secret_key"].encode()).digest()
        self.pool_size: int = document["pool_size"]
        self.statements: dict[str, list[dict[str, Any]]] = document["statements"]


def _bind(statement: dict[str, Any], values: dict[str, Any]) -> Any:
    out: Any = {} if statement["params"] and isinstance(statement["params"][0][0], str) else []
    for key, role in statement["params"]:
        if role.startswith("literal:"):
            value = json.loads(role[8:])
        else:
            value = values[role]
        if isinstance(out, dict):
            out[key] = value
        else:
            out.append(value)
    return out


def _timestamp(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite keeps naive UTC text
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def _thing(row: dict[str, Any], tags: list[str]) -> dict[str, Any]:
    return {
        "id": row["id"], "iccid": row["iccid"], "imsi": row["imsi"], "name": row["name"],
        "state": row["state"], "things_group_id": row["things_group_id"], "tags": sorted(tags),
        "services": {"data": bool(row["service_data"]), "sms": bool(row["service_sms"])},
        "imei": row["imei"], "imei_lock": bool(row["imei_lock"]),
        "ip_address": row["ip_address"], "ip_locked": bool(row["ip_locked"]),
        "connection": {"status": row["connection_status"],
                       "since": _timestamp(row["connection_since"]),
                       "rat": row["connection_rat"], "country": row["connection_country"],
                       "operator": row["connection_operator"],
                       "session_id": row["connection_session_id"]},
        "created_at": _timestamp(row["created_at"]), "updated_at": _timestamp(row["updated_at"]),
        "activated_at": _timestamp(row["activated_at"]),
    }


class Unauthorized(Exception):
    pass


class BareApp:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.pg_pool: asyncio.Queue | None = None
        self.sqlite_pool: queue.SimpleQueue[sqlite3.Connection] | None = None

    # --- the database ---------------------------------------------------------------------

    async def startup(self) -> None:
        if self.config.postgres:
            import psycopg

            self.pg_pool = asyncio.Queue()
            for _ in range(self.config.pool_size):
                # Autocommit, as the product's reads (`simplane.core.reads`): no BEGIN and
                # COMMIT around a request's statements.
                self.pg_pool.put_nowait(await psycopg.AsyncConnection.connect(
                    self.config.url, autocommit=True))
        else:
            self.sqlite_pool = queue.SimpleQueue()
            for _ in range(self.config.pool_size):
                connection = sqlite3.connect(self.config.url.removeprefix("sqlite:///"),
                                             check_same_thread=False, timeout=30,
                                             isolation_level=None)
                connection.execute("PRAGMA busy_timeout=30000")
                self.sqlite_pool.put(connection)

    async def shutdown(self) -> None:
        if self.pg_pool is not None:
            while not self.pg_pool.empty():
                await self.pg_pool.get_nowait().close()
        if self.sqlite_pool is not None:
            while not self.sqlite_pool.empty():
                self.sqlite_pool.get().close()

    async def query(self, name: str, values: dict[str, Any]) -> list[tuple[list[str], list]]:
        """Run one request's statements (on SQLite in one read transaction; on PostgreSQL each
        on its own, as the product's): each statement's columns and rows. The first is always
        the credential lookup, refused unless its user is active."""
        statements = self.config.statements[name]
        results: list[tuple[list[str], list]] = []
        if self.pg_pool is not None:
            connection = await self.pg_pool.get()
            try:
                async with connection.cursor() as cursor:
                    for statement in statements:
                        await cursor.execute(statement["sql"], _bind(statement, values))
                        results.append(([c.name for c in cursor.description],
                                        await cursor.fetchall()))
                        if len(results) == 1 and not _active(results[0], values):
                            break
            finally:
                self.pg_pool.put_nowait(connection)
            return results
        assert self.sqlite_pool is not None
        connection = self.sqlite_pool.get()
        try:
            connection.execute("BEGIN")
            for statement in statements:
                cursor = connection.execute(statement["sql"], _bind(statement, values))
                results.append(([c[0] for c in cursor.description], cursor.fetchall()))
                if len(results) == 1 and not _active(results[0], values):
                    break
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            self.sqlite_pool.put(connection)
        return results

    # --- HTTP -----------------------------------------------------------------------------

    def claims(self, scope: dict[str, Any]) -> dict[str, Any]:
        header = next((v for k, v in scope["headers"] if k == b"authorization"), b"").decode()
        scheme, _, token = header.partition(" ")
        body, _, signature = token.strip().partition(".")
        if scheme.lower() != "bearer" or not body:
            raise Unauthorized
        expected = base64.urlsafe_b64encode(
            hmac.new(self.config.key, body.encode(), hashlib.sha256).digest()).rstrip(b"=")
        if not hmac.compare_digest(expected, signature.encode()):
            raise Unauthorized
        payload = json.loads(_b64decode(body))
        if payload["exp"] <= time.time() or payload.get("k", "user") != "user":
            raise Unauthorized
        return {"client_id": payload["c"], "account_id": payload["a"], "iat": payload["iat"]}

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await self.startup()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        try:
            values = self.claims(scope)
            if path == "/v1/things":
                status, body, headers = await self.list_things(scope, values)
            elif path.startswith("/v1/things/") and path.count("/") == 3:
                values["thing_id"] = path[len("/v1/things/"):]
                status, body, headers = await self.get_thing(values)
            else:
                status, body, headers = 404, b'{"detail":"not found"}', []
        except Unauthorized:
            status, body, headers = 401, b'{"detail":"unauthorized"}', []
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(body)).encode()),
                                (b"content-type", b"application/json"), *headers]})
        await send({"type": "http.response.body", "body": body})

    async def get_thing(self, values: dict[str, Any]) -> tuple[int, bytes, list]:
        results = await self.query("get_thing", values)
        if len(results) < 2:
            raise Unauthorized
        columns, rows, tags = _rows_and_tags(results)
        if not rows:
            return 404, b'{"detail":"not found"}', []
        body = _dumps(_thing(dict(zip(columns, rows[0], strict=True)),
                             tags[rows[0][0]])).encode()
        return 200, body, [(b"etag", _etag(body))]

    async def list_things(self, scope: dict[str, Any], values: dict[str, Any]) -> tuple[int, bytes, list]:
        query = dict(part.partition("=")[::2] for part in scope["query_string"].decode().split("&")
                     if part)
        limit = int(query.get("limit", 100))
        values["fetch"] = limit + 1
        results = await self.query("list_things", values)
        if len(results) < 2:
            raise Unauthorized
        columns, rows, tags = _rows_and_tags(results)
        page = rows[:limit]
        next_cursor = None
        headers = []
        if len(rows) > limit:
            next_cursor = base64.urlsafe_b64encode(
                json.dumps({"after": page[-1][0]}).encode()).decode().rstrip("=")
            host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode()
            url = f"http://{host}{scope['path']}?{scope['query_string'].decode()}&cursor={next_cursor}"
            headers.append((b"link", f'<{url}>; rel="next"'.encode()))
        items = [_thing(dict(zip(columns, row, strict=True)), tags[row[0]]) for row in page]
        body = _dumps({"items": items, "next_cursor": next_cursor}).encode()
        return 200, body, headers


def _rows_and_tags(results: list[tuple[list[str], list]]) -> tuple[list[str], list,
                                                                    dict[str, list[str]]]:
    """The rows' columns, the rows, and each row's tags, from the rows' own `tags` column
    (joined by ",")."""
    columns, rows = results[1]
    at = columns.index("tags")
    return columns, rows, {row[0]: row[at].split(",") if row[at] else [] for row in rows}


def _active(credential: tuple[list[str], list], values: dict[str, Any]) -> bool:
    columns, rows = credential
    if not rows:
        return False
    row = dict(zip(columns, rows[0], strict=True))
    valid_after = row["tokens_valid_after"]
    if isinstance(valid_after, str):
        valid_after = datetime.fromisoformat(valid_after).replace(tzinfo=UTC)
    return row["status"] == "ACTIVE" and (valid_after is None
                                          or values["iat"] > valid_after.timestamp())


def _etag(body: bytes) -> bytes:
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'.encode()


app = BareApp(Config(os.environ["BARE_API_CONFIG"])) if "BARE_API_CONFIG" in os.environ else None
