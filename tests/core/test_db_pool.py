"""Pooled PostgreSQL connections: checked before use only after sitting idle."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from simplane.core import db as db_module
from simplane.core.db import Database


@pytest.fixture
def postgres(backend):  # type: ignore[no-untyped-def]
    if backend.name != "postgresql":
        pytest.skip("PostgreSQL's pool only")
    database = Database(backend.url, pool_size=1, max_overflow=0)
    yield database
    database.dispose()


def _backend_pid(database: Database) -> int:
    with database.transaction(read_only=True) as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_closed_by_the_server_while_idle_is_replaced(postgres, backend, monkeypatch):
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)
    pid = _backend_pid(postgres)
    with backend.database.transaction() as session:
        session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert _backend_pid(postgres) != pid  # no error: the ping found it closed


def test_a_busy_connection_is_not_pinged(postgres, monkeypatch):
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 3600.0)
    _backend_pid(postgres)
    pings = []
    monkeypatch.setattr(postgres.engine.dialect, "do_ping", lambda c: pings.append(c) or True)
    for _ in range(3):
        _backend_pid(postgres)
    assert pings == []
