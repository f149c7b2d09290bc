"""sms

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 21:12:57.549619
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op



revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('network_credentials',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_network_credentials')),
    sa.UniqueConstraint('client_id', name=op.f('uq_network_credentials_client_id'))
    )
    op.create_table('sms_messages',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('direction', sa.String(length=2), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('encoding', sa.String(length=6), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('data_base64', sa.Text(), nullable=True),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('validity_seconds', sa.Integer(), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_sms_messages_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_sms_messages_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sms_messages'))
    )
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_messages_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_sms_messages_status_expires_at', ['status', 'expires_at'], unique=False)
        batch_op.create_index('ix_sms_messages_thing_id_status', ['thing_id', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('sms_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_sms_messages_thing_id_status')
        batch_op.drop_index('ix_sms_messages_status_expires_at')
        batch_op.drop_index(batch_op.f('ix_sms_messages_account_id'))

    op.drop_table('sms_messages')
    op.drop_table('network_credentials')
