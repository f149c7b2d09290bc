"""SQLite plans the list's reads from statistics that `serve` gathers when it starts, and from
the (account_id, id) index: a page reads its own rows, not the whole account."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from simplane.app import create_app
from simplane.things import repository


def _plan(backend, statement, parameters: dict) -> str:  # type: ignore[no-untyped-def]
    compiled = statement.compile(dialect=backend.database.engine.dialect)
    expanded = compiled.construct_expanded_state(parameters)
    with backend.database.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {expanded.statement}",
            tuple(expanded.parameters[name] for name in expanded.positiontup))
        return " | ".join(str(row[-1]) for row in rows)


def test_a_page_and_its_tags_are_read_by_key_once_serve_has_started(backend, tenant):  # type: ignore[no-untyped-def]
    if backend.name != "sqlite":
        pytest.skip("PostgreSQL gathers its statistics itself (autovacuum)")
    things = tenant.things(30)
    for thing in things:
        response = tenant.admin.patch(f"/v1/things/{thing['id']}", json={"tags": ["fleet"]})
        assert response.status_code == 200, response.text
    with backend.database.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS sqlite_stat1"))
    with TestClient(create_app(backend.settings.model_copy(update={"radius_enabled": False}),
                               backend.database)):
        pass  # its start gathers the statistics
    tags = _plan(backend, repository._TAGS, {"account_id": tenant.account_id,
                                              "thing_ids": [things[0]["id"]]})
    assert "USING INDEX sqlite_autoindex_thing_tags_1 (thing_id=?)" in tags, tags
    page = _plan(backend, repository._rows_page((), 0, False),
                 {"account_id": tenant.account_id, "fetch": 101})
    assert "USING INDEX ix_things_account_id_id" in page and "TEMP B-TREE" not in page, page
