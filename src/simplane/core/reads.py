"""Reads on the event loop: a few prebuilt statements, run by the database driver itself, for
the hottest GET routes.

A sync route runs in the thread pool, and its session runs every statement through
SQLAlchemy's execution layer. For a read of three short statements those two cost more than the
database: served on PostgreSQL (2 processes, 32 connections), a single-Thing read spent
~1.6 ms of server CPU per request, of which ~0.5 ms went to the ORM session, SQLAlchemy's
execution context and the trips to the thread pool. Here the statements are SQLAlchemy Core
statements compiled once per dialect, and each read is the driver's execute and fetch:

- PostgreSQL: psycopg's asyncio connections, up to `connections` per event loop (the app
  gives the engine's pool size), apart from the engine's pool, in autocommit
  (`ReadTransaction` says why) and time zone UTC. A connection that sat idle is pinged before
  use, like the engine's (`core.db._ping_when_idle`).
- SQLite: one connection per event loop, used on the loop itself. A read of an in-process
  database takes microseconds; in WAL mode a reader never waits for a writer, so it does not
  hold up the loop. It is one of the engine's own connections (its pragmas set), taken out
  of the pool for good, opened at the first read: after `serve` has gathered the statistics.

What a statement returns is what the session would have returned: each column goes through
its type's result processing (SQLite's text timestamps become aware datetimes). A driver's
OperationalError becomes SQLAlchemy's, which the app answers 503. The statements run are
logged at DEBUG on `simplane.reads` (statement and parameters, as SQLAlchemy's echo logs
its own).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.pq import TransactionStatus
from sqlalchemy import Dialect, Select, exc

from ..models.base import UTCDateTime
from .db import IDLE_PING_SECONDS, Database
from .loops import PerLoop

log = logging.getLogger("simplane.reads")


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # the names in placeholder order, for a `?` dialect
    bind: dict[str, Callable[[Any], Any]]
    results: tuple[tuple[int, Callable[[Any], Any]], ...]  # (position, processor) to apply
    fixed: dict[str, Any]  # the values the statement carries (SQLite's OFFSET 0 of a LIMIT)

    def parameters(self, values: dict[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        if self.fixed:
            values = {**self.fixed, **values}
        if self.bind:
            values = {name: self.bind[name](value) if name in self.bind else value
                      for name, value in values.items()}
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)

    def rows(self, raw: list[Sequence[Any]]) -> list[Sequence[Any]]:
        if not self.results:
            return raw
        converted = []
        for values in raw:
            row = list(values)
            for position, convert in self.results:
                if row[position] is not None:
                    row[position] = convert(row[position])
            converted.append(row)
        return converted


def _compile(statement: Select[Any], dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    postgres = dialect.name == "postgresql"
    if any(bind.expanding for bind in compiled.binds.values()):
        raise ValueError("an expanding IN renders per call; use one value or an array")
    bind = {}
    for name, parameter in compiled.binds.items():
        processor = parameter.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            bind[name] = processor
    # Only the columns whose type converts what the driver returns: on PostgreSQL a page of
    # 100 Things converts 4 of its 21 columns, not all of them.
    # On PostgreSQL the reads' connections are in time zone UTC (`_in_utc`): psycopg returns
    # their timestamps in `datetime.UTC`, which is what UTCDateTime's processing would give.
    processors = [None if postgres and isinstance(column.type, UTCDateTime)
                  else column.type.dialect_impl(dialect).result_processor(dialect, None)
                  for column in statement.selected_columns]
    results = tuple((position, processor) for position, processor in enumerate(processors)
                    if processor is not None)
    fixed = {name: value for name, value in compiled.construct_params(_check=False).items()
             if value is not None}
    positional = dialect.paramstyle in ("qmark", "numeric")
    return _Compiled(compiled.string, tuple(compiled.positiontup or ()) if positional else None,
                     bind, results, fixed)


class ReadTransaction:
    """The statements of one read. On SQLite they run in one transaction (one read lock, one
    snapshot). On PostgreSQL each runs on its own (autocommit) and sees its own snapshot,
    which is what READ COMMITTED, the isolation of every session here, gives the statements
    of a transaction anyway: the BEGIN and COMMIT around them were two of a read's round
    trips (for a page of 100, two of five) and changed nothing it saw."""

    def __init__(self, reads: Reads, cursor: Any) -> None:
        self._reads = reads
        self._cursor = cursor  # psycopg's (async) or sqlite3's
        self.is_postgres = reads.is_postgres

    async def all(self, statement: Select[Any], values: dict[str, Any]) -> list[Sequence[Any]]:
        compiled = self._reads.compiled(statement)
        parameters = compiled.parameters(values)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("read", extra={"sql": compiled.sql, "parameters": parameters})
        if self._reads.is_postgres:
            # Binary results: a timestamp is 8 bytes to convert rather than text to parse.
            await self._cursor.execute(compiled.sql, parameters, binary=True)
            rows = await self._cursor.fetchall()
        else:
            rows = self._cursor.execute(compiled.sql, parameters).fetchall()
        return compiled.rows(rows)

    async def first(self, statement: Select[Any], values: dict[str, Any]) -> Sequence[Any] | None:
        rows = await self.all(statement, values)
        return rows[0] if rows else None


class _PostgresConnections:
    """Up to `size` psycopg connections of one event loop. A request that finds none free
    waits, and a connection given back goes straight to the longest waiting request: strictly
    in turn, where an asyncio.Queue lets a request that just arrived take it first and sends
    the one it woke to the back (a page of 100 Things saw its p99 at three times its p50)."""

    def __init__(self, conninfo: str, size: int) -> None:
        self._conninfo = conninfo
        self._size = size
        self._opened = 0
        self._idle: list[tuple[psycopg.AsyncConnection[Any], float]] = []
        self._waiting: deque[asyncio.Future[psycopg.AsyncConnection[Any]]] = deque()

    async def take(self) -> psycopg.AsyncConnection[Any]:
        if self._idle:
            connection, idle_since = self._idle.pop()
            if time.monotonic() - idle_since < IDLE_PING_SECONDS:
                return connection
            return await self._pinged(connection)
        if self._opened < self._size:
            self._opened += 1
            try:
                return await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            except BaseException:
                self._opened -= 1
                raise
        turn: asyncio.Future[psycopg.AsyncConnection[Any]] = (
            asyncio.get_running_loop().create_future())
        self._waiting.append(turn)
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.give_back(turn.result())  # handed over as the request was cancelled
            elif turn in self._waiting:  # (`give_back` drops the cancelled turns it meets)
                self._waiting.remove(turn)
            raise

    async def _pinged(self, connection: psycopg.AsyncConnection[Any]) -> psycopg.AsyncConnection[Any]:
        try:
            await connection.execute("SELECT 1")
            return connection
        except psycopg.Error:
            await self.discard(connection)
            return await self.take()

    def give_back(self, connection: psycopg.AsyncConnection[Any]) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(connection)
                return
        self._idle.append((connection, time.monotonic()))

    async def discard(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._opened -= 1
        await connection.close()
        if self._waiting and self._opened < self._size:
            # A waiting request would otherwise wait for a connection that is gone: open one.
            self._opened += 1
            try:
                replacement = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
            except psycopg.Error:
                self._opened -= 1
                return
            self.give_back(replacement)

    async def close(self) -> None:
        while self._idle:
            connection, _ = self._idle.pop()
            await self.discard(connection)


def _in_utc(conninfo: str) -> str:
    """`conninfo` with the session time zone UTC (after any options it carries): psycopg
    then returns timestamps in `datetime.UTC` itself, and a page of 100 Things skips
    converting 400 of them."""
    options = conninfo_to_dict(conninfo).get("options")
    return make_conninfo(conninfo, options=f"{options or ''} -c TimeZone=UTC".strip())


class Reads:
    def __init__(self, database: Database, connections: int) -> None:
        self._database = database
        self._dialect = database.engine.dialect
        self.is_postgres = database.is_postgres
        self._compiled: dict[Select[Any], _Compiled] = {}
        conninfo = _in_utc(database.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False))
        self._postgres_connections = PerLoop(lambda: _PostgresConnections(conninfo, connections))
        self._sqlite_connection = PerLoop(self._detached_sqlite_connection)

    def compiled(self, statement: Select[Any]) -> _Compiled:
        found = self._compiled.get(statement)
        if found is None:
            found = self._compiled[statement] = _compile(statement, self._dialect)
        return found

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ReadTransaction]:
        try:
            if self.is_postgres:
                async with self._postgres() as connection, connection.cursor() as cursor:
                    yield ReadTransaction(self, cursor)
            else:
                connection = self._sqlite_connection.get().dbapi_connection
                if connection.in_transaction:  # left open by a read whose end failed
                    connection.rollback()
                connection.execute("BEGIN")
                try:
                    yield ReadTransaction(self, connection.cursor())
                except BaseException:
                    connection.rollback()
                    raise
                connection.execute("COMMIT")
        except (psycopg.OperationalError, sqlite3.OperationalError) as error:
            raise exc.OperationalError(None, None, error) from error

    @asynccontextmanager
    async def _postgres(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        connections = self._postgres_connections.get()
        connection = await connections.take()
        try:
            yield connection
        except BaseException:
            # Autocommit: a read that ends in an error of its own (a 404) leaves nothing to end,
            # and no ROLLBACK, on which psycopg would forget its prepared statements.
            if connection.closed or connection.info.transaction_status != TransactionStatus.IDLE:
                # Broken, or cancelled in the middle of a statement (a client that went away).
                await connections.discard(connection)
            else:
                connections.give_back(connection)
            raise
        connections.give_back(connection)

    def _detached_sqlite_connection(self) -> Any:
        pooled = self._database.engine.raw_connection()
        pooled.detach()  # the loop keeps it; the pool opens another in its place
        return pooled

    async def close(self) -> None:
        """Close the connections of the running event loop (at the app's shutdown)."""
        connections = self._postgres_connections.pop()
        if connections is not None:
            await connections.close()
        pooled = self._sqlite_connection.pop()
        if pooled is not None:
            pooled.close()
