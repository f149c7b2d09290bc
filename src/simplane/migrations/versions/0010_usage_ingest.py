"""usage records without the per-row account check

`usage_records` is the raw, append-only usage log; its rows are written only with the
account of the Thing they belong to (RADIUS accounting, `simplane usage import`). Its foreign
key to `accounts` made PostgreSQL check every inserted row against `accounts` one by one (half
the cost of loading a record), and its index on `account_id` alone served no query (the
(thing_id, recorded_at) index serves reads of a Thing's usage). Accounts are never deleted.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26 01:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_constraint('fk_usage_records_account_id_accounts', type_='foreignkey')
        batch_op.drop_index('ix_usage_records_account_id')


def downgrade() -> None:
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.create_index('ix_usage_records_account_id', ['account_id'], unique=False)
        batch_op.create_foreign_key('fk_usage_records_account_id_accounts', 'accounts',
                                    ['account_id'], ['id'], ondelete='CASCADE')
