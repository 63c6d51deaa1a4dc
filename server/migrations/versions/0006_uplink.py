"""connected locks: the uplink publication outbox and per-lock uplink state (#16)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "uplink_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("lock_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["lock_pk"], ["locks.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_uplink_outbox_lock_pk", "uplink_outbox", ["lock_pk"], unique=False)
    op.create_table(
        "lock_uplink",
        sa.Column("lock_pk", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.BigInteger(), nullable=False),
        sa.Column("acked_version", sa.BigInteger(), nullable=False),
        sa.Column("last_online", sa.BigInteger(), nullable=True),
        sa.Column("lock_time", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("heartbeats", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["lock_pk"], ["locks.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("lock_pk"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("lock_uplink")
    op.drop_index("ix_uplink_outbox_lock_pk", table_name="uplink_outbox")
    op.drop_table("uplink_outbox")
