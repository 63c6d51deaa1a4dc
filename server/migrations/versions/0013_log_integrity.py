"""the lock's signed log head, lost counter and gaps, kept for the operator

Each lock row keeps the newest signed log head seq, the lock's ``lost`` counter signed with
it, the number of records missing between the oldest stored record and the head, and the
time of the last upload (protocol §11, docs/server.md "Usage logs").

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("locks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("log_head_seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("log_lost", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("log_missing", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("log_uploaded_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("locks", schema=None) as batch_op:
        batch_op.drop_column("log_uploaded_at")
        batch_op.drop_column("log_missing")
        batch_op.drop_column("log_lost")
        batch_op.drop_column("log_head_seq")
