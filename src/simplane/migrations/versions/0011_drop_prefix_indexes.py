"""drop account_id indexes that composite indexes already lead

things, thing_state_changes and events each had an index on account_id alone beside
composite indexes that start with account_id: every query (and the cascade from accounts) can
use those, and each index was one more write per row on the tables that bulk actions and
RADIUS write most.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-26 04:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

TABLES = ['things', 'thing_state_changes', 'events']


def upgrade() -> None:
    for table in TABLES:
        op.drop_index(f'ix_{table}_account_id', table_name=table)


def downgrade() -> None:
    for table in TABLES:
        op.create_index(f'ix_{table}_account_id', table, ['account_id'], unique=False)
