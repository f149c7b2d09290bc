"""networking: leases, routes, NAT, VPN tunnels, firewall rules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:42:36.875013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op



revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('firewall_rules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('ip_profile_id', sa.String(length=40), nullable=False),
    sa.Column('chain', sa.String(length=8), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=5), nullable=False),
    sa.Column('protocol', sa.String(length=4), nullable=False),
    sa.Column('remote_cidr', sa.String(length=18), nullable=False),
    sa.Column('port_from', sa.Integer(), nullable=True),
    sa.Column('port_to', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_firewall_rules_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ip_profile_id'], ['ip_profiles.id'], name=op.f('fk_firewall_rules_ip_profile_id_ip_profiles'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_firewall_rules'))
    )
    with op.batch_alter_table('firewall_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_firewall_rules_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_firewall_rules_profile_chain_position', ['ip_profile_id', 'chain', 'position'], unique=False)

    op.create_table('vpn_tunnels',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('network_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('remote_gateway', sa.String(length=15), nullable=False),
    sa.Column('remote_subnets', sa.JSON(), nullable=False),
    sa.Column('local_subnets', sa.JSON(), nullable=True),
    sa.Column('ike_version', sa.Integer(), nullable=False),
    sa.Column('ike_proposals', sa.JSON(), nullable=False),
    sa.Column('esp_proposals', sa.JSON(), nullable=False),
    sa.Column('psk_encrypted', sa.Text(), nullable=False),
    sa.Column('dpd_seconds', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_vpn_tunnels_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_vpn_tunnels_network_id_networks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vpn_tunnels'))
    )
    with op.batch_alter_table('vpn_tunnels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_vpn_tunnels_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_vpn_tunnels_network_id'), ['network_id'], unique=False)

    op.create_table('routes',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('network_id', sa.String(length=40), nullable=False),
    sa.Column('destination', sa.String(length=18), nullable=False),
    sa.Column('prefix_length', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=12), nullable=False),
    sa.Column('vpn_tunnel_id', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_routes_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_routes_network_id_networks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['vpn_tunnel_id'], ['vpn_tunnels.id'], name=op.f('fk_routes_vpn_tunnel_id_vpn_tunnels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routes')),
    sa.UniqueConstraint('network_id', 'destination', name=op.f('uq_routes_network_id_destination'))
    )
    with op.batch_alter_table('routes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_routes_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_routes_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_routes_vpn_tunnel_id'), ['vpn_tunnel_id'], unique=False)

    op.create_table('ip_leases',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('network_id', sa.String(length=40), nullable=False),
    sa.Column('pool_id', sa.String(length=40), nullable=False),
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('address', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_ip_leases_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_ip_leases_network_id_networks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['pool_id'], ['ip_pools.id'], name=op.f('fk_ip_leases_pool_id_ip_pools')),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_ip_leases_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ip_leases')),
    sa.UniqueConstraint('network_id', 'address', name=op.f('uq_ip_leases_network_id_address')),
    sa.UniqueConstraint('network_id', 'thing_id', name=op.f('uq_ip_leases_network_id_thing_id'))
    )
    with op.batch_alter_table('ip_leases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ip_leases_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_ip_leases_pool_id_kind', ['pool_id', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_ip_leases_thing_id'), ['thing_id'], unique=False)

    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_networks_nat_public_ip'), ['nat_public_ip'])

    op.create_table('nat_rules',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.String(length=40), nullable=False),
    sa.Column('network_id', sa.String(length=40), nullable=False),
    sa.Column('thing_id', sa.String(length=40), nullable=False),
    sa.Column('protocol', sa.String(length=3), nullable=False),
    sa.Column('public_ip', sa.String(length=15), nullable=False),
    sa.Column('public_port', sa.Integer(), nullable=False),
    sa.Column('private_port', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_nat_rules_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['network_id'], ['networks.id'], name=op.f('fk_nat_rules_network_id_networks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['thing_id'], ['things.id'], name=op.f('fk_nat_rules_thing_id_things'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_nat_rules')),
    sa.UniqueConstraint('public_ip', 'protocol', 'public_port', name=op.f('uq_nat_rules_public_ip_protocol_public_port'))
    )
    with op.batch_alter_table('nat_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_nat_rules_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_nat_rules_network_id'), ['network_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_nat_rules_thing_id'), ['thing_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_networks_nat_public_ip'), type_='unique')
    with op.batch_alter_table('nat_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_nat_rules_thing_id'))
        batch_op.drop_index(batch_op.f('ix_nat_rules_network_id'))
        batch_op.drop_index(batch_op.f('ix_nat_rules_account_id'))

    op.drop_table('nat_rules')
    with op.batch_alter_table('ip_leases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ip_leases_thing_id'))
        batch_op.drop_index('ix_ip_leases_pool_id_kind')
        batch_op.drop_index(batch_op.f('ix_ip_leases_account_id'))

    op.drop_table('ip_leases')
    with op.batch_alter_table('routes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_routes_vpn_tunnel_id'))
        batch_op.drop_index(batch_op.f('ix_routes_network_id'))
        batch_op.drop_index(batch_op.f('ix_routes_account_id'))

    op.drop_table('routes')
    with op.batch_alter_table('vpn_tunnels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_vpn_tunnels_network_id'))
        batch_op.drop_index(batch_op.f('ix_vpn_tunnels_account_id'))

    op.drop_table('vpn_tunnels')
    with op.batch_alter_table('firewall_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_firewall_rules_profile_chain_position')
        batch_op.drop_index(batch_op.f('ix_firewall_rules_account_id'))

    op.drop_table('firewall_rules')
