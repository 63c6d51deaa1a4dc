"""cache versions, lock incarnation and identity change, used phone refresh proofs

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    state = op.create_table(
        "server_state",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_state")),
    )
    op.bulk_insert(state, [{"name": "issuer_keys", "version": 1}])
    op.create_table(
        "phone_auth_proofs",
        sa.Column("phone_id", sa.String(length=40), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["phone_id"],
            ["phones.id"],
            name=op.f("fk_phone_auth_proofs_phone_id_phones"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("phone_id", "ts", name=op.f("pk_phone_auth_proofs")),
    )
    with op.batch_alter_table("phone_auth_proofs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_phone_auth_proofs_used_at"), ["used_at"], unique=False)
    with op.batch_alter_table("locks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("incarnation", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("identity_changed_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("locks", schema=None) as batch_op:
        batch_op.drop_column("identity_changed_at")
        batch_op.drop_column("incarnation")
    with op.batch_alter_table("phone_auth_proofs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_phone_auth_proofs_used_at"))
    op.drop_table("phone_auth_proofs")
    op.drop_table("server_state")
