"""core: accounts, users, things, groups, events

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 20:34:52.537689
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op



revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('monthly_fee', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('price_per_mb', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('price_per_sms_mt', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('price_per_sms_mo', sa.Numeric(precision=18, scale=6), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_user_id', sa.String(length=40), nullable=True),
    sa.Column('client_id', sa.String(length=64), nullable=True),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('resource_id', sa.String(length=40), nullable=True),
    sa.Column('changed_fields', sa.JSON(), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_audit_log_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_account_id'), ['account_id'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('thing_id', sa.String(length=40), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_events_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_events_account_id_thing_id', ['account_id', 'thing_id'], unique=False)
        batch_op.create_index('ix_events_account_id_type', ['account_id', 'type'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('headers', sa.JSON(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_idempotency_keys_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('client_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_idempotency_keys_created_at'), ['created_at'], unique=False)

    op.create_table('ip_allocations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('cidr', sa.String(length=18), nullable=False),
    sa.Column('first_address', sa.BigInteger(), nullable=False),
    sa.Column('last_address', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_ip_allocations_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ip_allocations')),
    sa.UniqueConstraint('cidr', name=op.f('uq_ip_allocations_cidr'))
    )
    with op.batch_alter_table('ip_allocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ip_allocations_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ip_allocations_first_address'), ['first_address'], unique=False)

    op.create_table('ip_profiles',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('inbound_default_action', sa.String(length=5), nullable=False),
    sa.Column('outbound_default_action', sa.String(length=5), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_ip_profiles_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ip_profiles'))
    )
    with op.batch_alter_table('ip_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ip_profiles_account_id'), ['account_id'], unique=False)

    op.create_table('networks',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('device_isolation', sa.Boolean(), nullable=False),
    sa.Column('dns_servers', sa.JSON(), nullable=False),
    sa.Column('nat_public_ip', sa.String(length=15), nullable=True),
    sa.Column('vpn_gateway_ip', sa.String(length=15), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_networks_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_networks'))
    )
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_networks_account_id'), ['account_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('tokens_valid_after', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_users_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_account_id'), ['account_id'], unique=False)

    op.create_table('credentials',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('secret_hash', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_credentials_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_credentials_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credentials')),
    sa.UniqueConstraint('client_id', name=op.f('uq_credentials_client_id'))
    )
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credentials_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credentials_user_id'), ['user_id'], unique=False)

    op.create_table('ip_pools',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('network_id', sa.String(length=40), nullable=False),
    sa.Column('cidr', sa.String(length=18), nullable=False),
    sa.Column('first_address', sa.BigInteger(), nullable=False),
    sa.Column('last_address', sa.BigInteger(), nullable=False),
    sa.Column('lease_seconds', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_ip_pools_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_ip_pools_network_id_networks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ip_pools'))
    )
    with op.batch_alter_table('ip_pools', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ip_pools_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ip_pools_first_address'), ['first_address'], unique=False)
        batch_op.create_index(batch_op.f('ix_ip_pools_network_id'), ['network_id'], unique=False)

    op.create_table('things_groups',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('network_id', sa.String(length=40), nullable=False),
    sa.Column('ip_profile_id', sa.String(length=40), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_things_groups_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ip_profile_id'], ['ip_profiles.id'], name=op.f('fk_things_groups_ip_profile_id_ip_profiles')),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_things_groups_network_id_networks')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_things_groups'))
    )
    with op.batch_alter_table('things_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_things_groups_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_things_groups_ip_profile_id'), ['ip_profile_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_things_groups_network_id'), ['network_id'], unique=False)

    op.create_table('things',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('iccid', sa.String(length=20), nullable=False),
    sa.Column('imsi', sa.String(length=15), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('things_group_id', sa.String(length=40), nullable=False),
    sa.Column('service_data', sa.Boolean(), nullable=False),
    sa.Column('service_sms', sa.Boolean(), nullable=False),
    sa.Column('imei', sa.String(length=15), nullable=True),
    sa.Column('imei_lock', sa.Boolean(), nullable=False),
    sa.Column('ip_address', sa.String(length=15), nullable=True),
    sa.Column('ip_locked', sa.Boolean(), nullable=False),
    sa.Column('connection_status', sa.String(length=10), nullable=False),
    sa.Column('connection_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('connection_rat', sa.String(length=8), nullable=True),
    sa.Column('connection_country', sa.String(length=2), nullable=True),
    sa.Column('connection_operator', sa.String(length=6), nullable=True),
    sa.Column('connection_session_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_things_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['things_group_id'], ['things_groups.id'], name=op.f('fk_things_things_group_id_things_groups')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_things')),
    sa.UniqueConstraint('iccid', name=op.f('uq_things_iccid')),
    sa.UniqueConstraint('imsi', name=op.f('uq_things_imsi'))
    )
    with op.batch_alter_table('things', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_things_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_things_account_id_imei', ['account_id', 'imei'], unique=False)
        batch_op.create_index('ix_things_account_id_ip_address', ['account_id', 'ip_address'], unique=False)
        batch_op.create_index('ix_things_account_id_state', ['account_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_things_things_group_id'), ['things_group_id'], unique=False)

    op.create_table('thing_state_changes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('from_state', sa.String(length=12), nullable=True),
    sa.Column('to_state', sa.String(length=12), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_user_id', sa.String(length=40), nullable=True),
    sa.Column('actor_client_id', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_thing_state_changes_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_thing_state_changes_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_thing_state_changes'))
    )
    with op.batch_alter_table('thing_state_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_thing_state_changes_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_thing_state_changes_thing_id_changed_at', ['thing_id', 'changed_at'], unique=False)

    op.create_table('thing_tags',
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_thing_tags_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_thing_tags_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('thing_id', 'tag', name=op.f('pk_thing_tags'))
    )
    with op.batch_alter_table('thing_tags', schema=None) as batch_op:
        batch_op.create_index('ix_thing_tags_account_id_tag', ['account_id', 'tag'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('thing_tags', schema=None) as batch_op:
        batch_op.drop_index('ix_thing_tags_account_id_tag')

    op.drop_table('thing_tags')
    with op.batch_alter_table('thing_state_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_thing_state_changes_thing_id_changed_at')
        batch_op.drop_index(batch_op.f('ix_thing_state_changes_account_id'))

    op.drop_table('thing_state_changes')
    with op.batch_alter_table('things', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_things_things_group_id'))
        batch_op.drop_index('ix_things_account_id_state')
        batch_op.drop_index('ix_things_account_id_ip_address')
        batch_op.drop_index('ix_things_account_id_imei')
        batch_op.drop_index(batch_op.f('ix_things_account_id'))

    op.drop_table('things')
    with op.batch_alter_table('things_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_things_groups_network_id'))
        batch_op.drop_index(batch_op.f('ix_things_groups_ip_profile_id'))
        batch_op.drop_index(batch_op.f('ix_things_groups_account_id'))

    op.drop_table('things_groups')
    with op.batch_alter_table('ip_pools', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ip_pools_network_id'))
        batch_op.drop_index(batch_op.f('ix_ip_pools_first_address'))
        batch_op.drop_index(batch_op.f('ix_ip_pools_account_id'))

    op.drop_table('ip_pools')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credentials_user_id'))
        batch_op.drop_index(batch_op.f('ix_credentials_account_id'))

    op.drop_table('credentials')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_account_id'))

    op.drop_table('users')
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_networks_account_id'))

    op.drop_table('networks')
    with op.batch_alter_table('ip_profiles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ip_profiles_account_id'))

    op.drop_table('ip_profiles')
    with op.batch_alter_table('ip_allocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ip_allocations_first_address'))
        batch_op.drop_index(batch_op.f('ix_ip_allocations_account_id'))

    op.drop_table('ip_allocations')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_created_at'))
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_account_id'))

    op.drop_table('idempotency_keys')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_account_id_type')
        batch_op.drop_index('ix_events_account_id_thing_id')
        batch_op.drop_index(batch_op.f('ix_events_account_id'))

    op.drop_table('events')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_account_id'))

    op.drop_table('audit_log')
    op.drop_table('accounts')
