"""billing report indexes

The cycle report reads one account's usage and state histories in Thing order from indexes
alone: the daily counters ride in usage_daily's primary key (PostgreSQL INCLUDE; SQLite keeps
its key as it is), and the state history gets an (account, Thing, time, id) index carrying the
state.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26 00:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

COUNTERS = ['bytes_up', 'bytes_down', 'sms_mt', 'sms_mo']
STATE_INDEX = 'ix_thing_state_changes_account_id_thing_id_changed_at_id'


def upgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        # Alembic's create_primary_key has no INCLUDE: one ALTER TABLE swaps the key's index.
        op.execute('ALTER TABLE usage_daily DROP CONSTRAINT pk_usage_daily, '
                   'ADD CONSTRAINT pk_usage_daily PRIMARY KEY (thing_id, day) '
                   f'INCLUDE ({", ".join(COUNTERS)})')
    op.create_index(STATE_INDEX, 'thing_state_changes',
                    ['account_id', 'thing_id', 'changed_at', 'id'], unique=False,
                    postgresql_include=['to_state'])


def downgrade() -> None:
    op.drop_index(STATE_INDEX, table_name='thing_state_changes')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE usage_daily DROP CONSTRAINT pk_usage_daily, '
                   'ADD CONSTRAINT pk_usage_daily PRIMARY KEY (thing_id, day)')
