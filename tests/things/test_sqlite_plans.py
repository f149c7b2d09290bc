"""SQLite plans the list's reads from the (account_id, id) index and from statistics that
`serve` gathers when it starts: a page and a Thing's tags are read by key, not through the
whole account."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from simplane.accounts.service import create_account
from simplane.app import create_app
from simplane.core.db import Database
from simplane.core.migrate import upgrade
from simplane.things import repository
from simplane.things.identifiers import random_iccid, random_imsi
from simplane.things.service import SimRow, ship_sims


def _plan(connection, statement, parameters: dict) -> str:  # type: ignore[no-untyped-def]
    compiled = statement.compile(dialect=connection.dialect)
    expanded = compiled.construct_expanded_state(parameters)
    rows = connection.exec_driver_sql(
        f"EXPLAIN QUERY PLAN {expanded.statement}",
        tuple(expanded.parameters[name] for name in expanded.positiontup))
    return " | ".join(str(row[-1]) for row in rows)


def test_a_page_and_its_tags_are_read_by_key_once_serve_has_started(backend, tmp_path):  # type: ignore[no-untyped-def]
    if backend.name != "sqlite":
        pytest.skip("PostgreSQL gathers its statistics itself (autovacuum)")
    # A database of its own: one account whose 2,000 Things all carry a tag, as a fleet's do.
    url = f"sqlite:///{tmp_path / 'plans.db'}"
    settings = backend.settings.model_copy(update={"database_url": url, "radius_enabled": False})
    database = Database(url)
    try:
        upgrade(database.engine)
        with database.transaction() as session:
            account_id = create_account(session, settings, name="Plans",
                                        admin_email="plans@example.com").account.id
            ship_sims(session, account_id, [SimRow(n + 1, random_iccid(), random_imsi())
                                            for n in range(2000)])
            session.execute(text("INSERT INTO thing_tags (thing_id, tag, account_id) "
                                 "SELECT id, 'fleet', account_id FROM things"))
            thing_id = session.execute(text("SELECT min(id) FROM things")).scalar_one()
        # Pooled connections opened before the start, as the start's migrations leave them.
        reader = database.engine.execution_options(sqlite_read_only=True)
        with reader.connect() as first, reader.connect() as second:
            for connection in (first, second):
                assert "ix_thing_tags_account_id_tag" in _plan(
                    connection, repository._TAGS,
                    {"account_id": account_id, "thing_ids": [thing_id]})
        with TestClient(create_app(settings, database)):
            pass  # its start gathers the statistics
        with reader.connect() as first, reader.connect() as second:
            for connection in (first, second):
                tags = _plan(connection, repository._TAGS,
                             {"account_id": account_id, "thing_ids": [thing_id]})
                assert "USING INDEX sqlite_autoindex_thing_tags_1 (thing_id=?)" in tags, tags
                one = _plan(connection, repository._THING_ROW_TAGGED,
                            {"account_id": account_id, "thing_id": thing_id})
                assert "USING INDEX sqlite_autoindex_thing_tags_1 (thing_id=?)" in one, one
                page = _plan(connection, repository._rows_page((), 0, False),
                             {"account_id": account_id, "fetch": 101})
                assert "USING INDEX ix_things_account_id_id" in page, page
                # Each row's tags (the correlated subquery) by key, not by the account's tag.
                assert "USING INDEX sqlite_autoindex_thing_tags_1 (thing_id=?)" in page, page
                assert "TEMP B-TREE" not in page, page
    finally:
        database.dispose()
