"""ip_leases without an index on account_id alone

No query reads leases by account alone (they are read by Network, pool or Thing), and accounts
are never deleted. Every Accounting-Stop starts its lease's clock: `expires_at` is indexed
(every allocation purges the Network's expired leases), so that update writes a new entry into
each of the table's indexes, and this one served nothing.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 14:00:00
"""

from __future__ import annotations

from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_ip_leases_account_id', table_name='ip_leases')


def downgrade() -> None:
    op.create_index('ix_ip_leases_account_id', 'ip_leases', ['account_id'], unique=False)
