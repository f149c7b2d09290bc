"""radius

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:52:38.797770
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op



revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('usage_records',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('bytes_up', sa.BigInteger(), nullable=False),
    sa.Column('bytes_down', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_usage_records_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_records'))
    )
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_records_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_usage_records_thing_id_recorded_at', ['thing_id', 'recorded_at'], unique=False)

    op.create_table('data_sessions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('network_id', sa.String(length=40), nullable=True),
    sa.Column('nas_address', sa.String(length=45), nullable=False),
    sa.Column('nas_identifier', sa.String(length=253), nullable=True),
    sa.Column('acct_session_id', sa.String(length=253), nullable=False),
    sa.Column('framed_ip', sa.String(length=15), nullable=True),
    sa.Column('imsi', sa.String(length=15), nullable=False),
    sa.Column('rat', sa.String(length=8), nullable=True),
    sa.Column('operator', sa.String(length=6), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_update_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('bytes_up', sa.BigInteger(), nullable=False),
    sa.Column('bytes_down', sa.BigInteger(), nullable=False),
    sa.Column('terminate_cause', sa.String(length=32), nullable=True),
    sa.Column('disconnect_status', sa.String(length=10), nullable=True),
    sa.Column('disconnect_reason', sa.String(length=32), nullable=True),
    sa.Column('disconnect_attempts', sa.Integer(), nullable=False),
    sa.Column('disconnect_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_data_sessions_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_data_sessions_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_sessions')),
    sa.UniqueConstraint('nas_address', 'acct_session_id', name=op.f('uq_data_sessions_nas_address_acct_session_id'))
    )
    with op.batch_alter_table('data_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_sessions_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_data_sessions_status_disconnect', ['disconnect_status'], unique=False)
        batch_op.create_index('ix_data_sessions_thing_id_started_at', ['thing_id', 'started_at'], unique=False)

    op.create_table('imei_history',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('imei', sa.String(length=15), nullable=False),
    sa.Column('imeisv', sa.String(length=16), nullable=True),
    sa.Column('previous_imei', sa.String(length=15), nullable=True),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('operator', sa.String(length=6), nullable=True),
    sa.Column('rat', sa.String(length=8), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_imei_history_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_imei_history_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imei_history'))
    )
    with op.batch_alter_table('imei_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imei_history_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_imei_history_thing_id_observed_at', ['thing_id', 'observed_at'], unique=False)

    op.create_table('usage_daily',
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('bytes_up', sa.BigInteger(), nullable=False),
    sa.Column('bytes_down', sa.BigInteger(), nullable=False),
    sa.Column('sms_mt', sa.Integer(), nullable=False),
    sa.Column('sms_mo', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_usage_daily_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_usage_daily_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('thing_id', 'day', name=op.f('pk_usage_daily'))
    )
    with op.batch_alter_table('usage_daily', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_usage_daily_account_id'), ['account_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('usage_daily', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_daily_account_id'))

    op.drop_table('usage_daily')
    with op.batch_alter_table('imei_history', schema=None) as batch_op:
        batch_op.drop_index('ix_imei_history_thing_id_observed_at')
        batch_op.drop_index(batch_op.f('ix_imei_history_account_id'))

    op.drop_table('imei_history')
    with op.batch_alter_table('data_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_data_sessions_thing_id_started_at')
        batch_op.drop_index('ix_data_sessions_status_disconnect')
        batch_op.drop_index(batch_op.f('ix_data_sessions_account_id'))

    op.drop_table('data_sessions')
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_index('ix_usage_records_thing_id_recorded_at')
        batch_op.drop_index(batch_op.f('ix_usage_records_account_id'))

    op.drop_table('usage_records')
