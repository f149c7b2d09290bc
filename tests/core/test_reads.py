"""`core.reads`: a read's statements run by the driver on the event loop answer what a
session answers, recover from a dropped connection, and log what they run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import String, bindparam, func, select, text
from sqlalchemy.exc import OperationalError

from simplane.core.db import Database
from simplane.core.reads import Reads, _in_utc
from simplane.models import Thing
from simplane.things import repository

_things = Thing.__table__
_BY_IDS = select(_things.c.id).where(_things.c.id.in_(bindparam("ids", expanding=True)))


def test_rows_are_what_the_session_reads(tenant, backend):  # type: ignore[no-untyped-def]
    thing = tenant.things(1)[0]
    patched = tenant.admin.patch(f"/v1/things/{thing['id']}", json={"tags": ["fleet-2", "fleet-1"]})
    assert patched.status_code == 200, patched.text
    values = {"account_id": tenant.account_id, "thing_id": thing["id"]}
    with backend.database.transaction(read_only=True) as session:
        expected = tuple(session.execute(repository._THING_ROW_TAGGED, values).one())
    reads = Reads(backend.database, connections=1)

    async def read() -> Sequence[Any] | None:
        try:
            async with reads.transaction() as transaction:
                return await repository.thing_row(transaction, tenant.account_id, thing["id"])
        finally:
            await reads.close()

    row = asyncio.run(read())
    assert row is not None and tuple(row) == expected
    assert sorted(repository.tags_of_row(row)) == ["fleet-1", "fleet-2"]
    created_at = row[[c.name for c in repository.THING_COLUMNS].index("created_at")]
    # SQLite's text turned into an aware datetime; PostgreSQL's read in the reads' own time
    # zone, UTC (the processing a session applies is skipped there).
    assert created_at.tzinfo is UTC


def test_the_reads_connections_add_their_time_zone_to_the_options_given():  # type: ignore[no-untyped-def]
    assert conninfo_to_dict(_in_utc("postgresql://u@db:5432/simplane"))["options"] == (
        "-c TimeZone=UTC")
    given = _in_utc("postgresql://u@db/simplane?options=-c%20statement_timeout%3D5s")
    assert conninfo_to_dict(given)["options"] == "-c statement_timeout=5s -c TimeZone=UTC"


def test_a_statement_that_renders_per_call_is_refused(backend):  # type: ignore[no-untyped-def]
    reads = Reads(backend.database, connections=1)
    with pytest.raises(ValueError, match="expanding"):
        reads.compiled(_BY_IDS)


def test_the_statements_are_logged_at_debug(tenant, backend):  # type: ignore[no-untyped-def]
    reads = Reads(backend.database, connections=1)
    values = {"account_id": tenant.account_id, "thing_id": "thg_none"}
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    async def read() -> None:
        try:
            async with reads.transaction() as transaction:
                assert await transaction.first(repository._THING_ROW, values) is None
        finally:
            await reads.close()

    logger, handler = logging.getLogger("simplane.reads"), Keep()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        asyncio.run(read())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    [record] = records
    parameters = record.parameters  # type: ignore[attr-defined]
    assert record.sql == reads.compiled(repository._THING_ROW).sql  # type: ignore[attr-defined]
    assert tenant.account_id in (parameters.values() if isinstance(parameters, dict)
                                 else parameters)


def test_a_dropped_connection_fails_one_read_and_is_replaced(backend):  # type: ignore[no-untyped-def]
    if backend.name != "postgresql":
        pytest.skip("an in-process SQLite database has no server to drop the connection")
    reads = Reads(backend.database, connections=1)
    pid_of_session = select(func.pg_backend_pid())

    async def scenario() -> tuple[int, int]:
        try:
            async with reads.transaction() as transaction:
                [first] = await transaction.first(pid_of_session, {})
            with backend.database.engine.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            with pytest.raises(OperationalError):
                async with reads.transaction() as transaction:
                    await transaction.first(pid_of_session, {})
            async with reads.transaction() as transaction:
                [second] = await transaction.first(pid_of_session, {})
            return first, second
        finally:
            await reads.close()

    first, second = asyncio.run(scenario())
    assert first != second


def test_reads_of_a_missing_database_answer_operational_error(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "a-directory.db").mkdir()
    database = Database(f"sqlite:///{tmp_path}/a-directory.db")
    reads = Reads(database, connections=1)

    async def read() -> None:
        async with reads.transaction() as transaction:
            await transaction.first(repository._THING_ROW, {"account_id": "a", "thing_id": "t"})

    try:
        with pytest.raises(OperationalError):
            asyncio.run(read())
    finally:
        database.dispose()


def test_reads_beyond_the_connections_wait_in_turn_and_a_cancelled_one_gives_way(backend):  # type: ignore[no-untyped-def]
    if backend.name != "postgresql":
        pytest.skip("SQLite reads run one at a time on the loop; they never wait for a connection")
    reads = Reads(backend.database, connections=1)
    sleep_then_pid = select(func.pg_backend_pid()).where(func.pg_sleep(0.05).is_not(None))
    order: list[int] = []

    async def read(n: int) -> int:
        async with reads.transaction() as transaction:
            [pid] = await transaction.first(sleep_then_pid, {})
        order.append(n)
        return pid  # type: ignore[no-any-return]

    async def scenario() -> tuple[set[int], int]:
        try:
            first = asyncio.create_task(read(0))
            await asyncio.sleep(0.01)  # it holds the only connection
            waiting = [asyncio.create_task(read(n)) for n in range(1, 6)]
            await asyncio.sleep(0.01)
            waiting[0].cancel()  # gives up its turn before the connection comes back
            pids = {await first, *[await task for task in waiting[1:]]}
            with pytest.raises(asyncio.CancelledError):
                await waiting[0]
            last = await asyncio.wait_for(read(6), timeout=5)
            return pids, last
        finally:
            await reads.close()

    pids, last = asyncio.run(scenario())
    assert order == [0, 2, 3, 4, 5, 6]  # in the order they asked
    assert pids == {last}  # one connection served them all


def test_a_read_cancelled_mid_statement_leaves_no_busy_connection_behind(backend):  # type: ignore[no-untyped-def]
    if backend.name != "postgresql":
        pytest.skip("a SQLite read runs to its end on the loop; it cannot be cancelled midway")
    reads = Reads(backend.database, connections=1)
    slow = select(func.pg_sleep(2))
    pid_of_session = select(func.pg_backend_pid())

    async def scenario() -> int:
        try:
            async def read_slowly() -> None:
                async with reads.transaction() as transaction:
                    await transaction.first(slow, {})

            task = asyncio.create_task(read_slowly())
            await asyncio.sleep(0.3)  # the statement is running
            task.cancel()  # the client went away
            with pytest.raises(asyncio.CancelledError):
                await task
            async with reads.transaction() as transaction:
                [pid] = await asyncio.wait_for(transaction.first(pid_of_session, {}), timeout=1)
            return pid  # type: ignore[no-any-return]
        finally:
            await reads.close()

    assert asyncio.run(scenario()) > 0


def test_a_read_that_fails_on_its_own_keeps_its_prepared_statements(backend):  # type: ignore[no-untyped-def]
    if backend.name != "postgresql":
        pytest.skip("SQLite's statements are not prepared on a server")
    reads = Reads(backend.database, connections=1)
    pid_of_session = select(func.pg_backend_pid())
    prepared = select(func.count()).select_from(text("pg_prepared_statements"))

    async def scenario() -> tuple[int, int, int, int]:
        try:
            for _ in range(6):  # past psycopg's prepare threshold (5)
                async with reads.transaction() as transaction:
                    [first] = await transaction.first(pid_of_session, {})
                    [before] = await transaction.first(prepared, {})
            with pytest.raises(LookupError):
                async with reads.transaction() as transaction:
                    await transaction.first(pid_of_session, {})
                    raise LookupError("no such Thing")  # as a 404 leaves its read
            async with reads.transaction() as transaction:
                [second] = await transaction.first(pid_of_session, {})
                [after] = await transaction.first(prepared, {})
            return first, second, before, after
        finally:
            await reads.close()

    first, second, before, after = asyncio.run(scenario())
    # The same connection, and psycopg kept what it had prepared (a ROLLBACK drops it all).
    assert first == second and before >= 1 and after >= before


def test_a_postgresql_read_runs_its_statements_outside_a_transaction(backend):  # type: ignore[no-untyped-def]
    if backend.name != "postgresql":
        pytest.skip("SQLite's reads hold one read transaction")
    reads = Reads(backend.database, connections=1)
    # Statements of one transaction share its id; each on its own gets an id of its own.
    transaction_id = select(func.pg_current_xact_id().cast(String))

    async def scenario() -> list[str]:
        try:
            async with reads.transaction() as transaction:
                return [(await transaction.first(transaction_id, {}))[0] for _ in range(3)]
        finally:
            await reads.close()

    assert len(set(asyncio.run(scenario()))) == 3
