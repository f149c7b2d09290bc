"""things looked up by address through their lease

Every attach writes a Thing's ip_address (and updated_at). With an index on
(account_id, ip_address), PostgreSQL could not update the row in place (HOT): each attach wrote a
new row version into all seven indexes of `things`. A Thing shows an address only while it holds
a lease of it, and ip_leases is keyed by (network_id, address), so the list filter and the packet
trace find a Thing by address through its lease, and the index goes. On a /16 filled by one
allocation per transaction, PostgreSQL's CPU per allocation fell by about a quarter and every
Thing update became HOT (pg_stat_user_tables.n_tup_hot_upd).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 10:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_things_account_id_ip_address', table_name='things')


def downgrade() -> None:
    op.create_index('ix_things_account_id_ip_address', 'things', ['account_id', 'ip_address'],
                    unique=False)
