"""connected locks: the uplink publication outbox, per-lock uplink state, SIM lines and
the operator's own SIM connection records (#16)

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
    op.create_table(
        "sim_lines",
        sa.Column("lock_pk", sa.Integer(), nullable=False),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
        sa.Column("msisdn", sa.String(length=20), nullable=False),
        sa.Column("imei", sa.String(length=15), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("idle_since", sa.BigInteger(), nullable=True),
        sa.Column("changed_at", sa.BigInteger(), nullable=False),
        sa.Column("attached", sa.Boolean(), nullable=False),
        sa.Column("last_attach", sa.BigInteger(), nullable=True),
        sa.Column("data_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["lock_pk"], ["locks.pk"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("lock_pk"),
        sa.UniqueConstraint("msisdn"),
    )
    op.create_index("ix_sim_lines_operator_id", "sim_lines", ["operator_id"], unique=False)
    op.create_table(
        "sim_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("operator_id", sa.String(length=40), nullable=False),
        sa.Column("msisdn", sa.String(length=20), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sim_records_operator_id", "sim_records", ["operator_id"], unique=False)
    op.create_index("ix_sim_records_msisdn", "sim_records", ["msisdn"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_sim_records_msisdn", table_name="sim_records")
    op.drop_index("ix_sim_records_operator_id", table_name="sim_records")
    op.drop_table("sim_records")
    op.drop_index("ix_sim_lines_operator_id", table_name="sim_lines")
    op.drop_table("sim_lines")
    op.drop_table("lock_uplink")
    op.drop_index("ix_uplink_outbox_lock_pk", table_name="uplink_outbox")
    op.drop_table("uplink_outbox")
