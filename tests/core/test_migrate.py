"""The Alembic migrations build exactly the schema the ORM models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from simplane.models import Base


def test_migrated_schema_matches_the_models(backend) -> None:  # type: ignore[no-untyped-def]
    with backend.database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
