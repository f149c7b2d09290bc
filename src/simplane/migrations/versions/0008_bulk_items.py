"""bulk action items: the next batch straight from an index, no per-row foreign-key check

A bulk action's worker takes the next batch as `WHERE bulk_action_id = ? AND status = 'PENDING'
ORDER BY thing_id LIMIT n`; on (bulk_action_id, status) alone that read every PENDING item and
sorted them, once per batch (quadratic in the job's size). The item list filtered by status is
paged in the same order.

The foreign key to bulk_actions checked every item row on insert (a third of the time a job of
1,000,000 Things took to create). Items are only ever written by the bulk service, in the
transaction that writes their job, and jobs are never deleted.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bulk_action_items", schema=None) as batch_op:
        batch_op.drop_constraint("fk_bulk_action_items_bulk_action_id_bulk_actions",
                                 type_="foreignkey")
        batch_op.drop_index("ix_bulk_action_items_job_status")
        batch_op.create_index("ix_bulk_action_items_job_status_thing",
                              ["bulk_action_id", "status", "thing_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bulk_action_items", schema=None) as batch_op:
        batch_op.drop_index("ix_bulk_action_items_job_status_thing")
        batch_op.create_index("ix_bulk_action_items_job_status", ["bulk_action_id", "status"],
                              unique=False)
        batch_op.create_foreign_key("fk_bulk_action_items_bulk_action_id_bulk_actions",
                                    "bulk_actions", ["bulk_action_id"], ["id"], ondelete="CASCADE")
