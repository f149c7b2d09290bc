"""bulk action items: outcomes written only where they are not plain success

A job of 1,000,000 Things wrote every item twice: at creation (PENDING) and once processed
(SUCCEEDED), each time into the heap, the primary key and the (bulk_action_id, status) index,
and checked each item's foreign key on insert. Now:

- `bulk_actions.done_through`: every item of the job up to this thing_id has been processed; an
  item there without a status of its own succeeded. A batch's successes cost one write to the
  job row, committed with the batch; failures (and successes out of order) are written per item.
- `bulk_action_items.status` is NULL until the item has an outcome of its own; the next batch is
  a range of the primary key (thing_id after done_through, status NULL), so the status index
  goes, and a partial index keeps the FAILED items (the list clients page through) at hand.
- No foreign key to bulk_actions: the per-row check was a third of the cost of creating a large
  job; only the bulk service writes items, in the transaction that writes their job, and jobs
  are never deleted.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FAILED = sa.text("status = 'FAILED'")


def upgrade() -> None:
    with op.batch_alter_table("bulk_actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("done_through", sa.String(length=40), nullable=True))
    with op.batch_alter_table("bulk_action_items", schema=None) as batch_op:
        batch_op.drop_constraint("fk_bulk_action_items_bulk_action_id_bulk_actions",
                                 type_="foreignkey")
        batch_op.drop_index("ix_bulk_action_items_job_status")
        batch_op.alter_column("status", existing_type=sa.String(length=10), nullable=True)
        batch_op.create_index("ix_bulk_action_items_failed", ["bulk_action_id", "thing_id"],
                              unique=False, postgresql_where=FAILED, sqlite_where=FAILED)
    # Jobs that ran before keep their outcomes: SUCCEEDED stays written, PENDING becomes NULL
    # (done_through is NULL: every unwritten item of theirs is still to do).
    op.execute("UPDATE bulk_action_items SET status = NULL WHERE status = 'PENDING'")


def downgrade() -> None:
    with op.batch_alter_table("bulk_action_items", schema=None) as batch_op:
        batch_op.drop_index("ix_bulk_action_items_failed", postgresql_where=FAILED,
                            sqlite_where=FAILED)
    op.execute("UPDATE bulk_action_items SET status = CASE WHEN thing_id <= (SELECT "
               "done_through FROM bulk_actions j WHERE j.id = bulk_action_id) THEN 'SUCCEEDED' "
               "ELSE 'PENDING' END WHERE status IS NULL")
    with op.batch_alter_table("bulk_action_items", schema=None) as batch_op:
        batch_op.alter_column("status", existing_type=sa.String(length=10), nullable=False)
        batch_op.create_index("ix_bulk_action_items_job_status", ["bulk_action_id", "status"],
                              unique=False)
        batch_op.create_foreign_key("fk_bulk_action_items_bulk_action_id_bulk_actions",
                                    "bulk_actions", ["bulk_action_id"], ["id"], ondelete="CASCADE")
    with op.batch_alter_table("bulk_actions", schema=None) as batch_op:
        batch_op.drop_column("done_through")
