"""lighter writes of state history and events

- things, thing_state_changes and events each had an index on account_id alone beside
  composite indexes that start with account_id: every query can use those, and each index was
  one more write per row on the tables that bulk actions and RADIUS write most.
- thing_state_changes (account, Thing) and events (account) lose their foreign keys: the
  platform writes these rows only with the account and Thing whose change they record, in the
  statement that makes the change, and neither accounts nor Things are ever deleted (Things
  are retired). PostgreSQL checked every inserted row against both tables one by one: a third
  of the time of a bulk state change of 20,000 Things (auto_explain, 2.0 s a batch). The same
  reasoning as usage_records in 0010.

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
FOREIGN_KEYS = [
    ('thing_state_changes', 'fk_thing_state_changes_account_id_accounts', 'account_id', 'accounts'),
    ('thing_state_changes', 'fk_thing_state_changes_thing_id_things', 'thing_id', 'things'),
    ('events', 'fk_events_account_id_accounts', 'account_id', 'accounts'),
]


def upgrade() -> None:
    for table in TABLES:
        op.drop_index(f'ix_{table}_account_id', table_name=table)
    for table, name, _, _ in FOREIGN_KEYS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_='foreignkey')


def downgrade() -> None:
    for table, name, column, referred in FOREIGN_KEYS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(name, referred, [column], ['id'], ondelete='CASCADE')
    for table in TABLES:
        op.create_index(f'ix_{table}_account_id', table, ['account_id'], unique=False)
