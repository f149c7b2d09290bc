"""usage per billing cycle

`usage_cycles` holds each Thing's usage of a billing cycle, the sum of its `usage_daily` rows
of that cycle, kept by every usage writer in the same transaction (billing.rollups). A cycle's
report reads it: one row per Thing instead of one per day. The rows already in `usage_daily`
are summed into it here. Its key leads with the cycle, so a report is one range in Thing
order; on PostgreSQL the counters ride in the key's index (INCLUDE), as in usage_daily. No
index on account_id alone: every usage write updates a row here and would write it too, and
no query looks rows up by account alone (accounts are never deleted).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

COUNTERS = ['bytes_up', 'bytes_down', 'sms_mt', 'sms_mo']


def upgrade() -> None:
    op.create_table('usage_cycles',
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('bytes_up', sa.BigInteger(), nullable=False),
    sa.Column('bytes_down', sa.BigInteger(), nullable=False),
    sa.Column('sms_mt', sa.Integer(), nullable=False),
    sa.Column('sms_mo', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_usage_cycles_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_usage_cycles_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('period', 'thing_id', name=op.f('pk_usage_cycles'),
                            postgresql_include=COUNTERS)
    )
    postgres = op.get_bind().dialect.name == 'postgresql'
    month = "to_char(day, 'YYYY-MM')" if postgres else "strftime('%Y-%m', day)"
    op.execute(f"""
        INSERT INTO usage_cycles (period, thing_id, account_id, bytes_up, bytes_down, sms_mt,
                                  sms_mo)
        SELECT {month}, thing_id, account_id, sum(bytes_up), sum(bytes_down), sum(sms_mt),
               sum(sms_mo)
        FROM usage_daily
        GROUP BY 1, 2, 3
    """)


def downgrade() -> None:
    op.drop_table('usage_cycles')
