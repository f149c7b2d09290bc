"""Engines and sessions for the two supported databases: SQLite (embedded) and PostgreSQL.

One unit of work per request: routes get a session, services only flush, and the request
commits once at the end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Table,
    TextClause,
    bindparam,
    create_engine,
    event,
    exc,
    insert,
    text,
    update,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool, QueuePool

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_postgres(bind: Engine | Session) -> bool:
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "postgresql"


# Connections kept open per process. Requests take a few of them at once (`core.deps.
# RequestSlots`); the rest serve the background workers and the middleware's own short
# transactions. Beyond the pool a connection is opened for one use and closed after
# it (on PostgreSQL a new backend process each time).
POOL_SIZE = 10
MAX_OVERFLOW = 20


def create_db_engine(url: str, *, pool_size: int = POOL_SIZE,
                     max_overflow: int = MAX_OVERFLOW) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, pool_size, max_overflow)
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow, future=True)
    _ping_when_idle(engine)
    return engine


# A pooled connection unused for this long is pinged before a request gets it.
IDLE_PING_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """`pool_pre_ping`, but only for a connection that sat idle in the pool: a connection
    the server dropped (a restart, an idle timeout) is replaced before a request sees it,
    while a busy server does not pay a round trip per request to learn that the connection it
    used a moment ago still works. A connection that breaks mid-use fails its request (503)
    and SQLAlchemy then replaces every connection opened before the break."""

    @event.listens_for(engine.pool, "checkin")
    def _checked_in(dbapi_connection, record):  # type: ignore[no-untyped-def]
        if record is not None:
            record.info["simplane.idle_since"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_connection, record, proxy):  # type: ignore[no-untyped-def]
        since = record.info.pop("simplane.idle_since", None)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool closes this connection and checks out another (a new one if need be).
            raise exc.DisconnectionError(f"a pooled connection failed its ping: {error}") from error


def _sqlite_engine(url: str, pool_size: int, max_overflow: int) -> Engine:
    database = url.split(":///", 1)[1] if ":///" in url else ""
    pooling: dict = {"poolclass": NullPool}
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Connections are kept open, like PostgreSQL's: opening one costs a file open and the
        # pragmas below, and closing the last one checkpoints the WAL and deletes it, which a
        # process serving one request at a time would otherwise do per request. A pooled
        # connection serves one thread at a time; `check_same_thread` only allows the hand-over.
        pooling = {"poolclass": QueuePool, "pool_size": pool_size, "max_overflow": max_overflow}
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, **pooling
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # pysqlite's own transaction handling would defer BEGIN; we emit it ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        # A deferred transaction that reads and then writes can fail at once with SQLITE_BUSY
        # when another writer got there first (the busy timeout does not apply to lock
        # upgrades). Writers therefore take the write lock up front; readers stay deferred.
        if connection.get_execution_options().get("sqlite_read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    def __init__(self, url: str, *, pool_size: int = POOL_SIZE,
                 max_overflow: int = MAX_OVERFLOW) -> None:
        self.url = url
        self.pool_size = pool_size
        self.engine = create_db_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        read_engine = self.engine.execution_options(sqlite_read_only=True)
        self._read_sessions = sessionmaker(read_engine, expire_on_commit=False, autoflush=True)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def session(self, *, read_only: bool = False) -> Session:
        return (self._read_sessions if read_only else self._sessions)()

    def transaction(self, *, read_only: bool = False) -> AbstractContextManager[Session]:
        """A session that commits when the block ends cleanly and rolls back otherwise."""
        return unit_of_work(self.session(read_only=read_only))

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """`session`, committed when the block ends cleanly, rolled back otherwise, then closed."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def advisory_lock(session: Session, name: str, *, shared: bool = False) -> None:
    """Serialise a critical section across processes until the transaction ends (`shared`:
    many holders at once, excluding only the exclusive holder).

    PostgreSQL: a transaction-scoped advisory lock. SQLite: writers already hold the database's
    single write lock from BEGIN IMMEDIATE, so nothing more is needed.
    """
    if is_postgres(session):
        session.execute(_SHARED_LOCK if shared else _EXCLUSIVE_LOCK, {"name": name})


# Built once: every RADIUS accounting batch takes the closing lock.
_SHARED_LOCK = text("SELECT pg_advisory_xact_lock_shared(hashtext(:name))")
_EXCLUSIVE_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:name))")


def upsert(session: Session, model, values: dict | list[dict], *,  # type: ignore[no-untyped-def]
           keys: tuple[str, ...], increment: tuple[str, ...]) -> None:
    """INSERT, or add `increment` columns onto the existing row: one statement, no race. A
    list of rows (no two of them sharing `keys`) goes as one executemany of that statement.

    Both engines speak `INSERT ... ON CONFLICT DO UPDATE`; only the construct differs.
    """
    rows = [values] if isinstance(values, dict) else values
    if not rows:
        return
    statement = _upsert_statement(session.get_bind().dialect.name, model.__table__, keys,
                                  increment, tuple(rows[0]))
    session.execute(statement, rows if len(rows) > 1 else rows[0])


@lru_cache(maxsize=64)
def _upsert_statement(dialect: str, table, keys: tuple[str, ...],  # type: ignore[no-untyped-def]
                      increment: tuple[str, ...], columns: tuple[str, ...]):
    # Bound parameters rather than the rows' values: the same statement for every batch, so
    # it is compiled once (a multi-row VALUES of the batch's own length compiled anew each
    # time, and the compile cost more than the rows' round trip).
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table).values({name: bindparam(name) for name in columns})
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: table.c[name] + statement.excluded[name] for name in increment})


def claim(session: Session, statement):  # type: ignore[no-untyped-def]
    """Lock the selected job rows for this transaction; other workers skip them (PostgreSQL
    `FOR UPDATE SKIP LOCKED`). SQLite has one writer at a time, so a plain select suffices."""
    if is_postgres(session):
        return statement.with_for_update(skip_locked=True)
    return statement



def stream_column(session: Session, statement, rows_per_chunk: int = 2000):  # type: ignore[no-untyped-def]
    """PostgreSQL: the first column of `statement` (bytea), `rows_per_chunk` rows joined into one
    bytes object at a time. libpq hands the rows over in chunks (no server-side cursor, so
    PostgreSQL may still plan the query in parallel, which it never does for a cursor) and
    psycopg makes one bytes object per row, nothing more: the cheapest way for Python to pass on
    a million rows the database has already formatted."""
    assert is_postgres(session)
    compiled = statement.compile(dialect=session.get_bind().dialect,
                                 compile_kwargs={"render_postcompile": True})
    driver = session.connection().connection.driver_connection
    with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
        parts: list[bytes] = []
        for (value,) in cursor.stream(str(compiled), compiled.params, size=rows_per_chunk):
            parts.append(value)
            if len(parts) == rows_per_chunk:
                yield b"".join(parts)
                parts = []
        if parts:
            yield b"".join(parts)


@dataclass(frozen=True)
class Rows:
    """One table's share of a batch write (`write_rows`): rows to insert, to upsert (`keys`
    the conflict target, `increment` the counters added onto an existing row) or, with
    `update`, to update (`keys` find each row, the other columns are set). Every row of a
    share has the same columns."""

    table: Table
    rows: Sequence[dict[str, Any]]
    keys: tuple[str, ...] = ()
    increment: tuple[str, ...] = ()
    update: bool = False


def write_rows(connection: Connection, shares: Sequence[Rows]) -> None:
    """Write a batch's rows for several tables, in the order given.

    PostgreSQL: one statement for them all, each share a data-modifying CTE over
    `json_to_recordset` of one JSON parameter: the statement text depends only on which tables
    and columns take part (prepared once, whatever the batch size), and a batch of RADIUS
    requests costs one round trip instead of an executemany per table (a round of SQLAlchemy
    and driver work per row). JSON rather than an array per column: the driver encodes arrays
    element by element in Python, orjson the whole batch in C, datetimes included (the stdlib
    encoder called back into Python for each). Every share sees the snapshot from before the
    statement, so no share may depend on another's rows; constraints are checked at its end.
    Elsewhere: one executemany per share."""
    shares = [share for share in shares if share.rows]
    if not shares:
        return
    dialect = connection.dialect
    if dialect.name != "postgresql":
        for share in shares:
            statement, rows = _portable_write(dialect.name, share)
            connection.execute(statement, rows)
        return
    signature = tuple((share.table, tuple(share.rows[0]), share.keys, share.increment,
                       share.update) for share in shares)
    connection.execute(_recordset_write(dialect, signature), {
        f"p{n}": orjson.dumps(share.rows).decode() for n, share in enumerate(shares)})


def _portable_write(dialect: str, share: Rows) -> tuple[Any, Sequence[dict[str, Any]]]:
    if share.update:
        # The keys bound under other names: a SET column's own name is reserved for its value.
        statement = _update_statement(share.table, share.keys, tuple(share.rows[0]))
        return statement, [{**row, **{f"key_{k}": row[k] for k in share.keys}}
                           for row in share.rows]
    if share.keys:
        return (_upsert_statement(dialect, share.table, share.keys, share.increment,
                                  tuple(share.rows[0])), share.rows)
    return insert(share.table), share.rows


@lru_cache(maxsize=64)
def _update_statement(table: Table, keys: tuple[str, ...],  # type: ignore[no-untyped-def]
                      columns: tuple[str, ...]):
    return update(table).where(*(table.c[k] == bindparam(f"key_{k}") for k in keys)).values(
        {name: bindparam(name) for name in columns if name not in keys})


@lru_cache(maxsize=64)
def _recordset_write(dialect: Dialect, signature: tuple) -> TextClause:  # type: ignore[type-arg]
    quote = dialect.identifier_preparer.quote
    ctes = []
    for n, (table, columns, keys, increment, is_update) in enumerate(signature):
        names = ", ".join(quote(name) for name in columns)
        record = ", ".join(f"{quote(name)} {table.c[name].type.compile(dialect=dialect)}"
                           for name in columns)
        rows = f"json_to_recordset(CAST(:p{n} AS JSON)) AS u({record})"
        target = quote(table.name)
        if is_update:
            body = (f"UPDATE {target} SET " + ", ".join(
                f"{quote(c)} = u.{quote(c)}" for c in columns if c not in keys)
                + f" FROM {rows} WHERE "
                + " AND ".join(f"{target}.{quote(k)} = u.{quote(k)}" for k in keys))
        else:
            body = f"INSERT INTO {target} ({names}) SELECT {names} FROM {rows}"
            if keys:
                body += (f" ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET "
                         + ", ".join(f"{quote(c)} = {target}.{quote(c)} + EXCLUDED.{quote(c)}"
                                     for c in increment))
        ctes.append(f"w{n} AS ({body})")
    return text(f"WITH {', '.join(ctes)} SELECT 1")
