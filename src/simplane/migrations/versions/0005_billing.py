"""billing

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 21:45:44.868562
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op



revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('billing_cycles',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_billing_cycles_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_cycles')),
    sa.UniqueConstraint('account_id', 'period', name=op.f('uq_billing_cycles_account_id_period'))
    )
    with op.batch_alter_table('billing_cycles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_cycles_account_id'), ['account_id'], unique=False)

    op.create_table('billing_lines',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('iccid', sa.String(length=20), nullable=False),
    sa.Column('things_group_id', sa.String(length=40), nullable=False),
    sa.Column('monthly_fee', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('data_bytes', sa.BigInteger(), nullable=False),
    sa.Column('data_charge', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('sms_mt', sa.Integer(), nullable=False),
    sa.Column('sms_mo', sa.Integer(), nullable=False),
    sa.Column('sms_charge', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('total', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_billing_lines_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_lines'))
    )
    with op.batch_alter_table('billing_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_lines_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_billing_lines_account_id_period_thing_id', ['account_id', 'period', 'thing_id'], unique=True)

    op.create_table('tariffs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('effective_from', sa.String(length=7), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('monthly_fee', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('price_per_mb', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('price_per_sms_mt', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('price_per_sms_mo', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_tariffs_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tariffs')),
    sa.UniqueConstraint('account_id', 'effective_from', name=op.f('uq_tariffs_account_id_effective_from'))
    )
    with op.batch_alter_table('tariffs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tariffs_account_id'), ['account_id'], unique=False)

    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('late', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_column('late')

    with op.batch_alter_table('tariffs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tariffs_account_id'))

    op.drop_table('tariffs')
    with op.batch_alter_table('billing_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_billing_lines_account_id_period_thing_id')
        batch_op.drop_index(batch_op.f('ix_billing_lines_account_id'))

    op.drop_table('billing_lines')
    with op.batch_alter_table('billing_cycles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_cycles_account_id'))

    op.drop_table('billing_cycles')
