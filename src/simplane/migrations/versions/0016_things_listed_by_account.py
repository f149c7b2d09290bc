"""things indexed by (account_id, id), the list's order

`GET /v1/things` pages an account's Things in id order. Without this index PostgreSQL walked
the primary key in id order and filtered on the account: the first page of an account of
3,000 Things created after another's 100,000 read and dropped those 100,000 rows (11.4 ms by
EXPLAIN ANALYZE, growing with every account before it; 0.1 ms with the index). SQLite read
the whole account through (account_id, state) and sorted it (16.8 ms for 100,000 Things;
0.24 ms with the index). Ids and accounts never change, so updates of a Thing stay HOT where
they were.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_things_account_id_id', 'things', ['account_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_things_account_id_id', table_name='things')
