"""ip_leases (network_id, expires_at): the purge of expired leases that precedes every
allocation reads only what has expired

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 00:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_ip_leases_network_id_expires_at', 'ip_leases',
                    ['network_id', 'expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_ip_leases_network_id_expires_at', table_name='ip_leases')
